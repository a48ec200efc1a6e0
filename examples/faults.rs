//! Fault drills against the real binary on loopback, bounded in count and time,
//! printing the counts they check (run by `scripts/faults.sh`):
//!
//! - `kill9`: `kill -9` during concurrent batched ingest, N cycles; after each
//!   restart the unacknowledged batches are retried with the same ids. Every
//!   acknowledged event must be stored, none twice (rows, and summary counts).
//! - `sigterm`: SIGTERM while requests are in flight: they all finish, and the
//!   process exits within its drain deadline.
//! - `sqlite-locked`: another process holds SQLite's write lock mid-load: writes
//!   answer UNAVAILABLE quickly, reads go on, and writes recover without restart.
//! - `postgres-stopped`: PostgreSQL stops mid-load (when a cluster is given):
//!   UNAVAILABLE quickly, no hang, recovery without restart.
//!
//! cargo run --release --example faults -- --bin target/release/audit-service [--cycles 20] [--only NAME]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audit_service::proto::audit::{self as pb, audit_service_client::AuditServiceClient};
use tonic::Code;
use tonic::transport::Channel;

const SECRET: &str = "fault-drill-secret-that-is-long-enough-0123";
const ORG: &str = "org_drill";
const WRITERS: usize = 4;
const BATCH: usize = 100;
/// Every request of a drill must be answered within this, whatever the fault.
const NO_HANG: Duration = Duration::from_secs(10);

struct Options {
    bin: String,
    cycles: usize,
    only: Option<String>,
}

fn options() -> Options {
    let mut o = Options { bin: "target/release/audit-service".into(), cycles: 20, only: None };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--bin" => o.bin = value,
            "--cycles" => o.cycles = value.parse().expect("--cycles N"),
            "--only" => o.only = Some(value),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(bin: &str, database_url: &str, port: u16, extra: &[&str]) -> Child {
    Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("AUDIT_DATABASE_URL", database_url)
        .env("AUDIT_JWT_SECRET", SECRET)
        // The drills measure faults, not rate limits.
        .env("AUDIT_RATE_LIMIT_READ_PER_SEC", "0")
        .env("AUDIT_RATE_LIMIT_WRITE_PER_SEC", "0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts")
}

async fn connect(port: u16) -> AuditServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().timeout(NO_HANG);
        match endpoint.connect().await {
            Ok(channel) => return AuditServiceClient::new(channel),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(30)).await,
            Err(error) => panic!("server did not come up: {error}"),
        }
    }
}

fn token(scopes: &[&str]) -> String {
    audit_service::auth::mint_hs256(SECRET.as_bytes(), "fault-drill", scopes, None, Duration::from_secs(3600)).unwrap()
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn event_id(writer: usize, sequence: usize, i: usize) -> String {
    format!("w{writer}-b{sequence}-{i}")
}

fn batch(writer: usize, sequence: usize) -> pb::BatchCreateEventsRequest {
    let timestamp = audit_service::rfc3339::parse("2026-03-02T10:00:00Z").unwrap();
    pb::BatchCreateEventsRequest {
        events: (0..BATCH)
            .map(|i| pb::AuditEvent {
                id: event_id(writer, sequence, i),
                timestamp: Some(pbjson_types::Timestamp { seconds: timestamp.seconds + i as i64, nanos: 0 }),
                organization_id: ORG.into(),
                action: "session.login".into(),
                result: if i % 10 == 0 { "failure" } else { "success" }.into(),
                ..Default::default()
            })
            .collect(),
    }
}

fn summary_request() -> pb::GetEventsSummaryRequest {
    pb::GetEventsSummaryRequest {
        start_time: Some(audit_service::rfc3339::parse("2026-03-01T00:00:00Z").unwrap()),
        end_time: Some(audit_service::rfc3339::parse("2026-03-03T00:00:00Z").unwrap()),
        organization_id: ORG.into(),
    }
}

async fn sqlite_rows(db: &std::path::Path) -> (i64, HashSet<String>) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM audit_events WHERE organization_id = ?")
        .bind(ORG)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    (ids.len() as i64, ids.into_iter().collect())
}

