//! The one authentication point: a tower layer in front of the gRPC services,
//! which gRPC-web and REST also pass through. It verifies the bearer token, checks
//! the scope the RPC's `required_scope` option names, and hands the verified
//! `Principal` to the service in the request extensions.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use prost_reflect::{DescriptorPool, Value};
use tower::{Layer, Service};

use crate::auth::{AuthError, Principal, Verifier};
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

impl AuthLayer {
    fn guard(&self, path: &str) -> Guard {
        if !path.trim_start_matches('/').starts_with(GUARDED_PACKAGE) {
            return Guard::Open;
        }
        match self.scopes.get(path) {
            Some(Some(scope)) => Guard::Scope(scope.clone()),
            // Unknown methods of a guarded service still need a valid token; the
            // router then answers UNIMPLEMENTED without revealing anything.
            None => Guard::Scope(String::new()),
            Some(None) => Guard::Closed,
        }
    }

    /// Verifies the caller of the RPC at `grpc_path` from the request headers
    /// alone, so that no body byte is read for a caller who is not allowed in.
    /// `None` for the methods that need no token (health, reflection).
    pub async fn authorize(&self, grpc_path: &str, headers: &HeaderMap) -> Result<Option<Principal>, Error> {
        let scope = match self.guard(grpc_path) {
            Guard::Open => return Ok(None),
            Guard::Scope(scope) => scope,
            Guard::Closed => {
                return Err(Error::PermissionDenied {
                    message: "method is not callable".into(),
                    required_scope: String::new(),
                });
            }
        };
        let header = headers.get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
        let principal = self.verifier.verify_header(header).await.map_err(refusal)?;
        if !scope.is_empty() && !principal.has_scope(&scope) {
            return Err(Error::PermissionDenied {
                message: format!("token lacks scope {scope}"),
                required_scope: scope,
            });
        }
        Ok(Some(principal))
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
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The REST gateway authorizes before it reads the body and hands the
        // verified caller over in the extensions, which no client can set.
        if request.extensions().get::<Principal>().is_some() {
            return Box::pin(inner.call(request));
        }
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.authorize(request.uri().path(), request.headers()).await {
                Ok(Some(principal)) => {
                    request.extensions_mut().insert(principal);
                }
                Ok(None) => {}
                Err(error) => return Ok(error.to_status().into_http()),
            }
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
