//! JWKS key source for asymmetric tokens: holds the current key set, refetches it on a schedule
//! (the endpoint's `max-age`, clamped, or the configured interval) and, at a bounded rate, when a
//! token names an unknown key id; a set that cannot be refetched is trusted for a grace period only.

mod keys;
mod source;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey};

use self::keys::KeySet;
use self::source::{Fetched, Source, fetch, http_client, parse_location};

/// Unknown `kid`s arrive in unauthenticated requests; this bounds how often they can make us
/// contact the identity provider, while a newly published key still works within seconds.
pub(crate) const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(5);
/// Scheduled refetch interval when nothing else says (`AUDIT_JWKS_REFRESH_SECS`).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// How long a set whose refetches fail stays trusted past its refresh time: long enough to ride
/// out an identity-provider outage, short enough that a withdrawn key does not live on for days.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// An endpoint's `max-age` is honoured within these bounds: below, every replica would poll the
/// provider constantly; above, a withdrawn key would stay trusted too long.
pub(crate) const MAX_AGE_BOUNDS: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(3600));
/// After a failed scheduled refetch, the next try comes no later than this.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Why no key could be chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    UnknownKid,
    AlgorithmNotAllowed,
    /// The set could not be refetched for longer than the grace period.
    Untrusted,
}

/// When the set is refetched and how long it outlives failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// For a file, and for a URL whose answer carries no `max-age`.
    pub(crate) refresh: Duration,
    pub(crate) grace: Duration,
    pub(crate) unknown_kid_interval: Duration,
}

/// The endpoint's `max-age` clamped to [`MAX_AGE_BOUNDS`], or the configured interval without one.
pub(crate) fn refresh_interval(max_age: Option<Duration>, configured: Duration) -> Duration {
    max_age.map_or(configured, |age| age.clamp(MAX_AGE_BOUNDS.0, MAX_AGE_BOUNDS.1))
}

struct State {
    keys: Arc<KeySet>,
    /// The set is refetched before any use from this instant on.
    refresh_at: Instant,
    /// The last successful fetch's refresh time plus the grace: past it the keys are refused.
    trusted_until: Instant,
}

/// What made a request try a refetch.
#[derive(Clone, Copy)]
enum Trigger {
    Schedule,
    UnknownKid,
}

/// The configured JWKS with its current keys; shared by all requests.
pub(crate) struct Jwks {
    source: Source,
    client: reqwest::Client,
    timing: Timing,
    // Never held across an await, so a std lock is enough and keeps reads cheap.
    state: RwLock<State>,
    // Held for the whole fetch, so one is in flight at a time and waiting requests use its result;
    // holds when the last fetch began, for the unknown-kid rate.
    fetching: tokio::sync::Mutex<Instant>,
}

impl Jwks {
    /// Loads the set; fails when it cannot be read or holds no usable key.
    pub(crate) async fn load(location: &str, timing: Timing) -> anyhow::Result<Jwks> {
        let source = parse_location(location)?;
        let client = http_client(&source)?;
        let started = Instant::now();
        let fetched = fetch(&source, &client).await.with_context(|| format!("loading jwks from {location}"))?;
        let interval = refresh_interval(fetched.max_age, timing.refresh);
        tracing::info!(keys = fetched.keys.0.len(), refresh_secs = interval.as_secs(), "jwks loaded");
        let state = fresh_state(fetched, timing);
        Ok(Jwks { source, client, timing, state: RwLock::new(state), fetching: tokio::sync::Mutex::new(started) })
    }

    /// Picks the key for a token: refetches first when the set is due, and once more (rate-limited)
    /// when the token's kid is unknown.
    pub(crate) async fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
        if Instant::now() >= self.read().refresh_at {
            self.refresh(Trigger::Schedule).await;
        }
        let keys = self.trusted_keys()?;
        let first = keys.select(kid, alg);
        match kid {
            // A known kid cannot become valid for another algorithm by refetching.
            Some(kid) if first.is_err() && !keys.has_kid(kid) => {
                self.refresh(Trigger::UnknownKid).await;
                self.trusted_keys()?.select(Some(kid), alg)
            }
            _ => first,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn trusted_keys(&self) -> Result<Arc<KeySet>, Miss> {
        let state = self.read();
        if Instant::now() >= state.trusted_until {
            return Err(Miss::Untrusted);
        }
        Ok(Arc::clone(&state.keys))
    }

    async fn refresh(&self, trigger: Trigger) {
        let mut last_fetch = self.fetching.lock().await;
        // Whoever held the lock before may have fetched already; then its result stands.
        let due = match trigger {
            Trigger::Schedule => Instant::now() >= self.read().refresh_at,
            Trigger::UnknownKid => last_fetch.elapsed() >= self.timing.unknown_kid_interval,
        };
        if !due {
            return;
        }
        *last_fetch = Instant::now();
        match fetch(&self.source, &self.client).await {
            Ok(fetched) => {
                let interval = refresh_interval(fetched.max_age, self.timing.refresh);
                tracing::info!(keys = fetched.keys.0.len(), refresh_secs = interval.as_secs(), "jwks refreshed");
                *self.state.write().unwrap_or_else(|p| p.into_inner()) = fresh_state(fetched, self.timing);
            }
            Err(e) => self.failed(trigger, &e),
        }
    }

    fn failed(&self, trigger: Trigger, error: &anyhow::Error) {
        // Alternate form keeps the cause chain, which is where the useful detail is.
        let error = format!("{error:#}");
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Trigger::Schedule = trigger {
            // Retried at most this often, so an outage costs the provider one request per interval.
            state.refresh_at = Instant::now() + self.timing.refresh.min(RETRY_AFTER_FAILURE);
        }
        let now = Instant::now();
        if now < state.trusted_until {
            let trusted_secs = (state.trusted_until - now).as_secs();
            tracing::warn!(error = %error, trusted_secs, "jwks refresh failed; keeping the last good key set");
        } else {
            tracing::error!(error = %error, "jwks refresh failed past the grace period; jwks-signed tokens are refused");
        }
    }

    /// When the set will next be refetched, and until when it is trusted without a refetch.
    #[cfg(test)]
    fn schedule(&self) -> (Instant, Instant) {
        let state = self.read();
        (state.refresh_at, state.trusted_until)
    }
}

fn fresh_state(fetched: Fetched, timing: Timing) -> State {
    let refresh_at = Instant::now() + refresh_interval(fetched.max_age, timing.refresh);
    // A grace beyond what the clock can represent is as good as the longest one it can.
    let trusted_until = refresh_at.checked_add(timing.grace).unwrap_or(refresh_at + DEFAULT_GRACE);
    State { keys: Arc::new(fetched.keys), refresh_at, trusted_until }
}
