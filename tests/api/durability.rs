//! Durability: events acknowledged before a `kill -9` of the server process are
//! all there after a restart, and retrying unacknowledged batches never duplicates.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audit_service::proto::audit::{self as pb, audit_service_client::AuditServiceClient};

use crate::support::{SECRET, authed, event, stored_events, writer};

const BATCH: usize = 200;
const WRITERS: usize = 4;

fn spawn_server(db: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_audit-service"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("AUDIT_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts")
}

async fn connect(port: u16) -> AuditServiceClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await {
            Ok(channel) => return AuditServiceClient::new(channel),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not come up: {e}"),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn batch_of(writer_index: usize, sequence: usize) -> Vec<pb::AuditEvent> {
    (0..BATCH)
        .map(|i| {
            event(
                &format!("w{writer_index}-b{sequence}-{i}"),
                "org_a",
                "session.login",
                "success",
                "2026-03-02T10:00:00Z",
            )
        })
        .collect()
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9_and_retries_do_not_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let mut acknowledged: Vec<(usize, usize)> = Vec::new();
    let mut unacknowledged: Vec<(usize, usize)> = Vec::new();
    let mut next_sequence = [0usize; WRITERS];

    for cycle in 0..3 {
        let port = free_port();
        let mut child = spawn_server(&db, port);
        let client = connect(port).await;
        // Retry what the previous process never acknowledged, with the same ids.
        for (writer_index, sequence) in std::mem::take(&mut unacknowledged) {
            let mut c = client.clone();
            c.batch_create_events(authed(
                pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) },
                &writer(),
            ))
            .await
            .expect("retry after restart");
            acknowledged.push((writer_index, sequence));
        }
        let mut tasks = Vec::new();
        for (writer_index, next) in next_sequence.iter_mut().enumerate() {
            let mut c = client.clone();
            let start = *next;
            *next += 1000;
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for sequence in start..start + 1000 {
                    let request =
                        authed(pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) }, &writer());
                    match c.batch_create_events(request).await {
                        Ok(_) => done.push(sequence),
                        Err(_) => return (writer_index, done, Some(sequence)),
                    }
                }
                (writer_index, done, None)
            }));
        }
        // Let the writers get going, then kill the process without warning.
        tokio::time::sleep(Duration::from_millis(400 + 150 * cycle)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        for task in tasks {
            let (writer_index, done, failed) = task.await.unwrap();
            acknowledged.extend(done.into_iter().map(|s| (writer_index, s)));
            if let Some(sequence) = failed {
                unacknowledged.push((writer_index, sequence));
            }
        }
    }
    // Final restart: retry the last unacknowledged batches, then verify.
    let port = free_port();
    let mut child = spawn_server(&db, port);
    let mut client = connect(port).await;
    for (writer_index, sequence) in std::mem::take(&mut unacknowledged) {
        client
            .batch_create_events(authed(
                pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) },
                &writer(),
            ))
            .await
            .unwrap();
        acknowledged.push((writer_index, sequence));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acknowledged.len() > WRITERS, "the writers made progress before each kill");
    let stored = stored_events(&db).await;
    // Every acknowledged batch is stored exactly once; nothing else is.
    acknowledged.sort_unstable();
    acknowledged.dedup();
    let expected = (acknowledged.len() * BATCH) as i64;
    println!(
        "durability: acknowledged batches = {}, stored events = {stored}, expected = {expected}",
        acknowledged.len()
    );
    assert_eq!(stored, expected);
    let mut conn = {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new().filename(&db).read_only(true).connect().await.unwrap()
    };
    for (writer_index, sequence) in acknowledged.iter().step_by(7) {
        let id = format!("w{writer_index}-b{sequence}-{}", BATCH - 1);
        let found: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE organization_id = 'org_a' AND id = ?")
                .bind(&id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(found, 1, "{id}");
    }
}
