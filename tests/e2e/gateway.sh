#!/usr/bin/env bash
# The gateway end to end: `tandem serve --config` in front of the local model and a fake cloud
# upstream speaking the OpenAI, Anthropic and Gemini wire formats; OpenAI and Anthropic SDK
# clients; privacy actions checked on the bytes the upstream received; faults and fallbacks;
# SIGHUP reload.
set -euo pipefail
. tests/e2e/server_lib.bash
tmp=$(mktemp -d)
FAKE_PID=
trap '[ -n "${SERVER_PID:-}" ] && kill -9 $SERVER_PID 2>/dev/null; [ -n "$FAKE_PID" ] && kill $FAKE_PID 2>/dev/null; rm -rf "$tmp"' EXIT
python3 tests/e2e/fake_upstream.py --port 0 --record "$tmp/record.jsonl" --key fake-key --hang-s 20 \
    >"$tmp/fake.out" 2>"$tmp/fake.err" &
FAKE_PID=$!
for _ in $(seq 1 50); do grep -q '^PORT' "$tmp/fake.out" 2>/dev/null && break; sleep 0.1; done
FAKE_PORT=$(awk '/^PORT/ {print $2; exit}' "$tmp/fake.out")
[ -n "$FAKE_PORT" ] || { cat "$tmp/fake.err" >&2; exit 1; }
FAKE=http://127.0.0.1:$FAKE_PORT
touch "$tmp/record.jsonl"
export FAKE_KEY=fake-key
upstream() {  # NAME PROVIDER BASE MODEL [extra yaml lines]
    printf '  - name: %s\n    provider: %s\n    base_url: %s\n    api_key: env:FAKE_KEY\n    model: %s\n' "$1" "$2" "$3" "$4"
    printf '    timeouts: { connect_ms: 1000, first_byte_ms: 1500, total_ms: 6000 }\n    retries: { max: 1, backoff_ms: 20 }\n'
    printf '    price: { input_per_mtok: 2.5, output_per_mtok: 10 }\n'
    shift 4; for l in "$@"; do printf '    %s\n' "$l"; done
}
{
    echo "listen: 127.0.0.1:0"
    echo "models:"
    echo "  - name: local-small"
    echo "    local: { path: $MODEL, slots: 2, ctx_size: 512, threads: 2 }"
    upstream claude anthropic "$FAKE" claude-test
    upstream gpt openai "$FAKE/v1" gpt-test
    upstream gemini gemini "$FAKE" gemini-test
    upstream pseudo-gpt openai "$FAKE/v1" gpt-test "privacy: { action: pseudonymize }"
    upstream blocked-gpt openai "$FAKE/v1" gpt-test "privacy: { action: block }"
    for f in 500:http500 hang:hang reset:reset truncate:truncate badjson:bad_json; do
        upstream "broken-${f%%:*}" openai "$FAKE/v1" "fault-${f#*:}"
    done
    upstream truncating openai "$FAKE/v1" fault-truncate
    printf '  - name: bad-key\n    provider: openai\n    base_url: %s/v1\n    api_key: wrong-key-value\n    model: gpt-test\n' "$FAKE"
    echo "routes:"
    for f in 500 hang reset truncate badjson; do
        echo "  - name: fallback-$f"
        echo "    targets: [broken-$f, claude]"
    done
    echo "  - name: all-broken"
    echo "    targets: [broken-500, broken-reset]"
    echo "privacy:"
    echo "  action: route_local"
    echo "  local_model: local-small"
} >"$tmp/tandem.yaml"
serve_start "$tmp/serve.log" --config "$tmp/tandem.yaml"
node "$NODE_DIR/gateway.mjs" "$BASE" "$tmp/record.jsonl" "$FAKE"
# SIGHUP: a new model appears, the running server keeps serving.
upstream gpt-two openai "$FAKE/v1" gpt-test | sed -n '1,$p' >"$tmp/extra.yaml"
python3 - "$tmp/tandem.yaml" "$tmp/extra.yaml" <<'PY'
import sys
cfg, extra = open(sys.argv[1]).read(), open(sys.argv[2]).read()
open(sys.argv[1], 'w').write(cfg.replace('routes:\n', extra + 'routes:\n', 1))
PY
kill -HUP "$SERVER_PID"
for _ in $(seq 1 50); do grep -q 'reloaded' "$tmp/serve.log" && break; sleep 0.1; done
curl -sf "$BASE/v1/models" | grep -q '"gpt-two"'
curl -sf "$BASE/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-two","messages":[{"role":"user","content":"after reload"}]}' | grep -q 'You said: after reload'
# A broken file keeps the running configuration.
echo "models: [" >>"$tmp/tandem.yaml"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 50); do grep -q 'reload failed' "$tmp/serve.log" && break; sleep 0.1; done
grep -q 'reload failed' "$tmp/serve.log"
curl -sf "$BASE/v1/models" | grep -q '"gpt-two"'
# /metrics: accepted by Prometheus' own parser, with what this run did in it.
curl -sf "$BASE/metrics" >"$tmp/metrics.txt"
promtool check metrics <"$tmp/metrics.txt"
grep -q 'tandem_requests_total{model="claude",target="claude",outcome="ok"}' "$tmp/metrics.txt"
grep -q 'tandem_requests_total{model="fallback-500",target="claude",outcome="ok"}' "$tmp/metrics.txt"
grep -q 'tandem_privacy_actions_total{action="block"}' "$tmp/metrics.txt"
grep -q 'tandem_upstream_up{model="broken-500"} 0' "$tmp/metrics.txt" || grep -q 'tandem_upstream_up{target="broken-500"} 0' "$tmp/metrics.txt"
grep -q 'tandem_slots{model="local-small"} 2' "$tmp/metrics.txt"
# Secrets never appear in the server's output.
! grep -q 'fake-key\|wrong-key-value' "$tmp/serve.log"
serve_stop
