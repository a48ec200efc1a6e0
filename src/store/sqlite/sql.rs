//! The SQLite store's SQL, as constants (fragments where a statement is assembled
//! from a plan).

pub const INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns) ";
pub const INSERT_EVENTS_TAIL: &str = " ON CONFLICT (organization_id, id) DO NOTHING RETURNING organization_id, id";
/// Keeps one statement under SQLite's 32766 bound parameters (13 per event row).
pub const EVENT_ROWS_PER_STATEMENT: usize = 32_766 / 13;

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
}

/// Reads the schema page, so a broken or vanished file is noticed (`SELECT 1`
/// would be answered by the connection without touching the file).
pub const PING: &str = "SELECT count(*) FROM sqlite_schema";
