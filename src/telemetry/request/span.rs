//! The server span of a request: its name and attributes, bounded values only,
//! and the caller's trace it continues.

use http::{HeaderMap, Method, Request, Version};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;

use super::Target;
use crate::wire::Protocol;

/// The server span, with every attribute it may get declared up front (a
/// `tracing` span cannot gain fields later). Never the raw path or query: they
/// hold other tenants' ids and arbitrary text.
pub(super) fn server_span<B>(protocol: Protocol, request: &Request<B>, target: &Target) -> tracing::Span {
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
pub(super) fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
