//! A fresh database for one benchmark step, reached through the service's own
//! store and service types, plus the database's native bulk-load path.

use std::time::Duration;

use audit_service::auth::{Principal, Verifier, mint_hs256};
use audit_service::domain::{NewEvent, Outcome};
use audit_service::service::AuditLog;
use audit_service::store::{self, DynStore, PostgresStore, SqliteStore, StoreSettings};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::ConnectOptions;

use crate::naive_summary::NaiveSummary;

pub struct Target {
    pub store: DynStore,
    /// The naive `GROUP BY` the rollups are measured against.
    pub naive: NaiveSummary,
    pub service: AuditLog,
    pub principal: Principal,
    /// `sqlite://PATH` or the PostgreSQL database's URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn create(db: &str, aggregates: bool) -> anyhow::Result<Self> {
        let (url, dir) = match db {
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                (format!("sqlite://{}", dir.path().join("bench.db").display()), Some(dir))
            }
            "postgres" => (fresh_postgres_database().await?, None),
            other => anyhow::bail!("unknown --db {other} (sqlite or postgres)"),
        };
        let store = open(&url, aggregates).await?;
        let naive = NaiveSummary::connect(&url).await?;
        let service = AuditLog::new(store.clone());
        let secret = b"benchmark-secret-benchmark-secret";
        let token = mint_hs256(secret, "bench", &["audit:write"], None, Duration::from_secs(86_400))?;
        let principal = Verifier::hs256(secret)
            .verify_header(Some(&format!("Bearer {token}")))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { store, naive, service, principal, url, _dir: dir })
    }

    /// The database's own fastest load of the same rows, bypassing the service.
    pub async fn bulk_insert(&self, events: &[NewEvent]) -> anyhow::Result<()> {
        if self.url.starts_with("postgres") {
            return self.copy(events).await;
        }
        let path = self.url.trim_start_matches("sqlite://");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .connect()
            .await?;
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        for chunk in events.chunks(32_766 / 13) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, \
                 target_type, target_id, ip, user_agent, details, received_at_ns) ",
            );
            insert.push_values(chunk, |mut row, e| {
                row.push_bind(e.organization_id.as_str())
                    .push_bind(e.id.as_str())
                    .push_bind(e.timestamp.get())
                    .push_bind(e.action.as_str())
                    .push_bind(i64::from(e.outcome == Outcome::Failure))
                    .push_bind(e.actor_type.as_str())
                    .push_bind(e.actor_id.as_str())
                    .push_bind(e.target_type.as_str())
                    .push_bind(e.target_id.as_str())
                    .push_bind(e.ip.map(|ip| ip.to_string()))
                    .push_bind(e.user_agent.as_str())
                    .push_bind(e.details_json.as_deref())
                    .push_bind(0i64);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL's COPY of the same rows into the events table, in one transaction.
    async fn copy(&self, events: &[NewEvent]) -> anyhow::Result<()> {
        let mut conn = sqlx::postgres::PgConnectOptions::from_str(&self.url)?.connect().await?;
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY audit_events (organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, \
                 target_type, target_id, ip, user_agent, details, received_at_ns) FROM STDIN",
            )
            .await?;
        let mut buffer = String::with_capacity(1 << 20);
        for e in events {
            use std::fmt::Write;
            let ip = e.ip.map_or_else(|| "\\N".to_owned(), |ip| ip.to_string());
            writeln!(
                buffer,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t\\N\t0",
                e.organization_id,
                e.id,
                e.timestamp.get(),
                e.action.as_str(),
                e.outcome == Outcome::Failure,
                e.actor_type,
                e.actor_id,
                e.target_type,
                e.target_id,
                ip,
                e.user_agent
            )?;
            if buffer.len() > (1 << 20) {
                copy.send(buffer.as_bytes()).await?;
                buffer.clear();
            }
        }
        copy.send(buffer.as_bytes()).await?;
        copy.finish().await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        self.naive.close().await;
        self.store.close().await;
        if self.url.starts_with("postgres") {
            drop_postgres_database(&self.url).await?;
        }
        Ok(())
    }
}

/// A new empty database next to the configured one; returns its URL.
pub async fn fresh_postgres_database() -> anyhow::Result<String> {
    let name = format!("audit_bench_{}_{}", std::process::id(), rand_suffix());
    let mut admin = admin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    Ok(replace_database(&admin_url(), &name))
}

pub async fn drop_postgres_database(url: &str) -> anyhow::Result<()> {
    let name = url.rsplit('/').next().unwrap_or_default();
    let mut admin = admin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// The service's store; without aggregates, one whose summaries are wrong, to
/// measure what maintaining the rollups costs at ingest.
async fn open(url: &str, aggregates: bool) -> anyhow::Result<DynStore> {
    let settings = StoreSettings::default();
    if aggregates {
        return store::open(url, &settings).await;
    }
    match url.strip_prefix("sqlite://") {
        Some(path) => Ok(Arc::new(SqliteStore::open(path).await?.without_rollups())),
        None => Ok(Arc::new(PostgresStore::open(url, &settings).await?.without_rollups())),
    }
}

fn admin_url() -> String {
    std::env::var("AUDIT_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("AUDIT_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin() -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::postgres::PgConnectOptions::from_str(&admin_url())?.connect().await?)
}

fn replace_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => format!("{url}/{name}"),
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
