//! Serving limits: the settings that bound what one client can make the server do,
//! and the outer layer that enforces the per-request ones (URI size, deadline,
//! concurrency with load shedding) and answers in the protocol the client spoke.
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

use crate::error::Error;
use crate::wire::Protocol;

pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// hyper refuses an HTTP/1 read buffer below this.
pub const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_SUMMARY_RANGE_DAYS: u32 = 400;
/// Per (subject, organization) and second, outside demo mode.
pub const DEFAULT_RATE_LIMIT_READ_PER_SEC: u32 = 50;
pub const DEFAULT_RATE_LIMIT_WRITE_PER_SEC: u32 = 500;
pub const DEFAULT_MAX_UNAUTHENTICATED_STREAM: Duration = Duration::from_secs(300);
/// Longest lifetime a stream without a token may be given.
pub const MAX_UNAUTHENTICATED_STREAM: Duration = Duration::from_secs(86_400);

/// Paths that orchestrators poll: shedding them under load would get a busy but
/// healthy process restarted, which makes the overload worse.
const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/grpc.health.v1.Health/Check"];

/// Every serving limit; `Limits::default()` is what `serve` uses unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest request target (path and query).
    pub max_uri_bytes: usize,
    /// HTTP/1 request line plus headers, and HTTP/2 header list size.
    pub max_header_bytes: usize,
    pub http2_max_concurrent_streams: u32,
    /// Server-side deadline of every request; a shorter `grpc-timeout` wins.
    pub request_timeout: Duration,
    /// Requests in flight at once; the next one is refused, not queued.
    pub max_concurrent_requests: usize,
    /// Time an HTTP/1 client gets to send a complete request head.
    pub header_read_timeout: Duration,
    /// Widest `end_time - start_time` a summary may ask for; `None` for no limit.
    pub max_summary_range: Option<Duration>,
    /// Lifetime of a stream that needs no token (gRPC health `Watch`, reflection).
    pub max_unauthenticated_stream: Duration,
    pub rate: RateLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_summary_range: Some(days(DEFAULT_MAX_SUMMARY_RANGE_DAYS)),
            max_unauthenticated_stream: DEFAULT_MAX_UNAUTHENTICATED_STREAM,
            rate: RateLimits::OFF,
        }
    }
}

/// Per-caller request rates, GCRA; a rate of 0 turns that scope's limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub read_per_sec: u32,
    pub read_burst: u32,
    pub write_per_sec: u32,
    pub write_burst: u32,
}

impl Limits {
    /// Refuses values the server cannot run with, whatever set them.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.max_concurrent_requests == 0 || self.max_concurrent_requests > Semaphore::MAX_PERMITS {
            anyhow::bail!("AUDIT_MAX_CONCURRENT_REQUESTS must be 1 to {}", Semaphore::MAX_PERMITS);
        }
        if self.max_unauthenticated_stream < Duration::from_secs(1)
            || self.max_unauthenticated_stream > MAX_UNAUTHENTICATED_STREAM
        {
            anyhow::bail!(
                "AUDIT_MAX_UNAUTHENTICATED_STREAM_SECS must be 1 to {}",
                MAX_UNAUTHENTICATED_STREAM.as_secs()
            );
        }
        Ok(())
    }
}

impl RateLimits {
    pub const OFF: Self = Self { read_per_sec: 0, read_burst: 0, write_per_sec: 0, write_burst: 0 };
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// The limit flags of `audit-service serve`, flattened into its arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Longest request target (path and query) in bytes; longer answers 414.
    #[arg(long, env = "AUDIT_MAX_URI_BYTES", default_value_t = DEFAULT_MAX_URI_BYTES)]
    pub max_uri_bytes: usize,
    /// Largest HTTP/1 request head and HTTP/2 header list, in bytes (at least 8192).
    #[arg(long, env = "AUDIT_MAX_HEADER_BYTES", default_value_t = DEFAULT_MAX_HEADER_BYTES)]
    pub max_header_bytes: usize,
    /// Concurrent streams one HTTP/2 connection may open.
    #[arg(long, env = "AUDIT_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS)]
    pub http2_max_concurrent_streams: u32,
    /// Server deadline of a request in milliseconds; a shorter grpc-timeout wins.
    #[arg(long, env = "AUDIT_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_millis() as u64)]
    pub request_timeout_ms: u64,
    /// Requests in flight at once; more are refused with UNAVAILABLE / 503.
    #[arg(long, env = "AUDIT_MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// Milliseconds an HTTP/1 client gets to send its request head.
    #[arg(long, env = "AUDIT_HEADER_READ_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT.as_millis() as u64)]
    pub header_read_timeout_ms: u64,
    /// Widest summary range in days; 0 for no limit.
    #[arg(long, env = "AUDIT_MAX_SUMMARY_RANGE_DAYS", default_value_t = DEFAULT_MAX_SUMMARY_RANGE_DAYS)]
    pub max_summary_range_days: u32,
    /// Seconds a stream that needs no token (gRPC health Watch, reflection) may stay
    /// open; it then ends with DEADLINE_EXCEEDED. 1 to 86400.
    #[arg(
        long,
        env = "AUDIT_MAX_UNAUTHENTICATED_STREAM_SECS",
        default_value_t = DEFAULT_MAX_UNAUTHENTICATED_STREAM.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=MAX_UNAUTHENTICATED_STREAM.as_secs())
    )]
    pub max_unauthenticated_stream_secs: u64,
    /// Read calls per second per (token subject, organization); 0 = off.
    /// Default 50, or off in demo mode.
    #[arg(long, env = "AUDIT_RATE_LIMIT_READ_PER_SEC")]
    pub rate_limit_read_per_sec: Option<u32>,
    /// Read calls allowed in one burst; default twice the rate.
    #[arg(long, env = "AUDIT_RATE_LIMIT_READ_BURST")]
    pub rate_limit_read_burst: Option<u32>,
    /// Write calls (batches) per second per (token subject, organization); 0 = off.
    /// Default 500, or off in demo mode.
    #[arg(long, env = "AUDIT_RATE_LIMIT_WRITE_PER_SEC")]
    pub rate_limit_write_per_sec: Option<u32>,
    /// Write calls allowed in one burst; default twice the rate.
    #[arg(long, env = "AUDIT_RATE_LIMIT_WRITE_BURST")]
    pub rate_limit_write_burst: Option<u32>,
}

