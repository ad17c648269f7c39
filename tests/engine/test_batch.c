/* Several sequences in one context: spans decoded together match each sequence decoded alone,
 * KV prefix copies, embeddings, and LongRoPE factors against the equivalent linear scaling. */
#include <math.h>

#include "engine/gguf_variant.h"
#include "engine/model.h"
#include "test.h"
#include "tandem.h"

static struct tandem_model *load(const char *rel)
{
    char err[256];
    struct tandem_model *m = NULL;
    if (tandem_model_load(&m, test_shared_path(rel), err, sizeof(err)))
        test__fail(__FILE__, __LINE__, "load %s: %s", rel, err);
    return m;
}

static struct tandem_ctx *ctx(struct tandem_model *m, int n_seq, int n_batch)
{
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = 128;
    p.n_seq = n_seq;
    p.n_batch = n_batch;
    p.n_threads = 2;
    struct tandem_ctx *c = NULL;
    char err[256];
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err)))
        test__fail(__FILE__, __LINE__, "ctx: %s", err);
    return c;
}

static float max_rel_diff(const float *a, const float *b, int n)
{
    float mx = 0, scale = 1e-6f;
    for (int i = 0; i < n; i++) {
        scale = fmaxf(scale, fabsf(b[i]));
        mx = fmaxf(mx, fabsf(a[i] - b[i]));
    }
    return mx / scale;
}

static const int32_t PA[] = {1, 45, 78, 300, 12, 9, 301, 22, 5};
static const int32_t PB[] = {1, 200, 201, 17};
static const int32_t PC[] = {1, 45, 78, 300, 99, 98};

/* Each span's logits equal those of its sequence decoded alone, step after step, for every
 * architecture's code path that reads positions (rope, learned positions, sliding window). */
static void spans_match_alone(const char *rel)
{
    struct tandem_model *m = load(rel);
    REQUIRE(m);
    const int V = tandem_model_n_vocab(m);
    struct tandem_ctx *multi = ctx(m, 3, 64), *alone[3];
    const int32_t *prompts[3] = {PA, PB, PC};
    const int lens[3] = {9, 4, 6};
    for (int s = 0; s < 3; s++)
        alone[s] = ctx(m, 1, 64);
    REQUIRE(multi && alone[0] && alone[1] && alone[2]);
    /* Round 1: all prompts in one batch; round 2..4: one token each, as generation does. */
    struct tandem_span spans[3];
    for (int s = 0; s < 3; s++)
        spans[s] = (struct tandem_span){.seq = s, .tokens = prompts[s], .n = lens[s], .logits = true};
    REQUIRE(tandem_decode_spans(multi, spans, 3) == 0);
    for (int s = 0; s < 3; s++) {
        REQUIRE(tandem_decode(alone[s], prompts[s], lens[s], false) == 0);
        CHECK(max_rel_diff(tandem_span_logits(multi, s), tandem_logits(alone[s], -1), V) < 1e-3f);
    }
    int32_t next[3] = {7, 8, 9};
    for (int step = 0; step < 3; step++) {
        /* A different order each round, and sequence 1 sits out round 1. */
        int n = 0;
        for (int k = 0; k < 3; k++) {
            const int s = (k + step) % 3;
            if (step == 1 && s == 1)
                continue;
            spans[n++] = (struct tandem_span){.seq = s, .tokens = &next[s], .n = 1, .logits = true};
        }
        REQUIRE(tandem_decode_spans(multi, spans, n) == 0);
        for (int k = 0; k < n; k++) {
            const int s = spans[k].seq;
            REQUIRE(tandem_decode(alone[s], &next[s], 1, false) == 0);
            CHECK(max_rel_diff(tandem_span_logits(multi, k), tandem_logits(alone[s], -1), V) < 1e-3f);
            CHECK_EQ_INT(tandem_seq_n_past(multi, s), tandem_ctx_n_past(alone[s]));
        }
    }
    for (int s = 0; s < 3; s++)
        tandem_ctx_free(alone[s]);
    tandem_ctx_free(multi);
    tandem_model_free(m);
}

