/* Tokenizer throughput: MB/s of tokenizer_encode over a text file, cut into documents at line
 * ends (64 KiB each by default), one call per document; optionally writes the ids for comparison
 * with another tokenizer (one line of space-separated ids per document).
 *
 * Build from the repository root after the normal build (bench/bench_tokenizer.sh does both):
 *   make BUILD=build build/tests/unit
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o build/bench_tokenizer bench/bench_tokenizer.c \
 *       build/src/tokenizer/*.o build/src/engine/gguf.o build/src/engine/quant*.o \
 *       build/src/base/cpu.o -lpcre2-8 -lm -pthread
 *   build/bench_tokenizer VOCAB.gguf TEXT [-d DOC_BYTES] [-r REPEATS] [-o IDS.txt]
 * The first pass runs on a fresh tokenizer (empty word cache); the best pass is the steady state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct doc {
    size_t off, len;
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s VOCAB.gguf TEXT [-d DOC_BYTES] [-r REPEATS] [-o IDS.txt]\n",
                argv[0]);
        return 2;
    }
    size_t doc_bytes = 64 << 10;
    int repeats = 5;
    const char *ids_path = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-d"))
            doc_bytes = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-r"))
            repeats = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-o"))
            ids_path = argv[i + 1];
    }
    char err[256];
    struct gguf *g;
    if (gguf_open(&g, argv[1], err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t0 = now();
    struct tokenizer *tok;
    if (tokenizer_from_gguf(&tok, g, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_load = now() - t0;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(len + 1);
    if (!text || fread(text, 1, len, f) != len)
        return 1;
    fclose(f);
    /* documents: cut after the first newline past doc_bytes */
    size_t max_docs = len / (doc_bytes ? doc_bytes : 1) + 2, n_docs = 0;
    struct doc *docs = malloc(max_docs * sizeof(*docs));
    for (size_t pos = 0; pos < len && n_docs < max_docs;) {
        size_t end = pos + doc_bytes < len ? pos + doc_bytes : len;
        while (end < len && text[end - 1] != '\n')
            end++;
        docs[n_docs++] = (struct doc){pos, end - pos};
        pos = end;
    }
    size_t cap = 1 << 20;
    int32_t *ids = malloc(cap * sizeof(*ids));
    FILE *out = ids_path ? fopen(ids_path, "w") : NULL;
    double best = 1e30, first = 0;
    size_t n_ids = 0;
    for (int r = 0; r < repeats; r++) {
        double t = now();
        n_ids = 0;
        for (size_t d = 0; d < n_docs; d++) {
            int n = tokenizer_encode(tok, text + docs[d].off, docs[d].len, ids, cap, 0);
            if (n < 0 || (size_t)n > cap) {
                fprintf(stderr, "encode failed: %d\n", n);
                return 1;
            }
            n_ids += (size_t)n;
            if (out && r == 0) {
                for (int i = 0; i < n; i++)
                    fprintf(out, i ? " %d" : "%d", ids[i]);
                fputc('\n', out);
            }
        }
        t = now() - t;
        if (r == 0)
            first = t;
        if (t < best)
            best = t;
    }
    if (out)
        fclose(out);
    double mb = len / 1e6;
    printf("%s: %.2f MB, %zu docs, %zu ids (%.2f bytes/id), load %.0f ms, first pass %.1f MB/s, "
           "best of %d %.1f MB/s\n",
           argv[2], mb, n_docs, n_ids, (double)len / (double)n_ids, t_load * 1e3, mb / first,
           repeats, mb / best);
    tokenizer_free(tok);
    gguf_close(g);
    free(ids);
    free(docs);
    free(text);
    return 0;
}
