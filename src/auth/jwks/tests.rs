//! Unit tests of the JWKS source: locations, key parsing and selection, and refresh behaviour
//! against a JWKS served over loopback HTTP.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::keys::parse_set;
use super::source::cache_max_age;
use super::*;
use crate::auth::tests::{KEYS, check, config, fixture, hs, now, pem, refusal, valid, verifier};
use crate::auth::{AuthConfig, AuthError, LEEWAY_SECS, Verifier};
use crate::domain::OrgId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

/// The fixture JWKS restricted to the given kids.
fn jwks_subset(kids: &[&str]) -> String {
    let mut set: Value = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    let keys = set["keys"].as_array_mut().unwrap();
    keys.retain(|k| kids.contains(&k["kid"].as_str().unwrap()));
    set.to_string()
}

/// What the test server answers: status, body and an optional `Cache-Control` value.
type Reply = (u16, String, Option<String>);

struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
}

impl JwksServer {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn answer(&self, status: u16, body: String, cache_control: Option<&str>) {
        *self.reply.lock().unwrap() = (status, body, cache_control.map(str::to_owned));
    }
}

/// Far more than any wait below needs, even on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; panics with `what` at the deadline.
async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A verifier of `jwks_url` with the given refresh interval and grace, and unknown-kid
/// refetches practically off, so that only the schedule fetches.
async fn scheduled(jwks_url: &str, refresh: Duration, grace: Duration) -> Verifier {
    let cfg = AuthConfig { jwks_refresh: refresh, jwks_grace: grace, ..config(true, Some(jwks_url.to_owned())) };
    Verifier::from_config_with(&cfg, Duration::from_secs(3600)).await.unwrap()
}

/// A raw HTTP/1.1 server on loopback answering every request with the current `reply`.
async fn serve(body: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (hits, reply) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new((200, body, None))));
    let (task_hits, task_reply) = (Arc::clone(&hits), Arc::clone(&reply));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (mut request, mut buf) = (Vec::new(), [0u8; 1024]);
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            task_hits.fetch_add(1, Ordering::SeqCst);
            let (status, body, cache_control) = task_reply.lock().unwrap().clone();
            let cache_control = cache_control.map(|c| format!("Cache-Control: {c}\r\n")).unwrap_or_default();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{cache_control}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    JwksServer { url, hits, reply }
}

#[test]
fn locations_are_classified() {
    assert!(matches!(parse_location("keys/jwks.json"), Ok(Source::File(_))));
    let file = parse_location("file:///etc/jwks.json");
    assert!(matches!(file, Ok(Source::File(p)) if p.as_os_str() == "/etc/jwks.json"));
    for url in ["https://idp.example/jwks", "http://127.0.0.1:8080/jwks", "http://[::1]:80/j"] {
        assert!(matches!(parse_location(url), Ok(Source::Url(_))), "{url}");
    }
    for url in ["http://idp.example/jwks", "http://localhost/jwks", "ftp://idp.example/jwks"] {
        assert!(parse_location(url).is_err(), "{url}");
    }
}

#[test]
fn unusable_keys_are_skipped_and_an_empty_result_is_an_error() {
    let set = |keys: Value| parse_set(json!({ "keys": keys }).to_string().as_bytes());
    let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
    let unusable = [
        json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "alg": "ES384", "x": "AA", "y": "AA"}),
        json!({"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": ed["x"]}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
        json!({"kty": "unknown"}),
    ];
    assert!(set(json!(unusable)).is_err());
    assert!(parse_set(b"[]").is_err());
    // An alg-less key takes the algorithm its type implies; the unusable ones are dropped.
    let mixed = set(json!([unusable[0], ed])).unwrap();
    assert_eq!(mixed.0.len(), 1);
    assert_eq!(mixed.0[0].alg, Algorithm::EdDSA);
}

#[tokio::test]
async fn jwks_keys_verify_by_kid_and_without_kid() {
    let v = verifier(false, Some(format!("{KEYS}/jwks.json"))).await.unwrap();
    for (file, kid) in [("rsa.pem", "rsa-1"), ("ec.pem", "ec-1"), ("ed25519.pem", "ed-1")] {
        let claims = json!({"sub": kid, "exp": now() + 60, "org_id": "org-9"});
        let p = check(&v, &pem(file, Some(kid), &claims)).await.unwrap();
        assert_eq!((p.subject.as_str(), p.org_id.as_ref().map(OrgId::as_str)), (kid, Some("org-9")));
        // One key per algorithm in the set, so a kid-less token is unambiguous.
        assert!(check(&v, &pem(file, None, &claims)).await.is_ok(), "{file} without kid");
    }
}

