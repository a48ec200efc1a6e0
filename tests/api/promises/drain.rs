//! SIGTERM on the real binary: gRPC health turns NOT_SERVING for a client already
//! watching, requests in flight finish and are stored, new connections are refused,
//! and the process exits 0 once drained.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use audit_service::proto::audit as pb;
use prost::Message;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::support::held::HeldRequest;
use crate::support::{SECRET, event, stored_events, writer};

const PATIENCE: Duration = Duration::from_secs(60);

fn spawn_server(db: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_audit-service"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("AUDIT_JWT_SECRET", SECRET)
        // Longer than the test waits: the exit below comes from a finished drain.
        .env("AUDIT_DRAIN_TIMEOUT_SECS", "300")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts")
}

async fn connect(port: u16) -> Channel {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await {
            Ok(channel) => return channel,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not come up: {e}"),
        }
    }
}

fn batch(id: &str) -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: vec![event(id, "org_a", "session.login", "success", "2026-03-02T10:00:00Z")],
    }
}

/// A gRPC-web reply's message and the `grpc-status` of its trailer frame.
fn grpc_web_reply(mut body: &[u8]) -> (Option<pb::BatchCreateEventsResponse>, Option<String>) {
    let (mut message, mut status) = (None, None);
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        if body[0] & 0x80 == 0 {
            message = Some(pb::BatchCreateEventsResponse::decode(payload).expect("a reply message"));
        } else {
            let trailers = String::from_utf8_lossy(payload).into_owned();
            status = trailers.lines().find_map(|l| l.strip_prefix("grpc-status:").map(|s| s.trim().to_owned()));
        }
        body = &body[5 + len..];
    }
    (message, status)
}

#[tokio::test]
async fn sigterm_turns_health_not_serving_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = spawn_server(&db, port);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut health = HealthClient::new(connect(port).await);
    let request = HealthCheckRequest { service: "avnology.audit.v1.AuditService".into() };
    let mut watch = health.watch(request).await.expect("watch opens").into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status(), ServingStatus::Serving);

    // Two writes in flight, REST and gRPC-web: the server is reading their bodies.
    let token = format!("Bearer {}", writer());
    let rest = HeldRequest::start(
        addr,
        "/v1/audit/events:batchCreate",
        &[("authorization", &token), ("content-type", "application/json")],
        serde_json::to_vec(&batch("rest-in-flight")).unwrap(),
    )
    .await;
    let message = batch("web-in-flight").encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend(message);
    let web = HeldRequest::start(
        addr,
        "/avnology.audit.v1.AuditService/BatchCreateEvents",
        &[("authorization", &token), ("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")],
        frame,
    )
    .await;

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success(), "kill -TERM");

    // The watcher is told, without polling.
    let changed = timeout(PATIENCE, watch.message()).await.expect("the watch hears of the shutdown");
    let changed = changed.expect("a status, not an error").expect("the stream is still open");
    assert_eq!(changed.status(), ServingStatus::NotServing);
    // The listener is closed before health changes: new connections are refused.
    let refused = TcpStream::connect(addr).await;
    assert_eq!(refused.err().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));

    // The requests in flight are served to the end and stored.
    let (status, body) = rest.finish().await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["created_count"], 1, "{json}");
    let (status, body) = web.finish().await;
    assert_eq!(status, 200);
    let (reply, grpc_status) = grpc_web_reply(&body);
    assert_eq!(grpc_status.as_deref(), Some("0"), "{}", String::from_utf8_lossy(&body));
    assert_eq!(reply.map(|r| r.created_count), Some(1));

    // With the watch closed nothing is left to drain: the process exits, and cleanly.
    drop(watch);
    drop(health);
    let deadline = Instant::now() + 2 * PATIENCE;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the process was still running {:?} after SIGTERM", 2 * PATIENCE);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    assert_eq!(stored_events(&db).await, 2);
}
