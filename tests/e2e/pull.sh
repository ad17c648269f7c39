#!/usr/bin/env bash
# End-to-end: `tandem pull` against a loopback server (tests/e2e/range_server.py): checksums,
# resume after an interrupted transfer and after Ctrl-C, hf:// shorthand and token scoping,
# HTTP errors, non-GGUF content; then `tandem models` (text and JSON).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
[ -f "$S/models/stories260K.gguf" ] || S=/work/shared
model=$S/models/stories260K.gguf
tmp=$(mktemp -d)
srv_pid=""
pull_pid=""
cleanup() {
    [ -n "$pull_pid" ] && kill "$pull_pid" 2>/dev/null || true
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/err" ] && sed 's/^/  stderr: /' "$tmp/err" >&2; exit 1; }

mkdir "$tmp/www"
cp "$model" "$tmp/www/stories260K.gguf"
mkdir "$tmp/www/sub" && cp "$model" "$tmp/www/sub/stories260K.gguf"
head -c 3000 /dev/urandom > "$tmp/www/noise.gguf"
printf '<!DOCTYPE html><html><body>login required</body></html>\n' > "$tmp/www/page.gguf"
# GGUF magic, then garbage: passes the first check, fails the GGUF reader.
{ printf 'GGUF'; head -c 2000 /dev/zero | tr '\0' '\377'; } > "$tmp/www/broken.gguf"
sha=$(sha256sum "$model" | cut -c1-64)
wrong=$(printf '%064d' 0)

/usr/bin/python3 tests/e2e/range_server.py --dir "$tmp/www" --log "$tmp/log" > "$tmp/port" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(head -1 "$tmp/port")
[ -n "$port" ] || fail "server did not start"
base=http://127.0.0.1:$port
export TANDEM_HOME=$tmp/home
models=$TANDEM_HOME/models
unset HF_TOKEN TANDEM_HF_ENDPOINT

# Empty cache: a friendly hint, and an empty JSON array.
"$T" models > "$tmp/out" || fail "models on an empty cache"
grep -q "tandem pull" "$tmp/out" || fail "empty-cache hint"
[ "$("$T" models --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] ||
    fail "empty JSON"

# 1. Full pull with the right checksum: identical file, sidecar, private directory.
"$T" pull "$base/files/stories260K.gguf" --sha256 "$sha" > "$tmp/out" 2> "$tmp/err" ||
    fail "pull with correct sha256"
cmp "$model" "$models/stories260K.gguf" || fail "pulled file differs"
grep -q "$sha  stories260K.gguf" "$models/stories260K.gguf.sha256" || fail "sha256 sidecar"
(cd "$models" && sha256sum -c --quiet stories260K.gguf.sha256) || fail "sidecar not sha256sum -c format"
[ "$(stat -c %a "$TANDEM_HOME")" = 700 ] || fail "cache dir mode"
[ ! -e "$models/stories260K.gguf.part" ] || fail ".part left behind"
grep -q "verified" "$tmp/out" || fail "verified line"
# Pulled again: already present, no request.
n=$(wc -l < "$tmp/log")
"$T" pull "$base/files/stories260K.gguf" --sha256 "$sha" > "$tmp/out" 2> "$tmp/err" ||
    fail "second pull"
grep -q "already present" "$tmp/out" || fail "already present"
[ "$(wc -l < "$tmp/log")" = "$n" ] || fail "second pull downloaded again"
# Already present, but with a different pinned checksum: an error, the file stays.
set +e
"$T" pull "$base/files/stories260K.gguf" --sha256 "$wrong" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "different checksum" "$tmp/err" || fail "existing file, other checksum"
cmp "$model" "$models/stories260K.gguf" || fail "existing file touched"

# 2. Wrong checksum: exit 1, expected vs actual shown, nothing kept.
set +e
"$T" pull "$base/files/stories260K.gguf" --name wrong.gguf --sha256 "$wrong" \
    > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ $rc = 1 ] || fail "wrong sha256 exit $rc"
grep -q "expected sha256 $wrong" "$tmp/err" && grep -q "actual   sha256 $sha" "$tmp/err" ||
    fail "mismatch message"
[ ! -e "$models/wrong.gguf" ] && [ ! -e "$models/wrong.gguf.part" ] || fail "wrong sha256 kept a file"

# 3. Interrupted transfer (server drops the connection after 400000 bytes), then resume.
set +e
"$T" pull "$base/abort/400000/stories260K.gguf" --name resumed.gguf > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ $rc = 1 ] || fail "interrupted transfer exit $rc"
[ "$(stat -c %s "$models/resumed.gguf.part")" = 400000 ] || fail ".part size after interruption"
grep -q "to resume" "$tmp/err" || fail "resume hint"
"$T" models > "$tmp/out"
grep -Eq '^resumed\.gguf .*partial \(33%\)' "$tmp/out" || fail "models shows the partial download"
"$T" pull "$base/abort/400000/stories260K.gguf" --name resumed.gguf --sha256 "$sha" \
    > "$tmp/out" 2> "$tmp/err" || fail "resume"
