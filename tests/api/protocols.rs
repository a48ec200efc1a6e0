//! One port, three protocols: gRPC-web (HTTP/1.1 and HTTP/2, binary and text) agreeing with
//! native gRPC, CORS for browsers, gRPC health and reflection without a token, the HTTP
//! probes, and REST answering alike over HTTP/1.1 and h2c.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audit_service::proto::audit as pb;
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{Buf, Bytes};
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_types::StatusExt;

use crate::fixtures::{WEEK, event, ts};
use crate::grpc_web::{self, Mode};
use crate::server::{TestServer, authed, http1, http2, reader, rest_summary, writer};

const ALLOWED_ORIGIN: &str = "https://dashboard.example";
const OTHER_ORIGIN: &str = "https://evil.example";
const SUMMARY_PATH: &str = "/avnology.audit.v1.AuditService/GetEventsSummary";

fn week(org: &str) -> pb::GetEventsSummaryRequest {
    pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-09T00:00:00Z")),
        organization_id: org.into(),
    }
}

/// The same small history for any organization; one event lies outside the week.
fn history(org: &str) -> Vec<pb::AuditEvent> {
    vec![
        event("h1", org, "session.login", "success", "2026-03-02T08:00:00Z"),
        event("h2", org, "session.login", "failure", "2026-03-03T08:00:00Z"),
        event("h3", org, "session.login", "success", "2026-03-04T08:00:00Z"),
        event("h4", org, "user.password.changed", "failure", "2026-03-05T08:00:00Z"),
        event("h5", org, "user.created", "success", "2026-03-10T08:00:00Z"),
    ]
}

/// Splits a binary gRPC-web body into `(flags, payload)` frames.
fn frames(mut body: Bytes) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    while body.remaining() >= 5 {
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        out.push((flags, body.split_to(len)));
    }
    assert!(body.is_empty(), "trailing bytes after the last frame");
    out
}

/// A binary gRPC-web POST of `message` to the summary method, as a browser would send it.
fn web_summary(
    client: &reqwest::Client,
    base: &str,
    origin: &str,
    message: &pb::GetEventsSummaryRequest,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}{SUMMARY_PATH}"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", origin)
        .bearer_auth(reader())
        .body(grpc_web::frame(message))
}

