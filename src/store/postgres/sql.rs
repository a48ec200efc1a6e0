//! The PostgreSQL store's SQL, as constants (fragments where a statement is
//! assembled from a plan). Batches go in as arrays through `UNNEST`, so each
//! statement has one text, prepared once per connection, whatever the batch size.

/// Claims the batch's ids; returns those not stored before. Rows are inserted in
/// array order, which the caller sorts, so concurrent batches lock ids in one order.
pub const CLAIM_IDS: &str = "INSERT INTO audit_event_ids (organization_id, id) \
     SELECT * FROM UNNEST($1::text[], $2::text[]) \
     ON CONFLICT (organization_id, id) DO NOTHING RETURNING organization_id, id";

/// `$13` is the batch's receive time, one value for every row.
pub const INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns) \
     SELECT e.organization_id, e.id, e.occurred_at_ns, e.action, e.failed, e.actor_type, e.actor_id, \
     e.target_type, e.target_id, e.ip::inet, e.user_agent, e.details::json, $13 \
     FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::bool[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
     AS e(organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, target_type, target_id, \
     ip, user_agent, details)";

/// Rows are upserted in array order: the increments come sorted by key, so
/// concurrent writers lock rollup rows in one order.
pub const UPSERT_ROLLUPS: &str = "INSERT INTO audit_rollups \
     (series, width_s, bucket_start_ns, action, event_count, failure_count) \
     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::int8[], $6::int8[]) \
     ON CONFLICT (series, width_s, bucket_start_ns, action) DO UPDATE SET \
     event_count = audit_rollups.event_count + EXCLUDED.event_count, \
     failure_count = audit_rollups.failure_count + EXCLUDED.failure_count";

// SUM(bigint) is numeric in PostgreSQL: cast back, the counts fit in 64 bits.
pub const SUMMARY_HEAD: &str = "SELECT action, SUM(n)::bigint AS count, SUM(f)::bigint AS failure_count FROM (";
pub const SUMMARY_ROLLUP_SERIES: &str =
    "SELECT action, event_count AS n, failure_count AS f FROM audit_rollups WHERE series = ";
pub const SUMMARY_ROLLUP_WIDTH: &str = " AND width_s = ";
pub const SUMMARY_ROLLUP_FROM: &str = " AND bucket_start_ns >= ";
pub const SUMMARY_ROLLUP_TO: &str = " AND bucket_start_ns < ";
pub const SUMMARY_RAW_ORG: &str = "SELECT action, COUNT(*) AS n, COUNT(*) FILTER (WHERE failed) AS f \
     FROM audit_events WHERE organization_id = ";
pub const SUMMARY_RAW_ORG_FROM: &str = " AND occurred_at_ns >= ";
pub const SUMMARY_RAW_ALL: &str = "SELECT action, COUNT(*) AS n, COUNT(*) FILTER (WHERE failed) AS f \
     FROM audit_events WHERE occurred_at_ns >= ";
pub const SUMMARY_RAW_TO: &str = " AND occurred_at_ns < ";
pub const SUMMARY_RAW_GROUP: &str = " GROUP BY action";
pub const SUMMARY_TAIL: &str = ") AS pieces GROUP BY action";

/// The naive count the rollups must always equal.
pub const NAIVE_ONE_ORG: &str = "SELECT action, COUNT(*) AS count, COUNT(*) FILTER (WHERE failed) AS failure_count \
     FROM audit_events WHERE organization_id = $1 AND occurred_at_ns >= $2 AND occurred_at_ns < $3 GROUP BY action";
pub const NAIVE_ALL_ORGS: &str = "SELECT action, COUNT(*) AS count, COUNT(*) FILTER (WHERE failed) AS failure_count \
     FROM audit_events WHERE occurred_at_ns >= $1 AND occurred_at_ns < $2 GROUP BY action";

/// A rebuild reads every event: the per-connection statement timeout would cut it short.
pub const REBUILD_NO_TIMEOUT: &str = "SET LOCAL statement_timeout = 0";
/// EXCLUSIVE blocks appends' upserts (ROW EXCLUSIVE) but not summaries (ACCESS
/// SHARE), which keep reading the old rollups until the rebuild commits.
pub const LOCK_ROLLUPS: &str = "LOCK TABLE audit_rollups IN EXCLUSIVE MODE";
pub const DELETE_ROLLUPS: &str = "DELETE FROM audit_rollups";
// Events lie at or after 1970, so integer division is the floor.
pub const REBUILD_ORG_ROLLUPS: &str = "INSERT INTO audit_rollups \
     (series, width_s, bucket_start_ns, action, event_count, failure_count) \
     SELECT organization_id, $1, occurred_at_ns / ($1 * 1000000000) * ($1 * 1000000000), action, \
     COUNT(*), COUNT(*) FILTER (WHERE failed) FROM audit_events GROUP BY 1, 3, 4";
pub const REBUILD_PLATFORM_ROLLUPS: &str = "INSERT INTO audit_rollups \
     (series, width_s, bucket_start_ns, action, event_count, failure_count) \
     SELECT '', $1, occurred_at_ns / ($1 * 1000000000) * ($1 * 1000000000), action, \
     COUNT(*), COUNT(*) FILTER (WHERE failed) FROM audit_events GROUP BY 3, 4";

pub const ANY_EVENT: &str = "SELECT EXISTS (SELECT 1 FROM audit_events)";
pub const PING: &str = "SELECT 1";

/// What the migrator has recorded; read before running it (see `PostgresStore::migrate`).
pub const APPLIED_MIGRATIONS: &str = "SELECT version, checksum, success FROM _sqlx_migrations";
/// Creates the monthly partitions from this month to `$1` months ahead (idempotent).
pub const ENSURE_PARTITIONS: &str = "SELECT audit_ensure_partitions($1)";

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
