//! JWKS key source for asymmetric tokens: loads a key set from a file or URL, picks the key for
//! a token, and refreshes on unknown key ids at a bounded rate.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// Unknown `kid`s arrive in unauthenticated requests; this bounds how often they can make us
/// contact the identity provider.
pub(crate) const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// A compromised or broken endpoint must not make us buffer without limit.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Requests wait on a refresh, so a hanging endpoint must not hold them for long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Shorter RSA moduli are factorable at practical cost.
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Url(reqwest::Url),
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// Why no key could be chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    UnknownKid,
    AlgorithmNotAllowed,
}

struct KeySet(Vec<Key>);

impl KeySet {
    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
        if !self.0.iter().any(|k| k.alg == alg) {
            return Err(Miss::AlgorithmNotAllowed);
        }
        let mut candidates: Vec<&Key> = match kid {
            Some(kid) => self.0.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None => self.0.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(Miss::UnknownKid);
        }
        // A kid naming a key of another algorithm is a confusion attempt, not a lookup miss.
        candidates.retain(|k| k.alg == alg);
        match candidates.as_slice() {
            [only] => Ok(only.key.clone()),
            [] => Err(Miss::AlgorithmNotAllowed),
            // Without a kid, trying each key would turn one request into many verifications.
            _ => Err(Miss::UnknownKid),
        }
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.0.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The configured JWKS with its current keys; shared by all requests.
pub(crate) struct Jwks {
    source: Source,
    client: reqwest::Client,
    // Never held across an await, so a std lock is enough and keeps reads cheap.
    keys: RwLock<Arc<KeySet>>,
    // Also serialises refreshes, so concurrent misses share one fetch.
    last_fetch: tokio::sync::Mutex<Instant>,
    min_refresh_interval: Duration,
}

impl Jwks {
    /// Loads the set; fails when it cannot be read or holds no usable key.
    pub(crate) async fn load(location: &str, min_refresh_interval: Duration) -> anyhow::Result<Jwks> {
        let source = parse_location(location)?;
        let client = http_client(&source)?;
        let keys = fetch(&source, &client).await.with_context(|| format!("loading jwks from {location}"))?;
        tracing::info!(keys = keys.0.len(), "jwks loaded");
        Ok(Jwks {
            source,
            client,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
            min_refresh_interval,
        })
    }

    /// Picks the key for a token, refreshing once (rate-limited) when its kid is unknown.
    pub(crate) async fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
        let first = self.current().select(kid, alg);
        match kid {
            // A known kid cannot become valid for another algorithm by refetching.
            Some(kid) if first.is_err() && !self.current().has_kid(kid) => {
                self.refresh().await;
                self.current().select(Some(kid), alg)
            }
            _ => first,
        }
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.elapsed() < self.min_refresh_interval {
            return;
        }
        *last = Instant::now();
        match fetch(&self.source, &self.client).await {
            Ok(keys) => {
                tracing::info!(keys = keys.0.len(), "jwks refreshed");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
            }
            Err(e) => {
                // Alternate form keeps the cause chain, which is where the useful detail is.
                let e = format!("{e:#}");
                tracing::warn!(error = %e, "jwks refresh failed");
            }
        }
    }
}

fn parse_location(location: &str) -> anyhow::Result<Source> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("file://") {
        let url = reqwest::Url::parse(location).context("invalid jwks file url")?;
        let path = url.to_file_path().map_err(|()| anyhow!("jwks file url does not name a local path"))?;
        return Ok(Source::File(path));
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let url = reqwest::Url::parse(location).context("invalid jwks url")?;
        if !url_allowed(&url) {
            bail!("jwks url must use https (plain http only for a loopback ip address)");
        }
        return Ok(Source::Url(url));
    }
    if location.contains("://") {
        bail!("unsupported jwks url scheme (use https://, file:// or a path)");
    }
    Ok(Source::File(PathBuf::from(location)))
}

/// Plain http would let anyone on the path substitute the keys; loopback never leaves the host.
fn url_allowed(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    // Only IP literals: a name such as "localhost" could resolve elsewhere.
    url.host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

fn http_client(source: &Source) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT / 2)
        // Redirects must not downgrade the fetch to an unprotected location.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many jwks redirects")
            } else if url_allowed(attempt.url()) {
                attempt.follow()
            } else {
                attempt.error("jwks redirect to a non-https url refused")
            }
        }));
    if matches!(source, Source::Url(url) if is_loopback(url)) {
        // A proxy from the environment would take loopback traffic off the host.
        builder = builder.no_proxy();
    }
    builder.build().context("building jwks http client")
}

async fn fetch(source: &Source, client: &reqwest::Client) -> anyhow::Result<KeySet> {
    let body = match source {
        Source::File(path) => tokio::fs::read(path).await.with_context(|| format!("reading {}", path.display()))?,
        Source::Url(url) => fetch_url(client, url).await?,
    };
    parse_set(&body)
}

async fn fetch_url(client: &reqwest::Client, url: &reqwest::Url) -> anyhow::Result<Vec<u8>> {
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .context("fetching jwks")?;
    let status = response.status();
    if !status.is_success() {
        bail!("jwks endpoint answered {status}");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading jwks response")? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            bail!("jwks response exceeds {MAX_JWKS_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_set(body: &[u8]) -> anyhow::Result<KeySet> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(body).context("jwks is not a json object with a keys array")?;
    let mut keys = Vec::new();
    // Key by key, so an IdP publishing one key we cannot use does not take down the rest.
    for (index, value) in raw.keys.into_iter().enumerate() {
        match parse_key(value) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::warn!(index, reason, "jwks key ignored"),
        }
    }
    if keys.is_empty() {
        bail!("jwks holds no usable RS256, ES256 or EdDSA signing key");
    }
    Ok(KeySet(keys))
}

fn parse_key(value: serde_json::Value) -> Result<Key, &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "unparseable or unsupported jwk")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops lacks verify");
    }
    let declared = jwk.common.key_algorithm;
    // A missing "alg" is inferred from the key type, as RFC 7517 makes it optional.
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) if matches!(declared, None | Some(KeyAlgorithm::RS256)) => {
            let n = decode_component(&p.n)?;
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err("rsa modulus shorter than 2048 bits");
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(p)
            if p.curve == EllipticCurve::P256 && matches!(declared, None | Some(KeyAlgorithm::ES256)) =>
        {
            if decode_component(&p.x)?.len() != 32 || decode_component(&p.y)?.len() != 32 {
                return Err("p-256 coordinates must be 32 bytes");
            }
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(p)
            if p.curve == EllipticCurve::Ed25519 && matches!(declared, None | Some(KeyAlgorithm::EdDSA)) =>
        {
            if decode_component(&p.x)?.len() != 32 {
                return Err("ed25519 public key must be 32 bytes");
            }
            Algorithm::EdDSA
        }
        _ => return Err("key type or algorithm not supported (RS256, ES256, EdDSA only)"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "invalid key material")?;
    Ok(Key { kid: jwk.common.key_id, alg, key })
}

fn decode_component(value: &str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| "key component is not base64url")
}
