//! gRPC-web answers always carry their status in a trailer frame of the body.
//! The gRPC core answers errors "trailers-only" (status in the headers), which
//! the gRPC-web protocol tolerates but not every browser client reads; moving
//! the status into the body makes every gRPC-web error look the same.

use http::{Response, header};

use crate::wire::web::{self, Encoding};

const STATUS_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Rewrites a trailers-only gRPC-web answer into headers + one trailer frame.
pub fn status_into_body(response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
    if !response.headers().contains_key("grpc-status") {
        return response;
    }
    let status = STATUS_HEADERS.iter().filter_map(|&name| Some((name, response.headers().get(name)?)));
    // A status too long for a frame stays where it is.
    let Ok(frame) = web::trailers_frame(status) else { return response };
    let body = Encoding::of(response.headers()).encode(frame);
    let (mut parts, _empty) = response.into_parts();
    for name in STATUS_HEADERS {
        parts.headers.remove(name);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, tonic::body::Body::new(http_body_util::Full::new(body)))
}
