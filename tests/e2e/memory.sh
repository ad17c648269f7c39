#!/usr/bin/env bash
# Weights are mapped, not copied: on models of 336 MB (F32) and 89 MB (Q8_0), the process's anonymous resident memory
# stays under KV cache + 64 MiB while it evaluates a prompt and generates.
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$S/tools/ggufgen.py" llama "$tmp/m.gguf" --vocab "$S/fixtures/vocab/ggml-vocab-llama-spm.gguf" \
    --cfg '{"n_embd":1024,"n_layer":2,"n_head":16,"n_head_kv":4,"n_ff":2816,"ctx":1024}' > /dev/null
"$T" quantize -q "$tmp/m.gguf" "$tmp/q.gguf" Q8_0
for f in m q; do
    "$T" bench -m "$tmp/$f.gguf" -p 256 -n 16 -r 1 -t 2 --json > "$tmp/$f.json"
    /usr/bin/python3 - "$tmp/$f.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mib = 1 << 20
print('%s: weights %.0f MiB, file-backed resident %.0f MiB, anonymous %.1f MiB, KV %.1f MiB'
      % (r['model'], r['size_bytes'] / mib, r['rss_file_bytes'] / mib, r['rss_anon_bytes'] / mib, r['kv_bytes'] / mib))
assert r['size_bytes'] > 80 * mib  # a copy would not fit in the 64 MiB margin
assert r['rss_anon_bytes'] <= r['kv_bytes'] + 64 * mib, 'anonymous memory beyond KV + 64 MiB'
assert r['rss_file_bytes'] >= r['size_bytes'] * 0.5, 'weights are not served from the mapping'
PY
done
