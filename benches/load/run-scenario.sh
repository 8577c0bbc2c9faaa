#!/usr/bin/env bash
# One loadgen scenario against a fresh release server, then SIGTERM.
#   benches/load/run-scenario.sh <scenario> [loadgen options]
# Env: BIN_DIR (where classroom and loadgen are, default ./target/release: set
# it to compare two builds), DB (the server's database, default $BENCH_DIR/bench.db), SERVER_PREFIX
# (a command to start the server under, e.g. "env MALLOC_ARENA_MAX=2" or
# "heaptrack -o /tmp/ht"), PORT (where the server listens, default 18080: another
# port lets two runs share the machine). The limits raised here are explained in
# docs/benchmarks.md ("The server, with the limits raised").
set -u
cd "$(dirname "$0")/../.."
BENCH_DIR="${BENCH_DIR:-/tmp/bench}"
BIN_DIR="${BIN_DIR:-./target/release}"
PORT="${PORT:-18080}"
DATABASE_URL="${DB:-$BENCH_DIR/bench.db}" BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn \
  WS_RATE_PER_SEC=10000 WS_RATE_BURST=10000 MAX_CONNECTIONS_PER_USER=1000 WS_OUTBOUND_BYTES=67108864 \
  ${SERVER_PREFIX:-} "$BIN_DIR/classroom" &
PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
"$BIN_DIR/loadgen" "$@" --url "http://127.0.0.1:$PORT" --server-pid "$PID"
kill -TERM "$PID"
wait "$PID"
