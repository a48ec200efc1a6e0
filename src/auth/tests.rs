//! Unit tests of token verification, and helpers shared with the JWKS tests; keys come from
//! `tests/fixtures/keys`.

use serde_json::{Value, json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};

use super::*;

pub(super) const SECRET: &[u8] = b"unit-test-secret-of-at-least-32-bytes";
pub(super) const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
pub(super) const MINUTE: Duration = Duration::from_secs(60);
pub(super) const NOT_ALLOWED: &str = "algorithm not allowed";

pub(super) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}/{name}")).unwrap()
}

pub(super) fn valid() -> Value {
    json!({"sub": "svc", "exp": now() + 300, "scope": "audit:read"})
}

pub(super) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(super) fn hs(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET);
    sign(Algorithm::HS256, None, &key, claims)
}

pub(super) fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa.pem")).unwrap()
}

/// A token signed with a fixture private key, using the algorithm that key implies.
pub(super) fn pem(name: &str, kid: Option<&str>, claims: &Value) -> String {
    let bytes = fixture(name);
    let (alg, key) = match name {
        "ec.pem" => (Algorithm::ES256, EncodingKey::from_ec_pem(&bytes)),
        "ed25519.pem" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&bytes)),
        _ => (Algorithm::RS256, EncodingKey::from_rsa_pem(&bytes)),
    };
    sign(alg, kid, &key.unwrap(), claims)
}

pub(super) async fn check(v: &Verifier, token: &str) -> Result<Principal, AuthError> {
    v.verify_header(Some(&format!("Bearer {token}"))).await
}

