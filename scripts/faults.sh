#!/usr/bin/env bash
# Fault drills on loopback, bounded in count and time (about a minute): kill -9
# during concurrent batched ingest (20 cycles by default), SIGTERM draining,
# SQLite's write lock held by another process mid-load, and PostgreSQL stopped
# mid-load (on a throwaway cluster of its own, when PostgreSQL is installed).
# Prints the counts (acked, stored, lost = 0, duplicated = 0) and exits non-zero
# if any drill fails. See examples/faults.rs.
# Usage: scripts/faults.sh [--cycles N] [--only kill9|sigterm|sqlite-locked|postgres-stopped]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release --bin audit-service --example faults
BIN="$PWD/target/release/audit-service"

# A throwaway PostgreSQL cluster on a free port, owned by the postgres user: the
# drill stops it, which must not touch any cluster someone else is using.
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
PGDIR=""
cleanup() {
  if [[ -n "$PGDIR" ]]; then
    su postgres -c "$PGBIN/pg_ctl -D '$PGDIR/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  fi
}
trap cleanup EXIT
if [[ -z "${AUDIT_FAULTS_POSTGRES_URL:-}" && -n "$PGBIN" && "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1; then
  PGDIR="$(mktemp -d)"
  chown postgres "$PGDIR"
  PGPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  START="$PGBIN/pg_ctl -D '$PGDIR/data' -l '$PGDIR/log' -o '-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1' -w start"
  if su postgres -c "$PGBIN/initdb -D '$PGDIR/data' -A trust -U postgres" >/dev/null 2>&1 \
     && su postgres -c "$START" >/dev/null 2>&1; then
    export AUDIT_FAULTS_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
    export AUDIT_FAULTS_PG_STOP="su postgres -c \"$PGBIN/pg_ctl -D '$PGDIR/data' -m immediate stop\""
    export AUDIT_FAULTS_PG_START="su postgres -c \"$START\""
  else
    echo "could not start a throwaway PostgreSQL cluster; the postgres-stopped drill is skipped" >&2
  fi
fi

timeout 600 target/release/examples/faults --bin "$BIN" "$@"
