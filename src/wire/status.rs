//! Where an answer states how its call ended, and the one reader that learns it
//! as the answer passes, whatever the protocol: the HTTP status from the head;
//! the gRPC status from the `grpc-status` header of a trailers-only answer, from
//! the HTTP/2 trailers that end a gRPC body, from the trailers frame that ends a
//! gRPC-web body (base64 in the text mode), or, for REST, from the [`GrpcCode`]
//! extension of an answer made from a gRPC status.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body::Frame;
use tonic::Code;

use super::Protocol;
use super::frame::{Deframer, Piece};
use super::web::{self, Encoding, TextDecoder};

/// Response extension of a REST answer made from a gRPC status: the code its JSON
/// body names, which its HTTP status does not always tell (400 stands for
/// INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcCode(pub Code);

/// The status of one answer: its head is read when it is made, then each frame
/// of its body as it passes.
#[derive(Debug)]
pub struct StatusWatch {
    http: StatusCode,
    /// The gRPC status, once the answer has stated it; the first statement holds.
    code: Option<Code>,
    /// Follows a gRPC-web body to its trailers frame.
    web: Option<WebBody>,
}

impl StatusWatch {
    /// Reads the head of the answer to a request that spoke `protocol`.
    pub fn new<B>(protocol: Protocol, response: &Response<B>) -> Self {
        let code = grpc_status(response.headers()).or_else(|| response.extensions().get::<GrpcCode>().map(|c| c.0));
        let web = (protocol == Protocol::GrpcWeb).then(|| WebBody::new(Encoding::of(response.headers())));
        Self { http: response.status(), code, web }
    }

    /// Reads one frame of the answer's body.
    pub fn frame(&mut self, frame: &Frame<Bytes>) {
        if self.code.is_some() {
            return;
        }
        if let Some(trailers) = frame.trailers_ref() {
            self.code = grpc_status(trailers);
        } else if let (Some(data), Some(web)) = (frame.data_ref(), self.web.as_mut()) {
            match web.read(data) {
                Ok(code) => self.code = code,
                // Not base64: no client could read a status from it either.
                Err(_) => self.web = None,
            }
        }
    }

    pub fn http_status(&self) -> StatusCode {
        self.http
    }

    /// The gRPC status the answer stated so far.
    pub fn code(&self) -> Option<Code> {
        self.code
    }
}

/// The `grpc-status` field of headers or trailers.
pub fn grpc_status(fields: &HeaderMap) -> Option<Code> {
    parse_code(fields.get("grpc-status")?.as_bytes())
}

fn parse_code(value: &[u8]) -> Option<Code> {
    std::str::from_utf8(value).ok()?.parse::<i32>().ok().map(Code::from)
}

/// A gRPC-web body read up to its trailers frame; message payloads are skipped.
#[derive(Debug)]
struct WebBody {
    text: Option<TextDecoder>,
    deframer: Deframer,
    /// The payload of the trailers frame being read.
    trailers: Option<Vec<u8>>,
}

impl WebBody {
    fn new(encoding: Encoding) -> Self {
        let text = (encoding == Encoding::Text).then(TextDecoder::default);
        Self { text, deframer: Deframer::default(), trailers: None }
    }

    /// The status of the trailers frame, once `data` completes it.
    fn read(&mut self, data: &[u8]) -> Result<Option<Code>, base64::DecodeError> {
        let decoded;
        let mut chunk = match &mut self.text {
            Some(decoder) => {
                decoded = decoder.decode(data)?;
                &decoded[..]
            }
            None => data,
        };
        while let Some(piece) = self.deframer.next(&mut chunk) {
            match piece {
                Piece::Prefix(prefix) => self.trailers = prefix.is_trailers().then(Vec::new),
                Piece::Payload(bytes) => {
                    if let Some(block) = &mut self.trailers {
                        block.extend_from_slice(bytes);
                    }
                }
            }
            if self.deframer.payload_left() == 0
                && let Some(block) = self.trailers.take()
            {
                return Ok(web::trailer(&block, "grpc-status").and_then(parse_code));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;
    use crate::wire::frame;

    fn answer(content_type: &str) -> Response<()> {
        let mut response = Response::new(());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        response
    }

    fn web_body(status: &'static str) -> Vec<u8> {
        let mut body = frame::encode(frame::MESSAGE, &[0x80; 7]).unwrap().to_vec();
        let status = HeaderValue::from_static(status);
        let message = HeaderValue::from_static("x");
        body.extend_from_slice(&web::trailers_frame([("grpc-message", &message), ("grpc-status", &status)]).unwrap());
        body
    }

    #[test]
    fn grpc_states_its_status_in_the_head_or_the_trailers() {
        let mut refused = answer("application/grpc");
        refused.headers_mut().insert("grpc-status", HeaderValue::from_static("16"));
        let mut watch = StatusWatch::new(Protocol::Grpc, &refused);
        assert_eq!(watch.code(), Some(Code::Unauthenticated));
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        watch.frame(&Frame::trailers(trailers.clone()));
        assert_eq!(watch.code(), Some(Code::Unauthenticated), "the head's status holds");

        let mut watch = StatusWatch::new(Protocol::Grpc, &answer("application/grpc"));
        watch.frame(&Frame::data(Bytes::from_static(b"\0\0\0\0\0")));
        assert_eq!(watch.code(), None);
        watch.frame(&Frame::trailers(trailers));
        assert_eq!((watch.code(), watch.http_status()), (Some(Code::Ok), StatusCode::OK));
    }

    #[test]
    fn grpc_web_states_its_status_in_the_trailers_frame_split_anywhere() {
        let body = web_body("7");
        for split in 0..=body.len() {
            let mut watch = StatusWatch::new(Protocol::GrpcWeb, &answer("application/grpc-web+proto"));
            watch.frame(&Frame::data(Bytes::copy_from_slice(&body[..split])));
            watch.frame(&Frame::data(Bytes::copy_from_slice(&body[split..])));
            assert_eq!(watch.code(), Some(Code::PermissionDenied), "{split}");
        }
        let text = Encoding::Text.encode(Bytes::from(web_body("0")));
        let mut watch = StatusWatch::new(Protocol::GrpcWeb, &answer("application/grpc-web-text"));
        watch.frame(&Frame::data(text.slice(..9)));
        assert_eq!(watch.code(), None);
        watch.frame(&Frame::data(text.slice(9..)));
        assert_eq!(watch.code(), Some(Code::Ok));
        // The same bytes are no status in a gRPC body.
        let mut watch = StatusWatch::new(Protocol::Grpc, &answer("application/grpc"));
        watch.frame(&Frame::data(Bytes::from(web_body("0"))));
        assert_eq!(watch.code(), None);
    }

    #[test]
    fn rest_states_its_status_in_an_extension() {
        let mut refused = answer("application/json");
        *refused.status_mut() = StatusCode::BAD_REQUEST;
        assert_eq!(StatusWatch::new(Protocol::Rest, &refused).code(), None);
        refused.extensions_mut().insert(GrpcCode(Code::OutOfRange));
        let watch = StatusWatch::new(Protocol::Rest, &refused);
        assert_eq!((watch.code(), watch.http_status()), (Some(Code::OutOfRange), StatusCode::BAD_REQUEST));
    }
}
