//! Fuzz target: gRPC-web requests with arbitrary bodies (binary and base64 text,
//! split into arbitrary chunks) through tonic-web, the service's message size
//! guard and the real gRPC adapter over a scratch SQLite store. Nothing may panic, and
//! every request gets an answer.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use audit_service::grpc::GrpcAdapter;
use audit_service::server::limits::message::MessageLimitLayer;
use audit_service::service::AuditLog;
use bytes::Bytes;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};

const SECRET: &[u8] = b"fuzz-secret-that-is-long-enough-0123456789";
const CONTENT_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];
const PATHS: [&str; 3] = [
    "/avnology.audit.v1.AuditService/GetEventsSummary",
    "/avnology.audit.v1.AuditService/BatchCreateEvents",
    "/grpc.health.v1.Health/Check",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    service: tower::util::BoxCloneSyncService<
        http::Request<tonic::body::Body>,
        http::Response<tonic::body::Body>,
        std::convert::Infallible,
    >,
    principal: audit_service::auth::Principal,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let principal = runtime.block_on(async {
        let token = audit_service::auth::mint_hs256(
            SECRET,
            "fuzz",
            &["audit:read", "audit:write"],
            None,
            Duration::from_secs(3600 * 24 * 365),
        )
        .unwrap();
        audit_service::auth::Verifier::hs256(SECRET).verify_header(Some(&format!("Bearer {token}"))).await.unwrap()
    });
    // A real store in a scratch file: the target exercises framing and limits, and
    // a store that never changes keeps every input's path deterministic enough.
    let path = std::env::temp_dir().join(format!("audit-fuzz-grpc-web-{}.db", std::process::id()));
    let store = runtime
        .block_on(audit_service::store::open(&format!("sqlite://{}", path.display()), &Default::default()))
        .expect("a scratch SQLite store opens");
    let service = AuditLog::new(store);
    let (_, health) = tonic_health::server::health_reporter();
    let routes =
        tonic::service::Routes::new(GrpcAdapter::new(service).into_server().max_decoding_message_size(64 * 1024))
            .add_service(health);
    let pool = prost_reflect::DescriptorPool::decode(audit_service::proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods = audit_service::methods::MethodTable::new(&pool).unwrap();
    let grpc = MessageLimitLayer::new(64 * 1024, methods).layer(routes);
    let service = tower::util::BoxCloneSyncService::new(tonic_web::GrpcWebLayer::new().layer(grpc));
    Harness { runtime, service, principal }
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some((&chunk, body)) = rest.split_first() else { return };
    let harness = &*HARNESS;
    let chunk = usize::from(chunk).max(1);
    let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
        body.chunks(chunk).map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c)))).collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    let mut request = http::Request::new(tonic::body::Body::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = PATHS[usize::from(selector >> 2) % PATHS.len()].parse().unwrap();
    request.headers_mut().insert("content-type", CONTENT_TYPES[usize::from(selector & 3)].parse().unwrap());
    request.headers_mut().insert("x-grpc-web", "1".parse().unwrap());
    request.extensions_mut().insert(harness.principal.clone());
    harness.runtime.block_on(async {
        let response = harness.service.clone().oneshot(request).await.unwrap();
        // Reading the answer to its end drives the decoder over the whole body.
        let _ = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .expect("an answer, not a hang");
    });
});
