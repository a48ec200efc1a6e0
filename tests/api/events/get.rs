//! GetEvent: the event exactly as the contract shows it on every protocol, another
//! organization's event answered exactly as a missing one, the platform-wide caller
//! whose id several organizations hold, and each bad input refused clearly.

use audit_service::proto::audit as pb;
use serde_json::json;

use super::{PROTOCOLS, Protocol, fixture, get, rest_get, server_with_fixture};
use crate::fixtures::ts;
use crate::server::{TestServer, reader, stored_events, token, writer};

fn request(id: &str, org: &str) -> pb::GetEventRequest {
    pb::GetEventRequest { id: id.into(), organization_id: org.into() }
}

/// The contract's example event, as sent.
fn example() -> pb::AuditEvent {
    pb::AuditEvent {
        id: "aud_01H7X3K9Q1".into(),
        timestamp: Some(ts("2026-04-17T14:34:56.789+02:00")),
        organization_id: "org_acme".into(),
        action: "session.login.failed".into(),
        actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_4f18acec".into() }),
        target: Some(pb::Target { r#type: "session".into(), id: "ses_2b7".into() }),
        result: "failure".into(),
        ip: "198.51.100.42".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
        details: Some(serde_json::from_str(r#"{"method":"password"}"#).unwrap()),
        log_index: 0,
    }
}

#[tokio::test]
async fn get_event_reads_the_event_as_the_contract_shows_it_on_every_protocol() {
    let server = TestServer::start().await;
    let bare = pb::AuditEvent {
        id: "aud_bare".into(),
        timestamp: Some(ts("2026-04-17T12:00:00.000001Z")),
        organization_id: "org_bare".into(),
        action: "user.created".into(),
        actor: Some(pb::Actor { r#type: "service".into(), id: "svc_1".into() }),
        result: "success".into(),
        ..Default::default()
    };
    server.seed(vec![example(), bare.clone()]).await;

    let (status, body) = rest_get(&server, "/v1/audit/events/aud_01H7X3K9Q1?organization_id=org_acme", &reader()).await;
    assert_eq!(status, 200, "{body}");
    let expected = json!({
        "id": "aud_01H7X3K9Q1", "timestamp": "2026-04-17T12:34:56.789Z", "organization_id": "org_acme",
        "action": "session.login.failed", "actor": { "type": "identity", "id": "usr_4f18acec" },
        "target": { "type": "session", "id": "ses_2b7" }, "result": "failure", "ip": "198.51.100.42",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "details": { "method": "password" }, "log_index": 0
    });
    assert_eq!(body, expected);
    assert!(body["log_index"].is_u64(), "log_index is a JSON number");

    // Empty optional fields are left out; log_index is written even at 0; the
    // timestamp keeps its microseconds.
    let (status, body) = rest_get(&server, "/v1/audit/events/aud_bare", &reader()).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "timestamp", "organization_id", "action", "actor", "result", "log_index"]);
    assert_eq!(
        (body["timestamp"].as_str(), body["log_index"].as_u64()),
        (Some("2026-04-17T12:00:00.000001Z"), Some(0))
    );

    // The same event on every protocol, the REST JSON read back included.
    let stored = pb::AuditEvent { timestamp: Some(ts("2026-04-17T12:34:56.789Z")), ..example() };
    for protocol in PROTOCOLS {
        let got = get(&server, protocol, request("aud_01H7X3K9Q1", "org_acme"), &reader()).await;
        assert_eq!(got, Ok(stored.clone()), "{protocol:?}");
        assert_eq!(get(&server, protocol, request("aud_bare", ""), &reader()).await, Ok(bare.clone()), "{protocol:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn another_organizations_event_is_not_found_exactly_as_a_missing_one() {
    let server = server_with_fixture().await;
    let org_b = token(&["audit:read"], Some("org_b"));
    for protocol in PROTOCOLS {
        let missing = get(&server, protocol, request("no_such_event", ""), &org_b).await.unwrap_err();
        assert_eq!(missing.status, "NOT_FOUND", "{protocol:?}");
        // org_a's own event, asked without and with its organization, by org_b's token.
        for asked in [request("a_user", ""), request("a_user", "org_a"), request("no_such_event", "org_a")] {
            let foreign = get(&server, protocol, asked.clone(), &org_b).await.unwrap_err();
            assert_eq!(foreign, missing, "{protocol:?} {asked:?}");
        }
        // Its own event with the same token, and org_a's with org_a's.
        assert_eq!(get(&server, protocol, request("b_user", ""), &org_b).await.unwrap().id, "b_user");
        let org_a = token(&["audit:read"], Some("org_a"));
        assert_eq!(get(&server, protocol, request("a_user", ""), &org_a).await.unwrap().organization_id, "org_a");
    }
    // The REST bodies are byte for byte the same.
    let body = |path: &'static str| {
        let org_b = org_b.clone();
        let base = server.base.clone();
        async move {
            let response = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(org_b).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    };
    assert_eq!(body("/v1/audit/events/a_user").await, body("/v1/audit/events/no_such_event").await);
    server.stop().await;
}

#[tokio::test]
async fn a_platform_wide_caller_names_the_organization_when_several_hold_the_id() {
    let server = server_with_fixture().await;
    for protocol in PROTOCOLS {
        let several = get(&server, protocol, request("shared", ""), &reader()).await.unwrap_err();
        assert_eq!((several.status.as_str(), several.field()), ("INVALID_ARGUMENT", "organization_id"), "{protocol:?}");
        for org in ["org_a", "org_b"] {
            let one = get(&server, protocol, request("shared", org), &reader()).await.unwrap();
            assert_eq!((one.id.as_str(), one.organization_id.as_str()), ("shared", org), "{protocol:?}");
        }
        // An id one organization holds needs no organization.
        assert_eq!(get(&server, protocol, request("b_user", ""), &reader()).await.unwrap().organization_id, "org_b");
        let elsewhere = get(&server, protocol, request("b_user", "org_a"), &reader()).await.unwrap_err();
        assert_eq!(elsewhere.status, "NOT_FOUND", "{protocol:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn each_bad_get_input_is_refused_clearly_and_changes_nothing() {
    let server = server_with_fixture().await;
    let before = stored_events(&server.db_path).await;
    for (path, field) in [
        (format!("/v1/audit/events/{}", "x".repeat(129)), "id"),
        ("/v1/audit/events/a%0Ab".to_owned(), "id"),
        ("/v1/audit/events/a_user?organization_id=org%20a".to_owned(), "organization_id"),
        ("/v1/audit/events/a_user?organization_id=".to_owned() + &"o".repeat(129), "organization_id"),
        ("/v1/audit/events/a_user?id=other".to_owned(), "id"),
        ("/v1/audit/events/a_user?colour=red".to_owned(), "colour"),
    ] {
        let (status, body) = rest_get(&server, &path, &reader()).await;
        let refusal = super::refusal_of(&body);
        assert_eq!((status, refusal.status.as_str()), (400, "INVALID_ARGUMENT"), "{path}: {body}");
        assert_eq!(refusal.field(), field, "{path}: {body}");
        assert!(refusal.message.starts_with(field), "{path}: {body}");
    }
    for protocol in [Protocol::Grpc, Protocol::WebBinary] {
        let empty = get(&server, protocol, request("", ""), &reader()).await.unwrap_err();
        assert_eq!((empty.status.as_str(), empty.field()), ("INVALID_ARGUMENT", "id"), "{protocol:?}");
    }
    let (status, _) = rest_get(&server, "/v1/audit/events/a_user", &writer()).await;
    assert_eq!(status, 403, "audit:write does not read");
    let anonymous = reqwest::Client::new().get(format!("{}/v1/audit/events/a_user", server.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(stored_events(&server.db_path).await, before, "reads change nothing");
    assert_eq!(before, fixture().len() as i64);
    server.stop().await;
}
