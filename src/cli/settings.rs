//! The flag groups `serve` flattens in: the serving limits and the database pool.
//! Their defaults come from `config`, where each is written once.

use std::time::Duration;

use clap::Args;

use crate::config::limits::*;
use crate::config::{
    DEFAULT_DB_ACQUIRE_TIMEOUT, DEFAULT_DB_MAX_CONNECTIONS, DEFAULT_DB_STATEMENT_TIMEOUT, Limits, RateLimits,
    StoreSettings,
};

/// Connection pool of the PostgreSQL store (SQLite ignores these).
#[derive(Debug, Args)]
pub struct DbArgs {
    /// Most database connections open at once.
    #[arg(long, env = "AUDIT_DB_MAX_CONNECTIONS", default_value_t = DEFAULT_DB_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,
    /// Milliseconds a request waits for a database connection before answering UNAVAILABLE.
    #[arg(long, env = "AUDIT_DB_ACQUIRE_TIMEOUT_MS", default_value_t = DEFAULT_DB_ACQUIRE_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_acquire_timeout_ms: u64,
    /// Longest a database statement may run, in milliseconds; 0 disables the limit.
    #[arg(long, env = "AUDIT_DB_STATEMENT_TIMEOUT_MS", default_value_t = DEFAULT_DB_STATEMENT_TIMEOUT.as_millis() as u64)]
    pub db_statement_timeout_ms: u64,
}

impl DbArgs {
    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
        }
    }
}

/// The limit flags of `audit-service serve`, flattened into its arguments.
#[derive(Debug, Clone, Args)]
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
        let defaults = Limits::default().rate;
        let rate = |set: Option<u32>, default: u32| set.unwrap_or(if demo { 0 } else { default });
        let read_per_sec = rate(self.rate_limit_read_per_sec, defaults.read_per_sec);
        let write_per_sec = rate(self.rate_limit_write_per_sec, defaults.write_per_sec);
        let bursts = RateLimits::with_default_bursts(read_per_sec, write_per_sec);
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
                read_burst: self.rate_limit_read_burst.unwrap_or(bursts.read_burst),
                write_per_sec,
                write_burst: self.rate_limit_write_burst.unwrap_or(bursts.write_burst),
            },
        };
        limits.check()?;
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // What `serve` runs with when no flag is given is `Limits::default()`.
        assert_eq!(defaults.limits(false).unwrap(), Limits::default());
        let asked = Flags::parse_from(["x", "--rate-limit-read-per-sec", "3"]).limits.limits(true).unwrap();
        assert_eq!((asked.rate.read_per_sec, asked.rate.read_burst, asked.rate.write_per_sec), (3, 6, 0));
        assert!(Flags::parse_from(["x", "--max-header-bytes", "100"]).limits.limits(false).is_err());
    }
}