grep -Eq "GET /abort/400000/stories260K.gguf range=bytes=400000- if-range=\"[0-9a-f-]+\" .*status=206" "$tmp/log" ||
    fail "no Range request in the server log"
cmp "$model" "$models/resumed.gguf" || fail "resumed file differs"
[ ! -e "$models/resumed.gguf.part" ] && [ ! -e "$models/resumed.gguf.part.info" ] ||
    fail "partial files left after resume"

# 3a. The file changed on the server between the interruption and the resume: the resume
# sends If-Range with the old ETag, gets the new file whole, and keeps only that.
cp "$model" "$tmp/www/changing.gguf"
set +e
"$T" pull "$base/abort/300000/changing.gguf" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[ $rc = 1 ] && [ -e "$models/changing.gguf.part" ] || fail "interrupted transfer of changing.gguf"
newer=$S/fixtures/models/falcon-Q8_0.gguf
cp "$newer" "$tmp/www/changing.gguf.new" && mv "$tmp/www/changing.gguf.new" "$tmp/www/changing.gguf"
"$T" pull "$base/abort/300000/changing.gguf" > /dev/null 2> "$tmp/err" || fail "resume of a changed file"
grep -Eq 'GET /abort/300000/changing.gguf range=bytes=300000- if-range="[0-9a-f]+-[0-9a-f]+" .*status=200' \
    "$tmp/log" || fail "resume did not send If-Range"
cmp "$newer" "$models/changing.gguf" || fail "changed file: result is not the new version"

# 3b. A server that ignores Range: the .part is restarted from zero, the result still right.
head -c 1000 "$model" > "$models/norange.gguf.part"
"$T" pull "$base/norange/stories260K.gguf" --name norange.gguf --sha256 "$sha" \
    > /dev/null 2> "$tmp/err" || fail "pull from a server without Range support"
grep -q "starting over" "$tmp/err" || fail "restart notice"
cmp "$model" "$models/norange.gguf" || fail "restarted file differs"

# 3c. A server that answers a different range than asked: restart, still right.
head -c 5000 "$model" > "$models/badrange.gguf.part"
"$T" pull "$base/badrange/stories260K.gguf" --name badrange.gguf --sha256 "$sha" \
    > /dev/null 2> "$tmp/err" || fail "pull from a server answering the wrong range"
cmp "$model" "$models/badrange.gguf" || fail "badrange file differs"

# 3d. Ctrl-C during a slow transfer keeps the .part; the same command resumes it.
"$T" pull "$base/slow/stories260K.gguf" --name sigint.gguf > /dev/null 2> "$tmp/err" &
pull_pid=$!
for _ in $(seq 100); do
    [ "$(stat -c %s "$models/sigint.gguf.part" 2>/dev/null || echo 0)" -gt 50000 ] && break
    sleep 0.05
done
kill -INT "$pull_pid"
set +e
wait "$pull_pid"; rc=$?
set -e
pull_pid=""
[ $rc = 1 ] || fail "SIGINT exit $rc"
grep -q "interrupted" "$tmp/err" && grep -q "to resume" "$tmp/err" || fail "SIGINT message"
part=$(stat -c %s "$models/sigint.gguf.part")
[ "$part" -gt 0 ] && [ "$part" -lt "$(stat -c %s "$model")" ] || fail "SIGINT .part size $part"
"$T" pull "$base/files/stories260K.gguf" --name sigint.gguf --sha256 "$sha" --quiet \
    > "$tmp/out" 2> "$tmp/err" || fail "resume after SIGINT"
[ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] || fail "--quiet printed something"
grep -q "range=bytes=$part- " "$tmp/log" || fail "resume after SIGINT did not ask for a range"
cmp "$model" "$models/sigint.gguf" || fail "file resumed after SIGINT differs"

# 4. hf:// through TANDEM_HF_ENDPOINT, with a revision; HF_TOKEN goes to the endpoint only.
TANDEM_HF_ENDPOINT=$base HF_TOKEN=secret-test-token \
    "$T" pull "hf://someone/tiny-models@v1.0/sub/stories260K.gguf" --name hf.gguf --sha256 "$sha" \
    > /dev/null 2> "$tmp/err" || fail "hf:// pull"
grep -q "GET /someone/tiny-models/resolve/v1.0/sub/stories260K.gguf .*auth=Bearer secret-test-token" \
    "$tmp/log" || fail "hf:// URL or token"
cmp "$model" "$models/hf.gguf" || fail "hf:// file differs"
TANDEM_HF_ENDPOINT=$base/ "$T" pull "hf://someone/tiny-models/sub/stories260K.gguf" --name hfmain.gguf --quiet \
    > /dev/null 2> "$tmp/err" || fail "hf:// default revision"
