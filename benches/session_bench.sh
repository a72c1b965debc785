#!/usr/bin/env bash
# Session-layer speed benchmark: `smsgw bench` against `smsgw sim` (CMPP 3.0)
# on loopback, next to the smpp34 crate's own client and server doing the
# same (examples/smpp34_load.rs: submit_sm, same window, connections and
# message count). Reports are OFF on both sides: smsgw bench --no-reports
# sends Registered_Delivery 0 (the simulator then sends no DELIVER), the
# smpp34 client sends registered_delivery 0 and its server sends nothing.
#
#   benches/session_bench.sh                 # MESSAGES=100000 RUNS=3
#   MESSAGES=20000 RUNS=1 benches/session_bench.sh
#
# Needs /usr/bin/time (GNU time, `apt-get install time` in CI) and python3.
# Prints a table: median msgs/s of RUNS runs per configuration, the ratio
# smsgw / smpp34 (target >= 1.2) and the maximum RSS of each process.
set -euo pipefail

MESSAGES=${MESSAGES:-100000}
RUNS=${RUNS:-3}
CONFIGS=${CONFIGS:-"1:16 1:64 4:64"}   # connections:window
TEXT=${TEXT:-"smsgw bench 123456"}
SIM_PORT=${SIM_PORT:-27890}
SMPP_PORT=${SMPP_PORT:-27891}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -x /usr/bin/time ]; then
  echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2
  exit 1
fi

(cd "$ROOT" && cargo build --release --bin smsgw --example smpp34_load)
SMSGW=$TARGET_DIR/release/smsgw
SMPP=$TARGET_DIR/release/examples/smpp34_load

WORK=$(mktemp -d)
PIDS=()
# PIDS are the /usr/bin/time wrappers. GNU time ignores SIGINT and SIGQUIT
# while it waits, and a TERM to it would orphan the server, so signals go
# to the wrapped server (the wrapper's child) and time exits with it.
stop() {
  local sig=$1; shift
  for p in "$@"; do
    pkill "-$sig" -P "$p" 2>/dev/null || true
  done
}
cleanup() {
  stop TERM "${PIDS[@]}"
  sleep 0.2
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2
  exit 1
}

/usr/bin/time -v -o "$WORK/sim.time" "$SMSGW" sim --protocol cmpp3 \
  --listen "127.0.0.1:$SIM_PORT" --account 901234:secret \
  >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
/usr/bin/time -v -o "$WORK/smpp_server.time" "$SMPP" --serve "127.0.0.1:$SMPP_PORT" \
  >"$WORK/smpp_server.log" 2>&1 &
PIDS+=($!)
wait_port "$SIM_PORT"
wait_port "$SMPP_PORT"

rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

RESULTS=$WORK/results.tsv
for cfg in $CONFIGS; do
  c=${cfg%%:*}
  w=${cfg##*:}
  for run in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$WORK/t" "$SMSGW" bench --protocol cmpp3 \
      --target "127.0.0.1:$SIM_PORT" --account 901234:secret \
      --messages "$MESSAGES" --connections "$c" --window "$w" \
      --text "$TEXT" --no-reports --json >"$WORK/out" 2>"$WORK/err" \
      || { cat "$WORK/err" >&2; exit 1; }
    printf 'smsgw\t%s\t%s\t%s\t%s\t%s\n' "$c" "$w" "$run" "$(tail -n 1 "$WORK/out")" "$(rss_kb "$WORK/t")" >>"$RESULTS"
    /usr/bin/time -v -o "$WORK/t" "$SMPP" --target "127.0.0.1:$SMPP_PORT" \
      --messages "$MESSAGES" --connections "$c" --window "$w" --text "$TEXT" \
      >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    printf 'smpp34\t%s\t%s\t%s\t%s\t%s\n' "$c" "$w" "$run" "$(tail -n 1 "$WORK/out")" "$(rss_kb "$WORK/t")" >>"$RESULTS"
  done
done

# Stop the servers to read their peak RSS.
stop INT "${PIDS[@]}"
wait 2>/dev/null || true
PIDS=()
SIM_RSS=$(rss_kb "$WORK/sim.time" || echo 0)
SMPP_SRV_RSS=$(rss_kb "$WORK/smpp_server.time" || echo 0)

python3 - "$RESULTS" "$MESSAGES" "$RUNS" "${SIM_RSS:-0}" "${SMPP_SRV_RSS:-0}" <<'PY'
import json, statistics, sys
path, messages, runs, sim_rss, smpp_srv_rss = sys.argv[1:6]
rows = {}
for line in open(path):
    impl, c, w, run, js, rss = line.rstrip("\n").split("\t")
    r = json.loads(js)
    bad = (r.get("errors", 0) or 0)
    rows.setdefault((c, w), {}).setdefault(impl, []).append((r["msgs_per_s"], int(rss), bad, r))
print(f"\nCMPP 3.0 smsgw bench vs smpp34 submit_sm, loopback, {messages} messages, reports off, median of {runs}\n")
hdr = f"{'conns x window':>15} | {'smsgw msg/s':>12} | {'smpp34 msg/s':>12} | {'ratio':>6} | {'smsgw RSS MB':>12} | {'smpp34 cli RSS MB':>17} | {'smsgw frames/write':>18}"
print(hdr)
print("-" * len(hdr))
ok = True
for (c, w), d in rows.items():
    s = d.get("smsgw", []); p = d.get("smpp34", [])
    ms = statistics.median(x[0] for x in s); mp = statistics.median(x[0] for x in p)
    rs = max(x[1] for x in s) / 1024; rp = max(x[1] for x in p) / 1024
    fpw = statistics.median(x[3].get("frames_per_write", 0) for x in s)
    ratio = ms / mp if mp else float("nan")
    errs = sum(x[2] for x in s) + sum(x[2] for x in p)
    ok &= ratio >= 1.2
    print(f"{c + ' x ' + w:>15} | {ms:>12.0f} | {mp:>12.0f} | {ratio:>6.2f} | {rs:>12.1f} | {rp:>17.1f} | {fpw:>18.1f}" + (f"  ({errs} errors!)" if errs else ""))
    print(f"{'':>15}   runs: smsgw {', '.join(f'{x[0]:.0f}' for x in s)}; smpp34 {', '.join(f'{x[0]:.0f}' for x in p)}")
print(f"\nserver peak RSS: smsgw sim {int(sim_rss)/1024:.1f} MB, smpp34 server {int(smpp_srv_rss)/1024:.1f} MB")
print("target ratio >= 1.2 in every configuration:", "MET" if ok else "NOT MET")
PY
