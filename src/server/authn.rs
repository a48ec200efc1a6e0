//! The one authentication point: a tower layer in front of the gRPC services,
//! which gRPC-web and REST also pass through. It verifies the bearer token, checks
//! the scope the RPC's `required_scope` option names, and hands the verified
//! `Principal` to the service in the request extensions.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use prost_reflect::{DescriptorPool, Value};
use tower::{Layer, Service};

use crate::auth::{AuthError, Verifier};
use crate::error::Error;

/// Services whose every method requires a token. Health and reflection stay open
/// so that probes and `grpcurl describe` work without credentials.
const GUARDED_PACKAGE: &str = "avnology.";

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    /// gRPC path → the scope its method requires; `None` when the method lacks the
    /// option, which refuses every call to it.
    scopes: Arc<HashMap<String, Option<String>>>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<Verifier>, pool: &DescriptorPool) -> anyhow::Result<Self> {
        let extension = pool
            .get_extension_by_name("avnology.audit.v1.required_scope")
            .ok_or_else(|| anyhow::anyhow!("descriptor set lacks avnology.audit.v1.required_scope"))?;
        let mut scopes = HashMap::new();
        for service in pool.services().filter(|s| s.full_name().starts_with(GUARDED_PACKAGE)) {
            for method in service.methods() {
                let scope = match method.options().get_extension(&extension).into_owned() {
                    Value::String(scope) if !scope.is_empty() => Some(scope),
                    _ => None,
                };
                if scope.is_none() {
                    tracing::warn!(
                        method = method.full_name(),
                        "method lacks required_scope; every call to it is refused"
                    );
                }
                scopes.insert(format!("/{}/{}", service.full_name(), method.name()), scope);
            }
        }
        Ok(Self { verifier, scopes: Arc::new(scopes) })
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

enum Guard {
    Open,
    Scope(String),
    Closed,
}

impl<S> AuthService<S> {
    fn guard(&self, path: &str) -> Guard {
        if !path.trim_start_matches('/').starts_with(GUARDED_PACKAGE) {
            return Guard::Open;
        }
        match self.layer.scopes.get(path) {
            Some(Some(scope)) => Guard::Scope(scope.clone()),
            // Unknown methods of a guarded service still need a valid token; the
            // router then answers UNIMPLEMENTED without revealing anything.
            None => Guard::Scope(String::new()),
            Some(None) => Guard::Closed,
        }
    }
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let scope = match self.guard(request.uri().path()) {
            Guard::Open => return Box::pin(self.inner.call(request)),
            Guard::Scope(scope) => scope,
            Guard::Closed => {
                let error =
                    Error::PermissionDenied { message: "method is not callable".into(), required_scope: String::new() };
                return Box::pin(async move { Ok(error.to_status().into_http()) });
            }
        };
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.layer.verifier.clone();
        Box::pin(async move {
            let header = request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
            let principal = match verifier.verify_header(header).await {
                Ok(principal) => principal,
                Err(error) => return Ok(refusal(error).to_status().into_http()),
            };
            if !scope.is_empty() && !principal.has_scope(&scope) {
                let error =
                    Error::PermissionDenied { message: format!("token lacks scope {scope}"), required_scope: scope };
                return Ok(error.to_status().into_http());
            }
            request.extensions_mut().insert(principal);
            inner.call(request).await
        })
    }
}

fn refusal(error: AuthError) -> Error {
    match error {
        AuthError::Missing => Error::Unauthenticated("missing bearer token".into()),
        AuthError::Invalid(reason) => Error::Unauthenticated(format!("invalid token: {reason}")),
    }
}
