//! The storage boundary: one trait every database implements, in domain types only.

pub mod rollup;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use sqlite::SqliteStore;

use crate::domain::{ActionCount, EventBatch, SummaryQuery};

/// What an append did: events newly stored, and events whose id was already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub created: usize,
    pub duplicates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot answer now (unreachable, locked, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
            // SQLite primary codes (extended codes keep them in the low byte):
            // BUSY 5 and LOCKED 6 (another process holds the file), IOERR 10,
            // FULL 13 and CANTOPEN 14 (the file or its disk is in trouble).
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)),
            _ => false,
        };
        if transient { Self::Unavailable(error) } else { Self::Other(error.into()) }
    }
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores a batch atomically; returns only once it is durable.
    async fn append(&self, batch: &EventBatch) -> Result<AppendOutcome, StoreError>;

    /// Per-action counts of the events in the query's range and scope, unordered.
    async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError>;

    /// The same counts by a plain `GROUP BY` over the events, ignoring the
    /// rollups: the reference the rollups must always equal.
    async fn summarize_raw(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError>;

    /// Recomputes every rollup from the events, atomically.
    async fn rebuild_rollups(&self) -> Result<(), StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether no event is stored yet.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Closes connections cleanly.
    async fn close(&self);
}

pub type DynStore = Arc<dyn EventStore>;

/// Opens the store a database URL names, applying its migrations.
pub async fn open(database_url: &str) -> anyhow::Result<DynStore> {
    if let Some(path) = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        anyhow::bail!("PostgreSQL is not available in this build yet; use sqlite://PATH");
    }
    anyhow::bail!("unsupported database URL scheme (expected sqlite://PATH)")
}

/// Opens a store for the benchmark; `maintain_rollups = false` yields one whose
/// summaries are wrong, to measure what the rollups cost at ingest.
pub async fn open_for_benchmark(database_url: &str, maintain_rollups: bool) -> anyhow::Result<DynStore> {
    match database_url.strip_prefix("sqlite://") {
        Some(path) if !maintain_rollups => Ok(Arc::new(SqliteStore::open(path).await?.without_rollups())),
        _ => open(database_url).await,
    }
}
