-- Pre-aggregated counts per (series, bucket width, bucket start, action), kept in
-- the same transaction as the events they count. `series` is an organization id,
-- or '' for the platform-wide series.
CREATE TABLE audit_rollups (
    series          TEXT    NOT NULL,
    width_s         INTEGER NOT NULL,
    bucket_start_ns INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    event_count     INTEGER NOT NULL,
    failure_count   INTEGER NOT NULL,
    PRIMARY KEY (series, width_s, bucket_start_ns, action)
) WITHOUT ROWID;
