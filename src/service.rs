//! The audit service's business rules: tenancy, ordering, and the calls into the
//! store. Adapters (gRPC, and through it gRPC-web and REST) only translate.

mod reads;
mod requests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::instrument;

use crate::auth::Principal;
use crate::config::DEFAULT_MAX_FUTURE_SKEW;
use crate::domain::{ActionCount, EventBatch, OrgId, OrgScope, SummaryQuery, SummaryRequest, UnixNanos};
use crate::error::Error;
use crate::store::{AppendOutcome, DynStore, StoreError};

pub use crate::paging::PageTokenKeys;
pub use reads::EventsPage;
pub use requests::{DEFAULT_PAGE_SIZE, EventRequest, ListRequest, MAX_PAGE_SIZE};

#[derive(Clone)]
pub struct AuditLog {
    store: DynStore,
    /// Widest summary range served; a wider one is refused before the store sees it.
    max_summary_range: Option<Duration>,
    /// How far past the clock an event may be dated; later ones are refused.
    max_future_skew: Duration,
    /// Seal and open ListEvents page tokens.
    page_tokens: PageTokenKeys,
}

impl AuditLog {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            max_summary_range: None,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            page_tokens: PageTokenKeys::random(),
        }
    }

    /// The keys of page tokens; without them, a key made for this process alone.
    pub fn with_page_token_keys(mut self, keys: PageTokenKeys) -> Self {
        self.page_tokens = keys;
        self
    }

    pub fn with_max_summary_range(mut self, max: Option<Duration>) -> Self {
        self.max_summary_range = max;
        self
    }

    pub fn with_max_future_skew(mut self, max: Duration) -> Self {
        self.max_future_skew = max;
        self
    }

    /// Per-action counts, ordered by count descending then action ascending.
    #[instrument(name = "audit.summarize", skip_all, fields(org = tracing::field::Empty, enduser.id = %principal.subject))]
    pub async fn summarize(&self, principal: &Principal, request: SummaryRequest) -> Result<Vec<ActionCount>, Error> {
        if let Some(max) = self.max_summary_range
            && request.range.end() - request.range.start() > max.as_nanos() as i128
        {
            let days = max.as_secs_f64() / 86_400.0;
            return Err(Error::invalid("end_time", format!("must be at most {days} days after start_time")));
        }
        let scope = read_scope(principal, request.organization_id)?;
        let query = SummaryQuery { range: request.range, scope };
        let mut buckets = self.store.summarize(&query).await.map_err(store_error)?;
        buckets.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.action.cmp(&b.action)));
        Ok(buckets)
    }

    /// Appends a batch atomically; every event must belong to the caller's tenant.
    #[instrument(name = "audit.append", skip_all, fields(events = batch.events().len(), enduser.id = %principal.subject))]
    pub async fn append(&self, principal: &Principal, batch: EventBatch) -> Result<AppendOutcome, Error> {
        // Checked here rather than while parsing, which does not read the clock, and
        // before tenancy, as the other rules of a valid event are.
        batch.refuse_dated_after(clock_now()?, self.max_future_skew)?;
        if let Some(own) = &principal.org_id {
            let foreign = batch.events().iter().position(|event| event.organization_id != *own);
            if let Some(index) = foreign {
                return Err(other_tenant(
                    principal,
                    &format!(
                        "events[{index}].organization_id names another organization; batch refused, nothing stored"
                    ),
                ));
            }
        }
        // The request's log line names the organization when the batch has one.
        if let Some(first) = batch.events().first()
            && batch.events().iter().all(|event| event.organization_id.as_str() == first.organization_id.as_str())
        {
            crate::telemetry::record_organization(first.organization_id.as_str());
        }
        let outcome = self.store.append(&batch).await.map_err(store_error)?;
        tracing::debug!(created = outcome.created, duplicates = outcome.duplicates, "batch stored");
        Ok(outcome)
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ready(&self) -> Result<(), Error> {
        self.store.ping().await.map_err(store_error)
    }
}

/// Which organizations a read covers: an organization-bound caller reads its own
/// (naming another is refused), a platform-wide caller the one it names, or all.
fn read_scope(principal: &Principal, asked: Option<OrgId>) -> Result<OrgScope, Error> {
    let scope = match (&principal.org_id, asked) {
        (None, None) => OrgScope::All,
        (None, Some(asked)) => OrgScope::One(asked),
        (Some(own), None) => OrgScope::One(own.clone()),
        (Some(own), Some(asked)) if *own == asked => OrgScope::One(asked),
        (Some(_), Some(_)) => return Err(other_tenant(principal, "organization_id names another organization")),
    };
    record_scope(&scope);
    Ok(scope)
}

/// Names the organization on the request's span and log line, when there is one.
fn record_scope(scope: &OrgScope) {
    if let OrgScope::One(org) = scope {
        tracing::Span::current().record("org", org.as_str());
        crate::telemetry::record_organization(org.as_str());
    }
}

/// The server's clock. One before 1970 or past 2262 is a broken host, not a bad request.
fn clock_now() -> Result<UnixNanos, Error> {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| anyhow::anyhow!("clock: {e}"))?;
    let nanos = i64::try_from(since_epoch.as_nanos()).map_err(|e| anyhow::anyhow!("clock: {e}"))?;
    Ok(UnixNanos::from_nanos(nanos))
}

/// The refusal of a call for another organization. It names the scope the call
/// was authorized with, as a refusal for a missing scope names the one it lacked.
fn other_tenant(principal: &Principal, message: &str) -> Error {
    let required_scope = principal.authorized_scope().unwrap_or_default().to_owned();
    Error::PermissionDenied { message: message.to_owned(), required_scope }
}

fn store_error(error: StoreError) -> Error {
    match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "database unavailable");
            Error::Unavailable("database unavailable, retry later".into())
        }
        StoreError::Other(source) => Error::Internal(source),
    }
}