pub(super) async fn refusal(v: &Verifier, token: &str) -> String {
    match check(v, token).await {
        Err(AuthError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

pub(super) fn config(secret: bool, jwks_url: Option<String>) -> AuthConfig {
    let jwt_secret = secret.then(|| String::from_utf8(SECRET.to_vec()).unwrap());
    AuthConfig { jwt_secret, jwks_url, ..AuthConfig::default() }
}

pub(super) async fn verifier(secret: bool, jwks_url: Option<String>) -> anyhow::Result<Verifier> {
    Verifier::from_config(&config(secret, jwks_url)).await
}

pub(super) async fn jwks_verifier() -> Verifier {
    verifier(false, Some(format!("{KEYS}/jwks.json"))).await.unwrap()
}

#[tokio::test]
async fn hs256_minted_token_yields_principal() {
    let v = Verifier::hs256(SECRET);
    let scopes = ["audit:read", "audit:write"];
    let token = mint_hs256(SECRET, "svc-a", &scopes, Some("org-1"), MINUTE).unwrap();
    let p = check(&v, &token).await.unwrap();
    assert_eq!((p.subject.as_str(), p.org_id.as_ref().map(OrgId::as_str)), ("svc-a", Some("org-1")));
    assert!(p.has_scope("audit:read") && p.has_scope("audit:write"));
    assert_eq!(p.scopes().len(), 2);
    let platform = mint_hs256(SECRET, "ops", &[], None, MINUTE).unwrap();
    assert_eq!(check(&v, &platform).await.unwrap().org_id, None);
    assert!(mint_hs256(SECRET, "x", &["a b"], None, MINUTE).is_err());
    assert!(mint_hs256(SECRET, "x", &[], Some(""), MINUTE).is_err());
    // An empty demo secret must not turn into a key anyone can sign with.
    let empty = sign(Algorithm::HS256, None, &EncodingKey::from_secret(b""), &valid());
    assert_eq!(refusal(&Verifier::hs256(b""), &empty).await, NOT_ALLOWED);
}

#[tokio::test]
async fn time_claims_are_enforced_with_leeway() {
    let v = Verifier::hs256(SECRET);
    let expired = hs(&json!({"exp": now() - LEEWAY_SECS - 60}));
    assert_eq!(refusal(&v, &expired).await, "token expired");
    assert!(check(&v, &hs(&json!({"exp": now() - 5}))).await.is_ok());
    let early = hs(&json!({"exp": now() + 600, "nbf": now() + 300}));
    assert_eq!(refusal(&v, &early).await, "token not yet valid");
    let no_exp = hs(&json!({"sub": "x"}));
    assert_eq!(refusal(&v, &no_exp).await, "missing exp claim");
}

#[tokio::test]
async fn wrong_secret_is_a_bad_signature() {
    let key = EncodingKey::from_secret(b"some other secret");
    let token = sign(Algorithm::HS256, None, &key, &valid());
    assert_eq!(refusal(&Verifier::hs256(SECRET), &token).await, "bad signature");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!("{}.{}.", part(json!({"alg": "none", "typ": "JWT"})), part(valid()));
    assert_eq!(refusal(&Verifier::hs256(SECRET), &token).await, NOT_ALLOWED);
    assert_eq!(refusal(&jwks_verifier().await, &token).await, NOT_ALLOWED);
}

#[tokio::test]
async fn algorithms_outside_the_configured_keys_are_refused() {
    let hs_only = Verifier::hs256(SECRET);
    let hs384 = sign(Algorithm::HS384, None, &EncodingKey::from_secret(SECRET), &valid());
    assert_eq!(refusal(&hs_only, &hs384).await, NOT_ALLOWED);
    assert_eq!(refusal(&hs_only, &pem("rsa.pem", Some("rsa-1"), &valid())).await, NOT_ALLOWED);

    let jwks_only = jwks_verifier().await;
    assert_eq!(refusal(&jwks_only, &hs(&valid())).await, NOT_ALLOWED);
    // Classic confusion: HMAC keyed with the public keys the verifier holds.
    let public = EncodingKey::from_secret(&fixture("jwks.json"));
    let confused = sign(Algorithm::HS256, Some("rsa-1"), &public, &valid());
    assert_eq!(refusal(&jwks_only, &confused).await, NOT_ALLOWED);
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let token = sign(alg, Some("rsa-1"), &rsa(), &valid());
        assert_eq!(refusal(&jwks_only, &token).await, NOT_ALLOWED, "{alg:?}");
    }
    let kid_of_other_alg = pem("ec.pem", Some("rsa-1"), &valid());
    assert_eq!(refusal(&jwks_only, &kid_of_other_alg).await, NOT_ALLOWED);
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let (issuer, audience) = (Some("https://idp.test".into()), Some("audit".into()));
    let cfg = AuthConfig { issuer, audience, ..config(true, None) };
    let v = Verifier::from_config(&cfg).await.unwrap();
    let with = |iss: Value, aud: Value| hs(&json!({"exp": now() + 60, "iss": iss, "aud": aud}));
    let good = with(json!("https://idp.test"), json!(["other", "audit"]));
    assert!(check(&v, &good).await.is_ok());
    let bad_iss = with(json!("https://evil.test"), json!("audit"));
    assert_eq!(refusal(&v, &bad_iss).await, "wrong issuer");
    let no_iss = hs(&json!({"exp": now() + 60, "aud": "audit"}));
    assert_eq!(refusal(&v, &no_iss).await, "wrong issuer");
    let bad_aud = with(json!("https://idp.test"), json!("other"));
    assert_eq!(refusal(&v, &bad_aud).await, "wrong audience");
    let no_aud = hs(&json!({"exp": now() + 60, "iss": "https://idp.test"}));
    assert_eq!(refusal(&v, &no_aud).await, "wrong audience");

    let unconfigured = Verifier::hs256(SECRET);
    assert!(check(&unconfigured, &with(json!("any"), json!(["x", "y"]))).await.is_ok());
}

#[tokio::test]
async fn scopes_match_whole_words_and_merge_scope_with_scp() {
    let v = Verifier::hs256(SECRET);
    let near = hs(&json!({"exp": now() + 60, "scope": "audit:readx audit:writ"}));
    let p = check(&v, &near).await.unwrap();
    assert!(!p.has_scope("audit:read") && !p.has_scope("audit:write"));
    assert!(p.has_scope("audit:readx"));

    let scp = hs(&json!({"exp": now() + 60, "scp": ["audit:write"]}));
    assert!(check(&v, &scp).await.unwrap().has_scope("audit:write"));
    let both = hs(&json!({"exp": now() + 60, "scope": "a b", "scp": ["b", "c"]}));
    assert_eq!(check(&v, &both).await.unwrap().scopes(), ["a", "b", "c"]);
}

#[tokio::test]
async fn scope_is_delimited_by_the_ascii_space_only() {
    let v = Verifier::hs256(SECRET);
    // Unicode and ASCII whitespace other than 0x20 is part of a scope, never a delimiter.
    for glue in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '\u{2028}', '\t', '\n', '\r', '\u{b}', '\u{c}'] {
        let scope = format!("x{glue}audit:read");
        let p = check(&v, &hs(&json!({"exp": now() + 60, "scope": scope}))).await.unwrap();
        assert!(!p.has_scope("audit:read"), "{glue:?} split the scope");
        assert_eq!(p.scopes(), [scope.as_str()], "{glue:?}");
    }
    let spaced = hs(&json!({"exp": now() + 60, "scope": "  x  audit:read "}));
    assert_eq!(check(&v, &spaced).await.unwrap().scopes(), ["x", "audit:read"]);
}

#[tokio::test]
async fn org_id_and_sub_claims() {
    let v = Verifier::hs256(SECRET);
    let p = check(&v, &hs(&json!({"exp": now() + 60}))).await.unwrap();
    assert_eq!((p.subject.as_str(), p.org_id.as_ref().map(OrgId::as_str), p.scopes().len()), ("", None, 0));
    let empty = hs(&json!({"exp": now() + 60, "org_id": ""}));
    assert_eq!(refusal(&v, &empty).await, "org_id claim must not be empty");
    // Parsed once here, so that no call past verification meets an id that is not one.
    let spaced = hs(&json!({"exp": now() + 60, "org_id": "org 1"}));
    assert_eq!(refusal(&v, &spaced).await, "org_id claim must be printable ASCII without spaces");
    let long = hs(&json!({"exp": now() + 60, "org_id": "o".repeat(129)}));
    assert_eq!(refusal(&v, &long).await, "org_id claim must be at most 128 characters");
    for odd in [json!(null), json!(7)] {
        let token = hs(&json!({"exp": now() + 60, "org_id": odd}));
        assert_eq!(refusal(&v, &token).await, "org_id claim must be a string");
    }
}

#[tokio::test]
async fn authorization_header_parsing() {
    let v = Verifier::hs256(SECRET);
    let token = hs(&valid());
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let header = format!("{scheme}  {token} ");
        assert!(v.verify_header(Some(&header)).await.is_ok(), "{scheme}");
    }
    for missing in [None, Some(""), Some("  "), Some("Bearer"), Some("Bearer  ")] {
        let result = v.verify_header(missing).await;
        assert!(matches!(result, Err(AuthError::Missing)), "{missing:?}");
    }
    for other in [format!("Basic {token}"), format!("Token {token}"), token.clone()] {
        let result = v.verify_header(Some(&other)).await;
        assert!(matches!(result, Err(AuthError::Invalid(_))), "{other}");
    }
    let huge = "x".repeat(MAX_TOKEN_BYTES + 1);
    for junk in ["abc", "a.b.c.d", "a.b.c", "e30.e30.", &huge] {
        assert_eq!(refusal(&v, junk).await, "malformed token", "{junk}");
    }
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["exp".into()]);
    let crit = jsonwebtoken::encode(&header, &valid(), &EncodingKey::from_secret(SECRET));
    assert_eq!(refusal(&v, &crit.unwrap()).await, "unsupported critical header");
}

#[tokio::test]
async fn from_config_refuses_unusable_settings() {
    assert!(Verifier::from_config(&AuthConfig::default()).await.is_err());
    let (jwt_secret, jwks_url) = (Some(" ".into()), Some("".into()));
    let blank = AuthConfig { jwt_secret, jwks_url, ..AuthConfig::default() };
    assert!(Verifier::from_config(&blank).await.is_err());
    // A zero interval would refetch the key set on every request.
    let jwks_url = Some(format!("{KEYS}/jwks.json"));
    let constant = AuthConfig { jwks_url, jwks_refresh: Duration::ZERO, ..AuthConfig::default() };
    assert!(Verifier::from_config(&constant).await.is_err());
    let not_a_set = format!("{KEYS}/rsa.pem");
    for url in ["http://idp.example/jwks", "http://127.0.0.1:1/jwks", "/nonexistent", &not_a_set] {
        assert!(verifier(false, Some(url.into())).await.is_err(), "{url}");
    }
}
