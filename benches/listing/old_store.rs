//! The write path as it stood before events got a `log_index` and the listing its
//! indexes: the schema of that time (the migrations before the log index's) in a fresh database, and its
//! append transaction with the very statements the stores ran then (id claim or
//! insert-or-ignore, the events, the rollup upserts, one commit), so ingest before
//! and after can be timed side by side in one run on the same batches: each batch
//! sent to one then the other, in turns, so both meet the same load on a shared machine.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use audit_service::domain::{EventBatch, NewEvent, Outcome};
use audit_service::proto::audit as pb;
use audit_service::store::rollup;
use sqlx::{ConnectOptions, Connection, PgConnection, QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::data::Generator;
use crate::target::{self, Target};

// The schema before log indexes is the committed migrations up to the last one before them.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
const SQLITE_BEFORE_LOG_INDEX: i64 = 20261127000002;
const POSTGRES_BEFORE_LOG_INDEX: i64 = 20261201000001;

// SQLite, as src/store/sqlite/sql.rs had them.
const SQLITE_INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns) ";
const SQLITE_INSERT_EVENTS_TAIL: &str = " ON CONFLICT (organization_id, id) DO NOTHING RETURNING organization_id, id";
const SQLITE_EVENT_ROWS: usize = 32_766 / 13;
const SQLITE_UPSERT_ROLLUPS: &str =
    "INSERT INTO audit_rollups (series, width_s, bucket_start_ns, action, event_count, failure_count) ";
const SQLITE_UPSERT_ROLLUPS_TAIL: &str = " ON CONFLICT (series, width_s, bucket_start_ns, action) DO UPDATE SET \
     event_count = event_count + excluded.event_count, failure_count = failure_count + excluded.failure_count";
const SQLITE_ROLLUP_ROWS: usize = 32_766 / 6;

// PostgreSQL, as src/store/postgres/sql.rs had them.
const PG_CLAIM_IDS: &str = "INSERT INTO audit_event_ids (organization_id, id) \
     SELECT * FROM UNNEST($1::text[], $2::text[]) \
     ON CONFLICT (organization_id, id) DO NOTHING RETURNING organization_id, id";
