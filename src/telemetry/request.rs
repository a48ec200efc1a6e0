//! The telemetry of one request, whatever protocol it spoke: one server span that
//! continues the caller's W3C trace context, the request metrics, and one log
//! line, all finished when the response body ends (so latency and status include
//! a streamed body and its trailers).
//!
//! Two layers cooperate. `TelemetryLayer` sits outside protocol dispatch and owns
//! the span; `RpcStatusLayer` sits around the gRPC core, where every protocol's
//! call is plain gRPC, and notes the status there. REST and gRPC-web answers do not
//! carry that status in a form the outer layer can read, and the REST transcoder
//! makes its call in process without request extensions, so the note travels in a
//! task-local: the whole request, in-process call included, runs in one task.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost_reflect::DescriptorPool;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::error::{code_name, http_status_of};
use crate::metrics::{Metrics, RequestLabels};
use crate::rest::RestGateway;
use crate::server::Protocol;

/// Plain HTTP endpoints whose path is its own route; any other path that is not
/// an RPC gets no `http.route`, so scanners cannot create span names or series.
const PLAIN_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

tokio::task_local! {
    static EXCHANGE: Arc<Exchange>;
}

/// What the layers and services inside learn about the request in flight.
struct Exchange {
    /// The gRPC status the core answered with; -1 until it answered.
    code: AtomicI32,
    /// The organization the request acted for, when it was one.
    organization: OnceLock<Box<str>>,
}

impl Exchange {
    fn new() -> Self {
        Self { code: AtomicI32::new(-1), organization: OnceLock::new() }
    }

    fn code(&self) -> Option<Code> {
        let code = self.code.load(Ordering::Relaxed);
        (code >= 0).then(|| Code::from(code))
    }
}

/// Names the organization the current request acts for, for its log line. A
/// no-op outside a request (tools, tests of the service alone).
pub fn record_organization(organization: &str) {
    let _ = EXCHANGE.try_with(|exchange| exchange.organization.set(organization.into()));
}

/// Response extension: the gRPC status of an answer whose status sits in a
/// gRPC-web trailer frame inside the body, where the outer layer does not look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcStatusCode(pub i32);

/// A gRPC method the server serves, as spans and metrics name it.
#[derive(Clone)]
struct Rpc {
    /// `package.Service/Method`: the metrics label and the gRPC span name.
    full: Arc<str>,
    service: Arc<str>,
    method: Arc<str>,
}

/// Where a request goes, as far as telemetry may say (bounded values only).
struct Target {
    rpc: Option<Rpc>,
    route: Option<String>,
}

struct Shared {
    metrics: Metrics,
    /// gRPC path (`/package.Service/Method`) → the RPC.
    rpcs: HashMap<String, Rpc>,
    rest: RestGateway,
}

impl Shared {
    fn target(&self, protocol: Protocol, method: &Method, path: &str) -> Target {
        match protocol {
            Protocol::Grpc | Protocol::GrpcWeb => {
                let rpc = self.rpcs.get(path).cloned();
                Target { route: rpc.as_ref().map(|_| path.to_owned()), rpc }
            }
            Protocol::Rest => match self.rest.route_target(method, path) {
                Some((template, grpc_path)) => {
                    Target { rpc: self.rpcs.get(grpc_path).cloned(), route: Some(template.to_owned()) }
                }
                None => Target {
                    rpc: None,
                    route: (method == Method::GET && PLAIN_ROUTES.contains(&path)).then(|| path.to_owned()),
                },
            },
        }
    }
}

/// The outermost telemetry layer: span, metrics and log line of every request.
#[derive(Clone)]
pub struct TelemetryLayer {
    shared: Arc<Shared>,
}

impl TelemetryLayer {
    /// `pool` holds the services besides health and reflection (which are added
    /// here); `rest` maps REST routes to the RPCs they call.
    pub fn new(metrics: Metrics, pool: &DescriptorPool, rest: RestGateway) -> anyhow::Result<Self> {
        let health = DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
        let reflection = DescriptorPool::decode(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)?;
        let mut rpcs = HashMap::new();
        for pool in [pool, &health, &reflection] {
            for service in pool.services() {
                for method in service.methods() {
                    let rpc = Rpc {
                        full: format!("{}/{}", service.full_name(), method.name()).into(),
                        service: service.full_name().into(),
                        method: method.name().into(),
                    };
                    rpcs.insert(format!("/{}", rpc.full), rpc);
                }
            }
        }
        Ok(Self { shared: Arc::new(Shared { metrics, rpcs, rest }) })
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = Telemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Telemetry { inner, shared: self.shared.clone() }
    }
}