/// The comma-separated values of a header, lowercased.
fn header_list(response: &reqwest::Response, name: &str) -> BTreeSet<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn grpc_web_agrees_with_native_grpc_over_http1_and_http2_in_both_encodings() {
    let server = TestServer::start().await;
    let mut native = server.grpc().await;
    let batch = |org: &str| pb::BatchCreateEventsRequest { events: history(org) };
    let created = native.batch_create_events(authed(batch("org_native"), &writer())).await.unwrap().into_inner();
    let retried = native.batch_create_events(authed(batch("org_native"), &writer())).await.unwrap().into_inner();
    assert_eq!((created.created_count, retried.duplicate_count), (5, 5));
    let summary = native.get_events_summary(authed(week("org_native"), &reader())).await.unwrap().into_inner();
    assert_eq!(summary.buckets.len(), 2, "{summary:?}");

    let mut orgs = 1;
    for (version, client) in [("http1", http1()), ("http2", http2())] {
        for mode in [Mode::Binary, Mode::Text] {
            let case = format!("{version} {mode:?}");
            let org = format!("org_{version}_{mode:?}");
            orgs += 1;
            let (request, token) = (batch(&org), writer());
            for (expected, attempt) in [(&created, "first"), (&retried, "retried")] {
                let reply: pb::BatchCreateEventsResponse =
                    grpc_web::call(&client, &server.base, "BatchCreateEvents", &request, Some(&token), mode)
                        .await
                        .unwrap();
                assert_eq!(&reply, expected, "{case}: {attempt} batch");
            }
            let web_summary: pb::GetEventsSummaryResponse =
                grpc_web::call(&client, &server.base, "GetEventsSummary", &week(&org), Some(&reader()), mode)
                    .await
                    .unwrap();
            assert_eq!(web_summary, summary, "{case}: summary");
        }
    }
    // Platform-wide, every protocol sees every organization's events.
    let all = native.get_events_summary(authed(week(""), &reader())).await.unwrap().into_inner();
    assert_eq!(
        all.buckets[0],
        pb::ActionBucket { action: "session.login".into(), count: 3 * orgs, failure_count: orgs }
    );
    for mode in [Mode::Binary, Mode::Text] {
        let web: pb::GetEventsSummaryResponse =
            grpc_web::call(&http2(), &server.base, "GetEventsSummary", &week(""), Some(&reader()), mode).await.unwrap();
        assert_eq!(web, all, "{mode:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_errors_are_http_200_with_the_status_in_trailers() {
    let server = TestServer::start().await;
    let backwards =
        pb::GetEventsSummaryRequest { start_time: week("").end_time, end_time: week("").start_time, ..week("") };
    // grpc-status-details-bin is unpadded base64, but decoders must accept padding too.
    let base64 = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    for client in [http1(), http2()] {
        for mode in [Mode::Binary, Mode::Text] {
            let error = grpc_web::call::<_, pb::GetEventsSummaryResponse>(
                &client,
                &server.base,
                "GetEventsSummary",
                &backwards,
                Some(&reader()),
                mode,
            )
            .await
            .unwrap_err();
            assert_eq!((error.http_status, error.code), (200, Code::InvalidArgument as i32), "{mode:?}");
            assert_eq!(error.message, "end_time must be after start_time");
            let details = base64.decode(error.details_bin.expect("grpc-status-details-bin present")).unwrap();
            let status = tonic::Status::with_details(Code::InvalidArgument, error.message, details.into());
            let violations = status.get_details_bad_request().expect("BadRequest details").field_violations;
            assert_eq!(violations[0].field, "end_time");
        }
    }

    // The wire shape: a reply ends with a trailer frame (flag 0x80) after the message.
    let ok = web_summary(&http1(), &server.base, ALLOWED_ORIGIN, &week("")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "content-type"), Some("application/grpc-web+proto"));
    let ok_frames = frames(ok.bytes().await.unwrap());
    assert_eq!(ok_frames.iter().map(|(flags, _)| *flags).collect::<Vec<_>>(), vec![0, 0x80]);
    let trailers = std::str::from_utf8(&ok_frames[1].1).unwrap().to_ascii_lowercase();
    assert!(trailers.split("\r\n").any(|line| line.replace(' ', "") == "grpc-status:0"), "{trailers:?}");

    let error = web_summary(&http1(), &server.base, ALLOWED_ORIGIN, &backwards).send().await.unwrap();
    assert_eq!(error.status(), 200);
    // The status travels in a trailer frame of the body, as the contract asks,
    // never trailers-only in the headers.
    assert_eq!(header(&error, "grpc-status"), None);
    let error_frames = frames(error.bytes().await.unwrap());
    let [(0x80, trailer)] = error_frames.as_slice() else { panic!("one trailer frame: {error_frames:?}") };
    let trailer = std::str::from_utf8(trailer).unwrap().to_ascii_lowercase();
    assert!(trailer.contains("grpc-status:3"), "{trailer:?}");
    assert!(trailer.contains("grpc-status-details-bin:"), "{trailer:?}");
    server.stop().await;
}

#[tokio::test]
async fn cors_preflights_allow_the_listed_origin_only() {
    let server = TestServer::start().await;
    let client = http1();
    let preflight = |path: &str, origin: &str, method: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization,content-type,x-grpc-web")
            .send()
    };
    for (path, method) in [(SUMMARY_PATH, "POST"), ("/v1/audit/events:summary", "GET")] {
        let allowed = preflight(path, ALLOWED_ORIGIN, method).await.unwrap();
        assert!(allowed.status().is_success(), "{path}: {}", allowed.status());
        assert_eq!(header(&allowed, "access-control-allow-origin"), Some(ALLOWED_ORIGIN), "{path}");
        assert!(header_list(&allowed, "access-control-allow-methods").contains(&method.to_ascii_lowercase()), "{path}");
        let headers = header_list(&allowed, "access-control-allow-headers");
        for wanted in ["authorization", "content-type", "x-grpc-web"] {
            assert!(headers.contains(wanted), "{path}: allow-headers {headers:?} lacks {wanted}");
        }
        // A preflight carries no token: it must be answered before authentication.
        assert!(!allowed.headers().contains_key("www-authenticate"), "{path}");

        let refused = preflight(path, OTHER_ORIGIN, method).await.unwrap();
        assert!(!refused.headers().contains_key("access-control-allow-origin"), "{path}: {:?}", refused.headers());
    }
    server.stop().await;
}

#[tokio::test]
async fn cors_answers_expose_the_grpc_status_headers_to_the_listed_origin() {
    let server = TestServer::start().await;
    for client in [http1(), http2()] {
        let response = web_summary(&client, &server.base, ALLOWED_ORIGIN, &week("")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "access-control-allow-origin"), Some(ALLOWED_ORIGIN));
        let exposed = header_list(&response, "access-control-expose-headers");
        for wanted in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            assert!(exposed.contains(wanted), "expose-headers {exposed:?} lacks {wanted}");
        }
        let other = web_summary(&client, &server.base, OTHER_ORIGIN, &week("")).send().await.unwrap();
        assert!(!other.headers().contains_key("access-control-allow-origin"), "{:?}", other.headers());
    }
    // A browser must be able to read a REST refusal too, challenge included.
    let refused = http1()
        .get(format!("{}/v1/audit/events:summary?{WEEK}", server.base))
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(ALLOWED_ORIGIN));
    assert!(header_list(&refused, "access-control-expose-headers").contains("www-authenticate"));
    server.stop().await;
}

#[tokio::test]
async fn grpc_health_answers_serving_without_a_token() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "avnology.audit.v1.AuditService"] {
        let reply = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    server.stop().await;
}

/// One request on its own reflection stream, as `grpcurl` does per lookup.
async fn reflect(client: &mut ServerReflectionClient<Channel>, request: MessageRequest) -> MessageResponse {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut replies = client.server_reflection_info(futures_util::stream::iter([request])).await.unwrap().into_inner();
    let reply: ServerReflectionResponse = replies.message().await.unwrap().expect("a reflection reply");
    reply.message_response.expect("a reflection answer")
}

