#!/usr/bin/env bash
# tandem quantize: from the F32 fixture, every type and mix is byte-identical to the reference
# engine's own quantization of the same weights (read back by an independent GGUF reader);
# the mixes pick the same type per tensor on a MoE model; errors are clean.
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; do
    "$T" quantize -q -t 2 "$S/fixtures/models/llama-F32.gguf" "$tmp/$t.gguf" "$t"
    /usr/bin/python3 tests/e2e/gguf_compare.py "$tmp/$t.gguf" "$S/fixtures/models/llama-$t.gguf" --min-identical 21
done
# The quantized file runs and matches the golden logits of the reference's file.
"$T" logits -m "$tmp/Q4_K_M.gguf" --tokens "$S/fixtures/golden/prompt-0.txt" --out "$tmp/l.bin" -t 2
/usr/bin/python3 tests/e2e/compare_logits.py "$tmp/l.bin" "$S/fixtures/golden/llama-Q4_K_M.seed0.bin" quant
# MoE: per-tensor types of the mix equal the reference's (the data differs: it quantized from F32).
"$T" quantize -q "$S/fixtures/models/mixtral-F16.gguf" "$tmp/mx.gguf" Q4_K_M
/usr/bin/python3 tests/e2e/gguf_compare.py "$tmp/mx.gguf" "$S/fixtures/models/mixtral-Q4_K_M.gguf"
# Float targets keep every tensor's shape; F16 of F32 loads and stays within float tolerance.
"$T" quantize -q "$S/fixtures/models/llama-F32.gguf" "$tmp/f16.gguf" F16
"$T" logits -m "$tmp/f16.gguf" --tokens "$S/fixtures/golden/prompt-0.txt" --out "$tmp/f.bin"
/usr/bin/python3 tests/e2e/compare_logits.py "$tmp/f.bin" "$S/fixtures/golden/llama-F16.seed0.bin" float

# Errors: unknown type (2), missing input (1), same file (2), unwritable output (1, no file left).
set +e
"$T" quantize -q "$S/fixtures/models/llama-F32.gguf" "$tmp/x.gguf" Q7_K 2> "$tmp/err"; [ $? -eq 2 ] || exit 1
grep -q "unknown type 'Q7_K'" "$tmp/err" || exit 1
"$T" quantize -q "$tmp/none.gguf" "$tmp/x.gguf" Q8_0 2> "$tmp/err"; [ $? -eq 1 ] || exit 1
"$T" quantize -q "$tmp/f16.gguf" "$tmp/f16.gguf" Q8_0 2> /dev/null; [ $? -eq 2 ] || exit 1
"$T" quantize -q "$tmp/f16.gguf" "$tmp/nodir/x.gguf" Q8_0 2> "$tmp/err"; [ $? -eq 1 ] || exit 1
[ ! -e "$tmp/nodir" ] || exit 1
head -c 1000 "$S/fixtures/models/llama-F32.gguf" > "$tmp/trunc.gguf"
"$T" quantize -q "$tmp/trunc.gguf" "$tmp/x.gguf" Q8_0 2> "$tmp/err"; [ $? -eq 1 ] || exit 1
[ "$(wc -l < "$tmp/err")" -eq 1 ] && [ ! -e "$tmp/x.gguf" ] || exit 1
exit 0
