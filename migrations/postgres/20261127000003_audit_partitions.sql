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
