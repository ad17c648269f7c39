#!/usr/bin/env bash
# Governance end to end: API keys (401, allow-lists 403, revocation at once), rate limits (429 +
# Retry-After), a budget race that never overspends by more than one reservation, usage
# (/v1/usage, tandem usage), /metrics through promtool, and the audit log: kill -9 under load
# loses nothing committed and `tandem audit verify` passes; editing one row makes it fail and
# name the row.
set -euo pipefail
. tests/e2e/server_lib.bash
tmp=$(mktemp -d)
FAKE_PID=
trap '[ -n "${SERVER_PID:-}" ] && kill -9 $SERVER_PID 2>/dev/null; [ -n "$FAKE_PID" ] && kill $FAKE_PID 2>/dev/null; rm -rf "$tmp"' EXIT
python3 tests/e2e/fake_upstream.py --port 0 --key fake-key >"$tmp/fake.out" 2>"$tmp/fake.err" &
FAKE_PID=$!
for _ in $(seq 1 50); do grep -q '^PORT' "$tmp/fake.out" 2>/dev/null && break; sleep 0.1; done
FAKE=http://127.0.0.1:$(awk '/^PORT/ {print $2; exit}' "$tmp/fake.out")
DB=$TANDEM_HOME/tandem.db
"$TANDEM" audit keygen "$tmp/audit.key" >/dev/null
export ADMIN_KEY=admin-secret-$$ FAKE_KEY=fake-key
cat >"$tmp/tandem.yaml" <<YAML
listen: 127.0.0.1:0
state: $DB
admin_key: env:ADMIN_KEY
audit: { signing_key: $tmp/audit.key }
local_cost: { watts: 100, usd_per_kwh: 0.3, reference: { input_per_mtok: 2.5, output_per_mtok: 10 } }
teams:
  - name: lab
    rpm: 2
models:
  - name: local-small
    local: { path: $MODEL, slots: 2, ctx_size: 256, threads: 2 }
  - name: gpt
    provider: openai
    base_url: $FAKE/v1
    api_key: env:FAKE_KEY
    price: { input_per_mtok: 1000, output_per_mtok: 1000 }
YAML
key() { "$TANDEM" keys create --db "$DB" "$@" | awk '/^tk-/ {print $1} /secret/ && $NF ~ /^tk-/ {print $NF}' | head -1; }
ALICE=$(key --name alice --budget 0.1)
BOB=$(key --name bob --models local-small)
CAROL=$(key --name carol --rpm 3)
DAVE=$(key --name dave)
ERIN=$(key --name erin --team lab)
FRANK=$(key --name frank --team lab)
for k in "$ALICE" "$BOB" "$CAROL" "$DAVE"; do [[ $k == tk-* ]] || { echo "no key from tandem keys create: '$k'" >&2; exit 1; }; done
serve_start "$tmp/serve.log" --config "$tmp/tandem.yaml"
req() {  # KEY MODEL -> HTTP status (body in $tmp/body, headers in $tmp/hdr)
    curl -s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$BASE/v1/chat/completions" \
        -H 'Content-Type: application/json' ${1:+-H "Authorization: Bearer $1"} \
        -d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}],\"max_tokens\":10}"
}
expect() { [ "$1" = "$2" ] || { echo "$3: got HTTP $1, want $2: $(cat "$tmp/body")" >&2; exit 1; }; }
expect "$(req '' gpt)" 401 "no key"
expect "$(req tk-wrongwrongwrongwrongwrongwrongwrongwrongwrong gpt)" 401 "wrong key"
expect "$(req "$ALICE" gpt)" 200 "alice"
expect "$(req "$BOB" gpt)" 403 "bob outside his allow-list"
expect "$(req "$BOB" local-small)" 200 "bob on his model"
# x-api-key works as well as Bearer.
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/messages" -H "x-api-key: $BOB" -H 'Content-Type: application/json' \
    -d '{"model":"local-small","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}')
