//! `audit-service`: parses the command line and runs the server or a tool command.

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;

use audit_service::cli::{Cli, Command};
use audit_service::config::AuthSettings;
use audit_service::{auth, demo, server, telemetry};

/// Lifetime of the token the demo's dashboard pre-fills; restart the demo for a fresh one.
const DEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token(args) => {
            let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
            let token =
                auth::mint_hs256(args.jwt_secret.as_bytes(), &args.subject, &scopes, args.org.as_deref(), args.ttl)?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate(args) => {
            // Opening a store applies its migrations under the database's lock.
            let store = audit_service::store::open(&args.database_url, &args.db.settings()).await?;
            store.close().await;
            println!("database is migrated");
            Ok(())
        }
        Command::RebuildRollups(args) => {
            let store = audit_service::store::open(&args.database_url, &args.db.settings()).await?;
            let started = std::time::Instant::now();
            store.rebuild_rollups().await?;
            store.close().await;
            println!("rollups rebuilt in {:.1?}", started.elapsed());
            Ok(())
        }
        Command::Serve(args) => {
            let _telemetry = telemetry::init(args.log_format == "json")?;
            let mut config = args.config()?;
            if let AuthSettings::Demo { secret } = &config.auth {
                // Read-only and short-lived: the dashboard hands it to whoever opens the page.
                config.demo_token =
                    Some(auth::mint_hs256(secret, "demo-dashboard", &["audit:read"], None, DEMO_TOKEN_TTL)?);
            }
            let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
            let mut listeners = server::Listeners::from(listener);
            if let Some(admin) = args.admin_listen {
                let admin =
                    TcpListener::bind(admin).await.with_context(|| format!("binding AUDIT_ADMIN_LISTEN {admin}"))?;
                listeners = listeners.with_admin(admin);
            }
            let server = server::build(config.clone(), listeners).await?;
            if let AuthSettings::Demo { secret } = &config.auth {
                let seeded = demo::seed_if_empty(server.store()).await?;
                if seeded > 0 {
                    tracing::info!(events = seeded, "seeded demo events");
                }
                println!("{}", demo::instructions(server.local_addr(), secret)?);
            }
            tracing::info!(address = %server.local_addr(), "listening");
            if let Some(admin) = server.admin_addr() {
                tracing::info!(address = %admin, "admin listener: /metrics, /healthz, /readyz");
            }
            server.serve(shutdown_signal()).await
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
