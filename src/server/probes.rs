//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers),
//! for load balancers and orchestrators; no authentication.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::service::AuditService;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn healthz() -> Response<Bytes> {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

pub async fn readyz(service: &AuditService) -> Response<Bytes> {
    match tokio::time::timeout(READY_TIMEOUT, service.ready()).await {
        Ok(Ok(())) => json(StatusCode::OK, r#"{"status":"ready"}"#),
        Ok(Err(_)) | Err(_) => json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"database unavailable"}"#),
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
