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
