//! Spans as a collector receives them: the caller's trace continued over REST,
//! gRPC and gRPC-web; one server span per request (the REST call and its
//! in-process RPC are one); the conventions' attributes; the service and store
//! spans beneath; failed calls' status; and nothing secret anywhere.

use audit_service::proto::audit as pb;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

use crate::fixtures::unix;
use crate::grpc_web::{self, Mode};
use crate::harness::{Caller, attr, harness, hex, start_server, traced};
use crate::server::{http1, token};

const SUMMARY: &str = "avnology.audit.v1.AuditService/GetEventsSummary";
const BATCH: &str = "avnology.audit.v1.AuditService/BatchCreateEvents";

fn server_spans(spans: &[Span]) -> Vec<&Span> {
    spans.iter().filter(|s| s.kind == SpanKind::Server as i32).collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Option<&'a Span> {
    spans.iter().find(|s| s.name == name)
}

/// The whole chain: one server span, a service span under it, a store span under that.
fn complete(service_span: &'static str, store_span: &'static str) -> impl Fn(&[Span]) -> bool {
    move |spans| {
        !server_spans(spans).is_empty() && named(spans, service_span).is_some() && named(spans, store_span).is_some()
    }
}

/// Asserts the server span continues `caller` and returns it.
fn the_server_span<'a>(spans: &'a [Span], caller: &Caller) -> &'a Span {
    let servers = server_spans(spans);
    assert_eq!(servers.len(), 1, "exactly one server span per request: {servers:#?}");
    let server = servers[0];
    assert_eq!(hex(&server.trace_id), caller.trace_id, "the caller's trace id is continued");
    assert_eq!(hex(&server.parent_span_id), caller.span_id, "the caller's span is the parent");
    server
}

/// Service span under the server span, store span under the service span.
fn assert_chain<'a>(spans: &'a [Span], server: &Span, service_span: &str, store_span: &str) -> &'a Span {
    let service = named(spans, service_span).expect("service span");
    assert_eq!(service.parent_span_id, server.span_id, "{service_span} is a child of the server span");
    assert_eq!(service.kind, SpanKind::Internal as i32);
    let store = named(spans, store_span).expect("store span");
    assert_eq!(store.parent_span_id, service.span_id, "{store_span} is a child of {service_span}");
    assert_eq!(store.kind, SpanKind::Client as i32);
    assert_eq!(attr(store, "db.system").as_deref(), Some("sqlite"));
    store
}

/// No attribute or event of any span holds one of `secrets`.
fn assert_nothing_leaks(spans: &[Span], secrets: &[&str]) {
    let text = format!("{spans:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "spans hold {secret:?}");
    }
    assert!(!text.contains("Bearer"), "spans hold an authorization header");
}

