#!/usr/bin/env bash
# 16 simultaneous streaming requests on 4 slots complete with the same text each gets alone;
# a full queue answers 503 with Retry-After.
set -euo pipefail
. tests/e2e/server_lib.bash
tmp=$(mktemp -d)
trap '[ -n "${SERVER_PID:-}" ] && kill -9 $SERVER_PID 2>/dev/null; rm -rf "$tmp"' EXIT
serve_start "$tmp/a.log" -m "$MODEL" -np 4 -c 256 -t 2
node "$NODE_DIR/concurrency.mjs" "$BASE" stories260K 16
serve_stop
serve_start "$tmp/b.log" -m "$MODEL" -np 1 --queue 1 -c 512 -t 2
node "$NODE_DIR/concurrency.mjs" "$BASE" stories260K 6 expect503
serve_stop
