/* Model loading and decoding errors: missing keys/tensors, wrong shapes, bad tokens, full
 * context — each a clear error that changes nothing. */
#include "test.h"

#include "engine/gguf.h"
#include "tandem.h"

/* Writes a copy of the F32 llama fixture to the temp dir with one change applied. */
enum mutation { MUT_NONE, MUT_DROP_KEY, MUT_DROP_TENSOR, MUT_BAD_SHAPE, MUT_ARCH, MUT_HEADS };

static char *variant(enum mutation mut, const char *what)
{
    char *src = test_shared_path("fixtures/models/llama-F32.gguf");
    struct gguf *g = NULL;
    char err[512];
    if (gguf_open(&g, src, err, sizeof(err)))
        return NULL;
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_copy_kv(w, g);
    if (mut == MUT_DROP_KEY)
        gguf_writer_remove(w, what);
    if (mut == MUT_ARCH)
        gguf_writer_set_str(w, "general.architecture", what);
    if (mut == MUT_HEADS)
        gguf_writer_set_u32(w, "llama.attention.head_count", 3);
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        if (what && !strcmp(t->name, what) && mut == MUT_DROP_TENSOR)
            continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint64_t size = t->size;
        if (what && !strcmp(t->name, what) && mut == MUT_BAD_SHAPE) {
            ne[1] /= 2; /* half the rows: a plausible but wrong shape */
            size /= 2;
        }
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, size);
    }
    static int n;
    char *out = malloc(512);
    snprintf(out, 512, "%s/variant-%d.gguf", test_tmpdir(), n++);
    int rc = gguf_writer_write(w, out, err, sizeof(err));
    gguf_writer_free(w);
    gguf_close(g);
    return rc ? NULL : out;
}

static void expect_load_error(enum mutation mut, const char *what, int code, const char *needle)
{
    char *path = variant(mut, what);
    REQUIRE(path);
    struct tandem_model *m = (void *)1;
    char err[512] = "";
    int rc = tandem_model_load(&m, path, err, sizeof(err));
    CHECK_EQ_INT(rc, code);
    CHECK(m == NULL);
    if (!strstr(err, needle))
        test__fail(__FILE__, __LINE__, "error '%s' does not mention '%s'", err, needle);
    CHECK(strchr(err, '\n') == NULL);
}

TEST(model_missing_key)
{
    expect_load_error(MUT_DROP_KEY, "llama.block_count", TANDEM_E_MISSING, "llama.block_count");
    expect_load_error(MUT_DROP_KEY, "general.architecture", TANDEM_E_MISSING, "general.architecture");
}

TEST(model_missing_tensor)
{
    expect_load_error(MUT_DROP_TENSOR, "blk.1.ffn_down.weight", TANDEM_E_MISSING,
                      "blk.1.ffn_down.weight");
}

TEST(model_wrong_shape)
{
    expect_load_error(MUT_BAD_SHAPE, "blk.0.attn_k.weight", TANDEM_E_SHAPE, "blk.0.attn_k.weight");
}

TEST(model_unsupported_arch)
{
    expect_load_error(MUT_ARCH, "rwkv6", TANDEM_E_UNSUPPORTED, "supported: llama");
}

TEST(model_bad_hparams)
{
    /* 256 is not divisible by 3 heads. */
    expect_load_error(MUT_HEADS, NULL, TANDEM_E_FORMAT, "head_count");
}

