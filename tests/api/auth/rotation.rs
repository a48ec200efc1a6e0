//! Key rotation at the JWKS: a key withdrawn from the set stops verifying once the set is
//! refetched, on every protocol, while the keys that remain keep working.

use std::time::{Duration, Instant};

use audit_service::auth::AuthConfig;
use audit_service::config::AuthSettings;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

use super::{Call, Expect, check, fixture_key, reader_claims, sign};
use crate::server::{TestServer, http1};

/// Replaces the file in one step, so the server never reads half a key set.
fn publish(path: &std::path::Path, set: &Value) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, set.to_string()).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test]
async fn key_removed_from_a_jwks_file_is_refused_after_the_refresh_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let mut set: Value = serde_json::from_slice(&fixture_key("jwks.json")).unwrap();
    publish(&path, &set);
    let jwks_url = Some(path.display().to_string());
    let server = TestServer::start_with(|config| {
        let keys = AuthConfig { jwks_url, jwks_refresh: Duration::from_secs(1), ..AuthConfig::default() };
        config.auth = AuthSettings::Keys(keys);
    })
    .await;
    let summary = Call::Summary("");
    let rsa = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &reader_claims(),
        &EncodingKey::from_rsa_pem(&fixture_key("rsa.pem")).unwrap(),
    );
    let ec = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &reader_claims(),
        &EncodingKey::from_ec_pem(&fixture_key("ec.pem")).unwrap(),
    );
    check(&server, "rsa-1 while published", &summary, Some(&rsa), Expect::Ok).await;

    set["keys"].as_array_mut().unwrap().retain(|key| key["kid"] != "rsa-1");
    publish(&path, &set);
    // No new kid is ever presented, so only the scheduled refetch can notice the withdrawal.
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!(
        "{}/v1/audit/events:summary?start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z",
        server.base
    );
    loop {
        let status = http1().get(&url).bearer_auth(&rsa).send().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "until the refetch the key is still trusted");
        assert!(Instant::now() < deadline, "the withdrawn key was still accepted after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(&server, "rsa-1 after its withdrawal", &summary, Some(&rsa), Expect::Unauthenticated).await;
    check(&server, "ec-1, still published", &summary, Some(&ec), Expect::Ok).await;
    server.stop().await;
}