#[derive(Clone)]
pub struct Telemetry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> Service<Request<B>> for Telemetry<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(&request);
        let target = self.shared.target(protocol, request.method(), request.uri().path());
        let span = server_span(protocol, &request, &target);
        if let Some(parent) = remote_parent(request.headers()) {
            // Fails only without the OpenTelemetry layer (no subscriber installed).
            let _ = span.set_parent(parent);
        }
        let exchange = Arc::new(Exchange::new());
        let labels = RequestLabels::new(target.rpc.map(|rpc| rpc.full), protocol.name());
        self.shared.metrics.request_started(&labels);
        let mut finish = Finish {
            shared: self.shared.clone(),
            span: span.clone(),
            exchange: exchange.clone(),
            protocol,
            labels,
            started: Instant::now(),
            http_status: None,
            answered_code: None,
            trailer_code: None,
            ended: false,
            failed: false,
        };
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = span.in_scope(|| EXCHANGE.sync_scope(exchange.clone(), || inner.call(request)));
        let call = EXCHANGE.scope(exchange, call).instrument(span);
        Box::pin(async move {
            let Ok(response) = call.await;
            finish.http_status = Some(response.status());
            finish.answered_code = header_code(response.headers())
                .or_else(|| response.extensions().get::<GrpcStatusCode>().map(|code| Code::from(code.0)));
            Ok(response.map(|body| tonic::body::Body::new(Observed { body, finish: Some(finish) })))
        })
    }
}

/// The server span, with every attribute it may get declared up front (a
/// `tracing` span cannot gain fields later). Never the raw path or query: they
/// hold other tenants' ids and arbitrary text.
fn server_span<B>(protocol: Protocol, request: &Request<B>, target: &Target) -> tracing::Span {
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    };
    let version = match request.version() {
        Version::HTTP_2 => "2",
        Version::HTTP_11 => "1.1",
        Version::HTTP_10 => "1.0",
        _ => "",
    };
    // OpenTelemetry span names: `package.Service/Method` for gRPC, `METHOD route`
    // for HTTP; REST is HTTP even when it calls an RPC.
    let name = match (&target.rpc, protocol, &target.route) {
        (Some(rpc), Protocol::Grpc | Protocol::GrpcWeb, _) => rpc.full.to_string(),
        (_, _, Some(route)) => format!("{method} {route}"),
        _ => method.to_owned(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        network.protocol.name = protocol.name(),
        network.protocol.version = version,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        rpc.system = Empty,
        rpc.service = Empty,
        rpc.method = Empty,
        rpc.grpc.status_code = Empty,
        error.type = Empty,
    );
    if let Some(route) = &target.route {
        span.record("http.route", route.as_str());
    }
    if let Some(rpc) = &target.rpc {
        span.record("rpc.system", "grpc");
        span.record("rpc.service", &*rpc.service);
        span.record("rpc.method", &*rpc.method);
    }
    span
}

/// The caller's span from `traceparent` / `tracestate` (HTTP headers, which is
/// also where gRPC metadata arrives), if it sent a valid one.
fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let context = TraceContextPropagator::new().extract(&HeaderCarrier(headers));
    context.span().span_context().is_valid().then_some(context)
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn header_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from)
}

/// Everything known when the response ends; reports once, on drop.
struct Finish {
    shared: Arc<Shared>,
    span: tracing::Span,
    exchange: Arc<Exchange>,
    protocol: Protocol,
    labels: RequestLabels,
    started: Instant,
    http_status: Option<StatusCode>,
    /// `grpc-status` of a trailers-only answer, or the `GrpcStatusCode` extension.
    answered_code: Option<Code>,
    /// `grpc-status` of the trailers at the end of a native gRPC body.
    trailer_code: Option<Code>,
    /// The body reached its end (rather than the client going away).
    ended: bool,
    failed: bool,
}

impl Finish {
    /// The request's status as a gRPC code, whatever the protocol: for REST the
    /// RPC's own code when it failed, else the one the HTTP status stands for.
    fn code(&self) -> Code {
        let Some(http_status) = self.http_status else { return Code::Cancelled };
        match self.protocol {
            Protocol::Rest => match self.exchange.code() {
                Some(code) if code != Code::Ok => code,
                _ => code_of_http(http_status),
            },
            Protocol::Grpc | Protocol::GrpcWeb => {
                let noted = self.answered_code.or(self.trailer_code).or_else(|| self.exchange.code());
                noted.unwrap_or(if self.failed {
                    Code::Unknown
                } else if !self.ended {
                    Code::Cancelled
                } else if http_status != StatusCode::OK {
                    code_of_http(http_status)
                } else {
                    Code::Unknown
                })
            }
        }
    }

