#!/usr/bin/env bash
# Tokenizer benchmark: builds bench_tokenizer and the texts, then measures MB/s for the
# llama-spm, gpt-2 and deepseek-llm (llama3-style regex set) vocabularies on an English and a
# mixed-script text, and runs the reference tokenizers on the same documents where installed:
#   SentencePiece  (Debian python3-sentencepiece python3-protobuf)  for llama-spm
#   tiktoken       (npm tiktoken@1.0.22, WASM build of OpenAI's tiktoken) for gpt-2
#   tokenizers.js  (npm @huggingface/tokenizers@0.2.0)             for deepseek-llm
# comparing their ids with ours id for id. npm packages go to $NPM_DIR (outside the repository).
# Usage: bench/bench_tokenizer.sh [MB]     (from the repository root; TANDEM_SHARED as for tests)
set -eu
cd "$(dirname "$0")/.."
MB=${1:-8}
BUILD=${BUILD:-build}
SHARED=${TANDEM_SHARED:-../shared}
[ -d "$SHARED/fixtures" ] || SHARED=/work/shared
WORK=${WORK:-/tmp/tandem-bench-tokenizer}
NPM_DIR=${NPM_DIR:-/tmp/tandem-bench-npm}
mkdir -p "$WORK"
make -s BUILD="$BUILD" "$BUILD/tests/unit" >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o "$BUILD/bench_tokenizer" bench/bench_tokenizer.c \
    $(ls "$BUILD"/src/tokenizer/*.o) "$BUILD/src/engine/gguf.o" "$BUILD/src/engine/quant.o" \
    "$BUILD/src/base/cpu.o" -lpcre2-8 -lm -pthread
[ -f "$WORK/mixed.txt" ] || /usr/bin/python3 bench/tokenizer_corpus.py "$WORK" "$MB"
if command -v npm >/dev/null && [ ! -d "$NPM_DIR/node_modules/tiktoken" ]; then
    npm install --silent --prefix "$NPM_DIR" tiktoken@1.0.22 @huggingface/tokenizers@0.2.0 \
        >/dev/null 2>&1 || echo "npm install failed: no tiktoken/tokenizers.js comparison"
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%F)"
for v in llama-spm gpt-2 deepseek-llm; do
    gguf="$SHARED/fixtures/vocab/ggml-vocab-$v.gguf"
    for t in english mixed; do
        echo "== $v / $t"
        "$BUILD/bench_tokenizer" "$gguf" "$WORK/$t.txt" -r 5 -o "$WORK/ids-$v-$t.txt"
        case $v in
        llama-spm)
            /usr/bin/python3 -c 'import sentencepiece' 2>/dev/null &&
                /usr/bin/python3 bench/tokenizer_oracle_spm.py "$gguf" "$WORK/$t.txt" \
                    "$WORK/ids-$v-$t.txt" || echo "(python3-sentencepiece not installed)";;
        gpt-2)
            [ -d "$NPM_DIR/node_modules/tiktoken" ] &&
                NODE_PATH="$NPM_DIR/node_modules" node bench/tokenizer_oracle_tiktoken.mjs \
                    "$WORK/$t.txt" "$WORK/ids-$v-$t.txt" || echo "(tiktoken not installed)";;
        deepseek-llm)
            [ -d "$NPM_DIR/node_modules/@huggingface/tokenizers" ] &&
                NODE_PATH="$NPM_DIR/node_modules" node bench/tokenizer_oracle_hf.mjs "$gguf" \
                    "$WORK/$t.txt" "$WORK/ids-$v-$t.txt" || echo "(tokenizers.js not installed)";;
        esac
    done
done
