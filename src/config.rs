//! Settings of a running server, whatever set them (flags, environment, tests).

use std::time::Duration;

pub mod limits;

pub use limits::{Limits, RateLimits};

use crate::auth::AuthConfig;
use crate::paging::PageTokenKeys;

/// Largest gRPC message or REST body accepted, in bytes. A full batch of 1000
/// events with large details stays under it.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// How long in-flight requests may run on after SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How far past the server's clock an event may be dated: room for clients'
/// clocks running ahead, not for events months away.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(3600);
/// PostgreSQL pool: connections open at once, wait for one, longest statement.
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 16;
pub const DEFAULT_DB_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(2000);
pub const DEFAULT_DB_STATEMENT_TIMEOUT: Duration = Duration::from_millis(5000);

/// Where the keys that verify bearer tokens come from.
#[derive(Debug, Clone)]
pub enum AuthSettings {
    /// Configured keys: a shared secret and/or a JWKS.
    Keys(AuthConfig),
    /// Demo mode: a key generated at start, HS256 only.
    Demo { secret: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub auth: AuthSettings,
    /// Browser origins allowed by CORS (`scheme://host[:port]`); empty allows none,
    /// `*` alone allows any (without credentials). Checked by `server::build`.
    pub cors_origins: Vec<String>,
    pub max_request_bytes: usize,
    pub drain_timeout: Duration,
    /// Events dated later than this after the server's clock are refused.
    pub max_future_skew: Duration,
    /// Sizes, timeouts, concurrency and rate limits.
    pub limits: Limits,
    /// Connection pool of the PostgreSQL store.
    pub store: StoreSettings,
    /// Demo mode only: a short-lived read-only token the dashboard at `/` pre-fills.
    pub demo_token: Option<String>,
    /// Keys of ListEvents page tokens, the first signing. `None`: a key made at start,
    /// so pages do not survive a restart nor cross replicas.
    pub page_token_keys: Option<PageTokenKeys>,
}

impl Config {
    pub fn new(database_url: impl Into<String>, auth: AuthSettings) -> Self {
        Self {
            database_url: database_url.into(),
            auth,
            cors_origins: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            limits: Limits::default(),
            store: StoreSettings::default(),
            demo_token: None,
            page_token_keys: None,
        }
    }
}

/// Connection pool settings of the PostgreSQL store. SQLite keeps its own: one
/// writer connection and a few readers on a local file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering UNAVAILABLE;
    /// bounds how long a database outage keeps callers waiting.
    pub acquire_timeout: Duration,
    /// Longest a statement may run (PostgreSQL `statement_timeout`); zero disables it.
    pub statement_timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_DB_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_DB_ACQUIRE_TIMEOUT,
            statement_timeout: DEFAULT_DB_STATEMENT_TIMEOUT,
        }
    }
}
