-- Audit events (PostgreSQL), append-only and partitioned by month. Times are integer
-- nanoseconds since the Unix epoch so that range boundaries compare exactly at any
-- precision a client sends, as in the SQLite schema.
--
-- Citus-ready: no foreign keys, and organization_id leads every key that is looked
-- up per tenant, so the tables can later be distributed by organization_id.
CREATE TABLE audit_events (
    organization_id text    NOT NULL,
    id              text    NOT NULL,
    occurred_at_ns  bigint  NOT NULL,
    action          text    NOT NULL,
    failed          boolean NOT NULL,
    actor_type      text    NOT NULL,
    actor_id        text    NOT NULL,
    target_type     text    NOT NULL,
    target_id       text    NOT NULL,
    ip              inet,
    user_agent      text    NOT NULL,
    -- json, not jsonb: the text is kept as sent, and jsonb would refuse a \u0000 the
    -- protobuf Struct may legally carry.
    details         json,
    received_at_ns  bigint  NOT NULL
) PARTITION BY RANGE (occurred_at_ns);

-- An event outside every monthly partition (a backfill, a clock far ahead) is
-- stored here rather than refused; audit_split_default_partition() moves such
-- events into monthly partitions of their own.
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- Covering indexes of the summary's raw edges: per organization, and platform-wide.
-- Declared on the parent, so every partition gets them, attached ones included.
CREATE INDEX audit_events_org_time ON audit_events (organization_id, occurred_at_ns) INCLUDE (action, failed);
CREATE INDEX audit_events_time ON audit_events (occurred_at_ns) INCLUDE (action, failed);

-- Idempotency key: an id is unique within its organization, so one tenant's ids can
-- never collide with, or reveal, another's. A separate table because a unique index
-- on a partitioned table must include the partition key, which would make the same
-- id at two different times two events. Ids outlive retention on purpose: a late
-- retry of a purged event stays a duplicate instead of being stored again.
CREATE TABLE audit_event_ids (
    organization_id text NOT NULL,
    id              text NOT NULL,
    PRIMARY KEY (organization_id, id)
);

-- Append-only. Row triggers on the partitioned parent are cloned onto every
-- partition, present and future. Dropping a whole partition is DDL and fires no
-- row trigger: audit_drop_partitions_before() (retention) is the only way events
-- leave, and the service role is granted neither DELETE nor ownership.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_event_ids_append_only BEFORE UPDATE OR DELETE ON audit_event_ids
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_event_ids_no_truncate BEFORE TRUNCATE ON audit_event_ids
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
