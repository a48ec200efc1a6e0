//! Who may call: the token matrix (missing, expired, not yet valid, wrong key, `alg: none`,
//! wrong issuer or audience, garbage, query-string tokens, scopes, tenancy, JWKS keys) checked
//! alike on REST, native gRPC and gRPC-web, and proof that refused calls store nothing.

mod demo;
mod rotation;

use std::time::{SystemTime, UNIX_EPOCH};

use audit_service::auth::{AuthConfig, LEEWAY_SECS};
use audit_service::config::AuthSettings;
use audit_service::proto::audit as pb;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;

use crate::fixtures::{event, ts};
use crate::grpc_web::{self, Mode};
use crate::server::{SECRET, TestServer, authed, http1, http2, reader, stored_events, token, writer};

const RANGE: &str = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z";
const ISSUER: &str = "https://id.example";
const AUDIENCE: &str = "audit-api";
const SUMMARY_PATH: &str = "/avnology.audit.v1.AuditService/GetEventsSummary";

/// What every protocol must answer for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Unauthenticated,
    /// Refused for lack of this scope (or for naming another tenant under it).
    PermissionDenied(&'static str),
}

/// One RPC, in the forms the three protocols send it.
enum Call {
    /// GetEventsSummary over the fixed week; an empty organization names none.
    Summary(&'static str),
    BatchCreate(Vec<pb::AuditEvent>),
}

impl Call {
    fn summary_request(org: &str) -> pb::GetEventsSummaryRequest {
        pb::GetEventsSummaryRequest {
            start_time: Some(ts("2026-03-02T00:00:00Z")),
            end_time: Some(ts("2026-03-09T00:00:00Z")),
            organization_id: org.into(),
        }
    }

    fn rest(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        match self {
            Self::Summary("") => client.get(format!("{base}/v1/audit/events:summary?{RANGE}")),
            Self::Summary(org) => client.get(format!("{base}/v1/audit/events:summary?{RANGE}&organization_id={org}")),
            Self::BatchCreate(events) => {
                let body = serde_json::to_value(pb::BatchCreateEventsRequest { events: events.clone() }).unwrap();
                client.post(format!("{base}/v1/audit/events:batchCreate")).json(&body)
            }
        }
    }

    async fn grpc(&self, server: &TestServer, token: Option<&str>) -> Result<(), tonic::Status> {
        let mut client = server.grpc().await;
        match self {
            Self::Summary(org) => client.get_events_summary(request(Self::summary_request(org), token)).await.map(drop),
            Self::BatchCreate(events) => client
                .batch_create_events(request(pb::BatchCreateEventsRequest { events: events.clone() }, token))
                .await
                .map(drop),
        }
    }

    async fn grpc_web(&self, server: &TestServer, token: Option<&str>) -> Result<(), grpc_web::WebStatus> {
        let client = http1();
        match self {
            Self::Summary(org) => grpc_web::call::<_, pb::GetEventsSummaryResponse>(
                &client,
                &server.base,
                "GetEventsSummary",
                &Self::summary_request(org),
                token,
                Mode::Binary,
            )
            .await
            .map(drop),
            Self::BatchCreate(events) => grpc_web::call::<_, pb::BatchCreateEventsResponse>(
                &client,
                &server.base,
                "BatchCreateEvents",
                &pb::BatchCreateEventsRequest { events: events.clone() },
                token,
                Mode::Binary,
            )
            .await
            .map(drop),
        }
    }
}

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    match token {
        Some(token) => authed(message, token),
        None => tonic::Request::new(message),
    }
}

