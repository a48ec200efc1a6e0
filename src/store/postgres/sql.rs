//! The PostgreSQL store's SQL, as constants (fragments where a statement is
//! assembled from a plan). Batches go in as arrays through `UNNEST`, so each
//! statement has one text, prepared once per connection, whatever the batch size.

/// Locks the log counters of the batch's organizations (`$1`, sorted, so that
/// concurrent batches lock them in one order), creating those missing; returns each
/// one's next index. The locks hold until commit: batches of one organization take
/// their indexes, and commit, one after the other.
pub const LOCK_LOG_COUNTERS: &str = "INSERT INTO audit_logs (organization_id, next_index) \
     SELECT o, 0 FROM UNNEST($1::text[]) AS o \
     ON CONFLICT (organization_id) DO UPDATE SET next_index = audit_logs.next_index \
     RETURNING organization_id, next_index";

/// The batch's ids already stored. Read after the counters are locked: whoever
/// stores an id of these organizations holds their counters until it commits, so
/// nothing is missed in between.
pub const STORED_IDS: &str = "SELECT i.organization_id, i.id \
     FROM UNNEST($1::text[], $2::text[]) AS c(organization_id, id) \
     JOIN audit_event_ids i ON i.id = c.id AND i.organization_id = c.organization_id";

/// Stores the new ids with their log index and time, and moves the locked counters
/// past them (`$5`, `$6`).
pub const INSERT_IDS: &str = "WITH advanced AS ( \
     UPDATE audit_logs SET next_index = n.next_index \
     FROM UNNEST($5::text[], $6::int8[]) AS n(organization_id, next_index) \
     WHERE audit_logs.organization_id = n.organization_id) \
     INSERT INTO audit_event_ids (organization_id, id, log_index, occurred_at_ns) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])";

/// `$13` is the batch's receive time, one value for every row. `txid` is left to its
/// default, the storing transaction.
pub const INSERT_EVENTS: &str = "INSERT INTO audit_events (organization_id, id, occurred_at_ns, action, failed, \
     actor_type, actor_id, target_type, target_id, ip, user_agent, details, received_at_ns, log_index) \
     SELECT e.organization_id, e.id, e.occurred_at_ns, e.action, e.failed, e.actor_type, e.actor_id, \
     e.target_type, e.target_id, e.ip::inet, e.user_agent, e.details::json, $13, e.log_index \
     FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::bool[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $14::int8[]) \
     AS e(organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, target_type, target_id, \
     ip, user_agent, details, log_index)";

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
    // `host`: the address without a mask; `details` as the text it was stored as.
    columns: crate::store::sql::event_columns!("", ip: "host(ip)", details: "details::text"),
    // The events a snapshot sees: stored by a transaction that had committed when
    // the snapshot was taken, whatever committed since.
    snapshot: ("pg_visible_in_snapshot(txid, CAST(", " AS pg_snapshot))"),
    // Byte order whatever the database's collation, as on SQLite; the platform-wide
    // time index sorts it so.
    org_key: "organization_id COLLATE \"C\"",
    failures_only: "failed",
}

/// One event by id, in one organization (`$2`) or in all of them: one probe of the
/// ids' key, then one of the event's own partition by `(organization_id,
/// occurred_at_ns, log_index)`. An id of another organization ends at the first.
pub const GET_EVENT_IN_ORG: &str = concat!(
    "SELECT ",
    crate::store::sql::event_columns!("e.", ip: "host(e.ip)", details: "e.details::text"),
    " FROM audit_event_ids i JOIN audit_events e ON e.organization_id = i.organization_id \
     AND e.occurred_at_ns = i.occurred_at_ns AND e.log_index = i.log_index \
     WHERE i.id = $1 AND i.organization_id = $2"
);
pub const GET_EVENT_ANY_ORG: &str = concat!(
    "SELECT ",
    crate::store::sql::event_columns!("e.", ip: "host(e.ip)", details: "e.details::text"),
    " FROM audit_event_ids i JOIN audit_events e ON e.organization_id = i.organization_id \
     AND e.occurred_at_ns = i.occurred_at_ns AND e.log_index = i.log_index \
     WHERE i.id = $1 LIMIT 2"
);
/// A listing's snapshot: which transactions had committed now.
pub const CURRENT_SNAPSHOT: &str = "SELECT pg_current_snapshot()::text";

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
