#!/usr/bin/env bash
# End-to-end throughput: Kafka (tansu) → smsgw serve (SQLite) → CMPP 3.0
# simulator (reports on) → reports correlated and persisted.
#
#   benches/e2e_bench.sh [N]        (default N=20000)
#
# Needs SMSGW_TANSU_BIN (scripts/test-deps.sh). Builds release binaries, starts
# tansu, the simulator (`smsgw sim`, CMPP 3.0, reports after
# BENCH_DLR_DELAY, default 100ms), `smsgw serve --kafka`, produces N records with
# examples/produce (pipelined), polls `smsgw stats --json` until all are
# delivered, and prints messages/s from the first accept to the last delivery
# and the peak RSS of serve (VmHWM). Everything on 127.0.0.1, stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
: "${SMSGW_TANSU_BIN:?run: eval \"\$(scripts/test-deps.sh)\"}"
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin smsgw --example produce
BIN=$TARGET/release/smsgw
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

KPORT=$(free_port)
"$SMSGW_TANSU_BIN" broker --listener-url tcp://127.0.0.1:$KPORT --advertised-listener-url tcp://127.0.0.1:$KPORT \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$KPORT) 2>/dev/null && break; sleep 0.05; done
BROKERS=127.0.0.1:$KPORT

SPORT=$(free_port)
SMSGW_LOG=warn "$BIN" sim --protocol cmpp3 --listen 127.0.0.1:$SPORT --account 901234:secret \
  --dlr-delay "${BENCH_DLR_DELAY:-100ms}" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SPORT) 2>/dev/null && break; sleep 0.05; done

STORE="sqlite://$WORK/bench.db"
"$BIN" link add m1 --protocol cmpp3 --addr 127.0.0.1:$SPORT --account 901234 --secret secret \
  --connections 4 --window 64 --store "$STORE" >/dev/null
for t in status dlq; do "$TARGET/release/examples/produce" "$BROKERS" $t 0 >/dev/null; done
"$TARGET/release/examples/produce" "$BROKERS" in 0 >/dev/null

SMSGW_LOG=${BENCH_LOG:-warn},librdkafka=off,rdkafka=off "$BIN" serve --store "$STORE" --kafka "$BROKERS" \
  --input-topic in --status-topic status --dead-letter-topic dlq --group bench 2>"$WORK/serve.log" &
SERVE=$!; [ -n "${BENCH_PERF:-}" ] && { perf record -F 499 -g -p $SERVE -o /tmp/engineperf_perf.data >/dev/null 2>&1 & PIDS+=($!); }
PIDS+=($SERVE)

echo "producing $N records"
"$TARGET/release/examples/produce" "$BROKERS" in "$N" marketing b | tee "$WORK/produce.json"
first="" last=""
deadline=$(( $(date +%s) + 600 ))
while :; do
  now=$(date +%s.%N)
  s=$("$BIN" stats --json --store "$STORE")
  msgs=$(echo "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')
  deliv=$(echo "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_state"]["delivered"])')
  [ -n "${BENCH_TRACE:-}" ] && echo "$now $(echo "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_state"])')"
  [ -z "$first" ] && [ "$msgs" -gt 0 ] && first=$now
  if [ "$deliv" -ge "$N" ]; then last=$now; break; fi
  [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout: $s"; exit 1; }
  sleep 0.2
done
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$SERVE/status)
python3 - "$N" "$first" "$last" "$rss_kb" <<'PY'
import sys, json
n, first, last, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
secs = last - first
print(json.dumps({"messages": n, "accept_to_delivered_secs": round(secs, 2),
                  "msgs_per_sec": round(n / secs), "serve_peak_rss_mb": round(rss / 1024, 1)}))
PY
kill -TERM $SERVE; wait $SERVE || true
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$WORK/serve.log" "$BENCH_KEEP_LOG"
echo "serve log (warnings):"; tail -5 "$WORK/serve.log"
