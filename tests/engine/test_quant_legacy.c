/* Float and legacy block types: layouts, reference quantizers, fixtures, dot kernels. */
#include "test.h"

#include <float.h>
#include <stdint.h>

#include "base/cpu.h"
#include "engine/gguf.h"
#include "engine/quant_impl.h"

#ifndef TANDEM_NO_X86
/* quant_legacy_avx512.c test hook: 0 turns the VNNI / BF16 paths off, 1 back on (only where
 * the CPU has them). */
void quant__legacy_avx512_extensions(int vnni, int bf16);
#endif

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static float rng_gauss(uint64_t *s)
{
    const double u1 = rng_uniform(s) + 1e-300, u2 = rng_uniform(s);
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static const enum qtype weight_types[] = {QTYPE_F32,  QTYPE_F16,  QTYPE_BF16, QTYPE_Q4_0,
                                          QTYPE_Q4_1, QTYPE_Q5_0, QTYPE_Q5_1, QTYPE_Q8_0};
#define N_WEIGHT_TYPES (sizeof(weight_types) / sizeof(weight_types[0]))
static const enum qtype act_types[] = {QTYPE_F16, QTYPE_BF16, QTYPE_Q8_0, QTYPE_Q8_1};
#define N_ACT_TYPES (sizeof(act_types) / sizeof(act_types[0]))

static void *quantize(enum qtype t, const float *x, int64_t n)
{
    void *q = malloc(quant_row_size(t, n));
    if (q)
        quant_traits(t)->from_float(x, q, n);
    return q;
}

static float *dequantize(enum qtype t, const void *q, int64_t n)
{
    float *x = malloc((size_t)n * sizeof(float));
    if (x)
        quant_traits(t)->to_float(q, x, n);
    return x;
}

static bool is_1_type(enum qtype t) { return t == QTYPE_Q4_1 || t == QTYPE_Q5_1; }

/* m of block b of a Q4_1/Q5_1 row (both start with d, m). */
static float block_m(enum qtype t, const void *x, int b)
{
    uint16_t m;
    memcpy(&m, (const uint8_t *)x + quant_traits(t)->type_size * (size_t)b + 2, 2);
    return fp16_to_fp32(m);
}

/* Random data whose block scales span 6 orders of magnitude, with some all-zero blocks and
 * some blocks of one sign. */
static void fill_blocks(float *x, int64_t n, uint64_t *s)
{
    for (int64_t i = 0; i < n; i += 32) {
        const uint64_t kind = rng_next(s) % 16;
        const float scale = kind == 0 ? 0.0f : (float)pow(10.0, 6 * rng_uniform(s) - 6);
        const float shift = kind == 1 ? scale * 3 : 0.0f; /* all one sign */
        for (int64_t j = i; j < i + 32 && j < n; j++)
            x[j] = scale * rng_gauss(s) + shift;
    }
}

/* ---- every kernel is linked, at every level ---- */

TEST(quant_legacy_kernels_linked)
{
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const struct qtype_traits *tr = quant_traits(weight_types[k]);
        REQUIRE(tr && tr->to_float && tr->from_float && tr->vec_dot);
#ifndef TANDEM_NO_X86
        CHECK(quant_vec_dot_at(weight_types[k], QUANT_LEVEL_AVX2) != tr->vec_dot);
        CHECK(quant_vec_dot_at(weight_types[k], QUANT_LEVEL_AVX512) !=
              quant_vec_dot_at(weight_types[k], QUANT_LEVEL_AVX2));
#endif
    }
    for (size_t k = 0; k < N_ACT_TYPES; k++) {
        const struct qtype_traits *tr = quant_traits(act_types[k]);
        REQUIRE(tr && tr->to_float && tr->from_float);
#ifndef TANDEM_NO_X86
        CHECK(quant_from_float_at(act_types[k], QUANT_LEVEL_AVX2) != tr->from_float);
        CHECK(quant_from_float_at(act_types[k], QUANT_LEVEL_AVX512) !=
              quant_from_float_at(act_types[k], QUANT_LEVEL_AVX2));
#endif
    }
    CHECK_EQ_INT(quant_row_size(QTYPE_Q4_0, 64), 36);
    CHECK_EQ_INT(quant_row_size(QTYPE_Q5_1, 96), 72);
    CHECK_EQ_INT(quant_row_size(QTYPE_Q8_1, 32), 36);
    CHECK_EQ_INT(quant_row_size(QTYPE_Q8_0, 33), 0);
    CHECK_EQ_INT(quant_row_size(QTYPE_BF16, 7), 14);
}

