-- Roles and privileges of audit-service's PostgreSQL database (or Citus coordinator).
--
--   psql -v ON_ERROR_STOP=1 -d audit -f deploy/postgres/roles.sql     (as a superuser,
--   or a role with CREATEROLE that owns the database)
--
-- Idempotent, and meant to be run twice per release: before the migrations (creates
-- the roles, so migrations can run as audit_migrator) and after them (grants on the
-- tables and functions the migrations created; missing ones are skipped with a
-- NOTICE). Three roles, so that no running process holds more than it needs:
--
--   audit_migrator    owns the schema and every table: runs the migrations (the
--                     Kubernetes migration Job), `audit-service rebuild-rollups`,
--                     and owns the SECURITY DEFINER maintenance functions.
--   audit_service     what the replicas connect as: SELECT/INSERT on events and ids,
--                     upserts on rollups and log counters, EXECUTE on audit_ensure_partitions. No
--                     UPDATE or DELETE on events, no DDL: a compromised replica can
--                     add events, never rewrite or remove them.
--   audit_maintainer  the scheduled partition job: EXECUTE on
--                     audit_maintain_partitions() (deploy/postgres/partitions.sql)
--                     and nothing else; retention is fixed by the owner, not by it.
--
-- Passwords are not set here (they do not belong in a repository): set them from your
-- secret store, e.g. `ALTER ROLE audit_service PASSWORD '…'`, or use your cloud's IAM
-- authentication. Names match migrations/postgres/ exactly.

\set ON_ERROR_STOP on

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['audit_migrator', 'audit_service', 'audit_maintainer'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', role_name);
        END IF;
        -- Stated even when the role existed, so a role created by hand with more
        -- power is brought back to this.
        EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT',
                       role_name);
    END LOOP;
END;
$$;

-- The database: only these roles connect (grant CONNECT to your monitoring role too),
-- and nobody else gets temporary tables or new schemas in it.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO audit_migrator, audit_service, audit_maintainer',
                   current_database());
    -- Per-role settings in this database, applied to every new session of the role.
    -- The migrator waits at most 5 s for a lock: an ALTER TABLE queued behind a long
    -- query would otherwise queue every append behind itself. A failed migration
    -- is simply run again (each is one transaction).
    EXECUTE format('ALTER ROLE audit_migrator IN DATABASE %I SET lock_timeout = %L', current_database(), '5s');
    -- Backstops for the service: the service's own deadlines come first; these only
    -- end what a lost client or a bug left running, holding locks and connections.
    EXECUTE format('ALTER ROLE audit_service IN DATABASE %I SET statement_timeout = %L', current_database(), '60s');
    EXECUTE format('ALTER ROLE audit_service IN DATABASE %I SET idle_in_transaction_session_timeout = %L',
                   current_database(), '60s');
    EXECUTE format('ALTER ROLE audit_maintainer IN DATABASE %I SET statement_timeout = %L', current_database(), '15min');
END;
$$;

-- The schema the migrations create their tables in (unqualified names): owned by the
-- migrator, usable by the other two, creatable by nobody else. PostgreSQL 15 already
-- revokes CREATE from PUBLIC; stated for older servers.
ALTER SCHEMA public OWNER TO audit_migrator;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO audit_service, audit_maintainer;

-- What future migrations create, before this script is run again: new tables are
-- readable and appendable by the service (never updatable or deletable; a table that
-- needs more gets an explicit grant below), identity sequences usable, and new
-- functions callable only when granted (PostgreSQL grants EXECUTE to PUBLIC by default).
ALTER DEFAULT PRIVILEGES FOR ROLE audit_migrator IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO audit_service;
ALTER DEFAULT PRIVILEGES FOR ROLE audit_migrator IN SCHEMA public GRANT USAGE ON SEQUENCES TO audit_service;
ALTER DEFAULT PRIVILEGES FOR ROLE audit_migrator REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Explicit grants on what the migrations have created so far. The service's rights
-- on the events and ids are SELECT and INSERT, nothing else (REVOKE first, so a
-- grant made by hand does not survive a run of this script).
DO $$
DECLARE
    grant_spec record;
BEGIN
    FOR grant_spec IN
        SELECT * FROM (VALUES
            -- the events and their idempotency keys: append and read only
            ('audit_events',     'SELECT, INSERT'),
            ('audit_event_ids',  'SELECT, INSERT'),
            -- the rollups are upserted (INSERT … ON CONFLICT DO UPDATE) in the batch's
            -- transaction; no DELETE (rebuild-rollups runs as audit_migrator)
            ('audit_rollups',    'SELECT, INSERT, UPDATE'),
            -- each organization's next log index, advanced (INSERT … ON CONFLICT DO
            -- UPDATE, then UPDATE) in the batch's transaction; no DELETE, and its
            -- triggers refuse an update that would move a counter back
            ('audit_logs',       'SELECT, INSERT, UPDATE'),
            -- read by a replica that verifies, at start, that the schema has every
            -- migration it knows; only the migrator writes it
            ('_sqlx_migrations', 'SELECT')
        ) AS t(table_name, privileges)
    LOOP
        IF to_regclass(format('public.%I', grant_spec.table_name)) IS NULL THEN
            RAISE NOTICE 'table % does not exist yet: run this script again after the migrations',
                grant_spec.table_name;
            CONTINUE;
        END IF;
        EXECUTE format('REVOKE ALL ON TABLE public.%I FROM PUBLIC, audit_service, audit_maintainer',
                       grant_spec.table_name);
        EXECUTE format('GRANT %s ON TABLE public.%I TO audit_service', grant_spec.privileges, grant_spec.table_name);
    END LOOP;

    -- The service creates next months' partitions at start and daily through this
    -- SECURITY DEFINER function (it runs as its owner, audit_migrator).
    IF to_regprocedure('public.audit_ensure_partitions(integer)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION public.audit_ensure_partitions(integer) TO audit_service;
    ELSE
        RAISE NOTICE 'audit_ensure_partitions(integer) does not exist yet: run this script again after the migrations';
    END IF;

    -- Sequences: none today; any a migration adds (identity columns) are usable.
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO audit_service;
END;
$$;
