-- The PostgreSQL schema before log_index and the listing indexes: the migrations
-- of migrations/postgres as they stood then, in order, applied to a fresh database.

-- 20261127000001_audit_events.sql
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

-- 20261127000002_audit_rollups.sql
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

-- 20261127000003_audit_partitions.sql
-- Monthly partitions of audit_events: created ahead of time (at start and by a
-- scheduled job), repaired when the default partition caught events, and dropped
-- whole for retention. Months are UTC calendar months, named audit_events_pYYYYMM.

-- Statement triggers, unlike row triggers, are not cloned onto partitions: each
-- partition gets its own, so that TRUNCATE of one partition is refused too.
CREATE FUNCTION audit_refuse_truncate_of(partition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', partition);
END;
$$;

SELECT audit_refuse_truncate_of('audit_events_default');

-- Creates the partition of the month starting at `month_start` (UTC, first of the
-- month at midnight) unless it exists. Returns whether it created it. Refuses
-- (with a warning, returning false) when the default partition already holds
-- events of that month: attaching would fail on them; audit_split_default_partition()
-- moves them first.
CREATE FUNCTION audit_create_month_partition(month_start timestamp) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := extract(epoch FROM month_start)::bigint * 1000000000;
    hi bigint := extract(epoch FROM month_start + interval '1 month')::bigint * 1000000000;
    name text := 'audit_events_p' || to_char(month_start, 'YYYYMM');
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_events_default WHERE occurred_at_ns >= lo AND occurred_at_ns < hi) THEN
        RAISE WARNING 'audit_events_default holds events of %: run audit_split_default_partition()',
            to_char(month_start, 'YYYY-MM');
        RETURN false;
    END IF;
    -- CREATE TABLE ... PARTITION OF would lock the parent ACCESS EXCLUSIVE; creating
    -- the table alone and attaching it takes only SHARE UPDATE EXCLUSIVE on the
    -- parent, so appends and summaries keep running. Indexes and row triggers of
    -- the parent are cloned onto it by the attach.
    EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
    PERFORM audit_refuse_truncate_of(name);
    RETURN true;
END;
$$;

-- Ensures partitions from the current month to `months_ahead` months ahead exist;
-- idempotent, returns how many it created. The service calls it at start and
-- daily; a scheduled job may too (e.g. pg_cron: SELECT audit_ensure_partitions(3)).
-- SECURITY DEFINER so that a service role without DDL rights can run it.
CREATE FUNCTION audit_ensure_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '5s' AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    created integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Replicas starting together call this at once: the first creates, the others
    -- then find the partitions there instead of failing on a duplicate name.
    PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
    FOR i IN 0..months_ahead LOOP
        IF audit_create_month_partition(this_month + make_interval(months => i)) THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

-- Moves the events the default partition caught into monthly partitions of their
-- own (created as needed), leaving it empty. Locks audit_events exclusively while
-- it runs: run it in a quiet hour; its cost is that of the events moved. Returns
-- how many events moved. The events are re-inserted, not updated or deleted, so
-- the append-only triggers stay in force; the emptied old table is dropped.
CREATE FUNCTION audit_split_default_partition() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamp;
    moved bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
    LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE;
    ALTER TABLE audit_events DETACH PARTITION audit_events_default;
    ALTER TABLE audit_events_default RENAME TO audit_events_default_split;
    CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;
    PERFORM audit_refuse_truncate_of('audit_events_default');
    -- Whole seconds, so that an event a nanosecond before midnight is not rounded
    -- into the next month.
    FOR month_start IN
        SELECT DISTINCT date_trunc('month', to_timestamp(occurred_at_ns / 1000000000) AT TIME ZONE 'UTC')
        FROM audit_events_default_split ORDER BY 1
    LOOP
        PERFORM audit_create_month_partition(month_start);
    END LOOP;
    INSERT INTO audit_events SELECT * FROM audit_events_default_split;
    GET DIAGNOSTICS moved = ROW_COUNT;
    DROP TABLE audit_events_default_split;
    RETURN moved;
END;
$$;

-- Retention: drops every monthly partition that ends at or before `cutoff_ns`,
-- with the rollups of its months, in one transaction; returns the partitions
-- dropped. DROP is DDL, so the append-only row triggers do not fire: this is the
-- only way events leave, and it needs the tables' owner. Events the default
-- partition holds are kept (split it first). Takes an ACCESS EXCLUSIVE lock on
-- audit_events for the drop itself (a catalog change, quick).
CREATE FUNCTION audit_drop_partitions_before(cutoff_ns bigint) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.oid::regclass::text AS relation,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''?(-?[0-9]+)''?\)')::bigint AS lo,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::bigint AS hi
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass
        ORDER BY 2
    LOOP
        CONTINUE WHEN part.hi IS NULL OR part.hi > cutoff_ns;
        -- Every bucket width divides a day, so no bucket straddles a month boundary.
        DELETE FROM audit_rollups WHERE bucket_start_ns >= part.lo AND bucket_start_ns < part.hi;
        EXECUTE format('DROP TABLE %s', part.relation);
        RETURN NEXT part.relation;
    END LOOP;
