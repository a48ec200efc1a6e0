//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers),
//! for load balancers and orchestrators; no authentication.
//!
//! Readiness asks the database at most once per [`VERDICT_TTL`]: every answer in
//! that window, and every probe that arrives while the question is out, shares
//! one verdict. Probes skip the concurrency limit (shedding them would restart a
//! busy but healthy replica), so without this a flood of `/readyz` would be a
//! flood of database queries.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::service::AuditLog;

const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one database verdict answers `/readyz`.
pub const VERDICT_TTL: Duration = Duration::from_secs(1);

pub fn healthz() -> Response<Bytes> {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// The database's last verdict, shared by every listener's `/readyz`.
pub struct Readiness {
    service: AuditLog,
    /// When the verdict was reached, and whether the database answered. Held
    /// across the query, so probes arriving meanwhile wait for its verdict.
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn new(service: AuditLog) -> Self {
        Self { service, last: Mutex::new(None) }
    }

    pub async fn readyz(&self) -> Response<Bytes> {
        if self.ready().await {
            json(StatusCode::OK, r#"{"status":"ready"}"#)
        } else {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"database unavailable"}"#)
        }
    }

    async fn ready(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < VERDICT_TTL
        {
            return ready;
        }
        let ready = matches!(tokio::time::timeout(READY_TIMEOUT, self.service.ready()).await, Ok(Ok(())));
        // Timed from the answer: a slow database is asked again a full TTL later.
        *last = Some((Instant::now(), ready));
        ready
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
