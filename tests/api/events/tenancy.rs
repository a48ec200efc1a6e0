//! Tenancy of the reads on every protocol, as the summary has it: an organization-bound
//! token lists its own organization and is refused another; a platform-wide token lists
//! the one it names, or all; a token without `audit:read` reads nothing; a listing
//! continues on any protocol, but only for the caller it was started by.

use audit_service::proto::audit as pb;

use super::{PROTOCOLS, Protocol, fixture_ids, get, ids, list, list_all, listing, server_with_fixture};
use crate::server::{reader, token, writer};

#[tokio::test]
async fn an_organization_bound_token_lists_its_own_organization_only_on_every_protocol() {
    let server = server_with_fixture().await;
    let org_a = token(&["audit:read"], Some("org_a"));
    for protocol in PROTOCOLS {
        let own = list(&server, protocol, listing("", "", 0), &org_a).await.unwrap();
        assert_eq!(ids(&own), fixture_ids(Some("org_a"), |_| true), "{protocol:?}");
        let named = list(&server, protocol, listing("", "org_a", 0), &org_a).await.unwrap();
        assert_eq!(named, own, "{protocol:?}");
        let filtered = list(&server, protocol, listing(r#"action = "user.created""#, "", 0), &org_a).await.unwrap();
        assert_eq!(ids(&filtered), ["a_user"], "{protocol:?}");

        let other = list(&server, protocol, listing("", "org_b", 0), &org_a).await.unwrap_err();
        assert_eq!(other.status, "PERMISSION_DENIED", "{protocol:?}: {other:?}");
        assert!(other.message.contains("another organization"), "{protocol:?}: {other:?}");
        // An organization with nothing stored is refused the same way: nothing is learned.
        let empty = list(&server, protocol, listing("", "org_nobody", 0), &org_a).await.unwrap_err();
        assert_eq!((empty.status, empty.message), (other.status, other.message), "{protocol:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_platform_wide_token_lists_the_organization_it_names_or_all_on_every_protocol() {
    let server = server_with_fixture().await;
    let platform = token(&["audit:read"], None);
    for protocol in PROTOCOLS {
        for org in ["org_a", "org_b"] {
            let page = list(&server, protocol, listing("", org, 0), &platform).await.unwrap();
            assert_eq!(ids(&page), fixture_ids(Some(org), |_| true), "{protocol:?} {org}");
            assert!(page.events.iter().all(|e| e.organization_id == org), "{protocol:?} {org}");
        }
        let all = list(&server, protocol, listing("", "", 0), &platform).await.unwrap();
        assert_eq!(ids(&all), fixture_ids(None, |_| true), "{protocol:?}");
        let nobody = list(&server, protocol, listing("", "org_nobody", 0), &platform).await.unwrap();
        assert_eq!(nobody, pb::ListEventsResponse::default(), "{protocol:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn reads_need_audit_read_and_a_token_that_verifies_on_every_protocol() {
    let server = server_with_fixture().await;
    let foreign = audit_service::auth::mint_hs256(
        b"another-secret-that-is-long-enough-0123456789",
        "usr_test",
        &["audit:read"],
        None,
        std::time::Duration::from_secs(600),
    )
    .unwrap();
    for protocol in PROTOCOLS {
        let refused = list(&server, protocol, listing("", "", 0), &writer()).await.unwrap_err();
        assert_eq!(refused.status, "PERMISSION_DENIED", "{protocol:?}");
        let request = pb::GetEventRequest { id: "a_user".into(), organization_id: String::new() };
        let refused = get(&server, protocol, request.clone(), &writer()).await.unwrap_err();
        assert_eq!(refused.status, "PERMISSION_DENIED", "{protocol:?}");
        for bad in ["not-a-token", foreign.as_str()] {
            let refused = list(&server, protocol, listing("", "", 0), bad).await.unwrap_err();
            assert_eq!(refused.status, "UNAUTHENTICATED", "{protocol:?}");
            let refused = get(&server, protocol, request.clone(), bad).await.unwrap_err();
            assert_eq!(refused.status, "UNAUTHENTICATED", "{protocol:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_listing_continues_on_any_protocol_and_spelling_of_its_filter_for_its_caller_only() {
    let server = server_with_fixture().await;
    let org_a = token(&["audit:read"], Some("org_a"));
    let everything = list_all(&server, Protocol::Rest, listing("", "", 50), &org_a).await;
    for (first, next) in [(Protocol::Rest, Protocol::WebText), (Protocol::WebBinary, Protocol::Grpc)] {
        let page = list(&server, first, listing(r#"result="success""#, "", 2), &org_a).await.unwrap();
        // The same filter in another spelling: its canonical form is what the token holds.
        let continued = pb::ListEventsRequest {
            page_token: page.next_page_token.clone(),
            ..listing(r#"result = success"#, "org_a", 2)
        };
        let mut seen = ids(&page);
        seen.extend(list_all(&server, next, continued.clone(), &org_a).await);
        let successes = fixture_ids(Some("org_a"), |e| e.result == "success");
        assert_eq!(seen, successes, "{first:?} then {next:?}");
        assert!(successes.iter().all(|id| everything.contains(id)));
        // The platform-wide caller naming org_a lists the same events, but not with org_a's token.
        let refused = list(&server, next, continued, &reader()).await.unwrap_err();
        assert_eq!(refused.field(), "page_token", "{next:?}");
    }
    server.stop().await;
}
