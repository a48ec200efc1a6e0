//! What operators rely on: rebuilding the rollups, append-only events, and
//! migrations that are a no-op once applied.

use audit_service::domain::OrgScope;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::summary::{generate, ranges, scopes, seed};
use crate::support::{DAY, TestStore, append_all, assert_exact, now_ns, org_scope, query, sorted};

pub async fn rebuild_gives_the_same_rollups_and_repairs_corrupted_ones(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let start = now_ns() - 10 * DAY;
    let events = generate(&mut rng, 1500, start, 12 * DAY);
    append_all(&s.store, &events).await;
    let incremental = s.rollup_rows().await;
    s.store.rebuild_rollups().await.expect("rebuild");
    assert_eq!(s.rollup_rows().await, incremental, "{:?}: rebuilt rollups equal incremental ones", s.backend);

    s.execute("UPDATE audit_rollups SET event_count = event_count + 3, failure_count = failure_count + 1")
        .await
        .expect("corrupt the rollups");
    let wide = (start.div_euclid(DAY) * DAY - DAY, start + 14 * DAY);
    for scope in [OrgScope::All, org_scope("org_a")] {
        let q = query(&scope, wide.0, wide.1);
        let summary = sorted(s.store.summarize(&q).await.unwrap());
        let raw = sorted(s.naive.summarize(&q).await.unwrap());
        assert_ne!(summary, raw, "{:?}: corrupted rollups show in the summary", s.backend);
    }

    s.store.rebuild_rollups().await.expect("rebuild");
    assert_eq!(s.rollup_rows().await, incremental, "{:?}: the rebuild repaired every row", s.backend);
    for (from, to) in ranges(&mut rng, &events, 20) {
        for scope in scopes() {
            assert_exact(s, &events, &scope, from, to).await;
        }
    }
}

pub async fn events_refuse_update_and_delete(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let start = now_ns() - DAY;
    let events = generate(&mut rng, 3, start, DAY);
    append_all(&s.store, &events).await;
    for sql in [
        "UPDATE audit_events SET action = 'user.deleted'",
        "UPDATE audit_events SET failed = failed WHERE id = 'e0'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE id = 'e1'",
        "UPDATE audit_events SET log_index = log_index + 100",
    ] {
        let error = s.execute(sql).await.expect_err(sql);
        assert!(error.to_string().contains("append-only"), "{:?}: {sql}: {error}", s.backend);
    }
    assert_eq!(s.scalar("SELECT COUNT(*) FROM audit_events").await, 3);
    // A log counter only moves forward: a log index is never given twice.
    let counters = s.scalar("SELECT CAST(SUM(next_index) AS BIGINT) FROM audit_logs").await;
    assert_eq!(counters, 3, "{:?}: one index per event", s.backend);
    for sql in ["UPDATE audit_logs SET next_index = next_index - 1", "DELETE FROM audit_logs"] {
        let error = s.execute(sql).await.expect_err(sql);
        assert!(
            error.to_string().contains("only moves forward") || error.to_string().contains("append-only"),
            "{:?}: {sql}: {error}",
            s.backend
        );
    }
    s.execute("UPDATE audit_logs SET next_index = next_index + 1")
        .await
        .expect("moving forward leaves a gap, never a repeat");
    for scope in scopes() {
        assert_exact(s, &events, &scope, start, start + DAY).await;
    }
}

pub async fn opening_again_migrates_nothing(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let start = now_ns() - DAY;
    let events = generate(&mut rng, 20, start, DAY);
    append_all(&s.store, &events).await;
    let migrations = s.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await;
    let installed = s.scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").await;
    assert_eq!(migrations, installed);
    assert!(migrations >= 2, "{:?}: migrations recorded", s.backend);

    // A second store on the same database, while the first is open, as a second replica.
    let again = s.reopen().await.expect("opening an up-to-date database");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, migrations);
    for scope in scopes() {
        let q = query(&scope, start, start + DAY);
        assert_eq!(sorted(again.summarize(&q).await.unwrap()), sorted(s.store.summarize(&q).await.unwrap()));
    }
    again.close().await;
    for (from, to) in ranges(&mut rng, &events, 5) {
        assert_exact(s, &events, &OrgScope::All, from, to).await;
    }
}
