//! What only the PostgreSQL schema has: the migration lock, monthly partitions
//! and their default, retention, and the privileges of a least-privileged role.

use audit_service::domain::OrgScope;
use audit_service::store::{self, StoreSettings};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::naive_summary::NaiveSummary;
use crate::pg::PgDatabase;
use crate::support::{DAY, Generated, batch, expected, now_ns, org_scope, query, sorted};

const MONTH_2020_01: i64 = 1_577_836_800_000_000_000;
const MONTH_2020_02: i64 = 1_580_515_200_000_000_000;
const MONTH_2020_03: i64 = 1_583_020_800_000_000_000;

fn event(id: &str, org: &str, at_ns: i64) -> Generated {
    Generated { id: id.into(), org: org.into(), action: "session.login".into(), failed: false, at_ns }
}

async fn partition_of(conn: &mut PgConnection, id: &str) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM audit_events WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn refused(conn: &mut PgConnection, sql: &str) -> String {
    conn.execute(AssertSqlSafe(sql.to_owned())).await.expect_err(sql).to_string()
}

pub async fn concurrent_opens_of_a_fresh_database_all_succeed() {
    let db = PgDatabase::create().await;
    // Joined on one task rather than spawned (the migrator's future is not `Send`
    // for every lifetime): the six still connect and race for the lock at once.
    let settings = StoreSettings::default();
    let opens = (0..6).map(|_| store::open(&db.url, &settings));
    let mut stores = Vec::new();
    for opened in futures_util::future::join_all(opens).await {
        stores.push(opened.expect("every concurrent open succeeds"));
    }
    let mut conn = db.connect().await;
    let (applied, succeeded): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE success) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((applied, succeeded), (5, 5), "each migration applied once");
    let partitions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(partitions >= 5, "this month, three ahead and the default: {partitions}");
    conn.close().await.ok();
    for store in stores {
        store.close().await;
    }
    db.drop_now().await;
}

