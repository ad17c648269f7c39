#!/usr/bin/env bash
# End-to-end: `tandem inspect` on fixture models (text and JSON), on crafted bad files, bad usage.
set -euo pipefail
TANDEM=${TANDEM:-build/tandem}
SHARED=${TANDEM_SHARED:-../shared}
model=$SHARED/fixtures/models/llama-F32.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Text: header, metadata, tensor table, totals.
"$TANDEM" inspect "$model" >"$tmp/out.txt" || fail "inspect exited $?"
grep -q "GGUF v3, 5784960 bytes, alignment 32" "$tmp/out.txt" || fail "header line"
grep -Eq '^  llama\.embedding_length +uint32 +256$' "$tmp/out.txt" || fail "metadata line"
grep -Eq '^  tokenizer\.ggml\.tokens +array +\[string × 512\] "<unk>", "<s>"' "$tmp/out.txt" ||
    fail "array summary"
grep -Eq '^  token_embd\.weight +F32 +256 × 512 +524288 +0$' "$tmp/out.txt" || fail "tensor row"
grep -Eq '^total: 21 tensors, [0-9]+ parameters' "$tmp/out.txt" || fail "totals"
[ "$(wc -l <"$tmp/out.txt")" -lt 80 ] || fail "text output too long"

# A 32000-token vocabulary stays short.
"$TANDEM" inspect "$SHARED/fixtures/vocab/ggml-vocab-llama-spm.gguf" >"$tmp/vocab.txt"
[ "$(wc -l <"$tmp/vocab.txt")" -lt 60 ] || fail "vocab output too long"
grep -q '\[string × 32000\]' "$tmp/vocab.txt" || fail "vocab array summary"

# JSON: one valid document with the promised fields.
"$TANDEM" inspect --json "$model" >"$tmp/out.json" || fail "inspect --json exited $?"
python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out.json" || fail "invalid JSON"
python3 - "$tmp/out.json" <<'PY' || fail "JSON content"
import json, math, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 3 and d["alignment"] == 32 and d["file_size"] == 5784960, d
m = d["metadata"]
assert m["general.architecture"] == "llama" and m["llama.embedding_length"] == 256
assert isinstance(m["tokenizer.ggml.tokens"], list) and len(m["tokenizer.ggml.tokens"]) == 512
t = {x["name"]: x for x in d["tensors"]}
assert len(d["tensors"]) == 21
assert t["token_embd.weight"]["shape"] == [256, 512] and t["token_embd.weight"]["type"] == "F32"
assert t["token_embd.weight"]["bytes"] == 256 * 512 * 4
assert d["n_params"] == sum(math.prod(x["shape"]) for x in d["tensors"])
PY
"$TANDEM" inspect --json "$SHARED/fixtures/vocab/ggml-vocab-llama-spm.gguf" >"$tmp/vocab.json"
python3 - "$tmp/vocab.json" <<'PY' || fail "long arrays in JSON"
import json, sys
d = json.load(open(sys.argv[1]))
tok = d["metadata"]["tokenizer.ggml.tokens"]
assert tok["type"] == "string" and tok["count"] == 32000 and len(tok["head"]) == 16, tok
assert d["tensors"] == [] and d["n_params"] == 0
PY

# Crafted bad files: exit 1 and exactly one line on stderr naming the file and the field.
check_bad() {
    local name=$1 needle=$2 rc=0
    "$TANDEM" inspect "$tmp/$name" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    [ "$rc" -eq 1 ] || fail "$name: exit $rc, expected 1"
    [ "$(wc -l <"$tmp/stderr")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$tmp/stderr")"
    grep -qF "$tmp/$name: " "$tmp/stderr" || fail "$name: message lacks the path"
    grep -qF -- "$needle" "$tmp/stderr" || fail "$name: message lacks '$needle': $(cat "$tmp/stderr")"
}
python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
hdr = lambda nt, nk, v=3: b"GGUF" + struct.pack("<IQQ", v, nt, nk)
s = lambda b: struct.pack("<Q", len(b)) + b
open(f"{d}/magic.gguf", "wb").write(b"GGML" + bytes(28))
open(f"{d}/count.gguf", "wb").write(hdr(2**64 - 1, 0) + bytes(1000))
open(f"{d}/align.gguf", "wb").write(hdr(0, 1) + s(b"general.alignment") + struct.pack("<II", 4, 48))
ti = s(b"w") + struct.pack("<IQQIQ", 2, 4, 0, 0, 0)
open(f"{d}/dim.gguf", "wb").write(hdr(1, 0) + ti + bytes(32))
PY
check_bad magic.gguf "not a GGUF file"
check_bad count.gguf "header: tensor count 18446744073709551615 exceeds what a 1024-byte file can hold"
check_bad align.gguf "kv[0] 'general.alignment': alignment 48 is not a power of two"
check_bad dim.gguf "tensor 'w' ne[1]: dimension is 0 (must be >= 1)"
head -c 100 "$model" >"$tmp/cut.gguf"
check_bad cut.gguf "cut.gguf"
check_bad missing.gguf "No such file"

# Usage errors exit 2 with a usage line.
rc=0; "$TANDEM" inspect 2>"$tmp/stderr" || rc=$?
[ "$rc" -eq 2 ] && grep -q "^usage: tandem inspect" "$tmp/stderr" || fail "no-argument usage"
rc=0; "$TANDEM" inspect --frobnicate "$model" 2>"$tmp/stderr" || rc=$?
[ "$rc" -eq 2 ] && grep -q "^usage: tandem inspect" "$tmp/stderr" || fail "unknown option"
rc=0; "$TANDEM" inspect "$model" "$model" 2>"$tmp/stderr" || rc=$?
[ "$rc" -eq 2 ] || fail "two files"
"$TANDEM" inspect --help | grep -q "^usage: tandem inspect" || fail "--help"
echo "inspect e2e ok"
