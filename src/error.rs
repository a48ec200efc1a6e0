//! The service's semantic errors, and the one place that turns them into a gRPC
//! `Status` and into an HTTP status with the AIP-193 JSON body.

mod violations;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

pub use self::violations::Violations;
use crate::wire::status::GrpcCode;

/// Domain of the `google.rpc.ErrorInfo` details the service attaches.
pub const ERROR_DOMAIN: &str = "audit.avnology.com";
/// `ErrorInfo.metadata` key naming the scope a refused call needed.
pub const REQUIRED_SCOPE_KEY: &str = "required_scope";

/// One invalid field of a request, as `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

impl fmt::Display for FieldViolation {
    /// How a message names a violation: "end_time must be after start_time".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.description)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; each violation names a field.
    #[error("{message}")]
    InvalidArgument { message: String, violations: Vec<FieldViolation> },
    /// No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// Verified caller without the right: missing scope or another tenant.
    #[error("{message}")]
    PermissionDenied { message: String, required_scope: String },
    /// The resource does not exist, or the caller may not know that it does: both
    /// answer alike.
    #[error("{0}")]
    NotFound(String),
    /// No REST route matches the path.
    #[error("no route for {path}")]
    RouteNotFound { path: String },
    /// The path exists, but not for this HTTP method.
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<http::Method> },
    /// A body or message over the configured size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A request target (path and query) over the configured length.
    #[error("{0}")]
    UriTooLong(String),
    /// Too many requests; the caller may retry after the delay.
    #[error("rate limit exceeded")]
    RateLimited { retry_after: Duration },
    /// A dependency (the database) cannot answer now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// Anything unexpected. Logged whole, answered as "internal error".
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// INVALID_ARGUMENT for one invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Violations::default();
        violations.push(field, description);
        violations.into_error()
    }

    /// The gRPC status of this error, details in `grpc-status-details-bin`.
    pub fn to_status(&self) -> tonic::Status {
        let mut details = ErrorDetails::new();
        let code = match self {
            Self::InvalidArgument { violations, .. } => {
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Code::InvalidArgument
            }
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied { required_scope, .. } => {
                details.set_error_info(
                    "PERMISSION_DENIED",
                    ERROR_DOMAIN,
                    [(REQUIRED_SCOPE_KEY.to_owned(), required_scope.clone())],
                );
                Code::PermissionDenied
            }
            Self::NotFound(_) | Self::RouteNotFound { .. } => Code::NotFound,
            Self::MethodNotAllowed { .. } => Code::Unimplemented,
            Self::TooLarge(_) | Self::UriTooLong(_) => Code::ResourceExhausted,
            Self::RateLimited { retry_after } => {
                details.set_retry_info(Some(*retry_after));
                Code::ResourceExhausted
            }
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal(error) => {
                tracing::error!(error = ?error, "internal error");
                return tonic::Status::internal("internal error");
            }
        };
        tonic::Status::with_error_details(code, self.to_string(), details)
    }

    /// The HTTP answer of this error for REST clients.
    pub fn to_http(&self) -> Response<Bytes> {
        let status = self.to_status();
        match self {
            Self::MethodNotAllowed { allow } => {
                let mut response = http_answer(&status, StatusCode::METHOD_NOT_ALLOWED);
                let allow = allow.iter().map(http::Method::as_str).collect::<Vec<_>>().join(", ");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }
            // gRPC has no status of its own for it; HTTP does.
            Self::UriTooLong(_) => http_answer(&status, StatusCode::URI_TOO_LONG),
            Self::InvalidArgument { .. }
            | Self::Unauthenticated(_)
            | Self::PermissionDenied { .. }
            | Self::NotFound(_)
            | Self::RouteNotFound { .. }
            | Self::TooLarge(_)
            | Self::RateLimited { .. }
            | Self::Unavailable(_)
            | Self::DeadlineExceeded
            | Self::Internal(_) => status_to_http(&status),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

/// HTTP status of a gRPC code, as in googleapis `google/rpc/code.proto`.
pub fn http_status_of(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status code"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// Canonical name of a gRPC code, the `status` field of the AIP-193 body.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Turns a gRPC status (ours, or one the transport produced) into the REST answer:
/// HTTP status, `WWW-Authenticate` / `Retry-After` where the contract wants them,
/// and the AIP-193 envelope carrying the same details as `grpc-status-details-bin`.
pub fn status_to_http(status: &tonic::Status) -> Response<Bytes> {
    let retry_after = status.get_details_retry_info().and_then(|info| info.retry_delay);
    let http_status = match status.code() {
        // Without a retry delay the limit hit is a size limit, not a rate.
        Code::ResourceExhausted if retry_after.is_none() => StatusCode::PAYLOAD_TOO_LARGE,
        code => http_status_of(code),
    };
    http_answer(status, http_status)
}

fn http_answer(status: &tonic::Status, http_status: StatusCode) -> Response<Bytes> {
    let details = status.get_error_details();
    let retry_after = details.retry_info().and_then(|info| info.retry_delay);
    let body = serde_json::json!({
        "error": {
            "code": http_status.as_u16(),
            "status": code_name(status.code()),
            "message": status.message(),
            "details": details_json(&details),
        }
    });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = http_status;
    // The code the body names, for the request's telemetry.
    response.extensions_mut().insert(GrpcCode(status.code()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    match status.code() {
        Code::Unauthenticated => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#));
        }
        Code::PermissionDenied => {
            let scope = details
                .error_info()
                .and_then(|info| info.metadata.get(REQUIRED_SCOPE_KEY))
                .filter(|scope| scope.chars().all(|c| c.is_ascii_graphic() && c != '"'));
            let challenge = match scope {
                Some(scope) => format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                None => r#"Bearer error="insufficient_scope""#.to_owned(),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        Code::ResourceExhausted => {
            if let Some(delay) = retry_after {
                let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
        }
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => {}
    }
    response
}

/// The `details` array of the AIP-193 body, in the proto3 JSON form of each message.
fn details_json(details: &ErrorDetails) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Some(bad_request) = details.bad_request() {
        let violations: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| serde_json::json!({ "field": v.field, "description": v.description }))
            .collect();
        out.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        }));
    }
    if let Some(info) = details.error_info() {
        out.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(delay) = details.retry_info().and_then(|info| info.retry_delay) {
        out.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", delay.as_secs_f64()),
        }));
    }
    out
}
