//! The server: `build(config, listeners)` wires store, auth and protocols onto
//! listeners the caller bound; `serve` runs it until the shutdown signal, then
//! drains in-flight requests and closes the database.

mod admin;
mod authorize;
mod cors;
mod grpc_web;
pub mod limits;
mod probes;
mod stack;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tonic_health::server::HealthReporter;

use crate::auth::Verifier;
use crate::config::{AuthSettings, Config, Limits};
use crate::grpc::GrpcAdapter;
use crate::methods::MethodTable;
use crate::metrics::Metrics;
use crate::paging::PageTokenKeys;
use crate::proto::{FILE_DESCRIPTOR_SET, audit::audit_service_server::AuditServiceServer};
use crate::service::AuditLog;
use crate::store::{self, DynStore};

pub use stack::HttpService;

/// The sockets a server answers on, bound by the caller ("bind first, pass the
/// listener in"): tests bind port 0, `main` binds the configured addresses.
pub struct Listeners {
    /// gRPC, gRPC-web, REST, the probes, and `/metrics` unless an admin listener is given.
    pub public: TcpListener,
    /// `/metrics`, `/healthz` and `/readyz` only; when given, `/metrics` leaves the
    /// public listener, so only who reaches this one sees platform-wide activity.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    pub fn with_admin(mut self, admin: TcpListener) -> Self {
        self.admin = Some(admin);
        self
    }
}

impl From<TcpListener> for Listeners {
    fn from(public: TcpListener) -> Self {
        Self { public, admin: None }
    }
}

pub struct Server {
    listener: TcpListener,
    stack: HttpService,
    /// The admin listener and what it serves.
    admin: Option<(TcpListener, HttpService)>,
    store: DynStore,
    health: HealthReporter,
    drain_timeout: Duration,
    limits: Limits,
    metrics: Metrics,
}

/// Builds the server on already bound listeners: a `TcpListener` for the public
/// one alone, or [`Listeners`] with an admin listener too.
pub async fn build(config: Config, listeners: impl Into<Listeners>) -> anyhow::Result<Server> {
    let Listeners { public: listener, admin: admin_listener } = listeners.into();
    // Settings first: a bad one is reported before anything is opened.
    let cors = cors::layer(&config.cors_origins)?;
    config.limits.check()?;
    let store = store::open(&config.database_url, &config.store).await.context("opening the database")?;
    let metrics = Metrics::new(crate::telemetry::resource(), crate::telemetry::metric_exporter()?)
        .context("setting up metrics")?;
    // Store spans, ingest counters and pool gauges, whichever database it is.
    let store = crate::telemetry::instrument_store(store, &config.database_url, &metrics);
    let verifier = match &config.auth {
        AuthSettings::Keys(keys) => Verifier::from_config(keys).await.context("loading token keys")?,
        AuthSettings::Demo { secret } => Verifier::hs256(secret),
    };
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).context("decoding the descriptor set")?;
    let methods = MethodTable::new(&pool).context("reading the methods' options")?;
    let page_token_keys = config.page_token_keys.clone().unwrap_or_else(|| {
        // The demo is one process by design; anywhere else this is worth a look.
        if !matches!(config.auth, AuthSettings::Demo { .. }) {
            tracing::warn!(
                "AUDIT_PAGE_TOKEN_KEYS is not set: ListEvents page tokens are signed with a key made at start, \
                 so they do not survive a restart and other replicas refuse them"
            );
        }
        PageTokenKeys::random()
    });
    let service = AuditLog::new(store.clone())
        .with_max_summary_range(config.limits.max_summary_range)
        .with_max_future_skew(config.max_future_skew)
        .with_page_token_keys(page_token_keys);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuditServiceServer<GrpcAdapter>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let audit = GrpcAdapter::new(service.clone()).into_server().max_decoding_message_size(config.max_request_bytes);
    // Health and reflection need no token: their streams get a lifetime, so nobody
    // holds one (and its concurrency slot) open for ever.
    let lifetime = config.limits.max_unauthenticated_stream;
    let grpc_routes = tonic::service::Routes::new(audit)
        .add_service(limits::stream::StreamLifetime::new(health_service, lifetime))
        .add_service(limits::stream::StreamLifetime::new(reflection, lifetime));
    let readiness = Arc::new(probes::Readiness::new(service.clone()));
    let admin = admin_listener.map(|listener| (listener, admin::service(readiness.clone(), metrics.clone())));

    let stack = stack::build_stack(stack::Parts {
        grpc_routes,
        auth: authorize::AuthorizeLayer::new(Arc::new(verifier), methods.clone()),
        cors,
        max_request_bytes: config.max_request_bytes,
        methods,
        limits: config.limits.clone(),
        dashboard: crate::dashboard::Dashboard::new(config.demo_token.clone()),
        metrics: metrics.clone(),
        readiness,
        metrics_on_public: admin.is_none(),
    })?;
    Ok(Server {
        listener,
        stack,
        admin,
        store,
        health,
        drain_timeout: config.drain_timeout,
        limits: config.limits,
        metrics,
    })
}

impl Server {
    /// The store, for demo seeding before serving.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The admin listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(listener, _)| listener.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish within the drain timeout, and closes the database.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server { listener, stack, admin, store, health, drain_timeout, limits, metrics } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Slow or idle HTTP/1 clients may not hold a connection open without
        // sending a complete request head, nor send an unbounded one.
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes);
        builder
            .http2()
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            // The admin listener's connections are served, drained and closed with
            // the public ones.
            let (accepted, service) = tokio::select! {
                accepted = listener.accept() => (accepted, &stack),
                accepted = accept(admin.as_ref()), if admin.is_some() => accepted,
                () = &mut shutdown => break,
            };
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
                .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service.clone()))
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%peer, error = %error, "connection ended with an error");
                }
            });
        }
        drop(admin);
        drop(listener);
        tracing::info!(timeout_s = drain_timeout.as_secs(), "shutting down: draining in-flight requests");
        health.set_not_serving::<AuditServiceServer<GrpcAdapter>>().await;
        if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!("drain timeout passed; closing remaining connections");
        }
        store.close().await;
        // The last values go out over OTLP before the process exits.
        metrics.shutdown().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

type Accepted = std::io::Result<(tokio::net::TcpStream, SocketAddr)>;

/// Accepts on the admin listener, with the service its connections get; only
/// polled when there is one.
async fn accept(admin: Option<&(TcpListener, HttpService)>) -> (Accepted, &HttpService) {
    match admin {
        Some((listener, service)) => (listener.accept().await, service),
        None => std::future::pending().await,
    }
}
