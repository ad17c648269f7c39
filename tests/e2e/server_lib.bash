# Helpers for the server end-to-end scripts (sourced): start `tandem serve` on a free port.
SHARED=${TANDEM_SHARED:-../shared}
MODEL=$SHARED/models/stories260K.gguf
NODE_DIR=tests/e2e/node
# The state store (keys, usage, audit) of each test run lives in its own directory.
export TANDEM_HOME=${TANDEM_HOME_TEST:-$(mktemp -d)}
if [ ! -d "$NODE_DIR/node_modules/openai" ]; then
    echo "the openai npm package is missing: run 'make deps'" >&2
    exit 1
fi

# serve_start LOG ARGS... : starts the server in the background, sets SERVER_PID and BASE.
serve_start() {
    local log=$1; shift
    "$TANDEM" serve --port 0 "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if grep -q 'listening on' "$log"; then break; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$log" >&2; return 1; fi
        sleep 0.1
    done
    BASE=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1)
    [ -n "$BASE" ] || { cat "$log" >&2; return 1; }
}

# serve_stop: SIGTERM, then the server must exit 0 within its grace period.
serve_stop() {
    kill -TERM "$SERVER_PID"
    local rc=0
    for _ in $(seq 1 150); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then wait "$SERVER_PID"; rc=$?; SERVER_PID=; return $rc; fi
        sleep 0.1
    done
    echo "server did not stop after SIGTERM" >&2
    kill -9 "$SERVER_PID"
    return 1
}
