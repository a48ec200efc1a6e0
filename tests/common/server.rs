//! The real server on 127.0.0.1:0 over a fresh SQLite file, the secret it trusts and
//! the tokens it accepts, and clients for native gRPC, REST over HTTP/1.1 and h2c.
//! Shared by the api, api_env and telemetry test targets (and the memory benchmark,
//! for its secret and tokens); gRPC-web is grpc_web.rs.

// Each target uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use audit_service::config::{AuthSettings, Config};
use audit_service::proto::audit::{self as pb, audit_service_client::AuditServiceClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Far longer than anything here takes on a loaded machine: only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The HS256 secret every test server trusts, and [`token`] signs with.
pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// The server in this process, its listeners on ephemeral ports.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    /// `http://` and the admin listener's address, when the server has one.
    pub admin_base: Option<String>,
    pub db_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh database, after `adjust` changed its settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("audit.db");
        let mut server = Self::start_on(&db_path, adjust).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server with an admin listener too, on a fresh database.
    pub async fn start_with_admin(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let mut server = Self::start_listening(&dir.path().join("audit.db"), Some(admin), adjust).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing (or new) database file.
    pub async fn start_on(db_path: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_listening(db_path, None, adjust).await
    }

    async fn start_listening(
        db_path: &std::path::Path,
        admin: Option<TcpListener>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(
            format!("sqlite://{}", db_path.display()),
            AuthSettings::Keys(audit_service::auth::AuthConfig {
                jwt_secret: Some(SECRET.into()),
                ..audit_service::auth::AuthConfig::default()
            }),
        );
        config.cors_origins = vec!["https://dashboard.example".into()];
        // Tests send bursts no caller would; the rate limit tests turn limits on.
        config.limits.rate = audit_service::config::RateLimits::OFF;
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut listeners = audit_service::server::Listeners::from(listener);
        if let Some(admin) = admin {
            listeners = listeners.with_admin(admin);
        }
        let server = audit_service::server::build(config, listeners).await.expect("server builds");
        let addr = server.local_addr();
        let admin_base = server.admin_addr().map(|admin| format!("http://{admin}"));
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            admin_base,
            db_path: db_path.to_owned(),
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: None,
        }
    }

    /// A connection for any gRPC client (health, reflection, a raw codec).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.base.clone()).unwrap().connect().await.expect("grpc connects")
    }

    pub async fn grpc(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel().await)
    }

    /// Stops the server and waits for its drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server ends cleanly");
        }
    }

    /// Stores events through gRPC with a platform-wide writer token.
    pub async fn seed(&self, events: Vec<pb::AuditEvent>) {
        for chunk in events.chunks(1000) {
            let request = authed(pb::BatchCreateEventsRequest { events: chunk.to_vec() }, &writer());
            self.grpc().await.batch_create_events(request).await.expect("seed batch");
        }
    }
}

/// A token signed with the test secret.
pub fn token(scopes: &[&str], org: Option<&str>) -> String {
    audit_service::auth::mint_hs256(SECRET.as_bytes(), "usr_test", scopes, org, Duration::from_secs(600)).unwrap()
}

pub fn reader() -> String {
    token(&["audit:read"], None)
}

pub fn writer() -> String {
    token(&["audit:write"], None)
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn http1() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

pub fn http2() -> reqwest::Client {
    reqwest::Client::builder().http2_prior_knowledge().build().unwrap()
}

/// GET the summary over REST with the given raw query string.
pub async fn rest_summary(client: &reqwest::Client, base: &str, query: &str, token: &str) -> reqwest::Response {
    client.get(format!("{base}/v1/audit/events:summary?{query}")).bearer_auth(token).send().await.expect("request sent")
}

/// Buckets of a successful JSON summary as `(action, count, failure_count)`.
pub fn buckets(json: &serde_json::Value) -> Vec<(String, i64, i64)> {
    json["buckets"]
        .as_array()
        .expect("buckets array")
        .iter()
        .map(|b| {
            assert_eq!(b.as_object().unwrap().len(), 3, "exactly three fields: {b}");
            (
                b["action"].as_str().unwrap().to_owned(),
                b["count"].as_i64().expect("count is a JSON number"),
                b["failure_count"].as_i64().expect("failure_count is a JSON number"),
            )
        })
        .collect()
}

/// Number of rows in the events table, read straight from the SQLite file.
pub async fn stored_events(db_path: &std::path::Path) -> i64 {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db_path).read_only(true).connect().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await.unwrap()
}
