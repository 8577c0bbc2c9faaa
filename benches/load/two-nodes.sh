#!/usr/bin/env bash
# The seed scenario through one node and through two nodes of one cluster,
# same load, one after the other on one PostgreSQL database (issue 16).
#   benches/load/two-nodes.sh [loadgen options]
# Env: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/test: a
# database is made for the run and dropped after it), REDIS_URL (default
# redis://127.0.0.1:6379), BIN_DIR (default ./target/release), OUT (where
# the JSON reports go, default /tmp/two-nodes), ONLY (one or two: run that
# half only), SEED_ARGS (more seed-load options, e.g. --one-course). Sockets are spread round
# robin over the nodes, so every session's room spans both; CPU per delivery
# is summed over the nodes.
set -eu
cd "$(dirname "$0")/../.."
BIN_DIR="${BIN_DIR:-./target/release}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS="${REDIS_URL:-redis://127.0.0.1:6379}"
OUT="${OUT:-/tmp/two-nodes}"
mkdir -p "$OUT"
db="bench_two_nodes_$$"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db"
trap 'psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true' EXIT
DB_URL="${PG_ADMIN_URL%/*}/$db"
DATABASE_URL="$DB_URL" "$BIN_DIR/classroom" seed-load --users 5000 --sessions 50 ${SEED_ARGS:-} --out "$OUT/seed.json" >/dev/null

# start_node PORT [REDIS]: a release server with the bench limits
# (docs/benchmarks.md); its pid in $NODE_PID.
start_node() {
  env DATABASE_URL="$DB_URL" BIND_ADDR="127.0.0.1:$1" RUST_LOG=warn ${2:+REDIS_URL=$2} \
    WS_RATE_PER_SEC=10000 WS_RATE_BURST=10000 MAX_CONNECTIONS_PER_USER=1000 WS_OUTBOUND_BYTES=67108864 \
    "$BIN_DIR/classroom" >"$OUT/node-$1.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.1; done
}

if [ "${ONLY:-one}" = one ]; then
  echo "== one node (PostgreSQL, no Redis) =="
  start_node 18081; A=$NODE_PID
  "$BIN_DIR/loadgen" seed --tokens "$OUT/seed.json" --url http://127.0.0.1:18081 --server-pid "$A" \
    --json-out "$OUT/one-node.json" "$@"
  kill -TERM "$A"; wait "$A" || true
fi
[ "${ONLY:-two}" = two ] || exit 0

echo "== two nodes (PostgreSQL and Redis), every room spanning both =="
start_node 18081 "$REDIS"; A=$NODE_PID
start_node 18082 "$REDIS"; B=$NODE_PID
"$BIN_DIR/loadgen" seed --tokens "$OUT/seed.json" --url http://127.0.0.1:18081 --server-pid "$A" \
  --also-url http://127.0.0.1:18082 --also-server-pid "$B" --json-out "$OUT/two-nodes.json" "$@"
kill -TERM "$A" "$B"; wait "$A" "$B" || true
