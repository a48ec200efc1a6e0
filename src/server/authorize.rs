//! The one authentication point: a tower layer in front of the gRPC services,
//! which gRPC-web and REST also pass through. It verifies the bearer token, checks
//! the scope the method table says the RPC requires, and hands the verified
//! `Principal` to the service in the request extensions.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use crate::auth::{AuthError, Principal, Verifier};
use crate::error::Error;
use crate::methods::{Access, MethodTable};

/// Paths the table does not know still need a valid token under this prefix, the
/// API's: the router then answers UNIMPLEMENTED without revealing anything.
const GUARDED_PACKAGE: &str = "avnology.";

#[derive(Clone)]
pub struct AuthorizeLayer {
    verifier: Arc<Verifier>,
    methods: MethodTable,
}

impl AuthorizeLayer {
    pub fn new(verifier: Arc<Verifier>, methods: MethodTable) -> Self {
        for method in methods.iter().filter(|method| method.access() == &Access::Closed) {
            tracing::warn!(method = method.full_name(), "method lacks required_scope; every call to it is refused");
        }
        Self { verifier, methods }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthorizeLayer,
}

impl AuthorizeLayer {
    /// Verifies the caller of the RPC at `grpc_path` from the request headers
    /// alone, so that no body byte is read for a caller who is not allowed in.
    /// `None` for the methods that need no token (health, reflection).
    pub async fn authorize(&self, grpc_path: &str, headers: &HeaderMap) -> Result<Option<Principal>, Error> {
        // `None`: any valid token, for a path the table does not know.
        let scope = match self.methods.get(grpc_path).map(|method| method.access()) {
            Some(Access::Scope(scope)) => Some(scope.clone()),
            Some(Access::Open) => return Ok(None),
            Some(Access::Closed) => {
                return Err(Error::PermissionDenied {
                    message: "method is not callable".into(),
                    required_scope: String::new(),
                });
            }
            None if grpc_path.trim_start_matches('/').starts_with(GUARDED_PACKAGE) => None,
            None => return Ok(None),
        };
        let header = headers.get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
        let principal = self.verifier.verify_header(header).await.map_err(into_error)?;
        if let Some(scope) = &scope
            && !principal.has_scope(scope)
        {
            return Err(Error::PermissionDenied {
                message: format!("token lacks scope {scope}"),
                required_scope: scope.to_string(),
            });
        }
        Ok(Some(principal.authorized_for(scope)))
    }
}

impl<S, B> Service<Request<B>> for Authorize<S>
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

fn into_error(error: AuthError) -> Error {
    match error {
        AuthError::Missing => Error::Unauthenticated("missing bearer token".into()),
        AuthError::Invalid(reason) => Error::Unauthenticated(format!("invalid token: {reason}")),
    }
}