const PG_INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns) \
     SELECT e.organization_id, e.id, e.occurred_at_ns, e.action, e.failed, e.actor_type, e.actor_id, \
     e.target_type, e.target_id, e.ip::inet, e.user_agent, e.details::json, $13 \
     FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::bool[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
     AS e(organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, target_type, target_id, \
     ip, user_agent, details)";
const PG_UPSERT_ROLLUPS: &str = "INSERT INTO audit_rollups \
     (series, width_s, bucket_start_ns, action, event_count, failure_count) \
     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::int8[], $6::int8[]) \
     ON CONFLICT (series, width_s, bucket_start_ns, action) DO UPDATE SET \
     event_count = audit_rollups.event_count + EXCLUDED.event_count, \
     failure_count = audit_rollups.failure_count + EXCLUDED.failure_count";

pub enum OldStore {
    Sqlite(SqliteConnection, tempfile::TempDir),
    Postgres(PgConnection, String),
}

impl OldStore {
    pub async fn create(db: &str) -> anyhow::Result<Self> {
        if db == "sqlite" {
            let dir = tempfile::tempdir()?;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("old.db"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .connect()
                .await?;
            SQLITE_MIGRATIONS.run_to(SQLITE_BEFORE_LOG_INDEX, &mut conn).await?;
            return Ok(Self::Sqlite(conn, dir));
        }
        let url = target::fresh_postgres_database().await?;
        let mut conn =
            sqlx::postgres::PgConnectOptions::from_str(&url)?.options([("synchronous_commit", "on")]).connect().await?;
        POSTGRES_MIGRATIONS.run_to(POSTGRES_BEFORE_LOG_INDEX, &mut conn).await?;
        add_data_month_partition(&url).await?;
        Ok(Self::Postgres(conn, url))
    }

    /// One batch, in one transaction, as the store appended it then.
    pub async fn append(&mut self, batch: &EventBatch) -> anyhow::Result<usize> {
        match self {
            Self::Sqlite(conn, _) => sqlite_append(conn, batch.events()).await,
            Self::Postgres(conn, _) => postgres_append(conn, batch.events()).await,
        }
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(conn, _dir) => Ok(conn.close().await?),
            Self::Postgres(conn, url) => {
                conn.close().await?;
                target::drop_postgres_database(&url).await
            }
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as i64
}

async fn sqlite_append(conn: &mut SqliteConnection, events: &[NewEvent]) -> anyhow::Result<usize> {
    let received_at = now_ns();
    let mut tx = conn.begin().await?;
    let mut inserted: HashSet<(String, String)> = HashSet::new();
    for chunk in events.chunks(SQLITE_EVENT_ROWS) {
        let mut insert = QueryBuilder::<Sqlite>::new(SQLITE_INSERT_EVENTS);
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
        insert.push(SQLITE_INSERT_EVENTS_TAIL);
        for row in insert.build().fetch_all(&mut *tx).await? {
            inserted.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    let stored: Vec<&NewEvent> =
        events.iter().filter(|e| inserted.remove(&(e.organization_id.as_str().to_owned(), e.id.clone()))).collect();
    let increments = rollup::increments(stored.iter().copied());
    for chunk in increments.chunks(SQLITE_ROLLUP_ROWS) {
        let mut upsert = QueryBuilder::<Sqlite>::new(SQLITE_UPSERT_ROLLUPS);
        upsert.push_values(chunk, |mut row, (key, counts)| {
            row.push_bind(key.series.as_str())
                .push_bind(key.width_s)
                .push_bind(key.start_ns)
                .push_bind(key.action.as_str())
                .push_bind(counts.count)
                .push_bind(counts.failures);
        });
        upsert.push(SQLITE_UPSERT_ROLLUPS_TAIL);
        upsert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(stored.len())
}

async fn postgres_append(conn: &mut PgConnection, events: &[NewEvent]) -> anyhow::Result<usize> {
    let mut sorted: Vec<&NewEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (&a.organization_id, &a.id).cmp(&(&b.organization_id, &b.id)));
    let mut tx = conn.begin().await?;
    let (orgs, ids): (Vec<&str>, Vec<&str>) =
        sorted.iter().map(|e| (e.organization_id.as_str(), e.id.as_str())).unzip();
    let claimed: HashSet<(String, String)> =
        sqlx::query_as(PG_CLAIM_IDS).bind(&orgs).bind(&ids).fetch_all(&mut *tx).await?.into_iter().collect();
    let mut unclaimed = claimed;
    let stored: Vec<&NewEvent> = sorted
        .into_iter()
        .filter(|e| unclaimed.remove(&(e.organization_id.as_str().to_owned(), e.id.clone())))
        .collect();
    if !stored.is_empty() {
        let column = |f: fn(&NewEvent) -> &str| stored.iter().map(|e| f(e)).collect::<Vec<&str>>();
        sqlx::query(PG_INSERT_EVENTS)
            .bind(column(|e| e.organization_id.as_str()))
            .bind(column(|e| e.id.as_str()))
            .bind(stored.iter().map(|e| e.timestamp.get()).collect::<Vec<i64>>())
            .bind(column(|e| e.action.as_str()))
            .bind(stored.iter().map(|e| e.outcome == Outcome::Failure).collect::<Vec<bool>>())
            .bind(column(|e| e.actor_type.as_str()))
            .bind(column(|e| e.actor_id.as_str()))
            .bind(column(|e| e.target_type.as_str()))
            .bind(column(|e| e.target_id.as_str()))
            .bind(stored.iter().map(|e| e.ip.map(|ip| ip.to_string())).collect::<Vec<Option<String>>>())
            .bind(column(|e| e.user_agent.as_str()))
            .bind(stored.iter().map(|e| e.details_json.as_deref()).collect::<Vec<Option<&str>>>())
            .bind(now_ns())
            .execute(&mut *tx)
            .await?;
        let increments = rollup::increments(stored.iter().copied());
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, counts) in &increments {
            columns.0.push(key.series.as_str());
            columns.1.push(key.width_s);
            columns.2.push(key.start_ns);
            columns.3.push(key.action.as_str());
            columns.4.push(counts.count);
            columns.5.push(counts.failures);
        }
        sqlx::query(PG_UPSERT_ROLLUPS)
            .bind(columns.0)
            .bind(columns.1)
            .bind(columns.2)
            .bind(columns.3)
            .bind(columns.4)
            .bind(columns.5)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(stored.len())
}

/// The generated data lies in January 2026, before the months the service keeps
/// partitions for: its own monthly partition keeps it out of the default one, where
/// only strays belong.
pub async fn add_data_month_partition(url: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::postgres::PgConnectOptions::from_str(url)?.connect().await?;
    sqlx::raw_sql("SELECT audit_create_month_partition('2026-01-01 00:00:00'::timestamp)").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

pub struct Ingest {
    /// Events per second through the store's append, today's schema.
    pub now: f64,
    /// Events per second through the old append, the old schema.
    pub before: f64,
}

/// Sends `events` events of one stream over the 30 days, 1000 per call, to a fresh
/// database of each kind.
pub async fn side_by_side(db: &str, events: u64) -> anyhow::Result<Ingest> {
    let target = Target::create(db, true).await?;
    if db == "postgres" {
        add_data_month_partition(&target.url).await?;
    }
    let mut old = OldStore::create(db).await?;
    let mut generator = Generator::new(3, events, "ingest");
    let (mut now, mut before) = (Duration::ZERO, Duration::ZERO);
    let mut left = events;
    let mut turn = 0u64;
    while left > 0 {
        let size = left.min(1000) as usize;
        let batch = EventBatch::try_from(pb::BatchCreateEventsRequest { events: generator.batch(size) })?;
        // Alternating who goes first keeps a cache warmed by one from favouring the other.
        for first_now in [turn.is_multiple_of(2), !turn.is_multiple_of(2)] {
            let started = Instant::now();
            let stored =
                if first_now { target.store.append(&batch).await?.created } else { old.append(&batch).await? };
            anyhow::ensure!(stored == size, "a fresh database took {stored} of {size} new events");
            *if first_now { &mut now } else { &mut before } += started.elapsed();
        }
        left -= size as u64;
        turn += 1;
    }
    old.drop().await?;
    target.drop().await?;
    Ok(Ingest { now: events as f64 / now.as_secs_f64(), before: events as f64 / before.as_secs_f64() })
}
