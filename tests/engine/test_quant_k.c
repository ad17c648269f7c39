/* K-quants: layouts (hand-built blocks and real GGUF fixtures), quantizer error, dot kernels. */
#include "test.h"

#include <float.h>
#include <stdint.h>

#include "base/cpu.h"
#include "engine/gguf.h"
#include "engine/quant_impl.h"

#ifndef TANDEM_NO_X86
/* quant_k_avx512.c: -1 decides from the CPU, 0 forces the plain AVX-512BW path, 1 forces VNNI
 * (only honoured where the CPU has VNNI). */
void quant__k_avx512_set_vnni(int mode);
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

static void fill_gauss(float *x, int64_t n, uint64_t seed, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * rng_gauss(&seed);
}

static void fill_bytes(void *p, size_t n, uint64_t *s)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rng_next(s);
}

/* A random finite half in [2^-14, 2^-4) of either sign: small enough that sums stay tame. */
static uint16_t rng_half(uint64_t *s)
{
    return (uint16_t)(((rng_next(s) & 1) << 15) | ((1 + rng_next(s) % 10) << 10) |
                      (rng_next(s) & 0x3ff));
}

static double rel_rmse(const float *ref, const float *got, int64_t n)
{
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)got[i] - ref[i];
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

static const enum qtype k_types[] = {QTYPE_Q2_K, QTYPE_Q3_K, QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K};
#define N_K_TYPES 5

/* Random but well-formed x blocks (all bit patterns in the quant bits and scales, sane fp16
 * super-scales) and y blocks (random q8 with consistent bsums and d). */
static void random_x_blocks(enum qtype t, void *x, int nb, uint64_t *s)
{
    const size_t ts = quant_traits(t)->type_size;
    fill_bytes(x, ts * (size_t)nb, s);
    for (int i = 0; i < nb; i++) {
        uint8_t *b = (uint8_t *)x + ts * (size_t)i;
        uint16_t d = rng_half(s), dmin = rng_half(s);
        switch (t) {
        case QTYPE_Q2_K:
            memcpy(b + offsetof(struct block_q2_K, d), &d, 2);
            memcpy(b + offsetof(struct block_q2_K, dmin), &dmin, 2);
            break;
        case QTYPE_Q3_K:
            memcpy(b + offsetof(struct block_q3_K, d), &d, 2);
            break;
        case QTYPE_Q4_K:
            memcpy(b + offsetof(struct block_q4_K, d), &d, 2);
            memcpy(b + offsetof(struct block_q4_K, dmin), &dmin, 2);
            break;
        case QTYPE_Q5_K:
            memcpy(b + offsetof(struct block_q5_K, d), &d, 2);
            memcpy(b + offsetof(struct block_q5_K, dmin), &dmin, 2);
            break;
        default:
            memcpy(b + offsetof(struct block_q6_K, d), &d, 2);
            break;
        }
    }
}

static void random_y_blocks(struct block_q8_K *y, int nb, uint64_t *s, int extreme)
{
    for (int i = 0; i < nb; i++) {
        fill_bytes(y[i].qs, QK_K, s);
        if (extreme) /* the corners maddubs must not saturate on */
            for (int j = 0; j < QK_K; j++)
                y[i].qs[j] = (rng_next(s) & 1) ? -128 : 127;
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = (float)(rng_uniform(s) * 0.1 - 0.05);
    }
}

/* Sum of |terms| of a dot product, as the kernels split them: x = a - b with b the value the
 * block decodes to when all its quant bits are zero (the min or the -4/-32 offset). Rounding
 * differences between kernels are bounded by a small multiple of FLT_EPSILON times this. */
