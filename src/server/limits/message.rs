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

/// gRPC length-prefixed message: 1 flag byte and a 4-byte big-endian length.
const PREFIX: usize = 5;

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
        if declared.is_none() && read.len() >= PREFIX {
            match read[0] {
                0 => {}
                1 => return Err(Error::invalid("body", "holds a compressed message, but no compression is offered")),
                _ => return Err(Error::invalid("body", "is not gRPC message framing")),
            }
            let length = u32::from_be_bytes([read[1], read[2], read[3], read[4]]) as usize;
            if length > max {
                return Err(Error::TooLarge(format!(
                    "request message of {length} bytes exceeds the limit of {max} bytes"
                )));
            }
            read.reserve(length.saturating_sub(read.len() - PREFIX));
            declared = Some(length);
        }
        if let Some(length) = declared
            && read.len() > PREFIX + length
        {
            return Err(Error::invalid("body", "holds more than one message; this method takes one"));
        }
    }
    match declared {
        None if read.is_empty() => Err(Error::invalid("body", "holds no message; this method takes one")),
        None => Err(Error::invalid("body", "ends inside a message header")),
        Some(length) if read.len() < PREFIX + length => {
            Err(Error::invalid("body", format!("ends after {} of the message's {length} bytes", read.len() - PREFIX)))
        }
        Some(_) => Ok(read.freeze()),
    }
}

/// Passes the body through unchanged while following the frame boundaries.
pub struct FrameGuard<B> {
    inner: B,
    max_message_bytes: usize,
    /// Bytes of the current frame's prefix seen so far.
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    failed: bool,
}

impl<B> FrameGuard<B> {
    pub fn new(inner: B, max_message_bytes: usize) -> Self {
        Self { inner, max_message_bytes, prefix: [0; PREFIX], prefix_len: 0, payload_left: 0, failed: false }
    }

    /// Follows `chunk` through the frame structure; the error when a frame
    /// declares more than the limit.
    pub fn inspect(&mut self, mut chunk: &[u8]) -> Result<(), tonic::Status> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let take = usize::try_from(self.payload_left).unwrap_or(usize::MAX).min(chunk.len());
                self.payload_left -= take as u64;
                chunk = &chunk[take..];
                continue;
            }
            let take = (PREFIX - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            chunk = &chunk[take..];
            if self.prefix_len == PREFIX {
                self.prefix_len = 0;
                let declared = u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]);
                if declared as usize > self.max_message_bytes {
                    return Err(Error::TooLarge(format!(
                        "request message of {declared} bytes exceeds the limit of {} bytes",
                        self.max_message_bytes
                    ))
                    .to_status());
                }
                self.payload_left = u64::from(declared);
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
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7, len as usize));
        out
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
            assert_eq!((guard.prefix_len, guard.payload_left), (0, 0));
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
