//! Rate limiting per caller: GCRA (`governor`) keyed by the token's subject and
//! organization, separately for read and write calls (the method table's class of
//! the RPC, from its proto options). It sits right inside
//! authentication because the key is the verified principal; a refused call gets
//! RESOURCE_EXHAUSTED with `google.rpc.RetryInfo`, which REST turns into 429 with
//! `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{Request, Response};
use tower::{Layer, Service};

use crate::auth::Principal;
use crate::config::RateLimits;
use crate::error::Error;
use crate::methods::{Class, MethodTable};

/// Keys not seen for a while are dropped after this many checks, so that the
/// map stays as small as the set of recently active callers.
const CLEANUP_EVERY: u64 = 4096;

/// `(subject, organization or "*")`: a platform-wide token and an organization
/// token of the same subject are different callers.
type Key = (String, String);

#[derive(Clone)]
pub struct RateLimitLayer {
    inner: Option<Arc<Limiters>>,
}

struct Limiters {
    read: Option<DefaultKeyedRateLimiter<Key>>,
    write: Option<DefaultKeyedRateLimiter<Key>>,
    methods: MethodTable,
    checks: AtomicU64,
}

impl RateLimitLayer {
    /// `None` limits for a rate of 0; the layer passes everything when both are off.
    pub fn new(limits: &RateLimits, methods: &MethodTable) -> Self {
        let quota = |per_sec: u32, burst: u32| {
            NonZeroU32::new(per_sec)
                .map(|rate| Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate)))
        };
        let read = quota(limits.read_per_sec, limits.read_burst).map(DefaultKeyedRateLimiter::keyed);
        let write = quota(limits.write_per_sec, limits.write_burst).map(DefaultKeyedRateLimiter::keyed);
        if read.is_none() && write.is_none() {
            return Self { inner: None };
        }
        Self { inner: Some(Arc::new(Limiters { read, write, methods: methods.clone(), checks: AtomicU64::new(0) })) }
    }
}

impl Limiters {
    /// How long the caller must wait, when over its rate. A path the table does not
    /// know is left to the router, which answers UNIMPLEMENTED.
    fn check(&self, path: &str, principal: &Principal) -> Option<Duration> {
        let limiter = match self.methods.get(path)?.class() {
            Class::Read => self.read.as_ref()?,
            Class::Write => self.write.as_ref()?,
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == CLEANUP_EVERY - 1 {
            for limiter in [&self.read, &self.write].into_iter().flatten() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        let key = (principal.subject.clone(), principal.org_id.as_ref().map_or("*", |org| org.as_str()).to_owned());
        match limiter.check_key(&key) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, limiters: self.inner.clone() }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiters: Option<Arc<Limiters>>,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refused = self.limiters.as_ref().and_then(|limiters| {
            // No principal: an open service (health, reflection), never limited here.
            let principal = request.extensions().get::<Principal>()?;
            limiters.check(request.uri().path(), principal)
        });
        match refused {
            Some(retry_after) => {
                tracing::debug!(
                    path = request.uri().path(),
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited"
                );
                // At least a millisecond, so the answer always carries a delay and
                // REST always says 429 rather than 413.
                let error = Error::RateLimited { retry_after: retry_after.max(Duration::from_millis(1)) };
                Box::pin(async move { Ok(error.to_status().into_http()) })
            }
            None => Box::pin(self.inner.call(request)),
        }
    }
}
