//! SQLite store: one writer connection (SQLite has one writer anyway, and a single
//! in-process writer never meets SQLITE_BUSY from itself), a pool of WAL readers.

mod sql;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::sql::ANY_EVENT;
use super::{AppendOutcome, EventStore, ListQuery, StoreError, counts_of};
use super::{listing, rollup};
use crate::domain::{
    ActionCount, EventBatch, EventLookup, EventPage, NewEvent, OrgScope, Outcome, Snapshot, StoredEvent, SummaryQuery,
};
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

/// A snapshot this store made: a commit sequence number. Anything else is refused,
/// never guessed at.
fn parse_snapshot(snapshot: &Snapshot) -> Result<i64, StoreError> {
    let text = snapshot.0.as_str();
    match text.parse::<i64>() {
        Ok(seq) if seq >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(seq),
        _ => Err(StoreError::Other(anyhow::anyhow!("malformed listing snapshot"))),
    }
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

    /// Inserts the events not stored before (the first copy of an id the batch
    /// repeats), each with the next log index of its organization in batch order;
    /// returns them. Runs in a transaction that holds the write lock from its start,
    /// so the ids and counters it reads stay what it read until it commits.
    async fn insert_events<'a>(
        conn: &mut SqliteConnection,
        events: &'a [NewEvent],
    ) -> Result<Vec<&'a NewEvent>, StoreError> {
        let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let firsts: Vec<&NewEvent> =
            events.iter().filter(|e| seen.insert((e.organization_id.as_str(), e.id.as_str()))).collect();
        let stored_before = Self::stored_ids(conn, &firsts).await?;
        let new: Vec<&NewEvent> = firsts
            .into_iter()
            .filter(|e| !stored_before.contains(&(e.organization_id.as_str().to_owned(), e.id.clone())))
            .collect();
        if new.is_empty() {
            return Ok(new);
        }
        let mut next = Self::log_counters(conn, &new).await?;
        let indexed: Vec<(&NewEvent, i64)> = new
            .iter()
            .map(|&e| {
                let counter = next.entry(e.organization_id.as_str().to_owned()).or_insert(0);
                *counter += 1;
                (e, *counter - 1)
            })
            .collect();
        for chunk in indexed.chunks(EVENT_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
            insert.push_values(chunk, |mut row, &(event, log_index)| {
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
                    .push_bind(received_at)
                    .push_bind(log_index);
            });
            insert.build().execute(&mut *conn).await?;
        }
        let counters: Vec<(String, i64)> = next.into_iter().collect();
        for chunk in counters.chunks(LOG_COUNTERS_PER_STATEMENT) {
            let mut upsert = QueryBuilder::<Sqlite>::new(UPSERT_LOG_COUNTERS);
            upsert.push_values(chunk, |mut row, (org, next)| {
                row.push_bind(org.as_str()).push_bind(*next);
            });
            upsert.push(UPSERT_LOG_COUNTERS_TAIL);
            upsert.build().execute(&mut *conn).await?;
        }
        Ok(new)
    }

    /// Which of the events' `(organization_id, id)` are stored already.
    async fn stored_ids(
        conn: &mut SqliteConnection,
        events: &[&NewEvent],
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let mut stored = HashSet::new();
        for chunk in events.chunks(IDS_PER_STATEMENT) {
            let mut select = QueryBuilder::<Sqlite>::new(STORED_IDS);
            let mut values = select.separated(", ");
            for event in chunk {
                values.push("(").push_bind_unseparated(event.id.as_str());
                values.push_unseparated(", ").push_bind_unseparated(event.organization_id.as_str());
                values.push_unseparated(")");
            }
            select.push(STORED_IDS_TAIL);
            for row in select.build().fetch_all(&mut *conn).await? {
                stored.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(stored)
    }

    /// The next log index of each organization the events belong to, for those that
    /// have a log yet.
    async fn log_counters(
        conn: &mut SqliteConnection,
        events: &[&NewEvent],
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let orgs: BTreeSet<&str> = events.iter().map(|e| e.organization_id.as_str()).collect();
        let orgs: Vec<&str> = orgs.into_iter().collect();
        let mut next = BTreeMap::new();
        for chunk in orgs.chunks(ORGS_PER_STATEMENT) {
            let mut select = QueryBuilder::<Sqlite>::new(LOG_COUNTERS);
            let mut values = select.separated(", ");
            for org in chunk {
                values.push_bind(*org);
            }
            select.push(LOG_COUNTERS_TAIL);
            for row in select.build().fetch_all(&mut *conn).await? {
                next.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(next)
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
        let mut tx = self.writer.begin_with(BEGIN_APPEND).await?;
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

    async fn get_event(&self, lookup: &EventLookup) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = match &lookup.scope {
            OrgScope::One(org) => {
                sqlx::query(GET_EVENT_IN_ORG)
                    .bind(lookup.id.as_str())
                    .bind(org.as_str())
                    .fetch_all(&self.readers)
                    .await?
            }
            OrgScope::All => sqlx::query(GET_EVENT_ANY_ORG).bind(lookup.id.as_str()).fetch_all(&self.readers).await?,
        };
        listing::events_of(rows)
    }

    async fn list_events(&self, query: &ListQuery) -> Result<EventPage, StoreError> {
        // Both statements on one connection, though any order of the two would do:
        // what commits after the snapshot is read has a greater `seq`.
        let mut conn = self.readers.acquire().await?;
        let seq = match &query.snapshot {
            Some(snapshot) => parse_snapshot(snapshot)?,
            None => sqlx::query_scalar(LAST_SEQ).fetch_one(&mut *conn).await?,
        };
        let mut statement = listing::page_statement::<Sqlite, i64>(&DIALECT, query, seq)?;
        let rows = statement.build().fetch_all(&mut *conn).await?;
        let (events, more) = listing::page_of(listing::events_of(rows)?, query.limit);
        Ok(EventPage { events, more, snapshot: Snapshot(seq.to_string()) })
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
