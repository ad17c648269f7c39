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
# SIGTERM while streams run: every stream still ends properly ([DONE]) and the server exits 0.
serve_start "$tmp/c.log" -m "$MODEL" -np 2 -c 512 -t 1 --grace 5
for i in $(seq 1 8); do
    curl -sN "$BASE/v1/completions" -H 'Content-Type: application/json' \
        -d "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time $i\",\"max_tokens\":480,\"stream\":true,\"logit_bias\":{\"2\":-100}}" \
        >"$tmp/stream$i.txt" &
done
sleep 0.3
serve_stop
wait
for i in $(seq 1 8); do
    tail -c 200 "$tmp/stream$i.txt" | grep -q 'data: \[DONE\]' || { echo "stream $i did not end with [DONE]" >&2; tail -c 300 "$tmp/stream$i.txt" >&2; exit 1; }
done
grep -q 'SIGTERM received' "$tmp/c.log"
