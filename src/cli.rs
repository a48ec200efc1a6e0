//! The command line: `serve` (every setting also an environment variable) and
//! `token` (mint a development token with the configured HS256 secret).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod settings;

use crate::auth::{AuthConfig, DEFAULT_JWKS_GRACE, DEFAULT_JWKS_REFRESH};
use crate::config::{AuthSettings, Config, DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_FUTURE_SKEW, DEFAULT_MAX_REQUEST_BYTES};
use crate::paging::PageTokenKeys;
pub use settings::{DbArgs, LimitArgs};

#[derive(Debug, Parser)]
#[command(name = "audit-service", version, about = "Audit-log service: gRPC, gRPC-web and REST/JSON on one port")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Print a signed HS256 token for development and scripts.
    Token(TokenArgs),
    /// Recompute the pre-aggregated counts from the stored events (atomically;
    /// safe while the service runs).
    RebuildRollups(RebuildArgs),
    /// Apply pending database migrations and create the coming partitions, then
    /// exit: run once per upgrade, as the schema owner, before new replicas start.
    Migrate(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[arg(long, env = "AUDIT_DATABASE_URL", default_value = "sqlite://audit.db")]
    pub database_url: String,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: gRPC, gRPC-web and REST share it.
    #[arg(long, env = "AUDIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of a second listener for `/metrics`, `/healthz` and `/readyz` only
    /// (e.g. `0.0.0.0:9090`); when set, `/metrics` leaves the main address.
    #[arg(long, env = "AUDIT_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DATABASE`.
    #[arg(long, env = "AUDIT_DATABASE_URL", default_value = "sqlite://audit.db")]
    pub database_url: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// HS256 shared secret that verifies tokens.
    #[arg(long, env = "AUDIT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// JWKS for RS256/ES256/EdDSA tokens: a file path or an https URL.
    #[arg(long, env = "AUDIT_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Seconds between refetches of the JWKS: a file's always, a URL's when its answer has no
    /// Cache-Control max-age (otherwise max-age decides, clamped to 60..3600).
    #[arg(long, env = "AUDIT_JWKS_REFRESH_SECS", default_value_t = DEFAULT_JWKS_REFRESH.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub jwks_refresh_secs: u64,
    /// Required `iss` claim.
    #[arg(long, env = "AUDIT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "AUDIT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Browser origins allowed by CORS, comma-separated `scheme://host[:port]` (e.g.
    /// `https://admin.example.com`), or `*` alone for any origin (never with credentials).
    #[arg(long, env = "AUDIT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest gRPC message or REST body, in bytes.
    #[arg(long, env = "AUDIT_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    /// Seconds an event may be dated after the server's clock; a batch holding a later one is refused.
    #[arg(long, env = "AUDIT_MAX_FUTURE_SKEW_SECS", default_value_t = DEFAULT_MAX_FUTURE_SKEW.as_secs())]
    pub max_future_skew_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "AUDIT_DRAIN_TIMEOUT_SECS", default_value_t = DEFAULT_DRAIN_TIMEOUT.as_secs())]
    pub drain_timeout_secs: u64,
    /// Keys of ListEvents page tokens, comma-separated, each at least 32 bytes: the first signs,
    /// all verify. Give every replica the same keys; to rotate, add the new key second, then
    /// move it first, then drop the old one 48 hours later. Unset: a key made at each start.
    #[arg(long, env = "AUDIT_PAGE_TOKEN_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub page_token_keys: Vec<String>,
    /// Log lines as `json` or `pretty` text; level from RUST_LOG.
    #[arg(long, env = "AUDIT_LOG_FORMAT", default_value = "pretty", value_parser = ["json", "pretty"])]
    pub log_format: String,
    /// Demo mode: tokens signed with a key generated at each start (so it refuses to start
    /// with AUDIT_JWT_SECRET, AUDIT_JWKS_URL, AUDIT_JWT_ISSUER or AUDIT_JWT_AUDIENCE set), seeded
    /// demo events when the database is empty, and ready-to-paste commands.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl ServeArgs {
    /// The server settings, and the demo secret when in demo mode.
    pub fn config(&self) -> anyhow::Result<Config> {
        let auth = if self.demo {
            self.refuse_keys_in_demo()?;
            // Demo mode hands a token to anyone who asks, so its key must never be one an
            // operator configured: it is made here and dies with the process.
            AuthSettings::Demo { secret: rand::random::<[u8; 32]>().to_vec() }
        } else {
            if self.jwt_secret.is_none() && self.jwks_url.is_none() {
                anyhow::bail!("no token key configured: set AUDIT_JWT_SECRET or AUDIT_JWKS_URL (or run with --demo)");
            }
            if self.jwt_secret.as_deref().is_some_and(|s| s.len() < 32) {
                anyhow::bail!("AUDIT_JWT_SECRET must be at least 32 bytes");
            }
            AuthSettings::Keys(AuthConfig {
                jwt_secret: self.jwt_secret.clone(),
                jwks_url: self.jwks_url.clone(),
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                jwks_refresh: Duration::from_secs(self.jwks_refresh_secs),
                jwks_grace: DEFAULT_JWKS_GRACE,
            })
        };
        let mut config = Config::new(self.database_url.clone(), auth);
        config.cors_origins = self.cors_origins.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        config.max_request_bytes = self.max_request_bytes;
        config.max_future_skew = Duration::from_secs(self.max_future_skew_secs);
        config.drain_timeout = Duration::from_secs(self.drain_timeout_secs);
        config.limits = self.limits.limits(self.demo)?;
        config.store = self.db.settings();
        if !self.page_token_keys.is_empty() {
            let keys = PageTokenKeys::from_secrets(&self.page_token_keys)
                .map_err(|e| anyhow::anyhow!("AUDIT_PAGE_TOKEN_KEYS: {e}"))?;
            config.page_token_keys = Some(keys);
        }
        Ok(config)
    }

    /// Key settings make no sense in demo mode, and honouring any of them would let the demo's
    /// unauthenticated token endpoint hand out tokens that real deployments accept.
    fn refuse_keys_in_demo(&self) -> anyhow::Result<()> {
        let settings = [
            ("AUDIT_JWT_SECRET (--jwt-secret)", &self.jwt_secret),
            ("AUDIT_JWKS_URL (--jwks-url)", &self.jwks_url),
            ("AUDIT_JWT_ISSUER (--jwt-issuer)", &self.jwt_issuer),
            ("AUDIT_JWT_AUDIENCE (--jwt-audience)", &self.jwt_audience),
        ];
        let set: Vec<&str> = settings
            .iter()
            .filter(|(_, value)| value.as_deref().is_some_and(|v| !v.trim().is_empty()))
            .map(|(name, _)| *name)
            .collect();
        if !set.is_empty() {
            anyhow::bail!(
                "--demo cannot be combined with {}: demo mode signs tokens with a key it generates itself at \
                 each start and gives one to anyone who asks, so it never uses configured keys; unset these \
                 settings or run without --demo",
                set.join(", ")
            );
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Scopes to grant, e.g. `--scope audit:read --scope audit:write`.
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// Confine the token to one organization; without it the token is platform-wide.
    #[arg(long)]
    pub org: Option<String>,
    /// Lifetime, e.g. `15m`, `1h`, `7d`.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The `sub` claim.
    #[arg(long, default_value = "dev-cli")]
    pub subject: String,
    /// The HS256 secret the server verifies with.
    #[arg(long, env = "AUDIT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not like 15m, 1h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["audit-service", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(serve) => *serve,
            _ => unreachable!("parsed serve"),
        }
    }

    #[test]
    fn demo_never_takes_an_operator_key() {
        let secret = "an-operator-secret-that-is-long-enough-0123";
        for (flag, value) in [
            ("--jwt-secret", secret),
            ("--jwks-url", "https://id.example/jwks"),
            ("--jwt-issuer", "https://id.example"),
            ("--jwt-audience", "audit-api"),
        ] {
            let error = serve(&["--demo", flag, value]).config().unwrap_err().to_string();
            assert!(error.contains(&format!("({flag})")), "{flag}: {error}");
        }
        // Alone, demo mode makes its own key, a different one at each start, never the operator's.
        let keys: Vec<Vec<u8>> = (0..2)
            .map(|_| match serve(&["--demo"]).config().unwrap().auth {
                AuthSettings::Demo { secret } => secret,
                AuthSettings::Keys(_) => panic!("demo mode uses configured keys"),
            })
            .collect();
        assert_eq!(keys[0].len(), 32);
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], secret.as_bytes());
        let token = crate::auth::mint_hs256(&keys[0], "demo", &["audit:read"], None, Duration::from_secs(60)).unwrap();
        let operator = crate::auth::Verifier::hs256(secret.as_bytes());
        let refused = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(operator.verify_header(Some(&format!("Bearer {token}"))));
        assert!(refused.is_err(), "a demo token verified under the operator's key");
    }

    #[test]
    fn page_token_keys_are_long_enough_and_all_kept() {
        let secret = "an-operator-secret-that-is-long-enough-0123";
        let keys = serve(&["--jwt-secret", secret, "--page-token-keys", &format!("{secret}a,{secret}b")]);
        assert!(format!("{:?}", keys.config().unwrap().page_token_keys.unwrap()).contains("key_ids"));
        assert!(serve(&["--jwt-secret", secret]).config().unwrap().page_token_keys.is_none());
        let short = serve(&["--jwt-secret", secret, "--page-token-keys", &format!("{secret},short")]);
        let error = short.config().unwrap_err().to_string();
        assert!(error.contains("AUDIT_PAGE_TOKEN_KEYS") && error.contains("key 2"), "{error}");
    }

    #[test]
    fn jwks_refresh_is_a_bounded_setting() {
        let keys = |args: &[&str]| match serve(args).config().unwrap().auth {
            AuthSettings::Keys(keys) => keys,
            AuthSettings::Demo { .. } => panic!("not demo"),
        };
        let secret = "an-operator-secret-that-is-long-enough-0123";
        assert_eq!(keys(&["--jwt-secret", secret]).jwks_refresh, Duration::from_secs(300));
        let set = keys(&["--jwt-secret", secret, "--jwks-refresh-secs", "60"]);
        assert_eq!((set.jwks_refresh, set.jwks_grace), (Duration::from_secs(60), crate::auth::DEFAULT_JWKS_GRACE));
        for bad in ["0", "3601", "-1", "5m"] {
            let parsed = Cli::try_parse_from(["audit-service", "serve", "--jwks-refresh-secs", bad]);
            assert!(parsed.is_err(), "{bad}");
        }
    }
}
