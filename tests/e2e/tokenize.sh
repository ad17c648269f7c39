#!/usr/bin/env bash
# tandem tokenize: ids match the reference vectors through the CLI, BOS per metadata,
# --parse-special, vocabulary-only files, errors.
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
V="$S/fixtures/vocab"
# " Hello world" in the llama-spm vocabulary, as the reference test vectors give it.
ids=$("$T" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --ids --no-bos " Hello world")
[ "$ids" = "29871 15043 3186" ] || { echo "got '$ids'"; exit 1; }
bos=$("$T" tokenize -m "$V/ggml-vocab-llama-spm.gguf" --ids "Hello")
[ "${bos%% *}" = "1" ]
# Control-token text is plain text unless --parse-special.
plain=$("$T" tokenize -m "$S/models/stories260K.gguf" --ids --no-bos "</s>")
special=$("$T" tokenize -m "$S/models/stories260K.gguf" --ids --no-bos --parse-special "</s>")
[ "$special" = "2" ] && [ "$plain" != "2" ]
echo "The quick brown fox" | "$T" tokenize -m "$V/ggml-vocab-gpt-2.gguf" --file - | grep -q '"Ġquick"\|" quick"'
set +e
"$T" tokenize -m "$V/ggml-vocab-gpt-2.gguf" 2> /dev/null; [ $? -eq 2 ] || exit 1
"$T" tokenize -m /nonexistent.gguf hi 2> /dev/null; [ $? -eq 1 ] || exit 1
exit 0
