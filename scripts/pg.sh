#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 and prints its URL on stdout.
#
#   eval "$(scripts/pg.sh)"          # sets SMSGW_TEST_PG_URL and SMSGW_PG_DIR
#   scripts/pg.sh stop "$SMSGW_PG_DIR"
#   scripts/pg.sh pause|resume "$SMSGW_PG_DIR"   (stop / start, data kept)
#
# postgres refuses to run as root, so the cluster runs as `postgres` with its
# data under /tmp. Port: $SMSGW_PG_PORT or a free one.
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z "${PGBIN}" ]]; then
    echo "pg.sh: no PostgreSQL under /usr/lib/postgresql (apt-get install -y postgresql)" >&2
    exit 1
fi
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# pause / resume: stop the server keeping its data, start it again on the
# same port (the "database down" tests)
if [[ "${1:-}" == "pause" ]]; then
    as_pg "$PGBIN/pg_ctl" -D "${2:?usage: pg.sh pause DIR}" -m fast -w stop >/dev/null
    exit 0
fi
if [[ "${1:-}" == "resume" ]]; then
    dir=${2:?usage: pg.sh resume DIR}
    as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "$(cat "$dir/smsgw.opts")" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    exit 0
fi

if [[ "${1:-}" == "stop" ]]; then
    dir=${2:?usage: pg.sh stop DIR}
    as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    exit 0
fi

port=${SMSGW_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
dir=$(mktemp -d /tmp/smsgw-pg.XXXXXX)
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
chmod 700 "$dir"
as_pg "$PGBIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-sync >"$dir.initdb.log" 2>&1 \
    || { cat "$dir.initdb.log" >&2; exit 1; }
opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off"
echo "$opts" >"$dir/smsgw.opts"
as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "$opts" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
rm -f "$dir.initdb.log"
echo "export SMSGW_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export SMSGW_PG_DIR=$dir"