expect "$code" 200 "x-api-key"
# Rate limit: 3 requests per minute.
for i in 1 2 3; do expect "$(req "$CAROL" local-small)" 200 "carol $i"; done
expect "$(req "$CAROL" local-small)" 429 "carol over her rpm"
grep -qi '^retry-after: [1-9]' "$tmp/hdr"
# A team's limit is shared by its keys.
expect "$(req "$ERIN" local-small)" 200 "erin"
expect "$(req "$FRANK" local-small)" 200 "frank"
expect "$(req "$ERIN" local-small)" 429 "team lab over its rpm"
# Revocation takes effect at once, while the server runs.
expect "$(req "$DAVE" gpt)" 200 "dave"
"$TANDEM" keys revoke dave --db "$DB" >/dev/null
expect "$(req "$DAVE" gpt)" 401 "dave revoked"
# Budget race: 30 concurrent requests on a 0.10 USD budget; each reserves its worst case.
pids=()
for i in $(seq 1 30); do req "$ALICE" gpt >"$tmp/race.$i" & pids+=($!); done
wait "${pids[@]}"
ok=$(cat "$tmp"/race.* | grep -c 200 || true); over=$(cat "$tmp"/race.* | grep -c 429 || true)
[ "$over" -gt 0 ] && [ "$ok" -gt 0 ] || { echo "budget race: $ok ok, $over refused" >&2; exit 1; }
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
kid = db.execute("select id from api_keys where name='alice'").fetchone()[0]
spent = db.execute("select coalesce(sum(cost_usd),0) from usage where key_id=?", (kid,)).fetchone()[0]
# One request reserves at most (prompt estimate + max_tokens) x 1000 USD/Mtok, well under 0.05.
assert spent <= 0.1 + 0.05, spent
assert spent > 0.05, spent
PY
# Usage: admin only.
code=$(curl -s -o "$tmp/usage.json" -w '%{http_code}' "$BASE/v1/usage?by=key")
expect "$code" 401 "usage without the admin key"
code=$(curl -s -o "$tmp/usage.json" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" "$BASE/v1/usage?by=key&since=3600")
expect "$code" 200 "usage with the admin key"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(r["label"]=="alice" and r["cost_usd"]>0 for r in d["data"]), d' "$tmp/usage.json"
"$TANDEM" usage --db "$DB" --by model --since 1h | grep -q gpt
# Metrics parse with Prometheus' own parser.
curl -sf "$BASE/metrics" | promtool check metrics
# kill -9 in the middle of a load: nothing committed is lost, the log still verifies.
pids=()
for i in $(seq 1 12); do req "$BOB" local-small >/dev/null & pids+=($!); done
sleep 0.3
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
wait "${pids[@]}" || true
"$TANDEM" audit verify --db "$DB" --pubkey "$tmp/audit.key.pub" >"$tmp/verify.txt" || { cat "$tmp/verify.txt" >&2; exit 1; }
grep -q 'audit log OK' "$tmp/verify.txt"
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
n = db.execute("select count(*) from audit_log").fetchone()[0]
assert n >= 40, n
PY
"$TANDEM" audit proof 3 --db "$DB" | python3 -c 'import json,sys; p=json.load(sys.stdin); assert p["leaf_index"]==3, p'
# Editing one row is caught, and named.
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rec = bytearray(db.execute("select record from audit_log where idx=7").fetchone()[0])
rec[-1] ^= 1
db.execute("update audit_log set record=? where idx=7", (bytes(rec),))
db.commit()
PY
if "$TANDEM" audit verify --db "$DB" --pubkey "$tmp/audit.key.pub" >"$tmp/verify.txt"; then
    echo "tampering not detected" >&2; exit 1
fi
grep -q 'TAMPERED at entry 7' "$tmp/verify.txt" || { cat "$tmp/verify.txt" >&2; exit 1; }
