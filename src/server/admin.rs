//! The admin listener (`AUDIT_ADMIN_LISTEN`): `/metrics`, `/healthz` and `/readyz`
//! on a port of their own, for scrapers and probes that a network policy can
//! admit without admitting them to the API. Nothing else is served there.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request};
use hyper::body::Incoming;

use super::HttpService;
use super::probes::{self, Readiness};
use crate::error::Error;
use crate::metrics::Metrics;

/// The admin listener's whole service. No CORS (browsers have no business here),
/// no token, no request telemetry: scrapes and probes every few seconds would
/// only add noise to the API's own numbers.
pub fn service(readiness: Arc<Readiness>, metrics: Metrics) -> HttpService {
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |request: Request<Incoming>| {
        let readiness = readiness.clone();
        let metrics = metrics.clone();
        async move {
            let response = match (request.method(), request.uri().path()) {
                (&Method::GET, "/healthz") => probes::healthz(),
                (&Method::GET, "/readyz") => readiness.readyz().await,
                (&Method::GET, "/metrics") => metrics.prometheus_response(),
                (_, path) => Error::RouteNotFound { path: path.to_owned() }.to_http(),
            };
            Ok::<_, Infallible>(response.map(|body| tonic::body::Body::new(http_body_util::Full::new(body))))
        }
    }))
}