grep -q "GET /someone/tiny-models/resolve/main/sub/stories260K.gguf " "$tmp/log" ||
    fail "hf:// default revision is main"
# The Hub redirects downloads to another host: the token must not follow.
TANDEM_HF_ENDPOINT=$base HF_TOKEN=secret-test-token \
    "$T" pull "hf://cdn/tiny-models/stories260K.gguf" --name cdn.gguf --sha256 "$sha" --quiet \
    2> "$tmp/err" || fail "hf:// pull through a cross-host redirect"
grep -q "GET /cdn/tiny-models/resolve/main/stories260K.gguf .*auth=Bearer secret-test-token" \
    "$tmp/log" || fail "token not sent to the hf endpoint"
[ "$(grep -c "GET /files/stories260K.gguf .*secret" "$tmp/log")" = 0 ] ||
    fail "token sent to the redirect target"
HF_TOKEN=secret-test-token "$T" pull "$base/redirect/files/stories260K.gguf" --name plain.gguf \
    --quiet 2> "$tmp/err" || fail "pull through a redirect"
grep "GET /redirect/files/stories260K.gguf \|GET /files/stories260K.gguf " "$tmp/log" |
    grep -q "secret" && fail "token sent to a non-hf URL"
cmp "$model" "$models/plain.gguf" || fail "redirected file differs"

# 5. Errors: 404, non-GGUF content, GGUF magic but a corrupt file, bad arguments.
expect_fail() { # expected-exit pattern args...
    local want=$1 pat=$2; shift 2
    set +e; "$T" pull "$@" > /dev/null 2> "$tmp/err"; local rc=$?; set -e
    [ "$rc" = "$want" ] || fail "pull $* exited $rc, expected $want"
    grep -q -- "$pat" "$tmp/err" || fail "pull $*: no '$pat' in the error"
}
expect_fail 1 "HTTP 404" "$base/files/missing.gguf"
grep -q "missing.gguf: HTTP 404" "$tmp/err" || fail "404 error does not name the URL"
[ ! -e "$models/missing.gguf.part" ] || fail "404 left a .part"
expect_fail 1 "not send a GGUF file" "$base/files/page.gguf"
expect_fail 1 "not send a GGUF file" "$base/files/noise.gguf"
expect_fail 1 "not a valid GGUF file" "$base/files/broken.gguf"
for f in page noise broken; do
    [ ! -e "$models/$f.gguf" ] && [ ! -e "$models/$f.gguf.part" ] || fail "$f: a file was kept"
done
expect_fail 2 "not 64 hexadecimal" "$base/files/stories260K.gguf" --sha256 abc
expect_fail 2 "--name" "$base/files/stories260K.gguf" --name ../evil.gguf
expect_fail 2 "give one with --name" "$base/files/"
expect_fail 2 "hf://OWNER/REPO" "ftp://example.com/x.gguf"
expect_fail 2 "hf://OWNER/REPO" "hf://only-owner/x.gguf"
expect_fail 2 "hf://OWNER/REPO" "hf://o/r/../x.gguf"
expect_fail 1 "Could not connect\|Connection refused\|connect" "http://127.0.0.1:1/x.gguf"

# 6. tandem models: the pulled models with architecture, type, parameters; JSON parses.
"$T" models > "$tmp/out" || fail "models"
grep -Eq '^stories260K\.gguf +1\.1 MiB +llama +F32 +293K +/' "$tmp/out" || fail "models row"
grep -q "$models/hf.gguf" "$tmp/out" || fail "models lists hf.gguf"
head -c 2000 "$model" > "$models/cut.gguf"
"$T" models --json > "$tmp/out.json" || fail "models --json"
python3 - "$tmp/out.json" "$models" "$sha" <<'PY' || fail "models JSON content"
import json, sys
d = json.load(open(sys.argv[1]))
by = {e["name"]: e for e in d}
e = by["stories260K.gguf"]
assert e["status"] == "complete" and e["arch"] == "llama" and e["type"] == "F32", e
assert e["size"] == 1185376 and e["n_params"] == 292800 and e["sha256"] == sys.argv[3], e
assert e["path"] == sys.argv[2] + "/stories260K.gguf", e
assert by["cut.gguf"]["status"] == "invalid" and "error" in by["cut.gguf"], by["cut.gguf"]
assert [x["name"] for x in d] == sorted(x["name"] for x in d)
assert not any(x["status"] == "partial" for x in d), d
PY
"$T" models > "$tmp/out"
grep -Eq '^cut\.gguf .* invalid ' "$tmp/out" || fail "truncated file not marked invalid"
set +e; "$T" models --bogus > /dev/null 2>&1; rc=$?; set -e
[ $rc = 2 ] || fail "models with a bad option exited $rc"
echo "pull: all cases passed"
