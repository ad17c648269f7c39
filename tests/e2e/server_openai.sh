#!/usr/bin/env bash
# tandem serve with the official openai npm client: chat, streaming, completions, embeddings,
# models, logprobs, logit bias, JSON-schema output, errors, disconnects; greedy text equals
# `tandem run --temp 0`.
set -euo pipefail
. tests/e2e/server_lib.bash
tmp=$(mktemp -d)
trap '[ -n "${SERVER_PID:-}" ] && kill -9 $SERVER_PID 2>/dev/null; rm -rf "$tmp"' EXIT
"$TANDEM" run -m "$MODEL" -p "Once upon a time, there was a little robot" -n 32 --temp 0 \
    2>/dev/null >"$tmp/expected.txt"
serve_start "$tmp/serve.log" -m "$MODEL" -np 4 -c 512 -t 2 --max-body 65536
node "$NODE_DIR/openai_api.mjs" "$BASE" stories260K "$tmp/expected.txt"
# The README's curl example, as written there (with this server's address).
curl -sf "$BASE/v1/chat/completions" -H "Content-Type: application/json" \
    -d '{"model": "stories260K", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 32}' \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["choices"][0]["message"]["content"]'
# A body over --max-body is refused with 413 and an OpenAI error object, before it is read.
head -c 100000 /dev/zero | tr '\0' x >"$tmp/big.json"
code=$(curl -s -o "$tmp/413.json" -w '%{http_code}' "$BASE/v1/chat/completions" \
    -H "Content-Type: application/json" --data-binary @"$tmp/big.json")
[ "$code" = 413 ] || { echo "oversized body: HTTP $code" >&2; exit 1; }
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["message"] and e["type"]' "$tmp/413.json"
serve_stop
grep -q 'stopped' "$tmp/serve.log"
