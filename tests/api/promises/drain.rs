//! SIGTERM on the real binary: gRPC health turns NOT_SERVING for a client already
//! watching, requests in flight finish and are stored, new connections are refused,
//! and the process exits 0 once drained.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use audit_service::proto::audit as pb;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::fixtures::event;
use crate::grpc_web;
use crate::held::HeldRequest;
use crate::process;
use crate::server::{PATIENCE, SECRET, http1, stored_events, writer};

fn spawn_server(db: &Path, port: u16) -> Child {
    process::serve(db, port)
        .env("AUDIT_JWT_SECRET", SECRET)
        // Longer than the test waits: the exit below comes from a finished drain.
        .env("AUDIT_DRAIN_TIMEOUT_SECS", "300")
        .spawn()
        .expect("server binary starts")
}

fn batch(id: &str) -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: vec![event(id, "org_a", "session.login", "success", "2026-03-02T10:00:00Z")],
    }
}

type BodySender = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;
type Reply = tokio::task::JoinHandle<hyper::Result<http::Response<hyper::body::Incoming>>>;

/// A native gRPC batch over HTTP/2 whose body is sent up to `split` bytes; the rest
/// goes through the returned sender.
async fn partial_grpc_batch(addr: SocketAddr, frame: &[u8], split: usize) -> (BodySender, Reply) {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    let (tx, rx) = mpsc::channel(4);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let body = StreamBody::new(Box::pin(frames));
    let request = http::Request::post(format!("http://{addr}/avnology.audit.v1.AuditService/BatchCreateEvents"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {}", writer()))
        .body(body)
        .unwrap();
    let reply = tokio::spawn(sender.send_request(request));
    tx.send(Ok(Frame::data(Bytes::copy_from_slice(&frame[..split])))).await.unwrap();
    (tx, reply)
}

/// Waits until `/metrics` counts a native gRPC batch in flight: the server has it.
async fn grpc_batch_in_flight(addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = http1().get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        let in_flight = text
            .lines()
            .filter(|l| l.starts_with("audit_rpc_in_flight{") && l.contains(r#"protocol="grpc""#))
            .filter(|l| l.contains(r#"rpc="avnology.audit.v1.AuditService/BatchCreateEvents""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        if in_flight >= 1.0 {
            return;
        }
        assert!(Instant::now() < deadline, "the gRPC batch never reached the server: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    let port = process::free_port();
    let mut child = spawn_server(&db, port);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut health = HealthClient::new(process::connect(port).await);
    let request = HealthCheckRequest { service: "avnology.audit.v1.AuditService".into() };
    let mut watch = health.watch(request).await.expect("watch opens").into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status(), ServingStatus::Serving);

    // Writes in flight, REST and gRPC-web: the server is reading their bodies.
    let token = format!("Bearer {}", writer());
    let rest = HeldRequest::start(
        addr,
        "/v1/audit/events:batchCreate",
        &[("authorization", &token), ("content-type", "application/json")],
        serde_json::to_vec(&batch("rest-in-flight")).unwrap(),
    )
    .await;
    let web = HeldRequest::start(
        addr,
        "/avnology.audit.v1.AuditService/BatchCreateEvents",
        &[("authorization", &token), ("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")],
        grpc_web::frame(&batch("web-in-flight")).to_vec(),
    )
    .await;
    // And native gRPC, half its message sent: `/metrics` shows when the server has it.
    let grpc_message = grpc_web::frame(&batch("grpc-in-flight"));
    let (rest_of_body, grpc_reply) = partial_grpc_batch(addr, &grpc_message, grpc_message.len() / 2).await;
    grpc_batch_in_flight(addr).await;

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
    let rest_of_message = Bytes::copy_from_slice(&grpc_message[grpc_message.len() / 2..]);
    rest_of_body.send(Ok(Frame::data(rest_of_message))).await.unwrap();
    drop(rest_of_body);
    let response = grpc_reply.await.unwrap().expect("the gRPC batch is answered");
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.expect("the whole reply");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()), Some("0".into()), "{trailers:?}");
    let reply = pb::BatchCreateEventsResponse::decode(&collected.to_bytes()[5..]).expect("a reply message");
    assert_eq!(reply.created_count, 1);

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
    assert_eq!(stored_events(&db).await, 3);
}
