/* Test helper: fixture variants written with the GGUF writer (see gguf_variant.h). */
#include "engine/gguf_variant.h"

#include <math.h>

#include "tandem.h"
#include "test.h"

char *gguf_variant(const char *fixture, const char *name, gguf_variant_fn fn, void *ud)
{
    char err[256], rel[256];
    snprintf(rel, sizeof(rel), "fixtures/models/%s.gguf", fixture);
    struct gguf *g = NULL;
    if (gguf_open(&g, test_shared_path(rel), err, sizeof(err)))
        return NULL;
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_copy_kv(w, g);
    for (uint64_t i = 0;; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        if (!t)
            break;
        const void *data = fn(w, g, t, ud);
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data ? data : t->data,
                               t->size);
    }
    fn(w, g, NULL, ud);
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s.gguf", test_tmpdir(), name);
    const int rc = gguf_writer_write(w, path, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "write %s: %s", path, err);
    gguf_writer_free(w);
    gguf_close(g);
    return rc ? NULL : path;
}

float *gguf_variant_logits(const char *path, int *n_vocab)
{
    char err[256];
    struct tandem_model *m = NULL;
    if (tandem_model_load(&m, path, err, sizeof(err))) {
        test__fail(__FILE__, __LINE__, "%s", err);
        return NULL;
    }
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = 1;
    struct tandem_ctx *c = NULL;
    const int32_t ids[8] = {1, 20, 33, 40, 51, 60, 7, 80};
    *n_vocab = tandem_model_n_vocab(m);
    float *out = calloc((size_t)*n_vocab, sizeof(float));
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err)) == 0 && tandem_decode(c, ids, 8, false) == 0)
        memcpy(out, tandem_logits(c, -1), sizeof(float) * (size_t)*n_vocab);
    else
        test__fail(__FILE__, __LINE__, "decode %s", path);
    tandem_ctx_free(c);
    tandem_model_free(m);
    return out;
}

float gguf_variant_rel_diff(const float *a, const float *b, int n)
{
    float mx = 0, sc = 1e-6f;
    for (int i = 0; i < n; i++) {
        mx = fmaxf(mx, fabsf(a[i] - b[i]));
        sc = fmaxf(sc, fabsf(b[i]));
    }
    return mx / sc;
}
