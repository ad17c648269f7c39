#!/usr/bin/env bash
# End-to-end: `tandem keys` (create, list, verify, revoke) and `tandem usage` on a real database,
# with usage rows written as the gateway's ledger would hold them.
set -euo pipefail
TANDEM=${TANDEM:-build/tandem}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export TANDEM_HOME=$tmp/home

# Nothing yet: list and usage work without creating a database.
"$TANDEM" keys list | grep -q "no keys yet" || fail "empty list"
"$TANDEM" usage | grep -q "no requests recorded" || fail "empty usage"
[ ! -e "$TANDEM_HOME/tandem.db" ] || fail "read-only commands created a database"

# Create: the secret is printed once, with a warning; the home directory is created private.
"$TANDEM" keys create --name alice --team research --models 'small,gpt-*' --budget 10 \
    --rpm 60 --tpm 5000 >"$tmp/alice.txt" 2>"$tmp/alice.err" || fail "create exited $?"
grep -q "cannot be shown again" "$tmp/alice.err" || fail "no warning"
secret=$(sed -n 's/^secret: //p' "$tmp/alice.txt")
alice=$(sed -n 's/^id: *//p' "$tmp/alice.txt")
[[ $secret =~ ^tk-[A-Za-z0-9_-]{43}$ ]] || fail "secret format: $secret"
[[ $alice =~ ^key_[0-9a-f]{16}$ ]] || fail "id format: $alice"
[ "$(stat -c %a "$TANDEM_HOME/tandem.db")" = 600 ] || fail "database mode"
"$TANDEM" keys create --name bob --admin --json >"$tmp/bob.json" 2>/dev/null
bob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/bob.json")
bob_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$tmp/bob.json")

# The secret is nowhere in the database or in listings; its prefix is.
if grep -aq -- "$secret" "$TANDEM_HOME"/tandem.db*; then fail "secret stored in clear"; fi
"$TANDEM" keys list >"$tmp/list.txt"
grep -q "alice" "$tmp/list.txt" && grep -q "${secret:0:8}" "$tmp/list.txt" || fail "list row"
if grep -q -- "$secret" "$tmp/list.txt"; then fail "list shows the secret"; fi
"$TANDEM" keys list --json >"$tmp/list.json"
python3 - "$tmp/list.json" "$alice" "$secret" <<'PY' || fail "list JSON"
import json, sys
keys = json.load(open(sys.argv[1]))
assert len(keys) == 2, keys
a = [k for k in keys if k["id"] == sys.argv[2]][0]
assert a["name"] == "alice" and a["team"] == "research" and a["models"] == ["small", "gpt-*"]
assert a["budget_usd_month"] == 10 and a["rpm"] == 60 and a["tpm"] == 5000 and not a["admin"]
assert a["prefix"] == sys.argv[3][:8] and a["status"] == "active"
assert sys.argv[3] not in open(sys.argv[1]).read()
PY

# Verify reads the secret from stdin.
echo "$secret" | "$TANDEM" keys verify | grep -q "^valid $alice" || fail "verify alice"
if echo "${secret%?}x" | "$TANDEM" keys verify >/dev/null; then fail "wrong key verified"; fi
echo "$bob_secret" | "$TANDEM" keys verify | grep -q "^valid $bob" || fail "verify bob"

# Revoke by name, then by id; revoked keys fail at once.
"$TANDEM" keys revoke alice | grep -q "revoked $alice" || fail "revoke by name"
if echo "$secret" | "$TANDEM" keys verify >"$tmp/v.txt"; then fail "revoked key verified"; fi
grep -q "^revoked" "$tmp/v.txt" || fail "revoked status"
if "$TANDEM" keys revoke alice 2>"$tmp/r.err"; then fail "revoked twice"; fi
grep -q "already revoked" "$tmp/r.err" || fail "already revoked message"
"$TANDEM" keys revoke "$bob" >/dev/null || fail "revoke by id"
if "$TANDEM" keys revoke nobody 2>/dev/null; then fail "revoked an unknown key"; fi
"$TANDEM" keys list --json | python3 -c '
import json, sys
assert all(k["status"] == "revoked" and k["revoked_ms"] > 0 for k in json.load(sys.stdin))' ||
    fail "statuses after revoke"

# Bad usage.
if "$TANDEM" keys create 2>/dev/null; then fail "create without --name"; fi
if "$TANDEM" keys create --name x --budget -3 2>/dev/null; then fail "negative budget"; fi
if "$TANDEM" keys frobnicate 2>/dev/null; then fail "unknown subcommand"; fi
if "$TANDEM" usage --since yesterday 2>/dev/null; then fail "bad --since"; fi
if "$TANDEM" usage --by colour 2>/dev/null; then fail "bad --by"; fi

# Usage: rows as the gateway writes them (two local, two cloud, one from last year).
python3 - "$TANDEM_HOME/tandem.db" "$alice" "$bob" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
rows = [
    (now - 1000, sys.argv[2], "research", "small", "local:qwen2", "local", 100, 50, 0.0, 0.002, 0.03),
    (now - 2000, sys.argv[2], "research", "small", "local:qwen2", "local", 200, 20, 0.0, 0.001, 0.02),
    (now - 3000, sys.argv[2], "research", "gpt-4o", "openai:gpt-4o", "cloud", 10, 10, 0.5, 0.0, 0.5),
    (now - 4000, sys.argv[3], "", "gpt-4o", "openai:gpt-4o", "cloud", 10, 10, 0.25, 0.0, 0.25),
    (now - 400 * 86400000, sys.argv[3], "", "gpt-4o", "openai:gpt-4o", "cloud", 1, 1, 99.0, 0.0, 99.0),
]
db.executemany("INSERT INTO usage(ts_ms, key_id, team, model, target, target_kind, prompt_tokens,"
               " completion_tokens, cost_usd, local_cost_usd, cloud_equiv_usd, outcome)"
               " VALUES (?,?,?,?,?,?,?,?,?,?,?, 'ok')", rows)
db.commit()
PY
"$TANDEM" usage --since 24h --by model >"$tmp/u.txt"
grep -Eq '^gpt-4o +2 +20 +20 +0\.7500 +0\.0000 +0\.0000$' "$tmp/u.txt" || fail "model row"
grep -Eq '^small +2 +300 +70 +0\.0000 +0\.0030 +0\.0470$' "$tmp/u.txt" || fail "local row"
grep -Eq '^TOTAL +4 +320 +90 +0\.7500 +0\.0030 +0\.0470$' "$tmp/u.txt" || fail "total row"
"$TANDEM" usage --by key --since 7d | grep -q "^alice ($alice)" || fail "key label"
"$TANDEM" usage --by team --since all --json >"$tmp/u.json"
python3 - "$tmp/u.json" <<'PY' || fail "usage JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["by"] == "team" and d["since_ms"] == 0
g = {x["group"]: x for x in d["groups"]}
assert set(g) == {"research", ""}, g
assert g[""]["requests"] == 2 and abs(g[""]["cost_usd"] - 99.25) < 1e-9
assert g["research"]["requests"] == 3 and abs(g["research"]["saved_usd"] - 0.047) < 1e-9
assert d["total"]["requests"] == 5
assert d["groups"][0]["group"] == ""  # most expensive first
PY
today=$(date -u +%Y-%m-%d)
"$TANDEM" usage --since "$today" --by target | grep -q "^local:qwen2" || fail "--since date"
"$TANDEM" usage --db "sqlite:$TANDEM_HOME/tandem.db" --since all | grep -Eq '^TOTAL +5 ' ||
    fail "--db URL"
echo ok