TEST(model_unmodified_variant_loads)
{
    char *path = variant(MUT_NONE, NULL);
    REQUIRE(path);
    struct tandem_model *m = NULL;
    char err[512];
    REQUIRE(tandem_model_load(&m, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(tandem_model_n_vocab(m), 512);
    CHECK_EQ_INT(tandem_model_n_embd(m), 256);
    CHECK_EQ_INT(tandem_model_n_layer(m), 2);
    CHECK_STR(tandem_model_arch(m), "llama");
    tandem_model_free(m);
}

TEST(decode_errors_change_nothing)
{
    char *path = test_shared_path("fixtures/models/llama-Q8_0.gguf");
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    char err[512];
    REQUIRE(tandem_model_load(&m, path, err, sizeof(err)) == 0);
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = 8;
    p.n_batch = 4;
    p.n_threads = 2;
    REQUIRE(tandem_ctx_new(&c, m, &p, err, sizeof(err)) == 0);
    int32_t toks[6] = {1, 2, 3, 4, 5, 6};
    CHECK_EQ_INT(tandem_decode(c, toks, 0, false), TANDEM_E_ARG);
    CHECK_EQ_INT(tandem_decode(c, toks, 5, false), TANDEM_E_ARG); /* > n_batch */
    int32_t bad[2] = {1, 512};
    CHECK_EQ_INT(tandem_decode(c, bad, 2, false), TANDEM_E_ARG);
    bad[1] = -1;
    CHECK_EQ_INT(tandem_decode(c, bad, 2, false), TANDEM_E_ARG);
    CHECK_EQ_INT(tandem_ctx_n_past(c), 0);
    REQUIRE(tandem_decode(c, toks, 4, false) == 0);
    REQUIRE(tandem_decode(c, toks, 4, false) == 0);
    CHECK_EQ_INT(tandem_ctx_n_past(c), 8);
    CHECK_EQ_INT(tandem_decode(c, toks, 1, false), TANDEM_E_CONTEXT_FULL);
    CHECK_EQ_INT(tandem_ctx_n_past(c), 8);
    CHECK(tandem_logits(c, 0) == NULL);   /* only the last token's logits were kept */
    CHECK(tandem_logits(c, -1) != NULL);
    CHECK_EQ_INT(tandem_ctx_truncate(c, 9), TANDEM_E_ARG);
    CHECK_EQ_INT(tandem_ctx_truncate(c, 3), 0);
    CHECK_EQ_INT(tandem_ctx_n_past(c), 3);
    tandem_ctx_free(c);
    tandem_model_free(m);
}

/* Re-decoding after truncation gives the same logits as the first time (the cache is reused
 * correctly), and batch size does not change the result beyond float noise. */
TEST(decode_truncate_and_batching_consistent)
{
    char *path = test_shared_path("fixtures/models/llama-F32.gguf");
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    char err[512];
    REQUIRE(tandem_model_load(&m, path, err, sizeof(err)) == 0);
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = 32;
    p.n_batch = 16;
    p.n_threads = 2;
    REQUIRE(tandem_ctx_new(&c, m, &p, err, sizeof(err)) == 0);
    int32_t toks[12] = {200, 218, 23, 135, 264, 251, 210, 158, 247, 186, 301, 114};
    REQUIRE(tandem_decode(c, toks, 12, false) == 0);
    float *a = malloc(512 * sizeof(float));
    memcpy(a, tandem_logits(c, -1), 512 * sizeof(float));
    /* One at a time after the first 4. */
    REQUIRE(tandem_ctx_truncate(c, 4) == 0);
    for (int i = 4; i < 12; i++)
        REQUIRE(tandem_decode(c, &toks[i], 1, false) == 0);
    const float *b = tandem_logits(c, -1);
    double max_diff = 0;
    for (int i = 0; i < 512; i++)
        max_diff = fmax(max_diff, fabs(a[i] - b[i]));
    CHECK(max_diff < 1e-3);
    free(a);
    tandem_ctx_free(c);
    tandem_model_free(m);
}

/* Learned position embeddings bound the context: asking for more is an error, the default is
 * capped. */
TEST(model_learned_positions_bound_context)
{
    char *path = test_shared_path("fixtures/models/gpt2-F16.gguf");
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    char err[512] = "";
    REQUIRE(tandem_model_load(&m, path, err, sizeof(err)) == 0);
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = 4096;
    p.n_threads = 1;
    CHECK_EQ_INT(tandem_ctx_new(&c, m, &p, err, sizeof(err)), TANDEM_E_ARG);
    CHECK(strstr(err, "learned positions") != NULL);
    p.n_ctx = 0;
    REQUIRE(tandem_ctx_new(&c, m, &p, err, sizeof(err)) == 0);
    CHECK_EQ_INT(tandem_ctx_n_ctx(c), 512);
    tandem_ctx_free(c);
    tandem_model_free(m);
}
