//! Limits on response bodies, which outlive the call that returned them: a
//! streaming answer keeps its concurrency slot until its body ends, and the
//! streams anyone may open without a token (gRPC health `Watch`, reflection)
//! end after a maximum lifetime.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tonic::server::NamedService;
use tower::Service;

/// A response body that holds a concurrency permit until it has ended (its last
/// frame handed out) or was dropped, whichever comes first.
pub struct PermitBody {
    inner: tonic::body::Body,
    permit: Option<OwnedSemaphorePermit>,
}

impl PermitBody {
    pub fn wrap(response: Response<tonic::body::Body>, permit: OwnedSemaphorePermit) -> Response<tonic::body::Body> {
        response.map(|inner| tonic::body::Body::new(Self { inner, permit: Some(permit) }))
    }
}

impl Body for PermitBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers() || self.inner.is_end_stream(),
            Poll::Pending => false,
        };
        // Freed before the last frame leaves: a client that has seen the end of its
        // answer finds the slot free again.
        if ended {
            self.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps a gRPC service whose calls need no token so that every response stream
/// it opens ends after `lifetime`, with `DEADLINE_EXCEEDED`: the server's deadline
/// for the stream, as `AUDIT_REQUEST_TIMEOUT_MS` is for a unary call. Clients
/// (health watchers, `grpcurl`) reconnect if they still need it.
#[derive(Clone)]
pub struct StreamLifetime<S> {
    inner: S,
    lifetime: Duration,
}

impl<S> StreamLifetime<S> {
    pub fn new(inner: S, lifetime: Duration) -> Self {
        Self { inner, lifetime }
    }
}

impl<S: NamedService> NamedService for StreamLifetime<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<tonic::body::Body>> for StreamLifetime<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let deadline = Instant::now() + self.lifetime;
        let lifetime = self.lifetime;
        // The client's side ends at the deadline too: a handler waiting for the next
        // request message (reflection) finishes, and the stream is gone for good.
        let request = request.map(|body| {
            tonic::body::Body::new(RequestUntil {
                inner: Some(body),
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
            })
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(response.map(|body| {
                tonic::body::Body::new(LifetimeBody {
                    inner: Some(body),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    lifetime,
                })
            }))
        })
    }
}

/// A request body that ends at the deadline, whatever the client still sends.
struct RequestUntil {
    inner: Option<tonic::body::Body>,
    deadline: Pin<Box<Sleep>>,
}

impl Body for RequestUntil {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.inner.is_some() && self.deadline.as_mut().poll(cx).is_ready() {
            self.inner = None;
        }
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        Pin::new(inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A gRPC response body that ends with a `DEADLINE_EXCEEDED` trailer once its
/// deadline passes. It is cut between frames, and the gRPC core hands out whole
/// messages per frame, so the client never sees half a message.
struct LifetimeBody {
    /// `None` once the body has ended, by itself or at the deadline.
    inner: Option<tonic::body::Body>,
    deadline: Pin<Box<Sleep>>,
    lifetime: Duration,
}

impl Body for LifetimeBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        // The deadline first: a stream with an answer always ready must end too.
        if self.deadline.as_mut().poll(cx).is_ready() {
            // Dropping the inner body ends the stream behind it (the watch, the
            // reflection session) at once.
            self.inner = None;
            tracing::debug!(lifetime_s = self.lifetime.as_secs(), "unauthenticated stream reached its lifetime");
            let status = tonic::Status::deadline_exceeded(format!(
                "stream lifetime of {} s reached; open a new stream to continue",
                self.lifetime.as_secs()
            ));
            let mut trailers = HeaderMap::new();
            return Poll::Ready(Some(match status.add_header(&mut trailers) {
                Ok(()) => Ok(Frame::trailers(trailers)),
                Err(status) => Err(status),
            }));
        }
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