/* ---- known answers: hand-made blocks ---- */

TEST(quant_legacy_known_q4_0)
{
    struct block_q4_0 b = {.d = 0x3c00}; /* 1.0 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    quant__to_float_q4_0(&b, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == (float)(j - 8));      /* low nibbles: elements 0..15 = -8..7 */
        CHECK(y[j + 16] == (float)(7 - j)); /* high nibbles: elements 16..31 */
    }
    b.d = 0xc000; /* -2.0 */
    quant__to_float_q4_0(&b, y, 32);
    CHECK(y[0] == 16.0f && y[15] == -14.0f && y[16] == -14.0f && y[31] == 16.0f);

    /* Quantizing: the value of largest magnitude maps to q = 0 (d = max / -8). */
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j % 16) - 8; /* -8..7, twice */
    x[5] = 7.4f;                    /* rounds to 7 */
    quant__from_float_q4_0(x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3c00);
    CHECK_EQ_INT(b.qs[0], 0x00);
    CHECK_EQ_INT(b.qs[5], 0x5f);
    CHECK_EQ_INT(b.qs[15], 0xff);
    /* Largest magnitude positive: d = -1, and -8 (would be q = 16) clamps to 15. */
    for (int j = 0; j < 32; j++)
        x[j] = j == 3 ? 8.0f : j == 20 ? -8.0f : 0.0f;
    quant__from_float_q4_0(x, &b, 32);
    CHECK_EQ_INT(b.d, 0xbc00);
    CHECK_EQ_INT(b.qs[3], 0x80);
    CHECK_EQ_INT(b.qs[4], 0xf8);
    CHECK_EQ_INT(b.qs[0], 0x88);
}

TEST(quant_legacy_known_q4_1)
{
    struct block_q4_1 b = {.d = 0x3800, .m = 0xbc00}; /* 0.5, -1 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    quant__to_float_q4_1(&b, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == 0.5f * (float)j - 1);
        CHECK(y[j + 16] == 0.5f * (float)(15 - j) - 1);
    }
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = 0.5f * (float)(j % 16) + 1; /* min 1, max 8.5: d = 0.5 */
    x[17] = 1.24f;                         /* (0.24 / 0.5) + 0.5 truncates to 0 */
    x[18] = 1.26f;                         /* ... to 1 */
    quant__from_float_q4_1(x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3800);
    CHECK_EQ_INT(b.m, 0x3c00);
    CHECK_EQ_INT(b.qs[0], 0x00);
    CHECK_EQ_INT(b.qs[1], 0x01);
    CHECK_EQ_INT(b.qs[2], 0x12);
    CHECK_EQ_INT(b.qs[15], 0xff);
}

TEST(quant_legacy_known_q5_0)
{
    struct block_q5_0 b = {.d = 0x4000}; /* 2.0 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | (15 - j) << 4);
    const uint8_t qh[4] = {0x0f, 0xa5, 0x00, 0xff};
    memcpy(b.qh, qh, 4);
    float y[32];
    quant__to_float_q5_0(&b, y, 32);
    for (int j = 0; j < 32; j++) {
        const int lo = j < 16 ? j : 31 - j;
        const int hb = (qh[j / 8] >> (j % 8)) & 1; /* bit j, little-endian */
        CHECK(y[j] == 2.0f * (float)(lo + 16 * hb - 16));
    }
    CHECK(y[0] == 2.0f * -16 + 2.0f * 16); /* bit 0 set: q = 16 */
    CHECK(y[4] == 2.0f * (4 - 16));        /* bit 4 clear */

    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)j - 16; /* max magnitude -16: d = 1, q = j */
    quant__from_float_q5_0(x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3c00);
    for (int j = 0; j < 16; j++)
        CHECK_EQ_INT(b.qs[j], j | j << 4);
    uint32_t h;
    memcpy(&h, b.qh, 4);
    CHECK_EQ_INT(h, 0xffff0000u);
}

TEST(quant_legacy_known_q5_1)
{
    struct block_q5_1 b = {.d = 0x3400, .m = 0xc200}; /* 0.25, -3 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | (15 - j) << 4);
    const uint8_t qh[4] = {0x81, 0x42, 0x24, 0x18};
    memcpy(b.qh, qh, 4);
    float y[32];
    quant__to_float_q5_1(&b, y, 32);
    for (int j = 0; j < 32; j++) {
        const int lo = j < 16 ? j : 31 - j;
        const int hb = (qh[j / 8] >> (j % 8)) & 1;
        CHECK(y[j] == 0.25f * (float)(lo + 16 * hb) - 3);
    }
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = 0.25f * (float)((j * 7) % 32) - 3; /* a permutation of 0..31: d = 0.25 */
    quant__from_float_q5_1(x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3400);
    CHECK_EQ_INT(b.m, 0xc200);
    quant__to_float_q5_1(&b, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == x[j]);
}

