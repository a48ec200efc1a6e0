//! Where a JWKS comes from (a file or an https URL) and how it is fetched, including the
//! `Cache-Control: max-age` an endpoint sends with it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::header::{CACHE_CONTROL, HeaderMap};

use super::keys::{KeySet, parse_set};

/// A compromised or broken endpoint must not make us buffer without limit.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Requests wait on a refresh, so a hanging endpoint must not hold them for long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(super) enum Source {
    File(PathBuf),
    Url(reqwest::Url),
}

/// One successful fetch.
pub(super) struct Fetched {
    pub(super) keys: KeySet,
    /// How long the endpoint said the set may be cached; `None` for files and when it said nothing.
    pub(super) max_age: Option<Duration>,
}

pub(super) fn parse_location(location: &str) -> anyhow::Result<Source> {
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

pub(super) fn http_client(source: &Source) -> anyhow::Result<reqwest::Client> {
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

pub(super) async fn fetch(source: &Source, client: &reqwest::Client) -> anyhow::Result<Fetched> {
    let (body, max_age) = match source {
        Source::File(path) => {
            (tokio::fs::read(path).await.with_context(|| format!("reading {}", path.display()))?, None)
        }
        Source::Url(url) => fetch_url(client, url).await?,
    };
    Ok(Fetched { keys: parse_set(&body)?, max_age })
}

async fn fetch_url(client: &reqwest::Client, url: &reqwest::Url) -> anyhow::Result<(Vec<u8>, Option<Duration>)> {
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
    let max_age = cache_max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading jwks response")? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            bail!("jwks response exceeds {MAX_JWKS_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

/// The freshness lifetime an endpoint gave its answer: the smallest `max-age` among the
/// `Cache-Control` headers, and zero for `no-cache` or `no-store`. Unparseable directives are
/// ignored, as RFC 9111 asks of caches.
pub(super) fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim);
    let mut shortest: Option<u64> = None;
    for directive in directives {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let seconds = match name.trim().to_ascii_lowercase().as_str() {
            "no-cache" | "no-store" => Some(0),
            // The quoted form is not for senders to use, but recipients are asked to accept it.
            "max-age" => {
                let value = value.trim().trim_matches('"');
                (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| value.parse::<u64>().unwrap_or(u64::MAX))
            }
            _ => None,
        };
        if let Some(seconds) = seconds {
            shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
        }
    }
    shortest.map(Duration::from_secs)
}
