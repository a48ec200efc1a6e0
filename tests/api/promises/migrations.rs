//! Concurrent migrations on one fresh SQLite file: processes and in-process stores
//! opening it at once all succeed, every migration is applied once, and the
//! database then serves batches and summaries.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use audit_service::store::StoreSettings;

use crate::fixtures::{event, ts};
use crate::server::{TestServer, authed, reader, writer};
use audit_service::proto::audit as pb;

const OPENERS: usize = 6;

/// `(version, success)` of every applied migration, and how many migration files
/// the release has.
async fn applied(db: &Path) -> (Vec<(i64, bool)>, usize) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
    let rows = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    (rows, files)
}

async fn assert_migrated_once_and_serving(db: &Path) {
    let (rows, files) = applied(db).await;
    assert_eq!(rows.len(), files, "each migration recorded once: {rows:?}");
    assert!(rows.iter().all(|(_, success)| *success), "{rows:?}");

    let server = TestServer::start_on(db, |_| {}).await;
    let events = (0..3).map(|i| event(&format!("m{i}"), "org_a", "session.login", "failure", "2026-03-02T10:00:00Z"));
    let request = pb::BatchCreateEventsRequest { events: events.collect() };
    let reply = server.grpc().await.batch_create_events(authed(request, &writer())).await.expect("a batch");
    assert_eq!(reply.into_inner().created_count, 3);
    let summary = pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-03T00:00:00Z")),
        organization_id: "org_a".into(),
    };
    let buckets = server.grpc().await.get_events_summary(authed(summary, &reader())).await.unwrap().into_inner();
    let counts: Vec<_> = buckets.buckets.iter().map(|b| (b.action.as_str(), b.count, b.failure_count)).collect();
    assert_eq!(counts, vec![("session.login", 3, 3)]);
    server.stop().await;
}

#[tokio::test]
async fn migrate_run_by_several_processes_at_once_on_a_fresh_file_succeeds_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let children: Vec<_> = (0..OPENERS)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_audit-service"))
                .arg("migrate")
                .env("AUDIT_DATABASE_URL", format!("sqlite://{}", db.display()))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("binary starts")
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for output in &outputs {
        assert!(output.status.success(), "migrate failed: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "database is migrated");
    }
    assert_migrated_once_and_serving(&db).await;
}

#[tokio::test]
async fn stores_opened_concurrently_in_one_process_on_a_fresh_file_all_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let settings = StoreSettings::default();
    let opens = (0..OPENERS).map(|_| audit_service::store::open(&url, &settings));
    let stores = futures_util::future::join_all(opens).await;
    for store in stores {
        store.expect("every concurrent open succeeds").close().await;
    }
    assert_migrated_once_and_serving(&db).await;
}
