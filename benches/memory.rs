//! Memory benchmark: the server's peak resident set while 8 worst-case bodies are
//! in flight at once, authenticated and not, against the same server idle. Each
//! scenario runs on a fresh server process (the kernel's high-water mark only
//! rises), and every answer is checked. Prints peak RSS, the growth over idle, and
//! that growth per request as a multiple of `AUDIT_MAX_REQUEST_BYTES` — the factor
//! the worst case in docs/security.md is stated in.
//!
//! cargo bench --bench memory -- [--concurrency 8]

use std::process::{Child, Stdio};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

use audit_service::proto::audit as pb;

#[path = "../tests/common/process.rs"]
mod process;
#[path = "../tests/common/server.rs"]
mod server;

use process::{free_port, peak_rss_kib, wait_ready};
use server::{SECRET, writer};

const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
const BATCH_GRPC: &str = "/avnology.audit.v1.AuditService/BatchCreateEvents";
const BATCH_REST: &str = "/v1/audit/events:batchCreate";

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Idle,
    /// The densest JSON a client can send, with no token: refused from the headers.
    RestUnauthenticated,
    /// The same over native gRPC, with no token.
    GrpcUnauthenticated,
    /// The densest JSON the body budget lets through, with a valid token.
    RestWorstAccepted,
    /// The densest JSON of all (one value per 2 bytes), with a valid token: the
    /// budget refuses it before conversion.
    RestDensest,
    /// Free-form JSON holding an integer past 2^53 takes the reflective conversion:
    /// the densest body its stricter budget admits (a value per 192 bytes).
    RestReflectiveWorst,
    /// An 8 MiB protobuf message of the most values prost can be made to build.
    GrpcWorst,
}

/// The server process, killed however the scenario ends (a failed check panics).
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(db: &std::path::Path, port: u16, concurrency: usize) -> ServerProcess {
    let child = process::serve(db, port)
        .env("AUDIT_JWT_SECRET", SECRET)
        .env("AUDIT_MAX_REQUEST_BYTES", MAX_REQUEST_BYTES.to_string())
        .env("AUDIT_MAX_CONCURRENT_REQUESTS", (concurrency * 2).to_string())
        .env("AUDIT_RATE_LIMIT_WRITE_PER_SEC", "0")
        .env("AUDIT_REQUEST_TIMEOUT_MS", "600000")
        .env("RUST_LOG", "error")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server binary starts");
    ServerProcess(child)
}

fn event_json(index: usize, details: &str) -> String {
    format!(
        r#"{{"id":"m{index}","timestamp":"2026-11-20T10:00:00Z","organization_id":"org_mem","action":"session.login","result":"success","details":{details}}}"#
    )
}

