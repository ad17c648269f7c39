/* Multi-column dot kernels: every column bit-identical to the same level's single kernel. */
#include "test.h"

#include <stdint.h>

#include "base/cpu.h"
#include "engine/quant_impl.h"

#ifndef TANDEM_NO_X86
/* Test hooks: 0 forces the plain AVX-512 paths, 1 the VNNI ones (only where the CPU has VNNI),
 * -1 (quant_multi, quant_k) / 1 (legacy) back to the CPU's choice. */
void quant__multi_avx512_set_vnni(int mode);
#endif

static const enum qtype multi_types[] = {QTYPE_Q4_0, QTYPE_Q8_0, QTYPE_Q2_K, QTYPE_Q3_K,
                                         QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K};
#define N_MULTI_TYPES (sizeof(multi_types) / sizeof(multi_types[0]))

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

/* n Gaussian floats: a scale per 256 values over four decades, varied by up to 2x every 32
 * values, and an occasional outlier. */
static void fill_floats(float *f, int n, uint64_t *s)
{
    float base = 1, scale = 1;
    for (int i = 0; i < n; i++) {
        if (i % 256 == 0)
            base = (float)pow(10.0, rng_uniform(s) * 4 - 2);
        if (i % 32 == 0)
            scale = base * (float)pow(2.0, rng_uniform(s) * 2 - 1);
        f[i] = scale * rng_gauss(s) * (rng_next(s) % 97 == 0 ? 20.0f : 1.0f);
    }
}

/* A random finite half in [2^-14, 2^-4) of either sign. */
static uint16_t rng_half(uint64_t *s)
{
    return (uint16_t)(((rng_next(s) & 1) << 15) | ((1 + rng_next(s) % 10) << 10) |
                      (rng_next(s) & 0x3ff));
}

static void put_half(void *block, size_t off, uint16_t h) { memcpy((char *)block + off, &h, 2); }

/* Random bytes everywhere (every quant and scale bit pattern, -128 in Q8_0 included), then
 * sane fp16 scales so sums stay finite. */
static void random_bytes_row(enum qtype t, void *row, int n, uint64_t *s)
{
    const struct qtype_traits *tr = quant_traits(t);
    const int nb = (int)(n / tr->block_size);
    uint8_t *b = row;
    for (size_t i = 0; i < tr->type_size * (size_t)nb; i++)
        b[i] = (uint8_t)rng_next(s);
    for (int i = 0; i < nb; i++) {
        uint8_t *blk = b + tr->type_size * (size_t)i;
        switch (t) {
        case QTYPE_Q4_0: put_half(blk, offsetof(struct block_q4_0, d), rng_half(s)); break;
        case QTYPE_Q8_0: put_half(blk, offsetof(struct block_q8_0, d), rng_half(s)); break;
        case QTYPE_Q2_K:
            put_half(blk, offsetof(struct block_q2_K, d), rng_half(s));
            put_half(blk, offsetof(struct block_q2_K, dmin), rng_half(s));
            break;
        case QTYPE_Q3_K: put_half(blk, offsetof(struct block_q3_K, d), rng_half(s)); break;
        case QTYPE_Q4_K:
            put_half(blk, offsetof(struct block_q4_K, d), rng_half(s));
            put_half(blk, offsetof(struct block_q4_K, dmin), rng_half(s));
            break;
        case QTYPE_Q5_K:
            put_half(blk, offsetof(struct block_q5_K, d), rng_half(s));
            put_half(blk, offsetof(struct block_q5_K, dmin), rng_half(s));
            break;
        case QTYPE_Q6_K: put_half(blk, offsetof(struct block_q6_K, d), rng_half(s)); break;
        case QTYPE_Q8_K: {
            struct block_q8_K *y = (struct block_q8_K *)blk;
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int l = 0; l < 16; l++)
                    sum += y->qs[16 * j + l];
                y->bsums[j] = (int16_t)sum;
            }
            y->d = (float)(rng_uniform(s) * 0.1 - 0.05);
            break;
        }
        default: break;
        }
    }
}

