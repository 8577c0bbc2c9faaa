#!/usr/bin/env bash
# Every scenario of docs/benchmarks.md, each on a fresh server; outputs in
# $BENCH_DIR/results/<name>.txt. Needs `cargo build --release --bins` and the
# seed files of docs/benchmarks.md ("Commands") in $BENCH_DIR (office hours seed their own). About 25 minutes.
set -u
BENCH_DIR="${BENCH_DIR:-/tmp/bench}"
RUN="$(dirname "$0")/run-scenario.sh"
R="$BENCH_DIR/results"; mkdir -p "$R"
run() { local name=$1; shift; echo "== $name $(date +%T)"; timeout 1200 "$RUN" "$@" > "$R/$name.txt" 2>&1; sleep 2; }
S="$BENCH_DIR/seed.json"; H="$BENCH_DIR/hot.json"; I="$BENCH_DIR/idle.json"
run seed-1          seed            --tokens "$S" --duration 30
run seed-2          seed            --tokens "$S" --duration 30
if [ -f "$BENCH_DIR/grown.db" ]; then
  DB="$BENCH_DIR/grown.db" run seed-grown-db seed --tokens "$S" --duration 30
fi
run room-100        room-100        --tokens "$S" --duration 30
run throughput-1000 throughput-1000 --tokens "$S" --duration 30
run hot-1000-1      hot-room        --tokens "$H" --duration 30
run hot-1000-2      hot-room        --tokens "$H" --duration 30
run max-throughput  max-throughput  --tokens "$S" --duration 10 --start-rate 1 --step-factor 1.4
run hot-10000-steps max-throughput  --tokens "$H" --duration 20 --sessions 1 --users-per-session 10000 \
                                    --start-rate 0.0005 --step-factor 1.41 --max-steps 5
run hot-10000-20    hot-room        --tokens "$H" --duration 30 --users 10000
run idle-1          idle            --tokens "$I" --connections 19000 --procs 2 --hold 10
run idle-2          idle            --tokens "$I" --connections 19000 --procs 2 --hold 10
run idle-half       idle            --tokens "$I" --connections 9500 --procs 1 --hold 10
SERVER_PREFIX="env MALLOC_ARENA_MAX=2" run idle-arena2 idle --tokens "$I" --connections 19000 --procs 2 --hold 10
# Office hours, each run on a database of its own, seeded here (their courses
# would make seed.json's users course mates of 1,000 and change the runs above).
OH="$BENCH_DIR/oh"; mkdir -p "$OH"
oh() {
  local name=$1 sessions=$2; shift 2
  rm -f "$OH/$name.db"*
  (cd "$(dirname "$0")/../.." && DATABASE_URL="$OH/$name.db" "${BIN_DIR:-./target/release}/classroom" seed-load \
    --users 1000 --sessions "$sessions" --out "$OH/$name.json" > /dev/null) &&
    DB="$OH/$name.db" run "$name" office-hours --tokens "$OH/$name.json" "$@"
}
oh oh-20x50-1  20 --instructors 20 --queue-size 50
oh oh-20x50-2  20 --instructors 20 --queue-size 50
oh oh-1x1000-1 1  --instructors 1  --queue-size 1000
oh oh-1x1000-2 1  --instructors 1  --queue-size 1000
echo "== done $(date +%T)"
