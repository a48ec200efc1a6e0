//! One unary gRPC call made in process: frame the message, run it through the
//! gRPC tower stack, read the single reply frame and the status trailers.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::wire::frame::{self, NotOneFrame};

/// The gRPC stack as REST and gRPC-web see it.
pub type GrpcService =
    tower::util::BoxCloneSyncService<Request<tonic::body::Body>, Response<tonic::body::Body>, Infallible>;

/// Request headers that belong to the HTTP hop, not to the RPC.
fn forwardable(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "content-type"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "upgrade"
            | "host"
            | "accept-encoding"
            | "content-encoding"
            | "proxy-connection"
    ) && !name.as_str().starts_with("grpc-")
}

pub async fn unary(
    grpc: &GrpcService,
    path: &str,
    headers: &HeaderMap,
    principal: Option<crate::auth::Principal>,
    message: Vec<u8>,
) -> Result<Bytes, tonic::Status> {
    let frame = frame::encode(frame::MESSAGE, &message)
        .map_err(|frame::TooLong| tonic::Status::resource_exhausted("request too large"))?;

    let mut request = Request::new(tonic::body::Body::new(http_body_util::Full::new(frame)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = path.parse().map_err(|_| tonic::Status::internal("bad route path"))?;
    *request.version_mut() = http::Version::HTTP_2;
    let forwarded = request.headers_mut();
    for (name, value) in headers.iter().filter(|(name, _)| forwardable(name)) {
        forwarded.append(name.clone(), value.clone());
    }
    forwarded.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    forwarded.insert(header::TE, HeaderValue::from_static("trailers"));
    // Verified before the body was read; the auth layer takes it from here.
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }

    let Ok(response) = grpc.clone().oneshot(request).await;
    let (parts, body) = response.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers)
        && status.code() != tonic::Code::Ok
    {
        return Err(status);
    }
    let collected = body.collect().await.map_err(|e| {
        tracing::error!(error = %e, "in-process grpc reply failed");
        tonic::Status::internal("internal error")
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    match tonic::Status::from_header_map(&trailers) {
        Some(status) if status.code() != tonic::Code::Ok => return Err(status),
        Some(_) => {}
        None => return Err(tonic::Status::internal("internal error")),
    }
    let len = data.len();
    frame::single(frame::MESSAGE, data).map_err(|error| {
        match error {
            NotOneFrame::Prefix => tracing::error!(len, "in-process grpc reply is not one uncompressed frame"),
            NotOneFrame::Length { declared, got } => {
                tracing::error!(expected = declared, got, "in-process grpc reply frame length mismatch");
            }
        }
        tonic::Status::internal("internal error")
    })
}