#[tokio::test]
async fn unknown_kid_and_foreign_key_are_refused() {
    let v = verifier(false, Some(format!("{KEYS}/jwks.json"))).await.unwrap();
    let unknown = pem("rsa.pem", Some("rsa-2"), &valid());
    assert_eq!(refusal(&v, &unknown).await, "unknown key id");
    let forged = pem("rsa-other.pem", Some("rsa-1"), &valid());
    assert_eq!(refusal(&v, &forged).await, "bad signature");
}

#[tokio::test]
async fn ambiguous_kidless_token_is_refused() {
    let mut set: Value = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    let mut twin = set["keys"][0].clone();
    twin["kid"] = json!("rsa-1b");
    set["keys"].as_array_mut().unwrap().push(twin);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, set.to_string()).unwrap();
    let v = verifier(false, Some(path.display().to_string())).await.unwrap();
    assert_eq!(refusal(&v, &pem("rsa.pem", None, &valid())).await, "unknown key id");
    assert!(check(&v, &pem("rsa.pem", Some("rsa-1b"), &valid())).await.is_ok());
}

#[tokio::test]
async fn secret_and_jwks_work_together() {
    let v = verifier(true, Some(format!("file://{KEYS}/jwks.json"))).await.unwrap();
    assert!(check(&v, &hs(&valid())).await.is_ok());
    assert!(check(&v, &pem("rsa.pem", Some("rsa-1"), &valid())).await.is_ok());
    assert!(!format!("{v:?}").contains("unit-test-secret"));
    let expired = json!({"exp": now() - LEEWAY_SECS - 60});
    assert_eq!(refusal(&v, &pem("ec.pem", Some("ec-1"), &expired)).await, "token expired");
}

#[tokio::test]
async fn jwks_over_loopback_http() {
    let server = serve(String::from_utf8(fixture("jwks.json")).unwrap()).await;
    let v = verifier(false, Some(server.url.clone())).await.unwrap();
    assert!(check(&v, &pem("ec.pem", Some("ec-1"), &valid())).await.is_ok());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_refreshes_at_most_once_per_interval() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let cfg = config(false, Some(server.url.clone()));
    let throttled = Verifier::from_config_with(&cfg, Duration::from_secs(3600)).await.unwrap();
    let unknown = pem("rsa.pem", Some("rsa-2"), &valid());
    for _ in 0..5 {
        assert_eq!(refusal(&throttled, &unknown).await, "unknown key id");
    }
    assert_eq!(server.hits(), 1, "start-up fetch only");

    // A key published after start works on its first use.
    let eager = Verifier::from_config_with(&cfg, Duration::ZERO).await.unwrap();
    server.answer(200, jwks_subset(&["rsa-1", "ed-1"]), None);
    assert!(check(&eager, &pem("ed25519.pem", Some("ed-1"), &valid())).await.is_ok());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let cfg = config(false, Some(server.url.clone()));
    let v = Verifier::from_config_with(&cfg, Duration::ZERO).await.unwrap();
    server.answer(500, "oops".into(), None);
    assert_eq!(refusal(&v, &pem("rsa.pem", Some("rsa-2"), &valid())).await, "unknown key id");
    assert_eq!(server.hits(), 2);
    assert!(check(&v, &pem("rsa.pem", Some("rsa-1"), &valid())).await.is_ok());
}

#[test]
fn max_age_is_read_from_cache_control_and_clamped() {
    let headers = |values: &[&str]| {
        let mut map = reqwest::header::HeaderMap::new();
        for value in values {
            map.append(reqwest::header::CACHE_CONTROL, value.parse().unwrap());
        }
        cache_max_age(&map)
    };
    let secs = Duration::from_secs;
    assert_eq!(headers(&["public, max-age=120"]), Some(secs(120)));
    assert_eq!(headers(&["Max-Age = \"90\", must-revalidate"]), Some(secs(90)));
    assert_eq!(headers(&["max-age=600", "max-age=300"]), Some(secs(300)), "the shortest lifetime wins");
    assert_eq!(headers(&["max-age=600, no-cache"]), Some(secs(0)));
    assert_eq!(headers(&["no-store"]), Some(secs(0)));
    assert_eq!(headers(&["max-age=99999999999999999999999"]), Some(secs(u64::MAX)));
    for ignored in [&[][..], &["public"], &["max-age=-5"], &["max-age=abc"], &["max-age="], &["s-maxage=5"]] {
        assert_eq!(headers(ignored), None, "{ignored:?}");
    }

    let configured = secs(300);
    assert_eq!(refresh_interval(None, configured), configured);
    for (max_age, interval) in [(0, 60), (5, 60), (60, 60), (120, 120), (3600, 3600), (7200, 3600), (u64::MAX, 3600)] {
        assert_eq!(refresh_interval(Some(secs(max_age)), configured), secs(interval), "max-age {max_age}");
    }
    // A file's interval, or a URL's without max-age, is the setting itself, however short.
    assert_eq!(refresh_interval(None, secs(1)), secs(1));
}

