//! The future bound of BatchCreateEvents on PostgreSQL: the batch is refused whole
//! there too (the SQLite cases are in tests/api/skew.rs).

use sqlx::Connection;

use crate::pg;
use crate::refusal::{HOUR, assert_refused, grpc_create, login_in};
use crate::server::TestServer;

pub async fn events_too_far_ahead_are_refused_on_postgres_too() {
    let db = pg::PgDatabase::create().await;
    let url = db.url.clone();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    assert_refused(&server, vec![login_in("pg-0", HOUR / 2), login_in("pg-1", 2 * HOUR)], "events[1].timestamp").await;
    let mut conn = db.connect().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, 0);
    assert_eq!(grpc_create(&server, vec![login_in("pg-2", HOUR / 2)]).await.unwrap(), 1);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, 1);
    conn.close().await.ok();
    server.stop().await;
    db.drop_now().await;
}
