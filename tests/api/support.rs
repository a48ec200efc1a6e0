//! Test harness: the real server on 127.0.0.1:0 over a fresh SQLite file, tokens,
//! and clients for each protocol (tonic, HTTP/1.1 and HTTP/2, gRPC-web).

#![allow(dead_code)]

// Paths of their own, so tests/api_env can load this file by #[path] as well.
#[path = "support/grpc_web.rs"]
pub mod grpc_web;
#[path = "support/held.rs"]
pub mod held;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use audit_service::config::{AuthSettings, Config};
use audit_service::proto::audit::{self as pb, audit_service_client::AuditServiceClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The summary query of the week the fixtures fall in.
pub const WEEK: &str = "start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z";
/// Far longer than anything here takes on a loaded machine: only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The summary request of [`WEEK`], platform-wide.
pub fn week() -> pb::GetEventsSummaryRequest {
    pb::GetEventsSummaryRequest {
        start_time: Some(ts("2026-03-02T00:00:00Z")),
        end_time: Some(ts("2026-03-09T00:00:00Z")),
        organization_id: String::new(),
    }
}

/// Ten events with 1000-byte user agents: a batch over a 4096-byte size limit.
pub fn oversized_batch() -> pb::BatchCreateEventsRequest {
    pb::BatchCreateEventsRequest {
        events: (0..10)
            .map(|i| pb::AuditEvent {
                user_agent: "x".repeat(1000),
                ..event(&format!("big{i}"), "org_a", "session.login", "success", "2026-03-02T10:00:00Z")
            })
            .collect(),
    }
}

pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

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

    pub async fn grpc(&self) -> AuditServiceClient<Channel> {
        let channel = Channel::from_shared(self.base.clone()).unwrap().connect().await.expect("grpc connects");
        AuditServiceClient::new(channel)
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

/// Parses an RFC 3339 time for fixtures.
pub fn ts(text: &str) -> pbjson_types::Timestamp {
    audit_service::rfc3339::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn event(id: &str, org: &str, action: &str, result: &str, at: &str) -> pb::AuditEvent {
    pb::AuditEvent {
        id: id.into(),
        timestamp: Some(ts(at)),
        organization_id: org.into(),
        action: action.into(),
        actor: Some(pb::Actor { r#type: "identity".into(), id: "usr_4f18acec".into() }),
        target: Some(pb::Target { r#type: "session".into(), id: "ses_1".into() }),
        result: result.into(),
        ip: "192.0.2.10".into(),
        user_agent: "test".into(),
        details: None,
    }
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
