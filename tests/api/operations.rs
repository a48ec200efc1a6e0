//! The operational surface: the admin listener (metrics off the public port, probes
//! on both), and the streams anyone may open without a token (gRPC health `Watch`,
//! reflection), which end after their lifetime and hold a concurrency slot while open.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use crate::fixtures::{WEEK, week};
use crate::server::{PATIENCE, TestServer, authed, http1, http2, reader, rest_summary};

async fn get(client: &reqwest::Client, url: String) -> reqwest::Response {
    client.get(url).send().await.expect("request answered")
}

#[tokio::test]
async fn with_an_admin_listener_metrics_leave_the_public_port_and_probes_answer_on_both() {
    let server = TestServer::start_with_admin(|_| {}).await;
    let admin = server.admin_base.clone().expect("an admin listener");
    assert_ne!(admin, server.base);
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &reader()).await.status(), 200, "something to count");
    for client in [http1(), http2()] {
        let scrape = get(&client, format!("{admin}/metrics")).await;
        assert_eq!(scrape.status(), 200);
        let content_type = scrape.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        assert!(scrape.text().await.unwrap().contains("audit_rpc_requests"), "the request counters are there");

        let public = get(&client, format!("{}/metrics", server.base)).await;
        assert_eq!(public.status(), 404, "no /metrics on the public port");
        let json: serde_json::Value = public.json().await.unwrap();
        assert_eq!(json["error"]["status"], "NOT_FOUND", "answered as any unknown path");

        for base in [&admin, &server.base] {
            for path in ["/healthz", "/readyz"] {
                assert_eq!(get(&client, format!("{base}{path}")).await.status(), 200, "{base}{path}");
            }
        }
    }
    // The admin port serves nothing else: not the API, not an unknown path.
    let api = http1().get(format!("{admin}/v1/audit/events:summary?{WEEK}")).bearer_auth(reader()).send().await;
    assert_eq!(api.unwrap().status(), 404);
    assert_eq!(get(&http1(), format!("{admin}/openapi.json")).await.status(), 404);
    assert_eq!(http1().post(format!("{admin}/metrics")).send().await.unwrap().status(), 404);

    // It shuts down with the server.
    let admin_addr = admin.trim_start_matches("http://").to_owned();
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(&admin_addr).await.is_err(), "the admin listener is closed");
}

#[tokio::test]
async fn without_an_admin_listener_metrics_stay_on_the_public_port() {
    let server = TestServer::start().await;
    assert!(server.admin_base.is_none());
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &reader()).await.status(), 200, "something to count");
    let scrape = get(&http1(), format!("{}/metrics", server.base)).await;
    assert_eq!(scrape.status(), 200);
    assert!(scrape.text().await.unwrap().contains("audit_rpc_requests"));
    server.stop().await;
}

/// A health `Watch` of the audit service, once its first answer (SERVING) is in.
async fn open_watch(server: &TestServer) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let mut health = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest { service: "avnology.audit.v1.AuditService".into() };
    let mut watch = health.watch(request).await.expect("watch opens without a token").into_inner();
    let first = watch.message().await.expect("a first status").expect("the stream is open");
    assert_eq!(first.status(), ServingStatus::Serving);
    watch
}

/// A reflection session, once its first answer is in; the client's side stays open
/// until the sender is dropped.
async fn open_reflection(
    server: &TestServer,
) -> (tonic::Streaming<ServerReflectionResponse>, mpsc::Sender<ServerReflectionRequest>) {
    let mut client = ServerReflectionClient::new(server.channel().await);
    let (sender, receiver) = mpsc::channel(1);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    sender.send(list).await.unwrap();
    let requests = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|request| (request, receiver))
    });
    let mut replies = client.server_reflection_info(requests).await.expect("reflection opens").into_inner();
    replies.message().await.expect("a first reply").expect("the stream is open");
    (replies, sender)
}

#[tokio::test]
async fn unauthenticated_streams_end_with_deadline_exceeded_after_their_lifetime() {
    let server = TestServer::start_with(|c| {
        c.limits.max_unauthenticated_stream = Duration::from_secs(1);
        c.limits.max_concurrent_requests = 2;
        // Longer than the patience below: a stream left open would hold the drain.
        c.drain_timeout = 2 * PATIENCE;
    })
    .await;
    let mut watch = open_watch(&server).await;
    // The client keeps its side open: the server ends the session anyway.
    let (mut reflection, _still_sending) = open_reflection(&server).await;

    let ended = timeout(PATIENCE, watch.message()).await.expect("the watch ends by itself");
    let status = ended.expect_err("it ends with a status, not a message");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("stream lifetime of 1 s"), "{}", status.message());
    let ended = timeout(PATIENCE, reflection.message()).await.expect("the reflection stream ends by itself");
    assert_eq!(ended.expect_err("a status").code(), Code::DeadlineExceeded);

    // Both slots of the limit are free again once the streams have ended.
    server.grpc().await.get_events_summary(authed(week(), &reader())).await.expect("served after the streams");
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &reader()).await.status(), 200);
    // Nothing of the streams is left behind to hold the drain.
    timeout(PATIENCE, server.stop()).await.expect("the server drains without waiting for the streams");
}

#[tokio::test]
async fn open_unauthenticated_streams_count_against_the_concurrency_limit_until_they_end() {
    let server = TestServer::start_with(|c| c.limits.max_concurrent_requests = 2).await;
    let watch = open_watch(&server).await;
    let (mut reflection, sender) = open_reflection(&server).await;

    // Both slots are held by the open streams: the next call is shed.
    let status = server.grpc().await.get_events_summary(authed(week(), &reader())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "server is overloaded, retry later");
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &reader()).await.status(), 503);
    // Probes are not shed, whatever holds the slots.
    assert_eq!(get(&http1(), format!("{}/healthz", server.base)).await.status(), 200);
    let mut health = HealthClient::new(server.channel().await);
    let check = health.check(HealthCheckRequest { service: String::new() }).await.expect("health check served");
    assert_eq!(check.into_inner().status(), ServingStatus::Serving);

    // Cancelling a stream frees its slot; the server learns of it asynchronously.
    drop(watch);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match server.grpc().await.get_events_summary(authed(week(), &reader())).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("not served again after the watch ended: {status:?}"),
        }
    }
    // A session the client closes ends with OK and frees its slot as it ends.
    drop(sender);
    let ended = timeout(PATIENCE, reflection.message()).await.expect("the session ends");
    assert!(ended.expect("ends with OK").is_none());
    let both = [server.grpc().await, server.grpc().await]
        .map(|mut client| async move { client.get_events_summary(authed(week(), &reader())).await });
    for served in futures_util::future::join_all(both).await {
        served.expect("both slots free again");
    }
    server.stop().await;
}
