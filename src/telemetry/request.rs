//! The telemetry of one request, whatever protocol it spoke: one server span that
//! continues the caller's W3C trace context, the request metrics, and one log
//! line, all finished when the response body ends (so latency and status include
//! a streamed body and its trailers).
//!
//! The layer sits outside protocol dispatch and learns how the request ended from
//! its answer, as the client gets it ([`crate::wire::status::StatusWatch`]).
//! Only the organization the request acted for is not in the answer: the service
//! names it, possibly in the REST transcoder's in-process call, which has no
//! request extensions, so it travels in a task-local (the whole request,
//! in-process call included, runs in one task).

mod span;
mod status;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Method, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::methods::MethodTable;
use crate::metrics::{Metrics, RequestLabels};
use crate::rest::RestGateway;
use crate::wire::Protocol;

/// Plain HTTP endpoints whose path is its own route; any other path that is not
/// an RPC gets no `http.route`, so scanners cannot create span names or series.
const PLAIN_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The organization the request in flight acted for, once the service named it.
type Organization = Arc<OnceLock<Box<str>>>;

tokio::task_local! {
    static ORGANIZATION: Organization;
}

/// Names the organization the current request acts for, for its log line. A
/// no-op outside a request (tools, tests of the service alone).
pub fn record_organization(organization: &str) {
    let _ = ORGANIZATION.try_with(|slot| slot.set(organization.into()));
}

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
    /// `methods` names every RPC served (health and reflection included); `rest`
    /// maps REST routes to the RPCs they call.
    pub fn new(metrics: Metrics, methods: &MethodTable, rest: RestGateway) -> Self {
        let rpcs = methods
            .iter()
            .map(|method| {
                let rpc =
                    Rpc { full: method.rpc().into(), service: method.service().into(), method: method.name().into() };
                (method.path().to_owned(), rpc)
            })
            .collect();
        Self { shared: Arc::new(Shared { metrics, rpcs, rest }) }
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
        let span = span::server_span(protocol, &request, &target);
        if let Some(parent) = span::remote_parent(request.headers()) {
            // Fails only without the OpenTelemetry layer (no subscriber installed).
            let _ = span.set_parent(parent);
        }
        let organization = Organization::default();
        let labels = RequestLabels::new(target.rpc.map(|rpc| rpc.full), protocol.name());
        self.shared.metrics.request_started(&labels);
        let finish = status::Finish::new(self.shared.clone(), span.clone(), organization.clone(), protocol, labels);
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = span.in_scope(|| ORGANIZATION.sync_scope(organization.clone(), || inner.call(request)));
        let call = ORGANIZATION.scope(organization, call).instrument(span);
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(finish.observe(response))
        })
    }
}