/// A batch body of about `bytes` whose details hold numbers of `digits` digits
/// each, `per_event` of them per event.
fn rest_body(digits: usize, per_event: usize, bytes: usize) -> String {
    let number = "7".repeat(digits);
    let details = format!(r#"{{"x":[{}]}}"#, vec![number.as_str(); per_event].join(","));
    let one = event_json(1000, &details).len() + 1;
    let events = ((bytes - 64) / one).min(1000);
    let list: Vec<String> = (0..events).map(|i| event_json(i, &details)).collect();
    format!(r#"{{"events":[{}]}}"#, list.join(","))
}

/// A batch body of about `MAX_REQUEST_BYTES` whose details hold one integer past
/// 2^53 and strings of 190 characters, 192 bytes a value with quotes and comma.
fn reflective_body() -> String {
    let text = format!("\"{}\"", "s".repeat(190));
    let details = format!(r#"{{"n":9007199254740993,"x":[{}]}}"#, vec![text.as_str(); 4000].join(","));
    let one = event_json(1000, &details).len() + 1;
    let events = (MAX_REQUEST_BYTES - 64) / one;
    let list: Vec<String> = (0..events).map(|i| event_json(i, &details)).collect();
    format!(r#"{{"events":[{}]}}"#, list.join(","))
}

/// An 8 MiB batch message whose details are lists of nulls: 4 bytes a value.
fn grpc_frame() -> Bytes {
    use pbjson_types::value::Kind;
    let null = pbjson_types::Value { kind: Some(Kind::NullValue(0)) };
    let per_event = 4000;
    let list =
        pbjson_types::Value { kind: Some(Kind::ListValue(pbjson_types::ListValue { values: vec![null; per_event] })) };
    let details = pbjson_types::Struct { fields: [("x".to_owned(), list)].into_iter().collect() };
    let event = pb::AuditEvent {
        id: String::new(),
        timestamp: Some(pbjson_types::Timestamp { seconds: 1_795_000_000, nanos: 0 }),
        organization_id: "org_mem".into(),
        action: "session.login".into(),
        result: "success".into(),
        details: Some(details),
        log_index: 0,
        ..Default::default()
    };
    let count = (MAX_REQUEST_BYTES - 64) / (event.encoded_len() + 4);
    let message = pb::BatchCreateEventsRequest { events: vec![event; count.min(1000)] }.encode_to_vec();
    let mut frame = BytesMut::with_capacity(message.len() + 5);
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

/// One request's outcome: the HTTP status and, for gRPC, the `grpc-status`.
async fn send(port: u16, scenario: Scenario, body: Bytes, token: Option<String>) -> (u16, Option<String>) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
    let grpc = matches!(scenario, Scenario::GrpcUnauthenticated | Scenario::GrpcWorst);
    let mut request =
        http::Request::post(format!("http://127.0.0.1:{port}{}", if grpc { BATCH_GRPC } else { BATCH_REST }))
            .header("content-type", if grpc { "application/grpc" } else { "application/json" });
    if grpc {
        request = request.version(http::Version::HTTP_2).header("te", "trailers");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Full::new(body)).unwrap();
    let response = if grpc {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await
    };
    let response = match response {
        Ok(response) => response,
        // Refused from the headers, the body unread: over HTTP/1.1 the server
        // answers and closes, and the client may fail writing the rest first.
        Err(error) if matches!(scenario, Scenario::RestUnauthenticated) && closed_by_server(&error) => {
            return (401, None);
        }
        Err(error) => panic!("{scenario:?}: {error:?}"),
    };
    let status = response.status().as_u16();
    let header = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    let collected = response.into_body().collect().await.expect("answer body");
    let trailer = collected.trailers().and_then(|t| t.get("grpc-status")).map(|v| v.to_str().unwrap().to_owned());
    (status, header.or(trailer))
}

fn closed_by_server(error: &hyper::Error) -> bool {
    use std::error::Error as _;
    let io = error.source().and_then(|source| source.downcast_ref::<std::io::Error>());
    io.is_some_and(|io| matches!(io.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset))
}

fn expected(scenario: Scenario) -> (u16, Option<&'static str>) {
    match scenario {
        Scenario::Idle => (200, None),
        Scenario::RestUnauthenticated => (401, None),
        Scenario::GrpcUnauthenticated => (200, Some("16")),
        Scenario::RestWorstAccepted | Scenario::RestDensest | Scenario::RestReflectiveWorst => (400, None),
        Scenario::GrpcWorst => (200, Some("3")),
    }
}

fn body_of(scenario: Scenario) -> Bytes {
    match scenario {
        Scenario::Idle => Bytes::new(),
        // Numbers of 7 digits and a comma: 8 bytes a value, the most the budget
        // admits. As protobuf doubles they take 11 bytes, so the body is sized for
        // its message to stay within the limit as well (or it is refused, 413).
        Scenario::RestWorstAccepted => Bytes::from(rest_body(7, 4094, MAX_REQUEST_BYTES * 8 / 11 - 4096)),
        Scenario::RestUnauthenticated | Scenario::RestDensest => Bytes::from(rest_body(1, 4_000, MAX_REQUEST_BYTES)),
        Scenario::RestReflectiveWorst => Bytes::from(reflective_body()),
        Scenario::GrpcUnauthenticated | Scenario::GrpcWorst => grpc_frame(),
    }
}

fn main() {
    let mut concurrency = 8;
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--concurrency", Some(n)) => concurrency = n.parse().expect("--concurrency N"),
            (other, _) => panic!("unknown option {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("# memory benchmark: {concurrency} concurrent requests, AUDIT_MAX_REQUEST_BYTES = {MAX_REQUEST_BYTES}");
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>16}",
        "scenario", "body MiB", "peak MiB", "growth MiB", "growth/req ÷ max"
    );
    let mut idle_kib = 0;
    for scenario in [
        Scenario::Idle,
        Scenario::RestUnauthenticated,
        Scenario::GrpcUnauthenticated,
        Scenario::RestDensest,
        Scenario::RestWorstAccepted,
        Scenario::RestReflectiveWorst,
        Scenario::GrpcWorst,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let server = spawn_server(&dir.path().join("audit.db"), port, concurrency);
        let body = body_of(scenario);
        let token = match scenario {
            Scenario::RestUnauthenticated | Scenario::GrpcUnauthenticated => None,
            _ => Some(writer()),
        };
        runtime.block_on(async {
            wait_ready(port).await;
            if matches!(scenario, Scenario::Idle) {
                return;
            }
            let calls: Vec<_> =
                (0..concurrency).map(|_| tokio::spawn(send(port, scenario, body.clone(), token.clone()))).collect();
            for call in calls {
                let (status, grpc_status) = call.await.unwrap();
                let (want_status, want_grpc) = expected(scenario);
                assert_eq!(
                    (status, grpc_status.as_deref()),
                    (want_status, want_grpc),
                    "{scenario:?}: body of {} bytes",
                    body.len()
                );
            }
        });
        let peak = peak_rss_kib(server.0.id()).expect("VmHWM of the server");
        if matches!(scenario, Scenario::Idle) {
            idle_kib = peak;
        }
        let growth = peak.saturating_sub(idle_kib);
        let factor = growth as f64 * 1024.0 / concurrency as f64 / MAX_REQUEST_BYTES as f64;
        println!(
            "{:<24} {:>10.1} {:>12.1} {:>12.1} {:>16.2}",
            format!("{scenario:?}"),
            body.len() as f64 / 1048576.0,
            peak as f64 / 1024.0,
            growth as f64 / 1024.0,
            factor
        );
        drop(server);
    }
}
