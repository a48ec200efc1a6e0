//! The real server on PostgreSQL (a fresh database per test): REST and gRPC end to
//! end, and an outage of the database answered UNAVAILABLE / 503 quickly, then
//! recovered from without restart.

use std::time::{Duration, Instant};

use audit_service::proto::audit as pb;
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::fixtures::{event, ts};
use crate::pg::PgDatabase;
use crate::server::{TestServer, authed, buckets, http1, reader, rest_summary, writer};

const DAY: &str = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-03T00:00:00Z";
/// The acquire timeout (2 s by default) bounds every answer during an outage.
/// Far beyond any answer on a loaded machine: only a hang misses it.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

async fn start() -> (TestServer, PgDatabase) {
    let db = PgDatabase::create().await;
    let url = db.url.clone();
    let server = TestServer::start_with(|config| config.database_url = url).await;
    (server, db)
}

async fn batch_create(
    server: &TestServer,
    events: Vec<pb::AuditEvent>,
) -> Result<pb::BatchCreateEventsResponse, tonic::Status> {
    let request = authed(pb::BatchCreateEventsRequest { events }, &writer());
    server.grpc().await.batch_create_events(request).await.map(tonic::Response::into_inner)
}

async fn grpc_summary(server: &TestServer) -> Result<pb::GetEventsSummaryResponse, tonic::Status> {
    let request = pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-03T00:00:00Z")),
        organization_id: String::new(),
    };
    server.grpc().await.get_events_summary(authed(request, &reader())).await.map(tonic::Response::into_inner)
}

async fn readyz(server: &TestServer) -> reqwest::StatusCode {
    http1().get(format!("{}/readyz", server.base)).send().await.expect("readyz answers").status()
}

pub async fn grpc_batches_and_rest_summaries_on_postgres() {
    let (server, db) = start().await;
    let events = vec![
        event("pg-1", "org_a", "session.login", "failure", "2026-03-02T10:00:00.000001Z"),
        event("pg-2", "org_a", "session.login", "success", "2026-03-02T11:00:00Z"),
        event("pg-3", "org_a", "session.login", "success", "2026-03-02T23:59:59.999999999Z"),
        event("pg-4", "org_b", "user.password.changed", "success", "2026-03-02T12:00:00+01:00"),
        event("pg-5", "org_b", "user.password.changed", "success", "2026-03-03T00:00:00Z"),
    ];
    let created = batch_create(&server, events.clone()).await.unwrap();
    assert_eq!((created.created_count, created.duplicate_count), (5, 0));
    let retried = batch_create(&server, events).await.unwrap();
    assert_eq!((retried.created_count, retried.duplicate_count), (0, 5));

    let response = rest_summary(&http1(), &server.base, DAY, &reader()).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("session.login".into(), 3, 1), ("user.password.changed".into(), 1, 0)]);
    let org_b = format!("{DAY}&organization_id=org_b");
    let json: serde_json::Value = rest_summary(&http1(), &server.base, &org_b, &reader()).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("user.password.changed".into(), 1, 0)]);
    // Exclusive end, microsecond start.
    let edge = "start_time=2026-03-02T10:00:00.000001Z&end_time=2026-03-02T11:00:00Z";
    let json: serde_json::Value = rest_summary(&http1(), &server.base, edge, &reader()).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("session.login".into(), 1, 1)]);
    assert_eq!(readyz(&server).await, 200);
    server.stop().await;
    db.drop_now().await;
}

/// Makes the database refuse connections and ends the server's, without stopping
/// the PostgreSQL server other tests share (needs a superuser admin URL).
async fn cut_off(db: &PgDatabase) {
    let mut admin = db.admin().await;
    let name = &db.name;
    admin.execute(AssertSqlSafe(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )))
        .await
        .unwrap();
    admin.close().await.ok();
}

async fn restore(db: &PgDatabase) {
    let mut admin = db.admin().await;
    admin.execute(AssertSqlSafe(format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name))).await.unwrap();
    admin.close().await.ok();
}

pub async fn a_database_outage_answers_unavailable_and_recovers_without_restart() {
    let (server, db) = start().await;
    let seeded = batch_create(&server, vec![event("o-1", "org_a", "session.login", "success", "2026-03-02T10:00:00Z")]);
    assert_eq!(seeded.await.unwrap().created_count, 1);
    assert_eq!(rest_summary(&http1(), &server.base, DAY, &reader()).await.status(), 200);

    cut_off(&db).await;
    // How fast an outage is answered is a figure for the fault drills
    // (scripts/faults.sh); here only that it is answered, within a generous bound.
    let response = tokio::time::timeout(ANSWER_DEADLINE, rest_summary(&http1(), &server.base, DAY, &reader()))
        .await
        .expect("the outage is answered, not waited out");
    assert_eq!(response.status(), 503, "REST summary during the outage");
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["status"], "UNAVAILABLE");
    assert!(!json.to_string().to_lowercase().contains("select"), "no SQL leaks: {json}");

    let during = async {
        assert_eq!(grpc_summary(&server).await.unwrap_err().code(), tonic::Code::Unavailable);
        let refused =
            batch_create(&server, vec![event("o-2", "org_a", "session.login", "success", "2026-03-02T10:00:00Z")]);
        assert_eq!(refused.await.unwrap_err().code(), tonic::Code::Unavailable);
        assert_eq!(readyz(&server).await, 503);
    };
    tokio::time::timeout(ANSWER_DEADLINE, during).await.expect("the outage is answered, not waited out");

    restore(&db).await;
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        let response = rest_summary(&http1(), &server.base, DAY, &reader()).await;
        if response.status() == 200 {
            let json: serde_json::Value = response.json().await.unwrap();
            assert_eq!(buckets(&json), vec![("session.login".into(), 1, 0)]);
            break;
        }
        assert!(Instant::now() < deadline, "no recovery within {ANSWER_DEADLINE:?}: {}", response.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = batch_create(&server, vec![event("o-2", "org_a", "session.login", "failure", "2026-03-02T10:30:00Z")]);
    assert_eq!(again.await.unwrap().created_count, 1, "the refused event was not stored");
    assert_eq!(grpc_summary(&server).await.unwrap().buckets[0].count, 2);
    // The outage's verdict may answer for up to a second after it was reached.
    let deadline = Instant::now() + ANSWER_DEADLINE;
    while readyz(&server).await != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover within {ANSWER_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
    db.drop_now().await;
}
