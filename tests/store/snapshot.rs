//! A listing is a snapshot: paging to the end while events keep arriving (before,
//! between and after the pages' events in time, in listed organizations and new
//! ones) yields every event that existed at the first page exactly once, and none
//! stored after it, platform-wide too.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use audit_service::domain::{EventBatch, OrgScope, StoredEvent};
use audit_service::proto::audit as pb;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::filter::event;
use crate::listing::{append_in_order, first_page, list_all, next_query};
use crate::summary::seed;
use crate::support::{Backend, TestStore, org_scope};

const ORGS: [&str; 3] = ["org_a", "org_b", "org_c"];

fn batch_of(rng: &mut StdRng, orgs: &[&str], tag: &str, n: usize) -> EventBatch {
    let events = (0..n)
        .map(|i| {
            let org = *orgs.choose(rng).unwrap();
            pb::AuditEvent { id: format!("{tag}-{i}"), ..event(rng, org, i) }
        })
        .collect();
    EventBatch::try_from(pb::BatchCreateEventsRequest { events }).expect("valid events")
}

fn in_scope(scope: &OrgScope, event: &StoredEvent) -> bool {
    in_scope_org(scope, event.event.organization_id.as_str())
}

/// `(organization, id)` of the events of a batch.
type Keys = Vec<(String, String)>;

fn keys_of(batch: &EventBatch) -> Keys {
    batch.events().iter().map(|e| (e.organization_id.as_str().to_owned(), e.id.clone())).collect()
}

