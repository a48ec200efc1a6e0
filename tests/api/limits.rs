//! Serving limits and rate limits over real sockets: each limit refuses the client
//! over it with the error its protocol expects, and the server keeps answering
//! everyone else.

use std::time::{Duration, Instant};

use audit_service::config::RateLimits;
use audit_service::proto::audit as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic_types::StatusExt;

use crate::fixtures::{WEEK, event, oversized_batch, ts, week};
use crate::grpc_web::{self, Mode};
use crate::held::HeldRequest;
use crate::server::{PATIENCE, SECRET, TestServer, authed, http1, http2, reader, rest_summary, writer};

const BATCH_PATH: &str = "/v1/audit/events:batchCreate";

fn small_batch(id: &str) -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: vec![event(id, "org_a", "session.login", "success", "2026-03-02T10:00:00Z")],
    }
}

fn rest_batch_json(id: &str) -> String {
    format!(
        r#"{{"events":[{{"id":"{id}","timestamp":"2026-03-02T10:00:00Z","organization_id":"org_a","action":"session.login","result":"success"}}]}}"#
    )
}

/// The AIP-193 envelope's `status` and `message`.
async fn aip(response: reqwest::Response) -> (String, String) {
    let json: serde_json::Value = response.json().await.expect("a JSON error body");
    (json["error"]["status"].as_str().unwrap().to_owned(), json["error"]["message"].as_str().unwrap().to_owned())
}

/// Everyone else is still served: a summary over gRPC and REST, and a probe.
async fn still_serving(server: &TestServer) {
    server.grpc().await.get_events_summary(authed(week(), &reader())).await.expect("gRPC still served");
    let rest = rest_summary(&http1(), &server.base, WEEK, &reader()).await;
    assert_eq!(rest.status(), 200, "REST still served");
    assert_eq!(http1().get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
}

/// Holds SQLite's write lock from another connection, as another process would.
async fn lock_database(server: &TestServer) -> sqlx::SqliteConnection {
    use sqlx::{ConnectOptions, Executor};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&server.db_path).connect().await.unwrap();
    conn.execute("BEGIN EXCLUSIVE").await.unwrap();
    conn
}

async fn unlock_database(mut conn: sqlx::SqliteConnection) {
    use sqlx::Executor;
    conn.execute("COMMIT").await.unwrap();
}