/// kill -9 during concurrent batched ingest, `cycles` times.
async fn kill9(o: &Options) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let writer_token = token(&["audit:write", "audit:read"]);
    let mut acknowledged: Vec<(usize, usize)> = Vec::new();
    let mut unacknowledged: Vec<(usize, usize)> = Vec::new();
    let mut next = [0usize; WRITERS];
    let mut retried = 0;
    let started = Instant::now();
    for cycle in 0..o.cycles {
        let port = free_port();
        let mut child = spawn(&o.bin, &url, port, &[]);
        let client = connect(port).await;
        for (writer, sequence) in std::mem::take(&mut unacknowledged) {
            client.clone().batch_create_events(authed(batch(writer, sequence), &writer_token)).await.expect("retry");
            acknowledged.push((writer, sequence));
            retried += 1;
        }
        let mut tasks = Vec::new();
        for (writer, next) in next.iter_mut().enumerate() {
            let mut client = client.clone();
            let token = writer_token.clone();
            let first = *next;
            *next += 100_000;
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for sequence in first.. {
                    match client.batch_create_events(authed(batch(writer, sequence), &token)).await {
                        Ok(_) => done.push(sequence),
                        Err(_) => return (writer, done, sequence),
                    }
                }
                unreachable!()
            }));
        }
        // Kill at a different point of the ingest each cycle.
        tokio::time::sleep(Duration::from_millis(200 + (cycle as u64 * 137) % 600)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        for task in tasks {
            let (writer, done, failed) = task.await.unwrap();
            acknowledged.extend(done.into_iter().map(|s| (writer, s)));
            unacknowledged.push((writer, failed));
        }
    }
    // Final restart: retry what is left, then count through the service and the file.
    let port = free_port();
    let mut child = spawn(&o.bin, &url, port, &[]);
    let client = connect(port).await;
    for (writer, sequence) in std::mem::take(&mut unacknowledged) {
        client.clone().batch_create_events(authed(batch(writer, sequence), &writer_token)).await.expect("retry");
        acknowledged.push((writer, sequence));
        retried += 1;
    }
    let summary = client.clone().get_events_summary(authed(summary_request(), &writer_token)).await.unwrap();
    let counted: i64 = summary.into_inner().buckets.iter().map(|b| b.count).sum();
    child.kill().unwrap();
    child.wait().unwrap();

    let (rows, ids) = sqlite_rows(&db).await;
    acknowledged.sort_unstable();
    let acked_events = acknowledged.len() * BATCH;
    let lost = acknowledged
        .iter()
        .flat_map(|&(w, s)| (0..BATCH).map(move |i| event_id(w, s, i)))
        .filter(|id| !ids.contains(id))
        .count();
    let duplicated = (rows - ids.len() as i64) + (counted - rows).max(0);
    println!(
        "kill9: cycles={} acked_batches={} acked_events={acked_events} retried_batches={retried} stored={rows} \
         summary_count={counted} lost={lost} duplicated={duplicated} ({:.1}s)",
        o.cycles,
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    lost == 0 && duplicated == 0 && rows == acked_events as i64 && counted == rows
}

