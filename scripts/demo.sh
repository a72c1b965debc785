#!/usr/bin/env bash
# The two-minute demo: smsgw on its embedded defaults (SQLite store, embedded
# queue) sending through the bundled CMPP 3.0 carrier simulator, all on
# 127.0.0.1. Watch the status lines, then the stats and one message's history.
#
#   bash scripts/demo.sh            # builds (release) on first run
#
# Everything it starts is stopped on exit; the store is demo/smsgw.db.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin smsgw
SMSGW=$PWD/target/release/smsgw
DEMO=${DEMO_DIR:-$PWD/demo}
mkdir -p "$DEMO"
rm -f "$DEMO"/smsgw.db*
export SMSGW_STORE="sqlite://$DEMO/smsgw.db"
SIM_PORT=${SIM_PORT:-17890}
ADMIN_PORT=${ADMIN_PORT:-17891}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== 1. a CMPP 3.0 carrier simulator (ISMG) on 127.0.0.1:$SIM_PORT, reports after 200 ms"
"$SMSGW" sim --protocol cmpp3 --listen "127.0.0.1:$SIM_PORT" --account 901234:demo-secret \
  --dlr-delay 200ms --admin "127.0.0.1:$ADMIN_PORT" >"$DEMO/sim.log" 2>&1 &
pids+=($!)
sleep 0.5

echo "== 2. the operator configures a carrier link (the secret is never printed)"
SMSGW_LINK_SECRET=demo-secret "$SMSGW" link add cmcc-demo --protocol cmpp3 \
  --addr "127.0.0.1:$SIM_PORT" --account 901234 --connections 2 --window 16 --tps 200
"$SMSGW" link list

echo "== 3. upstream enqueues messages (embedded queue; Kafka in production)"
"$SMSGW" send --id demo-otp-1 --to 13800138000 --priority otp --text "您的验证码是 428133，5分钟内有效。"
"$SMSGW" send --id demo-notify-1 --to 13900139000,13700137000 --priority notify --biz orders --text "Your order 10086 has shipped."
"$SMSGW" send --id demo-long-1 --to 13600136000 --priority marketing --biz promo \
  --text "$(printf '双十二大促：全场满300减50，会员再享9折，活动时间12月12日0点至24点，详情请打开App查看。%.0s' 1 2)"
for i in $(seq 1 20); do
  "$SMSGW" send --id "demo-mkt-$i" --to "1350013$(printf '%04d' "$i")" --priority marketing --biz promo --text "Flash sale #$i: 20% off today only. Reply TD to unsubscribe." >/dev/null
done
echo "queued 23 upstream messages (24 recipients, 25 segments)"

echo "== 4. smsgw serve: accept → route → submit over CMPP 3.0 → reports (6 s)"
SMSGW_LOG=${SMSGW_LOG:-info} "$SMSGW" serve &
pids+=($!)
sleep 6
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 5. statistics (by state, per link, per biz — the basis of cost allocation)"
"$SMSGW" stats
echo "== 6. one message's history"
"$SMSGW" msg show demo-long-1
echo "== 7. what the carrier saw (simulator admin endpoint)"
python3 - "$ADMIN_PORT" <<'PY'
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/stats"))
print(json.dumps(s, indent=1)[:1200])
PY
