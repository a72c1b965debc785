#!/usr/bin/env bash
# End-to-end throughput: Kafka (tansu) → smsgw serve (SQLite) → CMPP 3.0
# simulator (reports on) → reports correlated and persisted.
#
#   benches/e2e_bench.sh [N]        (default N=20000)
#
# Needs SMSGW_TANSU_BIN (scripts/test-deps.sh). Builds release binaries, starts
# tansu, the simulator (`smsgw sim`, CMPP 3.0, reports after
# BENCH_DLR_DELAY, default 100ms), `smsgw serve --kafka`, produces N records with
# examples/produce (pipelined), polls serve's /metrics until all are
# delivered (then checks `smsgw stats`), and prints messages/s from the first accept to the last delivery
# and the peak RSS of serve (VmHWM). Link: BENCH_CONNS × BENCH_WINDOW
# (default 4 × 64); BENCH_SERVE_CONFIG: a config file for serve. Everything on 127.0.0.1, stopped by PID.
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
TANSU=$!; PIDS+=($TANSU)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$KPORT) 2>/dev/null && break; sleep 0.05; done
BROKERS=127.0.0.1:$KPORT

SPORT=$(free_port)
SMSGW_LOG=warn "$BIN" sim --protocol cmpp3 --listen 127.0.0.1:$SPORT --account 901234:secret \
  --dlr-delay "${BENCH_DLR_DELAY:-100ms}" >"$WORK/sim.log" 2>&1 &
SIM=$!; PIDS+=($SIM)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SPORT) 2>/dev/null && break; sleep 0.05; done

STORE="sqlite://$WORK/bench.db"
"$BIN" link add m1 --protocol cmpp3 --addr 127.0.0.1:$SPORT --account 901234 --secret secret \
  --connections "${BENCH_CONNS:-4}" --window "${BENCH_WINDOW:-64}" --store "$STORE" >/dev/null
for t in status dlq; do "$TARGET/release/examples/produce" "$BROKERS" $t 0 >/dev/null; done
"$TARGET/release/examples/produce" "$BROKERS" in 0 >/dev/null

MPORT=$(free_port)
SMSGW_LOG=${BENCH_LOG:-warn},librdkafka=off,rdkafka=off "$BIN" serve --store "$STORE" --kafka "$BROKERS" \
  --input-topic in --status-topic status --dead-letter-topic dlq --group bench \
  --metrics 127.0.0.1:$MPORT ${BENCH_SERVE_CONFIG:+--config "$BENCH_SERVE_CONFIG"} 2>"$WORK/serve.log" &
SERVE=$!; [ -n "${BENCH_STRACE:-}" ] && { strace -f -c -e trace=fsync,fdatasync,pwrite64,write,futex -p $SERVE -o "$BENCH_STRACE" & PIDS+=($!); }
[ -n "${BENCH_PERF:-}" ] && { perf record ${BENCH_PERF_ARGS:--F 499 -g} -p $SERVE -o /tmp/engineperf_perf.data >/dev/null 2>&1 & PIDS+=($!); }
PIDS+=($SERVE)

echo "producing $N records"
"$TARGET/release/examples/produce" "$BROKERS" in "$N" marketing b | tee "$WORK/produce.json"
# progress from serve's /metrics (cheap), not `smsgw stats` (a full scan per call)
counter() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" 'index($0, k) == 1 {s += $2} END {print s + 0}'; }
first="" last=""
deadline=$(( $(date +%s) + 600 ))
while :; do
  now=$(date +%s.%N)
  acc=$(counter 'smsgw_messages_accepted_total{')
  deliv=$(counter 'smsgw_message_state_changes_total{state="delivered"}')
  [ -n "${BENCH_TRACE:-}" ] && echo "$now accepted=$acc delivered=$deliv in_flight=$(counter 'smsgw_engine_in_flight ') lanes=$(counter 'smsgw_lane_backlog{')"
  [ -z "$first" ] && [ "${acc%.*}" -gt 0 ] && first=$now
  if [ "${deliv%.*}" -ge "$N" ]; then last=$now; break; fi
  [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout: accepted=$acc delivered=$deliv"; exit 1; }
  sleep 0.1
done
# the store agrees
delivered=$("$BIN" stats --json --store "$STORE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_state"]["delivered"])')
[ "$delivered" -eq "$N" ] || { echo "store says $delivered delivered, expected $N"; exit 1; }
[ -n "${BENCH_METRICS_OUT:-}" ] && curl -s "http://127.0.0.1:$MPORT/metrics" >"$BENCH_METRICS_OUT"
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$SERVE/status)
# CPU seconds each process used (utime + stime), to see who holds the 2 cores
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
echo "cpu_secs: serve $(cpu $SERVE) sim $(cpu $SIM) tansu $(cpu $TANSU); store files: $(cd "$WORK" && du -ch bench.db* | tr '\n' ' ')"
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