static double dot_mass(enum qtype t, const void *x, const struct block_q8_K *y, int n)
{
    const struct qtype_traits *tr = quant_traits(t);
    const int nb = n / QK_K;
    float *xf = malloc(sizeof(float) * (size_t)n), *zf = malloc(sizeof(float) * (size_t)n);
    float *yf = malloc(sizeof(float) * (size_t)n);
    uint8_t *z = malloc(tr->type_size * (size_t)nb);
    memcpy(z, x, tr->type_size * (size_t)nb);
    for (int i = 0; i < nb; i++) {
        uint8_t *b = z + tr->type_size * (size_t)i;
        switch (t) {
        case QTYPE_Q2_K: memset(b + offsetof(struct block_q2_K, qs), 0, QK_K / 4); break;
        case QTYPE_Q3_K: memset(b, 0, QK_K / 8 + QK_K / 4); break;
        case QTYPE_Q4_K: memset(b + offsetof(struct block_q4_K, qs), 0, QK_K / 2); break;
        case QTYPE_Q5_K: memset(b + offsetof(struct block_q5_K, qh), 0, QK_K / 8 + QK_K / 2); break;
        default: memset(b, 0, QK_K / 2 + QK_K / 4); break;
        }
    }
    tr->to_float(x, xf, n);
    tr->to_float(z, zf, n);
    quant__to_float_q8_K(y, yf, n);
    double mass = 0;
    for (int i = 0; i < n; i++)
        mass += (fabs((double)xf[i] - zf[i]) + fabs(zf[i])) * fabs(yf[i]);
    free(xf);
    free(zf);
    free(yf);
    free(z);
    return mass;
}

/* ---- traits and dispatch ---- */

TEST(quant_k_traits_complete)
{
    for (int k = 0; k < N_K_TYPES; k++) {
        const struct qtype_traits *tr = quant_traits(k_types[k]);
        REQUIRE(tr);
        CHECK(tr->to_float && tr->from_float && tr->vec_dot);
        CHECK_EQ_INT(tr->vec_dot_type, QTYPE_Q8_K);
        CHECK_EQ_INT(tr->block_size, QK_K);
        CHECK(quant_vec_dot_at(k_types[k], QUANT_LEVEL_SCALAR) == tr->vec_dot);
    }
    const struct qtype_traits *q8 = quant_traits(QTYPE_Q8_K);
    REQUIRE(q8);
    CHECK(q8->to_float && q8->from_float);
    const int level = cpu_level();
    for (int l = QUANT_LEVEL_AVX2; l <= level; l++) {
        CHECK(quant_from_float_at(QTYPE_Q8_K, (enum quant_level)l) !=
              quant_from_float_at(QTYPE_Q8_K, (enum quant_level)(l - 1)));
        for (int k = 0; k < N_K_TYPES; k++)
            CHECK(quant_vec_dot_at(k_types[k], (enum quant_level)l) !=
                  quant_vec_dot_at(k_types[k], (enum quant_level)(l - 1)));
    }
}

/* ---- known-answer dequantization of hand-built blocks ---- */

/* Q4_K/Q5_K scale bytes for scales sc[8] and mins m[8] (6 bits each), written out byte by
 * byte from the format description rather than by the quantizer's packer. */
static void pack_k4_by_hand(uint8_t s[12], const int sc[8], const int m[8])
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

static const int hand_sc[8] = {1, 63, 17, 32, 48, 5, 62, 33};
static const int hand_m[8] = {63, 0, 31, 47, 16, 58, 7, 40};

TEST(quant_k_known_q4_K)
{
    struct block_q4_K b;
    memset(&b, 0, sizeof(b));
    b.d = fp16_from_fp32(0.5f);
    b.dmin = fp16_from_fp32(0.25f);
    pack_k4_by_hand(b.scales, hand_sc, hand_m);
    /* value e has level (e * 7 + e / 32) % 16 */
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 7 + e / 32) % 16, chunk = e / 64, hi = (e / 32) & 1, l = e % 32;
        b.qs[32 * chunk + l] |= (uint8_t)(q << (4 * hi));
    }
    float out[QK_K];
    quant__to_float_q4_K(&b, out, QK_K);
    int bad = 0;
    for (int e = 0; e < QK_K; e++) {
        const int j = e / 32, q = (e * 7 + e / 32) % 16;
        bad += out[e] != 0.5f * hand_sc[j] * q - 0.25f * hand_m[j];
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(out[32] == 0.5f * 63 * ((32 * 7 + 1) % 16) - 0);
}

