#!/usr/bin/env bash
# The issue's benchmark: a TinyLlama-1.1B-shaped llama (n_embd 2048, 22 layers, 32 heads, 4 KV
# heads, n_ff 5632, vocab 32000) made by ../shared/tools/ggufgen.py, quantized by tandem to
# Q4_K_M and Q8_0, benchmarked with 2 threads. Models go to $MODELS (default bench/out).
# Usage: bash bench/tinyllama.sh [REPS]
set -eu
cd "$(dirname "$0")/.."
S=${TANDEM_SHARED:-../shared}
MODELS=${MODELS:-bench/out}
REPS=${1:-5}
T=build/tandem
mkdir -p "$MODELS"
make -s all bench-tools
f32="$MODELS/tinyllama-F32.gguf"
[ -f "$f32" ] || /usr/bin/python3 "$S/tools/ggufgen.py" llama "$f32" \
    --vocab "$S/fixtures/vocab/ggml-vocab-llama-spm.gguf" \
    --cfg '{"n_embd":2048,"n_layer":22,"n_head":32,"n_head_kv":4,"n_ff":5632,"ctx":2048}'
for q in Q4_K_M Q8_0; do
    [ -f "$MODELS/tinyllama-$q.gguf" ] || "$T" quantize -q "$f32" "$MODELS/tinyllama-$q.gguf" "$q"
done
echo "date: $(date -u +%Y-%m-%d)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
build/bench/membw 1024 2
build/bench/membw 1024 1
for q in Q4_K_M Q8_0; do
    "$T" bench -m "$MODELS/tinyllama-$q.gguf" -p 512 -n 128 -t 2 -r "$REPS"
    "$T" bench -m "$MODELS/tinyllama-$q.gguf" -p 0 -n 128 -t 1 -r "$REPS" | tail -n +3 | head -1
done