/* One row of type t over n values: quantized random floats, or (raw) random bytes. */
static void make_row(enum qtype t, void *row, int n, int raw, uint64_t *s)
{
    if (raw) {
        random_bytes_row(t, row, n, s);
        return;
    }
    float *f = malloc(sizeof(float) * (size_t)n);
    fill_floats(f, n, s);
    quant_traits(t)->from_float(f, row, n);
    free(f);
}

/* Compares multi against single for type t at `level` over the given shapes; returns the
 * number of mismatching columns. x and y are heap buffers of exactly the bytes the kernels
 * may read, so ASan catches over-reads. */
static int compare_case(enum qtype t, quant_vec_dot_fn single, quant_vec_dot_multi_fn multi,
                        int n, int nc, size_t pad, int raw, uint64_t *s)
{
    const enum qtype vdt = quant_traits(t)->vec_dot_type;
    const size_t xrow = quant_row_size(t, n), yrow = quant_row_size(vdt, n);
    const size_t by = yrow + pad;
    uint8_t *x = malloc(xrow);
    uint8_t *y = malloc((size_t)(nc - 1) * by + yrow);
    if (!x || !y) {
        free(x);
        free(y);
        return 1;
    }
    make_row(t, x, n, raw, s);
    for (int c = 0; c < nc; c++)
        make_row(vdt, y + (size_t)c * by, n, raw, s);
    float got[QUANT_MULTI_MAX + 1];
    const uint32_t canary = 0x7fc0dead;
    for (int c = 0; c <= QUANT_MULTI_MAX; c++)
        memcpy(&got[c], &canary, 4);
    multi(n, got, x, y, by, nc);
    int bad = 0;
    for (int c = 0; c < nc; c++) {
        float ref;
        single(n, &ref, x, y + (size_t)c * by);
        if (memcmp(&ref, &got[c], sizeof(float))) {
            if (bad < 3)
                fprintf(stderr, "    %s n=%d nc=%d col %d raw=%d: single %.9g multi %.9g\n",
                        quant_traits(t)->name, n, nc, c, raw, ref, got[c]);
            bad++;
        }
    }
    for (int c = nc; c <= QUANT_MULTI_MAX; c++)
        if (memcmp(&got[c], &canary, 4)) {
            fprintf(stderr, "    %s nc=%d wrote s[%d]\n", quant_traits(t)->name, nc, c);
            bad++;
        }
    free(x);
    free(y);
    return bad;
}

/* Block counts: one block, odd counts, and around the 8-block groups of the legacy kernels. */
static const int legacy_blocks[] = {1, 2, 3, 7, 8, 9, 15, 17, 64};
static const int k_blocks[] = {1, 2, 3, 8};

static void check_level(enum quant_level level)
{
    for (size_t k = 0; k < N_MULTI_TYPES; k++) {
        const enum qtype t = multi_types[k];
        const quant_vec_dot_multi_fn multi = quant_vec_dot_multi_at(t, level);
        if (!multi)
            continue;
        const quant_vec_dot_fn single = quant_vec_dot_at(t, level);
        const int bs = (int)quant_traits(t)->block_size;
        const int is_k = bs == QK_K;
        const int *blocks = is_k ? k_blocks : legacy_blocks;
        const int n_blocks = is_k ? (int)(sizeof(k_blocks) / sizeof(k_blocks[0]))
                                  : (int)(sizeof(legacy_blocks) / sizeof(legacy_blocks[0]));
        uint64_t s = 1000 + (uint64_t)t;
        int bad = 0;
        for (int b = 0; b < n_blocks; b++)
            for (int nc = 1; nc <= QUANT_MULTI_MAX; nc++)
                for (int raw = 0; raw < 2; raw++)
                    bad += compare_case(t, single, multi, blocks[b] * bs, nc,
                                        (nc & 1) ? 0 : 64 + 2 * (size_t)nc, raw, &s);
        if (bad)
            fprintf(stderr, "    %s level %d: %d columns differ\n", quant_traits(t)->name, level,
                    bad);
        CHECK_EQ_INT(bad, 0);
    }
}

