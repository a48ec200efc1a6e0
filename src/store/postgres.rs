//! PostgreSQL store: one pool shared by writers and readers (PostgreSQL has no
//! single-writer limit), events in monthly partitions, idempotency through a
//! separate id table, rollups kept in the batch's transaction as in SQLite.

mod append;
mod sql;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Postgres};
use tokio::task::AbortHandle;

use super::sql::ANY_EVENT;
use super::{AppendOutcome, EventStore, ListQuery, StoreError, StoreSettings, counts_of};
use super::{listing, rollup};
use crate::domain::{
    ActionCount, EventBatch, EventLookup, EventPage, NewEvent, OrgScope, Snapshot, StoredEvent, SummaryQuery,
};
use append::is_retryable;
use sql::*;

// sqlx 0.9's PostgreSQL migrator holds `pg_advisory_lock` (a key derived from the
// database name) from before it creates `_sqlx_migrations` until every migration
// is applied (sqlx-postgres `migrate.rs` `lock`/`unlock`, called by sqlx-core
// `Migrator::run_direct` since `locking` defaults to true): replicas starting
// together apply each migration once, the others wait, then find nothing to do.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Monthly partitions kept ready ahead of the current month.
const PARTITION_MONTHS_AHEAD: i32 = 3;
/// How often a running service re-ensures them, so a long uptime never outruns them.
const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Attempts of an append that hit a deadlock or a serialization failure.
const APPEND_ATTEMPTS: u32 = 4;
/// How long start waits for the first connection: an unreachable host fails the
/// start instead of hanging it for the operating system's TCP retries.
const STARTUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest snapshot text taken from a caller: `xmin:xmax:` and the transactions in
/// progress, which stay far fewer than this allows on any real server.
const MAX_SNAPSHOT_LEN: usize = 64 * 1024;

/// A snapshot as `pg_current_snapshot()::text` writes it (`xmin:xmax:xip,…`),
/// checked before PostgreSQL parses it, so anything else is a clean refusal.
fn checked_snapshot(snapshot: &Snapshot) -> Result<String, StoreError> {
    let text = snapshot.0.as_str();
    let number = |part: &str| !part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit());
    let mut parts = text.splitn(3, ':');
    let well_formed = text.len() <= MAX_SNAPSHOT_LEN
        && parts.next().is_some_and(number)
        && parts.next().is_some_and(number)
        && parts.next().is_some_and(|xip| xip.is_empty() || xip.split(',').all(number));
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(StoreError::Other(anyhow::anyhow!("malformed listing snapshot")))
    }
}

pub struct PostgresStore {
    pool: PgPool,
    partition_upkeep: AbortHandle,
    /// Off only in the store benchmark, to measure what the rollups cost.
    maintain_rollups: bool,
}

impl PostgresStore {
    /// Connects, applies missing migrations, ensures the coming months' partitions
    /// and opens the pool. Fails when the database cannot be reached: a service
    /// that starts must be able to serve; after start, outages are answered
    /// UNAVAILABLE and recovered from without restart.
    pub async fn open(url: &str, settings: &StoreSettings) -> anyhow::Result<Self> {
        let mut options = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        if options.get_application_name().is_none() {
            options = options.application_name("audit-service");
        }
        // BatchCreateEvents answers after the commit is durable, whatever the server's default.
        let options = options.options([("synchronous_commit", "on")]);

        // Migrations and partition upkeep on a connection of their own, without the
        // statement timeout: DDL may wait for locks or rewrite a table.
        let mut conn = tokio::time::timeout(STARTUP_CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| anyhow::anyhow!("no answer from PostgreSQL within {STARTUP_CONNECT_TIMEOUT:?}"))?
            .context("connecting to PostgreSQL")?;
        Self::migrate(&mut conn).await?;
        if let Err(error) = ensure_partitions(&mut conn).await {
            // Not fatal: the default partition takes what no monthly one does.
            tracing::warn!(error = %error, "creating monthly partitions failed; the default partition takes the events");
        }
        conn.close().await.context("closing the migration connection")?;

        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.options([("statement_timeout", timeout_ms.as_str())]))
            .await
            .context("opening the PostgreSQL pool")?;
        let partition_upkeep = tokio::spawn(keep_partitions_ahead(pool.clone())).abort_handle();
        Ok(Self { pool, partition_upkeep, maintain_rollups: true })
    }

    /// Runs the migrator unless every migration of this build is already applied,
    /// unchanged. The migrator's first step (`CREATE TABLE IF NOT EXISTS`) needs
    /// CREATE on the schema even when the table exists; skipping it lets a service
    /// role without DDL rights start on a database its owner migrated, and lets an
    /// older replica start next to a newer one's additional migrations.
    async fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
        // An error here (no table yet, no right to read it) leaves the verdict to the migrator.
        if let Ok(rows) = sqlx::query_as::<_, (i64, Vec<u8>, bool)>(APPLIED_MIGRATIONS).fetch_all(&mut *conn).await {
            let applied: HashMap<i64, (Vec<u8>, bool)> =
                rows.into_iter().map(|(version, checksum, success)| (version, (checksum, success))).collect();
            let up_to_date = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).all(|m| {
                applied.get(&m.version).is_some_and(|(checksum, success)| *success && checksum[..] == m.checksum[..])
            });
            if up_to_date {
                return Ok(());
            }
        }
        MIGRATOR.run(&mut *conn).await.context("applying PostgreSQL migrations")
    }

    /// A store that does not maintain rollups: its summaries are wrong. Exists
    /// only so the benchmark can measure what maintaining them costs.
    #[cfg(feature = "testing")]
    pub fn without_rollups(mut self) -> Self {
        self.maintain_rollups = false;
        self
    }

    /// A pooled connection. Not getting one means the database cannot be reached
    /// now (down, refusing connections, or every connection busy past the acquire
    /// timeout): unavailable, whatever the error says.
    async fn connection(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.pool.acquire().await.map_err(StoreError::Unavailable)
    }
}
async fn ensure_partitions(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(ENSURE_PARTITIONS).bind(PARTITION_MONTHS_AHEAD).fetch_one(conn).await
}

