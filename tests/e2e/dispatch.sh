#!/usr/bin/env bash
# Runtime dispatch: TANDEM_CPU caps the SIMD level, and every level the CPU has produces the
# golden logits (scalar, AVX2 and AVX-512 kernels agree end to end).
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
TANDEM_CPU=scalar "$T" bench -m "$S/models/stories260K.gguf" -p 8 -n 4 -r 1 --json | grep -q '"simd": "scalar"'
for level in scalar avx2 avx512; do
    for model in llama-Q4_K_M llama-Q8_0 llama-F16; do
        TANDEM_CPU=$level "$T" logits -m "$S/fixtures/models/$model.gguf" \
            --tokens "$S/fixtures/golden/prompt-0.txt" --out "$tmp/$model-$level.bin" -t 2
        cls=quant; [ "$model" = llama-F16 ] && cls=float
        /usr/bin/python3 tests/e2e/compare_logits.py "$tmp/$model-$level.bin" \
            "$S/fixtures/golden/$model.seed0.bin" $cls
    done
done
