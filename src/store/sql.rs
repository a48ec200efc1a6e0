//! The SQL the stores share, written once: the statements both databases read
//! alike, and a skeleton that each store's `sql` module instantiates with what its
//! dialect spells differently (`dialect_sql!`), so the text still ends up in
//! `const`s.

pub const DELETE_ROLLUPS: &str = "DELETE FROM audit_rollups";
pub const ANY_EVENT: &str = "SELECT EXISTS (SELECT 1 FROM audit_events)";

// The summary statement's fragments every dialect shares; `rollup::summary_statement`
// binds a value after each.
pub const SUMMARY_ROLLUP_SERIES: &str =
    "SELECT action, event_count AS n, failure_count AS f FROM audit_rollups WHERE series = ";
pub const SUMMARY_ROLLUP_WIDTH: &str = " AND width_s = ";
pub const SUMMARY_ROLLUP_FROM: &str = " AND bucket_start_ns >= ";
pub const SUMMARY_ROLLUP_TO: &str = " AND bucket_start_ns < ";
pub const SUMMARY_RAW_ORG_FROM: &str = " AND occurred_at_ns >= ";
pub const SUMMARY_RAW_TO: &str = " AND occurred_at_ns < ";
pub const SUMMARY_RAW_GROUP: &str = " GROUP BY action";
pub const SUMMARY_UNION: &str = " UNION ALL ";
pub const SUMMARY_TAIL: &str = ") AS pieces GROUP BY action";

/// The statements whose text depends on the dialect, as `dialect_sql!` fills them in.
pub struct Dialect {
    pub summary_head: &'static str,
    pub summary_raw_org: &'static str,
    pub summary_raw_all: &'static str,
    pub rebuild_org_rollups: &'static str,
    pub rebuild_platform_rollups: &'static str,
}

/// Defines, in the calling module, the shared statements in one dialect's
/// spelling, and `DIALECT` holding them:
/// - `param1`: the first numbered parameter (`?1` or `$1`);
/// - `sum`: what follows `SUM(..)` to read it back as a 64-bit integer;
/// - `failures`: the aggregate counting the failed events of a group.
// Laid out by hand: rustfmt puts each `concat!` piece on a line of its own and
// misindents the nested invocations.
#[rustfmt::skip]
macro_rules! dialect_sql {
    (param1: $p1:literal, sum: $sum:literal, failures: $failures:literal $(,)?) => {
        pub const SUMMARY_HEAD: &str =
            concat!("SELECT action, SUM(n)", $sum, " AS count, SUM(f)", $sum, " AS failure_count FROM (");
        pub const SUMMARY_RAW_ORG: &str = $crate::store::sql::dialect_sql!(@raw $failures, "organization_id = ");
        pub const SUMMARY_RAW_ALL: &str = $crate::store::sql::dialect_sql!(@raw $failures, "occurred_at_ns >= ");

        pub const REBUILD_ORG_ROLLUPS: &str =
            $crate::store::sql::dialect_sql!(@rebuild $p1, $failures, "organization_id", "1, 3, 4");
        pub const REBUILD_PLATFORM_ROLLUPS: &str = $crate::store::sql::dialect_sql!(@rebuild $p1, $failures, "''", "3, 4");

        pub const DIALECT: $crate::store::sql::Dialect = $crate::store::sql::Dialect {
            summary_head: SUMMARY_HEAD,
            summary_raw_org: SUMMARY_RAW_ORG,
            summary_raw_all: SUMMARY_RAW_ALL,
            rebuild_org_rollups: REBUILD_ORG_ROLLUPS,
            rebuild_platform_rollups: REBUILD_PLATFORM_ROLLUPS,
        };
    };
    // Counts per action of the events matching a condition, whose value
    // `rollup::summary_statement` binds next.
    (@raw $failures:literal, $condition:literal) => {
        concat!("SELECT action, COUNT(*) AS n, ", $failures, " AS f FROM audit_events WHERE ", $condition)
    };
    // Rollups of one series (a column or a constant) recomputed from the events, for the
    // width bound to the first parameter. Events lie at or after 1970, so integer
    // division is the floor.
    (@rebuild $p1:literal, $failures:literal, $series:literal, $group:literal) => {
        concat!("INSERT INTO audit_rollups (series, width_s, bucket_start_ns, action, event_count, failure_count) ",
            "SELECT ", $series, ", ", $p1, ", occurred_at_ns / (", $p1, " * 1000000000) * (", $p1, " * 1000000000), ",
            "action, COUNT(*), ", $failures, " FROM audit_events GROUP BY ", $group)
    };
}
pub(crate) use dialect_sql;