TEST(quant_k_known_q5_K)
{
    struct block_q5_K b;
    memset(&b, 0, sizeof(b));
    b.d = fp16_from_fp32(0.125f);
    b.dmin = fp16_from_fp32(2.0f);
    pack_k4_by_hand(b.scales, hand_sc, hand_m);
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 13 + e / 64) % 32, chunk = e / 64, hi = (e / 32) & 1, l = e % 32;
        b.qs[32 * chunk + l] |= (uint8_t)((q & 15) << (4 * hi));
        b.qh[l] |= (uint8_t)((q >> 4) << (e / 32));
    }
    float out[QK_K];
    quant__to_float_q5_K(&b, out, QK_K);
    int bad = 0;
    for (int e = 0; e < QK_K; e++) {
        const int j = e / 32, q = (e * 13 + e / 64) % 32;
        bad += out[e] != 0.125f * hand_sc[j] * q - 2.0f * hand_m[j];
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(quant_k_known_q6_K)
{
    struct block_q6_K b;
    memset(&b, 0, sizeof(b));
    b.d = fp16_from_fp32(0.0625f);
    for (int j = 0; j < 16; j++)
        b.scales[j] = (int8_t)(j * 17 - 128);
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 11 + e / 16) % 64; /* stored level, value q - 32 */
        const int half = e / 128, r = e % 128, part = r / 32, l = r % 32;
        b.ql[64 * half + l + 32 * (part & 1)] |= (uint8_t)((q & 15) << (4 * (part >> 1)));
        b.qh[32 * half + l] |= (uint8_t)((q >> 4) << (2 * part));
    }
    float out[QK_K];
    quant__to_float_q6_K(&b, out, QK_K);
    int bad = 0;
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 11 + e / 16) % 64 - 32;
        bad += out[e] != 0.0625f * (float)b.scales[e / 16] * q;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(quant_k_known_q3_K)
{
    struct block_q3_K b;
    memset(&b, 0, sizeof(b));
    b.d = fp16_from_fp32(0.5f);
    int sc[16];
    for (int j = 0; j < 16; j++) {
        sc[j] = (j * 23 + 5) % 64 - 32; /* covers both signs and the high bits */
        const int u = sc[j] + 32;
        if (j < 8)
            b.scales[j] |= (uint8_t)(u & 15);
        else
            b.scales[j - 8] |= (uint8_t)((u & 15) << 4);
        b.scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
    }
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 5 + e / 16) % 8 - 4; /* -4..3 */
        const int u = q + 4, half = e / 128, r = e % 128, shift = 2 * (r / 32), l = r % 32;
        b.qs[32 * half + l] |= (uint8_t)((u & 3) << shift);
        if (u & 4) /* high bit set means "no -4" */
            b.hmask[l] |= (uint8_t)(1u << (e / 32));
    }
    float out[QK_K];
    quant__to_float_q3_K(&b, out, QK_K);
    int bad = 0;
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 5 + e / 16) % 8 - 4;
        bad += out[e] != 0.5f * sc[e / 16] * q;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(sc[1] == -4 && out[16] == 0.5f * -4 * ((16 * 5 + 1) % 8 - 4));
}

