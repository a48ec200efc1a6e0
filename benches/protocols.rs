//! Protocol benchmark: the same warm summary request over native gRPC, gRPC-web
//! (binary, HTTP/1.1 and h2c) and REST (HTTP/1.1 keep-alive and h2c), plus the empty
//! gRPC health check, against one server process in one run, at several
//! concurrency levels. The server is pinned to one core and this load generator to
//! another (`taskset`); every answer is checked: HTTP status, `grpc-status` (in
//! headers, trailers or the gRPC-web trailer frame), and the body itself, decoded
//! in its protocol's encoding and compared with the summary one native gRPC call
//! returned before the run (the health check: SERVING). Prints requests/s, p50,
//! p99, the ratio to native gRPC and the server's peak RSS.
//!
//! cargo bench --bench protocols -- [--seconds 3] [--concurrency 1,16,64] [--days 7]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

use audit_service::proto::audit as pb;

#[path = "../tests/common/process.rs"]
mod process;

use process::{free_port, peak_rss_kib, wait_ready};

const SUMMARY_GRPC: &str = "/avnology.audit.v1.AuditService/GetEventsSummary";
const HEALTH_GRPC: &str = "/grpc.health.v1.Health/Check";
/// Streams per HTTP/2 connection: a client multiplexes, but not without bound.
const STREAMS_PER_CONNECTION: usize = 16;
/// Load generator and server each get a core of their own.
const CLIENT_CORE: &str = "0";
const SERVER_CORE: &str = "1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Http1,
    Http2,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Grpc,
    GrpcWeb,
    Rest,
}

#[derive(Clone, Copy)]
struct Protocol {
    name: &'static str,
    wire: Wire,
    check: Check,
}

const PROTOCOLS: [Protocol; 6] = [
    Protocol { name: "grpc", wire: Wire::Http2, check: Check::Grpc },
    Protocol { name: "grpc-web h1.1", wire: Wire::Http1, check: Check::GrpcWeb },
    Protocol { name: "grpc-web h2c", wire: Wire::Http2, check: Check::GrpcWeb },
    Protocol { name: "rest h1.1", wire: Wire::Http1, check: Check::Rest },
    Protocol { name: "rest h2c", wire: Wire::Http2, check: Check::Rest },
    Protocol { name: "health grpc", wire: Wire::Http2, check: Check::Grpc },
];

struct Options {
    seconds: f64,
    /// Width of the summary range in whole days, ending at today's midnight UTC.
    days: i64,
    concurrency: Vec<usize>,
}