END;
$$;

-- Pin the lookup path of the SECURITY DEFINER function to this schema (temporary
-- schemas last), so no caller can substitute a table or function of their own.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_ensure_partitions(integer) SET search_path = %I, pg_temp', current_schema());
END;
$$;

-- Partition maintenance is for the owner, and for roles it is granted to.
REVOKE EXECUTE ON FUNCTION audit_refuse_truncate_of(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_create_month_partition(timestamp) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_ensure_partitions(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_split_default_partition() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_drop_partitions_before(bigint) FROM PUBLIC;

-- 20261201000001_audit_partitions_adopt_default.sql
-- A month's partition adopts the events the default partition already holds of that
-- month, instead of refusing to exist. Before, one event dated months ahead was enough
-- to keep its month's partition from being created: every tenant's events of that
-- month then went to the default partition, which retention never drops.
--
-- The move copies the month's rows into the new table, deletes them from the default
-- partition and attaches the table, all in the caller's transaction. The DELETE is
-- the only one the schema ever performs, and it is made deliberate this way:
--   * the row trigger that refuses it (audit_events_append_only, as cloned onto the
--     default partition) is disabled around that one statement and enabled again
--     right after. ALTER TABLE ... DISABLE TRIGGER needs the table's owner: the
--     service role reaches this only through the SECURITY DEFINER
--     audit_ensure_partitions(), and cannot disable the trigger itself;
--   * the default partition is locked ACCESS EXCLUSIVE first, so no other session
--     reads or writes it until commit, and catalog changes are transactional: no
--     other session can ever see the trigger disabled, and any error rolls back the
--     disable, the delete and the new table together;
--   * what is deleted is exactly what was copied (the counts are compared, or the
--     whole call fails), and the copies are in the month's partition when the
--     transaction commits. No event leaves audit_events, so the counts and the
--     rollups (kept per bucket, not per partition) stay what they were.
CREATE OR REPLACE FUNCTION audit_create_month_partition(month_start timestamp) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := extract(epoch FROM month_start)::bigint * 1000000000;
    hi bigint := extract(epoch FROM month_start + interval '1 month')::bigint * 1000000000;
    name text := 'audit_events_p' || to_char(month_start, 'YYYYMM');
    columns text;
    copied bigint;
    deleted bigint;
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- CREATE TABLE ... PARTITION OF would lock the parent ACCESS EXCLUSIVE; creating
    -- the table alone and attaching it takes only SHARE UPDATE EXCLUSIVE on the
    -- parent, so appends to the monthly partitions and summaries of them keep
    -- running. Indexes and row triggers of the parent are cloned onto it by the attach.
    EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    -- The attach takes this lock anyway; taking it before looking means no event of
    -- the month can reach the default partition between the look and the attach.
    LOCK TABLE audit_events_default IN ACCESS EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM audit_events_default WHERE occurred_at_ns >= lo AND occurred_at_ns < hi) THEN
        -- Named columns: the default partition's column order need not be the parent's.
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
        FROM pg_attribute
        WHERE attrelid = 'audit_events'::regclass AND attnum > 0 AND NOT attisdropped;
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM audit_events_default '
                       'WHERE occurred_at_ns >= $1 AND occurred_at_ns < $2', name, columns, columns)
            USING lo, hi;
        GET DIAGNOSTICS copied = ROW_COUNT;
        ALTER TABLE audit_events_default DISABLE TRIGGER audit_events_append_only;
        DELETE FROM audit_events_default WHERE occurred_at_ns >= lo AND occurred_at_ns < hi;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        ALTER TABLE audit_events_default ENABLE TRIGGER audit_events_append_only;
        IF deleted <> copied THEN
            RAISE EXCEPTION 'moving events of % out of audit_events_default: copied %, deleted %',
                to_char(month_start, 'YYYY-MM'), copied, deleted;
        END IF;
        RAISE WARNING 'moved % events of % from audit_events_default into %',
            copied, to_char(month_start, 'YYYY-MM'), name;
    END IF;
    EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
    PERFORM audit_refuse_truncate_of(name);
    RETURN true;
END;
$$;