#[tokio::test]
async fn served_max_age_decides_the_refresh_time_within_bounds() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let timing =
        Timing { refresh: Duration::from_secs(1), grace: DEFAULT_GRACE, unknown_kid_interval: UNKNOWN_KID_INTERVAL };
    for (cache_control, expected) in
        [(Some("public, max-age=120"), 120), (Some("max-age=5"), 60), (Some("max-age=86400"), 3600), (None, 1)]
    {
        server.answer(200, jwks_subset(&["rsa-1"]), cache_control);
        let before = Instant::now();
        let jwks = Jwks::load(&server.url, timing).await.unwrap();
        let after = Instant::now();
        let (refresh_at, trusted_until) = jwks.schedule();
        let interval = Duration::from_secs(expected);
        assert!(before + interval <= refresh_at && refresh_at <= after + interval, "{cache_control:?}");
        assert_eq!(trusted_until - refresh_at, DEFAULT_GRACE, "{cache_control:?}");
    }
}

#[tokio::test]
async fn key_withdrawn_from_the_served_set_is_refused_after_the_refresh() {
    let server = serve(jwks_subset(&["rsa-1", "ec-1"])).await;
    let v = scheduled(&server.url, Duration::from_secs(1), DEFAULT_GRACE).await;
    let withdrawn = pem("rsa.pem", Some("rsa-1"), &valid());
    assert!(check(&v, &withdrawn).await.is_ok());
    server.answer(200, jwks_subset(&["ec-1"]), None);
    eventually("the withdrawn key is refused", || async { check(&v, &withdrawn).await.is_err() }).await;
    assert!(server.hits() >= 2, "refused only after a refetch");
    // The set has no RS256 key left, which is what the refusal names, with a kid or without.
    assert_eq!(refusal(&v, &withdrawn).await, "algorithm not allowed");
    assert_eq!(refusal(&v, &pem("rsa.pem", None, &valid())).await, "algorithm not allowed");
    assert!(check(&v, &pem("ec.pem", Some("ec-1"), &valid())).await.is_ok(), "the remaining key still works");
}

#[tokio::test]
async fn failed_refetches_keep_the_last_good_set_within_the_grace() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let v = scheduled(&server.url, Duration::from_secs(1), Duration::from_secs(3600)).await;
    let token = pem("rsa.pem", Some("rsa-1"), &valid());
    server.answer(503, "down".into(), None);
    // Two failed scheduled refetches, the token accepted throughout.
    eventually("two refetches failed", || async {
        assert!(check(&v, &token).await.is_ok(), "refused within the grace");
        server.hits() >= 3
    })
    .await;
    assert!(check(&v, &token).await.is_ok());
}

#[tokio::test]
async fn past_the_grace_jwks_tokens_are_refused_until_a_refetch_succeeds() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let v = scheduled(&server.url, Duration::from_secs(1), Duration::ZERO).await;
    let token = pem("rsa.pem", Some("rsa-1"), &valid());
    assert!(check(&v, &token).await.is_ok());
    server.answer(500, "oops".into(), None);
    eventually("jwks tokens are refused", || async {
        matches!(check(&v, &token).await, Err(AuthError::Invalid(reason)) if reason == "signing keys unavailable")
    })
    .await;
    // Kid-less tokens fail closed too, and the shared secret, which needs no fetch, keeps working.
    assert_eq!(refusal(&v, &pem("rsa.pem", None, &valid())).await, "signing keys unavailable");
    assert!(check(&v, &hs(&valid())).await.is_ok());

    server.answer(200, jwks_subset(&["rsa-1"]), None);
    eventually("jwks tokens are accepted again", || async { check(&v, &token).await.is_ok() }).await;
}

#[tokio::test]
async fn a_due_refresh_is_one_fetch_however_many_requests_wait() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let v = scheduled(&server.url, Duration::from_secs(1), DEFAULT_GRACE).await;
    let jwks = v.inner.jwks.as_ref().unwrap();
    eventually("the set is due", || async { jwks.schedule().0 <= Instant::now() }).await;
    // The refetched set is good for an hour, so the burst below cannot make it due again.
    server.answer(200, jwks_subset(&["rsa-1"]), Some("max-age=3600"));
    let token = pem("rsa.pem", Some("rsa-1"), &valid());
    let checks = (0..32).map(|_| {
        let (v, token) = (v.clone(), token.clone());
        tokio::spawn(async move { check(&v, &token).await.is_ok() })
    });
    for accepted in futures_util::future::join_all(checks).await {
        assert!(accepted.unwrap());
    }
    assert_eq!(server.hits(), 2, "start-up fetch and one refresh");
}
