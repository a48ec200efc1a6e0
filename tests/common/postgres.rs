//! A fresh PostgreSQL database per test, created through the admin URL in
//! `AUDIT_TEST_POSTGRES_URL` and dropped afterwards, so tests run in parallel on
//! one server. Shared by the store and api_env test targets.

#![allow(dead_code)]

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

pub const URL_VAR: &str = "AUDIT_TEST_POSTGRES_URL";

/// Why PostgreSQL tests cannot run here, or `None` when `AUDIT_TEST_POSTGRES_URL`
/// is set; the targets' harness shows them ignored with this reason (failed under CI).
pub fn missing() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => None,
        _ => Some(format!("{URL_VAR} is unset")),
    }
}

/// The admin URL. Only tests registered as needing PostgreSQL call this, so its
/// absence here is a mistake in the registration, never a reason to pass quietly.
pub fn admin_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{URL_VAR} is unset: a PostgreSQL test must be registered with pg::missing()"),
    }
}

/// A database of its own; dropped by `drop_now`, or by `Drop` if the test panicked.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
    dropped: bool,
}

impl PgDatabase {
    /// Creates `audit_t_<random>`.
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = format!("audit_t_{:016x}", rand::random::<u64>());
        let mut admin = connect(&admin_url).await;
        admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("CREATE DATABASE");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        Self { name, url, admin_url, dropped: false }
    }

    /// A connection to the test database, outside any store.
    pub async fn connect(&self) -> PgConnection {
        connect(&self.url).await
    }

    /// A connection to the admin database (for ALTER DATABASE, pg_terminate_backend).
    pub async fn admin(&self) -> PgConnection {
        connect(&self.admin_url).await
    }

    /// The URL of the test database as another role (for privilege tests).
    pub fn url_as(&self, role: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("URL has a scheme");
        let host_and_rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{role}@{host_and_rest}")
    }

    pub async fn drop_now(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A panicking test still cleans up: on a thread of its own, since this may
        // run inside the test's runtime, which cannot be blocked on.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(drop_database(&admin_url, &name));
        });
        let _ = cleanup.join();
    }
}

async fn connect(url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("{URL_VAR} does not parse: {e}"));
    options.connect().await.unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {URL_VAR}: {e}"))
}

async fn drop_database(admin_url: &str, name: &str) {
    let mut admin = connect(admin_url).await;
    // FORCE ends the connections a failed test may have left open.
    if let Err(error) = admin.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await {
        eprintln!("could not drop test database {name}: {error}");
    }
    admin.close().await.ok();
}

/// `url` with its database (the path) replaced by `name`, query parameters kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("URL has a scheme");
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}