#[tokio::test]
async fn messages_and_bodies_over_the_size_limit_are_resource_exhausted_on_every_protocol() {
    let server = TestServer::start_with(|c| c.max_request_bytes = 4096).await;
    let big = oversized_batch();

    let status = server.grpc().await.batch_create_events(authed(big.clone(), &writer())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("exceeds the limit of 4096 bytes"), "{}", status.message());
    assert!(status.get_details_retry_info().is_none(), "a size limit is not a rate limit");

    for mode in [Mode::Binary, Mode::Text] {
        let error = grpc_web::call::<_, pb::BatchCreateEventsResponse>(
            &http1(),
            &server.base,
            "BatchCreateEvents",
            &big,
            Some(&writer()),
            mode,
        )
        .await
        .unwrap_err();
        assert_eq!((error.http_status, error.code), (200, Code::ResourceExhausted as i32), "{mode:?}: {error:?}");
    }

    let body = format!(r#"{{"events":[{{"user_agent":"{}"}}]}}"#, "x".repeat(5000));
    for client in [http1(), http2()] {
        let response = client
            .post(format!("{}{BATCH_PATH}", server.base))
            .bearer_auth(writer())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        assert_eq!(aip(response).await.0, "RESOURCE_EXHAUSTED");
    }
    // Nothing of the refused batches was stored, and small ones still go through.
    server.grpc().await.batch_create_events(authed(small_batch("small"), &writer())).await.unwrap();
    assert_eq!(crate::server::stored_events(&server.db_path).await, 1);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_target_over_the_limit_answers_414() {
    let server = TestServer::start_with(|c| c.limits.max_uri_bytes = 2048).await;
    let long = format!("{WEEK}&organization_id={}", "a".repeat(3000));
    for client in [http1(), http2()] {
        let response = rest_summary(&client, &server.base, &long, &reader()).await;
        assert_eq!(response.status(), 414);
        let (status, message) = aip(response).await;
        assert_eq!(status, "RESOURCE_EXHAUSTED");
        assert_eq!(message, "request target exceeds 2048 bytes");
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_http1_request_head_over_the_limit_answers_431() {
    let server = TestServer::start_with(|c| c.limits.max_header_bytes = 8192).await;
    let response = http1()
        .get(format!("{}/v1/audit/events:summary?{WEEK}", server.base))
        .bearer_auth(reader())
        .header("x-padding", "p".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    still_serving(&server).await;
    server.stop().await;
}

/// Reads the server's first SETTINGS frame as `(identifier, value)` pairs.
async fn server_settings(server: &TestServer) -> Vec<(u16, u32)> {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload).await.unwrap();
        let (kind, ack) = (head[3], head[4] & 1 == 1);
        if kind == 4 && !ack {
            return payload
                .chunks(6)
                .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
                .collect();
        }
    }
}

#[tokio::test]
async fn http2_connections_are_told_the_stream_and_header_limits_and_queue_within_them() {
    let server = TestServer::start_with(|c| {
        c.limits.http2_max_concurrent_streams = 7;
        c.limits.max_header_bytes = 12_000;
    })
    .await;
    let settings = server_settings(&server).await;
    assert!(settings.contains(&(0x3, 7)), "SETTINGS_MAX_CONCURRENT_STREAMS: {settings:?}");
    assert!(settings.contains(&(0x6, 12_000)), "SETTINGS_MAX_HEADER_LIST_SIZE: {settings:?}");
    // A client that respects the setting queues its extra requests: all 30 answer.
    // The first call lets the client read the SETTINGS before it opens more streams
    // (streams opened before that are refused with REFUSED_STREAM, as HTTP/2 says).
    let client = server.grpc().await;
    client.clone().get_events_summary(authed(week(), &reader())).await.unwrap();
    let calls = (0..30).map(|_| {
        let mut client = client.clone();
        async move { client.get_events_summary(authed(week(), &reader())).await }
    });
    for result in futures_util::future::join_all(calls).await {
        result.expect("every queued call is answered");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_deadline_exceeded_or_504_and_grpc_timeout_is_honoured() {
    let server = TestServer::start_with(|c| c.limits.request_timeout = Duration::from_millis(300)).await;
    // A held write lock keeps writes waiting well past the deadline.
    let lock = lock_database(&server).await;

    // The lock outlasts the deadline (300 ms) but not SQLite's busy timeout (2 s),
    // which would answer UNAVAILABLE: DEADLINE_EXCEEDED is the deadline's own answer.
    let status = server.grpc().await.batch_create_events(authed(small_batch("d1"), &writer())).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    let error = grpc_web::call::<_, pb::BatchCreateEventsResponse>(
        &http1(),
        &server.base,
        "BatchCreateEvents",
        &small_batch("d2"),
        Some(&writer()),
        Mode::Binary,
    )
    .await
    .unwrap_err();
    assert_eq!(error.code, Code::DeadlineExceeded as i32);

    let response = http1()
        .post(format!("{}{BATCH_PATH}", server.base))
        .bearer_auth(writer())
        .header("content-type", "application/json")
        .body(rest_batch_json("d3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(aip(response).await.0, "DEADLINE_EXCEEDED");

    // Reads are not blocked by the write lock (WAL), so everyone else is served.
    still_serving(&server).await;
    unlock_database(lock).await;
    server.grpc().await.batch_create_events(authed(small_batch("d4"), &writer())).await.expect("recovered");
    server.stop().await;

    // The client's grpc-timeout, shorter than the server's deadline, wins.
    let server = TestServer::start_with(|c| c.limits.request_timeout = Duration::from_secs(30)).await;
    let lock = lock_database(&server).await;
    // Sent by hand: tonic's client would also enforce the timeout itself and race
    // the server, and this must see the server's own answer. Neither the 30 s
    // deadline nor the busy timeout answers DEADLINE_EXCEEDED before 30 s, so
    // status 4 within the 60 s allowed here is the grpc-timeout's.
    let response = http2()
        .post(format!("{}/avnology.audit.v1.AuditService/BatchCreateEvents", server.base))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "200m")
        .bearer_auth(writer())
        .body(grpc_web::frame(&small_batch("d5")))
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED, trailers-only");
    unlock_database(lock).await;
    server.stop().await;
}

#[tokio::test]
async fn a_locked_database_answers_unavailable_quickly_and_recovers_without_restart() {
    let server = TestServer::start().await;
    let lock = lock_database(&server).await;
    // No hang: answered while the lock is still held (the request timeout is 15 s,
    // so UNAVAILABLE is the busy timeout's answer, not the deadline's).
    let status =
        tokio::time::timeout(PATIENCE, server.grpc().await.batch_create_events(authed(small_batch("u1"), &writer())))
            .await
            .expect("answered while the database is locked")
            .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let response = http1()
        .post(format!("{}{BATCH_PATH}", server.base))
        .bearer_auth(writer())
        .header("content-type", "application/json")
        .body(rest_batch_json("u2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    unlock_database(lock).await;
    server.grpc().await.batch_create_events(authed(small_batch("u3"), &writer())).await.expect("recovered");
    assert_eq!(crate::server::stored_events(&server.db_path).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_shed_with_unavailable_or_503() {
    let server = TestServer::start_with(|c| {
        c.limits.max_concurrent_requests = 2;
        c.limits.request_timeout = 2 * PATIENCE;
    })
    .await;
    // Two writes whose handlers are reading their bodies (the server asked for
    // them with 100 Continue) fill the limit until their bodies are sent.
    let mut busy = Vec::new();
    for id in ["c1", "c2"] {
        let token = format!("Bearer {}", writer());
        let headers = [("authorization", token.as_str()), ("content-type", "application/json")];
        busy.push(HeldRequest::start(server.addr, BATCH_PATH, &headers, rest_batch_json(id).into_bytes()).await);
    }

    // Shed at once rather than queued: queued calls would wait for bodies that
    // are only sent after these answers.
    let status = server.grpc().await.get_events_summary(authed(week(), &reader())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "server is overloaded, retry later");
    let error = grpc_web::call::<_, pb::GetEventsSummaryResponse>(
        &http1(),
        &server.base,
        "GetEventsSummary",
        &week(),
        Some(&reader()),
        Mode::Text,
    )
    .await
    .unwrap_err();
    assert_eq!(error.code, Code::Unavailable as i32);
    let response = rest_summary(&http1(), &server.base, WEEK, &reader()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(aip(response).await.0, "UNAVAILABLE");
    // Probes are never shed: a busy process is not a dead one.
    assert_eq!(http1().get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);

    for held in busy {
        let (status, body) = held.finish().await;
        assert_eq!(status, 200, "the in-flight writes finish: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(crate::server::stored_events(&server.db_path).await, 2);
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn slow_http1_clients_are_cut_off_at_the_header_read_timeout() {
    let server = TestServer::start_with(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    // Taken before connecting, so the server's timer cannot have started earlier:
    // the lower bound below holds however slow the machine is.
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the slow connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the timeout: {:?}", started.elapsed());
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_summary_range_over_the_maximum_is_invalid_argument() {
    let server = TestServer::start_with(|c| c.limits.max_summary_range = Some(Duration::from_secs(30 * 86_400))).await;
    let wide = "start_time=2026-01-01T00:00:00Z&end_time=2026-01-31T00:00:00.000000001Z";
    let response = rest_summary(&http1(), &server.base, wide, &reader()).await;
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["details"][0]["fieldViolations"][0]["field"], "end_time");
    assert_eq!(json["error"]["message"], "end_time must be at most 30 days after start_time");
    let request = pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-01-01T00:00:00Z")),
        end_time: Some(ts("2026-03-01T00:00:00Z")),
        organization_id: String::new(),
    };
    let status = server.grpc().await.get_events_summary(authed(request, &reader())).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let exactly = "start_time=2026-01-01T00:00:00Z&end_time=2026-01-31T00:00:00Z";
    assert_eq!(rest_summary(&http1(), &server.base, exactly, &reader()).await.status(), 200);
    server.stop().await;
}

fn token_of(subject: &str, scopes: &[&str], org: Option<&str>) -> String {
    audit_service::auth::mint_hs256(SECRET.as_bytes(), subject, scopes, org, Duration::from_secs(600)).unwrap()
}

/// Calls `call` until it is refused; how many were served first, the refusal, and
/// when the refused call was sent (from then on the bucket held under one token
/// but for its refill). A bucket holding at most `tokens` at `since` and refilling
/// at `per_sec` serves no more than that plus the refill since: a bound a slow
/// machine only loosens.
async fn served_until_refused<E, Fut>(
    tokens: u32,
    per_sec: u32,
    since: Instant,
    mut call: impl FnMut() -> Fut,
) -> (u64, E, Instant)
where
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut served = 0;
    loop {
        let sent = Instant::now();
        let outcome = call().await;
        let allowed = u64::from(tokens) + (since.elapsed().as_secs_f64() * f64::from(per_sec)).floor() as u64;
        match outcome {
            Ok(()) => served += 1,
            Err(refusal) => return (served, refusal, sent),
        }
        assert!(served <= allowed, "served {served}, more than the {allowed} the bucket can have held");
    }
}

#[tokio::test]
async fn callers_over_their_rate_get_resource_exhausted_or_429_with_retry_after_and_others_do_not() {
    const BURST: u32 = 5;
    let server = TestServer::start_with(|c| {
        c.limits.rate = RateLimits { read_per_sec: 1, read_burst: BURST, write_per_sec: 1, write_burst: 1 };
    })
    .await;
    let token = reader();
    let rest_call = || async {
        let response = rest_summary(&http1(), &server.base, WEEK, &token).await;
        if response.status() == 200 { Ok(()) } else { Err(response) }
    };
    // A fresh bucket serves its whole burst, then refuses before the refill allows more.
    let (served, response, emptied) = served_until_refused(BURST, 1, Instant::now(), rest_call).await;
    assert!(served >= u64::from(BURST), "the burst of {BURST} is served: {served}");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "a token comes back within a second at 1/s: {retry_after}");
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(json["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.RetryInfo");

    // The same caller is limited whatever protocol it switches to: the emptied
    // bucket (under one token when it refused) serves only what refilled since.
    let grpc_call = || async { server.grpc().await.get_events_summary(authed(week(), &token)).await.map(|_| ()) };
    let (_, status, emptied) = served_until_refused(1, 1, emptied, grpc_call).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    let delay = status.get_details_retry_info().and_then(|info| info.retry_delay).expect("RetryInfo");
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
    let web_call = || async {
        grpc_web::call::<_, pb::GetEventsSummaryResponse>(
            &http1(),
            &server.base,
            "GetEventsSummary",
            &week(),
            Some(&token),
            Mode::Binary,
        )
        .await
        .map(|_| ())
    };
    let (_, error, _) = served_until_refused(1, 1, emptied, web_call).await;
    assert_eq!(error.code, Code::ResourceExhausted as i32);

    // Other subjects, the same subject for one organization, and writes have
    // their own allowances; health is never limited.
    assert_eq!(
        rest_summary(&http1(), &server.base, WEEK, &token_of("usr_other", &["audit:read"], None)).await.status(),
        200
    );
    let org_token = token_of("usr_test", &["audit:read"], Some("org_a"));
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &org_token).await.status(), 200);
    let write_token = token_of("usr_test", &["audit:read", "audit:write"], None);
    let mut id = 0;
    let write_call = || {
        id += 1;
        let request = authed(small_batch(&format!("r{id}")), &write_token);
        async { server.grpc().await.batch_create_events(request).await.map(|_| ()) }
    };
    let (served, status, _) = served_until_refused(1, 1, Instant::now(), write_call).await;
    assert!(served >= 1, "writes have their own bucket, full: {status:?}");
    assert_eq!(status.code(), Code::ResourceExhausted, "write rate 1/s, burst 1");
    assert_eq!(http1().get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);

    // The allowance comes back at the stated rate: served again well before the deadline.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = rest_summary(&http1(), &server.base, WEEK, &token).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(Instant::now() < deadline, "the allowance never came back");
        // Polling a refused caller: each call is itself answered at once.
        tokio::time::sleep(delay).await;
    }
    server.stop().await;
}
