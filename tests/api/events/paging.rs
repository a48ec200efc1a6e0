//! Page tokens: paging to the end returns every event that existed at the first page
//! exactly once while events are ingested concurrently; a token altered, truncated,
//! forged, reused with another filter or organization, or replayed by another tenant is
//! INVALID_ARGUMENT on `page_token`, and never lets a caller past its tenancy; tokens
//! survive a restart and a key rotation when the keys are configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_service::proto::audit as pb;
use audit_service::service::PageTokenKeys;

use super::{PROTOCOLS, Protocol, ids, list, list_all, listing};
use crate::fixtures::event;
use crate::server::{TestServer, reader, token};

/// `count` events of `org`, `step` seconds apart from `start` seconds into the day.
fn events(prefix: &str, org: &str, count: usize, start: usize, step: usize) -> Vec<pb::AuditEvent> {
    (0..count)
        .map(|i| {
            let s = start + i * step;
            let at = format!("2026-04-17T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60);
            let result = if i % 3 == 0 { "failure" } else { "success" };
            event(&format!("{prefix}{i:04}"), org, "session.login", result, &at)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_to_the_end_returns_each_event_once_while_another_task_ingests() {
    let server = Arc::new(TestServer::start().await);
    // Two organizations, and events that share a timestamp (ties across organizations).
    let mut existing = events("p", "org_p", 150, 0, 4);
    existing.extend(events("q", "org_q", 150, 0, 4));
    server.seed(existing.clone()).await;
    for (run, protocol, filter) in [(0, Protocol::Rest, ""), (1, Protocol::Grpc, r#"result = "failure""#)] {
        let expected: Vec<String> = {
            let full = list(&server, protocol, listing(filter, "", 500), &reader()).await.unwrap();
            assert_eq!(full.next_page_token, "");
            ids(&full)
        };
        let mut request = listing(filter, "", 7);
        let first = list(&server, protocol, request.clone(), &reader()).await.unwrap();
        let mut seen = ids(&first);
        // From now on, events land newer, older and in between the listed ones.
        let stop = Arc::new(AtomicBool::new(false));
        let ingest = {
            let (server, stop) = (server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = events(&format!("n{run}_{round}_"), "org_p", 20, 1 + round % 4, 29);
                    batch.extend(events(&format!("m{run}_{round}_"), "org_q", 5, 2, 97));
                    server.seed(batch).await;
                    round += 1;
                }
                round
            })
        };
        request.page_token = first.next_page_token;
        while !request.page_token.is_empty() {
            let page = list(&server, protocol, request.clone(), &reader()).await.unwrap();
            seen.extend(ids(&page));
            request.page_token = page.next_page_token;
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = ingest.await.unwrap();
        assert!(rounds > 0, "events were ingested while paging");
        let keys = |ids: &[String]| {
            ids.iter().zip(existing_orgs(&existing, ids)).map(|(i, o)| format!("{o}/{i}")).collect::<Vec<_>>()
        };
        assert_eq!(keys(&seen), keys(&expected), "{protocol:?} {filter}: every event once, in order, nothing new");
    }
    Arc::try_unwrap(server).ok().expect("the ingest task ended").stop().await;
}

/// The organization of each listed id, which the seeded events name.
fn existing_orgs(existing: &[pb::AuditEvent], ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            existing
                .iter()
                .find(|e| e.id == *id)
                .map(|e| e.organization_id.clone())
                .unwrap_or_else(|| format!("new event {id}"))
        })
        .collect()
}

#[tokio::test]
async fn a_token_is_bound_to_its_filter_organization_and_caller() {
    let server = TestServer::start().await;
    server.seed(events("a", "org_a", 30, 0, 60)).await;
    server.seed(events("b", "org_b", 30, 0, 60)).await;
    let (org_a, org_b) = (token(&["audit:read"], Some("org_a")), token(&["audit:read"], Some("org_b")));
    for protocol in PROTOCOLS {
        let first = list(&server, protocol, listing("", "org_a", 5), &reader()).await.unwrap();
        let token_of = |request: pb::ListEventsRequest| pb::ListEventsRequest {
            page_token: first.next_page_token.clone(),
            ..request
        };
        let mid = first.next_page_token.len() / 2;
        let mut flipped = first.next_page_token.clone().into_bytes();
        flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
        let cases = [
            ("altered", token_of(listing("", "org_a", 5)).with_token(String::from_utf8(flipped).unwrap()), reader()),
            (
                "truncated",
                token_of(listing("", "org_a", 5)).with_token(first.next_page_token[..mid].to_owned()),
                reader(),
            ),
            (
                "forged",
                token_of(listing("", "org_a", 5)).with_token("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
                reader(),
            ),
            ("another filter", token_of(listing(r#"result = "failure""#, "org_a", 5)), reader()),
            ("another organization", token_of(listing("", "org_b", 5)), reader()),
            ("every organization", token_of(listing("", "", 5)), reader()),
            ("another tenant's caller", token_of(listing("", "", 5)), org_a.clone()),
        ];
        for (case, request, caller) in cases {
            let refusal = list(&server, protocol, request, &caller).await.unwrap_err();
            assert_eq!(
                (refusal.status.as_str(), refusal.field()),
                ("INVALID_ARGUMENT", "page_token"),
                "{protocol:?} {case}"
            );
        }
        // A token never gets a caller past its tenancy: org_b still may not name org_a.
        let denied = list(&server, protocol, token_of(listing("", "org_a", 5)), &org_b).await.unwrap_err();
        assert_eq!(denied.status, "PERMISSION_DENIED", "{protocol:?}");
        // org_a's own listing, replayed by org_b's token, is refused too.
        let own = list(&server, protocol, listing("", "", 5), &org_a).await.unwrap();
        let replay = pb::ListEventsRequest { page_token: own.next_page_token, ..listing("", "", 5) };
        let refusal = list(&server, protocol, replay.clone(), &org_b).await.unwrap_err();
        assert_eq!((refusal.status.as_str(), refusal.field()), ("INVALID_ARGUMENT", "page_token"), "{protocol:?}");
        assert!(list(&server, protocol, replay, &org_a).await.is_ok(), "{protocol:?}: its own caller continues");
    }
    server.stop().await;
}

trait WithToken {
    fn with_token(self, token: String) -> Self;
}

impl WithToken for pb::ListEventsRequest {
    fn with_token(self, page_token: String) -> Self {
        Self { page_token, ..self }
    }
}

#[tokio::test]
async fn configured_keys_carry_a_listing_across_a_restart_and_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let old = "page-token-key-old-0123456789abcdef0123";
    let new = "page-token-key-new-0123456789abcdef0123";
    let keys = |secrets: &[&str]| {
        let keys = PageTokenKeys::from_secrets(secrets).unwrap();
        move |config: &mut audit_service::config::Config| config.page_token_keys = Some(keys)
    };
    let server = TestServer::start_on(&db, keys(&[old])).await;
    server.seed(events("r", "org_r", 12, 0, 60)).await;
    let everything = list_all(&server, Protocol::Rest, listing("", "", 500), &reader()).await;
    let first = list(&server, Protocol::Rest, listing("", "", 5), &reader()).await.unwrap();
    server.stop().await;
    let next = pb::ListEventsRequest { page_token: first.next_page_token.clone(), ..listing("", "", 5) };

    // A replica with the new key added second, then first: the old token still verifies.
    for secrets in [[old, new], [new, old]] {
        let server = TestServer::start_on(&db, keys(&secrets)).await;
        let mut seen = ids(&first);
        seen.extend(list_all(&server, Protocol::Grpc, next.clone(), &reader()).await);
        assert_eq!(seen, everything, "{secrets:?}");
        server.stop().await;
    }
    // Once the old key is dropped, its tokens are refused; so are a random key's.
    let server = TestServer::start_on(&db, keys(&[new])).await;
    let refusal = list(&server, Protocol::Rest, next.clone(), &reader()).await.unwrap_err();
    assert_eq!(refusal.field(), "page_token");
    server.stop().await;
    let server = TestServer::start_on(&db, |_| {}).await;
    assert_eq!(list(&server, Protocol::Rest, next, &reader()).await.unwrap_err().field(), "page_token");
    server.stop().await;
}
