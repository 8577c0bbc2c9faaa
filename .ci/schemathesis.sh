#!/usr/bin/env bash
# Schemathesis against the served OpenAPI document, signed in as an
# instructor and as a student, on the database DATABASE_URL names (a fresh
# SQLite file when unset). Checks: no 5xx, every status documented, every
# answer in its schema and content type. Bounded (a fixed seed, 30 examples
# per operation) to a minute or two; `EXAMPLES=500 .ci/schemathesis.sh` is
# the longer run. Expects `cargo build` done.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check schemathesis 2>&1 | grep -v "WARNING: Running pip as the 'root' user" || true

work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export DATABASE_URL="${DATABASE_URL:-$work/classroom.db}"
BIND_ADDR="127.0.0.1:$port" AUTH_ATTEMPTS_PER_CLIENT=0 AUTH_ATTEMPTS_PER_ACCOUNT=0 RUST_LOG=warn \
  target/debug/classroom >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

# One user per role; the e-mail is unique per run so a database reused across runs takes it.
token_of() {
  curl -sf -X POST "http://127.0.0.1:$port/api/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1-$$-$port@schemathesis.test\",\"password\":\"correct horse battery\",\"name\":\"$1\",\"role\":\"$1\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

status=0
for role in instructor student; do
  token=$(token_of "$role")
  echo "-- schemathesis as $role on ${DATABASE_URL%%:*}"
  # Logout would revoke the token the rest of the run needs.
  rc=0
  schemathesis run "http://127.0.0.1:$port/api/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing --max-examples "${EXAMPLES:-30}" --seed 7 --workers 2 \
    --exclude-path /api/auth/logout --no-color >"$work/$role.out" 2>&1 || rc=$?
  grep -v '^\s*$' "$work/$role.out" | tail -25
  if [ "$rc" -ne 0 ]; then
    # A crash inside Hypothesis on this Python (CPython 3.11's "AST
    # constructor recursion depth mismatch") is the tool's, not the
    # server's: said, not failed on. Anything else is a failure.
    if grep -q "SystemError: AST constructor recursion depth mismatch" "$work/$role.out" &&
      ! grep -q "^Failures:" "$work/$role.out"; then
      echo "schemathesis as $role: its generator crashed (a CPython 3.11 bug), no check failed"
    else
      grep -v '^\s*$' "$work/$role.out" | grep -A15 "FAILURES" | head -80
      status=1
    fi
  fi
done
if [ "$status" -ne 0 ]; then
  echo "server log:"; tail -50 "$work/server.log"
fi
exit $status
