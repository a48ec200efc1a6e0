#!/usr/bin/env bash
# Contract check of the REST surface: starts the service on loopback with a temp
# SQLite database, and runs schemathesis (PyPI) against its own GET /openapi.json
# with a read+write token. Bounded: --max-time per phase budget and a hard timeout.
# Usage: scripts/schemathesis.sh [extra schemathesis args]
# Needs: pip install schemathesis
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_TIME="${SCHEMATHESIS_MAX_TIME:-60}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
command -v schemathesis >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 1; }

# `cargo test` passes the binary it built (tests/external); run by hand, build it.
if [[ -n "${AUDIT_BIN:-}" ]]; then
  BIN="$AUDIT_BIN"
else
  cargo build --quiet --bin audit-service
  BIN=target/debug/audit-service
fi
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export AUDIT_JWT_SECRET="schemathesis-secret-that-is-long-enough-0123"
# Rate limits off: schemathesis sends thousands of requests from one token, and
# a 429 would stop them before the validation they are meant to exercise.
AUDIT_RATE_LIMIT_READ_PER_SEC=0 AUDIT_RATE_LIMIT_WRITE_PER_SEC=0 RUST_LOG=warn \
  "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "sqlite://$WORK/audit.db" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
TOKEN="$("$BIN" token --scope audit:read --scope audit:write --ttl 1h)"

# positive_data_acceptance is excluded: the proto cannot express the cross-field
# rules (end_time after start_time, action grammar, result values), so a
# schema-valid request may rightly be refused with 400. Every other check runs:
# no 5xx, status codes, content types, headers and bodies conform, negative data
# is refused with 4xx, unsupported methods answer 405 with Allow, requests
# without the token answer 401.
timeout $((MAX_TIME * 4 + 60)) schemathesis run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
  --seed 1 --workers 2 "$@"
