//! The summary read on every protocol: the seed's shape, exact counts at the range
//! edges, ordering, organization scoping.

use audit_service::proto::audit as pb;

use crate::fixtures::{event, ts};
use crate::grpc_web::{self, Mode};
use crate::server::{TestServer, authed, buckets, http1, http2, reader, rest_summary, token};

/// Events around a range that starts and ends mid-hour, at microsecond edges.
fn edge_events() -> Vec<pb::AuditEvent> {
    vec![
        // Exactly at start_time: counts.
        event("e1", "org_a", "session.login", "success", "2026-03-02T10:17:31.000001Z"),
        // One microsecond before start_time: does not count.
        event("e2", "org_a", "session.login", "failure", "2026-03-02T10:17:31Z"),
        event("e3", "org_a", "session.login", "failure", "2026-03-04T08:00:00Z"),
        event("e4", "org_a", "user.password.changed", "success", "2026-03-05T23:59:59.999999Z"),
        event("e5", "org_b", "session.login", "success", "2026-03-05T12:00:00Z"),
        event("e6", "org_b", "oauth.client.created", "failure", "2026-03-05T12:00:00Z"),
        // One microsecond before end_time: counts.
        event("e7", "org_a", "user.password.changed", "failure", "2026-03-09T14:42:05.123455Z"),
        // Exactly at end_time: does not count.
        event("e8", "org_a", "session.login", "success", "2026-03-09T14:42:05.123456Z"),
    ]
}

const RANGE: &str = "start_time=2026-03-02T10%3A17%3A31.000001Z&end_time=2026-03-09T14%3A42%3A05.123456Z";

#[tokio::test]
async fn rest_counts_exactly_at_microsecond_edges_over_http1_and_http2() {
    let server = TestServer::start().await;
    server.seed(edge_events()).await;
    for client in [http1(), http2()] {
        let response = rest_summary(&client, &server.base, RANGE, &reader()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            buckets(&json),
            vec![
                ("session.login".into(), 3, 1),
                ("user.password.changed".into(), 2, 1),
                ("oauth.client.created".into(), 1, 1),
            ]
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn organization_scoping_on_all_protocols() {
    let server = TestServer::start().await;
    server.seed(edge_events()).await;
    let query = format!("{RANGE}&organization_id=org_b");
    let json: serde_json::Value = rest_summary(&http1(), &server.base, &query, &reader()).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("oauth.client.created".into(), 1, 1), ("session.login".into(), 1, 0)]);

    let request = pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T10:17:31.000001Z")),
        end_time: Some(ts("2026-03-09T14:42:05.123456Z")),
        organization_id: "org_a".into(),
    };
    let grpc = server.grpc().await.get_events_summary(authed(request.clone(), &reader())).await.unwrap().into_inner();
    let expected = vec![
        pb::ActionBucket { action: "session.login".into(), count: 2, failure_count: 1 },
        pb::ActionBucket { action: "user.password.changed".into(), count: 2, failure_count: 1 },
    ];
    assert_eq!(grpc.buckets, expected);
    for mode in [Mode::Binary, Mode::Text] {
        for client in [http1(), http2()] {
            let web: pb::GetEventsSummaryResponse =
                grpc_web::call(&client, &server.base, "GetEventsSummary", &request, Some(&reader()), mode)
                    .await
                    .unwrap();
            assert_eq!(web.buckets, expected, "{mode:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn seed_shape_ordering_and_empty_range() {
    let server = TestServer::start().await;
    let mut events = Vec::new();
    for i in 0..7 {
        let result = if i < 2 { "failure" } else { "success" };
        events.push(event(&format!("l{i}"), "org_a", "session.login", result, "2026-01-05T09:00:00Z"));
    }
    for (i, action) in ["user.password.changed", "oauth.client.created", "user.created"].iter().enumerate() {
        events.push(event(&format!("x{i}"), "org_a", action, "success", "2026-01-05T09:00:00Z"));
    }
    server.seed(events).await;
    let response = rest_summary(
        &http1(),
        &server.base,
        "start_time=2026-01-05T00:00:00Z&end_time=2026-01-06T00:00:00Z",
        &reader(),
    )
    .await;
    let text = response.text().await.unwrap();
    // Ties on count are ordered by action; zero failure counts are written out.
    assert_eq!(
        text,
        r#"{"buckets":[{"action":"session.login","count":7,"failure_count":2},{"action":"oauth.client.created","count":1,"failure_count":0},{"action":"user.created","count":1,"failure_count":0},{"action":"user.password.changed","count":1,"failure_count":0}]}"#
    );
    let empty = rest_summary(
        &http2(),
        &server.base,
        "start_time=2027-01-05T00:00:00Z&end_time=2027-01-06T00:00:00Z",
        &reader(),
    )
    .await;
    assert_eq!(empty.text().await.unwrap(), r#"{"buckets":[]}"#);
    server.stop().await;
}

#[tokio::test]
async fn offsets_name_the_same_instant_as_utc() {
    let server = TestServer::start().await;
    server.seed(edge_events()).await;
    let utc = rest_summary(&http1(), &server.base, RANGE, &reader()).await.text().await.unwrap();
    // Same range written with +02:00 and -05:00 offsets, '+' percent-encoded.
    let offsets = "start_time=2026-03-02T12%3A17%3A31.000001%2B02%3A00&end_time=2026-03-09T09%3A42%3A05.123456-05%3A00";
    let shifted = rest_summary(&http1(), &server.base, offsets, &reader()).await.text().await.unwrap();
    assert_eq!(utc, shifted);
    // An unencoded '+' arrives as a space after form decoding: read as '+'.
    let raw_plus = "start_time=2026-03-02T12:17:31.000001+02:00&end_time=2026-03-09T09:42:05.123456-05:00";
    let plus = rest_summary(&http1(), &server.base, raw_plus, &reader()).await.text().await.unwrap();
    assert_eq!(utc, plus);
    // Lowercase t and z are RFC 3339 too.
    let lower = "start_time=2026-03-02t10:17:31.000001z&end_time=2026-03-09t14:42:05.123456z";
    assert_eq!(utc, rest_summary(&http1(), &server.base, lower, &reader()).await.text().await.unwrap());
    server.stop().await;
}

#[tokio::test]
async fn org_token_without_organization_id_answers_for_its_own_org() {
    let server = TestServer::start().await;
    server.seed(edge_events()).await;
    let org_token = token(&["audit:read"], Some("org_b"));
    let json: serde_json::Value = rest_summary(&http2(), &server.base, RANGE, &org_token).await.json().await.unwrap();
    assert_eq!(buckets(&json), vec![("oauth.client.created".into(), 1, 1), ("session.login".into(), 1, 0)]);
    server.stop().await;
}
