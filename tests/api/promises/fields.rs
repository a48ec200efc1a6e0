//! The field bounds of a batch, at their exact boundaries over REST and gRPC: at the
//! limit accepted, one past it refused naming `events[0].field`, nothing stored;
//! and a batch with many invalid events names the first 20, in order.

use std::time::Duration;

use audit_service::proto::audit as pb;
use pbjson_types::{Struct, Value, value::Kind};
use tonic::Code;
use tonic_types::StatusExt;

use crate::fixtures::{event, ts};
use crate::server::{TestServer, authed, http1, stored_events, writer};

const BATCH_PATH: &str = "/v1/audit/events:batchCreate";

fn valid(id: &str) -> pb::AuditEvent {
    event(id, "org_a", "session.login", "success", "2026-03-02T10:00:00Z")
}

/// `details` whose JSON spelling, `{"k":"xxx…"}`, is exactly `bytes` long.
fn details_of(bytes: usize) -> Option<Struct> {
    let text = "x".repeat(bytes - r#"{"k":""}"#.len());
    let value = Value { kind: Some(Kind::StringValue(text)) };
    Some(Struct { fields: [("k".to_owned(), value)].into_iter().collect() })
}

/// Sets one field of an event to a value `len` bytes long (or to a timestamp).
type Edit = fn(&mut pb::AuditEvent, usize);

/// Each bounded field: its name, its limit, and how to set it to a given length.
fn bounded_fields() -> Vec<(&'static str, usize, Edit)> {
    vec![
        ("actor.type", 256, |e, n| e.actor.as_mut().unwrap().r#type = "a".repeat(n)),
        ("actor.id", 256, |e, n| e.actor.as_mut().unwrap().id = "a".repeat(n)),
        ("target.type", 256, |e, n| e.target.as_mut().unwrap().r#type = "a".repeat(n)),
        ("target.id", 256, |e, n| e.target.as_mut().unwrap().id = "a".repeat(n)),
        ("user_agent", 1024, |e, n| e.user_agent = "a".repeat(n)),
        ("details", 16 * 1024, |e, n| e.details = details_of(n)),
    ]
}

/// `(field, accepted event, refused event)` for every bound.
fn boundaries() -> Vec<(&'static str, pb::AuditEvent, pb::AuditEvent)> {
    let mut cases: Vec<_> = bounded_fields()
        .into_iter()
        .map(|(field, limit, edit)| {
            let (mut at, mut over) = (valid(&format!("{field}-at")), valid(&format!("{field}-over")));
            edit(&mut at, limit);
            edit(&mut over, limit + 1);
            (field, at, over)
        })
        .collect();
    let dated = |id: &str, at: &str| pb::AuditEvent { timestamp: Some(ts(at)), ..valid(id) };
    cases.push((
        "timestamp",
        dated("earliest-at", "1970-01-01T00:00:00Z"),
        dated("earliest-over", "1969-12-31T23:59:59.999999999Z"),
    ));
    cases.push((
        "timestamp",
        dated("latest-at", "2199-12-31T23:59:59.999999999Z"),
        dated("latest-over", "2200-01-01T00:00:00Z"),
    ));
    cases
}

fn batch(events: Vec<pb::AuditEvent>) -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest { events }
}

async fn rest_batch(server: &TestServer, request: &pb::BatchCreateEventsRequest) -> (u16, serde_json::Value) {
    let response = http1()
        .post(format!("{}{BATCH_PATH}", server.base))
        .bearer_auth(writer())
        .header("content-type", "application/json")
        .body(serde_json::to_string(request).unwrap())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.expect("a JSON body"))
}

fn rest_violations(json: &serde_json::Value) -> Vec<String> {
    let violations = json["error"]["details"][0]["fieldViolations"].as_array().expect("fieldViolations");
    violations.iter().map(|v| v["field"].as_str().unwrap().to_owned()).collect()
}

fn grpc_violations(status: &tonic::Status) -> Vec<String> {
    let bad_request = status.get_details_bad_request().expect("a BadRequest detail");
    bad_request.field_violations.into_iter().map(|v| v.field).collect()
}

#[tokio::test]
async fn each_bounded_field_is_accepted_at_its_limit_and_refused_one_past_it() {
    // Dates up to 2200 are reachable only with a skew allowance that far ahead.
    let server = TestServer::start_with(|c| c.max_future_skew = Duration::from_secs(200 * 366 * 86_400)).await;
    let mut stored = 0;
    for (field, at, over) in boundaries() {
        let named = format!("events[0].{field}");
        let status =
            server.grpc().await.batch_create_events(authed(batch(vec![over.clone()]), &writer())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{named}: {status:?}");
        assert_eq!(grpc_violations(&status), vec![named.clone()], "{}", status.message());
        assert!(status.message().contains(&named), "{}", status.message());
        let (code, json) = rest_batch(&server, &batch(vec![over])).await;
        assert_eq!(code, 400, "{named}: {json}");
        assert_eq!(rest_violations(&json), vec![named.clone()], "{json}");
        assert_eq!(stored_events(&server.db_path).await, stored, "{named}: nothing stored when refused");

        let grpc_copy = pb::AuditEvent { id: format!("{}-grpc", at.id), ..at.clone() };
        let reply = server.grpc().await.batch_create_events(authed(batch(vec![grpc_copy]), &writer())).await;
        assert_eq!(reply.unwrap_or_else(|s| panic!("{named} at the limit: {s:?}")).into_inner().created_count, 1);
        let (code, json) = rest_batch(&server, &batch(vec![at])).await;
        assert_eq!(code, 200, "{named} at the limit: {json}");
        stored += 2;
        assert_eq!(stored_events(&server.db_path).await, stored, "{named}: stored at the limit");
    }
    server.stop().await;
}

/// Event `i` of a batch with exactly one invalid field, cycling through them all.
fn invalid(i: usize) -> (pb::AuditEvent, &'static str) {
    let mut e = valid(&format!("bad{i}"));
    let field = match i % 8 {
        0 => {
            e.action = "Not An Action".into();
            "action"
        }
        1 => {
            e.result = "maybe".into();
            "result"
        }
        2 => {
            e.organization_id = "has space".into();
            "organization_id"
        }
        3 => {
            e.ip = "999.0.0.1".into();
            "ip"
        }
        4 => {
            e.user_agent = "a".repeat(1025);
            "user_agent"
        }
        5 => {
            e.actor.as_mut().unwrap().id = "a".repeat(257);
            "actor.id"
        }
        6 => {
            e.timestamp = Some(ts("1969-07-20T20:17:40Z"));
            "timestamp"
        }
        _ => {
            e.details = details_of(16 * 1024 + 1);
            "details"
        }
    };
    (e, field)
}

#[tokio::test]
async fn a_batch_of_thirty_invalid_events_names_the_first_twenty_in_order() {
    let server = TestServer::start().await;
    let (events, fields): (Vec<_>, Vec<_>) = (0..30).map(invalid).unzip();
    let expected: Vec<String> = fields.iter().take(20).enumerate().map(|(i, f)| format!("events[{i}].{f}")).collect();

    let status = server.grpc().await.batch_create_events(authed(batch(events.clone()), &writer())).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(grpc_violations(&status), expected);
    assert!(status.message().contains("events[0].action"), "{}", status.message());
    assert!(status.message().contains("(and 29 more)"), "{}", status.message());

    let (code, json) = rest_batch(&server, &batch(events)).await;
    assert_eq!(code, 400);
    assert_eq!(rest_violations(&json), expected);
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}