TEST(batch_spans_llama) { spans_match_alone("fixtures/models/llama-F32.gguf"); }
TEST(batch_spans_gpt2) { spans_match_alone("fixtures/models/gpt2-F16.gguf"); }
TEST(batch_spans_gemma2) { spans_match_alone("fixtures/models/gemma2-F16.gguf"); }
TEST(batch_spans_q4km) { spans_match_alone("fixtures/models/llama-Q4_K_M.gguf"); }

TEST(batch_spans_reject_bad_input)
{
    struct tandem_model *m = load("fixtures/models/llama-F32.gguf");
    REQUIRE(m);
    struct tandem_ctx *c = ctx(m, 2, 8);
    REQUIRE(c);
    const int32_t t[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct tandem_span two_same[2] = {{.seq = 0, .tokens = t, .n = 1}, {.seq = 0, .tokens = t, .n = 1}};
    CHECK_EQ_INT(tandem_decode_spans(c, two_same, 2), TANDEM_E_ARG);
    struct tandem_span bad_seq = {.seq = 2, .tokens = t, .n = 1};
    CHECK_EQ_INT(tandem_decode_spans(c, &bad_seq, 1), TANDEM_E_ARG);
    struct tandem_span too_many[2] = {{.seq = 0, .tokens = t, .n = 5}, {.seq = 1, .tokens = t, .n = 4}};
    CHECK_EQ_INT(tandem_decode_spans(c, too_many, 2), TANDEM_E_ARG);
    const int32_t bad_tok = 1 << 20;
    struct tandem_span bt = {.seq = 1, .tokens = &bad_tok, .n = 1};
    CHECK_EQ_INT(tandem_decode_spans(c, &bt, 1), TANDEM_E_ARG);
    CHECK_EQ_INT(tandem_seq_n_past(c, 0), 0);
    CHECK_EQ_INT(tandem_seq_n_past(c, 1), 0);
    CHECK(tandem_seq_truncate(c, 0, 1) == TANDEM_E_ARG);
    CHECK(tandem_seq_copy(c, 0, 1, 1) == TANDEM_E_ARG);
    tandem_ctx_free(c);
    tandem_model_free(m);
}

/* A prefix copied from another sequence continues exactly like a recomputed one. */
TEST(batch_seq_copy_prefix)
{
    struct tandem_model *m = load("fixtures/models/llama-F32.gguf");
    REQUIRE(m);
    const int V = tandem_model_n_vocab(m);
    struct tandem_ctx *c = ctx(m, 2, 64), *ref = ctx(m, 1, 64);
    REQUIRE(c && ref);
    struct tandem_span a = {.seq = 0, .tokens = PA, .n = 9, .logits = false};
    REQUIRE(tandem_decode_spans(c, &a, 1) == 0);
    REQUIRE(tandem_seq_copy(c, 0, 1, 4) == 0);  /* PA and PC share 4 tokens */
    CHECK_EQ_INT(tandem_seq_n_past(c, 1), 4);
    struct tandem_span rest = {.seq = 1, .tokens = PC + 4, .n = 2, .logits = true};
    REQUIRE(tandem_decode_spans(c, &rest, 1) == 0);
    REQUIRE(tandem_decode(ref, PC, 6, false) == 0);
    CHECK(max_rel_diff(tandem_span_logits(c, 0), tandem_logits(ref, -1), V) < 1e-4f);
    tandem_ctx_free(c);
    tandem_ctx_free(ref);
    tandem_model_free(m);
}

TEST(batch_embed_pooled_normalized)
{
    struct tandem_model *m = load("models/stories260K.gguf");
    REQUIRE(m);
    const int E = tandem_model_n_embd(m);
    struct tandem_ctx *c = ctx(m, 1, 64), *small = ctx(m, 1, 3);
    REQUIRE(c && small);
    int32_t ids[64];
    const char *text = "Once upon a time, there was a little robot who liked to sing.";
    const int n = tandem_tokenize(m, text, strlen(text), ids, 64, true, false);
    REQUIRE(n > 4 && n <= 64);
    float *e1 = malloc(sizeof(float) * E), *e2 = malloc(sizeof(float) * E),
          *e3 = malloc(sizeof(float) * E);
    REQUIRE(tandem_embed(c, 0, ids, n, e1) == 0);
    double norm = 0;
    for (int i = 0; i < E; i++)
        norm += (double)e1[i] * e1[i];
    CHECK_NEAR(norm, 1.0, 1e-5);
    /* Chunked through a 3-token batch: the same vector. */
    REQUIRE(tandem_embed(small, 0, ids, n, e2) == 0);
    CHECK(max_rel_diff(e2, e1, E) < 1e-4f);
    CHECK_EQ_INT(tandem_seq_n_past(c, 0), 0);
    /* A different text gives a different vector. */
    REQUIRE(tandem_embed(c, 0, ids, n - 3, e3) == 0);
    CHECK(max_rel_diff(e3, e1, E) > 1e-3f);
    free(e1);
    free(e2);
    free(e3);
    tandem_ctx_free(c);
    tandem_ctx_free(small);
    tandem_model_free(m);
}

struct rope_variant {
    float f, attn_factor, linear;
    float factors[64];
};

/* Adds rope factors all `f` with an attention factor, or a linear rope scaling factor. */
static const void *rope_edit(struct gguf_writer *w, const struct gguf *g, const struct gguf_tensor *t,
                             void *ud)
{
    struct rope_variant *v = ud;
    if (t)
        return NULL;
    uint32_t n_rot = 0;
    gguf_get_u32(g, "phi3.rope.dimension_count", &n_rot);
    const int64_t half = n_rot / 2;
    for (int i = 0; i < half && i < 64; i++)
        v->factors[i] = v->f;
    if (v->f > 0) {
        gguf_writer_add_tensor(w, "rope_factors_long.weight", QTYPE_F32, 1, &half, v->factors,
                               (uint64_t)half * 4);
        gguf_writer_add_tensor(w, "rope_factors_short.weight", QTYPE_F32, 1, &half, v->factors,
                               (uint64_t)half * 4);
        gguf_writer_set_u32(w, "phi3.rope.scaling.original_context_length", 64);
        gguf_writer_set_f32(w, "phi3.rope.scaling.attn_factor", v->attn_factor);
    }
    if (v->linear > 0) {
        gguf_writer_set_str(w, "phi3.rope.scaling.type", "linear");
        gguf_writer_set_f32(w, "phi3.rope.scaling.factor", v->linear);
    }
    return NULL;
}

static float *rope_logits(const char *name, float f, float attn_factor, float linear, int *V)
{
    struct rope_variant v = {.f = f, .attn_factor = attn_factor, .linear = linear};
    char *path = gguf_variant("phi3-F16", name, rope_edit, &v);
    float *out = path ? gguf_variant_logits(path, V) : NULL;
    free(path);
    return out;
}

/* LongRoPE divides each frequency by its factor: factors of 2 everywhere are exactly a linear
 * scaling by 2 (dividing by a power of two is exact), and the attention factor scales cos/sin. */
TEST(batch_phi3_longrope_factors)
{
    int V = 0;
    float *a = rope_logits("longrope", 2.0f, 1.0f, 0, &V), *b = rope_logits("linear", 0, 0, 2.0f, &V),
          *c = rope_logits("longrope_att", 2.0f, 1.2f, 0, &V), *d = rope_logits("plain", 0, 0, 0, &V);
    REQUIRE(a && b && c && d);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)V) == 0);
    CHECK(gguf_variant_rel_diff(a, c, V) > 1e-3f);
    CHECK(gguf_variant_rel_diff(a, d, V) > 1e-3f);
    free(a);
    free(b);
    free(c);
    free(d);
}
