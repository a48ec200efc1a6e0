#!/usr/bin/env bash
# CI checks of deploy/, for machines without a Docker engine or a cluster: what can be
# proven here is proven here, and nothing is skipped quietly.
#
#   bash deploy/check.sh        (from anywhere; tools: python3 -m pip install -r deploy/requirements-check.txt)
#
#   kubernetes   manifests render with kustomize (kubectl's) and validate strictly,
#                offline, against the Kubernetes 1.30 (oldest supported) and newest
#                bundled schemas; deploy/check_manifests.py checks they fit together
#                and fit src/cli.rs
#   dockerfile   hadolint, every rule
#   compose      Docker Compose's own parser (compose-go) accepts deploy/compose.yaml
#   scripts      shellcheck on this script and the local stack's scripts
#   context      the crate builds from exactly the files /.dockerignore admits, which
#                also yields the binary for the last check
#   grants       on the local PostgreSQL, in a fresh database: roles.sql, then
#                migrations/postgres/*.sql as audit_migrator, then partitions.sql; as
#                audit_service an event is inserted and UPDATE, DELETE, TRUNCATE and
#                DDL are refused; maintenance and retention run as audit_maintainer
#   service      the real binary: `audit-service migrate` as audit_migrator, then
#                `serve` as audit_service ingests and summarizes over REST, with
#                /readyz and /metrics on the admin port only
#
# Prints PASS/FAIL per check and ends with "deploy: N passed, N failed"; exits non-zero
# if anything failed. PostgreSQL: 127.0.0.1:5432, superuser postgres, and trust (or
# .pgpass) authentication for the three audit_* roles; override with CHECK_PGHOST,
# CHECK_PGPORT, CHECK_PGADMIN. CHECK_AUDIT_BIN runs the service check with that binary
# instead of the one the context check builds (e.g. one copied out of the image). The
# check's databases are dropped at the end; the cluster-wide roles audit_migrator,
# audit_service, audit_maintainer are left in place (roles.sql is idempotent and other
# databases may use them).

set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

PGH="${CHECK_PGHOST:-127.0.0.1}"
PGP="${CHECK_PGPORT:-5432}"
PGADMIN="${CHECK_PGADMIN:-postgres}"
# The oldest Kubernetes the manifests support (preStop sleep needs 1.30) and the newest
# whose schemas kubernetes-validate bundles (its default).
K8S_MIN_VERSION=1.30.0

WORK="$(mktemp -d)"
RUN_ID="$$_$(date +%s)"
DB_GRANTS="audit_check_grants_${RUN_ID}"
DB_SERVICE="audit_check_service_${RUN_ID}"
SERVER_PID=""
PASSED=0
FAILED=0
FAILURES=()

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    for db in "$DB_GRANTS" "$DB_SERVICE"; do
        psql -X -q -h "$PGH" -p "$PGP" -U "$PGADMIN" -d postgres \
            -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {
    echo "FAIL $1: $2" >&2
    FAILED=$((FAILED + 1))
    FAILURES+=("$1")
}
section() { echo; echo "== $1"; }

# pip puts console scripts next to the interpreter, which pyenv and --user installs keep
# off PATH: look there too, so the check runs right after `pip install`.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
USER_SCRIPTS="$(python3 -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))' 2>/dev/null || true)"
tool() {
    local name="$1" dir
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    for dir in "$PY_SCRIPTS" "$USER_SCRIPTS"; do
        if [[ -n "$dir" && -x "$dir/$name" ]]; then echo "$dir/$name"; return 0; fi
    done
    return 1
}
need_tool() {
    local check="$1" name="$2"
    if ! tool "$name" >/dev/null; then
        fail "$check" "'$name' is not installed: python3 -m pip install -r deploy/requirements-check.txt"
        return 1
    fi
}

# psql as ROLE on DATABASE; extra arguments follow.
psql_as() {
    local role="$1" db="$2"
    shift 2
    psql -X -q -v ON_ERROR_STOP=1 -h "$PGH" -p "$PGP" -U "$role" -d "$db" "$@"
}

