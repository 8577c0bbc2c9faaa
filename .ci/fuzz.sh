#!/usr/bin/env bash
# Fuzzing: every cargo-fuzz target in fuzz/ for a bounded time each
# (FUZZ_SECONDS, 30 by default). libFuzzer's instrumentation needs the
# nightly toolchain; it and cargo-fuzz are installed when missing. A crash
# fails the run and leaves its input in fuzz/artifacts/<target>/, to become
# a regression test in the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet

cargo +nightly fuzz build
log="$(mktemp)"
for target in $(cargo +nightly fuzz list); do
  echo "-- fuzz $target for ${seconds} s"
  # -rss_limit_mb: a leak or a runaway allocation is a finding too.
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -60 "$log"
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" || true
done
rm -f "$log"
