//! ListEvents: newest first; every filter example of the contract selects what it says;
//! each class of filter error is a 400 naming `filter` and the position; `page_size`
//! 0, 1, 500, 501 and -1.

use audit_service::proto::audit as pb;
use serde_json::json;

use super::{PROTOCOLS, Protocol, fixture_ids, ids, list, listing, rest_get, server_with_fixture};
use crate::fixtures::event;
use crate::server::{TestServer, reader, stored_events};

/// Which events of the fixture a filter selects, said in Rust.
type Selects = Box<dyn Fn(&pb::AuditEvent) -> bool>;

fn actor_id(e: &pb::AuditEvent) -> &str {
    e.actor.as_ref().map(|a| a.id.as_str()).unwrap_or_default()
}

fn millis(e: &pb::AuditEvent) -> i64 {
    let at = e.timestamp.as_ref().unwrap();
    at.seconds * 1000 + i64::from(at.nanos / 1_000_000)
}

#[tokio::test]
async fn every_filter_example_of_the_contract_selects_what_it_says_on_every_protocol() {
    let server = server_with_fixture().await;
    let april_17 = crate::fixtures::ts("2026-04-17T00:00:00Z").seconds * 1000;
    let examples: [(&str, Selects); 5] = [
        ("", Box::new(|_| true)),
        (r#"action = "user.created""#, Box::new(|e| e.action == "user.created")),
        (r#"action ~ "session.*""#, Box::new(|e| e.action.starts_with("session."))),
        (
            r#"actor.id = "usr_4f18acec" AND result = "failure""#,
            Box::new(|e| actor_id(e) == "usr_4f18acec" && e.result == "failure"),
        ),
        (r#"timestamp >= "2026-04-17T00:00:00Z""#, Box::new(move |e| millis(e) >= april_17)),
    ];
    for (filter, keep) in &examples {
        let expected = fixture_ids(None, keep);
        assert!(!expected.is_empty(), "{filter} selects something");
        for protocol in PROTOCOLS {
            let page = list(&server, protocol, listing(filter, "", 500), &reader()).await.unwrap();
            assert_eq!(ids(&page), expected, "{protocol:?} {filter}");
            assert_eq!(page.next_page_token, "", "one page holds them all");
        }
        let scoped = list(&server, Protocol::Rest, listing(filter, "org_a", 0), &reader()).await.unwrap();
        assert_eq!(ids(&scoped), fixture_ids(Some("org_a"), keep), "org_a: {filter}");
    }
    // The REST page is the contract's shape: events newest first, no token on the last page.
    let (status, body) =
        rest_get(&server, "/v1/audit/events?filter=action%20%3D%20%22user.created%22", &reader()).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["events"], "{body}");
    assert_eq!(body["events"][0]["id"], "shared");
    assert!(body["events"][0]["log_index"].is_u64());
    let (_, empty) = rest_get(&server, "/v1/audit/events?filter=action%3D%22no.such%22", &reader()).await;
    assert_eq!(empty, json!({"events": []}));
    server.stop().await;
}

#[tokio::test]
async fn each_filter_error_is_a_400_naming_filter_and_the_position() {
    let server = server_with_fixture().await;
    let before = stored_events(&server.db_path).await;
    let many = vec![r#"action = "a.b""#; 21].join(" OR ");
    let long = format!(r#"action = "{}""#, "a".repeat(2000));
    for (filter, position) in [
        (r#"actr.id = "usr_1""#, "position 0"),
        (r#"result ~ "fail*""#, "position 7"),
        (r#"action > "a""#, "position 7"),
        (r#"timestamp >= "2026-13-01T00:00:00Z""#, "position 13"),
        (r#"timestamp >= "yesterday""#, "position 13"),
        (r#"action = "user.created" AND"#, "position"),
        (r#"(action = "a.b""#, "position"),
        (r#"action = "a.b" and result = "failure""#, "position"),
        (long.as_str(), "position 2000"),
        (many.as_str(), "position"),
    ] {
        let query = format!(
            "/v1/audit/events?filter={}",
            percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
        );
        let (status, body) = rest_get(&server, &query, &reader()).await;
        let refusal = super::refusal_of(&body);
        assert_eq!(
            (status, refusal.status.as_str(), refusal.field()),
            (400, "INVALID_ARGUMENT", "filter"),
            "{filter}: {body}"
        );
        let description = &refusal.violations[0].1;
        assert!(description.contains(position), "{filter}: {description}");
        assert!(refusal.message.starts_with("filter "), "{body}");
    }
    // The same refusal, with its BadRequest, over gRPC and gRPC-web.
    for protocol in [Protocol::Grpc, Protocol::WebBinary, Protocol::WebText] {
        let refusal = list(&server, protocol, listing(r#"actr.id = "usr_1""#, "", 0), &reader()).await.unwrap_err();
        assert_eq!((refusal.status.as_str(), refusal.field()), ("INVALID_ARGUMENT", "filter"), "{protocol:?}");
        assert!(refusal.violations[0].1.contains("position 0"), "{protocol:?}: {refusal:?}");
    }
    assert_eq!(stored_events(&server.db_path).await, before);
    server.stop().await;
}

#[tokio::test]
async fn page_size_zero_is_the_default_larger_than_500_is_500_and_negative_is_refused() {
    let server = TestServer::start().await;
    // 520 events a second apart, in one organization.
    let events: Vec<pb::AuditEvent> = (0..520)
        .map(|i| {
            let at = format!("2026-04-17T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60);
            event(&format!("e{i:03}"), "org_many", "session.login", "success", &at)
        })
        .collect();
    server.seed(events).await;
    let newest_first: Vec<String> = (0..520).rev().map(|i| format!("e{i:03}")).collect();
    for protocol in PROTOCOLS {
        for (asked, served) in [(0, 50), (1, 1), (500, 500), (501, 500), (i32::MAX, 500)] {
            let page = list(&server, protocol, listing("", "", asked), &reader()).await.unwrap();
            assert_eq!(ids(&page), newest_first[..served], "{protocol:?} page_size {asked}");
            assert!(!page.next_page_token.is_empty(), "{protocol:?} page_size {asked}: more follow");
        }
        let refused = list(&server, protocol, listing("", "", -1), &reader()).await.unwrap_err();
        assert_eq!((refused.status.as_str(), refused.field()), ("INVALID_ARGUMENT", "page_size"), "{protocol:?}");
    }
    for query in ["page_size=-1", "page_size=abc", "page_size=2147483648", "page_size=1&page_size=2"] {
        let (status, body) = rest_get(&server, &format!("/v1/audit/events?{query}"), &reader()).await;
        assert_eq!((status, super::refusal_of(&body).field()), (400, "page_size"), "{query}: {body}");
    }
    server.stop().await;
}
