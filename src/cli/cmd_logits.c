/* tandem logits: evaluate token ids and write logits plus a greedy continuation (golden format). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "tandem.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem logits -m MODEL --tokens FILE --out OUT [--greedy N] [-t THREADS]\n"
               "  Evaluates the token ids in FILE (whitespace-separated) in one batch and writes\n"
               "  OUT: int32 n_pos, int32 n_vocab, n_pos*n_vocab float32 logits, int32 n_gen,\n"
               "  n_gen int32 ids of the greedy continuation (decoded one token at a time).\n");
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int cmd_logits(int argc, char **argv)
{
    const char *model_path = NULL, *tokens_path = NULL, *out_path = NULL;
    int n_gen = 0, n_threads = 0, rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = args_value("logits", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--tokens")) {
            if (!(tokens_path = args_value("logits", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!(out_path = args_value("logits", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--greedy")) {
            if (!(v = args_value("logits", argc, argv, &i)) ||
                args_int("logits", a, v, 0, 1 << 20, &n_gen))
                return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = args_value("logits", argc, argv, &i)) ||
                args_int("logits", a, v, 1, 1024, &n_threads))
                return 2;
        } else {
            fprintf(stderr, "tandem logits: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !tokens_path || !out_path) {
        usage(stderr);
        return 2;
    }
    int32_t *tokens = NULL, *gen = NULL;
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    FILE *f = NULL;
    char err[512];
    int n = args_read_tokens("logits", tokens_path, &tokens);
    if (n < 0)
        goto out;
    if (n == 0) {
        fprintf(stderr, "tandem logits: %s: no token ids\n", tokens_path);
        goto out;
    }
    if (tandem_model_load(&m, model_path, err, sizeof(err))) {
        fprintf(stderr, "tandem logits: %s\n", err);
        goto out;
    }
    const int n_vocab = tandem_model_n_vocab(m);
    for (int i = 0; i < n; i++)
        if (tokens[i] >= n_vocab) {
            fprintf(stderr, "tandem logits: %s: token id %d at position %d is outside the vocabulary (%d)\n",
                    tokens_path, tokens[i], i, n_vocab);
            goto out;
        }
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = n + n_gen;
    p.n_batch = n;
    p.n_threads = n_threads;
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem logits: %s\n", err);
        goto out;
    }
    int drc = tandem_decode(c, tokens, n, true);
    if (drc) {
        fprintf(stderr, "tandem logits: decode failed: %s\n", tandem_strerror(drc));
        goto out;
    }
    if (!(f = fopen(out_path, "wb"))) {
        fprintf(stderr, "tandem logits: %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    int32_t hdr[2] = {n, n_vocab};
    fwrite(hdr, sizeof(hdr), 1, f);
    for (int i = 0; i < n; i++)
        fwrite(tandem_logits(c, i), sizeof(float), (size_t)n_vocab, f);
    gen = malloc(sizeof(int32_t) * (size_t)(n_gen ? n_gen : 1));
    if (!gen)
        goto out;
    for (int i = 0; i < n_gen; i++) {
        gen[i] = argmax(tandem_logits(c, -1), n_vocab);
        if (i + 1 < n_gen && (drc = tandem_decode(c, &gen[i], 1, false))) {
            fprintf(stderr, "tandem logits: decode failed: %s\n", tandem_strerror(drc));
            goto out;
        }
    }
    int32_t ng = n_gen;
    fwrite(&ng, sizeof(ng), 1, f);
    fwrite(gen, sizeof(int32_t), (size_t)n_gen, f);
    if (fflush(f) || ferror(f)) {
        fprintf(stderr, "tandem logits: %s: write error\n", out_path);
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) && rc == 0) {
        fprintf(stderr, "tandem logits: %s: write error\n", out_path);
        rc = 1;
    }
    free(gen);
    free(tokens);
    tandem_ctx_free(c);
    tandem_model_free(m);
    return rc;
}