async fn listed_services(server: &TestServer) -> BTreeSet<String> {
    let mut client = ServerReflectionClient::new(server.channel().await);
    let MessageResponse::ListServicesResponse(list) =
        reflect(&mut client, MessageRequest::ListServices(String::new())).await
    else {
        panic!("ListServices answered something else");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

#[tokio::test]
async fn grpc_reflection_lists_the_audit_health_and_reflection_services_without_a_token() {
    let server = TestServer::start().await;
    let services = listed_services(&server).await;
    for wanted in ["avnology.audit.v1.AuditService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] {
        assert!(services.contains(wanted), "{wanted} not listed in {services:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn grpc_reflection_describes_the_audit_service_without_a_token() {
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    // What `grpcurl describe` does: the file declaring the symbol, then each import by name
    // until the closure is complete, and a descriptor pool built from them.
    let symbol = MessageRequest::FileContainingSymbol("avnology.audit.v1.AuditService".into());
    let mut pending = vec![symbol];
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    while let Some(request) = pending.pop() {
        let MessageResponse::FileDescriptorResponse(found) = reflect(&mut client, request).await else {
            panic!("a file lookup answered something else");
        };
        for bytes in found.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            if files.iter().any(|f| f.name == file.name) {
                continue;
            }
            for import in &file.dependency {
                if !files.iter().any(|f| f.name() == import) {
                    pending.push(MessageRequest::FileByFilename(import.clone()));
                }
            }
            files.push(file);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files).expect("reflected files form a complete pool");
    let service = pool.get_service_by_name("avnology.audit.v1.AuditService").expect("service described");
    let methods: BTreeSet<String> = service.methods().map(|m| m.name().to_owned()).collect();
    assert!(methods.contains("GetEventsSummary") && methods.contains("BatchCreateEvents"), "{methods:?}");
    let summary = service.methods().find(|m| m.name() == "GetEventsSummary").unwrap();
    assert_eq!(summary.input().full_name(), "avnology.audit.v1.GetEventsSummaryRequest");
    server.stop().await;
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_token() {
    let server = TestServer::start().await;
    for client in [http1(), http2()] {
        for path in ["/healthz", "/readyz"] {
            let response = client.get(format!("{}{path}", server.base)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn readyz_answers_503_quickly_once_the_database_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(&dir.path().join("audit.db"), |_| {}).await;
    let readyz = || http1().get(format!("{}/readyz", server.base)).send();
    assert_eq!(readyz().await.unwrap().status(), 200);
    assert_eq!(rest_summary(&http1(), &server.base, WEEK, &reader()).await.status(), 200);

    // Permissions are checked only at open (and root ignores them), and open descriptors
    // outlive unlinking, so neither chmod nor deleting the files reaches a running server.
    // Overwriting the files in place does, the shared-memory index included; their sizes stay
    // put, since shrinking the mapped -shm file would kill the test process with SIGBUS.
    for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let path = dir.path().join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            std::fs::write(&path, vec![0xAA; meta.len() as usize]).unwrap();
        }
    }
    let broken = rest_summary(&http1(), &server.base, WEEK, &reader()).await;
    assert!(broken.status().is_server_error(), "the database should be broken now: {}", broken.status());

    // The verdict before the break may answer for up to a second more; then 503.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The probe gives the database 2 s; a broken one must not make it hang (a
        // tighter bound would measure the machine's load, not the probe).
        let response = tokio::time::timeout(Duration::from_secs(60), readyz())
            .await
            .expect("/readyz answers with a broken database")
            .unwrap();
        if response.status() == 503 {
            break;
        }
        assert_eq!(response.status(), 200);
        assert!(Instant::now() < deadline, "/readyz never noticed the broken database");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn rest_answers_identically_over_http1_and_h2c() {
    let server = TestServer::start().await;
    server.seed(history("org_a")).await;
    let cases = [
        (WEEK.to_owned(), Some(reader())),
        (format!("{WEEK}&organization_id=org_a"), Some(reader())),
        ("start_time=2026-03-09T00:00:00Z&end_time=2026-03-02T00:00:00Z".to_owned(), Some(reader())),
        (WEEK.to_owned(), None),
    ];
    for (query, token) in cases {
        let mut answers = Vec::new();
        for (version, client) in [(reqwest::Version::HTTP_11, http1()), (reqwest::Version::HTTP_2, http2())] {
            let mut request = client.get(format!("{}/v1/audit/events:summary?{query}", server.base));
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.version(), version, "{query}");
            let headers = ["content-type", "www-authenticate"].map(|name| header(&response, name).map(str::to_owned));
            answers.push((response.status(), headers, response.text().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "{query}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&rest_summary(&http2(), &server.base, WEEK, &reader()).await.text().await.unwrap())
            .unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "buckets": [
            { "action": "session.login", "count": 3, "failure_count": 1 },
            { "action": "user.password.changed", "count": 1, "failure_count": 1 },
        ] })
    );
    server.stop().await;
}