TEST(quant_legacy_known_q8)
{
    struct block_q8_0 b = {.d = 0x3400}; /* 0.25 */
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 127);
    float y[32];
    quant__to_float_q8_0(&b, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == 0.25f * (float)(j * 8 - 127));

    /* amax 127 gives d = 1, so x * id = x: roundf rounds halves away from zero. */
    float x[32] = {127, 2.5f, -2.5f, 0.49999997f, -126.5f, 0.5f, -0.5f, 1.5f, 3.5f, -3.5f};
    quant__from_float_q8_0(x, &b, 32);
    CHECK_EQ_INT(b.d, 0x3c00);
    const int want[10] = {127, 3, -3, 0, -127, 1, -1, 2, 4, -4};
    for (int j = 0; j < 10; j++)
        CHECK_EQ_INT(b.qs[j], want[j]);

    /* Negative max: d stays positive. */
    for (int j = 0; j < 32; j++)
        x[j] = -(float)j * 0.5f;
    struct block_q8_1 c;
    quant__from_float_q8_1(x, &c, 32);
    const float d = 15.5f / 127;
    CHECK_EQ_INT(c.d, fp16_from_fp32(d));
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        CHECK_EQ_INT(c.qs[j], (int)roundf(x[j] / d));
        sum += c.qs[j];
    }
    CHECK_EQ_INT(c.qs[31], -127);
    CHECK_EQ_INT(c.s, fp16_from_fp32((float)sum * d));
    quant__to_float_q8_1(&c, y, 32);
    CHECK(y[31] == -127 * fp16_to_fp32(c.d));

    /* All zeros: d = 0 and q = 0 (no division by zero). */
    memset(x, 0, sizeof(x));
    quant__from_float_q8_1(x, &c, 32);
    CHECK_EQ_INT(c.d, 0);
    CHECK_EQ_INT(c.s, 0);
    for (int j = 0; j < 32; j++)
        CHECK_EQ_INT(c.qs[j], 0);
}

TEST(quant_legacy_known_float_types)
{
    const uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    float y[4];
    quant__to_float_f16(h, y, 4);
    CHECK(y[0] == 1.0f && y[1] == -2.0f && y[2] == 65504.0f && y[3] == 0x1p-24f);
    const uint16_t b[3] = {0x3f80, 0xc040, 0x7f80};
    quant__to_float_bf16(b, y, 3);
    CHECK(y[0] == 1.0f && y[1] == -3.0f && isinf(y[2]));
    const float x[3] = {1.0f, 1.0f + 0x1p-8f, -3.0f};
    uint16_t q[3];
    quant__from_float_bf16(x, q, 3);
    CHECK(q[0] == 0x3f80 && q[1] == 0x3f80 && q[2] == 0xc040);
    quant__from_float_f16(x, q, 3);
    CHECK(q[0] == 0x3c00 && q[1] == 0x3c04 && q[2] == 0xc200);
    float f[3];
    quant__from_float_f32(x, f, 3);
    CHECK(!memcmp(f, x, sizeof(x)));
}

/* ---- quantize -> dequantize error bounds ---- */

/* Worst-case |x - dequant(quant(x))| for a block. The scale d (and m) are stored as halves:
 * relative error 2^-11, plus 2^-25 absolute where they underflow. q_abs_max is the largest
 * |q| the scale multiplies; `steps` how many d the error may reach (1/2 for rounding, 1 where
 * the reference clamps the top level). */
static double block_bound(double d, double q_abs_max, double steps, double m)
{
    const double hd = fabs(d) * 0x1p-11 + 0x1p-25;
    const double hm = fabs(m) * 0x1p-11 + 0x1p-25;
    return steps * fabs(d) * (1 + 1e-6) + q_abs_max * hd + hm;
}

