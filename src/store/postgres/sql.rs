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

crate::store::sql::dialect_sql! {
    param1: "$1",
    // SUM(bigint) is numeric in PostgreSQL: cast back, the counts fit in 64 bits.
    sum: "::bigint",
    failures: "COUNT(*) FILTER (WHERE failed)",
}

/// A rebuild reads every event: the per-connection statement timeout would cut it short.
pub const REBUILD_NO_TIMEOUT: &str = "SET LOCAL statement_timeout = 0";
/// EXCLUSIVE blocks appends' upserts (ROW EXCLUSIVE) but not summaries (ACCESS
/// SHARE), which keep reading the old rollups until the rebuild commits.
pub const LOCK_ROLLUPS: &str = "LOCK TABLE audit_rollups IN EXCLUSIVE MODE";
pub const PING: &str = "SELECT 1";

/// What the migrator has recorded; read before running it (see `PostgresStore::migrate`).
pub const APPLIED_MIGRATIONS: &str = "SELECT version, checksum, success FROM _sqlx_migrations";
/// Creates the monthly partitions from this month to `$1` months ahead (idempotent).
pub const ENSURE_PARTITIONS: &str = "SELECT audit_ensure_partitions($1)";
