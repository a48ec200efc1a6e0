//! The serving limits: what one client can make the server do, and their defaults.
//! The layers that enforce them are in `server::limits`.

use std::time::Duration;

use tokio::sync::Semaphore;

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

/// Every serving limit. `Limits::default()` is what `serve` runs with when no flag
/// changes it (demo mode then turns the rate limits off).
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
            rate: RateLimits::with_default_bursts(DEFAULT_RATE_LIMIT_READ_PER_SEC, DEFAULT_RATE_LIMIT_WRITE_PER_SEC),
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

    /// These rates, each with a burst of twice its rate.
    pub fn with_default_bursts(read_per_sec: u32, write_per_sec: u32) -> Self {
        Self {
            read_per_sec,
            read_burst: read_per_sec.saturating_mul(2),
            write_per_sec,
            write_burst: write_per_sec.saturating_mul(2),
        }
    }
}

pub fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
