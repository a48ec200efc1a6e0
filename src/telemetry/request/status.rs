//! How a request ended, and its report: the status its answer stated (read by
//! [`StatusWatch`] as the body passes), the code reported when it stated none,
//! whose fault a failure was, and the span fields, metrics and log line, all
//! written once when the body ends or is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use opentelemetry::trace::TraceContextExt as _;
use tonic::Code;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{Organization, Shared};
use crate::error::{code_name, http_status_of};
use crate::metrics::RequestLabels;
use crate::wire::Protocol;
use crate::wire::status::StatusWatch;

/// Everything known when the response ends; reports once, on drop.
pub(super) struct Finish {
    shared: Arc<Shared>,
    span: tracing::Span,
    organization: Organization,
    protocol: Protocol,
    labels: RequestLabels,
    started: Instant,
    /// The answer, once there is one.
    answer: Option<StatusWatch>,
    /// The body reached its end (rather than the client going away).
    ended: bool,
    failed: bool,
}

impl Finish {
    pub(super) fn new(
        shared: Arc<Shared>,
        span: tracing::Span,
        organization: Organization,
        protocol: Protocol,
        labels: RequestLabels,
    ) -> Self {
        let started = Instant::now();
        Self { shared, span, organization, protocol, labels, started, answer: None, ended: false, failed: false }
    }

    /// The answer, its body watched for its status and its end.
    pub(super) fn observe(mut self, response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
        self.answer = Some(StatusWatch::new(self.protocol, &response));
        response.map(|body| tonic::body::Body::new(Observed { body, finish: Some(self) }))
    }

    fn http_status(&self) -> Option<StatusCode> {
        self.answer.as_ref().map(StatusWatch::http_status)
    }

    /// The request's status as a gRPC code, whatever the protocol: the one its
    /// answer stated, else the one the HTTP status or the body's fate stands for.
    fn code(&self) -> Code {
        let Some(answer) = &self.answer else { return Code::Cancelled };
        let http_status = answer.http_status();
        match self.protocol {
            Protocol::Rest => match answer.code() {
                Some(code) if code != Code::Ok => code,
                _ => code_of_http(http_status),
            },
            Protocol::Grpc | Protocol::GrpcWeb => answer.code().unwrap_or(if self.failed {
                Code::Unknown
            } else if !self.ended {
                Code::Cancelled
            } else if http_status != StatusCode::OK {
                code_of_http(http_status)
            } else {
                Code::Unknown
            }),
        }
    }

    /// Whether the server, not the caller, is at fault, as the OpenTelemetry
    /// conventions define it for gRPC and HTTP server spans.
    fn server_fault(&self, code: Code) -> bool {
        match (self.protocol, self.http_status()) {
            (_, None) => false,
            (Protocol::Rest, Some(status)) => status.is_server_error(),
            _ => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let code = self.code();
        let name = code_name(code);
        let span = &self.span;
        let http_status = self.http_status();
        if let Some(status) = http_status {
            span.record("http.response.status_code", status.as_u16());
        }
        // Every gRPC answer has a gRPC status; a REST request has one when it
        // called an RPC.
        if self.labels.names_rpc() || self.protocol != Protocol::Rest {
            span.record("rpc.grpc.status_code", code as i64);
        }
        if code != Code::Ok {
            span.record("error.type", name);
        }
        if self.server_fault(code) {
            span.record("otel.status_code", "ERROR");
        }
        self.shared.metrics.request_finished(&self.labels, name, elapsed);

        let context = span.context();
        let ids = context.span().span_context().clone();
        let (trace_id, span_id) =
            if ids.is_valid() { (ids.trace_id().to_string(), ids.span_id().to_string()) } else { Default::default() };
        let organization = self.organization.get().map_or("-", |org| &**org);
        span.in_scope(|| {
            tracing::info!(
                trace_id,
                span_id,
                rpc = self.labels.rpc_name(),
                protocol = self.protocol.name(),
                status = http_status.map_or(0, |s| s.as_u16()),
                code = name,
                latency_ms = elapsed.as_micros() as f64 / 1000.0,
                org = organization,
                "request served"
            );
        });
    }
}

/// The gRPC code an HTTP status stands for (the reverse of `http_status_of`,
/// with 405, 413 and 414 as this service answers them).
fn code_of_http(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=399 => Code::Ok,
        405 => Code::Unimplemented,
        413 | 414 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        other => [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Aborted,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unimplemented,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ]
        .into_iter()
        .find(|code| http_status_of(*code).as_u16() == other)
        .unwrap_or(Code::Unknown),
    }
}

/// The response body, watched for its status and its end.
struct Observed {
    body: tonic::body::Body,
    finish: Option<Finish>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(answer) = this.finish.as_mut().and_then(|finish| finish.answer.as_mut()) {
                    answer.frame(frame);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut finish) = this.finish.take() {
                    finish.failed = true;
                }
            }
            Poll::Ready(None) => {
                if let Some(mut finish) = this.finish.take() {
                    finish.ended = true;
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // hyper may drop a body that says it has ended without polling it again.
        if let Some(finish) = self.finish.as_mut() {
            finish.ended = self.body.is_end_stream();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_back_to_the_codes_the_service_answers_with() {
        let cases = [
            (200, Code::Ok),
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::NotFound),
            (405, Code::Unimplemented),
            (409, Code::Aborted),
            (413, Code::ResourceExhausted),
            (414, Code::ResourceExhausted),
            (429, Code::ResourceExhausted),
            (499, Code::Cancelled),
            (500, Code::Internal),
            (503, Code::Unavailable),
            (504, Code::DeadlineExceeded),
            (418, Code::Unknown),
        ];
        for (status, code) in cases {
            assert_eq!(code_of_http(StatusCode::from_u16(status).unwrap()), code, "{status}");
        }
    }
}
