#!/usr/bin/env bash
# Gateway overhead and saturation throughput: wrk against a static OpenAI-style upstream
# (nginx answering a fixed chat.completion) directly, then through `tandem serve --config`.
# Needs: apt-get install wrk nginx-light. usage: bench/gateway_overhead.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
TANDEM=${TANDEM:-build/tandem}
tmp=$(mktemp -d)
trap 'kill $(cat "$tmp/nginx.pid" 2>/dev/null) 2>/dev/null; [ -n "${GW:-}" ] && kill $GW 2>/dev/null; rm -rf "$tmp"' EXIT
UP=18901 GWP=18902
mkdir -p "$tmp/logs"
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp;
    server {
        listen 127.0.0.1:$UP;
        location /v1/chat/completions {
            default_type application/json;
            return 200 '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}';
        }
    }
}
NGINX
nginx -c "$tmp/nginx.conf" -p "$tmp"
cat >"$tmp/tandem.yaml" <<YAML
listen: 127.0.0.1:$GWP
models:
  - name: upstream
    provider: openai-compatible
    base_url: http://127.0.0.1:$UP/v1
    model: m
privacy:
  action: allow
YAML
"$TANDEM" serve --config "$tmp/tandem.yaml" >"$tmp/gw.log" 2>&1 &
GW=$!
sleep 1
cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"upstream","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":32}'
LUA
run() {  # NAME URL CONNECTIONS THREADS
    local out
    out=$(wrk -t"$4" -c"$3" -d"${SECS}s" --latency -s "$tmp/post.lua" "$2/v1/chat/completions")
    local p50 p99 rps
    p50=$(awk '/ 50%/ {print $2}' <<<"$out"); p99=$(awk '/ 99%/ {print $2}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    printf '%-28s c=%-3s p50 %-9s p99 %-9s %s req/s\n' "$1" "$3" "$p50" "$p99" "$rps"
}
echo "machine: $(nproc) cores, $(date -u +%F); wrk ${SECS}s per run"
run "direct (nginx)" "http://127.0.0.1:$UP" 1 1
run "through tandem" "http://127.0.0.1:$GWP" 1 1
run "direct (nginx)" "http://127.0.0.1:$UP" 64 2
run "through tandem" "http://127.0.0.1:$GWP" 64 2
