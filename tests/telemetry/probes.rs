//! Readiness under a flood, counted where it matters: the store spans of the
//! database pings `/readyz` makes, as the collector receives them.

use std::time::Instant;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::harness::{Caller, attr, harness, start_server};
use crate::server::http2;

const PROBES: usize = 40;

#[tokio::test]
async fn a_flood_of_readyz_asks_the_database_at_most_once_a_second() {
    let server = start_server().await;
    let caller = Caller::new(9);
    // HTTP/2: all the probes in flight at once on one connection.
    let client = http2();
    let started = Instant::now();
    let probes = (0..PROBES)
        .map(|_| client.get(format!("{}/readyz", server.base)).header("traceparent", caller.traceparent()).send());
    for response in futures_util::future::join_all(probes).await {
        assert_eq!(response.expect("readyz answers").status(), 200);
    }
    let elapsed = started.elapsed();

    // Every probe's server span is in; each ping ended before its probe's span did.
    let spans = harness()
        .trace(&caller.trace_id, |spans| spans.iter().filter(|s| s.kind == SpanKind::Server as i32).count() == PROBES)
        .await;
    let pings = spans.iter().filter(|s| attr(s, "code.function.name").as_deref() == Some("EventStore::ping")).count();
    // One verdict answers for a second from when it was reached: a burst lasting
    // `elapsed` can need at most one query per started second, plus the first.
    let most = elapsed.as_secs() as usize + 1;
    assert!((1..=most).contains(&pings), "{pings} database pings for {PROBES} probes in {elapsed:?}");
    server.stop().await;
}
