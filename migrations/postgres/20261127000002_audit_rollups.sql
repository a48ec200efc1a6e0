-- Pre-aggregated counts per (series, bucket width, bucket start, action), kept in
-- the same transaction as the events they count. `series` is an organization id,
-- or '' for the platform-wide series. Not partitioned: its size follows the number
-- of buckets, not of events.
CREATE TABLE audit_rollups (
    series          text   NOT NULL,
    width_s         bigint NOT NULL,
    bucket_start_ns bigint NOT NULL,
    action          text   NOT NULL,
    event_count     bigint NOT NULL,
    failure_count   bigint NOT NULL,
    PRIMARY KEY (series, width_s, bucket_start_ns, action)
);