impl LimitArgs {
    /// The limits these flags ask for. Demo mode has no rate limit unless one is set.
    pub fn limits(&self, demo: bool) -> anyhow::Result<Limits> {
        if self.max_header_bytes < MIN_MAX_HEADER_BYTES {
            anyhow::bail!("AUDIT_MAX_HEADER_BYTES must be at least {MIN_MAX_HEADER_BYTES}");
        }
        if self.max_concurrent_requests == 0 || self.http2_max_concurrent_streams == 0 {
            anyhow::bail!("AUDIT_MAX_CONCURRENT_REQUESTS and AUDIT_HTTP2_MAX_CONCURRENT_STREAMS must be positive");
        }
        if self.request_timeout_ms == 0 || self.header_read_timeout_ms == 0 {
            anyhow::bail!("AUDIT_REQUEST_TIMEOUT_MS and AUDIT_HEADER_READ_TIMEOUT_MS must be positive");
        }
        let rate = |set: Option<u32>, default: u32| set.unwrap_or(if demo { 0 } else { default });
        let read_per_sec = rate(self.rate_limit_read_per_sec, DEFAULT_RATE_LIMIT_READ_PER_SEC);
        let write_per_sec = rate(self.rate_limit_write_per_sec, DEFAULT_RATE_LIMIT_WRITE_PER_SEC);
        let limits = Limits {
            max_uri_bytes: self.max_uri_bytes,
            max_header_bytes: self.max_header_bytes,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_concurrent_requests: self.max_concurrent_requests,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_summary_range: (self.max_summary_range_days > 0).then(|| days(self.max_summary_range_days)),
            max_unauthenticated_stream: Duration::from_secs(self.max_unauthenticated_stream_secs),
            rate: RateLimits {
                read_per_sec,
                read_burst: self.rate_limit_read_burst.unwrap_or(read_per_sec.saturating_mul(2)),
                write_per_sec,
                write_burst: self.rate_limit_write_burst.unwrap_or(write_per_sec.saturating_mul(2)),
            },
        };
        limits.check()?;
        Ok(limits)
    }
}

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
        let answer = move |error: Error| refusal(protocol, web_content_type.as_ref(), &error);
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
fn refusal(protocol: Protocol, content_type: Option<&HeaderValue>, error: &Error) -> Response<tonic::body::Body> {
    match protocol {
        Protocol::Grpc => error.to_status().into_http(),
        Protocol::GrpcWeb => {
            let mut response = error.to_status().into_http::<tonic::body::Body>();
            let content_type = content_type.cloned().unwrap_or(HeaderValue::from_static("application/grpc-web"));
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            super::web_trailers::status_into_body(response)
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

    #[test]
    fn limits_the_server_cannot_run_with_are_refused_not_panicked_on() {
        assert!(Limits::default().check().is_ok());
        for concurrent in [0, Semaphore::MAX_PERMITS + 1, usize::MAX] {
            let limits = Limits { max_concurrent_requests: concurrent, ..Limits::default() };
            let error = limits.check().unwrap_err().to_string();
            assert!(error.contains("AUDIT_MAX_CONCURRENT_REQUESTS"), "{concurrent}: {error}");
        }
        for lifetime in
            [Duration::ZERO, Duration::from_millis(999), MAX_UNAUTHENTICATED_STREAM + Duration::from_secs(1)]
        {
            let limits = Limits { max_unauthenticated_stream: lifetime, ..Limits::default() };
            let error = limits.check().unwrap_err().to_string();
            assert!(error.contains("AUDIT_MAX_UNAUTHENTICATED_STREAM_SECS"), "{lifetime:?}: {error}");
        }
    }

    #[test]
    fn demo_mode_has_no_rate_limit_unless_asked() {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let defaults = Flags::parse_from(["x"]).limits;
        assert_eq!(defaults.limits(true).unwrap().rate, RateLimits::OFF);
        let production = defaults.limits(false).unwrap().rate;
        assert_eq!(production.read_per_sec, DEFAULT_RATE_LIMIT_READ_PER_SEC);
        assert_eq!(production.write_burst, DEFAULT_RATE_LIMIT_WRITE_PER_SEC * 2);
        let asked = Flags::parse_from(["x", "--rate-limit-read-per-sec", "3"]).limits.limits(true).unwrap();
        assert_eq!((asked.rate.read_per_sec, asked.rate.read_burst, asked.rate.write_per_sec), (3, 6, 0));
        assert!(Flags::parse_from(["x", "--max-header-bytes", "100"]).limits.limits(false).is_err());
    }
}
