#!/usr/bin/env bash
# Runs schemathesis (PyPI) against /openapi.json of a real plaid-sync.
#
# Starts, on free local ports and a fresh database: the Plaid simulator
# (`plaid-sync simulator`) and `plaid-sync serve` pointed at it; creates a user
# (`plaid-sync users create`) and links one item through the real Link routes,
# so the list routes answer with data; then runs schemathesis with the user's
# API token and JOBS_SECRET (the spec's two security schemes) and HMAC webhooks
# enabled. Everything it started is stopped and the database dropped on exit.
#
#   scripts/schemathesis.sh                 # default budget
#   ST_MAX_EXAMPLES=200 scripts/schemathesis.sh --seed 1   # extra args go to `st run`
#   PLAID_SYNC_BIN=path/to/plaid-sync scripts/schemathesis.sh   # no build
#
# Needs PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres) and
# `pip install schemathesis` (4.x). Exit status: schemathesis's.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plaid-sync-target}"
command -v st >/dev/null || { echo "schemathesis is missing: pip install schemathesis" >&2; exit 2; }
# PLAID_SYNC_BIN: an already built binary (skips the build).
bin="${PLAID_SYNC_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --bin plaid-sync
  bin="$CARGO_TARGET_DIR/debug/plaid-sync"
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }

work=$(mktemp -d)
db="schemathesis_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  echo "logs: $work"
}
trap cleanup EXIT

sim_port=$(free_port)
public_port=$(free_port)
admin_port=$(free_port)
public="http://127.0.0.1:$public_port"
sim="http://127.0.0.1:$sim_port"

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export BIND_ADDR="127.0.0.1:$public_port" ADMIN_BIND_ADDR="127.0.0.1:$admin_port"
export PLAID_ENV=simulator PLAID_BASE_URL="$sim" PLAID_WEBHOOK_URL="$public/webhook/plaid"
export SECRETS_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export JOBS_SECRET=$(random_secret) ADMIN_TOKEN=$(random_secret) PLAID_WEBHOOK_SECRET=$(random_secret)
export LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}"

"$bin" simulator --addr "127.0.0.1:$sim_port" >"$work/simulator.log" 2>&1 &
pids+=($!)
"$bin" serve >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fsS "$public/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "$public/readyz" >/dev/null

token=$("$bin" users create --email schemathesis@example.com 2>/dev/null | sed -n 's/^api_token: //p')
[ -n "$token" ] || { echo "users create printed no token" >&2; exit 2; }

# One linked item: Link token, the simulator's Link, the exchange.
link_token=$(curl -fsS -X POST "$public/api/plaid/link-token" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["link_token"])')
public_token=$(curl -fsS -X POST "$sim/simulator/link/complete" -H 'content-type: application/json' \
  -d "{\"link_token\": \"$link_token\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["public_token"])')
curl -fsS -X POST "$public/api/plaid/exchange-token" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d "{\"public_token\": \"$public_token\"}" >/dev/null

# Auth per security scheme of the spec (api_token, jobs_secret).
cat >"$work/schemathesis.toml" <<EOF
[auth.openapi.api_token]
bearer = "$token"

[auth.openapi.jobs_secret]
bearer = "$JOBS_SECRET"
EOF

set +e
st --config-file "$work/schemathesis.toml" run "$public/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "${ST_MAX_EXAMPLES:-100}" \
  --report junit --report-dir "$work/report" \
  "$@"
status=$?
set -e
if grep -q '"level":"ERROR"' "$work/serve.log"; then
  echo "the service logged errors during the run:" >&2
  grep '"level":"ERROR"' "$work/serve.log" | head -20 >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
