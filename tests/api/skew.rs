//! The future bound of BatchCreateEvents: an event dated more than the allowed skew
//! after the server's clock refuses its batch whole, over REST and gRPC, on both
//! stores. Offsets are whole half-hours from a 1-hour bound, so a slow machine
//! cannot move an event across it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audit_service::proto::audit as pb;
use sqlx::Connection;
use tonic_types::StatusExt;

use crate::postgres::pg;
use crate::support::{TestServer, authed, buckets, event, http1, reader, rest_summary, stored_events, writer};

const HOUR: i64 = 3600;

/// The server's clock plus `offset_secs`, as RFC 3339.
fn at(offset_secs: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    audit_service::rfc3339::format(&pbjson_types::Timestamp { seconds: now + offset_secs, nanos: 0 })
}

fn login_in(id: &str, offset_secs: i64) -> pb::AuditEvent {
    event(id, "org_a", "session.login", "success", &at(offset_secs))
}

async fn grpc_create(server: &TestServer, events: Vec<pb::AuditEvent>) -> Result<i32, tonic::Status> {
    let request = authed(pb::BatchCreateEventsRequest { events }, &writer());
    Ok(server.grpc().await.batch_create_events(request).await?.into_inner().created_count)
}

/// The REST answer's status and its JSON body.
async fn rest_create(server: &TestServer, events: &[pb::AuditEvent]) -> (u16, serde_json::Value) {
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
async fn around_now(server: &TestServer) -> Vec<(String, i64, i64)> {
    let query = format!("start_time={}&end_time={}", at(-24 * HOUR), at(24 * HOUR));
    let response = rest_summary(&http1(), &server.base, &query, &reader()).await;
    assert_eq!(response.status(), 200);
    buckets(&response.json().await.unwrap())
}

/// Sends `events` over gRPC and over REST, expecting each refused and naming
/// exactly `field`; the summary must not move.
async fn assert_refused(server: &TestServer, events: Vec<pb::AuditEvent>, field: &str) {
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

#[tokio::test]
async fn an_event_two_hours_ahead_is_refused_over_rest_and_grpc() {
    let server = TestServer::start().await;
    assert_refused(&server, vec![login_in("ahead-1", 2 * HOUR)], "events[0].timestamp").await;
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_event_half_an_hour_ahead_is_accepted() {
    let server = TestServer::start().await;
    assert_eq!(grpc_create(&server, vec![login_in("soon-1", HOUR / 2)]).await.unwrap(), 1);
    let (code, json) = rest_create(&server, &[login_in("soon-2", HOUR / 2)]).await;
    assert_eq!((code, json["created_count"].as_i64()), (200, Some(1)), "{json}");
    assert_eq!(around_now(&server).await, vec![("session.login".into(), 2, 0)]);
    assert_eq!(stored_events(&server.db_path).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn the_event_too_far_ahead_is_named_by_its_index_and_its_batch_refused() {
    let server = TestServer::start().await;
    let batch = vec![
        login_in("b-0", -HOUR),
        login_in("b-1", 0),
        login_in("b-2", HOUR / 2),
        login_in("b-3", 2 * HOUR),
        login_in("b-4", -2 * HOUR),
    ];
    assert_refused(&server, batch, "events[3].timestamp").await;
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn the_bound_is_the_configured_skew() {
    let strict = TestServer::start_with(|c| c.max_future_skew = Duration::ZERO).await;
    assert_refused(&strict, vec![login_in("z-1", HOUR / 2)], "events[0].timestamp").await;
    assert_eq!(grpc_create(&strict, vec![login_in("z-2", -HOUR / 2)]).await.unwrap(), 1);
    strict.stop().await;

    let lenient = TestServer::start_with(|c| c.max_future_skew = Duration::from_secs(3 * HOUR as u64)).await;
    assert_eq!(grpc_create(&lenient, vec![login_in("l-1", 2 * HOUR)]).await.unwrap(), 1);
    assert_refused(&lenient, vec![login_in("l-2", 4 * HOUR)], "events[0].timestamp").await;
    lenient.stop().await;
}

#[tokio::test]
async fn events_too_far_ahead_are_refused_on_postgres_too() {
    let Some(db) = pg::PgDatabase::create().await else { return };
    let url = db.url.clone();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    assert_refused(&server, vec![login_in("pg-0", HOUR / 2), login_in("pg-1", 2 * HOUR)], "events[1].timestamp").await;
    let mut conn = db.connect().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, 0);
    assert_eq!(grpc_create(&server, vec![login_in("pg-2", HOUR / 2)]).await.unwrap(), 1);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, 1);
    conn.close().await.ok();
    server.stop().await;
    db.drop_now().await;
}
