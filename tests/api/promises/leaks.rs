//! No answer carries SQL, paths or stack traces: every error class a client can
//! provoke, over REST, native gRPC and gRPC-web, up to a database broken under the
//! running server, is searched for the traces of internals.

use audit_service::proto::audit as pb;
use base64::Engine;
use tonic::Code;

use crate::fixtures::{WEEK, event, oversized_batch, ts};
use crate::grpc_web::{self, Mode};
use crate::server::{TestServer, authed, http1, http2, reader, token, writer};

const BATCH_PATH: &str = "/v1/audit/events:batchCreate";
const SUMMARY: &str = "/avnology.audit.v1.AuditService/GetEventsSummary";

/// What would betray the database, the file system or the code behind an answer.
const CASED: [&str; 3] = ["SELECT", "INSERT", "PRAGMA"];
const ANY_CASE: [&str; 14] = [
    "sqlite",
    "sqlx",
    "error returned from database",
    "(code:",
    "not a database",
    "disk image",
    "no such table",
    "/tmp",
    "/work",
    ".rs:",
    "panicked",
    "stack backtrace",
    "audit.db",
    "src/",
];

fn assert_clean(what: &str, answer: &str, dir: &str) {
    let lower = answer.to_lowercase();
    for needle in CASED {
        assert!(!answer.contains(needle), "{what} carries {needle:?}: {answer}");
    }
    for needle in ANY_CASE.iter().copied().chain([dir]) {
        assert!(!lower.contains(&needle.to_lowercase()), "{what} carries {needle:?}: {answer}");
    }
}

/// A REST answer: it must be the expected error, and clean, headers included.
async fn rest(what: &str, request: reqwest::RequestBuilder, expected: u16, dir: &str) {
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), expected, "{what}");
    let headers = format!("{:?}", response.headers());
    let body = response.text().await.unwrap();
    assert!(body.contains("\"error\""), "{what}: an error envelope: {body}");
    assert_clean(what, &format!("{headers}\n{body}"), dir);
}

/// A tonic status: message, binary details and metadata.
fn grpc(what: &str, status: &tonic::Status, expected: Code, dir: &str) {
    assert_eq!(status.code(), expected, "{what}: {status:?}");
    let details = String::from_utf8_lossy(status.details());
    assert_clean(what, &format!("{}\n{details}\n{:?}", status.message(), status.metadata()), dir);
}

/// A native gRPC call sent by hand, for bodies a typed client cannot send.
async fn raw_grpc(what: &str, base: &str, path: &str, body: Vec<u8>, expected: Code, dir: &str) {
    let response = http2()
        .post(format!("{base}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .bearer_auth(reader())
        .body(body)
        .send()
        .await
        .unwrap();
    let headers = format!("{:?}", response.headers());
    let code = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(code, Some((expected as i32).to_string()), "{what}: {headers}");
    let details = response.headers().get("grpc-status-details-bin").map(|v| {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(v.as_bytes()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let body = response.bytes().await.unwrap();
    assert_clean(what, &format!("{headers}\n{details:?}\n{}", String::from_utf8_lossy(&body)), dir);
}

fn week() -> pb::GetEventsSummaryRequest {
    pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-09T00:00:00Z")),
        organization_id: "org_a".into(),
    }
}

fn one_event() -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: vec![event("e1", "org_a", "session.login", "success", "2026-03-02T10:00:00Z")],
    }
}

#[tokio::test]
async fn no_error_answer_carries_sql_paths_or_stack_traces() {
    let server = TestServer::start_with(|c| c.max_request_bytes = 4096).await;
    let dir = server.db_path.parent().unwrap().display().to_string();
    let (base, dir) = (server.base.as_str(), dir.as_str());
    let post = |path: &str, body: &str, token: &str| {
        http1()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let summary =
        |token: &str, query: &str| http1().get(format!("{base}/v1/audit/events:summary?{query}")).bearer_auth(token);

    rest("bad JSON", post(BATCH_PATH, "{\"events\": [{", &writer()), 400, dir).await;
    rest("a wrong JSON type", post(BATCH_PATH, r#"{"events": 7}"#, &writer()), 400, dir).await;
    rest("an unknown route", http1().get(format!("{base}/v1/nowhere")).bearer_auth(reader()), 404, dir).await;
    rest("a bad token", summary("not-a-token", WEEK), 401, dir).await;
    rest("a missing scope", post(BATCH_PATH, r#"{"events":[]}"#, &reader()), 403, dir).await;
    let org_b = token(&["audit:read"], Some("org_b"));
    rest("another tenant", summary(&org_b, &format!("{WEEK}&organization_id=org_a")), 403, dir).await;
    let big = format!(r#"{{"events":[{{"user_agent":"{}"}}]}}"#, "x".repeat(5000));
    rest("a body too large", post(BATCH_PATH, &big, &writer()), 413, dir).await;

    raw_grpc("bad protobuf", base, SUMMARY, vec![0, 0, 0, 0, 3, 0xff, 0xff, 0xff], Code::InvalidArgument, dir).await;
    raw_grpc(
        "an unknown method",
        base,
        "/avnology.audit.v1.AuditService/Nowhere",
        vec![0; 5],
        Code::Unimplemented,
        dir,
    )
    .await;
    let mut client = server.grpc().await;
    let status = client.get_events_summary(authed(week(), "not-a-token")).await.unwrap_err();
    grpc("a bad token", &status, Code::Unauthenticated, dir);
    let status = client.batch_create_events(authed(one_event(), &reader())).await.unwrap_err();
    grpc("a missing scope", &status, Code::PermissionDenied, dir);
    let status = client.get_events_summary(authed(week(), &org_b)).await.unwrap_err();
    grpc("another tenant", &status, Code::PermissionDenied, dir);
    let large = oversized_batch();
    let status = client.batch_create_events(authed(large, &writer())).await.unwrap_err();
    grpc("a message too large", &status, Code::ResourceExhausted, dir);

    // The database breaks under the running server: internal failures are
    // answered without their cause.
    for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let path = server.db_path.with_file_name(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            std::fs::write(&path, vec![0xAA; meta.len() as usize]).unwrap();
        }
    }
    let response = summary(&reader(), WEEK).send().await.unwrap();
    let (status, body) = (response.status(), response.text().await.unwrap());
    assert!(status.is_server_error(), "the database is broken: {status} {body}");
    assert_clean("a broken database (REST summary)", &body, dir);
    let response = post(BATCH_PATH, &serde_json::to_string(&one_event()).unwrap(), &writer()).send().await.unwrap();
    let (status, body) = (response.status(), response.text().await.unwrap());
    assert!(status.is_server_error(), "{status} {body}");
    assert_clean("a broken database (REST batch)", &body, dir);
    for (what, result) in [
        ("summary", client.get_events_summary(authed(week(), &reader())).await.map(drop)),
        ("batch", client.batch_create_events(authed(one_event(), &writer())).await.map(drop)),
    ] {
        let status = result.expect_err("the database is broken");
        assert!(matches!(status.code(), Code::Internal | Code::Unavailable), "{what}: {status:?}");
        grpc(&format!("a broken database (gRPC {what})"), &status, status.code(), dir);
    }
    let web = grpc_web::call::<_, pb::GetEventsSummaryResponse>(
        &http1(),
        base,
        "GetEventsSummary",
        &week(),
        Some(&reader()),
        Mode::Text,
    )
    .await
    .unwrap_err();
    assert_clean("a broken database (gRPC-web)", &format!("{web:?}"), dir);
    server.stop().await;
}
