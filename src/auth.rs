//! Bearer-token authentication: verifies JWTs (HS256 secret and/or JWKS keys) and turns their
//! claims into a [`Principal`] with scopes and an optional organization confinement.

mod jwks;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

use self::jwks::{Jwks, Miss};

/// Clock skew tolerated on `exp` and `nbf`, in seconds: enough for hosts with loosely synced
/// clocks, short enough that an expired token stops working within half a minute.
pub const LEEWAY_SECS: u64 = 30;
/// Real tokens are a few KiB at most; bigger input is refused before any parsing work.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where verification keys come from (the `AUDIT_JWT_*` / `AUDIT_JWKS_URL` settings).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Who is calling, after a token was verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    /// `Some`: confined to this organization; `None`: platform-wide.
    pub org_id: Option<String>,
    scopes: Vec<String>,
}

impl Principal {
    /// Whole-scope match only, so "audit:readx" does not grant "audit:read".
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Empty environment variables mean "unset".
fn setting(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn invalid(reason: &str) -> AuthError {
    AuthError::Invalid(reason.to_owned())
}

/// Verifies bearer tokens; cheap to clone, all clones share the keys.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    hmac: Option<DecodingKey>,
    jwks: Option<Jwks>,
    // Prepared once; only `algorithms` changes per token.
    validation: Validation,
}

impl fmt::Debug for Verifier {
    // Hand-written so the shared secret can never end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.inner.hmac.is_some())
            .field("jwks", &self.inner.jwks.is_some())
            .field("issuer", &self.inner.validation.iss)
            .field("audience", &self.inner.validation.aud)
            .finish()
    }
}

impl Verifier {
    /// Errors when no key is configured at all, or the JWKS cannot be loaded at start.
    pub async fn from_config(cfg: &AuthConfig) -> anyhow::Result<Verifier> {
        Self::from_config_with(cfg, jwks::MIN_REFRESH_INTERVAL).await
    }

    async fn from_config_with(cfg: &AuthConfig, refresh: Duration) -> anyhow::Result<Verifier> {
        // Not trimmed: whitespace in a secret is key material; but an empty one must never be a key.
        let secret = cfg.jwt_secret.as_deref().filter(|s| !s.trim().is_empty());
        let jwks_url = setting(&cfg.jwks_url);
        if secret.is_none() && jwks_url.is_none() {
            anyhow::bail!("no token key configured: set AUDIT_JWT_SECRET and/or AUDIT_JWKS_URL");
        }
        if secret.is_some_and(|s| s.len() < 32) {
            tracing::warn!("jwt secret is shorter than 32 bytes");
        }
        let jwks = match jwks_url {
            Some(url) => Some(Jwks::load(url, refresh).await?),
            None => None,
        };
        Ok(Self::build(
            secret.map(str::as_bytes),
            jwks,
            setting(&cfg.issuer),
            setting(&cfg.audience),
        ))
    }

    /// For demo mode: HS256 with this secret only.
    pub fn hs256(secret: &[u8]) -> Verifier {
        // Fails closed: with an empty secret anyone could sign, so nothing is accepted instead.
        Self::build(Some(secret).filter(|s| !s.is_empty()), None, None, None)
    }

    fn build(
        secret: Option<&[u8]>,
        jwks: Option<Jwks>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        // The library checks iss/aud only when the token carries them, so they must be required.
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            // Otherwise the library refuses every token that names any audience.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let hmac = secret.map(DecodingKey::from_secret);
        Verifier {
            inner: Arc::new(Inner {
                hmac,
                jwks,
                validation,
            }),
        }
    }

