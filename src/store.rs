//! The storage boundary: one trait every database implements, in domain types only.

mod listing;
mod postgres;
pub mod rollup;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use listing::MAX_PAGE_EVENTS;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub use crate::config::StoreSettings;
use crate::domain::{
    ActionCount, Cursor, EventBatch, EventLookup, EventPage, OrgScope, Snapshot, StoredEvent, SummaryQuery,
};
use crate::filter::Filter;

/// What an append did: events newly stored, and events whose id was already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub created: usize,
    pub duplicates: usize,
}

/// One page of a listing, after tenancy was applied. A store type, not a domain
/// one: it carries the filter language's tree, which is itself built on the domain.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub scope: OrgScope,
    pub filter: Option<Filter>,
    /// `None` for the first page: the store takes a new snapshot.
    pub snapshot: Option<Snapshot>,
    /// `None` for the first page.
    pub after: Option<Cursor>,
    /// Events on the page, 1 to 500.
    pub limit: usize,
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
            sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // SQLSTATE classes 08 (connection lost or refused) and 53 (out of
                // connections, memory, disk); 57P01-57P03 (server shutting down or
                // starting); 57014 (statement timeout: too slow to answer now);
                // 55P03 (lock timeout); 40001/40P01 left after the store's retries.
                Some(pg) => {
                    let code = pg.code();
                    code.starts_with("08")
                        || code.starts_with("53")
                        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "40001" | "40P01")
                }
                // SQLite primary codes (extended codes keep them in the low byte):
                // BUSY 5 and LOCKED 6 (another process holds the file), IOERR 10,
                // FULL 13 and CANTOPEN 14 (the file or its disk is in trouble).
                None => db
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)),
            },
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

    /// The events with the lookup's id in its scope: none, one, or (for a scope of
    /// every organization) up to two, so the caller can tell one from several. The
    /// same single index probe whether or not the id exists in another organization.
    async fn get_event(&self, lookup: &EventLookup) -> Result<Vec<StoredEvent>, StoreError>;

    /// One page of a listing, by keyset (never OFFSET): the cost of a page does not
    /// grow with how deep it is. Only events committed before the query's snapshot
    /// (or, for a first page, before now) are listed.
    async fn list_events(&self, query: &ListQuery) -> Result<EventPage, StoreError>;

    /// Recomputes every rollup from the events, atomically.
    async fn rebuild_rollups(&self) -> Result<(), StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether no event is stored yet.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Connections of each pool now, for the pool-usage gauges; none by default.
    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }

    /// Closes connections cleanly.
    async fn close(&self);
}

/// One connection pool's use, as the `audit.db.pool.*` gauges report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The `pool` label: `writer`, `readers`, `main`.
    pub name: &'static str,
    /// Connections open, idle or in use.
    pub size: u32,
    pub idle: u32,
    /// Most connections the pool may open.
    pub max: u32,
}

impl PoolStats {
    pub fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> Self {
        Self {
            name,
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
}

pub type DynStore = Arc<dyn EventStore>;

/// Reads `(action, count, failure_count)` rows, whichever database answered.
fn counts_of<R>(rows: Vec<R>) -> Result<Vec<ActionCount>, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            Ok(ActionCount {
                action: row.try_get("action")?,
                count: row.try_get("count")?,
                failure_count: row.try_get("failure_count")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Opens the store a database URL names, applying its migrations.
pub async fn open(database_url: &str, settings: &StoreSettings) -> anyhow::Result<DynStore> {
    if let Some(path) = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")) {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(database_url, settings).await?));
    }
    anyhow::bail!("unsupported database URL scheme (expected sqlite://PATH or postgres://...)")
}