static void roundtrip_check(enum qtype t, double rel_rms_max)
{
    const int64_t n = 32 * 512;
    float *x = malloc((size_t)n * sizeof(float));
    REQUIRE(x);
    uint64_t s = 1234 + (uint64_t)t;
    fill_blocks(x, n, &s);
    /* Edge blocks: constant, one spike, tiny (the scale underflows half), huge (near half's
     * range), alternating signs with the largest magnitude negative. */
    for (int j = 0; j < 32; j++) {
        x[j] = 0.75f;
        x[32 + j] = j == 7 ? -3.0f : 0.0f;
        x[64 + j] = 1e-30f * (float)(j - 16);
        x[96 + j] = 3000.0f * (float)(j - 15);
        x[128 + j] = (j & 1 ? -1.0f : 1.0f) * (float)(j + 1);
    }
    void *q = quantize(t, x, n);
    float *y = dequantize(t, q, n);
    REQUIRE(q && y);
    double err2 = 0, ref2 = 0;
    int bad = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32, *yb = y + b * 32;
        float amax = 0, mn = FLT_MAX, mx = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
            mn = fminf(mn, xb[j]);
            mx = fmaxf(mx, xb[j]);
        }
        double bound;
        switch (t) {
        case QTYPE_F32: bound = 0; break;
        case QTYPE_F16: bound = amax * 0x1p-11 + 0x1p-25; break;
        case QTYPE_BF16: bound = amax * 0x1p-8; break;
        case QTYPE_Q4_0: bound = block_bound(amax / 8.0, 8, 1.0, 0); break;
        case QTYPE_Q5_0: bound = block_bound(amax / 16.0, 16, 1.0, 0); break;
        case QTYPE_Q4_1: bound = block_bound((mx - mn) / 15.0, 15, 0.5, mn); break;
        case QTYPE_Q5_1: bound = block_bound((mx - mn) / 31.0, 31, 0.5, mn); break;
        default: bound = block_bound(amax / 127.0, 127, 0.5, 0); break;
        }
        for (int j = 0; j < 32; j++) {
            const double e = fabs((double)yb[j] - xb[j]);
            if (!(e <= bound) && bad++ < 5)
                test__fail(__FILE__, __LINE__, "%s block %lld elem %d: %g -> %g (bound %g)",
                           quant_traits(t)->name, (long long)b, j, xb[j], yb[j], bound);
            if (amax >= 0.01f && amax <= 1000.0f) {
                err2 += e * e / ((double)amax * amax);
                ref2 += (double)xb[j] * xb[j] / ((double)amax * amax);
            }
        }
    }
    /* Error relative to the signal, each block normalised by its own magnitude; only blocks
     * whose scales are normal halves (smaller ones lose precision by design). */
    const double rel = sqrt(err2 / ref2);
    if (!(rel <= rel_rms_max))
        test__fail(__FILE__, __LINE__, "%s relative rms error %g > %g", quant_traits(t)->name, rel,
                   rel_rms_max);
    free(x);
    free(q);
    free(y);
}

/* The rms bounds sit ~25% above what these Gaussian blocks give (about d / sqrt(12)). */
TEST(quant_legacy_roundtrip_f32) { roundtrip_check(QTYPE_F32, 0); }
TEST(quant_legacy_roundtrip_f16) { roundtrip_check(QTYPE_F16, 2.5e-4); }
TEST(quant_legacy_roundtrip_bf16) { roundtrip_check(QTYPE_BF16, 2e-3); }
TEST(quant_legacy_roundtrip_q4_0) { roundtrip_check(QTYPE_Q4_0, 0.1); }
TEST(quant_legacy_roundtrip_q4_1) { roundtrip_check(QTYPE_Q4_1, 0.09); }
TEST(quant_legacy_roundtrip_q5_0) { roundtrip_check(QTYPE_Q5_0, 0.05); }
TEST(quant_legacy_roundtrip_q5_1) { roundtrip_check(QTYPE_Q5_1, 0.043); }
TEST(quant_legacy_roundtrip_q8_0) { roundtrip_check(QTYPE_Q8_0, 0.0062); }
TEST(quant_legacy_roundtrip_q8_1) { roundtrip_check(QTYPE_Q8_1, 0.0062); }

/* ---- fixtures: files quantized by an independent engine from the same F32 weights ---- */

/* Every tensor of type t in the file: our dequantization is close to the F32 original, and
 * quantizing the F32 original with our reference quantizer reproduces the file's bytes. */