    /// Whether the server, not the caller, is at fault, as the OpenTelemetry
    /// conventions define it for gRPC and HTTP server spans.
    fn server_fault(&self, code: Code) -> bool {
        match (self.protocol, self.http_status) {
            (_, None) => false,
            (Protocol::Rest, Some(status)) => status.is_server_error(),
            _ => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let code = self.code();
        let name = code_name(code);
        let span = &self.span;
        if let Some(status) = self.http_status {
            span.record("http.response.status_code", status.as_u16());
        }
        // Every gRPC answer has a gRPC status; a REST request has one when it
        // called an RPC.
        if self.labels.names_rpc() || self.protocol != Protocol::Rest {
            span.record("rpc.grpc.status_code", code as i64);
        }
        if code != Code::Ok {
            span.record("error.type", name);
        }
        if self.server_fault(code) {
            span.record("otel.status_code", "ERROR");
        }
        self.shared.metrics.request_finished(&self.labels, name, elapsed);

        let context = span.context();
        let ids = context.span().span_context().clone();
        let (trace_id, span_id) =
            if ids.is_valid() { (ids.trace_id().to_string(), ids.span_id().to_string()) } else { Default::default() };
        let organization = self.exchange.organization.get().map_or("-", |org| &**org);
        span.in_scope(|| {
            tracing::info!(
                trace_id,
                span_id,
                rpc = self.labels.rpc_name(),
                protocol = self.protocol.name(),
                status = self.http_status.map_or(0, |s| s.as_u16()),
                code = name,
                latency_ms = elapsed.as_micros() as f64 / 1000.0,
                org = organization,
                "request served"
            );
        });
    }
}

/// The gRPC code an HTTP status stands for (the reverse of `http_status_of`,
/// with 405, 413 and 414 as this service answers them).
fn code_of_http(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=399 => Code::Ok,
        405 => Code::Unimplemented,
        413 | 414 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        other => [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Aborted,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unimplemented,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ]
        .into_iter()
        .find(|code| http_status_of(*code).as_u16() == other)
        .unwrap_or(Code::Unknown),
    }
}

/// The response body, watched for its trailers and its end.
struct Observed {
    body: tonic::body::Body,
    finish: Option<Finish>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(finish)) = (frame.trailers_ref(), this.finish.as_mut()) {
                    finish.trailer_code = header_code(trailers);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut finish) = this.finish.take() {
                    finish.failed = true;
                }
            }
            Poll::Ready(None) => {
                if let Some(mut finish) = this.finish.take() {
                    finish.ended = true;
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // hyper may drop a body that says it has ended without polling it again.
        if let Some(finish) = self.finish.as_mut() {
            finish.ended = self.body.is_end_stream();
        }
    }
}

/// Notes the gRPC status the core answers with, for the request's telemetry.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcStatusLayer;

impl<S> Layer<S> for RpcStatusLayer {
    type Service = RpcStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcStatus { inner }
    }
}

#[derive(Clone)]
pub struct RpcStatus<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RpcStatus<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let exchange = EXCHANGE.try_with(Arc::clone).ok();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let Some(exchange) = exchange else { return Ok(response) };
            if let Some(code) = header_code(response.headers()) {
                exchange.code.store(code as i32, Ordering::Relaxed);
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(TrailerWatch { body, exchange })))
        })
    }
}

/// A gRPC body whose trailers' status is noted in the exchange.
struct TrailerWatch {
    body: tonic::body::Body,
    exchange: Arc<Exchange>,
}

impl http_body::Body for TrailerWatch {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(code) = frame.trailers_ref().and_then(header_code)
        {
            self.exchange.code.store(code as i32, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_back_to_the_codes_the_service_answers_with() {
        let cases = [
            (200, Code::Ok),
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::NotFound),
            (405, Code::Unimplemented),
            (409, Code::Aborted),
            (413, Code::ResourceExhausted),
            (414, Code::ResourceExhausted),
            (429, Code::ResourceExhausted),
            (499, Code::Cancelled),
            (500, Code::Internal),
            (503, Code::Unavailable),
            (504, Code::DeadlineExceeded),
            (418, Code::Unknown),
        ];
        for (status, code) in cases {
            assert_eq!(code_of_http(StatusCode::from_u16(status).unwrap()), code, "{status}");
        }
    }

    #[test]
    fn only_a_valid_traceparent_becomes_the_parent() {
        let mut headers = HeaderMap::new();
        assert!(remote_parent(&headers).is_none());
        headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
        let parent = remote_parent(&headers).expect("a valid traceparent");
        let span = parent.span();
        assert_eq!(span.span_context().trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert!(span.span_context().is_remote());
        headers.insert("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01".parse().unwrap());
        assert!(remote_parent(&headers).is_none());
    }
}
