//! Bearer-token authentication: verifies JWTs (HS256 secret and/or JWKS keys) and turns their
//! claims into a [`Principal`] with scopes and an optional organization confinement.

mod claims;
mod jwks;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use self::claims::mint_hs256;
use self::claims::{Claims, peek_header};
pub use self::jwks::{DEFAULT_GRACE as DEFAULT_JWKS_GRACE, DEFAULT_REFRESH as DEFAULT_JWKS_REFRESH};
use self::jwks::{Jwks, Miss, Timing};
use crate::domain::OrgId;

/// Clock skew tolerated on `exp` and `nbf`, in seconds: enough for hosts with loosely synced
/// clocks, short enough that an expired token stops working within half a minute.
pub const LEEWAY_SECS: u64 = 30;
/// Real tokens are a few KiB at most; bigger input is refused before any parsing work.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where verification keys come from (the `AUDIT_JWT_*` / `AUDIT_JWKS_*` settings).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// How often the JWKS is refetched: always for a file, and for a URL whose answer carries no
    /// `Cache-Control: max-age` (which otherwise decides, clamped to 1 min .. 1 h).
    pub jwks_refresh: Duration,
    /// How long past its refresh time a JWKS that cannot be refetched stays trusted; after that,
    /// tokens signed by its keys are refused until a refetch succeeds.
    pub jwks_grace: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            jwks_grace: DEFAULT_JWKS_GRACE,
        }
    }
}

/// Who is calling, after a token was verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    /// `Some`: confined to this organization; `None`: platform-wide.
    pub org_id: Option<OrgId>,
    scopes: Vec<String>,
    /// The `required_scope` of the method the auth layer let the call through to;
    /// `None` until then, and for a path the server does not serve.
    authorized_scope: Option<Arc<str>>,
}

impl Principal {
    /// Whole-scope match only, so "audit:readx" does not grant "audit:read".
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scope the call was authorized with, which a refusal names as the one it needed.
    pub fn authorized_scope(&self) -> Option<&str> {
        self.authorized_scope.as_deref()
    }

    /// The principal of a call authorized for a method that requires `scope`.
    pub(crate) fn authorized_for(mut self, scope: Option<Arc<str>>) -> Self {
        self.authorized_scope = scope;
        self
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
        Self::from_config_with(cfg, jwks::UNKNOWN_KID_INTERVAL).await
    }

    /// As [`Verifier::from_config`], with the least time between unknown-kid refetches given.
    async fn from_config_with(cfg: &AuthConfig, unknown_kid_interval: Duration) -> anyhow::Result<Verifier> {
        // Not trimmed: whitespace in a secret is key material; but an empty one must never be a key.
        let secret = cfg.jwt_secret.as_deref().filter(|s| !s.trim().is_empty());
        let jwks_url = setting(&cfg.jwks_url);
        if secret.is_none() && jwks_url.is_none() {
            anyhow::bail!("no token key configured: set AUDIT_JWT_SECRET and/or AUDIT_JWKS_URL");
        }
        if secret.is_some_and(|s| s.len() < 32) {
            tracing::warn!("jwt secret is shorter than 32 bytes");
        }
        if cfg.jwks_refresh.is_zero() {
            anyhow::bail!("the jwks refresh interval must be at least 1 second");
        }
        let timing = Timing { refresh: cfg.jwks_refresh, grace: cfg.jwks_grace, unknown_kid_interval };
        let jwks = match jwks_url {
            Some(url) => Some(Jwks::load(url, timing).await?),
            None => None,
        };
        Ok(Self::build(secret.map(str::as_bytes), jwks, setting(&cfg.issuer), setting(&cfg.audience)))
    }

    /// For demo mode: HS256 with this secret only.
    pub fn hs256(secret: &[u8]) -> Verifier {
        // Fails closed: with an empty secret anyone could sign, so nothing is accepted instead.
        Self::build(Some(secret).filter(|s| !s.is_empty()), None, None, None)
    }

    fn build(secret: Option<&[u8]>, jwks: Option<Jwks>, issuer: Option<&str>, audience: Option<&str>) -> Verifier {
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
        Verifier { inner: Arc::new(Inner { hmac, jwks, validation }) }
    }

    /// Verifies the value of an `Authorization` header ("Bearer <jwt>", scheme case-insensitive).
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let value = header.map(str::trim).filter(|v| !v.is_empty()).ok_or(AuthError::Missing)?;
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
                jwks_key = jwks.select(header.kid.as_deref(), alg).await.map_err(|m| match m {
                    Miss::UnknownKid => invalid("unknown key id"),
                    Miss::AlgorithmNotAllowed => invalid("algorithm not allowed"),
                    Miss::Untrusted => invalid("signing keys unavailable"),
                })?;
                &jwks_key
            }
            _ => return Err(invalid("algorithm not allowed")),
        };
        let mut validation = inner.validation.clone();
        validation.algorithms = vec![alg];
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| invalid(jwt_error_reason(e.kind())))?;
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