# ---------------------------------------------------------------------------------------
section "kubernetes: render, validate against schemas, cross-check"
check_kubernetes() {
    need_tool kubernetes kubectl || return
    need_tool kubernetes kubernetes-validate || return
    local kubectl validate ok=1
    kubectl="$(tool kubectl)"
    validate="$(tool kubernetes-validate)"
    for dir in deploy/kubernetes deploy/kubernetes/migrate; do
        local out
        out="$WORK/$(echo "$dir" | tr / _).yaml"
        if ! "$kubectl" kustomize "$dir" >"$out" 2>"$WORK/kustomize.err"; then
            fail kubernetes "kustomize cannot render $dir: $(cat "$WORK/kustomize.err")"
            return
        fi
        echo "rendered $dir: $(grep -c '^kind:' "$out") objects"
    done
    for version in "$K8S_MIN_VERSION" latest; do
        local args=(--strict --quiet)
        [[ "$version" != latest ]] && args+=(-k "$version")
        if ! "$validate" "${args[@]}" "$WORK"/deploy_kubernetes*.yaml deploy/kubernetes/secret.example.yaml; then
            fail kubernetes "schema validation against Kubernetes $version failed (above)"
            ok=0
        else
            echo "valid against Kubernetes $version schemas (kubernetes-validate $("$validate" --version 2>&1 | tail -1))"
        fi
    done
    if ! python3 deploy/check_manifests.py; then
        fail kubernetes "deploy/check_manifests.py found inconsistencies (above)"
        ok=0
    fi
    [[ $ok == 1 ]] && pass kubernetes
}
check_kubernetes

# ---------------------------------------------------------------------------------------
section "dockerfile: hadolint"
check_dockerfile() {
    need_tool dockerfile hadolint || return
    # Threshold "style": any finding fails. The repository has no .hadolint.yaml on
    # purpose; an exception goes next to its line as `# hadolint ignore=DLxxxx` + why.
    if "$(tool hadolint)" --failure-threshold style deploy/Dockerfile; then
        echo "hadolint $("$(tool hadolint)" --version | awk '{print $NF}'): no findings"
        pass dockerfile
    else
        fail dockerfile "hadolint findings (above)"
    fi
}
check_dockerfile

