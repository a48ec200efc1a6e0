//! Durability: events acknowledged before a `kill -9` of the server process are
//! all there after a restart, and retrying unacknowledged batches never duplicates.

use std::collections::HashSet;
use std::process::Child;
use std::time::Duration;

use tokio::sync::mpsc;

use audit_service::proto::audit::{self as pb, audit_service_client::AuditServiceClient};

use crate::fixtures::event;
use crate::process::{self, free_port};
use crate::server::{SECRET, authed, stored_events, writer};

const BATCH: usize = 200;
const WRITERS: usize = 4;

fn spawn_server(db: &std::path::Path, port: u16) -> Child {
    process::serve(db, port).env("AUDIT_JWT_SECRET", SECRET).spawn().expect("server binary starts")
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
    // Acknowledged by a process that was then killed: what the claim is about.
    let mut acknowledged_before_kill: Vec<(usize, usize)> = Vec::new();
    // Acknowledged only by a retry after a restart.
    let mut acknowledged_on_retry: Vec<(usize, usize)> = Vec::new();
    let mut unacknowledged: Vec<(usize, usize)> = Vec::new();
    let mut next_sequence = [0usize; WRITERS];

    for cycle in 0..3 {
        let port = free_port();
        let mut child = spawn_server(&db, port);
        let client = AuditServiceClient::new(process::connect(port).await);
        // Retry what the previous process never acknowledged, with the same ids.
        for (writer_index, sequence) in std::mem::take(&mut unacknowledged) {
            let mut c = client.clone();
            c.batch_create_events(authed(
                pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) },
                &writer(),
            ))
            .await
            .expect("retry after restart");
            acknowledged_on_retry.push((writer_index, sequence));
        }
        // Each acknowledgement is announced, so the kill can wait for progress.
        let (acks, mut acked) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (writer_index, next) in next_sequence.iter_mut().enumerate() {
            let mut c = client.clone();
            let acks = acks.clone();
            let start = *next;
            *next += 1000;
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for sequence in start..start + 1000 {
                    let request =
                        authed(pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) }, &writer());
                    match c.batch_create_events(request).await {
                        Ok(_) => {
                            done.push(sequence);
                            let _ = acks.send(());
                        }
                        Err(_) => return (writer_index, done, Some(sequence)),
                    }
                }
                (writer_index, done, None)
            }));
        }
        drop(acks);
        // Once the writers made progress (a different amount each cycle, so the
        // kill lands at different points), kill the process without warning.
        for _ in 0..WRITERS * (2 + 10 * cycle) {
            tokio::time::timeout(Duration::from_secs(60), acked.recv())
                .await
                .expect("the writers make progress")
                .expect("a writer stopped before the kill");
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        for task in tasks {
            let (writer_index, done, failed) = task.await.unwrap();
            acknowledged_before_kill.extend(done.into_iter().map(|s| (writer_index, s)));
            if let Some(sequence) = failed {
                unacknowledged.push((writer_index, sequence));
            }
        }
    }
    // Final restart: retry the last unacknowledged batches, then verify.
    let port = free_port();
    let mut child = spawn_server(&db, port);
    let mut client = AuditServiceClient::new(process::connect(port).await);
    for (writer_index, sequence) in std::mem::take(&mut unacknowledged) {
        client
            .batch_create_events(authed(
                pb::BatchCreateEventsRequest { events: batch_of(writer_index, sequence) },
                &writer(),
            ))
            .await
            .unwrap();
        acknowledged_on_retry.push((writer_index, sequence));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // At least the acknowledgements waited for before the three kills.
    assert!(acknowledged_before_kill.len() >= WRITERS * (2 + 12 + 22), "{}", acknowledged_before_kill.len());

    let ids: Vec<String> = {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).read_only(true).connect().await.unwrap();
        sqlx::query_scalar("SELECT id FROM audit_events WHERE organization_id = 'org_a'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    let stored: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(stored.len(), ids.len(), "no id is stored twice");
    // Every batch a killed process acknowledged is there, whole, without help
    // from any retry.
    let before: HashSet<(usize, usize)> = acknowledged_before_kill.iter().copied().collect();
    assert_eq!(before.len(), acknowledged_before_kill.len(), "no batch acknowledged twice");
    for &(writer_index, sequence) in &before {
        for i in 0..BATCH {
            let id = format!("w{writer_index}-b{sequence}-{i}");
            assert!(stored.contains(id.as_str()), "acknowledged before a kill, then lost: {id}");
        }
    }
    // Nothing but acknowledged batches is stored: the retried ones, and no more.
    let retried: HashSet<(usize, usize)> = acknowledged_on_retry.iter().copied().collect();
    assert!(before.is_disjoint(&retried), "only unacknowledged batches are retried");
    assert_eq!(stored_events(&db).await, ((before.len() + retried.len()) * BATCH) as i64);
    assert_eq!(ids.len(), (before.len() + retried.len()) * BATCH);
}
