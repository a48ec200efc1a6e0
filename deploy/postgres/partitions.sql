-- Scheduled partition maintenance of audit_events: months created ahead and months past
-- the retention dropped, from one entry point a scheduler calls daily.
--
--   psql -v ON_ERROR_STOP=1 -d audit -U audit_migrator -f deploy/postgres/partitions.sql
--
-- Run as audit_migrator (it owns the tables) after the migrations and roles.sql, once
-- per release; idempotent. It builds on the functions of
-- migrations/postgres/20261127000003_audit_partitions.sql and
-- 20261201000001_audit_partitions_adopt_default.sql (monthly partitions named
-- audit_events_pYYYYMM, a DEFAULT partition audit_events_default):
--   audit_ensure_partitions(months_ahead)   creates this month .. months_ahead, each
--                                           taking its events out of the DEFAULT partition
--   audit_drop_partitions_before(cutoff_ns) drops whole months and their rollups
-- and adds what a scheduled job needs on top: a retention policy that the job cannot
-- change, and a function the job's role may call without owning anything.
--
-- Set the policy (as audit_migrator; NULL retention, the default, keeps everything,
-- because deleting audit history must be a decision, not a default):
--   UPDATE audit_partition_policy SET retention = interval '400 days', months_ahead = 3;
--
-- Schedule it, either way:
--   Kubernetes: deploy/kubernetes/partition-maintenance.yaml (a CronJob, as audit_maintainer)
--   pg_cron:    SELECT cron.schedule_in_database('audit-partitions', '17 3 * * *',
--                 'SELECT * FROM audit_maintain_partitions()', 'audit', 'audit_maintainer');

\set ON_ERROR_STOP on

-- One row: how far ahead to create, how long to keep. Owned by the migrator and only
-- readable by the maintainer, so the scheduled job applies the policy and cannot widen
-- what it drops.
CREATE TABLE IF NOT EXISTS audit_partition_policy (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    months_ahead integer     NOT NULL DEFAULT 3 CHECK (months_ahead BETWEEN 1 AND 120),
    -- At least a month: a shorter retention would drop the month being written.
    retention    interval    CHECK (retention IS NULL OR retention >= interval '1 month'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_partition_policy DEFAULT VALUES ON CONFLICT DO NOTHING;
-- Default privileges (roles.sql) gave the service INSERT on new tables; not on this one.
REVOKE ALL ON TABLE audit_partition_policy FROM PUBLIC, audit_service, audit_maintainer;
GRANT SELECT ON TABLE audit_partition_policy TO audit_maintainer;

-- The scheduled job's one call. Creates the months ahead (the replicas also do at start
-- and daily; this is the safety net when none is running), moving into each new month the
-- events of it the default partition held, drops the months that ended more than
-- `retention` ago, and reports what stays in the default partition: events of months the
-- upkeep does not create (a backfill before this month, a clock far off beyond the months
-- ahead: audit_split_default_partition() moves them, as the owner in a quiet hour). One transaction: if the drop cannot get its lock within 5 s the
-- whole call fails and the CronJob's retry or tomorrow's run does it.
CREATE OR REPLACE FUNCTION audit_maintain_partitions()
RETURNS TABLE (created integer, dropped text[], default_events bigint, retention interval)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '5s' AS $$
DECLARE
    policy audit_partition_policy;
    cutoff_ns bigint;
BEGIN
    SELECT * INTO STRICT policy FROM audit_partition_policy;
    created := audit_ensure_partitions(policy.months_ahead);
    dropped := ARRAY[]::text[];
    IF policy.retention IS NOT NULL THEN
        -- A month is dropped once its end is older than the retention, so an event is
        -- kept at least `retention` and at most a month more. UTC, like the partitions.
        cutoff_ns := (floor(extract(epoch FROM (now() AT TIME ZONE 'UTC') - policy.retention)) * 1000000000)::bigint;
        dropped := ARRAY(SELECT audit_drop_partitions_before(cutoff_ns));
    END IF;
    -- Bounded count: the default partition should be empty; a huge one is reported as
    -- "at least a million" rather than scanned whole every day.
    SELECT count(*) INTO default_events FROM (SELECT 1 FROM audit_events_default LIMIT 1000000) AS caught;
    IF default_events > 0 THEN
        RAISE WARNING 'audit_events_default holds % events outside the monthly partitions: run audit_split_default_partition() as audit_migrator',
            default_events;
    END IF;
    retention := policy.retention;
    RETURN NEXT;
END;
$$;

-- What exists, for operators and the maintainer's logs: each partition's month and size.
CREATE OR REPLACE VIEW audit_partitions AS
SELECT c.relname AS partition,
       to_timestamp(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''?(-?[0-9]+)''?\)')::numeric / 1e9)
           AS range_start,
       to_timestamp(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::numeric / 1e9)
           AS range_end,
       pg_total_relation_size(c.oid) AS bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'audit_events'::regclass;

-- Pin the lookup path of the SECURITY DEFINER function (as the migrations do for
-- theirs), so no caller can put a table or function of their own in front.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_maintain_partitions() SET search_path = %I, pg_temp', current_schema());
END;
$$;

REVOKE EXECUTE ON FUNCTION audit_maintain_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_maintain_partitions() TO audit_maintainer;
REVOKE ALL ON TABLE audit_partitions FROM PUBLIC, audit_service;
GRANT SELECT ON TABLE audit_partitions TO audit_maintainer;