/// Makes `call` with `token` on REST, native gRPC and gRPC-web, and checks each answers `expect`.
async fn check(server: &TestServer, case: &str, call: &Call, token: Option<&str>, expect: Expect) {
    let mut rest = call.rest(&http1(), &server.base);
    if let Some(token) = token {
        rest = rest.bearer_auth(token);
    }
    let response = rest.send().await.expect("REST request sent");
    match expect {
        Expect::Ok => assert_eq!(response.status(), 200, "{case}: REST answered {}", response.text().await.unwrap()),
        Expect::Unauthenticated => {
            assert_rest_refusal(response, case, 401, "UNAUTHENTICATED", r#"Bearer error="invalid_token""#).await;
        }
        Expect::PermissionDenied(scope) => {
            let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
            assert_rest_refusal(response, case, 403, "PERMISSION_DENIED", &challenge).await;
        }
    }

    let grpc = call.grpc(server, token).await;
    match expect {
        Expect::Ok => assert!(grpc.is_ok(), "{case}: gRPC answered {grpc:?}"),
        Expect::Unauthenticated => assert_eq!(grpc.unwrap_err().code(), Code::Unauthenticated, "{case}: gRPC"),
        Expect::PermissionDenied(_) => assert_eq!(grpc.unwrap_err().code(), Code::PermissionDenied, "{case}: gRPC"),
    }

    let web = call.grpc_web(server, token).await;
    let want = match expect {
        Expect::Ok => {
            assert!(web.is_ok(), "{case}: gRPC-web answered {web:?}");
            return;
        }
        Expect::Unauthenticated => Code::Unauthenticated,
        Expect::PermissionDenied(_) => Code::PermissionDenied,
    };
    let status = web.expect_err(case);
    // gRPC-web carries every outcome in a 200 answer; the code is in grpc-status.
    assert_eq!((status.http_status, status.code), (200, want as i32), "{case}: gRPC-web {status:?}");
}

async fn assert_rest_refusal(response: reqwest::Response, case: &str, code: u16, status: &str, challenge: &str) {
    assert_eq!(response.status(), code, "{case}: REST status");
    assert_eq!(
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap()),
        Some(challenge),
        "{case}: REST challenge"
    );
    let json: Value = response.json().await.expect("AIP-193 JSON body");
    assert_eq!(json["error"]["code"], code, "{case}: {json}");
    assert_eq!(json["error"]["status"], status, "{case}: {json}");
    assert!(!json["error"]["message"].as_str().unwrap_or_default().is_empty(), "{case}: {json}");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
    jsonwebtoken::encode(&header, claims, key).expect("token signs")
}

/// An HS256 token over arbitrary claims, signed with the test server's secret.
fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, None, claims, &EncodingKey::from_secret(SECRET.as_bytes()))
}

/// Claims of a platform-wide reader valid for ten minutes, to be varied per case.
fn reader_claims() -> Value {
    json!({ "sub": "usr_test", "iat": now(), "exp": now() + 600, "scope": "audit:read" })
}

/// `claims` with `changes` applied; a null change removes the claim.
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A JWT that names `alg: none` and carries no signature at all.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn fixture_key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture key")
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_on_every_protocol() {
    let server = TestServer::start().await;
    let summary = Call::Summary("");
    check(&server, "valid reader (control)", &summary, Some(&reader()), Expect::Ok).await;
    // Inside the clock-skew leeway an expired token still works; the case below is beyond it.
    let barely_expired = hs256(&with(reader_claims(), json!({ "exp": now() - LEEWAY_SECS / 3 })));
    check(&server, "expired within leeway", &summary, Some(&barely_expired), Expect::Ok).await;

    let other_key = EncodingKey::from_secret(b"another-secret-that-is-long-enough-9876543210");
    let cases: Vec<(&str, String)> = vec![
        ("expired", hs256(&with(reader_claims(), json!({ "exp": now() - LEEWAY_SECS - 60 })))),
        ("not yet valid", hs256(&with(reader_claims(), json!({ "nbf": now() + 600, "exp": now() + 1200 })))),
        ("no exp claim", hs256(&with(reader_claims(), json!({ "exp": null })))),
        ("signed with another secret", sign(Algorithm::HS256, None, &reader_claims(), &other_key)),
        ("alg none", unsigned(&reader_claims())),
        ("alg none with a signature", format!("{}c2lnbmF0dXJl", unsigned(&reader_claims()))),
        ("garbage", "garbage".to_owned()),
        ("three garbage segments", "a.b.c".to_owned()),
        ("header and payload only", reader().rsplit_once('.').unwrap().0.to_owned()),
        ("tampered payload", {
            let valid = reader();
            let parts: Vec<&str> = valid.split('.').collect();
            let claims = with(reader_claims(), json!({ "scope": "audit:read audit:write" }));
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
        }),
        ("org_id null", {
            // Not through `with`, which drops null claims: an explicit null must not read as absent.
            let mut claims = reader_claims();
            claims["org_id"] = Value::Null;
            hs256(&claims)
        }),
        ("org_id empty", hs256(&with(reader_claims(), json!({ "org_id": "" })))),
    ];
    check(&server, "missing token", &summary, None, Expect::Unauthenticated).await;
    for (case, token) in &cases {
        check(&server, case, &summary, Some(token), Expect::Unauthenticated).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let server = TestServer::start_with(|config| {
        config.auth = AuthSettings::Keys(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..AuthConfig::default()
        });
    })
    .await;
    let summary = Call::Summary("");
    let good = with(reader_claims(), json!({ "iss": ISSUER, "aud": AUDIENCE }));
    check(&server, "right issuer and audience", &summary, Some(&hs256(&good)), Expect::Ok).await;
    let listed = with(good.clone(), json!({ "aud": ["other-api", AUDIENCE] }));
    check(&server, "audience among several", &summary, Some(&hs256(&listed)), Expect::Ok).await;

    let cases = [
        ("wrong issuer", with(good.clone(), json!({ "iss": "https://evil.example" }))),
        ("wrong audience", with(good.clone(), json!({ "aud": "other-api" }))),
        ("no issuer", with(good.clone(), json!({ "iss": null }))),
        ("no audience", with(good.clone(), json!({ "aud": null }))),
    ];
    for (case, claims) in &cases {
        check(&server, case, &summary, Some(&hs256(claims)), Expect::Unauthenticated).await;
    }
    // Tokens minted without iss/aud, as the default harness makes them.
    check(&server, "harness token lacks iss and aud", &summary, Some(&reader()), Expect::Unauthenticated).await;
    server.stop().await;
}

