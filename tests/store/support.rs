//! Harness of the conformance suite: a fresh store of each backend, direct SQL
//! beside it, and events with their expected counts computed in memory.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use audit_service::domain::{ActionCount, EventBatch, OrgId, OrgScope, SummaryQuery, TimeRange};
use audit_service::proto::audit as pb;
use audit_service::store::{self, DynStore, StoreSettings};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

use crate::naive_summary::NaiveSummary;
use crate::pg::PgDatabase;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * NANOS_PER_SECOND;
pub const HOUR: i64 = 3600 * NANOS_PER_SECOND;
pub const DAY: i64 = 86_400 * NANOS_PER_SECOND;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store on a fresh database of its own, with what it takes to reach that
/// database directly and to open it again.
pub struct TestStore {
    pub backend: Backend,
    pub store: DynStore,
    /// The reference count, beside the store.
    pub naive: NaiveSummary,
    pub url: String,
    sqlite_path: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgDatabase>,
}

/// Runs one conformance case on a fresh store of `backend`.
pub async fn run(backend: Backend, case: impl AsyncFnOnce(&TestStore)) {
    let store = TestStore::open(backend).await;
    case(&store).await;
    store.close().await;
}

impl TestStore {
    pub async fn open(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("audit.db");
                let url = format!("sqlite://{}", path.display());
                let store = store::open(&url, &StoreSettings::default()).await.expect("sqlite store opens");
                let naive = NaiveSummary::connect(&url).await.expect("sqlite reference connects");
                Self { backend, store, naive, url, sqlite_path: Some(path), _dir: Some(dir), pg: None }
            }
            Backend::Postgres => {
                let pg = PgDatabase::create().await;
                let url = pg.url.clone();
                let store = store::open(&url, &StoreSettings::default()).await.expect("postgres store opens");
                let naive = NaiveSummary::connect(&url).await.expect("postgres reference connects");
                Self { backend, store, naive, url, sqlite_path: None, _dir: None, pg: Some(pg) }
            }
        }
    }

    /// Opens the same database again, as a second replica would.
    pub async fn reopen(&self) -> anyhow::Result<DynStore> {
        store::open(&self.url, &StoreSettings::default()).await
    }

    /// Runs SQL (one or more statements) on a connection of its own, beside the store.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path.as_ref().expect("sqlite path");
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await?;
                let done = conn.execute(sql).await.map(|r| r.rows_affected());
                conn.close().await?;
                done
            }
            Backend::Postgres => {
                let mut conn = self.pg.as_ref().expect("postgres database").connect().await;
                let done = conn.execute(sql).await.map(|r| r.rows_affected());
                conn.close().await?;
                done
            }
        }
    }

    /// One integer a query answers (counts, mostly), read directly.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path.as_ref().expect("sqlite path");
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = self.pg.as_ref().expect("postgres database").connect().await;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Every rollup row, ordered by key.
    pub async fn rollup_rows(&self) -> Vec<(String, i64, i64, String, i64, i64)> {
        const SQL: &str = "SELECT series, width_s, bucket_start_ns, action, event_count, failure_count \
                           FROM audit_rollups ORDER BY series, width_s, bucket_start_ns, action";
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path.as_ref().expect("sqlite path");
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
                sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = self.pg.as_ref().expect("postgres database").connect().await;
                sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
            }
        }
    }

    /// SQL that makes any rollup write for `action` fail, from inside the append's
    /// transaction: after its ids and events were written.
    pub fn failing_rollup_trigger_sql(&self, action: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!(
                "CREATE TRIGGER test_refuse_rollup BEFORE INSERT ON audit_rollups WHEN NEW.action = '{action}' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ),
            Backend::Postgres => format!(
                "CREATE FUNCTION test_refuse_rollup() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.action = '{action}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER test_refuse_rollup BEFORE INSERT ON audit_rollups \
                 FOR EACH ROW EXECUTE FUNCTION test_refuse_rollup();"
            ),
        }
    }

    pub fn drop_failing_rollup_trigger_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "DROP TRIGGER test_refuse_rollup",
            Backend::Postgres => "DROP TRIGGER test_refuse_rollup ON audit_rollups",
        }
    }

    pub async fn close(mut self) {
        self.naive.close().await;
        self.store.close().await;
        if let Some(pg) = self.pg.take() {
            pg.drop_now().await;
        }
    }
}

