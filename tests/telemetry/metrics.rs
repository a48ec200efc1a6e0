//! `GET /metrics` as Prometheus scrapes it, and the same instruments pushed over
//! OTLP: counters move by exactly what the calls did.

use std::collections::BTreeMap;
use std::time::Duration;

use audit_service::proto::audit as pb;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};

use crate::fixtures::unix;
use crate::grpc_web::{self, Mode};
use crate::harness::{harness, start_server};
use crate::server::{PATIENCE, authed, http1, token};

const SUMMARY: &str = "avnology.audit.v1.AuditService/GetEventsSummary";
const BATCH: &str = "avnology.audit.v1.AuditService/BatchCreateEvents";

/// One scrape: `(name, labels)` → value.
#[derive(Debug)]
struct Scrape(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Scrape {
    async fn take(base: &str) -> Self {
        // No token: Prometheus scrapes without one.
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Self::parse(&response.text().await.unwrap())
    }

    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("closing brace"))),
                None => (series, BTreeMap::new()),
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            samples.insert((name.to_owned(), labels), value);
        }
        Self(samples)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.0.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0.keys().any(|(n, _)| n == name)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => value.push(chars.next().expect("escaped char").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end + 1..];
    }
    labels
}

fn requests(rpc: &str, protocol: &str, code: &str) -> [(&'static str, String); 3] {
    [("code", code.to_owned()), ("protocol", protocol.to_owned()), ("rpc", rpc.to_owned())]
}

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, String)]) -> f64 {
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    after.get(name, &labels) - before.get(name, &labels)
}

#[tokio::test]
async fn metrics_count_calls_by_rpc_protocol_and_status() {
    let server = start_server().await;
    let reader = token(&["audit:read"], None);
    let before = Scrape::take(&server.base).await;

    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = http
            .get(format!(
                "{}/v1/audit/events:summary?start_time=2026-11-16T00:00:00Z&end_time=2026-11-23T00:00:00Z",
                server.base
            ))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let event = |id: &str| pb::AuditEvent {
        id: id.into(),
        timestamp: Some(unix(1_795_000_000)),
        organization_id: "org_acme".into(),
        action: "session.login".into(),
        result: "failure".into(),
        ..Default::default()
    };
    // Three events, one of them a retry of another: two stored, one duplicate.
    let batch = pb::BatchCreateEventsRequest { events: vec![event("evt_a"), event("evt_b"), event("evt_a")] };
    let reply = server
        .grpc()
        .await
        .batch_create_events(authed(batch, &token(&["audit:write"], None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.created_count, reply.duplicate_count), (2, 1));
    let summary = pb::GetEventsSummaryRequest {
        start_time: Some(unix(0)),
        end_time: Some(unix(60)),
        organization_id: String::new(),
    };
    let refused = grpc_web::call::<_, pb::GetEventsSummaryResponse>(
        &http1(),
        &server.base,
        "GetEventsSummary",
        &summary,
        None,
        Mode::Binary,
    )
    .await;
    assert_eq!(refused.expect_err("no token").code, 16);

    // Each request is counted when its response body ends, which may be just
    // after the client read it.
    let rest_ok = requests(SUMMARY, "rest", "OK");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let after = loop {
        let after = Scrape::take(&server.base).await;
        let settled = delta(&before, &after, "audit_rpc_requests_total", &rest_ok) == 3.0
            && delta(&before, &after, "audit_rpc_requests_total", &requests(BATCH, "grpc", "OK")) == 1.0
            && delta(&before, &after, "audit_rpc_requests_total", &requests(SUMMARY, "grpc-web", "UNAUTHENTICATED"))
                == 1.0;
        if settled || tokio::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let moved = |name: &str, labels: &[(&str, String)]| delta(&before, &after, name, labels);
    assert_eq!(moved("audit_rpc_requests_total", &rest_ok), 3.0, "{after:#?}");
    assert_eq!(moved("audit_rpc_requests_total", &requests(BATCH, "grpc", "OK")), 1.0);
    let web_refused = requests(SUMMARY, "grpc-web", "UNAUTHENTICATED");
    assert_eq!(moved("audit_rpc_requests_total", &web_refused), 1.0);
    assert_eq!(moved("audit_rpc_errors_total", &web_refused), 1.0);
    assert_eq!(moved("audit_rpc_errors_total", &rest_ok), 0.0, "OK is no error");
    assert_eq!(moved("audit_rpc_duration_seconds_count", &rest_ok), 3.0);
    let mut inf = rest_ok.to_vec();
    inf.push(("le", "+Inf".into()));
    assert_eq!(moved("audit_rpc_duration_seconds_bucket", &inf), 3.0);
    assert!(moved("audit_rpc_duration_seconds_sum", &rest_ok) > 0.0);
    assert_eq!(moved("audit_events_ingested_total", &[]), 2.0);
    assert_eq!(moved("audit_events_duplicates_total", &[]), 1.0);
    assert_eq!(after.get("audit_rpc_in_flight", &[("protocol", "rest"), ("rpc", SUMMARY)]), 0.0);
    assert_eq!(after.get("audit_db_pool_max_connections", &[("pool", "writer")]), 1.0);
    assert_eq!(after.get("audit_db_pool_max_connections", &[("pool", "readers")]), 4.0);
    assert!(after.has("audit_db_pool_connections"), "pool usage is reported");
    // Bounded labels only: no organization, subject or raw path.
    let series = format!("{:?}", after.0.keys().collect::<Vec<_>>());
    assert!(
        !series.contains("org_acme") && !series.contains("usr_test") && !series.contains("events:summary"),
        "{series}"
    );
    server.stop().await;

    // Stopping pushed the final values over OTLP.
    let exported = harness().exported_metrics();
    let pushed = exported
        .iter()
        .filter(|m| m.name == "audit.rpc.requests")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Sum(sum)) => Some(sum.data_points.iter()),
            _ => None,
        })
        .flatten()
        .filter(|point| {
            let label = |key: &str| {
                point.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
                    match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(s) => Some(s.as_str()),
                        _ => None,
                    }
                })
            };
            label("rpc") == Some(SUMMARY) && label("protocol") == Some("rest") && label("code") == Some("OK")
        })
        .any(|point| point.value == Some(number_data_point::Value::AsInt(3)));
    assert!(pushed, "the request counter reached the OTLP receiver: {exported:#?}");
}
