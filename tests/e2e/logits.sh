#!/usr/bin/env bash
# tandem logits writes the golden file format and matches the golden output; bad input fails
# cleanly with a message.
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n_gen=$(/usr/bin/python3 -c "
import struct; b=open('$S/fixtures/golden/llama-F32.seed0.bin','rb').read()
p,v=struct.unpack_from('<ii',b,0); print(struct.unpack_from('<i',b,8+4*p*v)[0])")
for model in llama-F32 llama-Q8_0; do
    "$T" logits -m "$S/fixtures/models/$model.gguf" --tokens "$S/fixtures/golden/prompt-0.txt" \
        --out "$tmp/$model.bin" --greedy "$n_gen" -t 2
    cls=quant; [ "$model" = llama-F32 ] && cls=float
    /usr/bin/python3 tests/e2e/compare_logits.py "$tmp/$model.bin" "$S/fixtures/golden/$model.seed0.bin" $cls --gen
done
# F32 weights: the whole greedy continuation is the golden one.
cmp <(tail -c $((4 * n_gen)) "$tmp/llama-F32.bin") <(tail -c $((4 * n_gen)) "$S/fixtures/golden/llama-F32.seed0.bin")

# Errors: out-of-vocabulary id, junk in the token file, missing model, bad option.
echo "1 2 99999" > "$tmp/bad.txt"
if "$T" logits -m "$S/fixtures/models/llama-F32.gguf" --tokens "$tmp/bad.txt" --out "$tmp/x" 2> "$tmp/err"; then exit 1; fi
grep -q "outside the vocabulary" "$tmp/err"
echo "1 two 3" > "$tmp/bad.txt"
if "$T" logits -m "$S/fixtures/models/llama-F32.gguf" --tokens "$tmp/bad.txt" --out "$tmp/x" 2> "$tmp/err"; then exit 1; fi
grep -q "not a token id" "$tmp/err"
if "$T" logits -m "$tmp/none.gguf" --tokens "$S/fixtures/golden/prompt-0.txt" --out "$tmp/x" 2> "$tmp/err"; then exit 1; fi
[ "$(wc -l < "$tmp/err")" -eq 1 ]
set +e; "$T" logits --bogus 2> /dev/null; rc=$?; set -e
[ "$rc" -eq 2 ]
