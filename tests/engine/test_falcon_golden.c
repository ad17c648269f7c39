/* falcon fixtures (fused QKV, multi-query attention, parallel attention + FFN) against the
 * golden logits. */
#include <stdio.h>

#include "engine/gguf_variant.h"
#include "engine/golden.h"
#include "test.h"

TEST(golden_falcon_F16) { golden_check("falcon-F16", GOLDEN_FLOAT); }
TEST(golden_falcon_Q8_0) { golden_check("falcon-Q8_0", GOLDEN_QUANT); }

/* The 40B layout (attn_norm_2 feeding the FFN): with attn_norm_2 equal to attn_norm both
 * branches see the same normed input, so the logits must equal the 7B layout's (to float
 * noise: the FFN then reads another buffer); with
 * a different attn_norm_2 they must not. */
struct norm2 {
    float scale;
    char names[64][64];
    int n;
};

static const void *add_norm2(struct gguf_writer *w, const struct gguf *g, const struct gguf_tensor *t,
                             void *ud)
{
    struct norm2 *v = ud;
    int layer;
    char suffix[16];
    if (!t || v->n >= 64 || sscanf(t->name, "blk.%d.attn_norm.%15s", &layer, suffix) != 2)
        return NULL;
    char *nm = v->names[v->n++];
    snprintf(nm, 64, "blk.%d.attn_norm_2.%s", layer, suffix);
    if (v->scale == 1.0f) {
        gguf_writer_add_tensor(w, nm, t->type, t->n_dims, t->ne, t->data, t->size);
    } else {
        static float data[64][4096];
        float *d = data[v->n - 1];
        const float *src = t->data;
        for (int64_t i = 0; i < t->ne[0] && i < 4096; i++)
            d[i] = src[i] * v->scale + 0.01f;
        gguf_writer_add_tensor(w, nm, t->type, t->n_dims, t->ne, d, t->size);
    }
    (void)g;
    return NULL;
}

TEST(falcon_attn_norm_2_layout)
{
    struct norm2 same = {.scale = 1.0f}, other = {.scale = 0.5f};
    char *p_same = gguf_variant("falcon-F16", "norm2_same", add_norm2, &same);
    char *p_other = gguf_variant("falcon-F16", "norm2_other", add_norm2, &other);
    REQUIRE(p_same && p_other && same.n > 0);
    int V = 0;
    float *a = gguf_variant_logits(test_shared_path("fixtures/models/falcon-F16.gguf"), &V);
    float *b = gguf_variant_logits(p_same, &V), *c = gguf_variant_logits(p_other, &V);
    REQUIRE(a && b && c);
    CHECK(gguf_variant_rel_diff(b, a, V) < 1e-4f);
    CHECK(gguf_variant_rel_diff(c, a, V) > 1e-2f);
    free(a);
    free(b);
    free(c);
}
