//! gRPC-web answers always carry their status in a trailer frame of the body.
//! The gRPC core answers errors "trailers-only" (status in the headers), which
//! the gRPC-web protocol tolerates but not every browser client reads; moving
//! the status into the body makes every gRPC-web error look the same.

use base64::Engine;
use bytes::{BufMut, BytesMut};
use http::{HeaderMap, Response, header};

const STATUS_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Rewrites a trailers-only gRPC-web answer into headers + one trailer frame.
pub fn status_into_body(response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
    if !response.headers().contains_key("grpc-status") {
        return response;
    }
    let text_mode = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc-web-text"));
    let (mut parts, _empty) = response.into_parts();
    // The status leaves the headers: keep it readable for the request's telemetry.
    if let Some(code) = parts.headers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok()) {
        parts.extensions.insert(crate::telemetry::GrpcStatusCode(code));
    }
    let frame = trailer_frame(&mut parts.headers);
    let body = if text_mode {
        bytes::Bytes::from(base64::engine::general_purpose::STANDARD.encode(&frame))
    } else {
        frame.freeze()
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, tonic::body::Body::new(http_body_util::Full::new(body)))
}

fn trailer_frame(headers: &mut HeaderMap) -> BytesMut {
    let mut block = Vec::new();
    for name in STATUS_HEADERS {
        if let Some(value) = headers.remove(name) {
            block.extend_from_slice(name.as_bytes());
            block.push(b':');
            block.extend_from_slice(value.as_bytes());
            block.extend_from_slice(b"\r\n");
        }
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(0x80);
    frame.put_u32(block.len() as u32);
    frame.put_slice(&block);
    frame
}
