//! The SQLite store's SQL, as constants (fragments where a statement is assembled
//! from a plan).

/// Taken at once, not at the first write: the append reads the stored ids and log
/// counters before it writes, and another process's write in between must not be
/// possible (a deferred transaction would fail to upgrade instead).
pub const BEGIN_APPEND: &str = "BEGIN IMMEDIATE";

/// The batch's ids already stored, as `(organization_id, id)`; `VALUES` rows of
/// `(id, organization_id)` follow. CROSS JOIN keeps the batch as the outer loop, one
/// probe of the unique index per id (SQLite plans `(id, organization_id) IN (VALUES
/// …)` as a scan of that whole index).
pub const STORED_IDS: &str = "SELECT e.organization_id, e.id FROM (VALUES ";
pub const STORED_IDS_TAIL: &str =
    ") AS c CROSS JOIN audit_events e ON e.id = c.column1 AND e.organization_id = c.column2";
/// Two parameters per id.
pub const IDS_PER_STATEMENT: usize = 32_766 / 2;

/// The next log index of organizations; their ids follow, then `)`.
pub const LOG_COUNTERS: &str = "SELECT organization_id, next_index FROM audit_logs WHERE organization_id IN (";
pub const LOG_COUNTERS_TAIL: &str = ")";
pub const ORGS_PER_STATEMENT: usize = 32_766;
pub const UPSERT_LOG_COUNTERS: &str = "INSERT INTO audit_logs (organization_id, next_index) ";
pub const UPSERT_LOG_COUNTERS_TAIL: &str =
    " ON CONFLICT (organization_id) DO UPDATE SET next_index = excluded.next_index";
pub const LOG_COUNTERS_PER_STATEMENT: usize = 32_766 / 2;

/// Plain INSERT: duplicates were left out before, and a conflict here would mean a
/// log index taken twice, which must fail the batch.
pub const INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns, log_index) ";
/// Keeps one statement under SQLite's 32766 bound parameters (14 per event row).
pub const EVENT_ROWS_PER_STATEMENT: usize = 32_766 / 14;

/// One event by id, in one organization (`?2`) or in all of them; through the
/// unique index on `(id, organization_id)` either way.
pub const GET_EVENT_IN_ORG: &str = concat!(
    "SELECT ",
    crate::store::sql::event_columns!("", ip: "ip", details: "details"),
    " FROM audit_events WHERE id = ?1 AND organization_id = ?2"
);
pub const GET_EVENT_ANY_ORG: &str = concat!(
    "SELECT ",
    crate::store::sql::event_columns!("", ip: "ip", details: "details"),
    " FROM audit_events WHERE id = ?1 LIMIT 2"
);
/// The newest commit sequence number: a listing's snapshot.
pub const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM audit_events";

pub const UPSERT_ROLLUPS: &str =
    "INSERT INTO audit_rollups (series, width_s, bucket_start_ns, action, event_count, failure_count) ";
pub const UPSERT_ROLLUPS_TAIL: &str = " ON CONFLICT (series, width_s, bucket_start_ns, action) DO UPDATE SET \
     event_count = event_count + excluded.event_count, failure_count = failure_count + excluded.failure_count";
pub const ROLLUP_ROWS_PER_STATEMENT: usize = 32_766 / 6;

crate::store::sql::dialect_sql! {
    param1: "?1",
    sum: "",
    // `failed` is an INTEGER, 0 or 1.
    failures: "SUM(failed)",
    // Stored as they are read back.
    columns: crate::store::sql::event_columns!("", ip: "ip", details: "details"),
    // `seq` grows with every commit (one writer at a time, no deletes): the events
    // of a snapshot are those at or below the newest `seq` when it was taken.
    snapshot: ("seq <= ", ""),
    // TEXT compares byte by byte (BINARY) unless told otherwise.
    org_key: "organization_id",
    failures_only: "failed = 1",
}

/// Reads the schema page, so a broken or vanished file is noticed (`SELECT 1`
/// would be answered by the connection without touching the file).
pub const PING: &str = "SELECT count(*) FROM sqlite_schema";