    /// Verifies the value of an `Authorization` header ("Bearer <jwt>", scheme case-insensitive).
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let value = header
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Missing)?;
        let (scheme, token) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid("authorization scheme must be bearer"));
        }
        match token.trim() {
            "" => Err(AuthError::Missing),
            token => self.verify_token(token).await,
        }
    }

    async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("malformed token"));
        }
        let header = peek_header(token)?;
        let inner = &*self.inner;
        // Matched on the raw string: the library cannot even parse "none", and mapping anything
        // outside the configured keys to one refusal closes off algorithm confusion.
        let alg = match (header.alg.as_str(), &inner.hmac, &inner.jwks) {
            ("HS256", Some(_), _) => Algorithm::HS256,
            ("RS256", _, Some(_)) => Algorithm::RS256,
            ("ES256", _, Some(_)) => Algorithm::ES256,
            ("EdDSA", _, Some(_)) => Algorithm::EdDSA,
            _ => return Err(invalid("algorithm not allowed")),
        };
        let jwks_key;
        let key = match (&inner.hmac, &inner.jwks) {
            (Some(secret), _) if alg == Algorithm::HS256 => secret,
            (_, Some(jwks)) => {
                jwks_key = jwks
                    .select(header.kid.as_deref(), alg)
                    .await
                    .map_err(|m| match m {
                        Miss::UnknownKid => invalid("unknown key id"),
                        Miss::AlgorithmNotAllowed => invalid("algorithm not allowed"),
                    })?;
                &jwks_key
            }
            _ => return Err(invalid("algorithm not allowed")),
        };
        let mut validation = inner.validation.clone();
        validation.algorithms = vec![alg];
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| invalid(jwt_error_reason(e.kind())))?;
        data.claims.into_principal()
    }
}

fn jwt_error_reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        // Key-format errors come from signatures of the wrong shape for the key.
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Signing(_) => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "algorithm not allowed",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(c) if c == "exp" => "missing exp claim",
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => "wrong issuer",
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => "wrong audience",
        _ => "malformed token",
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Reads alg and kid before verification, because they choose the key.
fn peek_header(token: &str) -> Result<JoseHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(encoded), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed token"));
    };
    let header: JoseHeader = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("malformed token"))?;
    // RFC 7515 demands refusal when critical extensions are not understood; we know none.
    match header.crit {
        Some(_) => Err(invalid("unsupported critical header")),
        None => Ok(header),
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    // Kept raw so that `"org_id": null` is not mistaken for an absent (platform-wide) claim.
    #[serde(default, deserialize_with = "present")]
    org_id: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<ScopeList>,
    #[serde(default)]
    scp: Option<ScopeList>,
}

/// The contract has `scope` as a string and `scp` as an array; some IdPs swap the shapes, which
/// mean the same thing, so both accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Delimited(String),
    List(Vec<String>),
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl Claims {
    fn into_principal(self) -> Result<Principal, AuthError> {
        let org_id = match self.org_id {
            None => None,
            // Reading an empty value as "no organization" would widen it to platform-wide.
            Some(serde_json::Value::String(s)) if s.is_empty() => {
                return Err(invalid("org_id claim must not be empty"));
            }
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("org_id claim must be a string")),
        };
        let mut scopes: Vec<String> = Vec::new();
        for list in [self.scope, self.scp].into_iter().flatten() {
            let items: Vec<String> = match list {
                ScopeList::Delimited(s) => s.split_whitespace().map(str::to_owned).collect(),
                ScopeList::List(v) => v,
            };
            for item in items {
                if !item.is_empty() && !scopes.contains(&item) {
                    scopes.push(item);
                }
            }
        }
        Ok(Principal {
            subject: self.sub.unwrap_or_default(),
            org_id,
            scopes,
        })
    }
}

#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
}

/// Mints an HS256 token (used by `audit-service token` and demo mode and tests).
pub fn mint_hs256(
    secret: &[u8],
    subject: &str,
    scopes: &[&str],
    org_id: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    anyhow::ensure!(!secret.is_empty(), "jwt secret must not be empty");
    // Such scopes would not survive the space-delimited `scope` claim intact.
    anyhow::ensure!(
        scopes
            .iter()
            .all(|s| !s.is_empty() && !s.contains(char::is_whitespace)),
        "scopes must be non-empty and contain no whitespace"
    );
    anyhow::ensure!(org_id != Some(""), "org_id must not be empty");
    let now = jsonwebtoken::get_current_timestamp();
    let claims = MintClaims {
        sub: subject,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        scope: scopes.join(" "),
        org_id,
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?;
    Ok(token)
}
