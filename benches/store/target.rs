//! A fresh database for one benchmark step, reached through the service's own
//! store and service types, plus the database's native bulk-load path.

use std::time::Duration;

use audit_service::auth::{Principal, Verifier, mint_hs256};
use audit_service::domain::{NewEvent, Outcome};
use audit_service::service::AuditService;
use audit_service::store::{self, DynStore};
use sqlx::ConnectOptions;

pub struct Target {
    pub store: DynStore,
    pub service: AuditService,
    pub principal: Principal,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn create(db: &str, aggregates: bool) -> anyhow::Result<Self> {
        let (url, dir) = match db {
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                (format!("sqlite://{}", dir.path().join("bench.db").display()), Some(dir))
            }
            other => anyhow::bail!("unknown --db {other} (sqlite)"),
        };
        let store = store::open_for_benchmark(&url, aggregates).await?;
        let service = AuditService::new(store.clone());
        let secret = b"benchmark-secret-benchmark-secret";
        let token = mint_hs256(secret, "bench", &["audit:write"], None, Duration::from_secs(86_400))?;
        let principal = Verifier::hs256(secret)
            .verify_header(Some(&format!("Bearer {token}")))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { store, service, principal, url, _dir: dir })
    }

    /// The database's own fastest load of the same rows, bypassing the service.
    pub async fn bulk_insert(&self, events: &[NewEvent]) -> anyhow::Result<()> {
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

    pub async fn drop(self) -> anyhow::Result<()> {
        self.store.close().await;
        Ok(())
    }
}