/// SIGTERM with requests in flight: they finish, the process exits in time.
async fn sigterm(o: &Options) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let port = free_port();
    let drain = Duration::from_secs(5);
    let mut child = spawn(&o.bin, &url, port, &["--drain-timeout-secs", "5"]);
    let client = connect(port).await;
    let writer_token = token(&["audit:write", "audit:read"]);
    client.clone().batch_create_events(authed(batch(0, 0), &writer_token)).await.unwrap();
    // Hold the write lock so that the next writes are in flight for ~1 s.
    let lock = lock_sqlite(&db).await;
    let mut in_flight = Vec::new();
    for writer in 1..=WRITERS {
        let mut client = client.clone();
        let token = writer_token.clone();
        in_flight.push(tokio::spawn(async move { client.batch_create_events(authed(batch(writer, 0), &token)).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    tokio::time::sleep(Duration::from_millis(700)).await;
    unlock_sqlite(lock).await;
    let mut ok = 0;
    let mut failed = Vec::new();
    for task in in_flight {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => failed.push(format!("{:?}", status.code())),
        }
    }
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if signalled.elapsed() > drain + Duration::from_secs(3) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exit_after = signalled.elapsed();
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (rows, _) = sqlite_rows(&db).await;
    println!(
        "sigterm: in_flight={WRITERS} completed_ok={ok} failed={failed:?} exited={} after={:.2}s (drain deadline {}s) stored={rows}",
        exited.is_some_and(|s| s.success()),
        exit_after.as_secs_f64(),
        drain.as_secs()
    );
    ok == WRITERS
        && exited.is_some_and(|s| s.success())
        && exit_after <= drain
        && rows == ((WRITERS + 1) * BATCH) as i64
}

/// SIGTERM with requests that cannot finish: the process still exits at its drain
/// deadline, not when they give up.
async fn sigterm_deadline(o: &Options) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let port = free_port();
    let mut child = spawn(&o.bin, &format!("sqlite://{}", db.display()), port, &["--drain-timeout-secs", "1"]);
    let client = connect(port).await;
    let writer_token = token(&["audit:write"]);
    client.clone().batch_create_events(authed(batch(0, 0), &writer_token)).await.unwrap();
    let lock = lock_sqlite(&db).await;
    let mut in_flight = Vec::new();
    for writer in 1..=WRITERS {
        let mut client = client.clone();
        let token = writer_token.clone();
        in_flight.push(tokio::spawn(async move { client.batch_create_events(authed(batch(writer, 0), &token)).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if signalled.elapsed() > Duration::from_secs(6) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exit_after = signalled.elapsed();
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut answered = 0;
    for task in in_flight {
        // Each call ends, one way or another: an answer or a closed connection.
        answered += usize::from(tokio::time::timeout(NO_HANG, task).await.is_ok());
    }
    unlock_sqlite(lock).await;
    let (rows, _) = sqlite_rows(&db).await;
    println!(
        "sigterm-deadline: in_flight={WRITERS} ended={answered} exited={} after={:.2}s (drain deadline 1s) stored={rows}",
        exited.is_some(),
        exit_after.as_secs_f64()
    );
    // Unacknowledged writes may or may not be stored; acknowledged ones must be.
    exited.is_some() && exit_after < Duration::from_millis(2500) && answered == WRITERS && rows >= BATCH as i64
}

async fn lock_sqlite(db: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::{ConnectOptions, Executor};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).connect().await.unwrap();
    conn.execute("BEGIN EXCLUSIVE").await.unwrap();
    conn
}

async fn unlock_sqlite(mut conn: sqlx::SqliteConnection) {
    use sqlx::Executor;
    conn.execute("COMMIT").await.unwrap();
}

#[derive(Default, Debug)]
struct LoadCounts {
    ok: usize,
    unavailable: usize,
    other: usize,
    slowest: Duration,
    ok_after_recovery: usize,
}

/// Mixed reads and writes until `until`; what answered, how, and how slowly.
async fn mixed_load(port: u16, until: Instant, recovered_at: Instant, salt: usize) -> LoadCounts {
    let client = connect(port).await;
    let token = token(&["audit:write", "audit:read"]);
    let mut tasks = Vec::new();
    for worker in 0..WRITERS {
        let mut client = client.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts = LoadCounts::default();
            let mut sequence = 0;
            while Instant::now() < until {
                let sent = Instant::now();
                let result = if worker % 2 == 0 {
                    sequence += 1;
                    client.batch_create_events(authed(batch(worker + salt, sequence), &token)).await.map(|_| ())
                } else {
                    client.get_events_summary(authed(summary_request(), &token)).await.map(|_| ())
                };
                counts.slowest = counts.slowest.max(sent.elapsed());
                match result {
                    Ok(()) if sent > recovered_at => {
                        counts.ok += 1;
                        counts.ok_after_recovery += usize::from(worker % 2 == 0);
                    }
                    Ok(()) => counts.ok += 1,
                    Err(status) if status.code() == Code::Unavailable => counts.unavailable += 1,
                    Err(_) => counts.other += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            counts
        }));
    }
    let mut total = LoadCounts::default();
    for task in tasks {
        let counts = task.await.unwrap();
        total.ok += counts.ok;
        total.unavailable += counts.unavailable;
        total.other += counts.other;
        total.ok_after_recovery += counts.ok_after_recovery;
        total.slowest = total.slowest.max(counts.slowest);
    }
    total
}

/// Another process holds SQLite's write lock for 3 s in the middle of the load.
async fn sqlite_locked(o: &Options) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let port = free_port();
    let mut child = spawn(&o.bin, &format!("sqlite://{}", db.display()), port, &[]);
    connect(port).await;
    let start = Instant::now();
    let (lock_at, unlock_at, until) =
        (start + Duration::from_secs(1), start + Duration::from_secs(4), start + Duration::from_secs(7));
    let load = tokio::spawn(mixed_load(port, until, unlock_at + Duration::from_millis(500), 0));
    tokio::time::sleep_until(lock_at.into()).await;
    let lock = lock_sqlite(&db).await;
    tokio::time::sleep_until(unlock_at.into()).await;
    unlock_sqlite(lock).await;
    let counts = load.await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "sqlite-locked: ok={} unavailable={} other_errors={} writes_ok_after_unlock={} slowest={:.2}s",
        counts.ok,
        counts.unavailable,
        counts.other,
        counts.ok_after_recovery,
        counts.slowest.as_secs_f64()
    );
    counts.unavailable > 0 && counts.other == 0 && counts.ok_after_recovery > 0 && counts.slowest < NO_HANG
}

/// PostgreSQL stops for 3 s in the middle of the load. Needs
/// AUDIT_FAULTS_POSTGRES_URL and the commands that stop and start the cluster
/// (AUDIT_FAULTS_PG_STOP, AUDIT_FAULTS_PG_START, run with `sh -c`).
async fn postgres_stopped(o: &Options) -> Option<bool> {
    let url = std::env::var("AUDIT_FAULTS_POSTGRES_URL").ok()?;
    let stop = std::env::var("AUDIT_FAULTS_PG_STOP").ok()?;
    let start_cmd = std::env::var("AUDIT_FAULTS_PG_START").ok()?;
    let port = free_port();
    let mut child = spawn(&o.bin, &url, port, &[]);
    connect(port).await;
    let start = Instant::now();
    let (stop_at, until) = (start + Duration::from_secs(1), start + Duration::from_secs(9));
    let load = tokio::spawn(mixed_load(port, until, start + Duration::from_secs(7), 1000));
    tokio::time::sleep_until(stop_at.into()).await;
    let sh = |cmd: &str| Command::new("sh").args(["-c", cmd]).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    let stopped = sh(&stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = sh(&start_cmd);
    let counts = load.await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "postgres-stopped: stop_ok={stopped} start_ok={started} ok={} unavailable={} other_errors={} \
         writes_ok_after_restart={} slowest={:.2}s",
        counts.ok,
        counts.unavailable,
        counts.other,
        counts.ok_after_recovery,
        counts.slowest.as_secs_f64()
    );
    Some(stopped && started && counts.unavailable > 0 && counts.ok_after_recovery > 0 && counts.slowest < NO_HANG)
}

#[tokio::main]
async fn main() {
    let o = options();
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| only == name);
    let mut failed = Vec::new();
    if wanted("kill9") && !kill9(&o).await {
        failed.push("kill9");
    }
    if wanted("sigterm") && !sigterm(&o).await {
        failed.push("sigterm");
    }
    if wanted("sigterm") && !sigterm_deadline(&o).await {
        failed.push("sigterm-deadline");
    }
    if wanted("sqlite-locked") && !sqlite_locked(&o).await {
        failed.push("sqlite-locked");
    }
    if wanted("postgres-stopped") {
        match postgres_stopped(&o).await {
            Some(true) => {}
            Some(false) => failed.push("postgres-stopped"),
            None => println!(
                "postgres-stopped: SKIPPED (set AUDIT_FAULTS_POSTGRES_URL, AUDIT_FAULTS_PG_STOP, AUDIT_FAULTS_PG_START)"
            ),
        }
    }
    if failed.is_empty() {
        println!("faults: all drills passed");
    } else {
        println!("faults: FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
}