# ---------------------------------------------------------------------------------------
section "compose: Docker Compose's parser"
check_compose() {
    need_tool compose docker-compose || return
    local ok=1
    # compose-go is the parser `docker compose` itself uses; `config` needs no engine.
    if ! "$(tool docker-compose)" -f deploy/compose.yaml config --quiet; then
        fail compose "deploy/compose.yaml does not parse (above)"
        ok=0
    fi
    for script in deploy/compose/*.sh; do
        if ! sh -n "$script"; then
            fail compose "$script has a shell syntax error"
            ok=0
        fi
    done
    if [[ $ok == 1 ]]; then
        echo "$("$(tool docker-compose)" version 2>&1 | head -1) accepts deploy/compose.yaml"
        pass compose
    fi
}
check_compose

# ---------------------------------------------------------------------------------------
section "scripts: shellcheck"
check_scripts() {
    need_tool scripts shellcheck || return
    # This script and the local stack's container scripts (POSIX sh in the postgres image).
    if "$(tool shellcheck)" deploy/check.sh deploy/compose/*.sh; then
        echo "shellcheck $("$(tool shellcheck)" --version | awk '/^version/ {print $2}'): no findings"
        pass scripts
    else
        fail scripts "shellcheck findings (above)"
    fi
}
check_scripts

# ---------------------------------------------------------------------------------------
section "context: the crate builds from the Docker build context alone"
BIN=""
check_context() {
    # A fixed place per checkout, emptied each run: the same path keeps the crate's
    # fingerprints stable, so an unchanged tree is not compiled again. Outside the
    # repository, so cargo never takes the copy for a member of it.
    local context
    context="${TMPDIR:-/tmp}/audit-service-deploy-check-$(printf %s "$ROOT" | cksum | cut -d' ' -f1)"
    rm -rf "$context"
    if ! python3 deploy/docker_context.py "$context"; then
        fail context "could not assemble the build context"
        return
    fi
    # A target folder of its own (the context's crate is at another path, so it would
    # not share the crate's artifacts anyway). Debug build without debug info: this
    # proves the inputs; deploy/Dockerfile builds the release binary.
    if ! (cd "$context" && CARGO_TARGET_DIR="$ROOT/target/deploy-check" CARGO_PROFILE_DEV_DEBUG=0 \
            cargo build --locked --quiet --bin audit-service); then
        fail context "cargo build --locked from the files /.dockerignore admits failed (above): a file the build reads is not admitted, Cargo.lock does not match Cargo.toml, or the tree does not build"
        return
    fi
    BIN="${CHECK_AUDIT_BIN:-$ROOT/target/deploy-check/debug/audit-service}"
    pass context
}
check_context

# ---------------------------------------------------------------------------------------
section "postgres: ready"
PG_READY=0
check_postgres_up() {
    if ! pg_isready -q -h "$PGH" -p "$PGP"; then
        # The CI machines' cluster; elsewhere start your own or set CHECK_PGHOST/PORT.
        if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
            echo "PostgreSQL not answering on $PGH:$PGP; starting the local cluster"
            local version
            version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)"
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
            for _ in $(seq 1 30); do pg_isready -q -h "$PGH" -p "$PGP" && break; sleep 1; done
        fi
    fi
    if ! pg_isready -q -h "$PGH" -p "$PGP"; then
        fail postgres "PostgreSQL does not answer on $PGH:$PGP"
        return
    fi
    echo "$(psql -X -At -h "$PGH" -p "$PGP" -U "$PGADMIN" -d postgres -c 'SHOW server_version') on $PGH:$PGP"
    PG_READY=1
}
check_postgres_up

MIGRATIONS=()
if [[ -d migrations/postgres ]]; then
    while IFS= read -r file; do MIGRATIONS+=("$file"); done < <(
        find migrations/postgres -maxdepth 1 -name '*.sql' ! -name '*.down.sql' | sort)
fi

# Applies the migrations as audit_migrator the way sqlx does: in version order, each in
# its own transaction unless it starts with sqlx's `-- no-transaction`.
apply_migrations_with_psql() {
    local db="$1" file
    for file in "${MIGRATIONS[@]}"; do
        local tx=(--single-transaction)
        head -1 "$file" | grep -q '^-- no-transaction' && tx=()
        if ! psql_as audit_migrator "$db" "${tx[@]}" -f "$file" >"$WORK/migrate.out" 2>&1; then
            cat "$WORK/migrate.out" >&2
            echo "$file"
            return 1
        fi
    done
}

# Runs SQL as ROLE and requires a refusal for lack of privilege (not any error: a typo
# would fail too and prove nothing).
expect_denied() {
    local role="$1" db="$2" sql="$3" err
    if psql_as "$role" "$db" -c "$sql" >/dev/null 2>"$WORK/denied.err"; then
        echo "  allowed, must be refused: [$role] $sql" >&2
        return 1
    fi
    err="$(cat "$WORK/denied.err")"
    if ! grep -Eq 'permission denied|must be owner' <<<"$err"; then
        echo "  refused for another reason than privileges: [$role] $sql: $err" >&2
        return 1
    fi
    echo "  refused as it must be: [$role] $sql -> $(grep -Eo '(permission denied|must be owner)[^"]*' <<<"$err" | head -1)"
}

# ---------------------------------------------------------------------------------------
section "grants: roles.sql, migrations as audit_migrator, audit_service append-only"
check_grants() {
    [[ $PG_READY == 1 ]] || { fail grants "PostgreSQL is not available"; return; }
    if [[ ${#MIGRATIONS[@]} -eq 0 ]]; then
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
        echo "!! migrations/postgres/*.sql do not exist: the PostgreSQL schema is not there  !!" >&2
        echo "!! yet, so the roles and grants of deploy/postgres cannot be proven. FAILING.    !!" >&2
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
        fail grants "migrations/postgres/*.sql missing"
        return
    fi
    local db="$DB_GRANTS" ok=1 failed_file
    psql_as "$PGADMIN" postgres -c "CREATE DATABASE \"$db\"" || { fail grants "cannot create database $db"; return; }

    # Before the migrations: the roles, so the migrations can run as the schema owner.
    psql_as "$PGADMIN" "$db" -f deploy/postgres/roles.sql 2>"$WORK/roles.err" \
        || { cat "$WORK/roles.err" >&2; fail grants "roles.sql failed before the migrations"; return; }
    if ! failed_file="$(apply_migrations_with_psql "$db")"; then
        fail grants "migration $failed_file failed as audit_migrator"
        return
    fi
    echo "applied ${#MIGRATIONS[@]} migrations as audit_migrator"
    # After: the grants on what they created; nothing may be left missing now.
    psql_as "$PGADMIN" "$db" -f deploy/postgres/roles.sql 2>"$WORK/roles.err" \
        || { cat "$WORK/roles.err" >&2; fail grants "roles.sql failed after the migrations"; return; }
    if grep -v '_sqlx_migrations' "$WORK/roles.err" | grep -q 'does not exist yet'; then
        cat "$WORK/roles.err" >&2
        fail grants "roles.sql names objects the migrations do not create (above): names out of step"
        return
    fi
    psql_as audit_migrator "$db" -f deploy/postgres/partitions.sql \
        || { fail grants "partitions.sql failed as audit_migrator"; return; }

    # The maintainer creates the months ahead through the one function it may call.
    local created
    created="$(psql_as audit_maintainer "$db" -At -c 'SELECT created FROM audit_maintain_partitions()')" \
        || { fail grants "audit_maintain_partitions() failed as audit_maintainer"; return; }
    echo "audit_maintainer created $created partitions ahead"

    # The service's writes: an event (every NOT NULL column without a default, from the
    # catalog, so a new column does not break this check), its id, and a rollup upsert.
    if ! psql_as audit_service "$db" >"$WORK/insert.out" 2>&1 <<'SQL'
DO $$
DECLARE
    relation text;
    columns text;
    literals text;
    now_ns bigint := (floor(extract(epoch FROM clock_timestamp())) * 1000000000)::bigint;
BEGIN
    FOREACH relation IN ARRAY ARRAY['audit_event_ids', 'audit_events'] LOOP
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg(CASE
                   WHEN a.attname = 'organization_id' THEN quote_literal('org_check')
                   WHEN a.attname = 'id' THEN quote_literal('evt_check_1')
                   WHEN a.attname = 'action' THEN quote_literal('session.login')
                   WHEN a.atttypid IN ('bigint'::regtype, 'integer'::regtype) THEN now_ns::text
                   WHEN a.atttypid = 'boolean'::regtype THEN 'false'
                   WHEN a.atttypid IN ('json'::regtype, 'jsonb'::regtype) THEN quote_literal('{}')
                   ELSE quote_literal('check')
               END, ', ' ORDER BY a.attnum)
        INTO columns, literals
        FROM pg_attribute a
        WHERE a.attrelid = relation::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attnotnull AND NOT a.atthasdef;
        EXECUTE format('INSERT INTO %I (%s) VALUES (%s)', relation, columns, literals);
    END LOOP;
    -- Twice: the second takes the DO UPDATE path, which needs UPDATE on the rollups.
    FOR i IN 1..2 LOOP
        INSERT INTO audit_rollups (series, width_s, bucket_start_ns, action, event_count, failure_count)
        VALUES ('org_check', 3600, now_ns - now_ns % 3600000000000, 'session.login', 1, 0)
        ON CONFLICT (series, width_s, bucket_start_ns, action) DO UPDATE
            SET event_count = audit_rollups.event_count + excluded.event_count,
                failure_count = audit_rollups.failure_count + excluded.failure_count;
    END LOOP;
    -- Twice too: a log counter is created, then advanced (the append's lock and bump).
    FOR i IN 1..2 LOOP
        INSERT INTO audit_logs (organization_id, next_index) VALUES ('org_check', i)
        ON CONFLICT (organization_id) DO UPDATE SET next_index = excluded.next_index;
    END LOOP;
    PERFORM audit_ensure_partitions(1);
END;
$$;
SELECT count(*) FROM audit_events;
SQL
    then
        cat "$WORK/insert.out" >&2
        fail grants "audit_service cannot insert an event, upsert a rollup or a log counter, or ensure partitions (above)"
        return
    fi
    echo "audit_service inserted an event and its id, upserted a rollup and a log counter, ran audit_ensure_partitions"

    echo "audit_service may not change or remove anything, nor change the schema:"
    local statement
    while IFS= read -r statement; do
        expect_denied audit_service "$db" "$statement" || ok=0
    done <<'SQL'
UPDATE audit_events SET action = 'tampered.action'
DELETE FROM audit_events
TRUNCATE audit_events
UPDATE audit_event_ids SET id = 'tampered'
DELETE FROM audit_event_ids
TRUNCATE audit_event_ids
DELETE FROM audit_rollups
TRUNCATE audit_rollups
DELETE FROM audit_logs
TRUNCATE audit_logs
ALTER TABLE audit_events DISABLE TRIGGER USER
CREATE TABLE audit_shadow (id text)
SELECT audit_drop_partitions_before(9223372036854775807)
SELECT * FROM audit_maintain_partitions()
SQL
    echo "audit_maintainer may only run the maintenance:"
    while IFS= read -r statement; do
        expect_denied audit_maintainer "$db" "$statement" || ok=0
    done <<'SQL'
SELECT count(*) FROM audit_events
UPDATE audit_partition_policy SET retention = interval '1 month'
SELECT audit_drop_partitions_before(9223372036854775807)
DELETE FROM audit_rollups
SQL

    # Even the owner cannot rewrite rows: the append-only triggers of the migrations.
    if psql_as audit_migrator "$db" -c "UPDATE audit_events SET action = 'tampered.action'" >/dev/null 2>&1 \
        || psql_as audit_migrator "$db" -c "DELETE FROM audit_events" >/dev/null 2>&1; then
        echo "  the owner could UPDATE or DELETE events: the append-only triggers are missing" >&2
        ok=0
    else
        echo "  refused as it must be: [audit_migrator] UPDATE/DELETE on audit_events (append-only triggers)"
    fi
    local remaining
    remaining="$(psql_as "$PGADMIN" "$db" -At -c "SELECT count(*) FROM audit_events WHERE action = 'session.login'")"
    if [[ "$remaining" != 1 ]]; then
        echo "  the inserted event did not survive unchanged (count $remaining)" >&2
        ok=0
    fi

    # Retention: an old month goes, with its rollups; the current one stays.
    if ! psql_as audit_migrator "$db" -At >"$WORK/retention.out" 2>&1 <<'SQL'
SELECT audit_create_month_partition(timestamp '2001-01-01');
INSERT INTO audit_rollups VALUES ('org_check', 3600, 978307200000000000, 'session.login', 1, 0);
UPDATE audit_partition_policy SET retention = interval '400 days';
SQL
    then
        cat "$WORK/retention.out" >&2
        ok=0
    fi
    local dropped
    dropped="$(psql_as audit_maintainer "$db" -At -c 'SELECT dropped FROM audit_maintain_partitions()')"
    local left
    left="$(psql_as "$PGADMIN" "$db" -At -c "SELECT (to_regclass('audit_events_p200101') IS NULL)::text || ' '
        || (SELECT count(*) FROM audit_rollups WHERE bucket_start_ns = 978307200000000000) || ' '
        || (SELECT count(*) FROM audit_events)")"
    if [[ "$dropped" != "{audit_events_p200101}" || "$left" != "true 0 1" ]]; then
        echo "  retention: dropped '$dropped', (old partition gone, old rollups, events) = '$left', wanted '{audit_events_p200101}' and 'true 0 1'" >&2
        ok=0
    else
        echo "  retention of 400 days dropped $dropped and its rollups, kept this month's event"
    fi

    if [[ $ok == 1 ]]; then
        pass grants
    else
        fail grants "privileges are not as deploy/postgres/roles.sql promises (above)"
    fi
}
check_grants

# ---------------------------------------------------------------------------------------
section "service: migrate as audit_migrator, serve as audit_service"
check_service() {
    [[ $PG_READY == 1 ]] || { fail service "PostgreSQL is not available"; return; }
    [[ -n "$BIN" && -x "$BIN" ]] || { fail service "no binary (the context check failed)"; return; }
    if [[ ${#MIGRATIONS[@]} -eq 0 ]]; then
        fail service "migrations/postgres/*.sql missing (see the grants check)"
        return
    fi
    # The deployment's contract with the binary (deploy/README.md, "What deploy/ needs
    # from the binary"): a migrate subcommand for the Job.
    if ! "$BIN" migrate --help >/dev/null 2>&1; then
        fail service "\`audit-service migrate\` does not exist: the migration Job, compose and this check need it (deploy/README.md)"
        return
    fi
    local db="$DB_SERVICE"
    psql_as "$PGADMIN" postgres -c "CREATE DATABASE \"$db\"" || { fail service "cannot create database $db"; return; }
    psql_as "$PGADMIN" "$db" -f deploy/postgres/roles.sql 2>/dev/null || { fail service "roles.sql failed"; return; }
    if ! AUDIT_DATABASE_URL="postgres://audit_migrator@$PGH:$PGP/$db" AUDIT_LOG_FORMAT=json \
            "$BIN" migrate >"$WORK/migrate.log" 2>&1; then
        tail -20 "$WORK/migrate.log" >&2
        fail service "\`audit-service migrate\` as audit_migrator failed (above)"
        return
    fi
    psql_as "$PGADMIN" "$db" -f deploy/postgres/roles.sql 2>/dev/null || { fail service "roles.sql (after) failed"; return; }
    psql_as audit_migrator "$db" -f deploy/postgres/partitions.sql || { fail service "partitions.sql failed"; return; }

    local port admin_port secret="deploy-check-secret-0123456789abcdef0123456789"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    admin_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # As the manifests run it: metrics and probes on an admin port of their own.
    AUDIT_LISTEN="127.0.0.1:$port" \
        AUDIT_ADMIN_LISTEN="127.0.0.1:$admin_port" \
        AUDIT_DATABASE_URL="postgres://audit_service@$PGH:$PGP/$db" \
        AUDIT_JWT_SECRET="$secret" \
        AUDIT_PAGE_TOKEN_KEYS="deploy-check-page-token-key-0123456789abcdef" \
        AUDIT_LOG_FORMAT=json \
        OTEL_EXPORTER_OTLP_ENDPOINT='' \
        "$BIN" serve >"$WORK/serve.log" 2>&1 &
    SERVER_PID=$!
    local base="http://127.0.0.1:$port" admin="http://127.0.0.1:$admin_port" ready=0
    for _ in $(seq 1 120); do
        if curl -fsS "$admin/readyz" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    if [[ $ready != 1 ]]; then
        tail -20 "$WORK/serve.log" >&2
        fail service "\`audit-service serve\` as audit_service never became ready (log above)"
        return
    fi
    echo "serving as audit_service on $base, ready on the admin port $admin"

    local token now batch created again summary ok=1
    token="$(AUDIT_JWT_SECRET="$secret" "$BIN" token --scope audit:read --scope audit:write --ttl 10m)"
    now="$(date -u +%Y-%m-%dT%H:%M:%S.123456789Z)"
    batch='{"events":[
        {"id":"evt_check_1","timestamp":"'"$now"'","organization_id":"org_check","action":"session.login","result":"success"},
        {"id":"evt_check_2","timestamp":"'"$now"'","organization_id":"org_check","action":"session.login","result":"failure"}]}'
    created="$(curl -fsS -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        "$base/v1/audit/events:batchCreate" -d "$batch")" || ok=0
    again="$(curl -fsS -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        "$base/v1/audit/events:batchCreate" -d "$batch")" || ok=0
    summary="$(curl -fsS -H "Authorization: Bearer $token" --get "$base/v1/audit/events:summary" \
        --data-urlencode "start_time=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
        --data-urlencode "end_time=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
        --data-urlencode "organization_id=org_check")" || ok=0
    echo "batchCreate: $created; retried: $again"
    echo "summary: $summary"
    if ! python3 - "$created" "$again" "$summary" <<'PY'
import json, sys
created, again, summary = (json.loads(a) for a in sys.argv[1:4])
assert created.get("created_count") == 2, created
assert again.get("duplicate_count") == 2 and again.get("created_count", 0) == 0, again
assert summary == {"buckets": [{"action": "session.login", "count": 2, "failure_count": 1}]}, summary
PY
    then
        ok=0
    fi
    # After the calls above, so the scrape has requests to count.
    local public_metrics
    public_metrics="$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")"
    if ! curl -fsS "$admin/metrics" | grep -q '^audit_rpc_requests_total'; then
        echo "no request counters in /metrics on the admin port" >&2
        ok=0
    elif [[ "$public_metrics" != 404 ]]; then
        echo "/metrics on the API port answered $public_metrics, not 404, with an admin port set" >&2
        ok=0
    else
        echo "/metrics served on the admin port only (API port: 404)"
    fi
    kill -TERM "$SERVER_PID"
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    if [[ $status != 0 ]]; then
        echo "serve exited with $status after SIGTERM" >&2
        ok=0
    fi
    if grep -qi 'permission denied' "$WORK/serve.log"; then
        grep -i 'permission denied' "$WORK/serve.log" | head -5 >&2
        echo "the service met a permission it lacks as audit_service (above)" >&2
        ok=0
    fi
    if [[ $ok == 1 ]]; then
        pass service
    else
        tail -20 "$WORK/serve.log" >&2
        fail service "ingest or summary as audit_service did not work (above)"
    fi
}
check_service

echo
if [[ $FAILED -gt 0 ]]; then
    echo "failed: ${FAILURES[*]}" >&2
fi
echo "deploy: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
