//! The future bound of BatchCreateEvents: an event dated more than the allowed skew
//! after the server's clock refuses its batch whole, over REST and gRPC (on
//! PostgreSQL too: tests/api_env). Offsets are whole half-hours from a 1-hour
//! bound, so a slow machine cannot move an event across it.

mod refusal;

use std::time::Duration;

use crate::server::{TestServer, stored_events};
use refusal::{HOUR, around_now, assert_refused, grpc_create, login_in, rest_create};

#[tokio::test]
async fn an_event_two_hours_ahead_is_refused_over_rest_and_grpc() {
    let server = TestServer::start().await;
    assert_refused(&server, vec![login_in("ahead-1", 2 * HOUR)], "events[0].timestamp").await;
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_event_half_an_hour_ahead_is_accepted() {
    let server = TestServer::start().await;
    assert_eq!(grpc_create(&server, vec![login_in("soon-1", HOUR / 2)]).await.unwrap(), 1);
    let (code, json) = rest_create(&server, &[login_in("soon-2", HOUR / 2)]).await;
    assert_eq!((code, json["created_count"].as_i64()), (200, Some(1)), "{json}");
    assert_eq!(around_now(&server).await, vec![("session.login".into(), 2, 0)]);
    assert_eq!(stored_events(&server.db_path).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn the_event_too_far_ahead_is_named_by_its_index_and_its_batch_refused() {
    let server = TestServer::start().await;
    let batch = vec![
        login_in("b-0", -HOUR),
        login_in("b-1", 0),
        login_in("b-2", HOUR / 2),
        login_in("b-3", 2 * HOUR),
        login_in("b-4", -2 * HOUR),
    ];
    assert_refused(&server, batch, "events[3].timestamp").await;
    assert_eq!(stored_events(&server.db_path).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn the_bound_is_the_configured_skew() {
    let strict = TestServer::start_with(|c| c.max_future_skew = Duration::ZERO).await;
    assert_refused(&strict, vec![login_in("z-1", HOUR / 2)], "events[0].timestamp").await;
    assert_eq!(grpc_create(&strict, vec![login_in("z-2", -HOUR / 2)]).await.unwrap(), 1);
    strict.stop().await;

    let lenient = TestServer::start_with(|c| c.max_future_skew = Duration::from_secs(3 * HOUR as u64)).await;
    assert_eq!(grpc_create(&lenient, vec![login_in("l-1", 2 * HOUR)]).await.unwrap(), 1);
    assert_refused(&lenient, vec![login_in("l-2", 4 * HOUR)], "events[0].timestamp").await;
    lenient.stop().await;
}
