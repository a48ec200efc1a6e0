//! Appends: idempotent per organization, also under concurrent retries; atomic;
//! and every count lands in the rollups exactly once.

use std::collections::HashSet;

use audit_service::domain::OrgScope;
use audit_service::store::StoreError;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::summary::{ACTIONS, ORGS, generate, ranges, scopes, seed};
use crate::support::{
    Backend, DAY, Generated, HOUR, MINUTE, TestStore, append_all, assert_exact, batch, now_ns, org_scope,
};

fn event(id: &str, org: &str, action: &str, failed: bool, at_ns: i64) -> Generated {
    Generated { id: id.into(), org: org.into(), action: action.into(), failed, at_ns }
}

pub async fn retries_are_idempotent_per_organization(s: &TestStore) {
    let at = now_ns() - DAY;
    let first: Vec<Generated> =
        (0..50).map(|i| event(&format!("r{i}"), "org_a", "session.login", i % 7 == 0, at + i * MINUTE)).collect();
    let mut stored = first.clone();
    let outcome = s.store.append(&batch(&first)).await.unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (50, 0));
    let outcome = s.store.append(&batch(&first)).await.unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (0, 50), "a retry stores nothing");

    // The same id twice in one batch is one event: the first copy.
    let twice = [event("dup", "org_a", "user.created", false, at), event("dup", "org_a", "user.deleted", true, at)];
    let outcome = s.store.append(&batch(&twice)).await.unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (1, 1));
    stored.push(twice[0].clone());

    // Ids are per organization: another tenant's "r0" is another event.
    let other = event("r0", "org_b", "session.login", false, at);
    assert_eq!(s.store.append(&batch(std::slice::from_ref(&other))).await.unwrap().created, 1);
    stored.push(other);

    // The first stored version wins: a retry that changed its content is still a duplicate.
    let changed = event("r1", "org_a", "user.deleted", true, at + 5 * HOUR);
    assert_eq!(s.store.append(&batch(&[changed])).await.unwrap().duplicates, 1);

    // Old and new mixed: only the new are stored.
    let mut mixed: Vec<Generated> = first[..10].to_vec();
    let fresh: Vec<Generated> =
        (0..10).map(|i| event(&format!("n{i}"), "org_a", "session.logout", false, at + i * HOUR)).collect();
    mixed.extend(fresh.iter().cloned());
    mixed.reverse();
    let outcome = s.store.append(&batch(&mixed)).await.unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (10, 10));
    stored.extend(fresh);

    for scope in [OrgScope::All, org_scope("org_a"), org_scope("org_b")] {
        assert_exact(s, &stored, &scope, at - DAY, at + 2 * DAY).await;
        assert_exact(s, &stored, &scope, at + 1, at + 3 * HOUR + 17).await;
    }
}

/// The event every task sends for shared key `k`: identical in every batch, as a
/// retry would be.
fn shared(k: usize, base: i64) -> Generated {
    let offset = (k as i64 * 7919 * 1_000_003).rem_euclid(2 * HOUR);
    event(&format!("shared-{k}"), ORGS[k % 2], ACTIONS[k % 3], k.is_multiple_of(5), base + offset)
}

