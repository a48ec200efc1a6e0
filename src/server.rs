//! The server: `build(config, listener)` wires store, auth and protocols onto a
//! listener the caller bound; `serve` runs it until the shutdown signal, then
//! drains in-flight requests and closes the database.

mod authn;
mod probes;
mod stack;
mod web_trailers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tonic_health::server::HealthReporter;

use crate::auth::Verifier;
use crate::config::{AuthSettings, Config};
use crate::grpc::GrpcAdapter;
use crate::proto::{FILE_DESCRIPTOR_SET, audit::audit_service_server::AuditServiceServer};
use crate::service::AuditService;
use crate::store::{self, DynStore};

pub use stack::HttpService;

/// Slow or idle HTTP/1 clients may not hold a connection open without sending headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    listener: TcpListener,
    stack: HttpService,
    store: DynStore,
    health: HealthReporter,
    drain_timeout: Duration,
}

/// Builds the server on an already bound listener (tests bind port 0).
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Server> {
    let store = store::open(&config.database_url).await.context("opening the database")?;
    let verifier = match &config.auth {
        AuthSettings::Keys(keys) => Verifier::from_config(keys).await.context("loading token keys")?,
        AuthSettings::Demo { secret } => Verifier::hs256(secret),
    };
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).context("decoding the descriptor set")?;
    let service = AuditService::new(store.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuditServiceServer<GrpcAdapter>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let audit = GrpcAdapter::new(service.clone()).into_server().max_decoding_message_size(config.max_request_bytes);
    let grpc_routes = tonic::service::Routes::new(audit).add_service(health_service).add_service(reflection);

    let cors_origins = config
        .cors_origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin).with_context(|| format!("bad CORS origin {origin:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stack = stack::build_stack(stack::Parts {
        grpc_routes,
        auth: authn::AuthLayer::new(Arc::new(verifier), &pool)?,
        service,
        cors_origins,
        max_request_bytes: config.max_request_bytes,
        rest_descriptors: pool,
    })?;
    Ok(Server { listener, stack, store, health, drain_timeout: config.drain_timeout })
}

impl Server {
    /// The store, for demo seeding before serving.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish within the drain timeout, and closes the database.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server { listener, stack, store, health, drain_timeout } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(stack.clone()))
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, error = %error, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!(timeout_s = drain_timeout.as_secs(), "shutting down: draining in-flight requests");
        health.set_not_serving::<AuditServiceServer<GrpcAdapter>>().await;
        if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!("drain timeout passed; closing remaining connections");
        }
        store.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
