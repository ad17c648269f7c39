/* stablelm fixtures (LayerNorm with bias, partial NEOX rotary) against the golden logits. */
#include <math.h>
#include <stdio.h>

#include "base/fp16.h"
#include "engine/gguf.h"
#include "engine/golden.h"
#include "tandem.h"
#include "test.h"

TEST(golden_stablelm_F16) { golden_check("stablelm-F16", GOLDEN_FLOAT); }
TEST(golden_stablelm_Q8_0) { golden_check("stablelm-Q8_0", GOLDEN_QUANT); }

/* StableLM 2 12B's per-head q/k LayerNorms, checked by their defining property: the fixture
 * with norms added gives the same logits when the q and k projections are doubled (a
 * LayerNorm does not see the scale of its input), while without the norms doubling changes
 * everything. */
static char *stablelm_variant(const char *name, bool norms, float scale)
{
    char err[256];
    struct gguf *g = NULL;
    if (gguf_open(&g, test_shared_path("fixtures/models/stablelm-F16.gguf"), err, sizeof(err)))
        return NULL;
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_copy_kv(w, g);
    uint32_t n_embd = 0, n_head = 0, n_kv = 0;
    gguf_get_u32(g, "stablelm.embedding_length", &n_embd);
    gguf_get_u32(g, "stablelm.attention.head_count", &n_head);
    gguf_get_u32(g, "stablelm.attention.head_count_kv", &n_kv);
    const int64_t hd = n_embd / n_head;
    static float qn[4096], kn[4096];
    static uint16_t scaled[64][1 << 16];
    int n_scaled = 0;
    for (int64_t i = 0; i < hd * n_head; i++)
        qn[i] = 1.0f + 0.25f * sinf((float)i);
    for (int64_t i = 0; i < hd * n_kv; i++)
        kn[i] = 1.0f - 0.25f * cosf((float)i);
    for (uint64_t i = 0;; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        if (!t)
            break;
        const void *data = t->data;
        const bool qk = strstr(t->name, "attn_q.") || strstr(t->name, "attn_k.");
        if (qk && scale != 1.0f && t->type == QTYPE_F16 && t->size <= sizeof(scaled[0])) {
            const uint16_t *src = t->data;
            for (uint64_t k = 0; k < t->size / 2; k++)
                scaled[n_scaled][k] = fp16_from_fp32(fp16_to_fp32(src[k]) * scale);
            data = scaled[n_scaled++];
        } else if (qk && scale != 1.0f && t->type == QTYPE_F32) {
            test__fail(__FILE__, __LINE__, "unexpected F32 %s", t->name);
        }
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data, t->size);
        char nm[64];
        int layer;
        if (norms && sscanf(t->name, "blk.%d.attn_q.weight", &layer) == 1) {
            const int64_t qne[2] = {hd, n_head}, kne[2] = {hd, n_kv};
            snprintf(nm, sizeof(nm), "blk.%d.attn_q_norm.weight", layer);
            gguf_writer_add_tensor(w, strdup(nm), QTYPE_F32, 2, qne, qn, (uint64_t)(hd * n_head * 4));
            snprintf(nm, sizeof(nm), "blk.%d.attn_k_norm.weight", layer);
            gguf_writer_add_tensor(w, strdup(nm), QTYPE_F32, 2, kne, kn, (uint64_t)(hd * n_kv * 4));
        }
    }
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s.gguf", test_tmpdir(), name);
    const int rc = gguf_writer_write(w, path, err, sizeof(err));
    gguf_writer_free(w);
    gguf_close(g);
    return rc ? NULL : path;
}

static float *last_logits(const char *path, int *n_vocab)
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
    tandem_ctx_free(c);
    tandem_model_free(m);
    return out;
}

static float rel_diff(const float *a, const float *b, int n)
{
    float mx = 0, sc = 1e-6f;
    for (int i = 0; i < n; i++) {
        mx = fmaxf(mx, fabsf(a[i] - b[i]));
        sc = fmaxf(sc, fabsf(b[i]));
    }
    return mx / sc;
}

TEST(stablelm_qk_norm)
{
    char *n1 = stablelm_variant("norm1", true, 1.0f), *n2 = stablelm_variant("norm2", true, 2.0f);
    char *p1 = stablelm_variant("plain1", false, 1.0f), *p2 = stablelm_variant("plain2", false, 2.0f);
    REQUIRE(n1 && n2 && p1 && p2);
    int V = 0;
    float *a = last_logits(n1, &V), *b = last_logits(n2, &V), *c = last_logits(p1, &V),
          *d = last_logits(p2, &V);
    REQUIRE(a && b && c && d);
    CHECK(rel_diff(a, b, V) < 2e-3f);   /* the norms remove the doubling */
    CHECK(rel_diff(c, d, V) > 2e-2f);   /* without them it shows */
    CHECK(rel_diff(a, c, V) > 2e-2f);   /* and the norms do something */
    free(a);
    free(b);
    free(c);
    free(d);
}
