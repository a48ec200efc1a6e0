//! The log-index migration on a database that already holds events: they get their
//! indexes in the order they were stored, listings and GetEvent see them, and the
//! appends after it continue each organization's log.

use audit_service::domain::{EventLookup, OrgScope};
use audit_service::store::{self, DynStore, ListQuery, StoreSettings};
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::pg::PgDatabase;
use crate::support::{Generated, HOUR, batch, now_ns, org_scope};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
/// The last migration before log indexes, per database.
const SQLITE_BEFORE: i64 = 20261127000002;
const POSTGRES_BEFORE: i64 = 20261201000001;

/// `(organization, id, occurred_at, received_at)` in the order they were stored:
/// received together (one batch) or not, in time order or not.
fn stored_before(base: i64) -> Vec<(&'static str, String, i64, i64)> {
    let mut rows = Vec::new();
    for i in 0..12 {
        let org = ["org_a", "org_b", "org_a"][i % 3];
        // Batches of three share a receive time; within one, time then id orders them.
        let received = base + (i / 3) as i64 * HOUR;
        let occurred = base - 10 * HOUR + (i % 3) as i64 * 1000 + (i / 3) as i64;
        rows.push((org, format!("old{i:02}"), occurred, received));
    }
    rows
}

fn insert_sql(rows: &[(&str, String, i64, i64)], bool_false: &str) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|(org, id, at, received)| {
            format!(
                "('{org}', '{id}', {at}, 'session.login', {bool_false}, 'identity', 'usr_1', 'session', 'ses_1', \
                 '192.0.2.1', 'ua', '{{\"k\": 1}}', {received})"
            )
        })
        .collect();
    format!("INSERT INTO audit_events VALUES {}", values.join(", "))
}

pub async fn sqlite_migration_numbers_the_events_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    SQLITE.run_to(SQLITE_BEFORE, &mut conn).await.unwrap();
    let rows = stored_before(now_ns());
    conn.execute(AssertSqlSafe(insert_sql(&rows, "0"))).await.unwrap();
    conn.close().await.unwrap();
    let store = store::open(&url, &StoreSettings::default()).await.expect("migrates");
    check_migrated(&store, &rows).await;
    store.close().await;
}

pub async fn postgres_migration_numbers_the_events_stored_before_it() {
    let db = PgDatabase::create().await;
    let mut conn = db.connect().await;
    POSTGRES.run_to(POSTGRES_BEFORE, &mut conn).await.unwrap();
    let mut rows = stored_before(now_ns());
    // The insert order differs from the stored order: PostgreSQL has no insertion
    // order to keep, the receive time, time and id define it.
    rows.reverse();
    conn.execute(AssertSqlSafe(insert_sql(&rows, "false"))).await.unwrap();
    let ids: Vec<String> = rows.iter().map(|(org, id, _, _)| format!("('{org}', '{id}')")).collect();
    // And an id whose event retention already dropped: it keeps no index.
    conn.execute(AssertSqlSafe(format!("INSERT INTO audit_event_ids VALUES {}, ('org_a', 'purged')", ids.join(", "))))
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.reverse();
    let store = store::open(&db.url, &StoreSettings::default()).await.expect("migrates");
    check_migrated(&store, &rows).await;
    let mut conn = db.connect().await;
    let (nulls, counter): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM audit_event_ids WHERE log_index IS NULL), \
                (SELECT next_index FROM audit_logs WHERE organization_id = 'org_a')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((nulls, counter), (1, 9), "the purged id has no index; org_a had 8 events and one appended");
    assert!(
        conn.execute("UPDATE audit_events SET log_index = 0").await.unwrap_err().to_string().contains("append-only"),
        "the append-only trigger is back"
    );
    conn.close().await.ok();
    store.close().await;
    db.drop_now().await;
}

/// Each organization's events are numbered in their stored order; a listing and
/// GetEvent show them; the next append continues the log.
async fn check_migrated(store: &DynStore, rows: &[(&str, String, i64, i64)]) {
    for org in ["org_a", "org_b"] {
        let ids: Vec<&str> = rows.iter().filter(|r| r.0 == org).map(|r| r.1.as_str()).collect();
        for (index, id) in ids.iter().enumerate() {
            let found = store.get_event(&EventLookup { id: (*id).to_owned(), scope: org_scope(org) }).await.unwrap();
            assert_eq!(found.len(), 1, "{org}/{id}");
            assert_eq!(found[0].log_index, index as u64, "{org}/{id} in stored order");
            assert_eq!(found[0].event.details_json.as_deref(), Some("{\"k\": 1}"));
        }
    }
    let page = store
        .list_events(&ListQuery { scope: OrgScope::All, filter: None, snapshot: None, after: None, limit: 500 })
        .await
        .unwrap();
    assert_eq!(page.events.len(), rows.len(), "a listing sees the events stored before the migration");
    let new =
        Generated { id: "new".into(), org: "org_a".into(), action: "user.created".into(), failed: true, at_ns: 1 };
    assert_eq!(store.append(&batch(&[new])).await.unwrap().created, 1);
    let found = store.get_event(&EventLookup { id: "new".into(), scope: org_scope("org_a") }).await.unwrap();
    assert_eq!(found[0].log_index, 8, "org_a's log continues after its 8 events");
}
