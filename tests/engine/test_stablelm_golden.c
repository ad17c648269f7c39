/* stablelm fixtures (LayerNorm with bias, partial NEOX rotary) against the golden logits. */
#include <math.h>
#include <stdio.h>

#include "base/fp16.h"
#include "engine/gguf_variant.h"
#include "engine/golden.h"
#include "tandem.h"
#include "test.h"

TEST(golden_stablelm_F16) { golden_check("stablelm-F16", GOLDEN_FLOAT); }
TEST(golden_stablelm_Q8_0) { golden_check("stablelm-Q8_0", GOLDEN_QUANT); }

/* StableLM 2 12B's per-head q/k LayerNorms, checked by their defining property: the fixture
 * with norms added gives the same logits when the q and k projections are doubled (a
 * LayerNorm does not see the scale of its input), while without the norms doubling changes
 * everything. */
struct qk_variant {
    bool norms;
    float scale;
    int n_scaled;
    uint16_t scaled[8][1 << 16];
    float qn[4096], kn[4096];
    char names[8][64];
    int n_names;
};

static const void *qk_edit(struct gguf_writer *w, const struct gguf *g, const struct gguf_tensor *t,
                           void *ud)
{
    struct qk_variant *v = ud;
    if (!t) {
        /* A negligible epsilon, so that the q/k norms are exactly scale-invariant. */
        gguf_writer_set_f32(w, "stablelm.attention.layer_norm_epsilon", 1e-12f);
        return NULL;
    }
    uint32_t n_embd = 0, n_head = 0, n_kv = 0;
    gguf_get_u32(g, "stablelm.embedding_length", &n_embd);
    gguf_get_u32(g, "stablelm.attention.head_count", &n_head);
    gguf_get_u32(g, "stablelm.attention.head_count_kv", &n_kv);
    const int64_t hd = n_embd / n_head;
    int layer, end = 0;
    /* %n is set only when the whole pattern matched. */
    sscanf(t->name, "blk.%d.attn_q.weight%n", &layer, &end);
    if (v->norms && end > 0 && !t->name[end] && v->n_names + 2 <= 8) {
        for (int64_t i = 0; i < hd * n_head; i++)
            v->qn[i] = 1.0f + 0.25f * sinf((float)i);
        for (int64_t i = 0; i < hd * n_kv; i++)
            v->kn[i] = 1.0f - 0.25f * cosf((float)i);
        const int64_t qne[2] = {hd, n_head}, kne[2] = {hd, n_kv};
        char *qname = v->names[v->n_names++], *kname = v->names[v->n_names++];
        snprintf(qname, 64, "blk.%d.attn_q_norm.weight", layer);
        snprintf(kname, 64, "blk.%d.attn_k_norm.weight", layer);
        gguf_writer_add_tensor(w, qname, QTYPE_F32, 2, qne, v->qn, (uint64_t)(hd * n_head * 4));
        gguf_writer_add_tensor(w, kname, QTYPE_F32, 2, kne, v->kn, (uint64_t)(hd * n_kv * 4));
    }
    const bool qk = strstr(t->name, "attn_q.") || strstr(t->name, "attn_k.");
    if (!qk || v->scale == 1.0f)
        return NULL;
    if (t->type != QTYPE_F16 || t->size > sizeof(v->scaled[0]) || v->n_scaled >= 8) {
        test__fail(__FILE__, __LINE__, "unexpected tensor %s", t->name);
        return NULL;
    }
    uint16_t *dst = v->scaled[v->n_scaled++];
    const uint16_t *src = t->data;
    for (uint64_t k = 0; k < t->size / 2; k++)
        dst[k] = fp16_from_fp32(fp16_to_fp32(src[k]) * v->scale);
    return dst;
}

static float *qk_logits(const char *name, bool norms, float scale, int *V)
{
    struct qk_variant *v = calloc(1, sizeof(*v));
    v->norms = norms;
    v->scale = scale;
    char *path = gguf_variant("stablelm-F16", name, qk_edit, v);
    float *out = path ? gguf_variant_logits(path, V) : NULL;
    free(v);
    free(path);
    return out;
}

TEST(stablelm_qk_norm)
{
    int V = 0;
    float *a = qk_logits("norm1", true, 1.0f, &V), *b = qk_logits("norm2", true, 2.0f, &V),
          *c = qk_logits("plain1", false, 1.0f, &V), *d = qk_logits("plain2", false, 2.0f, &V);
    REQUIRE(a && b && c && d);
    CHECK(gguf_variant_rel_diff(a, b, V) < 2e-3f);  /* the norms remove the doubling */
    CHECK(gguf_variant_rel_diff(c, d, V) > 2e-2f);  /* without them it shows */
    CHECK(gguf_variant_rel_diff(a, c, V) > 2e-2f);  /* and the norms do something */
    free(a);
    free(b);
    free(c);
    free(d);
}