pub async fn ids_partitions_and_truncate_are_refused_too() {
    let db = PgDatabase::create().await;
    let store = store::open(&db.url, &StoreSettings::default()).await.unwrap();
    store.append(&batch(&[event("e1", "org_a", now_ns())])).await.unwrap();
    let mut conn = db.connect().await;
    let this_month = partition_of(&mut conn, "e1").await;
    assert!(this_month.starts_with("audit_events_p"), "{this_month}");
    for sql in [
        "UPDATE audit_event_ids SET id = 'e2'".to_owned(),
        "DELETE FROM audit_event_ids".to_owned(),
        "TRUNCATE audit_event_ids".to_owned(),
        "TRUNCATE audit_events".to_owned(),
        "TRUNCATE audit_events_default".to_owned(),
        format!("TRUNCATE {this_month}"),
        format!("DELETE FROM {this_month}"),
    ] {
        assert!(refused(&mut conn, &sql).await.contains("append-only"), "{sql}");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event_ids").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 1);
    conn.close().await.ok();
    store.close().await;
    db.drop_now().await;
}

pub async fn the_default_partition_catches_what_no_month_holds_and_splits_into_months() {
    let db = PgDatabase::create().await;
    let store = store::open(&db.url, &StoreSettings::default()).await.unwrap();
    let now = now_ns();
    let events = vec![
        event("now", "org_a", now),
        event("past", "org_a", now - 70 * DAY),
        event("ahead", "org_b", now + 160 * DAY),
        event("far", "org_b", 7_258_118_400_000_000_000 - 1),
        event("2020", "org_a", MONTH_2020_02 - 1),
    ];
    assert_eq!(store.append(&batch(&events)).await.unwrap().created, events.len());
    let mut conn = db.connect().await;
    assert!(partition_of(&mut conn, "now").await.starts_with("audit_events_p"));
    for id in ["past", "ahead", "far", "2020"] {
        assert_eq!(partition_of(&mut conn, id).await, "audit_events_default", "{id}");
    }
    // Ensuring further ahead creates every month, the one the default partition
    // holds an event of too, which moves into it.
    let created: i32 = sqlx::query_scalar("SELECT audit_ensure_partitions(7)").fetch_one(&mut conn).await.unwrap();
    assert!((4..=5).contains(&created), "months 4..7 ahead: {created}");
    assert!(partition_of(&mut conn, "ahead").await.starts_with("audit_events_p"));
    let again: i32 = sqlx::query_scalar("SELECT audit_ensure_partitions(7)").fetch_one(&mut conn).await.unwrap();
    assert_eq!(again, 0, "idempotent");

    let moved: i64 = sqlx::query_scalar("SELECT audit_split_default_partition()").fetch_one(&mut conn).await.unwrap();
    assert_eq!(moved, 3);
    assert_eq!(partition_of(&mut conn, "2020").await, "audit_events_p202001", "a nanosecond before February");
    assert_eq!(partition_of(&mut conn, "far").await, "audit_events_p219912");
    for id in ["past", "ahead"] {
        assert!(partition_of(&mut conn, id).await.starts_with("audit_events_p"), "{id}");
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events_default").fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, 0);
    // The split partitions are append-only like the others.
    assert!(refused(&mut conn, "DELETE FROM audit_events_p219912").await.contains("append-only"));
    assert!(refused(&mut conn, "TRUNCATE audit_events_default").await.contains("append-only"));
    let naive = NaiveSummary::connect(&db.url).await.unwrap();
    for scope in [OrgScope::All, org_scope("org_a"), org_scope("org_b")] {
        let q = query(&scope, 0, i64::MAX);
        let want = expected(&events, &scope, 0, i64::MAX);
        assert_eq!(sorted(store.summarize(&q).await.unwrap()), want);
        assert_eq!(sorted(naive.summarize(&q).await.unwrap()), want);
    }
    naive.close().await;
    conn.close().await.ok();
    store.close().await;
    db.drop_now().await;
}

/// The start of the UTC month `months` ahead of this one, plus `days`, in nanoseconds.
async fn month_ahead(conn: &mut PgConnection, months: i32, days: i32) -> i64 {
    sqlx::query_scalar(
        "SELECT (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') \
                 + make_interval(months => $1, days => $2)) * 1000000000)::bigint",
    )
    .bind(months)
    .bind(days)
    .fetch_one(conn)
    .await
    .unwrap()
}

type RollupRow = (String, i64, i64, String, i64, i64);

/// What a partition move must leave as it was: the stored rows and ids, and the rollups.
async fn counts_and_rollups(conn: &mut PgConnection) -> (i64, i64, Vec<RollupRow>) {
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut *conn).await.unwrap();
    let ids: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event_ids").fetch_one(&mut *conn).await.unwrap();
    let rollups = sqlx::query_as(
        "SELECT series, width_s, bucket_start_ns, action, event_count, failure_count FROM audit_rollups \
         ORDER BY series, width_s, bucket_start_ns, action",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (events, ids, rollups)
}

pub async fn a_month_whose_events_wait_in_the_default_partition_still_gets_its_partition() {
    let db = PgDatabase::create().await;
    let store = store::open(&db.url, &StoreSettings::default()).await.unwrap();
    let mut conn = db.connect().await;
    let squatted = month_ahead(&mut conn, 5, 0).await;
    let next = month_ahead(&mut conn, 6, 0).await;
    let far = 7_258_118_400_000_000_000 - 1;
    // Through the store, not the service: an operator whose clock ran ahead, or a
    // writer of a release without the future bound, can put such events there.
    let mut events = vec![
        event("now", "org_a", now_ns()),
        event("squat", "org_b", squatted),
        event("squat-end", "org_a", next - 1),
        event("next", "org_b", next),
        event("far", "org_a", far),
    ];
    events[2].failed = true;
    events[2].action = "user.deleted".into();
    store.append(&batch(&events)).await.unwrap();
    for id in ["squat", "squat-end", "next", "far"] {
        assert_eq!(partition_of(&mut conn, id).await, "audit_events_default", "{id}");
    }
    let before = counts_and_rollups(&mut conn).await;
    assert_eq!((before.0, before.1), (5, 5));

    // The upkeep the service and the scheduled job run: months 4 and 5 ahead.
    let created: i32 = sqlx::query_scalar("SELECT audit_ensure_partitions(5)").fetch_one(&mut conn).await.unwrap();
    assert!((2..=3).contains(&created), "months 4 and 5 ahead: {created}");
    let month = partition_of(&mut conn, "squat").await;
    assert!(month.starts_with("audit_events_p"), "{month}");
    assert_eq!(partition_of(&mut conn, "squat-end").await, month, "the month's last nanosecond moves too");
    assert_eq!(partition_of(&mut conn, "next").await, "audit_events_default", "the month after stays");
    // Any month, however far: the one before 2200 through the function ensure uses.
    let far_created: bool =
        sqlx::query_scalar("SELECT audit_create_month_partition('2199-12-01')").fetch_one(&mut conn).await.unwrap();
    assert!(far_created);
    assert_eq!(partition_of(&mut conn, "far").await, "audit_events_p219912");

    assert_eq!(counts_and_rollups(&mut conn).await, before, "no event lost or doubled, rollups untouched");
    let naive = NaiveSummary::connect(&db.url).await.unwrap();
    for scope in [OrgScope::All, org_scope("org_a"), org_scope("org_b")] {
        let q = query(&scope, 0, i64::MAX);
        let want = expected(&events, &scope, 0, i64::MAX);
        assert_eq!(sorted(store.summarize(&q).await.unwrap()), want, "{scope:?}");
        assert_eq!(sorted(naive.summarize(&q).await.unwrap()), want, "{scope:?}");
        let q = query(&scope, squatted, next);
        assert_eq!(sorted(store.summarize(&q).await.unwrap()), expected(&events, &scope, squatted, next));
    }
    naive.close().await;

    // The triggers the move stepped around are in force again, on every table.
    for sql in [
        format!("DELETE FROM {month}"),
        format!("UPDATE {month} SET action = 'user.created'"),
        format!("TRUNCATE {month}"),
        "DELETE FROM audit_events_default".to_owned(),
        "UPDATE audit_events_default SET action = 'user.created'".to_owned(),
        "DELETE FROM audit_events".to_owned(),
        "UPDATE audit_events SET action = 'user.created'".to_owned(),
    ] {
        assert!(refused(&mut conn, &sql).await.contains("append-only"), "{sql}");
    }
    let disabled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_trigger WHERE tgname LIKE 'audit_%' AND NOT tgisinternal AND tgenabled <> 'O'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(disabled, 0);

    // A month with nothing waiting is created as before, and the next run finds it.
    let created: i32 = sqlx::query_scalar("SELECT audit_ensure_partitions(6)").fetch_one(&mut conn).await.unwrap();
    assert_eq!(created, 1);
    assert_ne!(partition_of(&mut conn, "next").await, "audit_events_default");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events_default").fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(counts_and_rollups(&mut conn).await, before);
    conn.close().await.ok();
    store.close().await;
    db.drop_now().await;
}

pub async fn retention_drops_whole_months_with_their_rollups() {
    let db = PgDatabase::create().await;
    let store = store::open(&db.url, &StoreSettings::default()).await.unwrap();
    let events = vec![
        event("jan", "org_a", MONTH_2020_01 + 15 * DAY),
        event("jan-last", "org_a", MONTH_2020_02 - 1),
        event("feb", "org_a", MONTH_2020_02),
        event("feb-2", "org_b", MONTH_2020_02 + 3 * DAY),
    ];
    store.append(&batch(&events)).await.unwrap();
    let mut conn = db.connect().await;
    sqlx::query("SELECT audit_split_default_partition()").execute(&mut conn).await.unwrap();

    let cutoff = MONTH_2020_02 + DAY; // February has not ended: only January goes.
    let dropped: Vec<String> =
        sqlx::query_scalar("SELECT audit_drop_partitions_before($1)").bind(cutoff).fetch_all(&mut conn).await.unwrap();
    assert_eq!(dropped, ["audit_events_p202001"]);
    let january_rollups: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_rollups WHERE bucket_start_ns >= $1 AND bucket_start_ns < $2")
            .bind(MONTH_2020_01)
            .bind(MONTH_2020_02)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(january_rollups, 0);
    let kept = &events[2..];
    let naive = NaiveSummary::connect(&db.url).await.unwrap();
    for scope in [OrgScope::All, org_scope("org_a"), org_scope("org_b")] {
        for (from, to) in
            [(MONTH_2020_01, MONTH_2020_02), (MONTH_2020_01, MONTH_2020_03), (MONTH_2020_01 + 7, MONTH_2020_03 - 7)]
        {
            let q = query(&scope, from, to);
            let want = expected(kept, &scope, from, to);
            assert_eq!(sorted(store.summarize(&q).await.unwrap()), want, "{scope:?} [{from}, {to})");
            assert_eq!(sorted(naive.summarize(&q).await.unwrap()), want, "{scope:?} [{from}, {to})");
        }
    }
    naive.close().await;
    conn.close().await.ok();
    store.close().await;
    db.drop_now().await;
}

/// A login role of its own, dropped at the end (after the database, which holds its grants).
struct Role {
    name: String,
    admin_url: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = admin.execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}"))).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub async fn a_least_privileged_service_role_serves_and_cannot_rewrite_history() {
    let admin_url = crate::pg::admin_url();
    let role = Role { name: format!("audit_t_svc_{:08x}", rand::random::<u32>()), admin_url };
    let db = PgDatabase::create().await;
    // The owner migrates (here: the admin role), then grants as docs/postgresql.md says.
    store::open(&db.url, &StoreSettings::default()).await.unwrap().close().await;
    let mut owner = db.connect().await;
    let r = &role.name;
    owner
        .execute(AssertSqlSafe(format!(
            "CREATE ROLE {r} LOGIN; \
             GRANT USAGE ON SCHEMA public TO {r}; \
             GRANT SELECT, INSERT ON audit_events, audit_event_ids TO {r}; \
             GRANT SELECT, INSERT, UPDATE ON audit_rollups, audit_logs TO {r}; \
             GRANT SELECT ON _sqlx_migrations TO {r}; \
             GRANT EXECUTE ON FUNCTION audit_ensure_partitions(integer) TO {r};"
        )))
        .await
        .unwrap();

    let store = store::open(&db.url_as(r), &StoreSettings::default()).await.expect("the service role starts");
    let ahead = month_ahead(&mut owner, 5, 1).await;
    let events =
        [event("p1", "org_a", now_ns()), event("p2", "org_a", now_ns() - 90 * DAY), event("p3", "org_b", ahead)];
    assert_eq!(store.append(&batch(&events)).await.unwrap().created, 3);
    assert_eq!(store.append(&batch(&events)).await.unwrap().duplicates, 3);
    let q = query(&OrgScope::All, 0, i64::MAX);
    assert_eq!(sorted(store.summarize(&q).await.unwrap()), expected(&events, &OrgScope::All, 0, i64::MAX));
    assert!(store.rebuild_rollups().await.is_err(), "rebuilding is the owner's job");
    store.close().await;

    let mut service = PgConnection::connect(&db.url_as(r)).await.unwrap();
    // The service's own upkeep moves what waits in the default partition: the
    // function does it as the owner, which the service role is not.
    let created: i32 = sqlx::query_scalar("SELECT audit_ensure_partitions(5)").fetch_one(&mut service).await.unwrap();
    assert!((2..=3).contains(&created), "months 4 and 5 ahead: {created}");
    assert_ne!(partition_of(&mut owner, "p3").await, "audit_events_default");
    for sql in [
        "ALTER TABLE audit_events_default DISABLE TRIGGER audit_events_append_only",
        "SELECT audit_create_month_partition('2199-12-01')",
        "UPDATE audit_events SET action = 'user.deleted'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_event_ids",
        "TRUNCATE audit_events",
        "DELETE FROM audit_rollups",
        "DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "SELECT audit_drop_partitions_before(9223372036854775807)",
        "SELECT audit_split_default_partition()",
    ] {
        let error = refused(&mut service, sql).await;
        assert!(error.contains("permission denied") || error.contains("must be owner"), "{sql}: {error}");
    }
    service.close().await.ok();
    owner.execute(AssertSqlSafe(format!("DROP OWNED BY {r}"))).await.unwrap();
    owner.close().await.ok();
    db.drop_now().await;
    drop(role);
}

pub async fn the_statement_timeout_ends_waits_as_unavailable_except_for_a_rebuild() {
    let db = PgDatabase::create().await;
    let settings =
        StoreSettings { statement_timeout: std::time::Duration::from_millis(300), ..StoreSettings::default() };
    let store = store::open(&db.url, &settings).await.unwrap();
    let events = [event("t1", "org_a", now_ns())];
    store.append(&batch(&events)).await.unwrap();

    // A summary with whole buckets reads the rollups; held locked, it waits past the timeout.
    let mut holder = db.connect().await;
    holder.execute("BEGIN; LOCK TABLE audit_rollups IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let q = query(&OrgScope::All, 0, i64::MAX);
    match store.summarize(&q).await {
        Err(audit_service::store::StoreError::Unavailable(error)) => {
            assert!(error.to_string().contains("57014") || error.to_string().contains("statement timeout"), "{error}")
        }
        other => panic!("expected the statement timeout, got {other:?}"),
    }
    holder.execute("ROLLBACK").await.unwrap();

    // A rebuild reads every event and may take long: it waits out a lock longer than the timeout.
    holder.execute("BEGIN; LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let mut watcher = db.connect().await;
    let release = tokio::spawn(async move {
        // Released once the rebuild has waited on the lock for twice the statement
        // timeout, as the server measures it: a fixed sleep could end before the
        // rebuild even started waiting on a slow machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let waited_long = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
            AND wait_event_type = 'Lock' AND clock_timestamp() - query_start > interval '600 milliseconds')";
        while !sqlx::query_scalar::<_, bool>(waited_long).fetch_one(&mut watcher).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "the rebuild never waited on the lock");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        watcher.close().await.ok();
        holder.execute("COMMIT").await.unwrap();
        holder.close().await.ok();
    });
    store.rebuild_rollups().await.expect("the rebuild is not cut short by the statement timeout");
    release.await.unwrap();
    assert_eq!(sorted(store.summarize(&q).await.unwrap()), expected(&events, &OrgScope::All, 0, i64::MAX));
    store.close().await;
    db.drop_now().await;
}
