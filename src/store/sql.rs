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

// The listing statement's fragments every dialect shares; `listing::page_statement`
// binds a value after each that ends in an operator, a comma or a parenthesis.
// Within one organization the order and the keyset leave out `organization_id`
// (fixed by the scope): the keyset is then a row comparison on consecutive columns
// of every per-organization index, which the databases use to seek, not to filter.
pub const LIST_ORG: &str = " AND organization_id = ";
pub const LIST_ORG_AFTER: &str = " AND (occurred_at_ns, log_index) < (";
pub const LIST_NEXT: &str = ", ";
pub const LIST_AFTER_END: &str = ")";
pub const LIST_FILTER: &str = " AND ";
pub const LIST_ORG_ORDER: &str = " ORDER BY occurred_at_ns DESC, log_index DESC LIMIT ";

/// The statements whose text depends on the dialect, as `dialect_sql!` fills them in.
pub struct Dialect {
    pub summary_head: &'static str,
    pub summary_raw_org: &'static str,
    pub summary_raw_all: &'static str,
    pub rebuild_org_rollups: &'static str,
    pub rebuild_platform_rollups: &'static str,
    /// The listing up to its snapshot condition, whose value is bound next.
    pub list_head: &'static str,
    /// What closes the snapshot condition after its value.
    pub list_snapshot_end: &'static str,
    /// The condition of the partial index of failures, for a filter that implies it.
    pub list_failures: &'static str,
    /// Across organizations: the keyset condition, and the order.
    pub list_all_after: &'static str,
    pub list_all_order: &'static str,
}

/// Defines, in the calling module, the shared statements in one dialect's
/// spelling, and `DIALECT` holding them:
/// - `param1`: the first numbered parameter (`?1` or `$1`);
/// - `sum`: what follows `SUM(..)` to read it back as a 64-bit integer;
/// - `failures`: the aggregate counting the failed events of a group;
/// - `columns`: an event's columns as `StoredEvent`s are read back (`ip` and
///   `details` as text);
/// - `snapshot`: the condition an event of the listing's snapshot meets, around the
///   snapshot's bound value;
/// - `org_key`: `organization_id` compared byte by byte, as listings order it;
/// - `failures_only`: the condition of the partial index of failures, word for word.
// Laid out by hand: rustfmt puts each `concat!` piece on a line of its own and
// misindents the nested invocations.
#[rustfmt::skip]
macro_rules! dialect_sql {
    (param1: $p1:literal, sum: $sum:literal, failures: $failures:literal, columns: $columns:expr,
     snapshot: ($snap_open:literal, $snap_close:literal), org_key: $org:literal,
     failures_only: $failures_only:literal $(,)?) => {
        pub const SUMMARY_HEAD: &str =
            concat!("SELECT action, SUM(n)", $sum, " AS count, SUM(f)", $sum, " AS failure_count FROM (");
        pub const SUMMARY_RAW_ORG: &str = $crate::store::sql::dialect_sql!(@raw $failures, "organization_id = ");
        pub const SUMMARY_RAW_ALL: &str = $crate::store::sql::dialect_sql!(@raw $failures, "occurred_at_ns >= ");

        pub const REBUILD_ORG_ROLLUPS: &str =
            $crate::store::sql::dialect_sql!(@rebuild $p1, $failures, "organization_id", "1, 3, 4");
        pub const REBUILD_PLATFORM_ROLLUPS: &str = $crate::store::sql::dialect_sql!(@rebuild $p1, $failures, "''", "3, 4");

        pub const LIST_HEAD: &str = concat!("SELECT ", $columns, " FROM audit_events WHERE ", $snap_open);
        pub const LIST_SNAPSHOT_END: &str = $snap_close;
        pub const LIST_FAILURES: &str = concat!(" AND ", $failures_only);
        pub const LIST_ALL_AFTER: &str = concat!(" AND (occurred_at_ns, ", $org, ", log_index) < (");
        pub const LIST_ALL_ORDER: &str =
            concat!(" ORDER BY occurred_at_ns DESC, ", $org, " DESC, log_index DESC LIMIT ");

        pub const DIALECT: $crate::store::sql::Dialect = $crate::store::sql::Dialect {
            summary_head: SUMMARY_HEAD,
            summary_raw_org: SUMMARY_RAW_ORG,
            summary_raw_all: SUMMARY_RAW_ALL,
            rebuild_org_rollups: REBUILD_ORG_ROLLUPS,
            rebuild_platform_rollups: REBUILD_PLATFORM_ROLLUPS,
            list_head: LIST_HEAD,
            list_snapshot_end: LIST_SNAPSHOT_END,
            list_failures: LIST_FAILURES,
            list_all_after: LIST_ALL_AFTER,
            list_all_order: LIST_ALL_ORDER,
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

/// An event's columns, in the names `listing::events_of` reads: each column of the
/// table `$t` (a prefix such as `"e."`, or `""`), `ip` and `details` as the dialect
/// reads them back as text.
#[rustfmt::skip]
macro_rules! event_columns {
    ($t:literal, ip: $ip:literal, details: $details:literal) => {
        concat!($t, "organization_id, ", $t, "id, ", $t, "occurred_at_ns, ", $t, "action, ", $t, "failed, ",
            $t, "actor_type, ", $t, "actor_id, ", $t, "target_type, ", $t, "target_id, ", $ip, " AS ip, ",
            $t, "user_agent, ", $details, " AS details, ", $t, "log_index")
    };
}
pub(crate) use event_columns;
