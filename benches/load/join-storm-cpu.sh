#!/usr/bin/env bash
# Server CPU of a join storm: USERS students of one session connect and join
# at once (loadgen hot-room's set-up, then 1 s of its chat), on a fresh
# database; prints the set-up time and the server's CPU seconds (user+sys).
#   benches/load/join-storm-cpu.sh <users> [bin_dir]   (bin_dir: ./target/release)
set -u
cd "$(dirname "$0")/../.."
USERS=$1
BIN_DIR="${2:-./target/release}"
DIR="$(mktemp -d)"
PORT="${PORT:-18393}"
DATABASE_URL="$DIR/bench.db" "$BIN_DIR/classroom" seed-load --users "$USERS" --sessions 1 --out "$DIR/seed.json" >/dev/null
DATABASE_URL="$DIR/bench.db" BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn WS_RATE_PER_SEC=10000 WS_RATE_BURST=10000 \
  MAX_CONNECTIONS_PER_USER=1000 WS_OUTBOUND_BYTES=67108864 "$BIN_DIR/classroom" &
PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
"$BIN_DIR/loadgen" hot-room --users "$USERS" --tokens "$DIR/seed.json" --duration 1 --warmup 0 --quiet \
  --url "http://127.0.0.1:$PORT" --server-pid "$PID" | grep -o "set-up:.*failed in [0-9.]* s"
read -r utime stime <<<"$(awk '{print $14, $15}' /proc/$PID/stat)"
echo "server CPU: $(awk -v t=$((utime + stime)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }') s"
kill -TERM "$PID"
wait "$PID"
rm -rf "$DIR"
