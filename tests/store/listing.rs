//! Reads: GetEvent by id in its scope, every field back as stored; listings in
//! listing order, by keyset pages of any size, with ties in time across page
//! boundaries, filtered exactly as `Filter::matches` filters, in either scope.

use std::cmp::Reverse;

use audit_service::domain::{Cursor, EventBatch, EventLookup, EventPage, NewEvent, OrgScope, Snapshot, StoredEvent};
use audit_service::filter::Filter;
use audit_service::proto::audit as pb;
use audit_service::store::{DynStore, ListQuery, StoreError};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::filter::{event, random_expr};
use crate::summary::seed;
use crate::support::{TestStore, org_scope};

const ORGS: [&str; 3] = ["org_B", "org_a", "org_b"];

/// Appends `batches` one after the other and returns what each stored event must
/// read back as: its log index is its place among its organization's new events.
pub async fn append_in_order(store: &DynStore, batches: &[EventBatch], stored: &mut Vec<StoredEvent>) {
    for batch in batches {
        let outcome = store.append(batch).await.expect("append");
        let mut created = 0;
        for event in batch.events() {
            let known =
                stored.iter().any(|s| s.event.organization_id == event.organization_id && s.event.id == event.id);
            if !known {
                let log_index = stored.iter().filter(|s| s.event.organization_id == event.organization_id).count();
                stored.push(StoredEvent { event: event.clone(), log_index: log_index as u64 });
                created += 1;
            }
        }
        assert_eq!(outcome.created, created);
    }
}

/// Listing order: newest first, then organization and log index descending.
pub fn listing_order(events: &mut [StoredEvent]) {
    events
        .sort_by_key(|s| Reverse((s.event.timestamp.get(), s.event.organization_id.as_str().to_owned(), s.log_index)));
}

pub fn first_page(scope: OrgScope, filter: Option<Filter>, limit: usize) -> ListQuery {
    ListQuery { scope, filter, snapshot: None, after: None, limit }
}

/// The query of the page after `page`.
pub fn next_query(query: &ListQuery, page: &EventPage) -> ListQuery {
    let last = page.events.last().expect("a page followed by more is not empty");
    ListQuery {
        snapshot: Some(page.snapshot.clone()),
        after: Some(Cursor {
            timestamp: last.event.timestamp,
            organization_id: last.event.organization_id.clone(),
            log_index: last.log_index,
        }),
        ..query.clone()
    }
}

/// Every page of a listing, concatenated.
pub async fn list_all(store: &DynStore, mut query: ListQuery) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    loop {
        let page = store.list_events(&query).await.expect("list_events");
        assert!(page.events.len() <= query.limit);
        if page.more {
            assert_eq!(page.events.len(), query.limit, "only the last page is short");
        }
        all.extend(page.events.iter().cloned());
        if !page.more {
            return all;
        }
        query = next_query(&query, &page);
    }
}

fn with_details(mut event: pb::AuditEvent, rng: &mut StdRng) -> pb::AuditEvent {
    if rng.random_bool(0.3) {
        let json = serde_json::json!({ "reason": "a \"quoted\" é", "n": rng.random_range(0..100), "nested": [1, {"x": null}] });
        event.details = Some(serde_json::from_value(json).unwrap());
    }
    event
}

/// Random events of the filter suite's kind, with many instants shared (ties in
/// time across organizations and within one), in a few batches.
fn random_batches(rng: &mut StdRng) -> Vec<EventBatch> {
    (0..4)
        .map(|b| {
            let events = (0..rng.random_range(1..60))
                .map(|i| {
                    let org = *ORGS.choose(rng).unwrap();
                    let event = event(rng, org, b * 100 + i);
                    with_details(event, rng)
                })
                .collect();
            EventBatch::try_from(pb::BatchCreateEventsRequest { events }).expect("valid events")
        })
        .collect()
}

