//! SQLite store: one writer connection (SQLite has one writer anyway, and a single
//! in-process writer never meets SQLITE_BUSY from itself), a pool of WAL readers.

mod sql;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::rollup;
use super::sql::ANY_EVENT;
use super::{AppendOutcome, EventStore, StoreError, counts_of};
use crate::domain::{ActionCount, EventBatch, NewEvent, Outcome, SummaryQuery};
use sql::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Applies the missing migrations. sqlx takes no lock on SQLite, so openers of one
/// fresh file (processes starting together) can both try the same migration: the
/// later one fails on what the earlier one created. A failure after which more
/// migrations are recorded than before was such a race, and the next attempt
/// skips what the other opener applied; a failure without progress is returned.
async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    let mut recorded = recorded_migrations(pool).await?;
    loop {
        let Err(error) = MIGRATOR.run(pool).await else { return Ok(()) };
        let now = recorded_migrations(pool).await?;
        if now <= recorded {
            return Err(error.into());
        }
        tracing::info!(recorded = now, error = %error, "another opener applied a migration first; retrying");
        recorded = now;
    }
}

/// Migrations recorded as applied; none before the migrator's table exists.
async fn recorded_migrations(pool: &SqlitePool) -> anyhow::Result<i64> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(0);
    }
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(pool).await?)
}

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    /// Off only in the store benchmark, to measure what the rollups cost.
    maintain_rollups: bool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and migrates it.
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before BatchCreateEvents answers, even if
            // the machine, not only the process, dies right after.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(2));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        migrate(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, readers, maintain_rollups: true })
    }

    /// A store that does not maintain rollups: its summaries are wrong. Exists
    /// only so the benchmark can measure what maintaining them costs.
    #[cfg(feature = "testing")]
    pub fn without_rollups(mut self) -> Self {
        self.maintain_rollups = false;
        self
    }

    /// Inserts the events, returning which of them were new.
    async fn insert_events<'a>(
        conn: &mut SqliteConnection,
        events: &'a [NewEvent],
    ) -> Result<Vec<&'a NewEvent>, StoreError> {
        let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        let mut inserted: HashSet<(String, String)> = HashSet::new();
        for chunk in events.chunks(EVENT_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.organization_id.as_str())
                    .push_bind(event.id.as_str())
                    .push_bind(event.timestamp.get())
                    .push_bind(event.action.as_str())
                    .push_bind(i64::from(event.outcome == Outcome::Failure))
                    .push_bind(event.actor_type.as_str())
                    .push_bind(event.actor_id.as_str())
                    .push_bind(event.target_type.as_str())
                    .push_bind(event.target_id.as_str())
                    .push_bind(event.ip.map(|ip| ip.to_string()))
                    .push_bind(event.user_agent.as_str())
                    .push_bind(event.details_json.as_deref())
                    .push_bind(received_at);
            });
            insert.push(INSERT_EVENTS_TAIL);
            for row in insert.build().fetch_all(&mut *conn).await? {
                inserted.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        // A duplicate inside the batch conflicts with its first copy: take each
        // returned key once, for the first event that carries it.
        Ok(events.iter().filter(|e| inserted.remove(&(e.organization_id.as_str().to_owned(), e.id.clone()))).collect())
    }

    async fn add_to_rollups(conn: &mut SqliteConnection, stored: &[&NewEvent]) -> Result<(), StoreError> {
        let increments = rollup::increments(stored.iter().copied());
        for chunk in increments.chunks(ROLLUP_ROWS_PER_STATEMENT) {
            let mut upsert = QueryBuilder::<Sqlite>::new(UPSERT_ROLLUPS);
            upsert.push_values(chunk, |mut row, (key, counts)| {
                row.push_bind(key.series.as_str())
                    .push_bind(key.width_s)
                    .push_bind(key.start_ns)
                    .push_bind(key.action.as_str())
                    .push_bind(counts.count)
                    .push_bind(counts.failures);
            });
            upsert.push(UPSERT_ROLLUPS_TAIL);
            upsert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: &EventBatch) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let stored = Self::insert_events(&mut tx, batch.events()).await?;
        if self.maintain_rollups {
            Self::add_to_rollups(&mut tx, &stored).await?;
        }
        tx.commit().await?;
        Ok(AppendOutcome { created: stored.len(), duplicates: batch.events().len() - stored.len() })
    }

    async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError> {
        let (start, end) = query.range.clamped_nanos();
        let Some(mut sql) = rollup::summary_statement::<Sqlite>(&query.scope, start, end, &DIALECT) else {
            return Ok(Vec::new());
        };
        counts_of(sql.build().fetch_all(&self.readers).await?)
    }

    async fn get_event(
        &self,
        _lookup: &crate::domain::EventLookup,
    ) -> Result<Vec<crate::domain::StoredEvent>, StoreError> {
        Err(StoreError::Other(anyhow::anyhow!("get_event is not built yet on SQLite")))
    }

    async fn list_events(&self, _query: &crate::domain::ListQuery) -> Result<crate::domain::EventPage, StoreError> {
        Err(StoreError::Other(anyhow::anyhow!("list_events is not built yet on SQLite")))
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        rollup::rebuild::<Sqlite>(&DIALECT, &mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(PING).execute(&self.readers).await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let any: bool = sqlx::query_scalar(ANY_EVENT).fetch_one(&self.readers).await?;
        Ok(!any)
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![super::PoolStats::of("writer", &self.writer), super::PoolStats::of("readers", &self.readers)]
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
