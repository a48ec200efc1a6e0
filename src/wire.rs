//! How requests and answers look on the wire, beneath every protocol adapter and
//! layer: which protocol a request speaks, the gRPC message frame, and where an
//! answer states how its call ended. It uses no other module of the crate, so the
//! server, the REST transcoder and telemetry can all build on it.

pub mod frame;
pub mod status;
pub mod web;

use http::{HeaderValue, Request, header};

/// The protocol a request speaks, told by its content type alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    GrpcWeb,
    /// REST/JSON, and every plain HTTP request (probes, metrics, the dashboard).
    Rest,
}

impl Protocol {
    pub fn of<B>(request: &Request<B>) -> Self {
        let content_type = request.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes).unwrap_or_default();
        if content_type.starts_with(b"application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Self::Grpc
        } else {
            Self::Rest
        }
    }

    /// The name metrics and spans give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Rest => "rest",
        }
    }
}
