#!/usr/bin/env bash
# otp latency under a marketing backlog: Kafka (tansu) → smsgw serve (SQLite)
# → CMPP 3.0 simulator (reports on).
#
#   benches/otp_bench.sh [BACKLOG] [OTP]      (defaults 1000000 and 500)
#
# Produces BACKLOG marketing records, waits until serve has accepted them
# all (the backlog sits in the store and drains at the links' pace), then
# trickles OTP otp records, one every 10 ms, and reads from serve's
# /metrics the latency summaries for otp (p50, p99, max): accept→dispatch
# (hand-off to the link) and accept→submit (the submit written to the carrier,
# timed when its response arrives),
# the marketing messages still queued when the last otp went out, and
# serve's peak RSS (VmHWM). BENCH_TPS caps the link (default: no cap);
# BENCH_METRICS_OUT=FILE keeps serve's last /metrics page.
# Needs SMSGW_TANSU_BIN (scripts/test-deps.sh). Everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOG=${1:-1000000}
OTP=${2:-500}
: "${SMSGW_TANSU_BIN:?run: eval \"\$(scripts/test-deps.sh)\"}"
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin smsgw --example produce
BIN=$TARGET/release/smsgw
PRODUCE=$TARGET/release/examples/produce
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; }

KPORT=$(free_port)
"$SMSGW_TANSU_BIN" broker --listener-url tcp://127.0.0.1:$KPORT --advertised-listener-url tcp://127.0.0.1:$KPORT \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
wait_port $KPORT
BROKERS=127.0.0.1:$KPORT

SPORT=$(free_port)
SMSGW_LOG=warn "$BIN" sim --protocol cmpp3 --listen 127.0.0.1:$SPORT --account 901234:secret \
  >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
wait_port $SPORT

STORE="sqlite://$WORK/bench.db"
TPS=()
[ -n "${BENCH_TPS:-}" ] && TPS=(--tps "$BENCH_TPS")
"$BIN" link add m1 --protocol cmpp3 --addr 127.0.0.1:$SPORT --account 901234 --secret secret \
  --connections "${BENCH_CONNS:-4}" --window "${BENCH_WINDOW:-64}" "${TPS[@]}" --store "$STORE" >/dev/null
for t in in status dlq; do "$PRODUCE" "$BROKERS" $t 0 >/dev/null; done

MPORT=$(free_port)
SMSGW_LOG=warn,librdkafka=off,rdkafka=off "$BIN" serve --store "$STORE" --kafka "$BROKERS" \
  --input-topic in --status-topic status --dead-letter-topic dlq --group bench \
  --metrics 127.0.0.1:$MPORT 2>"$WORK/serve.log" &
SERVE=$!
PIDS+=($SERVE)
wait_port $MPORT

metric() { # NAME LABELS → value (0 if absent)
  curl -s "http://127.0.0.1:$MPORT/metrics" | python3 -c '
import sys
name, labels = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    if line.startswith(name + "{") and all(l in line for l in labels.split(",") if l):
        print(line.rsplit(" ", 1)[1].strip()); break
else:
    print(0)' "$1" "$2"
}
stat() { "$BIN" stats --json --store "$STORE" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

echo "producing $BACKLOG marketing records"
"$PRODUCE" "$BROKERS" in "$BACKLOG" marketing m
deadline=$(( $(date +%s) + 1800 ))
while [ "$(stat 's["messages"]')" -lt "$BACKLOG" ]; do
  [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout accepting the backlog"; exit 1; }
  sleep 1
done
queued_before=$(stat 's["by_state"]["accepted"]')
echo "backlog accepted; $queued_before marketing still queued; trickling $OTP otp records"
"$PRODUCE" "$BROKERS" in "$OTP" otp o 10
while [ "$(metric smsgw_messages_dispatched_total 'priority="otp"')" -lt "$OTP" ]; do
  [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout waiting for otp"; exit 1; }
  sleep 0.2
done
while [ "$(metric smsgw_accept_to_submit_seconds_count 'priority="otp"')" -lt "$OTP" ]; do
  [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout waiting for otp submit responses"; exit 1; }
  sleep 0.2
done
queued_after=$(stat 's["by_state"]["accepted"]')
q() { metric smsgw_accept_to_dispatch_seconds "priority=\"otp\",quantile=\"$1\""; }
p50=$(q 0.5) p99=$(q 0.99) pmax=$(q 1)
qs() { metric smsgw_accept_to_submit_seconds "priority=\"otp\",quantile=\"$1\""; }
s50=$(qs 0.5) s99=$(qs 0.99) smax=$(qs 1)
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$SERVE/status)
# what the resident memory is now: heap (anonymous) vs mapped files
[ -n "${BENCH_METRICS_OUT:-}" ] && curl -s "http://127.0.0.1:$MPORT/metrics" >"$BENCH_METRICS_OUT"
[ -n "${BENCH_SMAPS:-}" ] && grep -E '^(Rss|Anonymous|Shared_Clean|Shared_Dirty|Private_Clean|Private_Dirty):' /proc/$SERVE/smaps_rollup | tr -s ' ' | tr '\n' ' ' && echo
python3 - "$BACKLOG" "$OTP" "$p50" "$p99" "$pmax" "$queued_before" "$queued_after" "$rss_kb" "$s50" "$s99" "$smax" <<'PY'
import sys, json
b, n, p50, p99, pmax, qb, qa, rss, s50, s99, smax = sys.argv[1:]
ms = lambda v: round(float(v) * 1e3, 3)
print(json.dumps({"marketing_backlog": int(b), "otp": int(n),
                  "otp_accept_to_dispatch_ms": {"p50": ms(p50), "p99": ms(p99), "max": ms(pmax)},
                  "otp_accept_to_submit_ms": {"p50": ms(s50), "p99": ms(s99), "max": ms(smax)},
                  "marketing_queued_at_otp_start": int(qb), "marketing_queued_after_last_otp": int(qa),
                  "serve_peak_rss_mb": round(int(rss) / 1024, 1)}))
PY
kill -TERM $SERVE; wait $SERVE || true
