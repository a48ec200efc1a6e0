//! Store calls as client spans (`db.system`, `db.operation.name`), the ingest
//! counters and the pool gauges, around whichever database the URL named: every
//! store implementation gets them without code of its own.
//!
//! Spans carry the operation and the table, never statements' values: those are
//! tenants' ids and event contents.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::domain::{ActionCount, EventBatch, EventLookup, EventPage, StoredEvent, SummaryQuery};
use crate::metrics::Metrics;
use crate::store::ListQuery;
use crate::store::{AppendOutcome, DynStore, EventStore, PoolStats, StoreError};

/// Wraps `store` so that its calls are traced and counted in `metrics`.
pub fn instrument_store(store: DynStore, database_url: &str, metrics: &Metrics) -> DynStore {
    metrics.observe_pools(&store);
    Arc::new(InstrumentedStore { inner: store, system: db_system(database_url), metrics: metrics.clone() })
}

/// The `db.system` value of the OpenTelemetry conventions for a database URL.
fn db_system(database_url: &str) -> &'static str {
    if database_url.starts_with("postgres") {
        "postgresql"
    } else if database_url.starts_with("sqlite") {
        "sqlite"
    } else {
        "other_sql"
    }
}

/// One store call: the span's name is `{operation} {table}`, as the conventions
/// name database spans.
struct Call {
    name: &'static str,
    operation: &'static str,
    table: Option<&'static str>,
    function: &'static str,
}

const APPEND: Call = Call {
    name: "INSERT audit_events",
    operation: "INSERT",
    table: Some("audit_events"),
    function: "EventStore::append",
};
const SUMMARIZE: Call = Call {
    name: "SELECT audit_rollups",
    operation: "SELECT",
    table: Some("audit_rollups"),
    function: "EventStore::summarize",
};
const REBUILD_ROLLUPS: Call = Call {
    name: "INSERT audit_rollups",
    operation: "INSERT",
    table: Some("audit_rollups"),
    function: "EventStore::rebuild_rollups",
};
const GET_EVENT: Call = Call {
    name: "SELECT audit_events",
    operation: "SELECT",
    table: Some("audit_events"),
    function: "EventStore::get_event",
};
const LIST_EVENTS: Call = Call {
    name: "SELECT audit_events",
    operation: "SELECT",
    table: Some("audit_events"),
    function: "EventStore::list_events",
};
const PING: Call = Call { name: "SELECT", operation: "SELECT", table: None, function: "EventStore::ping" };
const IS_EMPTY: Call = Call {
    name: "SELECT audit_events",
    operation: "SELECT",
    table: Some("audit_events"),
    function: "EventStore::is_empty",
};

struct InstrumentedStore {
    inner: DynStore,
    system: &'static str,
    metrics: Metrics,
}

impl InstrumentedStore {
    fn span(&self, call: &Call) -> tracing::Span {
        let span = tracing::info_span!(
            "db",
            otel.name = call.name,
            otel.kind = "client",
            otel.status_code = Empty,
            db.system = self.system,
            db.system.name = self.system,
            db.operation.name = call.operation,
            db.collection.name = Empty,
            db.operation.batch.size = Empty,
            code.function.name = call.function,
            error.type = Empty,
        );
        if let Some(table) = call.table {
            span.record("db.collection.name", table);
        }
        span
    }
}

async fn traced<T>(span: tracing::Span, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let result = call.instrument(span.clone()).await;
    if let Err(error) = &result {
        let kind = match error {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Other(_) => "other",
        };
        span.record("error.type", kind);
        span.record("otel.status_code", "ERROR");
    }
    result
}

#[async_trait]
impl EventStore for InstrumentedStore {
    async fn append(&self, batch: &EventBatch) -> Result<AppendOutcome, StoreError> {
        let span = self.span(&APPEND);
        span.record("db.operation.batch.size", batch.events().len());
        let outcome = traced(span, self.inner.append(batch)).await?;
        self.metrics.events_stored(outcome.created, outcome.duplicates);
        Ok(outcome)
    }

    async fn summarize(&self, query: &SummaryQuery) -> Result<Vec<ActionCount>, StoreError> {
        traced(self.span(&SUMMARIZE), self.inner.summarize(query)).await
    }

    async fn get_event(&self, lookup: &EventLookup) -> Result<Vec<StoredEvent>, StoreError> {
        traced(self.span(&GET_EVENT), self.inner.get_event(lookup)).await
    }

    async fn list_events(&self, query: &ListQuery) -> Result<EventPage, StoreError> {
        traced(self.span(&LIST_EVENTS), self.inner.list_events(query)).await
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        traced(self.span(&REBUILD_ROLLUPS), self.inner.rebuild_rollups()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        traced(self.span(&PING), self.inner.ping()).await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        traced(self.span(&IS_EMPTY), self.inner.is_empty()).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_system_follows_the_conventions() {
        assert_eq!(db_system("sqlite:///tmp/a.db"), "sqlite");
        assert_eq!(db_system("postgres://u@h/db"), "postgresql");
        assert_eq!(db_system("postgresql://u@h/db"), "postgresql");
    }
}
