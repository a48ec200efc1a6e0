//! The gRPC message size limit and framing, checked as the body streams in and
//! whatever the client spoke (gRPC-web is already unwrapped into gRPC frames
//! here): an oversized message is refused with RESOURCE_EXHAUSTED before its
//! payload is read. A unary call's body is read whole here and must be exactly one
//! uncompressed frame; anything else is the client's fault and answered
//! INVALID_ARGUMENT, where tonic would answer INTERNAL. tonic's own size limit
//! stays as a backstop, but it answers OUT_OF_RANGE, which is not what the
//! contract promises.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{BoxFuture, Either};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::error::Error;
use crate::methods::MethodTable;
use crate::wire::frame::{self, Deframer, PREFIX_LEN, Piece, Prefix};

#[derive(Clone)]
pub struct MessageLimitLayer {
    max_message_bytes: usize,
    /// Tells the methods that take one request message, whose body is read here.
    methods: MethodTable,
}

impl MessageLimitLayer {
    pub fn new(max_message_bytes: usize, methods: MethodTable) -> Self {
        Self { max_message_bytes, methods }
    }
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    layer: MessageLimitLayer,
}

impl<S> Service<Request<tonic::body::Body>> for MessageLimit<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<S::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let max = self.layer.max_message_bytes;
        if !self.layer.methods.get(request.uri().path()).is_some_and(|method| method.takes_one_message()) {
            return Either::Left(
                self.inner.call(request.map(|body| tonic::body::Body::new(FrameGuard::new(body, max)))),
            );
        }
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let (parts, body) = request.into_parts();
            match single_message(body, max).await {
                Ok(frame) => {
                    let body = tonic::body::Body::new(http_body_util::Full::new(frame));
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(error) => Ok(error.to_status().into_http()),
            }
        }))
    }
}

/// Reads a unary call's body: exactly one complete, uncompressed frame of at most
/// `max` bytes. Compression is not offered, so a compressed frame is a client error.
async fn single_message<B>(mut body: B, max: usize) -> Result<Bytes, Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut read = BytesMut::new();
    let mut declared: Option<usize> = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // A broken gRPC-web encoding (bad base64) or a reset stream.
            return Err(Error::invalid("body", "could not be read as a gRPC message"));
        };
        let Ok(data) = frame.into_data() else { continue };
        read.extend_from_slice(&data);
        if declared.is_none()
            && let Some(prefix) = Prefix::read(&read)
        {
            match prefix.flag {
                frame::MESSAGE => {}
                frame::COMPRESSED => {
                    return Err(Error::invalid("body", "holds a compressed message, but no compression is offered"));
                }
                _ => return Err(Error::invalid("body", "is not gRPC message framing")),
            }
            let length = prefix.len as usize;
            if length > max {
                return Err(Error::TooLarge(format!(
                    "request message of {length} bytes exceeds the limit of {max} bytes"
                )));
            }
            read.reserve(length.saturating_sub(read.len() - PREFIX_LEN));
            declared = Some(length);
        }
        if let Some(length) = declared
            && read.len() > PREFIX_LEN + length
        {
            return Err(Error::invalid("body", "holds more than one message; this method takes one"));
        }
    }
    match declared {
        None if read.is_empty() => Err(Error::invalid("body", "holds no message; this method takes one")),
        None => Err(Error::invalid("body", "ends inside a message header")),
        Some(length) if read.len() < PREFIX_LEN + length => Err(Error::invalid(
            "body",
            format!("ends after {} of the message's {length} bytes", read.len() - PREFIX_LEN),
        )),
        Some(_) => Ok(read.freeze()),
    }
}

/// Passes the body through unchanged while following the frame boundaries.
pub struct FrameGuard<B> {
    inner: B,
    max_message_bytes: usize,
    frames: Deframer,
    failed: bool,
}

impl<B> FrameGuard<B> {
    pub fn new(inner: B, max_message_bytes: usize) -> Self {
        Self { inner, max_message_bytes, frames: Deframer::default(), failed: false }
    }

    /// Follows `chunk` through the frame structure; the error when a frame
    /// declares more than the limit.
    pub fn inspect(&mut self, mut chunk: &[u8]) -> Result<(), tonic::Status> {
        while let Some(piece) = self.frames.next(&mut chunk) {
            if let Piece::Prefix(Prefix { len: declared, .. }) = piece
                && declared as usize > self.max_message_bytes
            {
                return Err(Error::TooLarge(format!(
                    "request message of {declared} bytes exceeds the limit of {} bytes",
                    self.max_message_bytes
                ))
                .to_status());
            }
        }
        Ok(())
    }
}

impl<B> Body for FrameGuard<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref()
            && let Err(status) = self.inspect(data.chunk())
        {
            self.failed = true;
            // tonic finds a `Status` in a body error and answers with it as is.
            return Poll::Ready(Some(Err(Box::new(status))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        frame::encode(frame::MESSAGE, &vec![7; len as usize]).unwrap().to_vec()
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        let mut stream = frame(10);
        stream.extend(frame(0));
        stream.extend(frame(100));
        for split in 0..stream.len() {
            let mut guard = FrameGuard::new((), 100);
            assert!(guard.inspect(&stream[..split]).is_ok());
            assert!(guard.inspect(&stream[split..]).is_ok());
            assert!(guard.frames.at_boundary());
        }
        let mut over = frame(3);
        over.extend_from_slice(&[0, 0, 0, 0, 101]);
        for split in 0..over.len() {
            let mut guard = FrameGuard::new((), 100);
            let result = guard.inspect(&over[..split]).and_then(|()| guard.inspect(&over[split..]));
            assert_eq!(result.unwrap_err().code(), tonic::Code::ResourceExhausted);
        }
    }
}