/* The kernels this file tests exist at every SIMD level the CPU has, and never at scalar. */
TEST(quant_multi_available)
{
    for (size_t k = 0; k < N_MULTI_TYPES; k++) {
        CHECK(!quant_vec_dot_multi_at(multi_types[k], QUANT_LEVEL_SCALAR));
#ifndef TANDEM_NO_X86
        for (int l = QUANT_LEVEL_AVX2; l <= cpu_level(); l++)
            CHECK(quant_vec_dot_multi_at(multi_types[k], (enum quant_level)l) != NULL);
#endif
    }
    CHECK(!quant_vec_dot_multi_at(QTYPE_F32, QUANT_LEVEL_AVX2));
    CHECK(!quant_vec_dot_multi_at((enum qtype)99, QUANT_LEVEL_AVX2));
}

TEST(quant_multi_avx2_bit_identical)
{
    if (cpu_level() < QUANT_LEVEL_AVX2) {
        fprintf(stderr, "    skipped: no AVX2\n");
        return;
    }
    check_level(QUANT_LEVEL_AVX2);
}

TEST(quant_multi_avx512_bit_identical)
{
    if (cpu_level() < QUANT_LEVEL_AVX512) {
        fprintf(stderr, "    skipped: no AVX-512\n");
        return;
    }
    check_level(QUANT_LEVEL_AVX512);
}

/* Every pairing of the single kernels' and the multi kernels' VNNI and plain AVX-512 paths
 * (only the plain one where the CPU lacks VNNI). */
TEST(quant_multi_avx512_vnni_paths)
{
#ifndef TANDEM_NO_X86
    if (cpu_level() < QUANT_LEVEL_AVX512) {
        fprintf(stderr, "    skipped: no AVX-512\n");
        return;
    }
    const int modes = cpu_features_get()->avx512_vnni ? 2 : 1;
    for (int single_vnni = 0; single_vnni < modes; single_vnni++)
        for (int multi_vnni = 0; multi_vnni < modes; multi_vnni++) {
            quant__k_avx512_set_vnni(single_vnni);
            quant__legacy_avx512_extensions(single_vnni, 1);
            quant__multi_avx512_set_vnni(multi_vnni);
            check_level(QUANT_LEVEL_AVX512);
        }
    quant__k_avx512_set_vnni(-1);
    quant__legacy_avx512_extensions(1, 1);
    quant__multi_avx512_set_vnni(-1);
#endif
}

/* The comparison can fail: one flipped quant bit in the weights changes a column. */
TEST(quant_multi_detects_difference)
{
    const enum quant_level level = (enum quant_level)cpu_level();
    const quant_vec_dot_multi_fn multi = quant_vec_dot_multi_at(QTYPE_Q4_K, level);
    if (!multi) {
        fprintf(stderr, "    skipped: no multi kernel at this level\n");
        return;
    }
    const int n = 2 * QK_K;
    struct block_q4_K x[2];
    struct block_q8_K y[2 * 3];
    uint64_t s = 99;
    make_row(QTYPE_Q4_K, x, n, 0, &s);
    for (int c = 0; c < 3; c++)
        make_row(QTYPE_Q8_K, y + 2 * c, n, 0, &s);
    /* sub-block 0 of block 1 gets scale 63, so the flipped levels below carry weight */
    x[1].scales[0] = (uint8_t)((x[1].scales[0] & 0xC0) | 63);
    float a[3], b[3];
    multi(n, a, x, y, 2 * sizeof(struct block_q8_K), 3);
    for (int k = 0; k < 32; k++) /* the lowest level bit of sub-block 0 */
        x[1].qs[k] ^= 0x01;
    multi(n, b, x, y, 2 * sizeof(struct block_q8_K), 3);
    for (int c = 0; c < 3; c++)
        CHECK(a[c] != b[c]);
}