static void fixture_check(const char *rel, enum qtype t, double rel_rms_max)
{
    char *pq = test_shared_path(rel), *pf = test_shared_path("fixtures/models/llama-F32.gguf");
    REQUIRE(pq && pf);
    struct gguf *gq = NULL, *gf = NULL;
    char err[256];
    REQUIRE(gguf_open(&gq, pq, err, sizeof(err)) == 0);
    REQUIRE(gguf_open(&gf, pf, err, sizeof(err)) == 0);
    int n_checked = 0, n_identical = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(gq); i++) {
        const struct gguf_tensor *tq = gguf_tensor_at(gq, i);
        if (tq->type != t)
            continue;
        const struct gguf_tensor *tf = gguf_find_tensor(gf, tq->name);
        REQUIRE(tf && tf->type == QTYPE_F32);
        const int64_t n = gguf_tensor_nelements(tq);
        REQUIRE(n == gguf_tensor_nelements(tf) && tq->size == quant_row_size(t, n));
        float *ref = malloc((size_t)n * sizeof(float));
        REQUIRE(ref);
        memcpy(ref, tf->data, (size_t)n * sizeof(float));
        float *got = dequantize(t, tq->data, n);
        void *requant = quantize(t, ref, n);
        REQUIRE(got && requant);
        double e2 = 0, r2 = 0;
        int finite = 1;
        for (int64_t k = 0; k < n; k++) {
            finite &= isfinite(got[k]);
            e2 += ((double)got[k] - ref[k]) * ((double)got[k] - ref[k]);
            r2 += (double)ref[k] * ref[k];
        }
        CHECK(finite);
        const double rel_err = sqrt(e2 / r2);
        if (!(rel_err <= rel_rms_max))
            test__fail(__FILE__, __LINE__, "%s: %s relative rms error %g > %g", rel, tq->name,
                       rel_err, rel_rms_max);
        if (!memcmp(requant, tq->data, tq->size))
            n_identical++;
        else
            test__fail(__FILE__, __LINE__, "%s: %s: our quantization differs from the file's",
                       rel, tq->name);
        n_checked++;
        free(ref);
        free(got);
        free(requant);
    }
    CHECK(n_checked >= 7); /* 2 layers x 7 matrices at least */
    CHECK_EQ_INT(n_identical, n_checked);
    gguf_close(gq);
    gguf_close(gf);
    free(pq);
    free(pf);
}

TEST(quant_legacy_fixture_f16) { fixture_check("fixtures/models/llama-F16.gguf", QTYPE_F16, 2.6e-4); }
TEST(quant_legacy_fixture_bf16) { fixture_check("fixtures/models/llama-BF16.gguf", QTYPE_BF16, 2.1e-3); }
TEST(quant_legacy_fixture_q4_0) { fixture_check("fixtures/models/llama-Q4_0.gguf", QTYPE_Q4_0, 0.11); }
TEST(quant_legacy_fixture_q4_1) { fixture_check("fixtures/models/llama-Q4_1.gguf", QTYPE_Q4_1, 0.1); }
TEST(quant_legacy_fixture_q5_0) { fixture_check("fixtures/models/llama-Q5_0.gguf", QTYPE_Q5_0, 0.055); }
TEST(quant_legacy_fixture_q5_1) { fixture_check("fixtures/models/llama-Q5_1.gguf", QTYPE_Q5_1, 0.048); }
TEST(quant_legacy_fixture_q8_0) { fixture_check("fixtures/models/llama-Q8_0.gguf", QTYPE_Q8_0, 0.0068); }

/* ---- dot products ---- */

struct dot_case {
    enum qtype t, vt;
    int n;
    void *x, *y;    /* quantized operands, at random offsets into xa, ya */
    void *xa, *ya;
    double exact;   /* dot of the dequantized operands, in double */
    double mag;     /* sum over elements of |d_x q_x * y| plus, for _1 types, sum of |m * s| */
    double s_slack; /* _1 types: s = half(d * sum q) vs half(d) * sum q, at most 2^-10 |m s| */
};

/* A copy of q (size bytes) at a random, naturally aligned offset (0..63 bytes) from the start of
 * its allocation, ending exactly at its end so that AddressSanitizer sees any overread. */
static void *relocate(void *q, size_t size, size_t align, uint64_t *s, void **alloc)
{
    const size_t k = align * (rng_next(s) % (64 / align));
    uint8_t *a = malloc(k + size);
    if (a && q)
        memcpy(a + k, q, size);
    free(q);
    *alloc = a;
    return a && q ? a + k : NULL;
}

