//! The tower stack: one function assembles it, and `Dispatch` sends each request
//! to the protocol it speaks. Everything shares one gRPC core behind one auth layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::cors::CorsLayer;

use super::authorize::AuthorizeLayer;
use super::limits::RequestLimitLayer;
use super::limits::message::MessageLimitLayer;
use super::limits::rate::RateLimitLayer;
use super::probes;
use crate::config::Limits;
use crate::error::Error;
use crate::methods::MethodTable;
use crate::metrics::Metrics;
use crate::rest::{GrpcService, RestGateway};
use crate::wire::Protocol;

/// The parts the stack is built from.
pub struct Parts {
    pub grpc_routes: tonic::service::Routes,
    pub auth: AuthorizeLayer,
    /// Checked at start (`cors::layer`), so a bad origin list never serves.
    pub cors: CorsLayer,
    pub max_request_bytes: usize,
    /// Every RPC served, read from the descriptors once.
    pub methods: MethodTable,
    pub limits: Limits,
    /// The browser dashboard's pages, beside the probes.
    pub dashboard: crate::dashboard::Dashboard,
    /// Recorded by the telemetry layers, read by `GET /metrics`.
    pub metrics: Metrics,
    /// The database verdict `GET /readyz` answers with, shared with the admin listener.
    pub readiness: Arc<probes::Readiness>,
    /// False when an admin listener serves `/metrics` instead.
    pub metrics_on_public: bool,
}

pub type HttpService = tower::util::BoxCloneSyncService<Request<Incoming>, Response<tonic::body::Body>, Infallible>;

/// Builds the whole stack, outermost first.
pub fn build_stack(parts: Parts) -> anyhow::Result<HttpService> {
    // The gRPC core, behind auth: every protocol reaches the services through
    // this one value, so no path can skip authentication.
    let grpc: GrpcService = tower::util::BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Authenticates and authorizes from the headers alone, before any
            // body byte is read; inside the protocol adapters so that it sees
            // plain gRPC requests whatever the client spoke.
            .layer(parts.auth.clone())
            // Rate limits per verified caller, so it comes after authentication
            // and before the body is read.
            .layer(RateLimitLayer::new(&parts.limits.rate, &parts.methods))
            // Refuses an oversized message from its frame prefix, before reading
            // it, and reads a unary call's one message, refusing bad framing.
            .layer(MessageLimitLayer::new(parts.max_request_bytes, parts.methods.clone()))
            .service(parts.grpc_routes),
    );
    // gRPC-web translation wraps the gRPC core only: REST and native gRPC never
    // go through it.
    let grpc_web: GrpcService =
        tower::util::BoxCloneSyncService::new(tonic_web::GrpcWebLayer::new().layer(grpc.clone()));
    let rest = RestGateway::from_methods(&parts.methods, grpc.clone())?;
    for (method, template) in rest.routes() {
        tracing::debug!(%method, template, "rest route");
    }
    let openapi = crate::openapi::document_json(&rest);
    let telemetry = crate::telemetry::TelemetryLayer::new(parts.metrics.clone(), &parts.methods, rest.clone());
    let dispatch = Dispatch {
        inner: Arc::new(DispatchInner {
            grpc,
            grpc_web,
            rest,
            auth: parts.auth,
            max_request_bytes: parts.max_request_bytes,
            dashboard: parts.dashboard,
            metrics: parts.metrics,
            readiness: parts.readiness,
            metrics_on_public: parts.metrics_on_public,
            openapi,
        }),
    };
    let stack = ServiceBuilder::new()
        // CORS outermost: browser preflights are answered before any protocol
        // handling, and every answer (errors included) carries the headers a
        // browser needs to read it.
        .layer(parts.cors)
        // The request's server span (continuing the caller's trace), metrics and
        // log line; outside the limits so that their refusals are seen too.
        .layer(telemetry)
        // Deadline, load shedding and URI length, answered in the client's protocol.
        .layer(RequestLimitLayer::new(&parts.limits))
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
    auth: AuthorizeLayer,
    max_request_bytes: usize,
    dashboard: crate::dashboard::Dashboard,
    metrics: Metrics,
    readiness: Arc<probes::Readiness>,
    metrics_on_public: bool,
    /// The OpenAPI document of the REST routes, generated once at start-up.
    openapi: Bytes,
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
        // Spans, metrics and the log line are the telemetry layer's, outside.
        let inner = self.inner.clone();
        let protocol = Protocol::of(&request);
        Box::pin(async move { Ok(inner.route(protocol, request).await) })
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
                super::grpc_web::status_into_body(response)
            }
            Protocol::Rest => self.plain_http(request).await.map(full),
        }
    }

    /// Plain HTTP: the probes, `/metrics`, `/openapi.json`, the dashboard, and the REST routes.
    async fn plain_http(&self, request: Request<Incoming>) -> Response<Bytes> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => return probes::healthz(),
            (&Method::GET, "/readyz") => return self.readiness.readyz().await,
            // No token: it describes the API, as reflection does for gRPC.
            (&Method::GET, "/openapi.json") => return crate::openapi::response(&self.openapi),
            // No token: it holds counts by RPC and status only, no tenant data. With
            // an admin listener it is served there only (404 here, as any unknown path).
            (&Method::GET, "/metrics") if self.metrics_on_public => return self.metrics.prometheus_response(),
            (&Method::GET, path) if self.dashboard.serves(path) => return self.dashboard.get(path, request.headers()),
            _ => {}
        }
        // The caller is authorized from the headers before the body is read, and
        // before the query is parsed: a stranger learns nothing about parameters.
        let Some(grpc_path) = self.rest.grpc_path_of(request.method(), request.uri().path()) else {
            return self.rest.handle(request.map(|_| Bytes::new())).await;
        };
        let principal = match self.auth.authorize(grpc_path, request.headers()).await {
            Ok(principal) => principal,
            Err(error) => return error.to_http(),
        };
        let (mut parts, body) = request.into_parts();
        if let Some(principal) = principal {
            parts.extensions.insert(principal);
        }
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
