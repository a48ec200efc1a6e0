//! SQLite store: one writer connection (SQLite has one writer anyway, and a single
//! in-process writer never meets SQLITE_BUSY from itself), a pool of WAL readers.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{AppendOutcome, EventStore, StoreError};
use crate::domain::{ActionCount, EventBatch, OrgScope, SummaryQuery};

const INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns) ";
const INSERT_EVENTS_CONFLICT: &str = " ON CONFLICT (organization_id, id) DO NOTHING";
/// Columns per row, to keep one statement under SQLite's 32766 bound parameters.
const INSERT_COLUMNS: usize = 13;
const ROWS_PER_STATEMENT: usize = 32_766 / INSERT_COLUMNS;

const SUMMARY_ONE_ORG: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE organization_id = ?1 AND occurred_at_ns >= ?2 AND occurred_at_ns < ?3 GROUP BY action";
const SUMMARY_ALL_ORGS: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE occurred_at_ns >= ?1 AND occurred_at_ns < ?2 GROUP BY action";
const ANY_EVENT: &str = "SELECT EXISTS (SELECT 1 FROM audit_events)";
/// Reads the schema page, so a broken or vanished file is noticed (`SELECT 1`
/// would be answered by the connection without touching the file).
const PING: &str = "SELECT count(*) FROM sqlite_schema";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
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
        MIGRATOR.run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, readers })
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: &EventBatch) -> Result<AppendOutcome, StoreError> {
        let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        let mut tx = self.writer.begin().await?;
        let mut created = 0usize;
        for chunk in batch.events().chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.organization_id.as_str())
                    .push_bind(event.id.as_str())
                    .push_bind(event.timestamp.get())
                    .push_bind(event.action.as_str())
                    .push_bind(i64::from(event.outcome == crate::domain::Outcome::Failure))
                    .push_bind(event.actor_type.as_str())
                    .push_bind(event.actor_id.as_str())
                    .push_bind(event.target_type.as_str())
                    .push_bind(event.target_id.as_str())
                    .push_bind(event.ip.map(|ip| ip.to_string()))
                    .push_bind(event.user_agent.as_str())
                    .push_bind(event.details_json.as_deref())
                    .push_bind(received_at);
            });
            insert.push(INSERT_EVENTS_CONFLICT);
            created += insert.build().execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(AppendOutcome { created, duplicates: batch.events().len() - created })
    }

    async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError> {
        let (start, end) = query.range.clamped_nanos();
        let rows = match &query.scope {
            OrgScope::One(org) => {
                sqlx::query(SUMMARY_ONE_ORG).bind(org.as_str()).bind(start).bind(end).fetch_all(&self.readers).await?
            }
            OrgScope::All => sqlx::query(SUMMARY_ALL_ORGS).bind(start).bind(end).fetch_all(&self.readers).await?,
        };
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

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(PING).execute(&self.readers).await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let any: bool = sqlx::query_scalar(ANY_EVENT).fetch_one(&self.readers).await?;
        Ok(!any)
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
