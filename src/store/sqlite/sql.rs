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

pub const SUMMARY_HEAD: &str = "SELECT action, SUM(n) AS count, SUM(f) AS failure_count FROM (";
pub const SUMMARY_ROLLUP_SERIES: &str =
    "SELECT action, event_count AS n, failure_count AS f FROM audit_rollups WHERE series = ";
pub const SUMMARY_ROLLUP_WIDTH: &str = " AND width_s = ";
pub const SUMMARY_ROLLUP_FROM: &str = " AND bucket_start_ns >= ";
pub const SUMMARY_ROLLUP_TO: &str = " AND bucket_start_ns < ";
pub const SUMMARY_RAW_ORG: &str =
    "SELECT action, COUNT(*) AS n, SUM(failed) AS f FROM audit_events WHERE organization_id = ";
pub const SUMMARY_RAW_ORG_FROM: &str = " AND occurred_at_ns >= ";
pub const SUMMARY_RAW_ALL: &str =
    "SELECT action, COUNT(*) AS n, SUM(failed) AS f FROM audit_events WHERE occurred_at_ns >= ";
pub const SUMMARY_RAW_TO: &str = " AND occurred_at_ns < ";
pub const SUMMARY_RAW_GROUP: &str = " GROUP BY action";
pub const SUMMARY_TAIL: &str = ") GROUP BY action";

/// The naive count the rollups must always equal.
pub const NAIVE_ONE_ORG: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE organization_id = ?1 AND occurred_at_ns >= ?2 AND occurred_at_ns < ?3 GROUP BY action";
pub const NAIVE_ALL_ORGS: &str = "SELECT action, COUNT(*) AS count, SUM(failed) AS failure_count FROM audit_events \
     WHERE occurred_at_ns >= ?1 AND occurred_at_ns < ?2 GROUP BY action";

pub const DELETE_ROLLUPS: &str = "DELETE FROM audit_rollups";
pub const REBUILD_ORG_ROLLUPS: &str = "INSERT INTO audit_rollups \
     SELECT organization_id, ?1, (occurred_at_ns / (?1 * 1000000000)) * (?1 * 1000000000), action, COUNT(*), SUM(failed) \
     FROM audit_events GROUP BY 1, 3, 4";
pub const REBUILD_PLATFORM_ROLLUPS: &str = "INSERT INTO audit_rollups \
     SELECT '', ?1, (occurred_at_ns / (?1 * 1000000000)) * (?1 * 1000000000), action, COUNT(*), SUM(failed) \
     FROM audit_events GROUP BY 3, 4";

pub const ANY_EVENT: &str = "SELECT EXISTS (SELECT 1 FROM audit_events)";
/// Reads the schema page, so a broken or vanished file is noticed (`SELECT 1`
/// would be answered by the connection without touching the file).
pub const PING: &str = "SELECT count(*) FROM sqlite_schema";

pub const SUMMARY_SQL: crate::store::rollup::SummarySql = crate::store::rollup::SummarySql {
    head: SUMMARY_HEAD,
    rollup_series: SUMMARY_ROLLUP_SERIES,
    rollup_width: SUMMARY_ROLLUP_WIDTH,
    rollup_from: SUMMARY_ROLLUP_FROM,
    rollup_to: SUMMARY_ROLLUP_TO,
    raw_org: SUMMARY_RAW_ORG,
    raw_org_from: SUMMARY_RAW_ORG_FROM,
    raw_all: SUMMARY_RAW_ALL,
    raw_to: SUMMARY_RAW_TO,
    raw_group: SUMMARY_RAW_GROUP,
    tail: SUMMARY_TAIL,
};
