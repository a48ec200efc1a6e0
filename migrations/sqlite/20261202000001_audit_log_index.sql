-- Each event's place in its organization's log (`log_index`: 0, 1, 2, … per
-- organization in commit order, never changed once assigned), a global commit
-- sequence for snapshot listings (`seq`), and the indexes of the listings.
--
-- SQLite cannot add a NOT NULL column without a default, nor an INTEGER PRIMARY KEY,
-- to a table: the table is rebuilt. Events already stored get their log index in the
-- order they were stored (their rowid), and keep that rowid as `seq`, so the commit
-- sequence continues where it was. `seq` is an INTEGER PRIMARY KEY (the rowid under
-- its own name), which VACUUM never renumbers, unlike an implicit rowid.

DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;

CREATE TABLE audit_events_with_log_index (
    seq             INTEGER PRIMARY KEY,
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
    received_at_ns  INTEGER NOT NULL,
    log_index       INTEGER NOT NULL CHECK (log_index >= 0)
);

INSERT INTO audit_events_with_log_index (seq, organization_id, id, occurred_at_ns, action, failed, actor_type,
    actor_id, target_type, target_id, ip, user_agent, details, received_at_ns, log_index)
SELECT rowid, organization_id, id, occurred_at_ns, action, failed, actor_type, actor_id, target_type, target_id,
    ip, user_agent, details, received_at_ns,
    ROW_NUMBER() OVER (PARTITION BY organization_id ORDER BY rowid) - 1
FROM audit_events ORDER BY rowid;

DROP TABLE audit_events;
ALTER TABLE audit_events_with_log_index RENAME TO audit_events;

-- The next log index of each organization, advanced in the append's transaction.
CREATE TABLE audit_logs (
    organization_id TEXT    NOT NULL PRIMARY KEY,
    next_index      INTEGER NOT NULL CHECK (next_index >= 0)
) WITHOUT ROWID;

INSERT INTO audit_logs (organization_id, next_index)
SELECT organization_id, MAX(log_index) + 1 FROM audit_events GROUP BY organization_id;

-- Idempotency key, and GetEvent's one probe: by id in one organization, or by id
-- alone across every organization (id first, so both are one index range).
CREATE UNIQUE INDEX audit_events_id_org ON audit_events (id, organization_id);
-- Each log index is taken once per organization.
CREATE UNIQUE INDEX audit_events_org_log ON audit_events (organization_id, log_index);
-- Listings by time, per organization and platform-wide, in listing order; they also
-- cover the summary's raw edges (action, failed), as the indexes they replace did.
CREATE INDEX audit_events_org_time ON audit_events (organization_id, occurred_at_ns, log_index, action, failed);
CREATE INDEX audit_events_time ON audit_events (occurred_at_ns, organization_id, log_index, action, failed);
-- Listings filtered by action, by result, by actor or by target. Actor and target ids
-- lead their indexes: they are specific enough that a platform-wide listing of one
-- sorts few rows, while one organization's listing reads them in listing order.
CREATE INDEX audit_events_org_action ON audit_events (organization_id, action, occurred_at_ns, log_index);
CREATE INDEX audit_events_actor ON audit_events (actor_id, organization_id, occurred_at_ns, log_index);
CREATE INDEX audit_events_target ON audit_events (target_id, organization_id, occurred_at_ns, log_index);
-- Failures only: a small share of the events, so the index costs ingest little. A
-- listing whose filter asks for failures says `failed = 1` in these very words, which
-- is what lets SQLite use a partial index.
CREATE INDEX audit_events_org_failures ON audit_events (organization_id, occurred_at_ns, log_index) WHERE failed = 1;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- A log index once handed out is never handed out again: the counter only moves up.
CREATE TRIGGER audit_logs_only_forward BEFORE UPDATE ON audit_logs
WHEN NEW.next_index < OLD.next_index OR NEW.organization_id IS NOT OLD.organization_id
BEGIN
    SELECT RAISE(ABORT, 'audit_logs only moves forward');
END;

CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs only moves forward');
END;