fn options() -> Options {
    let mut o = Options { seconds: 3.0, days: 7, concurrency: vec![1, 16, 64] };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--seconds" => o.seconds = value.parse().expect("--seconds S"),
            "--days" => o.days = value.parse().expect("--days N"),
            "--concurrency" => {
                o.concurrency = value.split(',').map(|c| c.parse().expect("--concurrency 1,16,64")).collect()
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Re-runs this process pinned to the client core, once; the pinned run is told
/// the machine's core count, which it can no longer see.
fn pin_self() {
    if std::env::var_os("AUDIT_BENCH_CORES").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let can_pin =
        cores >= 2 && Command::new("taskset").args(["-c", SERVER_CORE, "true"]).status().is_ok_and(|s| s.success());
    if !can_pin {
        // SAFETY: single-threaded here, before any runtime starts.
        unsafe { std::env::set_var("AUDIT_BENCH_CORES", format!("{cores} (unpinned)")) };
        return;
    }
    let status = Command::new("taskset")
        .args(["-c", CLIENT_CORE])
        .arg(std::env::current_exe().expect("own path"))
        .args(std::env::args().skip(1))
        .env("AUDIT_BENCH_CORES", cores.to_string())
        .status()
        .expect("taskset runs");
    std::process::exit(status.code().unwrap_or(1));
}

fn pinned() -> bool {
    std::env::var("AUDIT_BENCH_CORES").is_ok_and(|c| !c.contains("unpinned"))
}

fn spawn_server(db: &std::path::Path, port: u16) -> Child {
    let mut command = if pinned() {
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CORE]).arg(env!("CARGO_BIN_EXE_audit-service"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_audit-service"))
    };
    command
        // Demo mode seeds five weeks of events for three organizations.
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", db.display()))
        // Demo mode signs with a key of its own and refuses configured ones.
        .env_remove("AUDIT_JWT_SECRET")
        .env_remove("AUDIT_JWKS_URL")
        .env_remove("AUDIT_JWT_ISSUER")
        .env_remove("AUDIT_JWT_AUDIENCE")
        .env("AUDIT_RATE_LIMIT_READ_PER_SEC", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server binary starts")
}

fn grpc_frame(message: &impl Message) -> Bytes {
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    frame.extend(message.encode_to_vec());
    Bytes::from(frame)
}

/// The request each protocol sends, as a template cloned per call.
#[derive(Clone)]
struct Template {
    method: http::Method,
    uri: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Template {
    fn build(&self, authority: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = format!("http://{authority}{}", self.uri).parse().unwrap();
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        request.headers_mut().insert(header::HOST, HeaderValue::from_str(authority).unwrap());
        request
    }
}

fn template(protocol: Protocol, token: &str, range: (&str, &str)) -> Template {
    let bearer = (header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    let summary = pb::GetEventsSummaryRequest {
        start_time: Some(audit_service::rfc3339::parse(range.0).unwrap()),
        end_time: Some(audit_service::rfc3339::parse(range.1).unwrap()),
        organization_id: "org_acme".into(),
    };
    let grpc_headers = |content_type: &'static str| {
        vec![
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::TE, HeaderValue::from_static("trailers")),
            bearer.clone(),
        ]
    };
    match (protocol.name, protocol.check) {
        ("health grpc", _) => Template {
            method: http::Method::POST,
            uri: HEALTH_GRPC.into(),
            headers: grpc_headers("application/grpc"),
            body: grpc_frame(&tonic_health::pb::HealthCheckRequest { service: String::new() }),
        },
        (_, Check::Grpc) => Template {
            method: http::Method::POST,
            uri: SUMMARY_GRPC.into(),
            headers: grpc_headers("application/grpc"),
            body: grpc_frame(&summary),
        },
        (_, Check::GrpcWeb) => Template {
            method: http::Method::POST,
            uri: SUMMARY_GRPC.into(),
            headers: vec![
                (header::CONTENT_TYPE, HeaderValue::from_static("application/grpc-web+proto")),
                (header::ACCEPT, HeaderValue::from_static("application/grpc-web+proto")),
                (header::HeaderName::from_static("x-grpc-web"), HeaderValue::from_static("1")),
                bearer,
            ],
            body: grpc_frame(&summary),
        },
        (_, Check::Rest) => Template {
            method: http::Method::GET,
            uri: format!(
                "/v1/audit/events:summary?start_time={}&end_time={}&organization_id=org_acme",
                range.0, range.1
            ),
            headers: vec![bearer],
            body: Bytes::new(),
        },
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(port: u16, wire: Wire) -> Sender {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
    stream.set_nodelay(true).unwrap();
    let io = TokioIo::new(stream);
    match wire {
        Wire::Http1 => {
            let (send, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            Sender::H1(send)
        }
        Wire::Http2 => {
            let (send, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(connection);
            Sender::H2(send)
        }
    }
}

/// What every answer of a cell must carry.
enum Expected {
    Summary(pb::GetEventsSummaryResponse),
    Serving,
}

impl Expected {
    /// Compares a decoded body with the expectation; `json` for REST bodies.
    fn check(&self, json: bool, body: &[u8]) -> Result<(), String> {
        match self {
            Expected::Summary(want) => {
                let got: pb::GetEventsSummaryResponse = if json {
                    serde_json::from_slice(body).map_err(|e| format!("summary JSON: {e}"))?
                } else {
                    pb::GetEventsSummaryResponse::decode(body).map_err(|e| format!("summary message: {e}"))?
                };
                if &got == want {
                    Ok(())
                } else {
                    Err(format!("summary differs: {} buckets, expected {}", got.buckets.len(), want.buckets.len()))
                }
            }
            Expected::Serving => {
                let got = tonic_health::pb::HealthCheckResponse::decode(body).map_err(|e| format!("health: {e}"))?;
                let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
                if got.status == serving { Ok(()) } else { Err(format!("health status {}", got.status)) }
            }
        }
    }
}

/// The body of an answer that succeeded in its protocol: the JSON document, or the
/// payload of the single gRPC message.
async fn answer_body(check: Check, response: http::Response<hyper::body::Incoming>) -> Result<Bytes, String> {
    let (parts, body) = response.into_parts();
    if parts.status != 200 {
        return Err(format!("HTTP {}", parts.status));
    }
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned();
    let mut data = collected.to_bytes();
    match check {
        Check::Rest => Ok(data),
        Check::Grpc => {
            let status = parts.headers.get("grpc-status").or_else(|| trailers.as_ref()?.get("grpc-status"));
            match status.map(HeaderValue::as_bytes) {
                Some(b"0") => next_frame(&mut data).filter(|f| f.0 == 0).map(|f| f.1).ok_or("no message frame".into()),
                other => Err(format!("grpc-status {other:?}")),
            }
        }
        Check::GrpcWeb => {
            let mut message = None;
            while let Some((flag, payload)) = next_frame(&mut data) {
                if flag & 0x80 == 0 {
                    message.get_or_insert(payload);
                    continue;
                }
                let text = String::from_utf8_lossy(&payload).to_ascii_lowercase();
                if !text.contains("grpc-status:0\r\n") {
                    return Err(text);
                }
                return message.ok_or("no message frame".into());
            }
            Err("no trailer frame".into())
        }
    }
}

/// One length-prefixed gRPC (or gRPC-web) frame: its flag byte and payload.
fn next_frame(data: &mut Bytes) -> Option<(u8, Bytes)> {
    if data.remaining() < 5 {
        return None;
    }
    let flag = data.get_u8();
    let len = data.get_u32() as usize;
    (len <= data.len()).then(|| (flag, data.split_to(len)))
}

/// Whether the answer is a success in its protocol and carries the expected body.
async fn answered_ok(
    check: Check,
    expected: &Expected,
    response: http::Response<hyper::body::Incoming>,
) -> Result<(), String> {
    let body = answer_body(check, response).await?;
    expected.check(check == Check::Rest, &body)
}

/// The summary every protocol must return, from one native gRPC call before the run.
async fn expected_summary(port: u16, template: &Template) -> pb::GetEventsSummaryResponse {
    let Sender::H2(mut send) = connect(port, Wire::Http2).await else { unreachable!("asked for HTTP/2") };
    send.ready().await.expect("connection ready");
    let response = send.send_request(template.build(&format!("127.0.0.1:{port}"))).await.expect("an answer");
    let body = answer_body(Check::Grpc, response).await.expect("a successful summary");
    let summary = pb::GetEventsSummaryResponse::decode(body).expect("a summary message");
    // An empty answer would make every comparison vacuous.
    assert!(summary.buckets.iter().any(|b| b.count > 0), "the demo data gave an empty summary");
    summary
}

struct Measured {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    first_error: Option<String>,
}

async fn run(
    protocol: Protocol,
    port: u16,
    concurrency: usize,
    seconds: f64,
    template: Template,
    expected: Arc<Expected>,
) -> Measured {
    let authority = format!("127.0.0.1:{port}");
    let connections = match protocol.wire {
        Wire::Http1 => concurrency,
        Wire::Http2 => concurrency.div_ceil(STREAMS_PER_CONNECTION),
    };
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(Some(connect(port, protocol.wire).await));
    }
    let warmup = Duration::from_secs_f64((seconds / 6.0).min(0.5));
    let started = Instant::now() + warmup;
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        // HTTP/1.1: a keep-alive connection per worker; HTTP/2: workers share
        // connections, up to STREAMS_PER_CONNECTION streams each.
        let mut sender = match protocol.wire {
            Wire::Http1 => senders[worker].take().expect("one connection per worker"),
            Wire::Http2 => match &senders[worker % connections] {
                Some(Sender::H2(send)) => Sender::H2(send.clone()),
                _ => unreachable!("HTTP/2 connections are shared, never taken"),
            },
        };
        let template = template.clone();
        let authority = authority.clone();
        let check = protocol.check;
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let (mut errors, mut first_error) = (0, None);
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let request = template.build(&authority);
                let response = match &mut sender {
                    Sender::H1(send) => match send.ready().await {
                        Ok(()) => send.send_request(request).await,
                        Err(error) => Err(error),
                    },
                    Sender::H2(send) => match send.ready().await {
                        Ok(()) => send.send_request(request).await,
                        Err(error) => Err(error),
                    },
                };
                let outcome = match response {
                    Ok(response) => answered_ok(check, &expected, response).await,
                    Err(error) => Err(error.to_string()),
                };
                if sent < started {
                    continue;
                }
                match outcome {
                    Ok(()) => latencies.push(sent.elapsed().as_micros() as u32),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let (latencies, e, first) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
        first_error = first_error.or(first);
    }
    all.sort_unstable();
    let quantile = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied();
    Measured {
        requests_per_sec: all.len() as f64 / seconds,
        p50_ms: quantile(0.50).unwrap_or(0) as f64 / 1000.0,
        p99_ms: quantile(0.99).unwrap_or(0) as f64 / 1000.0,
        errors,
        first_error,
    }
}

/// A range of the demo data: the last `days` whole days before today (UTC).
fn last_days(days: i64) -> (String, String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let end = now - now.rem_euclid(86_400);
    let start = end - days * 86_400;
    let text = |s: i64| audit_service::rfc3339::format(&pbjson_types::Timestamp { seconds: s, nanos: 0 });
    (text(start), text(end))
}

/// The read-only, platform-wide token the demo server hands its dashboard.
async fn demo_token(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("demo server");
    stream.write_all(b"GET /demo-token HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "no demo token: {}", String::from_utf8_lossy(&answer));
    let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| &answer[at + 4..]).expect("a body");
    let json: serde_json::Value = serde_json::from_slice(body).expect("a json body");
    json["token"].as_str().expect("a token").to_owned()
}

fn main() {
    pin_self();
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn_server(&dir.path().join("audit.db"), port);
    let pid = server.id();
    let failures = runtime.block_on(async {
        wait_ready(port).await;
        let token = demo_token(port).await;
        let (start, end) = last_days(o.days);
        let summary = expected_summary(port, &template(PROTOCOLS[0], &token, (&start, &end))).await;
        let (buckets, events) = (summary.buckets.len(), summary.buckets.iter().map(|b| b.count).sum::<i64>());
        let summary = Arc::new(Expected::Summary(summary));
        let serving = Arc::new(Expected::Serving);
        println!(
            "# protocol benchmark: {} s per cell, server pinned to core {SERVER_CORE}, load generator to core {CLIENT_CORE} \
             (machine: {} cores)",
            o.seconds,
            std::env::var("AUDIT_BENCH_CORES").unwrap_or_default(),
        );
        println!("# summary: org_acme, {start} .. {end} (demo data, warm); health: grpc.health.v1.Health/Check");
        println!(
            "# every answer's body decoded and compared: summary = the {buckets} buckets ({events} events) one \
             native gRPC call returned before the run; health = SERVING"
        );
        println!(
            "{:<14} {:>5} {:>10} {:>9} {:>9} {:>8} {:>7}",
            "protocol", "conc", "req/s", "p50 ms", "p99 ms", "vs grpc", "errors"
        );
        let mut failures = 0;
        let mut misses = Vec::new();
        for &concurrency in &o.concurrency {
            let mut grpc_rps = None;
            let mut rates = Vec::new();
            for protocol in PROTOCOLS {
                let expected = if protocol.name == "health grpc" { &serving } else { &summary };
                let request = template(protocol, &token, (&start, &end));
                let measured = run(protocol, port, concurrency, o.seconds, request, expected.clone()).await;
                let base = *grpc_rps.get_or_insert(measured.requests_per_sec);
                let ratio = measured.requests_per_sec / base;
                println!(
                    "{:<14} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>7.2}x {:>7}",
                    protocol.name,
                    concurrency,
                    measured.requests_per_sec,
                    measured.p50_ms,
                    measured.p99_ms,
                    ratio,
                    measured.errors
                );
                if let Some(error) = &measured.first_error {
                    println!("    first error: {error}");
                }
                failures += measured.errors;
                rates.push((protocol.name, ratio));
            }
            for (name, ratio) in rates {
                let target = match name {
                    "rest h1.1" | "rest h2c" => 0.8,
                    "grpc-web h1.1" | "grpc-web h2c" => 0.9,
                    "health grpc" => {
                        // The summary must reach half the empty RPC's rate.
                        if ratio > 0.0 && 1.0 / ratio < 0.5 {
                            misses.push(format!("summary/health at {concurrency}: {:.2}", 1.0 / ratio));
                        }
                        continue;
                    }
                    _ => continue,
                };
                if ratio < target {
                    misses.push(format!("{name} at {concurrency}: {ratio:.2}x < {target}x"));
                }
            }
        }
        match peak_rss_kib(pid) {
            Some(kib) => println!("server peak RSS: {:.1} MiB", kib as f64 / 1024.0),
            None => println!("server peak RSS: unknown"),
        }
        if misses.is_empty() {
            println!("targets: all met (REST >= 0.8x, gRPC-web >= 0.9x native gRPC; summary >= 0.5x health)");
        } else {
            println!("targets missed: {}", misses.join("; "));
        }
        if failures > 0 {
            println!("{failures} requests failed");
        }
        failures
    });
    let _ = server.kill();
    let _ = server.wait();
    drop(dir);
    // A wrong answer, or none, must not pass as a measurement.
    if failures > 0 {
        std::process::exit(1);
    }
}
