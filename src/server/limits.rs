//! The layers that enforce the serving limits (`config::Limits`): here the outer
//! one for the per-request limits (URI size, deadline, concurrency with load
//! shedding), answering in the protocol the client spoke.
//!
//! The other limits live where they can be enforced: header sizes, header-read
//! timeout and HTTP/2 streams in the hyper builder (`server.rs`), message size in
//! [`message::MessageLimitLayer`] around the gRPC core, rate limits in
//! [`rate::RateLimitLayer`] right inside authentication, the lifetime of token-free
//! streams in [`stream::StreamLifetime`] around health and reflection, the summary
//! range in the service.

pub mod message;
pub mod rate;
pub mod stream;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response, header};
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};

use crate::config::Limits;
use crate::error::Error;
use crate::wire::Protocol;

/// Paths that orchestrators poll: shedding them under load would get a busy but
/// healthy process restarted, which makes the overload worse.
const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/grpc.health.v1.Health/Check"];

/// The outer per-request limits, between CORS and protocol dispatch.
#[derive(Clone)]
pub struct RequestLimitLayer {
    max_uri_bytes: usize,
    request_timeout: Duration,
    max_concurrent_requests: usize,
}

impl RequestLimitLayer {
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_uri_bytes: limits.max_uri_bytes,
            request_timeout: limits.request_timeout,
            max_concurrent_requests: limits.max_concurrent_requests,
        }
    }
}

impl<S> Layer<S> for RequestLimitLayer {
    type Service = RequestLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLimit {
            inner,
            // Clones share the semaphore, so the limit holds across connections.
            in_flight: Arc::new(Semaphore::new(self.max_concurrent_requests)),
            max_uri_bytes: self.max_uri_bytes,
            request_timeout: self.request_timeout,
        }
    }
}

#[derive(Clone)]
pub struct RequestLimit<S> {
    inner: S,
    /// One permit per request in flight, held by its response body until the body
    /// has ended: a stream counts for as long as it is open, not until its head.
    in_flight: Arc<Semaphore>,
    max_uri_bytes: usize,
    request_timeout: Duration,
}

impl<S, B> Service<Request<B>> for RequestLimit<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is decided per request: the concurrency permit is taken (or the
        // request shed) in `call`, when the request arrives.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(&request);
        let web_content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let answer = move |error: Error| answer_in(protocol, web_content_type.as_ref(), &error);
        let uri_len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if uri_len > self.max_uri_bytes {
            let error = Error::UriTooLong(format!("request target exceeds {} bytes", self.max_uri_bytes));
            return Box::pin(async move { Ok(answer(error)) });
        }
        let deadline = match protocol {
            Protocol::Grpc | Protocol::GrpcWeb => {
                grpc_timeout(request.headers()).map_or(self.request_timeout, |asked| asked.min(self.request_timeout))
            }
            Protocol::Rest => self.request_timeout,
        };
        let is_probe = PROBE_PATHS.contains(&request.uri().path());
        // Taken now, not queued: past the limit the request is refused at once.
        let permit = if is_probe {
            None
        } else {
            match self.in_flight.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::debug!("load shed: concurrency limit reached");
                    let error = Error::Unavailable("server is overloaded, retry later".into());
                    return Box::pin(async move { Ok(answer(error)) });
                }
            }
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            match tokio::time::timeout(deadline, inner.oneshot(request)).await {
                Ok(served) => {
                    let Ok(response) = served;
                    Ok(match permit {
                        Some(permit) => stream::PermitBody::wrap(response, permit),
                        None => response,
                    })
                }
                Err(_elapsed) => Ok(answer(Error::DeadlineExceeded)),
            }
        })
    }
}

/// The error answer in the client's protocol: a trailers-only gRPC status, a
/// gRPC-web trailer frame, or the REST status with its JSON body.
fn answer_in(protocol: Protocol, content_type: Option<&HeaderValue>, error: &Error) -> Response<tonic::body::Body> {
    match protocol {
        Protocol::Grpc => error.to_status().into_http(),
        Protocol::GrpcWeb => {
            let mut response = error.to_status().into_http::<tonic::body::Body>();
            let content_type = content_type.cloned().unwrap_or(HeaderValue::from_static("application/grpc-web"));
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            super::grpc_web::status_into_body(response)
        }
        Protocol::Rest => error.to_http().map(|body| tonic::body::Body::new(http_body_util::Full::new(body))),
    }
}

/// `grpc-timeout`: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n), as the
/// gRPC over HTTP/2 spec defines it. Anything else is ignored, as gRPC servers do,
/// and the server's own deadline applies.
pub fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    parse_grpc_timeout(headers.get("grpc-timeout")?.as_bytes())
}

pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_follows_the_spec_grammar() {
        assert_eq!(parse_grpc_timeout(b"200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse_grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        for bad in [&b""[..], b"m", b"123456789m", b"10x", b"-1S", b"1.5S", b" 1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