/* Operands from random data (F types: any n; block types: whole blocks). */
static int dot_case_make(struct dot_case *c, enum qtype t, int n, uint64_t *s)
{
    memset(c, 0, sizeof(*c));
    c->t = t;
    c->vt = quant_traits(t)->vec_dot_type;
    c->n = n;
    float *xf = malloc((size_t)n * sizeof(float)), *yf = malloc((size_t)n * sizeof(float));
    if (!xf || !yf)
        return -1;
    fill_blocks(xf, n, s);
    for (int i = 0; i < n; i++)
        yf[i] = rng_gauss(s) * (1 + 4 * (float)rng_uniform(s));
    c->x = quantize(t, xf, n);
    c->y = quantize(c->vt, yf, n);
    /* Any alignment of the blocks or floats: heads, tails and split loads all get exercised. */
    const size_t xal = t == QTYPE_F32 ? 4 : 2, yal = c->vt == QTYPE_F32 ? 4 : 2;
    c->x = relocate(c->x, quant_row_size(t, n), xal, s, &c->xa);
    c->y = relocate(c->y, quant_row_size(c->vt, n), yal, s, &c->ya);
    float *xd = dequantize(t, c->x, n), *yd = dequantize(c->vt, c->y, n);
    if (!c->x || !c->y || !xd || !yd)
        return -1;
    for (int i = 0; i < n; i++) {
        const double m = is_1_type(t) ? block_m(t, c->x, i / 32) : 0.0;
        c->exact += (double)xd[i] * yd[i];
        c->mag += fabs(((double)xd[i] - m) * yd[i]);
    }
    if (is_1_type(t)) {
        for (int b = 0; b < n / 32; b++) {
            const struct block_q8_1 *yb = (const struct block_q8_1 *)c->y + b;
            const double ms = fabs(block_m(t, c->x, b) * fp16_to_fp32(yb->s));
            c->mag += ms;
            c->s_slack += ms * 0x1p-10;
        }
    }
    free(xf);
    free(yf);
    free(xd);
    free(yd);
    return 0;
}

static void dot_case_free(struct dot_case *c)
{
    free(c->xa);
    free(c->ya);
}

/* A float sum of k terms, in any order, is off by at most k * 2^-24 * sum|terms| (to first
 * order). The scalar oracle adds one term per block, with 2 more roundings per block for the
 * scale products (and 2 for m * s); the SIMD kernels add per lane, at most nb/4 + 8 terms plus
 * a 4-level reduction. 4 * nb + 64 covers both sides with room; a real bug (a block or lane
 * lost, a wrong nibble order) is off by about mag / sqrt(n), orders of magnitude more. */
static double dot_tol(const struct dot_case *c)
{
    const int k = quant_traits(c->t)->block_size == 1 ? c->n / 8 : c->n / 32;
    return (4.0 * k + 64) * 0x1p-24 * c->mag;
}

TEST(quant_legacy_vec_dot_scalar_vs_dequantized)
{
    uint64_t s = 99;
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const enum qtype t = weight_types[k];
        for (int rep = 0; rep < 20; rep++) {
            const int bs = (int)quant_traits(t)->block_size;
            const int n = bs == 1 ? 1 + (int)(rng_next(&s) % 3000) : 32 * (1 + (int)(rng_next(&s) % 200));
            struct dot_case c;
            REQUIRE(dot_case_make(&c, t, n, &s) == 0);
            float got;
            quant_traits(t)->vec_dot(n, &got, c.x, c.y);
            /* The float types' oracle sums in double: only the final rounding is left. */
            const double tol = bs == 1 ? 0x1p-23 * c.mag : (2.0 * n / 32 + 8) * 0x1p-24 * c.mag + c.s_slack;
            if (!(fabs(got - c.exact) <= tol))
                test__fail(__FILE__, __LINE__, "%s n=%d: %.9g vs %.9g (tol %g)",
                           quant_traits(t)->name, n, got, c.exact, tol);
            dot_case_free(&c);
        }
    }
}

/* A two-block example computed by hand, at every level: Q4_0 x Q8_0 with known sums. */
TEST(quant_legacy_vec_dot_known)
{
    struct block_q4_0 x[2];
    struct block_q8_0 y[2];
    for (int b = 0; b < 2; b++) {
        x[b].d = b ? 0x4000 : 0x3c00; /* 1, 2 */
        y[b].d = 0x3800;              /* 0.5 */
        for (int j = 0; j < 16; j++)
            x[b].qs[j] = (uint8_t)(9 | 7 << 4); /* elements 0..15: +1, 16..31: -1 */
        for (int j = 0; j < 32; j++)
            y[b].qs[j] = (int8_t)(j < 16 ? 3 : 1);
    }
    /* per block: 16 * (1 * 3) + 16 * (-1 * 1) = 32; total 32 * 1 * 0.5 + 32 * 2 * 0.5 = 48 */
    for (int l = 0; l < QUANT_LEVEL_COUNT; l++) {
        if (l > (int)quant_level_best())
            break;
        float got = 0;
        quant_vec_dot_at(QTYPE_Q4_0, (enum quant_level)l)(64, &got, x, y);
        CHECK(got == 48.0f);
    }
}

