//! `AUDIT_CORS_ORIGINS` as an operator sets it: `*` allows any origin without
//! credentials, and a list the server cannot honour stops it at start with a
//! configuration error, never a panic, both through `server::build` and the binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use audit_service::config::{AuthSettings, Config};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use crate::server::{SECRET, TestServer, http1, reader};

const ANY_ORIGIN: &str = "https://any-site.example";
const SUMMARY_PATH: &str = "/v1/audit/events:summary";

/// Lists that must be refused, and a word the error must contain.
const BAD_LISTS: [(&str, &str); 6] = [
    ("*,https://admin.example.com", "cannot be combined"),
    ("https://admin.example.com,*", "cannot be combined"),
    ("https://admin.example.com/", "no path"),
    ("https://admin.example.com/console", "no path"),
    ("admin.example.com", "scheme://host"),
    ("https://admin.example.com:70000", "port"),
];

fn config(dir: &tempfile::TempDir, origins: &str) -> Config {
    let mut config = Config::new(
        format!("sqlite://{}", dir.path().join("audit.db").display()),
        AuthSettings::Keys(audit_service::auth::AuthConfig {
            jwt_secret: Some(SECRET.into()),
            ..audit_service::auth::AuthConfig::default()
        }),
    );
    config.cors_origins = origins.split(',').map(str::to_owned).collect();
    config
}

async fn preflight(base: &str, origin: &str) -> reqwest::Response {
    http1()
        .request(reqwest::Method::OPTIONS, format!("{base}{SUMMARY_PATH}"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight answered")
}

#[tokio::test]
async fn a_wildcard_allows_any_origin_without_credentials() {
    let server = TestServer::start_with(|c| c.cors_origins = vec!["*".into()]).await;
    for origin in [ANY_ORIGIN, "http://localhost:5173"] {
        let allowed = preflight(&server.base, origin).await;
        assert!(allowed.status().is_success(), "{}", allowed.status());
        assert_eq!(allowed.headers()["access-control-allow-origin"], "*", "{origin}");
        assert!(!allowed.headers().contains_key("access-control-allow-credentials"), "never with credentials");
    }
    let answer = http1()
        .get(format!("{}{SUMMARY_PATH}?start_time=2026-03-02T00:00:00Z&end_time=2026-03-09T00:00:00Z", server.base))
        .header("origin", ANY_ORIGIN)
        .bearer_auth(reader())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    server.stop().await;
}

#[tokio::test]
async fn origin_lists_the_server_cannot_honour_fail_the_build_with_the_reason() {
    for (origins, why) in BAD_LISTS {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let built = audit_service::server::build(config(&dir, origins), listener).await;
        let error = format!("{:#}", built.err().unwrap_or_else(|| panic!("{origins:?} must be refused")));
        assert!(error.contains("AUDIT_CORS_ORIGINS") && error.contains(why), "{origins:?}: {error}");
        // Refused before anything was opened: no database file was created.
        assert!(!dir.path().join("audit.db").exists(), "{origins:?}: the database was opened");
    }
}

/// `audit-service serve` with these origins on port 0, logging JSON to stdout.
fn serve(dir: &tempfile::TempDir, origins: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-service"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", dir.path().join("audit.db").display()))
        .env("AUDIT_JWT_SECRET", SECRET)
        .env("AUDIT_CORS_ORIGINS", origins)
        .env("AUDIT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "");
    command
}

#[tokio::test]
async fn the_binary_refuses_bad_origin_lists_with_an_error_not_a_panic() {
    for (origins, why) in BAD_LISTS {
        let dir = tempfile::tempdir().unwrap();
        let output = tokio::process::Command::from(serve(&dir, origins)).output();
        let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("exits").unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{origins:?}: {stderr}");
        assert!(stderr.contains("AUDIT_CORS_ORIGINS") && stderr.contains(why), "{origins:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{origins:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_binary_serves_a_wildcard_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::from(serve(&dir, "*"));
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    // The address it bound, from its "listening" log line.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["fields"]["message"] == "listening" {
                return json["fields"]["address"].as_str().unwrap().to_owned();
            }
        }
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
        panic!("the server exited before listening: {stderr}");
    })
    .await
    .expect("the server starts");
    let allowed = preflight(&format!("http://{address}"), ANY_ORIGIN).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "*");
    child.kill().await.unwrap();
}
