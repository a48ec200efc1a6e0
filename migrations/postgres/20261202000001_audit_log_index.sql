-- Each event's place in its organization's log (`log_index`: 0, 1, 2, … per
-- organization in commit order, never changed once assigned), the transaction that
-- stored it (`txid`, for snapshot listings), and the indexes of the listings.
--
-- Where uniqueness is enforced: a unique index of the partitioned audit_events would
-- have to include occurred_at_ns, which would make it meaningless. audit_event_ids is
-- not partitioned and outlives retention, so it carries each event's log index under
-- UNIQUE (organization_id, log_index): no index is ever taken twice, not even after
-- its event's month was dropped. It also carries occurred_at_ns, so that GetEvent
-- finds an event by id with one probe here and one in the event's own partition.

-- Events already stored are numbered in the order they were stored: the batch's
-- receive time, then the event's time and id within a batch. The append-only
-- triggers refuse this one UPDATE: dropped and created again in this transaction, so
-- no other session ever sees the tables without them.
DROP TRIGGER audit_events_append_only ON audit_events;
DROP TRIGGER audit_event_ids_append_only ON audit_event_ids;

-- Rows stored before this migration take its transaction id (the default is computed
-- once, here): committed, so visible to every snapshot taken after it.
ALTER TABLE audit_events
    ADD COLUMN log_index bigint,
    ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();

UPDATE audit_events e SET log_index = n.log_index
FROM (SELECT organization_id, id,
             row_number() OVER (PARTITION BY organization_id ORDER BY received_at_ns, occurred_at_ns, id) - 1
                 AS log_index
      FROM audit_events) n
WHERE e.organization_id = n.organization_id AND e.id = n.id;

ALTER TABLE audit_events ALTER COLUMN log_index SET NOT NULL;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_log_index_natural CHECK (log_index >= 0);

-- NULL only for the ids of events that retention dropped before log indexes existed.
ALTER TABLE audit_event_ids
    ADD COLUMN log_index bigint CHECK (log_index >= 0),
    ADD COLUMN occurred_at_ns bigint;

UPDATE audit_event_ids i SET log_index = e.log_index, occurred_at_ns = e.occurred_at_ns
FROM audit_events e
WHERE e.organization_id = i.organization_id AND e.id = i.id;

-- The id leads the key, so that GetEvent across every organization (by id alone) is
-- one range of it too; ON CONFLICT and the duplicate check name the same columns.
ALTER TABLE audit_event_ids DROP CONSTRAINT audit_event_ids_pkey;
ALTER TABLE audit_event_ids ADD PRIMARY KEY (id, organization_id);
ALTER TABLE audit_event_ids ADD CONSTRAINT audit_event_ids_log_index UNIQUE (organization_id, log_index);

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_event_ids_append_only BEFORE UPDATE OR DELETE ON audit_event_ids
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

-- The next log index of each organization. An append locks its organizations' rows
-- (in sorted order) until it commits, so batches of one organization commit in the
-- order of their indexes.
CREATE TABLE audit_logs (
    organization_id text   NOT NULL PRIMARY KEY,
    next_index      bigint NOT NULL CHECK (next_index >= 0)
);

INSERT INTO audit_logs (organization_id, next_index)
SELECT organization_id, max(log_index) + 1 FROM audit_event_ids
WHERE log_index IS NOT NULL GROUP BY organization_id;

-- A log index once handed out is never handed out again: the counter only moves up,
-- and is never removed.
CREATE FUNCTION audit_logs_refuse_rewind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_index < OLD.next_index OR NEW.organization_id <> OLD.organization_id THEN
        RAISE EXCEPTION 'audit_logs only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_logs_only_forward BEFORE UPDATE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_rewind();
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Listings by time, per organization and platform-wide, in listing order; they also
-- cover the summary's raw edges, as the indexes they replace did.
DROP INDEX audit_events_org_time;
DROP INDEX audit_events_time;
CREATE INDEX audit_events_org_time ON audit_events (organization_id, occurred_at_ns, log_index)
    INCLUDE (action, failed);
-- Organizations in byte order, whatever the database's collation, as listings order
-- them (and as SQLite does).
CREATE INDEX audit_events_time ON audit_events (occurred_at_ns, organization_id COLLATE "C", log_index)
    INCLUDE (action, failed);
-- Listings filtered by action, by result, by actor or by target. Actor and target ids
-- lead their indexes: they are specific enough that a platform-wide listing of one
-- sorts few rows, while one organization's listing reads them in listing order.
CREATE INDEX audit_events_org_action ON audit_events (organization_id, action, occurred_at_ns, log_index);
-- Failures only: a small share of the events, so the index costs ingest little. A
-- listing whose filter asks for failures says `failed` in these very words, so that
-- even a generic plan of the prepared statement can use it.
CREATE INDEX audit_events_org_failures ON audit_events (organization_id, occurred_at_ns, log_index) WHERE failed;
CREATE INDEX audit_events_actor ON audit_events (actor_id, organization_id, occurred_at_ns, log_index);
CREATE INDEX audit_events_target ON audit_events (target_id, organization_id, occurred_at_ns, log_index);