static bool level_available(enum quant_level l)
{
#ifdef TANDEM_NO_X86
    return l == QUANT_LEVEL_SCALAR;
#else
    const struct cpu_features *f = cpu_features_get();
    return l == QUANT_LEVEL_SCALAR || (l == QUANT_LEVEL_AVX2 && f->avx2) ||
           (l == QUANT_LEVEL_AVX512 && f->avx512);
#endif
}

/* SIMD kernels against the scalar oracle, on every length from 1 to 20 blocks (every tail
 * path) and random lengths up to 400 blocks. */
static void simd_dot_check(enum quant_level l)
{
    uint64_t s = 7 + (uint64_t)l;
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const enum qtype t = weight_types[k];
        const int bs = (int)quant_traits(t)->block_size;
        quant_vec_dot_fn simd = quant_vec_dot_at(t, l), ref = quant_traits(t)->vec_dot;
        REQUIRE(simd && simd != ref);
        for (int rep = 0; rep < 80; rep++) {
            int n;
            if (bs == 1)
                n = rep < 70 ? 1 + rep : 1 + (int)(rng_next(&s) % 5000);
            else
                n = 32 * (rep < 20 ? 1 + rep : 1 + (int)(rng_next(&s) % 400));
            struct dot_case c;
            REQUIRE(dot_case_make(&c, t, n, &s) == 0);
            float want, got;
            ref(n, &want, c.x, c.y);
            simd(n, &got, c.x, c.y);
            const double tol = dot_tol(&c);
            if (!(fabs((double)got - want) <= tol))
                test__fail(__FILE__, __LINE__, "%s level %d n=%d: %.9g vs scalar %.9g (tol %g)",
                           quant_traits(t)->name, (int)l, n, got, want, tol);
            dot_case_free(&c);
        }
    }
}

TEST(quant_legacy_vec_dot_avx2_vs_scalar)
{
    if (!level_available(QUANT_LEVEL_AVX2)) {
        fprintf(stderr, "    skipped: no AVX2\n");
        return;
    }
    simd_dot_check(QUANT_LEVEL_AVX2);
}

TEST(quant_legacy_vec_dot_avx512_vs_scalar)
{
    if (!level_available(QUANT_LEVEL_AVX512)) {
        fprintf(stderr, "    skipped: no AVX-512\n");
        return;
    }
    simd_dot_check(QUANT_LEVEL_AVX512);
}

/* The AVX-512 kernels without VNNI / BF16 (what an AVX-512 CPU lacking them runs). */
TEST(quant_legacy_vec_dot_avx512_plain_vs_scalar)
{
    if (!level_available(QUANT_LEVEL_AVX512)) {
        fprintf(stderr, "    skipped: no AVX-512\n");
        return;
    }
#ifndef TANDEM_NO_X86
    quant__legacy_avx512_extensions(0, 0);
    simd_dot_check(QUANT_LEVEL_AVX512);
    quant__legacy_avx512_extensions(1, 1);
#endif
}

/* ---- activation quantizers: SIMD output equals the reference byte for byte ---- */

static float rng_any_float(uint64_t *s)
{
    const uint32_t u = (uint32_t)rng_next(s);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Input of n floats of one of several kinds; kinds 0..7 are whole-row patterns, the rest mix
 * edge-case blocks into random data. */
static void fill_activation(float *x, int n, int kind, uint64_t *s)
{
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = rng_gauss(s); break;
        case 1: x[i] = rng_any_float(s); break;                          /* NaN, inf, subnormals */
        case 2: x[i] = 0.0f; break;
        case 3: x[i] = rng_gauss(s) * 1e-41f; break;                     /* subnormal */
        case 4: x[i] = rng_gauss(s) * 1e37f; break;                      /* near FLT_MAX */
        case 5: x[i] = (float)((int)(rng_next(s) % 255) - 127) + 0.5f; break; /* ties */
        case 6: x[i] = -fabsf(rng_gauss(s)); break;                      /* all negative */
        case 7: x[i] = (float)ldexp(rng_gauss(s), (int)(rng_next(s) % 280) - 150); break;
        default: x[i] = rng_gauss(s) * (float)pow(10.0, (double)(rng_next(s) % 12) - 6); break;
        }
    }
    if (kind == 5 && n >= 32)
        for (int i = 0; i < n; i += 32)
            x[i] = 127.0f; /* d = 1 exactly, so x * id keeps the .5 ties */
    if (kind >= 8) {
        /* Sprinkle special values. */
        const float special[] = {FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN, -0.0f, 1e-45f,
                                 -1e-45f, 65504.0f, 65520.0f, 1e-38f, 0.5f};
        for (int k = 0; k < 1 + n / 16; k++)
            x[rng_next(s) % (uint64_t)n] = special[rng_next(s) % 12];
    }
}

