//! The tower stack: one function assembles it, and `Dispatch` sends each request
//! to the protocol it speaks. Everything shares one gRPC core behind one auth layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use super::authn::AuthLayer;
use super::probes;
use crate::error::Error;
use crate::rest::{GrpcService, RestGateway};
use crate::service::AuditService;

/// Browsers may send these on gRPC-web and REST calls.
const CORS_ALLOWED_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("x-grpc-web"),
    HeaderName::from_static("x-user-agent"),
    HeaderName::from_static("grpc-timeout"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];
/// gRPC-web clients read the status from these; REST clients read the challenge.
const CORS_EXPOSED_HEADERS: [HeaderName; 5] = [
    HeaderName::from_static("grpc-status"),
    HeaderName::from_static("grpc-message"),
    HeaderName::from_static("grpc-status-details-bin"),
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Grpc,
    GrpcWeb,
    Rest,
}

impl Protocol {
    fn of<B>(request: &Request<B>) -> Self {
        let content_type = request.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes).unwrap_or_default();
        if content_type.starts_with(b"application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Self::Grpc
        } else {
            Self::Rest
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Rest => "rest",
        }
    }
}

/// The parts the stack is built from.
pub struct Parts {
    pub grpc_routes: tonic::service::Routes,
    pub auth: AuthLayer,
    pub service: AuditService,
    pub cors_origins: Vec<HeaderValue>,
    pub max_request_bytes: usize,
    pub rest_descriptors: prost_reflect::DescriptorPool,
}

pub type HttpService = tower::util::BoxCloneSyncService<Request<Incoming>, Response<tonic::body::Body>, Infallible>;

/// Builds the whole stack, outermost first.
pub fn build_stack(parts: Parts) -> anyhow::Result<HttpService> {
    // The gRPC core, behind auth: every protocol reaches the services through
    // this one value, so no path can skip authentication.
    let grpc: GrpcService = tower::util::BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Authenticates and authorizes; inside the protocol adapters so that
            // it sees plain gRPC requests whatever the client spoke.
            .layer(parts.auth)
            .service(parts.grpc_routes),
    );
    // gRPC-web translation wraps the gRPC core only: REST and native gRPC never
    // go through it.
    let grpc_web: GrpcService =
        tower::util::BoxCloneSyncService::new(tonic_web::GrpcWebLayer::new().layer(grpc.clone()));
    let rest = RestGateway::from_descriptors(&parts.rest_descriptors, grpc.clone())?;
    for (method, template) in rest.routes() {
        tracing::debug!(%method, template, "rest route");
    }
    let dispatch = Dispatch {
        inner: Arc::new(DispatchInner {
            grpc,
            grpc_web,
            rest,
            service: parts.service,
            max_request_bytes: parts.max_request_bytes,
        }),
    };
    let stack = ServiceBuilder::new()
        // CORS outermost: browser preflights are answered before any protocol
        // handling, and every answer (errors included) carries the headers a
        // browser needs to read it. An empty allow-list allows no origin.
        .layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(parts.cors_origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(CORS_ALLOWED_HEADERS)
                .expose_headers(CORS_EXPOSED_HEADERS)
                .max_age(Duration::from_secs(600)),
        )
        .service(dispatch);
    Ok(tower::util::BoxCloneSyncService::new(stack))
}

#[derive(Clone)]
struct Dispatch {
    inner: Arc<DispatchInner>,
}

struct DispatchInner {
    grpc: GrpcService,
    grpc_web: GrpcService,
    rest: RestGateway,
    service: AuditService,
    max_request_bytes: usize,
}

impl Service<Request<Incoming>> for Dispatch {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each request drives a clone of its branch to readiness with `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        let protocol = Protocol::of(&request);
        let route = match protocol {
            Protocol::Grpc | Protocol::GrpcWeb => request.uri().path().to_owned(),
            Protocol::Rest => {
                inner.rest.route_label(request.method(), request.uri().path()).unwrap_or("other").to_owned()
            }
        };
        let span = tracing::info_span!(
            "request",
            network.protocol.name = protocol.name(),
            http.request.method = %request.method(),
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        Box::pin(
            async move {
                let started = Instant::now();
                let response = inner.route(protocol, request).await;
                let span = tracing::Span::current();
                span.record("http.response.status_code", response.status().as_u16());
                let grpc_status =
                    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned);
                if let Some(code) = &grpc_status {
                    span.record("rpc.grpc.status_code", code.as_str());
                }
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_us = started.elapsed().as_micros() as u64,
                    "request served"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

impl DispatchInner {
    async fn route(&self, protocol: Protocol, request: Request<Incoming>) -> Response<tonic::body::Body> {
        match protocol {
            Protocol::Grpc => {
                let Ok(response) = self.grpc.clone().oneshot(request.map(tonic::body::Body::new)).await;
                response
            }
            Protocol::GrpcWeb => {
                let Ok(response) = self.grpc_web.clone().oneshot(request.map(tonic::body::Body::new)).await;
                super::web_trailers::status_into_body(response)
            }
            Protocol::Rest => self.rest(request).await.map(full),
        }
    }

    async fn rest(&self, request: Request<Incoming>) -> Response<Bytes> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => return probes::healthz(),
            (&Method::GET, "/readyz") => return probes::readyz(&self.service).await,
            _ => {}
        }
        let (parts, body) = request.into_parts();
        let body = match http_body_util::Limited::new(body, self.max_request_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Error::TooLarge(format!("request body exceeds {} bytes", self.max_request_bytes)).to_http();
            }
            Err(error) => {
                tracing::debug!(error = %error, "request body could not be read");
                return Error::invalid("body", "could not be read").to_http();
            }
        };
        self.rest.handle(Request::from_parts(parts, body)).await
    }
}

fn full(bytes: Bytes) -> tonic::body::Body {
    tonic::body::Body::new(http_body_util::Full::new(bytes))
}