/// Re-ensures the monthly partitions daily while the service runs.
async fn keep_partitions_ahead(pool: PgPool) {
    loop {
        tokio::time::sleep(PARTITION_CHECK_INTERVAL).await;
        let created = match pool.acquire().await {
            Ok(mut conn) => ensure_partitions(&mut conn).await,
            Err(error) => Err(error),
        };
        match created {
            Ok(0) => {}
            Ok(created) => tracing::info!(created, "monthly partitions created"),
            Err(error) => tracing::warn!(error = %error, "creating monthly partitions failed; will retry"),
        }
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, batch: &EventBatch) -> Result<AppendOutcome, StoreError> {
        // A duplicate inside the batch is its first copy's duplicate.
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let firsts: Vec<&NewEvent> =
            batch.events().iter().filter(|e| seen.insert((e.organization_id.as_str(), e.id.as_str()))).collect();
        let mut conn = self.connection().await?;
        let mut attempt = 1;
        loop {
            match self.append_once(&mut conn, &firsts).await {
                Ok(stored) => {
                    let total = batch.events().len();
                    return Ok(AppendOutcome { created: stored.len(), duplicates: total - stored.len() });
                }
                Err(error) if attempt < APPEND_ATTEMPTS && is_retryable(&error) => {
                    // Batches lock their counters in one order, so this should stay rare.
                    tracing::warn!(attempt, error = %error, "append rolled back by the database; retrying");
                    // Jittered, so that the transactions that collided do not collide again.
                    let pause = Duration::from_millis(rand::random_range(1..=10) * u64::from(attempt));
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError> {
        let (start, end) = query.range.clamped_nanos();
        let Some(mut sql) = rollup::summary_statement::<Postgres>(&query.scope, start, end, &DIALECT) else {
            return Ok(Vec::new());
        };
        let mut conn = self.connection().await?;
        counts_of(sql.build().fetch_all(&mut *conn).await?)
    }

    async fn get_event(&self, lookup: &EventLookup) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conn = self.connection().await?;
        let rows = match &lookup.scope {
            OrgScope::One(org) => {
                sqlx::query(GET_EVENT_IN_ORG).bind(lookup.id.as_str()).bind(org.as_str()).fetch_all(&mut *conn).await?
            }
            OrgScope::All => sqlx::query(GET_EVENT_ANY_ORG).bind(lookup.id.as_str()).fetch_all(&mut *conn).await?,
        };
        listing::events_of(rows)
    }

    async fn list_events(&self, query: &ListQuery) -> Result<EventPage, StoreError> {
        let mut conn = self.connection().await?;
        let snapshot = match &query.snapshot {
            Some(snapshot) => checked_snapshot(snapshot)?,
            None => sqlx::query_scalar(CURRENT_SNAPSHOT).fetch_one(&mut *conn).await?,
        };
        let mut statement = listing::page_statement::<Postgres, String>(&DIALECT, query, snapshot.clone())?;
        let rows = statement.build().fetch_all(&mut *conn).await?;
        let (events, more) = listing::page_of(listing::events_of(rows)?, query.limit);
        Ok(EventPage { events, more, snapshot: Snapshot(snapshot) })
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        // Appends that inserted events but not yet their increments are blocked by
        // the lock and add them after the commit, on top of a rebuild that could
        // not see their events: nothing is counted twice or lost.
        let mut conn = self.connection().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(REBUILD_NO_TIMEOUT).execute(&mut *tx).await?;
        sqlx::query(LOCK_ROLLUPS).execute(&mut *tx).await?;
        rollup::rebuild::<Postgres>(&DIALECT, &mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        sqlx::query(PING).execute(&mut *conn).await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let mut conn = self.connection().await?;
        let any: bool = sqlx::query_scalar(ANY_EVENT).fetch_one(&mut *conn).await?;
        Ok(!any)
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![super::PoolStats::of("main", &self.pool)]
    }

    async fn close(&self) {
        self.partition_upkeep.abort();
        self.pool.close().await;
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.partition_upkeep.abort();
    }
}
