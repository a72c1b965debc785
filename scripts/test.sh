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

echo "== tests"
cargo test --workspace --all-targets --all-features

echo "== fuzz (${FUZZ_SECONDS}s per protocol, sanitizers off so it runs on stable)"
if command -v cargo-fuzz >/dev/null 2>&1; then
  for target in cmpp smgp sgip; do
    (cd codecs && cargo fuzz run -s none "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024 2>&1 \
      | grep -E 'Done [0-9]+ runs|ERROR|panicked|crash' || true)
    # a crash makes cargo fuzz exit non-zero; re-check the artifact dir
    if ls codecs/fuzz/artifacts/"$target"/crash-* >/dev/null 2>&1; then
      echo "fuzz target $target found a crash:"; ls codecs/fuzz/artifacts/"$target"/
      exit 1
    fi
  done
else
  echo "cargo-fuzz is not installed: install it with 'cargo install cargo-fuzz --locked' (.ci/run does)"
  exit 1
fi
echo "== all tests passed"
