//! BatchCreateEvents: atomic, validated, idempotent on (organization, id), durable.

use audit_service::proto::audit as pb;
use tonic_types::StatusExt;

use crate::fixtures::event;
use crate::server::{TestServer, authed, buckets, http1, http2, reader, rest_summary, stored_events, token, writer};

const DAY: &str = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-03T00:00:00Z";

fn login(id: &str) -> pb::AuditEvent {
    event(id, "org_a", "session.login", "success", "2026-03-02T10:00:00Z")
}

async fn create(
    server: &TestServer,
    events: Vec<pb::AuditEvent>,
    token: &str,
) -> Result<pb::BatchCreateEventsResponse, tonic::Status> {
    let request = authed(pb::BatchCreateEventsRequest { events }, token);
    server.grpc().await.batch_create_events(request).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn retries_are_reported_as_duplicates_and_never_counted_twice() {
    let server = TestServer::start().await;
    let batch: Vec<_> = (0..5).map(|i| login(&format!("evt-{i}"))).collect();
    let first = create(&server, batch.clone(), &writer()).await.unwrap();
    assert_eq!((first.created_count, first.duplicate_count), (5, 0));
    let mut retry = batch.clone();
    retry.push(login("evt-new"));
    let second = create(&server, retry, &writer()).await.unwrap();
    assert_eq!((second.created_count, second.duplicate_count), (1, 5));
    // The same id twice inside one batch is one event.
    let third = create(&server, vec![login("evt-x"), login("evt-x")], &writer()).await.unwrap();
    assert_eq!((third.created_count, third.duplicate_count), (1, 1));
    // Ids are per organization: another tenant's "evt-0" is a different event.
    let other = event("evt-0", "org_b", "session.login", "success", "2026-03-02T10:00:00Z");
    assert_eq!(create(&server, vec![other], &writer()).await.unwrap().created_count, 1);
    let json: serde_json::Value = rest_summary(&http1(), &server.base, DAY, &reader()).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("session.login".into(), 8, 0)]);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_duplicate_retries_store_each_event_once() {
    let server = TestServer::start().await;
    let batch: Vec<_> = (0..300).map(|i| login(&format!("c-{i}"))).collect();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = server.grpc().await;
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = client;
            client
                .batch_create_events(authed(pb::BatchCreateEventsRequest { events: batch }, &writer()))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let (mut created, mut duplicates) = (0, 0);
    for task in tasks {
        let reply = task.await.unwrap();
        created += reply.created_count;
        duplicates += reply.duplicate_count;
    }
    assert_eq!(created, 300);
    assert_eq!(duplicates, 7 * 300);
    assert_eq!(stored_events(&server.db_path).await, 300);
    server.stop().await;
}