/// An event the generator made, as the test remembers it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub id: String,
    pub org: String,
    pub action: String,
    pub failed: bool,
    pub at_ns: i64,
}

impl Generated {
    pub fn to_proto(&self) -> pb::AuditEvent {
        pb::AuditEvent {
            id: self.id.clone(),
            timestamp: Some(pbjson_types::Timestamp {
                seconds: self.at_ns.div_euclid(NANOS_PER_SECOND),
                nanos: self.at_ns.rem_euclid(NANOS_PER_SECOND) as i32,
            }),
            organization_id: self.org.clone(),
            action: self.action.clone(),
            actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_4f18acec".into() }),
            target: Some(pb::Target { r#type: "session".into(), id: "ses_1".into() }),
            result: if self.failed { "failure" } else { "success" }.into(),
            ip: "2001:db8::7".into(),
            user_agent: "conformance".into(),
            details: None,
            log_index: 0,
        }
    }
}

pub fn batch(events: &[Generated]) -> EventBatch {
    let request = pb::BatchCreateEventsRequest { events: events.iter().map(Generated::to_proto).collect() };
    EventBatch::try_from(request).expect("generated events are valid")
}

/// Appends in batches of at most 1000, asserting every event is new.
pub async fn append_all(store: &DynStore, events: &[Generated]) {
    for chunk in events.chunks(1000) {
        let outcome = store.append(&batch(chunk)).await.expect("append");
        assert_eq!(outcome.created, chunk.len(), "every generated event is new");
    }
}

pub fn org_scope(org: &str) -> OrgScope {
    OrgScope::One(OrgId::parse(org).unwrap())
}

pub fn query(scope: &OrgScope, start: i64, end: i64) -> SummaryQuery {
    SummaryQuery {
        range: TimeRange::new(i128::from(start), i128::from(end)).expect("start < end"),
        scope: scope.clone(),
    }
}

/// Sorted by action, so answers compare as values.
pub fn sorted(mut counts: Vec<ActionCount>) -> Vec<ActionCount> {
    counts.sort_by(|a, b| a.action.cmp(&b.action));
    counts
}

/// The exact answer, counted from the generated events.
pub fn expected(events: &[Generated], scope: &OrgScope, start: i64, end: i64) -> Vec<ActionCount> {
    let mut by_action: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for event in events {
        let in_scope = match scope {
            OrgScope::One(org) => org.as_str() == event.org,
            OrgScope::All => true,
        };
        if in_scope && start <= event.at_ns && event.at_ns < end {
            let counts = by_action.entry(&event.action).or_default();
            counts.0 += 1;
            counts.1 += i64::from(event.failed);
        }
    }
    by_action
        .into_iter()
        .map(|(action, (count, failure_count))| ActionCount { action: action.to_owned(), count, failure_count })
        .collect()
}

/// Asserts that the store's summary, the naive count and the expected answer agree.
pub async fn assert_exact(store: &TestStore, events: &[Generated], scope: &OrgScope, start: i64, end: i64) {
    let q = query(scope, start, end);
    let want = expected(events, scope, start, end);
    let raw = sorted(store.naive.summarize(&q).await.expect("naive summary"));
    let got = sorted(store.store.summarize(&q).await.expect("summarize"));
    assert_eq!(raw, want, "{:?}: naive summary over [{start}, {end}) for {scope:?}", store.backend);
    assert_eq!(got, want, "{:?}: summarize over [{start}, {end}) for {scope:?}", store.backend);
}

/// Now, in nanoseconds: generated events straddle it, so that on PostgreSQL they
/// fall in the monthly partitions made at start and in the default partition.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}
