//! The reference every summary must equal: per-action counts by a plain `GROUP BY`
//! over the stored events, ignoring the rollups, on a connection of its own beside
//! the store. Shared by the store tests and the store benchmark (which times it
//! against the rollups).

use std::str::FromStr;

use audit_service::domain::{ActionCount, OrgScope, SummaryQuery};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

// The statements as each store spells its own aggregates.
const SQLITE_ONE_ORG: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE organization_id = ?1 AND occurred_at_ns >= ?2 AND occurred_at_ns < ?3 GROUP BY action";
const SQLITE_ALL_ORGS: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE occurred_at_ns >= ?1 AND occurred_at_ns < ?2 GROUP BY action";
const POSTGRES_ONE_ORG: &str = "SELECT action, COUNT(*) AS count, COUNT(*) FILTER (WHERE failed) AS failure_count \
     FROM audit_events WHERE organization_id = $1 AND occurred_at_ns >= $2 AND occurred_at_ns < $3 GROUP BY action";
const POSTGRES_ALL_ORGS: &str = "SELECT action, COUNT(*) AS count, COUNT(*) FILTER (WHERE failed) AS failure_count \
     FROM audit_events WHERE occurred_at_ns >= $1 AND occurred_at_ns < $2 GROUP BY action";

/// Reads the database a store URL names.
pub enum NaiveSummary {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl NaiveSummary {
    /// Connects to the database of `url` (`sqlite://PATH` or `postgres://...`), which a
    /// store has already created and migrated.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres") {
            let options = PgConnectOptions::from_str(url)?;
            return Ok(Self::Postgres(PgPoolOptions::new().max_connections(1).connect_with(options).await?));
        }
        let options = SqliteConnectOptions::from_str(url)?.read_only(true);
        Ok(Self::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(options).await?))
    }

    /// The counts of the events in the query's range and scope, unordered.
    pub async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, sqlx::Error> {
        let (start, end) = query.range.clamped_nanos();
        let rows: Vec<(String, i64, i64)> = match (self, &query.scope) {
            (Self::Sqlite(pool), OrgScope::One(org)) => {
                sqlx::query_as(SQLITE_ONE_ORG).bind(org.as_str()).bind(start).bind(end).fetch_all(pool).await?
            }
            (Self::Sqlite(pool), OrgScope::All) => {
                sqlx::query_as(SQLITE_ALL_ORGS).bind(start).bind(end).fetch_all(pool).await?
            }
            (Self::Postgres(pool), OrgScope::One(org)) => {
                sqlx::query_as(POSTGRES_ONE_ORG).bind(org.as_str()).bind(start).bind(end).fetch_all(pool).await?
            }
            (Self::Postgres(pool), OrgScope::All) => {
                sqlx::query_as(POSTGRES_ALL_ORGS).bind(start).bind(end).fetch_all(pool).await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(action, count, failure_count)| ActionCount { action, count, failure_count })
            .collect())
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