pub async fn concurrent_batches_never_double_count_or_lose_a_count(s: &TestStore) {
    const TASKS: usize = 8;
    const BATCHES: usize = 6;
    const SHARED_KEYS: usize = 300;
    let seed = seed();
    // Two hours, two organizations, three actions: every batch hits the same rollup rows.
    let base = now_ns().div_euclid(HOUR) * HOUR - HOUR;
    let mut tasks = Vec::new();
    let mut sent = 0;
    let mut picked = HashSet::new();
    let mut distinct: Vec<Generated> = Vec::new();
    for task in 0..TASKS {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(task as u64));
        let mut batches = Vec::new();
        for b in 0..BATCHES {
            let mut events = Vec::new();
            for _ in 0..75 {
                let k = rng.random_range(0..SHARED_KEYS);
                if picked.insert(k) {
                    distinct.push(shared(k, base));
                }
                events.push(shared(k, base));
            }
            for i in 0..75 {
                let own = event(
                    &format!("t{task}-b{b}-{i}"),
                    ORGS[i % 2],
                    ACTIONS[i % 3],
                    i % 4 == 0,
                    base + rng.random_range(0..2 * HOUR),
                );
                distinct.push(own.clone());
                events.push(own);
            }
            // Unsorted on purpose: the store must take its locks in its own order.
            events.shuffle(&mut rng);
            sent += events.len();
            batches.push(batch(&events));
        }
        let store = s.store.clone();
        tasks.push(tokio::spawn(async move {
            let (mut created, mut duplicates) = (0, 0);
            for batch in batches {
                let outcome = store.append(&batch).await.expect("concurrent append");
                created += outcome.created;
                duplicates += outcome.duplicates;
            }
            (created, duplicates)
        }));
    }
    let (mut created, mut duplicates) = (0, 0);
    for task in tasks {
        let (c, d) = task.await.unwrap();
        created += c;
        duplicates += d;
    }
    assert_eq!(created, distinct.len(), "{:?}: each distinct event created exactly once", s.backend);
    assert_eq!(created + duplicates, sent);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut checks = vec![(base - 1, base + 2 * HOUR + 1), (base, base + HOUR), (base + HOUR, base + 2 * HOUR)];
    checks.extend(ranges(&mut rng, &distinct, 10));
    for (from, to) in checks {
        for scope in scopes() {
            assert_exact(s, &distinct, &scope, from, to).await;
        }
    }
}

pub async fn a_failed_batch_leaves_no_trace(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let start = now_ns() - 3 * DAY;
    let stored = generate(&mut rng, 200, start, 2 * DAY);
    append_all(&s.store, &stored).await;
    let rollups_before = s.rollup_rows().await;
    let ids_table = match s.backend {
        Backend::Sqlite => "audit_events",
        Backend::Postgres => "audit_event_ids",
    };
    let ids_before = s.scalar(&format!("SELECT COUNT(*) FROM {ids_table}")).await;

    // 30 new events, the refused one in the middle, and 10 already stored: the
    // failure strikes after the ids and the events were written.
    let mut new: Vec<Generated> =
        (0..30).map(|i| event(&format!("new{i}"), "org_a", "session.login", i % 3 == 0, start + i * MINUTE)).collect();
    new[15].action = "boom.refused".into();
    let mut attempt: Vec<Generated> = stored.choose_multiple(&mut rng, 10).cloned().collect();
    attempt.extend(new.iter().cloned());
    s.execute(&s.failing_rollup_trigger_sql("boom.refused")).await.expect("install the failing trigger");
    match s.store.append(&batch(&attempt)).await {
        Err(StoreError::Other(_)) => {}
        Err(StoreError::Unavailable(error)) => panic!("{:?}: a refused batch is not an outage: {error}", s.backend),
        Ok(outcome) => panic!("{:?}: the batch should have failed, got {outcome:?}", s.backend),
    }
    assert_eq!(s.rollup_rows().await, rollups_before, "{:?}: rollups untouched", s.backend);
    assert_eq!(s.scalar(&format!("SELECT COUNT(*) FROM {ids_table}")).await, ids_before, "{:?}: no id kept", s.backend);
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM audit_events").await,
        stored.len() as i64,
        "{:?}: no event kept",
        s.backend
    );
    let span = (start - DAY, start + 3 * DAY);
    for scope in scopes() {
        assert_exact(s, &stored, &scope, span.0, span.1).await;
    }

    // Nothing of it was kept, so the same batch is new once it can succeed.
    s.execute(s.drop_failing_rollup_trigger_sql()).await.expect("drop the failing trigger");
    let outcome = s.store.append(&batch(&attempt)).await.unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (30, 10));
    let mut all = stored;
    all.extend(new);
    for scope in scopes() {
        assert_exact(s, &all, &scope, span.0, span.1).await;
        assert_exact(s, &all, &scope, start + 7, start + 29 * MINUTE + 1).await;
    }
}
