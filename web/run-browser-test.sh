#!/usr/bin/env bash
# Browser test of the dashboard against the real service: builds the binary, starts a seeded server and a
# --demo server on free 127.0.0.1 ports (temporary SQLite files), runs web/tests/{dashboard,drill}.test.mjs in headless
# Debian Chromium, leaves screenshots in web/artifacts/, and stops both servers. `--update-docs` also refreshes
# the README's screenshot, docs/dashboard.png, from the demo server's page.
set -euo pipefail
cd "$(dirname "$0")/.."

UPDATE_DOCS=0
[[ "${1:-}" == "--update-docs" ]] && UPDATE_DOCS=1
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "no Chromium at $CHROMIUM: apt-get install -y chromium" >&2; exit 1; }
[[ -d web/node_modules/playwright-core ]] || (cd web && npm ci --no-audit --no-fund)

# `cargo test` passes the binary it built (tests/external); run by hand, build it.
if [[ -n "${AUDIT_BIN:-}" ]]; then
  BIN="$AUDIT_BIN"
else
  cargo build --quiet --bin audit-service
  BIN="$PWD/target/debug/audit-service"
fi
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    for log in "$WORK"/*.log; do
      [[ -f "$log" ]] && { echo "--- $log (last lines)" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Each run signs with its own key, so the test can mint tokens for the seeded server. The demo server
# makes a key of its own (it refuses a configured one) and the test reads its token from /demo-token.
AUDIT_JWT_SECRET="browser-test-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
export AUDIT_JWT_SECRET

# Starts `audit-service serve` on port 0 (no race for a free port) and sets ADDRESS to the one it logged once
# listening. Not run in a subshell, so that cleanup knows every server's pid.
start_server() {
  local name=$1
  shift
  AUDIT_LOG_FORMAT=json "$BIN" serve --listen 127.0.0.1:0 --database-url "sqlite://$WORK/$name.db" "$@" \
    >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  ADDRESS=""
  for _ in $(seq 1 600); do
    ADDRESS=$(grep '"listening"' "$WORK/$name.log" 2>/dev/null | grep -o '"address":"[^"]*"' | head -n1 | cut -d'"' -f4 || true)
    [[ -n "$ADDRESS" ]] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "the $name server exited" >&2; return 1; }
    sleep 0.1
  done
  echo "the $name server did not start listening within 60 s" >&2
  return 1
}

start_server seeded
SEEDED="http://$ADDRESS"
export -n AUDIT_JWT_SECRET
start_server demo --demo
export AUDIT_JWT_SECRET
DEMO="http://$ADDRESS"
echo "seeded server: $SEEDED   demo server: $DEMO"

WRITE_TOKEN=$("$BIN" token --scope audit:write --ttl 15m)
node web/tests/seed.mjs "$SEEDED" "$WRITE_TOKEN"

ARTIFACTS="$PWD/web/artifacts"
mkdir -p "$ARTIFACTS"
AUDIT_BASE_URL="$SEEDED" AUDIT_DEMO_URL="$DEMO" CHROMIUM="$CHROMIUM" ARTIFACTS="$ARTIFACTS" UPDATE_DOCS="$UPDATE_DOCS" \
  READ_TOKEN=$("$BIN" token --scope audit:read --ttl 1h) \
  ORG_TOKEN=$("$BIN" token --scope audit:read --org org_acme --ttl 1h) \
  node --test --test-concurrency=1 web/tests/dashboard.test.mjs web/tests/drill.test.mjs
echo "screenshots: $(cd "$ARTIFACTS" && ls -- *.png | tr '\n' ' ')(in web/artifacts/)"
[[ $UPDATE_DOCS -eq 1 ]] && echo "updated docs/dashboard.png"
exit 0
