/* libFuzzer target: tokenize arbitrary bytes with real vocabularies (SPM, BPE with several
 * pre-tokenizers, WordPiece), decode the ids back, and stream-decode them; nothing may crash,
 * leak or read out of bounds, and every id must be in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"

static const char *const vocabs[] = {"llama-spm", "gpt-2", "deepseek-llm", "falcon", "bert-bge",
                                     "starcoder"};
#define N_VOCABS (sizeof(vocabs) / sizeof(vocabs[0]))
static struct tokenizer *toks[N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *root = getenv("TANDEM_SHARED");
    if (!root)
        root = "../shared";
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[512], err[256];
        snprintf(path, sizeof(path), "%s/fixtures/vocab/ggml-vocab-%s.gguf", root, vocabs[i]);
        struct gguf *g = NULL;
        if (gguf_open(&g, path, err, sizeof(err)) || tokenizer_from_gguf(&toks[i], g, err, sizeof(err))) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err);
            abort();
        }
        gguf_close(g);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct tokenizer *tok = toks[data[0] % N_VOCABS];
    const unsigned flags = (data[0] >> 4) & 3u;
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    size_t cap = len + 8;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    int n = tokenizer_encode(tok, text, len, ids, cap, flags);
    if (n > (int)cap) {
        cap = (size_t)n;
        ids = realloc(ids, cap * sizeof(int32_t));
        n = tokenizer_encode(tok, text, len, ids, cap, flags);
    }
    if (n >= 0) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tokenizer_n_vocab(tok))
                abort();
        int64_t m = tokenizer_decode(tok, ids, (size_t)n, NULL, 0, TOKENIZER_DECODE_SPECIAL);
        if (m >= 0) {
            char *out = malloc((size_t)m + 1);
            tokenizer_decode(tok, ids, (size_t)n, out, (size_t)m, TOKENIZER_DECODE_SPECIAL);
            free(out);
        }
        struct tokenizer_stream *s = tokenizer_stream_new(tok, 0);
        char buf[4096];
        if (s && TOKENIZER_STREAM_CAP(tok) <= sizeof(buf)) {
            for (int i = 0; i < n; i++)
                if (tokenizer_stream_feed(s, ids[i], buf, sizeof(buf)) < 0)
                    abort();
            tokenizer_stream_flush(s, buf, sizeof(buf));
        }
        tokenizer_stream_free(s);
    }
    free(ids);
    return 0;
}