TEST(quant_k_known_q2_K)
{
    struct block_q2_K b;
    memset(&b, 0, sizeof(b));
    b.d = fp16_from_fp32(0.25f);
    b.dmin = fp16_from_fp32(0.5f);
    for (int j = 0; j < 16; j++)
        b.scales[j] = (uint8_t)((j ^ 5) | ((15 - j) << 4));
    for (int e = 0; e < QK_K; e++) {
        const int q = (e * 3 + e / 16) % 4, half = e / 128, r = e % 128;
        b.qs[32 * half + r % 32] |= (uint8_t)(q << (2 * (r / 32)));
    }
    float out[QK_K];
    quant__to_float_q2_K(&b, out, QK_K);
    int bad = 0;
    for (int e = 0; e < QK_K; e++) {
        const int j = e / 16, q = (e * 3 + e / 16) % 4;
        bad += out[e] != 0.25f * (j ^ 5) * q - 0.5f * (15 - j);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Q8_K as the reference engine quantizes activations: iscale = -127 / (the signed value of
 * largest magnitude, the first one on ties), levels rounded half to even, at most 127. */
TEST(quant_k_known_q8_K)
{
    float x[QK_K];
    for (int j = 0; j < QK_K; j++)
        x[j] = (float)((j % 7) - 3) * 0.25f; /* -0.75 .. 0.75 */
    x[100] = -1.984375f; /* -127/64: largest magnitude, negative, so iscale = 64 exactly */
    x[200] = 1.984375f;  /* same magnitude later: the first one sets the sign */
    x[7] = 0.5078125f;   /* 32.5 after scaling: a tie, rounds to even 32 */
    x[8] = 0.5234375f;   /* 33.5 -> 34 */
    struct block_q8_K b;
    quant__from_float_q8_K(x, &b, QK_K);
    CHECK(b.d == 1.0f / 64.0f);
    CHECK_EQ_INT(b.qs[100], -127);
    CHECK_EQ_INT(b.qs[200], 127);
    CHECK_EQ_INT(b.qs[7], 32);
    CHECK_EQ_INT(b.qs[8], 34);
    CHECK_EQ_INT(b.qs[0], -48); /* -0.75 * 64 */
    int bad = 0;
    for (int j = 0; j < QK_K / 16; j++) {
        int sum = 0;
        for (int l = 0; l < 16; l++)
            sum += b.qs[16 * j + l];
        bad += sum != b.bsums[j];
    }
    CHECK_EQ_INT(bad, 0);
    float back[QK_K];
    quant__to_float_q8_K(&b, back, QK_K);
    CHECK(back[100] == -1.984375f && back[0] == -0.75f);
}

/* ---- quantize -> dequantize error on Gaussian data ---- */

/* Relative RMSE of quantize -> dequantize on N(0, s^2) data, s from 1e-2 to 1e2 (measured:
 * Q2_K 0.2968, Q3_K 0.1520, Q4_K 0.0717, Q5_K 0.0365, Q6_K 0.0180, Q8_K 0.0070; the fixtures,
 * made by another tool from the same algorithms, show the same), each bound with ~5% margin.
 * Far smaller weights (s < 1e-3) lose precision to the fp16 super-scales, a limit of the
 * format shared with other implementations. */
static double rmse_bound(enum qtype t)
{
    switch (t) {
    case QTYPE_Q2_K: return 0.31;
    case QTYPE_Q3_K: return 0.16;
    case QTYPE_Q4_K: return 0.075;
    case QTYPE_Q5_K: return 0.038;
    case QTYPE_Q6_K: return 0.019;
    case QTYPE_Q8_K: return 0.0074;
    default: return 0;
    }
}

static void roundtrip_check(enum qtype t, float scale)
{
    const int64_t n = 64 * QK_K;
    const struct qtype_traits *tr = quant_traits(t);
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    void *q = malloc(quant_row_size(t, n));
    fill_gauss(x, n, 1234 + t, scale);
    tr->from_float(x, q, n);
    tr->to_float(q, y, n);
    const double e = rel_rmse(x, y, n);
    if (!(e <= rmse_bound(t)))
        fprintf(stderr, "    %s rel rmse %.5f > %.5f (scale %g)\n", tr->name, e, rmse_bound(t),
                scale);
    CHECK(e <= rmse_bound(t));
    free(x);
    free(y);
    free(q);
}

#define ROUNDTRIP(T)                          \
    TEST(quant_k_roundtrip_##T)               \
    {                                         \
        roundtrip_check(QTYPE_##T, 1.0f);     \
        roundtrip_check(QTYPE_##T, 0.01f);    \
        roundtrip_check(QTYPE_##T, 100.0f);   \
    }
ROUNDTRIP(Q2_K)
ROUNDTRIP(Q3_K)
ROUNDTRIP(Q4_K)
ROUNDTRIP(Q5_K)
ROUNDTRIP(Q6_K)
ROUNDTRIP(Q8_K)

/* ---- edge cases of the weight quantizers ---- */

TEST(quant_k_quantize_edge_cases)
{
    float x[2 * QK_K], y[2 * QK_K];
    uint8_t q[2 * sizeof(struct block_q6_K)];
    for (int k = 0; k < N_K_TYPES; k++) {
        const struct qtype_traits *tr = quant_traits(k_types[k]);
        /* zeros, then a constant block */
        memset(x, 0, sizeof(x));
        for (int j = QK_K; j < 2 * QK_K; j++)
            x[j] = -3.0f;
        tr->from_float(x, q, 2 * QK_K);
        tr->to_float(q, y, 2 * QK_K);
        int bad = 0;
        for (int j = 0; j < QK_K; j++)
            bad += y[j] != 0.0f;
        CHECK_EQ_INT(bad, 0);
        CHECK(rel_rmse(x + QK_K, y + QK_K, QK_K) < 0.02);
        /* all positive; all negative and large */
        uint64_t s = 99;
        for (int j = 0; j < 2 * QK_K; j++)
            x[j] = (float)rng_uniform(&s) + 0.5f;
        tr->from_float(x, q, 2 * QK_K);
        tr->to_float(q, y, 2 * QK_K);
        CHECK(rel_rmse(x, y, 2 * QK_K) <= rmse_bound(k_types[k]));
        for (int j = 0; j < 2 * QK_K; j++)
            x[j] = -1000.0f * ((float)rng_uniform(&s) + 0.5f);
        tr->from_float(x, q, 2 * QK_K);
        tr->to_float(q, y, 2 * QK_K);
        CHECK(rel_rmse(x, y, 2 * QK_K) <= rmse_bound(k_types[k]));
        /* tiny values, below what an fp16 scale holds: finite and no larger than the input */
        for (int j = 0; j < 2 * QK_K; j++)
            x[j] = 1e-30f * rng_gauss(&s);
        tr->from_float(x, q, 2 * QK_K);
        tr->to_float(q, y, 2 * QK_K);
        int odd = 0;
        for (int j = 0; j < 2 * QK_K; j++)
            odd += !isfinite(y[j]) || fabsf(y[j]) > 1e-29f;
        CHECK_EQ_INT(odd, 0);
        /* a lone spike, positive then negative */
        for (int sign = -1; sign <= 1; sign += 2) {
            memset(x, 0, sizeof(x));
            x[37] = 5.0f * sign;
            tr->from_float(x, q, QK_K);
            tr->to_float(q, y, QK_K);
            CHECK_NEAR(y[37], x[37], 0.05 * 5.0);
            CHECK(fabsf(y[36]) < 0.5f);
        }
    }
}

/* ---- fixtures: real GGUF files quantized by another tool from the same F32 weights ---- */

/* Every K-quant tensor in the fixture decodes close to the F32 original (a wrong layout gives
 * a relative RMSE near 1.4), and our quantizer, run on the F32 original, reproduces every
 * block byte for byte: same layout, same algorithms. Returns the K tensors checked. */
static int fixture_check(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "fixtures/models/%s.gguf", name);
    char *pq = test_shared_path(rel), *pf = test_shared_path("fixtures/models/llama-F32.gguf");
    struct gguf *gq = NULL, *gf = NULL;
    char err[256];
    int n_tensors = 0;
    if (gguf_open(&gq, pq, err, sizeof(err)) || gguf_open(&gf, pf, err, sizeof(err))) {
        test__fail(__FILE__, __LINE__, "%s", err);
        goto out;
    }
    for (uint64_t i = 0; i < gguf_tensor_count(gq); i++) {
        const struct gguf_tensor *tq = gguf_tensor_at(gq, i);
        if (tq->type < QTYPE_Q2_K || tq->type > QTYPE_Q6_K)
            continue;
        const struct qtype_traits *tr = quant_traits(tq->type);
        const struct gguf_tensor *tf = gguf_find_tensor(gf, tq->name);
        const int64_t n = gguf_tensor_nelements(tq);
        if (!tf || tf->type != QTYPE_F32 || n != gguf_tensor_nelements(tf) || n % QK_K ||
            tq->size != quant_row_size(tq->type, n)) {
            test__fail(__FILE__, __LINE__, "%s %s: no matching F32 tensor", name, tq->name);
            continue;
        }
        float *ref = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        uint8_t *requant = malloc(tq->size);
        memcpy(ref, tf->data, sizeof(float) * n);
        tr->to_float(tq->data, got, n);
        const double e = rel_rmse(ref, got, n);
        if (!(e <= rmse_bound(tq->type)))
            test__fail(__FILE__, __LINE__, "%s %s (%s): rel rmse %.4f > %.4f", name, tq->name,
                       tr->name, e, rmse_bound(tq->type));
        tr->from_float(ref, requant, n);
        int64_t differ = 0;
        for (int64_t b = 0; b < n / QK_K; b++)
            differ += memcmp(requant + b * tr->type_size,
                             (const uint8_t *)tq->data + b * tr->type_size, tr->type_size) != 0;
        if (differ)
            test__fail(__FILE__, __LINE__, "%s %s (%s): %lld of %lld blocks requantize differently",
                       name, tq->name, tr->name, (long long)differ, (long long)(n / QK_K));
        free(ref);
        free(got);
        free(requant);
        n_tensors++;
    }
out:
    gguf_close(gq);
    gguf_close(gf);
    free(pq);
    free(pf);
    return n_tensors;
}

TEST(quant_k_fixture_q2_K) { CHECK(fixture_check("llama-Q2_K") >= 16); }
TEST(quant_k_fixture_q3_K_M) { CHECK(fixture_check("llama-Q3_K_M") >= 16); }
TEST(quant_k_fixture_q4_K_M) { CHECK(fixture_check("llama-Q4_K_M") >= 16); }
TEST(quant_k_fixture_q5_K_M) { CHECK(fixture_check("llama-Q5_K_M") >= 16); }
TEST(quant_k_fixture_q6_K) { CHECK(fixture_check("llama-Q6_K") >= 16); }

/* ---- dot products ---- */

/* The scalar kernel against a double-precision dot of the dequantized operands. */
TEST(quant_k_vec_dot_scalar_matches_dequantized)
{
    const int n = 8 * QK_K;
    float *xf = malloc(sizeof(float) * n), *yf = malloc(sizeof(float) * n);
    float *a = malloc(sizeof(float) * n);
    struct block_q8_K *y = malloc(sizeof(*y) * (n / QK_K));
    void *x = malloc(sizeof(struct block_q6_K) * (n / QK_K));
    for (int k = 0; k < N_K_TYPES; k++) {
        const struct qtype_traits *tr = quant_traits(k_types[k]);
        for (int trial = 0; trial < 4; trial++) {
            fill_gauss(a, n, 10 * k + trial, 1.0f);
            tr->from_float(a, x, n);
            fill_gauss(a, n, 100 + 10 * k + trial, 2.0f);
            quant__from_float_q8_K(a, y, n);
            tr->to_float(x, xf, n);
            quant__to_float_q8_K(y, yf, n);
            double ref = 0;
            for (int i = 0; i < n; i++)
                ref += (double)xf[i] * yf[i];
            float got;
            tr->vec_dot(n, &got, x, y);
            const double mass = dot_mass(k_types[k], x, y, n);
            CHECK_NEAR(got, ref, 1e-5 * mass);
        }
    }
    free(xf);
    free(yf);
    free(a);
    free(y);
    free(x);
}

/* SIMD kernels against the scalar oracle on random blocks. Integer sub-block sums are exact
 * in both, so they differ only in float rounding: the scalar rounds one product per block
 * and sums blocks in order, the SIMD kernels scale 8 int32 lanes per block, accumulate per
 * lane and add the lanes at the end. Each of those ~(blocks + 10) roundings is within eps/2
 * of a partial sum bounded by the mass (sum of |terms|); random-walk accumulation keeps the
 * observed difference below 0.3 eps * mass; 8 eps * mass leaves a wide margin, while one
 * wrong level in a well-scaled sub-block moves the result by hundreds of eps * mass
 * (quant_k_vec_dot_detects_one_level). AVX-512 must moreover equal AVX2 bit for bit: it folds its
 * 16 int32 lanes into AVX2's 8 and repeats AVX2's float steps. */
static void simd_dot_check(enum quant_level level)
{
    if (cpu_level() < (int)level)
        return;
    const int max_nb = 32;
    uint64_t s = 42 + level;
    for (int k = 0; k < N_K_TYPES; k++) {
        const enum qtype t = k_types[k];
        const quant_vec_dot_fn ref_fn = quant_vec_dot_at(t, QUANT_LEVEL_SCALAR);
        const quant_vec_dot_fn avx2_fn = quant_vec_dot_at(t, QUANT_LEVEL_AVX2);
        const quant_vec_dot_fn fn = quant_vec_dot_at(t, level);
        REQUIRE(fn && fn != ref_fn);
        int bad = 0, not_avx2 = 0;
        double worst = 0;
        for (int trial = 0; trial < 300; trial++) {
            const int nb = 1 + (int)(rng_next(&s) % max_nb);
            /* exact sizes, so the sanitizer build catches a read past the last block */
            struct block_q8_K *y = malloc(sizeof(*y) * nb);
            void *x = malloc(quant_traits(t)->type_size * nb);
            random_x_blocks(t, x, nb, &s);
            random_y_blocks(y, nb, &s, trial % 5 == 0);
            float ref, got, got2;
            ref_fn(nb * QK_K, &ref, x, y);
            fn(nb * QK_K, &got, x, y);
            avx2_fn(nb * QK_K, &got2, x, y);
            not_avx2 += memcmp(&got, &got2, sizeof(float)) != 0;
            const double mass = dot_mass(t, x, y, nb * QK_K);
            const double tol = 8 * FLT_EPSILON * mass;
            worst = fmax(worst, fabs((double)got - ref) / (FLT_EPSILON * mass));
            if (!(fabs((double)got - ref) <= tol)) {
                if (bad++ < 3)
                    fprintf(stderr, "    %s level %d nb %d: %.9g vs %.9g (tol %g)\n",
                            quant_traits(t)->name, level, nb, got, ref, tol);
            }
            free(y);
            free(x);
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(not_avx2, 0);
        if (getenv("QUANT_K_VERBOSE"))
            fprintf(stderr, "    %s level %d: worst |diff| = %.2f eps * mass\n",
                    quant_traits(t)->name, level, worst);
    }
}

/* The tolerance above is meaningful: one level off by one, in a sub-block with a large scale,
 * moves the dot product far beyond it, at every level. */
TEST(quant_k_vec_dot_detects_one_level)
{
    const int nb = 4;
    struct block_q8_K *y = malloc(sizeof(*y) * nb);
    uint8_t *x = malloc(sizeof(struct block_q6_K) * nb);
    uint64_t s = 5;
    for (int k = 0; k < N_K_TYPES; k++) {
        const enum qtype t = k_types[k];
        const size_t ts = quant_traits(t)->type_size;
        random_x_blocks(t, x, nb, &s);
        random_y_blocks(y, nb, &s, 1);
        /* block 2, sub-block 0 gets the largest scale; its first value's lowest bit flips */
        uint8_t *b = x + 2 * ts;
        size_t q_off = 0;
        switch (t) {
        case QTYPE_Q2_K: b[0] |= 0x0F; q_off = offsetof(struct block_q2_K, qs); break;
        case QTYPE_Q3_K:
            b[offsetof(struct block_q3_K, scales)] |= 0x0F;
            b[offsetof(struct block_q3_K, scales) + 8] |= 0x03;
            q_off = offsetof(struct block_q3_K, qs);
            break;
        case QTYPE_Q4_K:
            b[offsetof(struct block_q4_K, scales)] |= 63;
            q_off = offsetof(struct block_q4_K, qs);
            break;
        case QTYPE_Q5_K:
            b[offsetof(struct block_q5_K, scales)] |= 63;
            q_off = offsetof(struct block_q5_K, qs);
            break;
        default: b[offsetof(struct block_q6_K, scales)] = 127; break;
        }
        /* and the largest super-scale, so the block carries weight in the sum */
        const uint16_t big = fp16_from_fp32(0.0625f);
        const size_t d_off = t == QTYPE_Q2_K   ? offsetof(struct block_q2_K, d)
                             : t == QTYPE_Q3_K ? offsetof(struct block_q3_K, d)
                             : t == QTYPE_Q4_K ? offsetof(struct block_q4_K, d)
                             : t == QTYPE_Q5_K ? offsetof(struct block_q5_K, d)
                                               : offsetof(struct block_q6_K, d);
        memcpy(b + d_off, &big, 2);
        for (int l = QUANT_LEVEL_SCALAR; l <= cpu_level(); l++) {
            const quant_vec_dot_fn fn = quant_vec_dot_at(t, (enum quant_level)l);
            float v0, v1;
            fn(nb * QK_K, &v0, x, y);
            b[q_off] ^= 1;
            fn(nb * QK_K, &v1, x, y);
            b[q_off] ^= 1;
            CHECK(fabs((double)v0 - v1) > 100 * FLT_EPSILON * dot_mass(t, x, y, nb * QK_K));
        }
    }
    free(y);
    free(x);
}

TEST(quant_k_vec_dot_avx2_vs_scalar) { simd_dot_check(QUANT_LEVEL_AVX2); }

TEST(quant_k_vec_dot_avx512_vs_scalar)
{
#ifndef TANDEM_NO_X86
    simd_dot_check(QUANT_LEVEL_AVX512);
#endif
}

/* The AVX-512 kernels' other instruction path: without VNNI on a VNNI machine (and with VNNI,
 * explicitly), so both are tested wherever the CPU allows. */
TEST(quant_k_vec_dot_avx512_paths)
{
#ifndef TANDEM_NO_X86
    if (cpu_level() < QUANT_LEVEL_AVX512)
        return;
    quant__k_avx512_set_vnni(0);
    simd_dot_check(QUANT_LEVEL_AVX512);
    if (cpu_features_get()->avx512_vnni) {
        quant__k_avx512_set_vnni(1);
        simd_dot_check(QUANT_LEVEL_AVX512);
    }
    quant__k_avx512_set_vnni(-1);
#endif
}

/* ---- Q8_K quantizer: SIMD bit-identical to scalar ---- */

static void q8_K_case(const float *x, int64_t n, const char *what)
{
    struct block_q8_K *ref = calloc((size_t)(n / QK_K), sizeof(*ref));
    struct block_q8_K *got = calloc((size_t)(n / QK_K), sizeof(*got));
    quant__from_float_q8_K(x, ref, n);
    for (int l = QUANT_LEVEL_AVX2; l <= cpu_level(); l++) {
        const quant_from_float_fn fn = quant_from_float_at(QTYPE_Q8_K, (enum quant_level)l);
        memset(got, 0x5a, sizeof(*got) * (size_t)(n / QK_K));
        fn(x, got, n);
        /* compare field by field: the struct has no padding, but be explicit */
        int diff = 0;
        for (int64_t b = 0; b < n / QK_K; b++)
            diff += memcmp(&ref[b].d, &got[b].d, sizeof(float)) ||
                    memcmp(ref[b].qs, got[b].qs, QK_K) ||
                    memcmp(ref[b].bsums, got[b].bsums, sizeof(ref[b].bsums));
        if (diff)
            fprintf(stderr, "    Q8_K level %d differs on %s (%d blocks)\n", l, what, diff);
        CHECK_EQ_INT(diff, 0);
    }
    free(ref);
    free(got);
}

TEST(quant_k_q8_K_simd_bit_identical)
{
    const int64_t n = 16 * QK_K;
    float *x = malloc(sizeof(float) * n);
    uint64_t s = 7;
    for (int trial = 0; trial < 50; trial++) {
        const float scale = (float)pow(10.0, (double)(trial % 13) - 6);
        fill_gauss(x, n, 1000 + trial, scale);
        q8_K_case(x, n, "gaussian");
    }
    /* exact ties: multiples of max / 256 land on k + 0.5 after scaling */
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((int64_t)(rng_next(&s) % 512) - 256) * 0.5f / 128.0f;
    for (int64_t b = 0; b < n / QK_K; b++)
        x[b * QK_K + 3] = -1.0f;
    q8_K_case(x, n, "ties");
    /* zeros; a block with one nonzero; huge; tiny and subnormal; negative max; +max and -max
     * of equal magnitude in either order */
    memset(x, 0, sizeof(float) * n);
    x[QK_K + 255] = -1e-3f;
    for (int64_t i = 2 * QK_K; i < 3 * QK_K; i++)
        x[i] = 3e38f * (float)(rng_uniform(&s) * 2 - 1);
    for (int64_t i = 3 * QK_K; i < 4 * QK_K; i++)
        x[i] = 1e-38f * (float)(rng_uniform(&s) * 2 - 1);
    for (int64_t i = 4 * QK_K; i < 5 * QK_K; i++)
        x[i] = 1e-44f * (float)(i % 5);
    for (int64_t i = 5 * QK_K; i < 6 * QK_K; i++)
        x[i] = (float)(i % 17) * 0.1f;
    x[5 * QK_K + 200] = -50.0f;
    x[6 * QK_K + 10] = 4.0f;
    x[6 * QK_K + 11] = -4.0f;
    x[7 * QK_K + 10] = -4.0f;
    x[7 * QK_K + 250] = 4.0f;
    for (int64_t i = 8 * QK_K; i < 9 * QK_K; i++)
        x[i] = -1.0f;
    /* not finite: the result is garbage but must be the same garbage */
    x[9 * QK_K + 5] = INFINITY;
    x[10 * QK_K + 6] = NAN;
    x[10 * QK_K + 7] = 2.0f;
    x[11 * QK_K] = NAN;
    x[11 * QK_K + 9] = -INFINITY;
    q8_K_case(x, n, "edge cases");
    CHECK(fabsf(x[0]) == 0.0f);
    free(x);
}

TEST(quant_k_q8_K_zero_block)
{
    float x[QK_K] = {0};
    struct block_q8_K b;
    memset(&b, 0x77, sizeof(b));
    quant__from_float_q8_K(x, &b, QK_K);
    int nz = b.d != 0.0f;
    for (int j = 0; j < QK_K; j++)
        nz += b.qs[j] != 0;
    for (int j = 0; j < QK_K / 16; j++)
        nz += b.bsums[j] != 0;
    CHECK_EQ_INT(nz, 0);
}
