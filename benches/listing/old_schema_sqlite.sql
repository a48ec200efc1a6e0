-- The SQLite schema before log_index and the listing indexes: the migrations of
-- migrations/sqlite as they stood then, in order, applied to a fresh file.

-- 20261127000001_audit_events.sql
-- Audit events, append-only. Times are integer nanoseconds since the Unix epoch so
-- that range boundaries compare exactly at any precision a client sends.
CREATE TABLE audit_events (
    organization_id TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    occurred_at_ns  INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    failed          INTEGER NOT NULL CHECK (failed IN (0, 1)),
    actor_type      TEXT    NOT NULL,
    actor_id        TEXT    NOT NULL,
    target_type     TEXT    NOT NULL,
    target_id       TEXT    NOT NULL,
    ip              TEXT,
    user_agent      TEXT    NOT NULL,
    details         TEXT,
    received_at_ns  INTEGER NOT NULL
);

-- Idempotency key: an id is unique within its organization, so one tenant's ids
-- can never collide with, or reveal, another's.
CREATE UNIQUE INDEX audit_events_org_id ON audit_events (organization_id, id);

-- Covering indexes of the summary: per organization, and platform-wide.
CREATE INDEX audit_events_org_time ON audit_events (organization_id, occurred_at_ns, action, failed);
CREATE INDEX audit_events_time ON audit_events (occurred_at_ns, action, failed);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- 20261127000002_audit_rollups.sql
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