#[tokio::test]
async fn scopes_are_matched_whole_from_scope_or_scp() {
    let server = TestServer::start().await;
    let summary = Call::Summary("");
    let refused = [
        ("scope near-miss audit:readx", token(&["audit:readx"], None)),
        ("write scope only", writer()),
        ("no scope at all", token(&[], None)),
        ("scope prefix audit:rea", token(&["audit:rea"], None)),
        ("scope in other case", token(&["AUDIT:READ"], None)),
        ("scp near-miss", hs256(&with(reader_claims(), json!({ "scope": null, "scp": ["audit:readx"] })))),
    ];
    for (case, token) in &refused {
        check(&server, case, &summary, Some(token), Expect::PermissionDenied("audit:read")).await;
    }
    let scp = json!({ "sub": "usr_test", "exp": now() + 600, "scp": ["audit:read"] });
    let granted = [
        ("scp array", hs256(&scp)),
        ("scp among others", hs256(&with(scp.clone(), json!({ "scp": ["audit:write", "audit:read"] })))),
        ("scope among others", token(&["audit:write", "audit:read"], None)),
    ];
    for (case, token) in &granted {
        check(&server, case, &summary, Some(token), Expect::Ok).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn scope_is_split_on_the_ascii_space_only() {
    let server = TestServer::start().await;
    let summary = Call::Summary("");
    // RFC 6749 3.3: scopes are delimited by 0x20; any other whitespace belongs to the scope.
    for glue in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '\t', '\n'] {
        let claims = with(reader_claims(), json!({ "scope": format!("x{glue}audit:read") }));
        let case = format!("scope joined by {glue:?}");
        check(&server, &case, &summary, Some(&hs256(&claims)), Expect::PermissionDenied("audit:read")).await;
    }
    let spaced = with(reader_claims(), json!({ "scope": "x audit:read" }));
    check(&server, "scope joined by a space", &summary, Some(&hs256(&spaced)), Expect::Ok).await;
    server.stop().await;
}

#[tokio::test]
async fn org_confined_token_reads_only_its_own_organization() {
    let server = TestServer::start().await;
    let org_a = token(&["audit:read"], Some("org_a"));
    check(
        &server,
        "org_a token naming org_b",
        &Call::Summary("org_b"),
        Some(&org_a),
        Expect::PermissionDenied("audit:read"),
    )
    .await;
    check(&server, "org_a token naming org_a", &Call::Summary("org_a"), Some(&org_a), Expect::Ok).await;
    check(&server, "org_a token naming none", &Call::Summary(""), Some(&org_a), Expect::Ok).await;
    server.stop().await;
}

#[tokio::test]
async fn token_in_the_query_string_does_not_authenticate() {
    let server = TestServer::start().await;
    let token = reader();

    // REST answers 400, not 401: the gateway binds query parameters into the request message
    // before the authenticated core sees it, and `access_token` is no field of
    // GetEventsSummaryRequest, so it is refused as an unknown parameter. Either refusal is
    // right; what matters is that the token is never read from the URL.
    for client in [http1(), http2()] {
        let url = format!("{}/v1/audit/events:summary?{RANGE}&access_token={token}", server.base);
        let response = client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(matches!(status, 400 | 401), "query-string token must not authenticate; got {status}");
        let json: Value = response.json().await.unwrap();
        if status == 400 {
            assert_eq!(json["error"]["status"], "INVALID_ARGUMENT", "{json}");
            assert_eq!(json["error"]["details"][0]["fieldViolations"][0]["field"], "access_token", "{json}");
        } else {
            assert_eq!(json["error"]["status"], "UNAUTHENTICATED", "{json}");
        }
    }

    // gRPC has no query string of its own, but nothing stops a client from putting one on the
    // request path; tonic cannot send it, so the request is written by hand over h2c.
    let message = Call::summary_request("");
    let response = http2()
        .post(format!("{}{SUMMARY_PATH}?access_token={token}", server.base))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(grpc_web::frame(&message))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A refusal before the service runs is a trailers-only answer: grpc-status is a header.
    assert_eq!(response.headers().get("grpc-status").map(|v| v.to_str().unwrap()), Some("16"));

    for mode in [Mode::Binary, Mode::Text] {
        let method = format!("GetEventsSummary?access_token={token}");
        let status =
            grpc_web::call::<_, pb::GetEventsSummaryResponse>(&http1(), &server.base, &method, &message, None, mode)
                .await
                .expect_err("query-string token must not authenticate gRPC-web");
        assert_eq!((status.http_status, status.code), (200, Code::Unauthenticated as i32), "{mode:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn jwks_keys_verify_rs256_es256_and_eddsa_only() {
    let jwks = format!("{}/tests/fixtures/keys/jwks.json", env!("CARGO_MANIFEST_DIR"));
    let server = TestServer::start_with(|config| {
        config.auth = AuthSettings::Keys(AuthConfig { jwks_url: Some(jwks), ..AuthConfig::default() });
    })
    .await;
    let summary = Call::Summary("");
    let claims = reader_claims();
    let rsa = EncodingKey::from_rsa_pem(&fixture_key("rsa.pem")).unwrap();
    let ec = EncodingKey::from_ec_pem(&fixture_key("ec.pem")).unwrap();
    let ed = EncodingKey::from_ed_pem(&fixture_key("ed25519.pem")).unwrap();
    let other_rsa = EncodingKey::from_rsa_pem(&fixture_key("rsa-other.pem")).unwrap();

    let accepted = [
        ("RS256 rsa-1", sign(Algorithm::RS256, Some("rsa-1"), &claims, &rsa)),
        ("ES256 ec-1", sign(Algorithm::ES256, Some("ec-1"), &claims, &ec)),
        ("EdDSA ed-1", sign(Algorithm::EdDSA, Some("ed-1"), &claims, &ed)),
    ];
    for (case, token) in &accepted {
        check(&server, case, &summary, Some(token), Expect::Ok).await;
    }
    let refused = [
        // No shared secret is configured, so HS256 is outside the configured keys' algorithms.
        ("HS256 without a configured secret", reader()),
        ("RS256 by an unrelated key under kid rsa-1", sign(Algorithm::RS256, Some("rsa-1"), &claims, &other_rsa)),
        ("ES256 under the RSA key's kid", sign(Algorithm::ES256, Some("rsa-1"), &claims, &ec)),
        ("RS256 under an unknown kid", sign(Algorithm::RS256, Some("rsa-2"), &claims, &rsa)),
        (
            "expired RS256",
            sign(Algorithm::RS256, Some("rsa-1"), &with(claims.clone(), json!({ "exp": now() - 3600 })), &rsa),
        ),
        ("alg none", unsigned(&claims)),
    ];
    for (case, token) in &refused {
        check(&server, case, &summary, Some(token), Expect::Unauthenticated).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn refused_batches_store_nothing() {
    let server = TestServer::start().await;
    let batch = Call::BatchCreate(vec![event("w1", "org_b", "session.login", "success", "2026-03-02T10:00:00Z")]);
    let expired = hs256(&json!({ "sub": "usr_test", "exp": now() - 3600, "scope": "audit:write" }));
    check(&server, "batch without token", &batch, None, Expect::Unauthenticated).await;
    check(&server, "batch with expired writer", &batch, Some(&expired), Expect::Unauthenticated).await;
    check(
        &server,
        "batch with alg none",
        &batch,
        Some(&unsigned(&json!({ "exp": now() + 600, "scope": "audit:write" }))),
        Expect::Unauthenticated,
    )
    .await;
    check(&server, "batch with read-only token", &batch, Some(&reader()), Expect::PermissionDenied("audit:write"))
        .await;
    let org_a_writer = token(&["audit:write"], Some("org_a"));
    check(&server, "batch for another org", &batch, Some(&org_a_writer), Expect::PermissionDenied("audit:write")).await;
    // One foreign event poisons the whole batch, the org_a one included.
    let mixed = Call::BatchCreate(vec![
        event("w2", "org_a", "session.login", "success", "2026-03-02T10:00:00Z"),
        event("w3", "org_b", "session.login", "success", "2026-03-02T10:00:00Z"),
    ]);
    check(&server, "mixed-org batch", &mixed, Some(&org_a_writer), Expect::PermissionDenied("audit:write")).await;
    assert_eq!(stored_events(&server.db_path).await, 0, "a refused batch stored events");

    // Control: the same batch with the right token is stored, so the count above means something.
    let org_b_writer = token(&["audit:write"], Some("org_b"));
    let Call::BatchCreate(events) = &batch else { unreachable!() };
    let reply = server
        .grpc()
        .await
        .batch_create_events(authed(pb::BatchCreateEventsRequest { events: events.clone() }, &org_b_writer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.created_count, 1);
    assert_eq!(stored_events(&server.db_path).await, 1);
    server.stop().await;
}
