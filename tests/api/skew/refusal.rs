//! The client side of the future-bound tests: events dated relative to the server's
//! clock, sent over REST and gRPC, and the check that a batch is refused whole.
//! Shared by the api and api_env targets.

use std::time::{SystemTime, UNIX_EPOCH};

use audit_service::proto::audit as pb;
use tonic_types::StatusExt;

use crate::fixtures::event;
use crate::server::{TestServer, authed, buckets, http1, reader, rest_summary, writer};

pub const HOUR: i64 = 3600;

/// The server's clock plus `offset_secs`, as RFC 3339.
pub fn at(offset_secs: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    audit_service::rfc3339::format(&pbjson_types::Timestamp { seconds: now + offset_secs, nanos: 0 })
}

pub fn login_in(id: &str, offset_secs: i64) -> pb::AuditEvent {
    event(id, "org_a", "session.login", "success", &at(offset_secs))
}

pub async fn grpc_create(server: &TestServer, events: Vec<pb::AuditEvent>) -> Result<i32, tonic::Status> {
    let request = authed(pb::BatchCreateEventsRequest { events }, &writer());
    Ok(server.grpc().await.batch_create_events(request).await?.into_inner().created_count)
}

/// The REST answer's status and its JSON body.
pub async fn rest_create(server: &TestServer, events: &[pb::AuditEvent]) -> (u16, serde_json::Value) {
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "timestamp": audit_service::rfc3339::format(e.timestamp.as_ref().unwrap()),
                "organization_id": e.organization_id,
                "action": e.action,
                "result": e.result,
            })
        })
        .collect();
    let response = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(writer())
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .expect("request sent");
    (response.status().as_u16(), response.json().await.expect("JSON body"))
}

/// The platform-wide summary of the day either side of now, which holds every
/// event these tests send.
pub async fn around_now(server: &TestServer) -> Vec<(String, i64, i64)> {
    let query = format!("start_time={}&end_time={}", at(-24 * HOUR), at(24 * HOUR));
    let response = rest_summary(&http1(), &server.base, &query, &reader()).await;
    assert_eq!(response.status(), 200);
    buckets(&response.json().await.unwrap())
}

/// Sends `events` over gRPC and over REST, expecting each refused and naming
/// exactly `field`; the summary must not move.
pub async fn assert_refused(server: &TestServer, events: Vec<pb::AuditEvent>, field: &str) {
    let before = around_now(server).await;
    let status = grpc_create(server, events.clone()).await.expect_err("gRPC refuses");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let violations = status.get_details_bad_request().expect("BadRequest details").field_violations;
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, [field], "{status:?}");
    assert!(violations[0].description.contains("after the server's clock"), "{violations:?}");
    assert!(status.message().contains("nothing stored"), "{status:?}");

    let (code, json) = rest_create(server, &events).await;
    assert_eq!(code, 400, "{json}");
    assert_eq!(json["error"]["status"], "INVALID_ARGUMENT", "{json}");
    let rest_fields: Vec<_> = json["error"]["details"][0]["fieldViolations"]
        .as_array()
        .expect("fieldViolations")
        .iter()
        .map(|v| v["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest_fields, [field], "{json}");
    assert_eq!(around_now(server).await, before, "nothing stored");
}