static void simd_quantize_check(enum quant_level l)
{
    uint64_t s = 4242 + (uint64_t)l;
    for (size_t k = 0; k < N_ACT_TYPES; k++) {
        const enum qtype t = act_types[k];
        const int bs = (int)quant_traits(t)->block_size;
        quant_from_float_fn simd = quant_from_float_at(t, l), ref = quant_traits(t)->from_float;
        REQUIRE(simd && simd != ref);
        int bad = 0;
        for (int rep = 0; rep < 400; rep++) {
            const int n = bs * (1 + (int)(rng_next(&s) % (bs == 1 ? 200 : 40)));
            /* Input and SIMD output at random offsets: every head/tail path and alignment. */
            const size_t sz = quant_row_size(t, n), kx = rng_next(&s) % 16, kb = 2 * (rng_next(&s) % 32);
            float *xa = malloc((kx + (size_t)n) * sizeof(float)), *x = xa + kx;
            uint8_t *a = malloc(sz + 1), *ba = malloc(kb + sz + 1), *b = ba + kb;
            REQUIRE(xa && a && ba);
            fill_activation(x, n, rep % 12, &s);
            memset(a, 0xa5, sz + 1);
            memset(b, 0xa5, sz + 1);
            ref(x, a, n);
            simd(x, b, n);
            if (memcmp(a, b, sz + 1) && bad++ < 3) {
                size_t at = 0;
                while (a[at] == b[at])
                    at++;
                test__fail(__FILE__, __LINE__, "%s level %d n=%d kind %d: byte %zu %02x vs %02x",
                           quant_traits(t)->name, (int)l, n, rep % 12, at, a[at], b[at]);
            }
            free(xa);
            free(a);
            free(ba);
        }
    }
}

TEST(quant_legacy_quantize_avx2_bit_identical)
{
    if (!level_available(QUANT_LEVEL_AVX2)) {
        fprintf(stderr, "    skipped: no AVX2\n");
        return;
    }
    simd_quantize_check(QUANT_LEVEL_AVX2);
}

TEST(quant_legacy_quantize_avx512_bit_identical)
{
    if (!level_available(QUANT_LEVEL_AVX512)) {
        fprintf(stderr, "    skipped: no AVX-512\n");
        return;
    }
    simd_quantize_check(QUANT_LEVEL_AVX512);
}

/* Every float in [0.25, 128) (alternating signs), quantized with d = id = 1 so that x * id = x:
 * the SIMD roundf agrees with the scalar one on all 75 million of them. This is the range
 * x * id covers in a Q8 block; below 0.25 everything rounds to 0 either way. */
TEST(quant_legacy_quantize_q8_rounding_exhaustive)
{
    float *x = malloc(32 * 4096 * sizeof(float));
    struct block_q8_0 *a = malloc(4096 * sizeof(*a)), *b = malloc(4096 * sizeof(*b));
    REQUIRE(x && a && b);
    int bad = 0;
    for (uint32_t base = 0x3e800000u; base < 0x43000000u && bad < 3; base += 31 * 4096) {
        for (int blk = 0; blk < 4096; blk++) {
            x[blk * 32] = -127.0f; /* amax 127: d = 1, id = 1 */
            for (int j = 1; j < 32; j++) {
                const uint32_t u = base + (uint32_t)(blk * 31 + j - 1);
                float f;
                memcpy(&f, &u, 4);
                x[blk * 32 + j] = u < 0x43000000u ? (j & 1 ? -f : f) : 0.0f;
            }
        }
        quant__from_float_q8_0(x, a, 32 * 4096);
        for (int l = QUANT_LEVEL_AVX2; l < QUANT_LEVEL_COUNT; l++) {
            if (!level_available((enum quant_level)l))
                continue;
            quant_from_float_at(QTYPE_Q8_0, (enum quant_level)l)(x, b, 32 * 4096);
            if (memcmp(a, b, 4096 * sizeof(*a)) && bad++ < 3)
                test__fail(__FILE__, __LINE__, "level %d differs near 0x%08x", l, base);
        }
    }
    free(x);
    free(a);
    free(b);
}
