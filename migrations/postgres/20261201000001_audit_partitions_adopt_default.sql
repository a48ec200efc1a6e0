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