pub async fn get_event_reads_one_event_in_its_scope(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let mut batches = random_batches(&mut rng);
    // One id in two organizations, and one in all three.
    let mut twice = Vec::new();
    for (id, orgs) in [("twice", &ORGS[..2]), ("thrice", &ORGS[..])] {
        for org in orgs {
            twice.push(pb::AuditEvent { id: id.into(), ..with_details(event(&mut rng, org, 0), &mut rng) });
        }
    }
    batches.push(EventBatch::try_from(pb::BatchCreateEventsRequest { events: twice }).unwrap());
    let mut stored = Vec::new();
    append_in_order(&s.store, &batches, &mut stored).await;
    for expected in &stored {
        let (id, org) = (expected.event.id.clone(), expected.event.organization_id.clone());
        let found =
            s.store.get_event(&EventLookup { id: id.clone(), scope: OrgScope::One(org.clone()) }).await.unwrap();
        assert_eq!(found, vec![expected.clone()], "{:?}: every field back as stored", s.backend);
        let elsewhere: Vec<&NewEvent> =
            stored.iter().map(|s| &s.event).filter(|e| e.id == id && e.organization_id != org).collect();
        let mut everywhere = s.store.get_event(&EventLookup { id: id.clone(), scope: OrgScope::All }).await.unwrap();
        everywhere.sort_by(|a, b| a.event.organization_id.cmp(&b.event.organization_id));
        assert_eq!(everywhere.len(), (1 + elsewhere.len()).min(2), "{:?}: {id} across organizations", s.backend);
        assert!(everywhere.contains(expected) || everywhere.len() == 2);
        for other in ORGS.iter().filter(|o| **o != org.as_str()) {
            let lookup = EventLookup { id: id.clone(), scope: org_scope(other) };
            let visible = elsewhere.iter().any(|e| e.organization_id.as_str() == *other);
            assert_eq!(s.store.get_event(&lookup).await.unwrap().len(), usize::from(visible), "{:?}", s.backend);
        }
    }
    for scope in [OrgScope::All, org_scope("org_a")] {
        let lookup = EventLookup { id: "never-stored".into(), scope };
        assert!(s.store.get_event(&lookup).await.unwrap().is_empty());
    }
}

pub async fn pages_follow_listing_order_and_the_filter_exactly(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    let mut stored = Vec::new();
    append_in_order(&s.store, &random_batches(&mut rng), &mut stored).await;
    listing_order(&mut stored);
    let scopes = [OrgScope::All, org_scope("org_a"), org_scope("org_B"), org_scope("org_none")];
    for round in 0..60 {
        let filter = if round < 8 { None } else { Filter::parse(&random_expr(&mut rng, 3).to_string()).unwrap() };
        let scope = scopes.choose(&mut rng).unwrap().clone();
        let limit = *[1, 2, 3, 7, 50, 500].choose(&mut rng).unwrap();
        let want: Vec<StoredEvent> = stored
            .iter()
            .filter(|e| match &scope {
                OrgScope::One(org) => &e.event.organization_id == org,
                OrgScope::All => true,
            })
            .filter(|e| filter.as_ref().is_none_or(|f| f.matches(&e.event)))
            .cloned()
            .collect();
        let got = list_all(&s.store, first_page(scope.clone(), filter.clone(), limit)).await;
        let text = filter.map(|f| f.to_string()).unwrap_or_default();
        assert_eq!(got, want, "{:?}: {scope:?}, page size {limit}, filter {text}", s.backend);
    }
}

pub async fn a_malformed_snapshot_is_refused_cleanly(s: &TestStore) {
    let mut rng = StdRng::seed_from_u64(seed());
    append_in_order(&s.store, &random_batches(&mut rng), &mut Vec::new()).await;
    let page = s.store.list_events(&first_page(OrgScope::All, None, 1)).await.unwrap();
    assert!(page.more);
    let valid = next_query(&first_page(OrgScope::All, None, 1), &page);
    for bad in [
        "",
        "x",
        "-1",
        "1:2",
        "1:2:x",
        "1:2:3,",
        "١",
        " 1",
        "1:2:3:4",
        "99999999999999999999999:1:",
        &"9".repeat(100_000),
    ] {
        let query = ListQuery { snapshot: Some(Snapshot(bad.to_owned())), ..valid.clone() };
        match s.store.list_events(&query).await {
            Err(StoreError::Other(_)) => {}
            Err(StoreError::Unavailable(error)) => panic!("{:?}: {bad:?} is no outage: {error}", s.backend),
            Ok(page) => {
                // A text that happens to be a well-formed snapshot of the other kind of
                // store is still refused by this one; anything else must not list.
                panic!("{:?}: snapshot {bad:?} listed {} events", s.backend, page.events.len())
            }
        }
    }
}