#[tokio::test]
async fn one_invalid_event_refuses_the_whole_batch() {
    let server = TestServer::start().await;
    let mut cases: Vec<(pb::AuditEvent, &str)> = Vec::new();
    let mut missing_time = login("bad");
    missing_time.timestamp = None;
    cases.push((missing_time, "timestamp"));
    let mut ancient = login("bad");
    ancient.timestamp = Some(pbjson_types::Timestamp { seconds: -1, nanos: 0 });
    cases.push((ancient, "timestamp"));
    let mut bad_nanos = login("bad");
    bad_nanos.timestamp = Some(pbjson_types::Timestamp { seconds: 1, nanos: 1_000_000_000 });
    cases.push((bad_nanos, "timestamp"));
    for (action, _) in
        [("Session.Login", ()), ("session", ()), ("session..login", ()), ("", ()), ("session.log in", ())]
    {
        let mut e = login("bad");
        e.action = action.into();
        cases.push((e, "action"));
    }
    for result in ["", "ok", "Success", "FAILURE"] {
        let mut e = login("bad");
        e.result = result.into();
        cases.push((e, "result"));
    }
    for org in ["", "org a", &"o".repeat(129)] {
        let mut e = login("bad");
        e.organization_id = org.to_string();
        cases.push((e, "organization_id"));
    }
    let mut bad_ip = login("bad");
    bad_ip.ip = "999.1.1.1".into();
    cases.push((bad_ip, "ip"));
    let mut long_id = login("bad");
    long_id.id = "x".repeat(200);
    cases.push((long_id, "id"));
    let mut control = login("bad");
    control.actor = Some(pb::Actor { r#type: "identity".into(), id: "usr\u{7}".into() });
    cases.push((control, "actor.id"));

    for (bad, field) in cases {
        let batch = vec![login("ok-0"), login("ok-1"), bad.clone(), login("ok-3")];
        let status = create(&server, batch, &writer()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
        let violation = &status.get_details_bad_request().expect("BadRequest").field_violations[0];
        assert_eq!(violation.field, format!("events[2].{field}"), "{bad:?}");
        assert_eq!(stored_events(&server.db_path).await, 0, "nothing stored for {bad:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn empty_and_oversized_batches_are_refused() {
    let server = TestServer::start().await;
    let status = create(&server, vec![], &writer()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "events");
    let too_many: Vec<_> = (0..1001).map(|i| login(&format!("o-{i}"))).collect();
    let status = create(&server, too_many, &writer()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "events");
    let max: Vec<_> = (0..1000).map(|i| login(&format!("m-{i}"))).collect();
    assert_eq!(create(&server, max, &writer()).await.unwrap().created_count, 1000);
    assert_eq!(stored_events(&server.db_path).await, 1000);
    server.stop().await;
}

#[tokio::test]
async fn tenancy_refuses_a_batch_holding_another_organizations_event() {
    let server = TestServer::start().await;
    let confined = token(&["audit:write"], Some("org_a"));
    let foreign = event("f-1", "org_b", "session.login", "success", "2026-03-02T10:00:00Z");
    let status = create(&server, vec![login("a-1"), foreign], &confined).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(stored_events(&server.db_path).await, 0);
    assert_eq!(create(&server, vec![login("a-1")], &confined).await.unwrap().created_count, 1);
    // A read token cannot write.
    let status = create(&server, vec![login("a-2")], &reader()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn rest_batch_create_accepts_snake_and_camel_case_json() {
    let server = TestServer::start().await;
    let body = serde_json::json!({ "events": [
        { "id": "r-1", "timestamp": "2026-03-02T10:00:00Z", "organization_id": "org_a", "action": "session.login",
          "result": "failure", "actor": { "type": "identity", "id": "usr_1" }, "details": { "method": "password", "attempt": 2 } },
        { "id": "r-2", "timestamp": "2026-03-02T12:00:00+02:00", "organizationId": "org_a", "action": "session.login",
          "result": "success", "userAgent": "curl/8" }
    ]});
    for client in [http1(), http2()] {
        let response = client
            .post(format!("{}/v1/audit/events:batchCreate", server.base))
            .bearer_auth(writer())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reply: serde_json::Value = response.json().await.unwrap();
        assert_eq!(reply["created_count"].as_i64().unwrap() + reply["duplicate_count"].as_i64().unwrap(), 2);
    }
    let json: serde_json::Value = rest_summary(&http1(), &server.base, DAY, &reader()).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("session.login".into(), 2, 1)]);

    // Unknown fields and malformed JSON are refused whole.
    for bad in [r#"{"events":[{"id":"r-3","bogus":1}]}"#, r#"{"events":"#, r#"{"events":[]} trailing"#] {
        let response = http1()
            .post(format!("{}/v1/audit/events:batchCreate", server.base))
            .bearer_auth(writer())
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["error"]["status"], "INVALID_ARGUMENT");
    }
    // An invalid event names its index over REST too.
    let invalid = serde_json::json!({ "events": [
        { "timestamp": "2026-03-02T10:00:00Z", "organization_id": "org_a", "action": "session.login", "result": "success" },
        { "timestamp": "2026-03-02T10:00:00Z", "organization_id": "org_a", "action": "login", "result": "success" }
    ]});
    let response = http1()
        .post(format!("{}/v1/audit/events:batchCreate", server.base))
        .bearer_auth(writer())
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["details"][0]["fieldViolations"][0]["field"], "events[1].action");
    assert_eq!(stored_events(&server.db_path).await, 2);
    server.stop().await;
}
