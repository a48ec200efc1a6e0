//! The JWT wire format: the header read before verification, the claims turned into a
//! [`Principal`], and minting of HS256 tokens.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Deserializer, Serialize};

use super::{AuthError, Principal, invalid};
use crate::domain::OrgId;

#[derive(Deserialize)]
pub(super) struct JoseHeader {
    pub(super) alg: String,
    #[serde(default)]
    pub(super) kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Reads alg and kid before verification, because they choose the key.
pub(super) fn peek_header(token: &str) -> Result<JoseHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(encoded), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
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
pub(super) struct Claims {
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
    pub(super) fn into_principal(self) -> Result<Principal, AuthError> {
        let org_id = match self.org_id {
            None => None,
            // An empty value is refused with the rest, not read as "no organization",
            // which would widen the token to platform-wide.
            Some(serde_json::Value::String(s)) => Some(
                OrgId::parse(&s).map_err(|description| AuthError::Invalid(format!("org_id claim {description}")))?,
            ),
            Some(_) => return Err(invalid("org_id claim must be a string")),
        };
        let mut scopes: Vec<String> = Vec::new();
        for list in [self.scope, self.scp].into_iter().flatten() {
            let items: Vec<String> = match list {
                // RFC 6749 3.3: delimited by the ASCII space alone. Splitting on any whitespace
                // would let "x\u{a0}audit:read" grant audit:read to a token never issued it.
                ScopeList::Delimited(s) => s.split(' ').map(str::to_owned).collect(),
                ScopeList::List(v) => v,
            };
            for item in items {
                if !item.is_empty() && !scopes.contains(&item) {
                    scopes.push(item);
                }
            }
        }
        Ok(Principal { subject: self.sub.unwrap_or_default(), org_id, scopes, authorized_scope: None })
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
        scopes.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace)),
        "scopes must be non-empty and contain no whitespace"
    );
    anyhow::ensure!(org_id != Some(""), "org_id must not be empty");
    let now = jsonwebtoken::get_current_timestamp();
    let claims =
        MintClaims { sub: subject, iat: now, exp: now.saturating_add(ttl.as_secs()), scope: scopes.join(" "), org_id };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))?;
    Ok(token)
}
