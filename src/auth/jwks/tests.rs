//! Unit tests of the JWKS source: locations, key parsing and selection, and refresh behaviour.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::auth::tests::{KEYS, check, config, fixture, hs, now, pem, refusal, valid, verifier};
use crate::auth::{LEEWAY_SECS, Verifier};

/// The fixture JWKS restricted to the given kids.
fn jwks_subset(kids: &[&str]) -> String {
    let mut set: Value = serde_json::from_slice(&fixture("jwks.json")).unwrap();
    let keys = set["keys"].as_array_mut().unwrap();
    keys.retain(|k| kids.contains(&k["kid"].as_str().unwrap()));
    set.to_string()
}

struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<(u16, String)>>,
}

impl JwksServer {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A raw HTTP/1.1 server on loopback answering every request with the current `reply`.
async fn serve(body: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (hits, reply) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new((200, body))));
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
            let (status, body) = task_reply.lock().unwrap().clone();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
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
        assert_eq!((p.subject.as_str(), p.org_id.as_deref()), (kid, Some("org-9")));
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
    let throttled = Verifier::from_config(&cfg).await.unwrap();
    let unknown = pem("rsa.pem", Some("rsa-2"), &valid());
    for _ in 0..5 {
        assert_eq!(refusal(&throttled, &unknown).await, "unknown key id");
    }
    assert_eq!(server.hits(), 1, "start-up fetch only");

    let eager = Verifier::from_config_with(&cfg, Duration::ZERO).await.unwrap();
    *server.reply.lock().unwrap() = (200, jwks_subset(&["rsa-1", "ed-1"]));
    assert!(check(&eager, &pem("ed25519.pem", Some("ed-1"), &valid())).await.is_ok());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys() {
    let server = serve(jwks_subset(&["rsa-1"])).await;
    let cfg = config(false, Some(server.url.clone()));
    let v = Verifier::from_config_with(&cfg, Duration::ZERO).await.unwrap();
    *server.reply.lock().unwrap() = (500, "oops".into());
    assert_eq!(refusal(&v, &pem("rsa.pem", Some("rsa-2"), &valid())).await, "unknown key id");
    assert_eq!(server.hits(), 2);
    assert!(check(&v, &pem("rsa.pem", Some("rsa-1"), &valid())).await.is_ok());
}
