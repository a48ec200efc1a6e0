//! GetEvent and ListEvents on PostgreSQL, end to end on every protocol: the event read
//! back as stored, tenancy, the contract's filter examples, and a platform-wide listing
//! across organizations paged to the end while events are ingested, each exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_service::proto::audit as pb;

use crate::fixtures::event;
use crate::pg::PgDatabase;
use crate::reads::{PROTOCOLS, Protocol, fixture, fixture_ids, get, ids, list, listing};
use crate::server::{TestServer, reader, token};

/// Which events of the fixture a filter selects, said in Rust.
type Selects = Box<dyn Fn(&pb::AuditEvent) -> bool>;

async fn start() -> (TestServer, PgDatabase) {
    let db = PgDatabase::create().await;
    let url = db.url.clone();
    let server = TestServer::start_with(|config| config.database_url = url).await;
    (server, db)
}

pub async fn events_read_back_with_tenancy_and_filters_on_postgres() {
    let (server, db) = start().await;
    server.seed(fixture()).await;
    let org_b = token(&["audit:read"], Some("org_b"));
    let sent = fixture().into_iter().find(|e| e.id == "a_login_failed").unwrap();
    for protocol in PROTOCOLS {
        let request = |id: &str, org: &str| pb::GetEventRequest { id: id.into(), organization_id: org.into() };
        let read = get(&server, protocol, request("a_login_failed", ""), &reader()).await.unwrap();
        assert_eq!(pb::AuditEvent { log_index: 0, ..read.clone() }, sent, "{protocol:?}");
        let missing = get(&server, protocol, request("nothing", ""), &org_b).await.unwrap_err();
        assert_eq!(missing.status, "NOT_FOUND");
        assert_eq!(get(&server, protocol, request("a_login_failed", ""), &org_b).await.unwrap_err(), missing);
        let several = get(&server, protocol, request("shared", ""), &reader()).await.unwrap_err();
        assert_eq!(several.field(), "organization_id", "{protocol:?}");

        let filters: [(&str, Selects); 3] = [
            (r#"action = "user.created""#, Box::new(|e| e.action == "user.created")),
            (r#"action ~ "session.*""#, Box::new(|e| e.action.starts_with("session."))),
            (
                r#"actor.id = "usr_4f18acec" AND result = "failure""#,
                Box::new(|e| e.result == "failure" && e.actor.as_ref().is_some_and(|a| a.id == "usr_4f18acec")),
            ),
        ];
        for (filter, keep) in filters {
            let page = list(&server, protocol, listing(filter, "", 0), &reader()).await.unwrap();
            assert_eq!(ids(&page), fixture_ids(None, keep), "{protocol:?} {filter}");
        }
        let own = list(&server, protocol, listing("", "", 0), &org_b).await.unwrap();
        assert_eq!(ids(&own), fixture_ids(Some("org_b"), |_| true), "{protocol:?}");
        let other = list(&server, protocol, listing("", "org_a", 0), &org_b).await.unwrap_err();
        assert_eq!(other.status, "PERMISSION_DENIED", "{protocol:?}");
    }
    // log_index counts each organization's events from 0 in the order they were stored.
    let mut org_b_indexes: Vec<u64> = list(&server, Protocol::Grpc, listing("", "org_b", 0), &reader())
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.log_index)
        .collect();
    org_b_indexes.sort_unstable();
    assert_eq!(org_b_indexes, [0, 1]);
    server.stop().await;
    db.drop_now().await;
}

fn events(prefix: &str, org: &str, count: usize, start: usize, step: usize) -> Vec<pb::AuditEvent> {
    (0..count)
        .map(|i| {
            let s = start + i * step;
            let at = format!("2026-04-17T{:02}:{:02}:{:02}.{:06}Z", s / 3600, (s / 60) % 60, s % 60, i);
            event(&format!("{prefix}{i:04}"), org, "session.login", "success", &at)
        })
        .collect()
}

pub async fn a_platform_wide_listing_pages_to_the_end_exactly_once_while_ingesting_on_postgres() {
    let (server, db) = start().await;
    let server = Arc::new(server);
    for org in ["org_x", "org_y", "org_z"] {
        server.seed(events(&format!("{org}-"), org, 120, 0, 5)).await;
    }
    let expected = ids(&list(&server, Protocol::Rest, listing("", "", 500), &reader()).await.unwrap());
    assert_eq!(expected.len(), 360);
    let mut request = listing("", "", 11);
    let first = list(&server, Protocol::Rest, request.clone(), &reader()).await.unwrap();
    let mut seen = ids(&first);
    let stop = Arc::new(AtomicBool::new(false));
    let ingest = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                for org in ["org_x", "org_y", "org_w"] {
                    server.seed(events(&format!("new{round}-{org}-"), org, 10, 1 + round % 5, 53)).await;
                }
                round += 1;
            }
            round
        })
    };
    request.page_token = first.next_page_token;
    while !request.page_token.is_empty() {
        let page = list(&server, Protocol::Grpc, request.clone(), &reader()).await.unwrap();
        seen.extend(ids(&page));
        request.page_token = page.next_page_token;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(ingest.await.unwrap() > 0, "events were ingested while paging");
    assert_eq!(seen, expected, "every event of the first page's snapshot, once, in order, nothing new");
    Arc::try_unwrap(server).ok().expect("the ingest task ended").stop().await;
    db.drop_now().await;
}