pub async fn paging_under_concurrent_ingest_lists_the_first_pages_snapshot_exactly(s: &TestStore) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stored = Vec::new();
    let initial: Vec<EventBatch> = (0..3).map(|b| batch_of(&mut rng, &ORGS[..2], &format!("init{b}"), 40)).collect();
    append_in_order(&s.store, &initial, &mut stored).await;

    // A writer that keeps appending, to the listed organizations and another, and
    // notes for each batch the epochs at which its append began and ended. Round r
    // asks for its first page in epoch 2r + 1 and has it from epoch 2r + 2 on.
    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let appended: Arc<Mutex<Vec<(Keys, u64, u64)>>> = Arc::default();
    let writer = {
        let (store, stop, epoch, appended) = (s.store.clone(), stop.clone(), epoch.clone(), appended.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ 1);
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let batch = batch_of(&mut rng, &ORGS, &format!("bg{n}"), 5);
                let began = epoch.load(Ordering::SeqCst);
                store.append(&batch).await.expect("background append");
                appended.lock().unwrap().push((keys_of(&batch), began, epoch.load(Ordering::SeqCst)));
                n += 1;
                tokio::task::yield_now().await;
            }
        })
    };

    // Appended between the pages of earlier rounds: before this round's first page.
    let mut earlier: Keys = Vec::new();
    for (round, scope) in [OrgScope::All, org_scope("org_a"), OrgScope::All, org_scope("org_b")].into_iter().enumerate()
    {
        let limit = [2, 3, 7, 10][round];
        let mut query = first_page(scope.clone(), None, limit);
        epoch.store(2 * round as u64 + 1, Ordering::SeqCst);
        let mut got = Vec::new();
        let mut between: Keys = Vec::new();
        for page_number in 0.. {
            let page = s.store.list_events(&query).await.expect("list_events");
            epoch.store(2 * round as u64 + 2, Ordering::SeqCst);
            got.extend(page.events.iter().cloned());
            if !page.more {
                break;
            }
            // Between pages, for certain, besides the writer: events at the same
            // instants as the listed ones, so they would land on every page.
            let batch = batch_of(&mut rng, &ORGS, &format!("r{round}p{page_number}"), 3);
            s.store.append(&batch).await.expect("append between pages");
            between.extend(keys_of(&batch));
            query = next_query(&query, &page);
        }
        let context = format!("{:?}: {scope:?} by {limit}", s.backend);
        let keys: Vec<(String, String)> =
            got.iter().map(|e| (e.event.organization_id.as_str().to_owned(), e.event.id.clone())).collect();
        let listed: HashSet<&(String, String)> = keys.iter().collect();
        assert_eq!(listed.len(), keys.len(), "{context}: each event once");
        let order: Vec<_> =
            got.iter().map(|e| (e.event.timestamp, e.event.organization_id.clone(), e.log_index)).collect();
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{context}: in listing order");
        assert!(got.iter().all(|e| in_scope(&scope, e)), "{context}: in scope");
        let present = |key: &(String, String)| listed.contains(key);
        for event in stored.iter().filter(|e| in_scope(&scope, e)) {
            let key = (event.event.organization_id.as_str().to_owned(), event.event.id.clone());
            assert!(present(&key), "{context}: {key:?}, stored before the listing, is in it");
        }
        assert!(!between.iter().any(present), "{context}: nothing stored between pages is in it");
        for key in earlier.iter().filter(|(org, _)| in_scope_org(&scope, org)) {
            assert!(present(key), "{context}: {key:?}, stored in an earlier round, is in it");
        }
        earlier.extend(between);
        let first_asked = 2 * round as u64 + 1;
        for (batch, began, ended) in appended.lock().unwrap().iter() {
            for key in batch.iter().filter(|(org, _)| in_scope_org(&scope, org)) {
                if *ended < first_asked {
                    assert!(present(key), "{context}: {key:?}, stored before the first page, is in it");
                } else if *began > first_asked {
                    assert!(!present(key), "{context}: {key:?}, stored after the first page, is not");
                }
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();

    // A new listing sees everything stored since.
    let everything = list_all(&s.store, first_page(OrgScope::All, None, 500)).await;
    let count = s.scalar("SELECT COUNT(*) FROM audit_events").await;
    assert_eq!(everything.len() as i64, count, "{:?}", s.backend);

    if s.backend == Backend::Postgres {
        an_append_in_flight_at_the_first_page_stays_out(s, &mut rng).await;
    }
}

fn in_scope_org(scope: &OrgScope, org: &str) -> bool {
    match scope {
        OrgScope::One(one) => one.as_str() == org,
        OrgScope::All => true,
    }
}

/// An append that has written its events but not committed when the first page is
/// read commits during the listing: its events are not in it, though their
/// transaction is older than the snapshot's newest.
async fn an_append_in_flight_at_the_first_page_stays_out(s: &TestStore, rng: &mut StdRng) {
    use sqlx::{Connection, Executor};
    let before = list_all(&s.store, first_page(OrgScope::All, None, 500)).await;
    let mut holder = sqlx::PgConnection::connect(&s.url).await.unwrap();
    holder.execute("BEGIN; LOCK TABLE audit_rollups IN EXCLUSIVE MODE").await.unwrap();
    let in_flight = batch_of(rng, &ORGS, "in-flight", 4);
    let append = {
        let store = s.store.clone();
        tokio::spawn(async move { store.append(&in_flight).await })
    };
    // Until the append waits on the rollups: its events are written by then.
    let mut watcher = sqlx::PgConnection::connect(&s.url).await.unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE relation = 'audit_rollups'::regclass AND NOT granted",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let query = first_page(OrgScope::All, None, 2);
    let page = s.store.list_events(&query).await.unwrap();
    holder.execute("COMMIT").await.unwrap();
    assert_eq!(append.await.unwrap().unwrap().created, 4);
    let mut got = page.events.clone();
    got.extend(list_all(&s.store, next_query(&query, &page)).await);
    assert_eq!(got, before, "the in-flight append is outside the listing that began before its commit");
    let after = list_all(&s.store, first_page(OrgScope::All, None, 500)).await;
    assert_eq!(after.len(), before.len() + 4);
    holder.close().await.ok();
    watcher.close().await.ok();
}