#[tokio::test]
async fn rest_call_and_its_in_process_rpc_are_one_trace_continuing_the_callers() {
    let server = start_server().await;
    let caller = Caller::new(1);
    let reader = token(&["audit:read"], Some("org_acme"));
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/audit/events:summary?start_time=2026-11-16T00:00:00Z&end_time=2026-11-23T00:00:00Z",
            server.base
        ))
        .bearer_auth(&reader)
        .header("traceparent", caller.traceparent())
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let spans = harness().trace(&caller.trace_id, complete("audit.summarize", "SELECT audit_rollups")).await;
    let root = the_server_span(&spans, &caller);
    assert_eq!(root.name, "GET /v1/audit/events:summary");
    assert_eq!(root.trace_state, "vendor=opaque", "tracestate travels with the trace");
    for (key, value) in [
        ("network.protocol.name", "rest"),
        ("http.request.method", "GET"),
        ("http.route", "/v1/audit/events:summary"),
        ("http.response.status_code", "200"),
        ("rpc.system", "grpc"),
        ("rpc.service", "avnology.audit.v1.AuditService"),
        ("rpc.method", "GetEventsSummary"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(attr(root, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(attr(root, "error.type"), None);
    let store = assert_chain(&spans, root, "audit.summarize", "SELECT audit_rollups");
    assert_eq!(attr(store, "db.operation.name").as_deref(), Some("SELECT"));
    assert_eq!(attr(store, "db.collection.name").as_deref(), Some("audit_rollups"));
    // Neither the token nor the query's values: only the route template.
    assert_nothing_leaks(&spans, &[&reader, "2026-11-16", "start_time="]);

    let lines = harness()
        .log_lines(|line| {
            line["fields"]["message"] == "request served" && line["fields"]["trace_id"] == caller.trace_id
        })
        .await;
    assert_eq!(lines.len(), 1, "one log line per request: {lines:#?}");
    let fields = &lines[0]["fields"];
    assert_eq!(fields["span_id"], hex(&root.span_id));
    assert_eq!(fields["rpc"], SUMMARY);
    assert_eq!(fields["protocol"], "rest");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["code"], "OK");
    assert_eq!(fields["org"], "org_acme");
    assert!(fields["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{fields}");
    assert!(!harness().raw_logs().contains(&reader), "no token in the logs");
    server.stop().await;
}

#[tokio::test]
async fn grpc_batch_continues_the_trace_from_metadata_down_to_the_insert() {
    const MARKER: &str = "details-must-not-reach-spans";
    let server = start_server().await;
    let caller = Caller::new(2);
    let writer = token(&["audit:write"], None);
    let details: pbjson_types::Struct = serde_json::from_value(serde_json::json!({ "note": MARKER })).unwrap();
    let event = |id: &str| pb::AuditEvent {
        id: id.into(),
        timestamp: Some(unix(1_795_000_000)),
        organization_id: "org_globex".into(),
        action: "session.login".into(),
        actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_secret_actor".into() }),
        target: None,
        result: "success".into(),
        ip: "192.0.2.10".into(),
        user_agent: "test".into(),
        details: Some(details.clone()),
        log_index: 0,
    };
    let request = pb::BatchCreateEventsRequest { events: vec![event("evt_1"), event("evt_2")] };
    let reply = server
        .grpc()
        .await
        .batch_create_events(traced(request, &writer, &caller.traceparent()))
        .await
        .expect("batch stored")
        .into_inner();
    assert_eq!(reply.created_count, 2);

    let spans = harness().trace(&caller.trace_id, complete("audit.append", "INSERT audit_events")).await;
    let root = the_server_span(&spans, &caller);
    assert_eq!(root.name, BATCH);
    for (key, value) in [
        ("network.protocol.name", "grpc"),
        ("http.request.method", "POST"),
        ("http.route", "/avnology.audit.v1.AuditService/BatchCreateEvents"),
        ("http.response.status_code", "200"),
        ("rpc.system", "grpc"),
        ("rpc.service", "avnology.audit.v1.AuditService"),
        ("rpc.method", "BatchCreateEvents"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(attr(root, key).as_deref(), Some(value), "{key}");
    }
    let store = assert_chain(&spans, root, "audit.append", "INSERT audit_events");
    assert_eq!(attr(store, "db.operation.name").as_deref(), Some("INSERT"));
    assert_eq!(attr(store, "db.operation.batch.size").as_deref(), Some("2"));
    assert_nothing_leaks(&spans, &[&writer, MARKER, "usr_secret_actor", "192.0.2.10"]);

    let lines = harness()
        .log_lines(|line| {
            line["fields"]["message"] == "request served" && line["fields"]["trace_id"] == caller.trace_id
        })
        .await;
    assert_eq!(lines[0]["fields"]["org"], "org_globex", "a one-organization batch names it");
    assert!(!harness().raw_logs().contains(MARKER), "no event details in the logs");
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_call_continues_the_trace_from_http_headers() {
    let server = start_server().await;
    let caller = Caller::new(3);
    let request = pb::GetEventsSummaryRequest {
        start_time: Some(unix(0)),
        end_time: Some(unix(86_400)),
        organization_id: String::new(),
    };
    let reply: pb::GetEventsSummaryResponse = grpc_web::call_with(
        &http1(),
        &server.base,
        "GetEventsSummary",
        &request,
        Some(&token(&["audit:read"], None)),
        Mode::Binary,
        &[("traceparent", &caller.traceparent())],
    )
    .await
    .expect("summary over gRPC-web");
    assert!(reply.buckets.is_empty());

    let spans = harness().trace(&caller.trace_id, complete("audit.summarize", "SELECT audit_rollups")).await;
    let root = the_server_span(&spans, &caller);
    assert_eq!(root.name, SUMMARY);
    assert_eq!(attr(root, "network.protocol.name").as_deref(), Some("grpc-web"));
    assert_eq!(attr(root, "rpc.method").as_deref(), Some("GetEventsSummary"));
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_chain(&spans, root, "audit.summarize", "SELECT audit_rollups");
    server.stop().await;
}

#[tokio::test]
async fn failed_calls_record_their_status_on_every_protocol() {
    let server = start_server().await;
    let has_server_span = |spans: &[Span]| !server_spans(spans).is_empty();

    // REST without a valid token: a client error, not the server's fault.
    let rest = Caller::new(4);
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/audit/events:summary?start_time=2026-11-16T00:00:00Z&end_time=2026-11-23T00:00:00Z",
            server.base
        ))
        .bearer_auth("not-a-token")
        .header("traceparent", rest.traceparent())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let spans = harness().trace(&rest.trace_id, has_server_span).await;
    let root = the_server_span(&spans, &rest);
    assert_eq!(attr(root, "http.response.status_code").as_deref(), Some("401"));
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("16"));
    assert_eq!(attr(root, "error.type").as_deref(), Some("UNAUTHENTICATED"));
    assert_ne!(root.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32), "4xx is not a server error");
    assert!(named(&spans, "audit.summarize").is_none(), "a refused call reaches no service");

    // gRPC with an invalid range.
    let grpc = Caller::new(5);
    let request = pb::GetEventsSummaryRequest {
        start_time: Some(unix(100)),
        end_time: Some(unix(50)),
        organization_id: String::new(),
    };
    let status = server
        .grpc()
        .await
        .get_events_summary(traced(request, &token(&["audit:read"], None), &grpc.traceparent()))
        .await
        .expect_err("end before start is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let spans = harness().trace(&grpc.trace_id, has_server_span).await;
    let root = the_server_span(&spans, &grpc);
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("3"));
    assert_eq!(attr(root, "error.type").as_deref(), Some("INVALID_ARGUMENT"));

    // gRPC-web without a token: the status sits in a trailer frame of the body.
    let web = Caller::new(6);
    let request = pb::GetEventsSummaryRequest {
        start_time: Some(unix(0)),
        end_time: Some(unix(50)),
        organization_id: String::new(),
    };
    let status = grpc_web::call_with::<_, pb::GetEventsSummaryResponse>(
        &http1(),
        &server.base,
        "GetEventsSummary",
        &request,
        None,
        Mode::Binary,
        &[("traceparent", &web.traceparent())],
    )
    .await
    .expect_err("no token");
    assert_eq!(status.code, 16);
    let spans = harness().trace(&web.trace_id, has_server_span).await;
    let root = the_server_span(&spans, &web);
    assert_eq!(attr(root, "network.protocol.name").as_deref(), Some("grpc-web"));
    assert_eq!(attr(root, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("16"));

    // Refused by the limits in front of dispatch, in a gRPC-web trailer frame.
    let long = Caller::new(8);
    let response = reqwest::Client::new()
        .post(format!("{}/avnology.audit.v1.AuditService/{}", server.base, "x".repeat(10_000)))
        .header("content-type", "application/grpc-web+proto")
        .header("traceparent", long.traceparent())
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spans = harness().trace(&long.trace_id, has_server_span).await;
    let root = the_server_span(&spans, &long);
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("8"), "RESOURCE_EXHAUSTED");

    // An unknown method: the server's fault by the conventions, and no route of
    // the caller's making in the span.
    let unknown = Caller::new(7);
    let mut grpc_client = tonic::client::Grpc::new(server.channel().await);
    grpc_client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<pb::GetEventsSummaryRequest, pb::GetEventsSummaryResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/avnology.audit.v1.AuditService/NoSuchMethod");
    let request = traced(pb::GetEventsSummaryRequest::default(), &token(&["audit:read"], None), &unknown.traceparent());
    let status = grpc_client.unary(request, path, codec).await.expect_err("unknown method");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let spans = harness().trace(&unknown.trace_id, has_server_span).await;
    let root = the_server_span(&spans, &unknown);
    assert_eq!(root.name, "POST");
    assert_eq!(attr(root, "http.route"), None);
    assert_eq!(attr(root, "rpc.method"), None);
    assert_eq!(attr(root, "rpc.grpc.status_code").as_deref(), Some("12"));
    assert_eq!(root.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    assert!(!format!("{spans:?}").contains("NoSuchMethod"), "the raw path stays out of spans");
    server.stop().await;
}

#[tokio::test]
async fn a_request_without_traceparent_starts_its_own_trace() {
    let server = start_server().await;
    let response = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    let lines = harness()
        .log_lines(|line| {
            line["fields"]["message"] == "request served"
                && line["span"]["http.route"] == "/healthz"
                && line["fields"]["trace_id"].as_str().is_some_and(|id| id.len() == 32)
        })
        .await;
    let fields = &lines[0]["fields"];
    assert_eq!(fields["rpc"], "none");
    assert_eq!(fields["code"], "OK");
    assert_eq!(fields["org"], "-");
    server.stop().await;
}
