//! Each organization's log: `log_index` 0, 1, 2, … with no gap and no repeat, also
//! when batches of one organization are appended at once from several connections;
//! a duplicate never takes one, and a retry changes none.

use std::collections::{BTreeMap, HashSet};

use audit_service::domain::{EventLookup, OrgScope};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::summary::seed;
use crate::support::{Backend, Generated, HOUR, TestStore, batch, now_ns, org_scope};

const ORGS: [&str; 3] = ["org_a", "org_b", "org_c"];

fn event(id: &str, org: &str, at_ns: i64) -> Generated {
    Generated { id: id.into(), org: org.into(), action: "session.login".into(), failed: false, at_ns }
}

/// Every `(organization_id, id, log_index)` stored, read directly.
pub async fn stored_indexes(s: &TestStore) -> BTreeMap<String, Vec<(i64, String)>> {
    const SQL: &str = "SELECT organization_id, id, log_index FROM audit_events";
    let rows: Vec<(String, String, i64)> = match s.backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&s.url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&s.url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
        }
    };
    let mut by_org: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (org, id, index) in rows {
        by_org.entry(org).or_default().push((index, id));
    }
    for indexes in by_org.values_mut() {
        indexes.sort();
    }
    by_org
}

/// Asserts that each organization's indexes are exactly 0..n.
pub fn assert_gap_free(backend: Backend, by_org: &BTreeMap<String, Vec<(i64, String)>>) {
    for (org, indexes) in by_org {
        let got: Vec<i64> = indexes.iter().map(|(i, _)| *i).collect();
        let want: Vec<i64> = (0..indexes.len() as i64).collect();
        assert_eq!(got, want, "{backend:?}: the log of {org} is 0..{} without gap or repeat", indexes.len());
    }
}

pub async fn log_indexes_are_gap_free_under_concurrent_appends_of_one_organization(s: &TestStore) {
    const TASKS: usize = 8;
    const BATCHES: usize = 5;
    let seed = seed();
    let base = now_ns() - 2 * HOUR;
    // Ids shared by every task: retries racing their first copy.
    let shared: Vec<Generated> =
        (0..60).map(|k| event(&format!("shared-{k}"), ORGS[k % ORGS.len()], base + k as i64)).collect();
    let mut tasks = Vec::new();
    let mut distinct: HashSet<(String, String)> = HashSet::new();
    let mut own_batches: Vec<Vec<Generated>> = Vec::new();
    for task in 0..TASKS {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(task as u64));
        let mut batches = Vec::new();
        for b in 0..BATCHES {
            // Mostly one organization, so the batches queue on its counter.
            let own: Vec<Generated> = (0..rng.random_range(1..40))
                .map(|i| {
                    let org = if rng.random_bool(0.8) { ORGS[0] } else { ORGS[1 + i % 2] };
                    event(&format!("t{task}-b{b}-{i}"), org, base + rng.random_range(0..HOUR))
                })
                .collect();
            distinct.extend(own.iter().map(|e| (e.org.clone(), e.id.clone())));
            let mut events = own.clone();
            let retried: Vec<Generated> = shared.choose_multiple(&mut rng, 10).cloned().collect();
            distinct.extend(retried.iter().map(|e| (e.org.clone(), e.id.clone())));
            events.extend(retried);
            // An id twice in one batch: its first copy only.
            events.push(own[0].clone());
            events.shuffle(&mut rng);
            own_batches.push(events.clone());
            batches.push(batch(&events));
        }
        let store = s.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut created = 0;
            for batch in batches {
                created += store.append(&batch).await.expect("concurrent append").created;
            }
            created
        }));
    }
    let mut created = 0;
    for task in tasks {
        created += task.await.unwrap();
    }
    assert_eq!(created, distinct.len(), "{:?}: each distinct event stored once", s.backend);

    let by_org = stored_indexes(s).await;
    assert_gap_free(s.backend, &by_org);
    let total: usize = by_org.values().map(Vec::len).sum();
    assert_eq!(total, distinct.len(), "{:?}: duplicates took no index", s.backend);

    // Within a batch, an organization's indexes follow the batch's order: its events
    // that no other batch carried are stored by it, in that order.
    let index_of: BTreeMap<(String, String), i64> = by_org
        .iter()
        .flat_map(|(org, indexes)| indexes.iter().map(move |(i, id)| ((org.clone(), id.clone()), *i)))
        .collect();
    for events in &own_batches {
        for org in ORGS {
            let mut seen = HashSet::new();
            let order: Vec<i64> = events
                .iter()
                .filter(|e| e.org == org && !e.id.starts_with("shared-") && seen.insert(e.id.clone()))
                .map(|e| index_of[&(e.org.clone(), e.id.clone())])
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}: batch order within {org}: {order:?}", s.backend);
        }
    }

    // A retry of everything changes nothing: no new index, none moved.
    for events in &own_batches {
        let outcome = s.store.append(&batch(events)).await.unwrap();
        assert_eq!(outcome.created, 0);
    }
    assert_eq!(stored_indexes(s).await, by_org, "{:?}: indexes never change", s.backend);

    // What GetEvent answers is the stored index.
    for ((org, id), index) in index_of.iter().take(50) {
        let lookup = EventLookup { id: id.clone(), scope: org_scope(org) };
        let found = s.store.get_event(&lookup).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].log_index, *index as u64);
    }
    let retried = index_of.keys().find(|(_, id)| id.starts_with("shared-")).expect("some id was retried");
    let lookup = EventLookup { id: retried.1.clone(), scope: OrgScope::All };
    assert_eq!(s.store.get_event(&lookup).await.unwrap().len(), 1, "{:?}: stored once", s.backend);
}
