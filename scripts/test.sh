#!/usr/bin/env bash
# The project's test command (README: "Run the tests").
# Formatting, lints, the whole workspace's tests, the build without default
# features, and a short bounded fuzz run of every protocol's decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== clippy (warnings denied)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== services: PostgreSQL on 127.0.0.1 (the store tests run against it and SQLite)"
eval "$(bash scripts/pg.sh)"
trap 'bash scripts/pg.sh stop "$SMSGW_PG_DIR"' EXIT
export SMSGW_REQUIRE_PG=1

echo "== tests"
cargo test --workspace --all-targets --all-features

echo "== fuzz (${FUZZ_SECONDS}s per protocol, sanitizers off so it runs on stable)"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz --locked' (.ci/run does)"
  exit 1
fi
python3 scripts/fuzz_seeds.py
for target in cmpp smgp sgip; do
  log=$(mktemp)
  if ! (cd codecs && cargo fuzz run -s none "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed (crash input under codecs/fuzz/artifacts/$target/)"
    exit 1
  fi
  echo "fuzz $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$log" | tail -n 1), 0 crashes"
  rm -f "$log"
done
echo "== all tests passed"
