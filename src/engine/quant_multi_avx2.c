/* AVX2 multi-column dot products: one weight row against up to 8 activation rows. */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <string.h>

#include "engine/quant_k_avx2_impl.h"
#include "engine/quant_legacy_avx2_impl.h"

/* Each kernel unpacks a block (or super-block) of the weight row once and then runs the
 * integer part of the single-column kernel of this level (quant_k_avx2.c, quant_legacy_avx2.c)
 * for every column, with the same int32 lane layout, and the same float steps in the same
 * order per column, so each s[j] is bit-identical to what that kernel returns. The unpacking
 * helpers are the ones those files use (the *_impl.h headers): the lane layout is the
 * contract. Column counts are constants after inlining (one instantiation each), so the column
 * loops unroll; what does not fit the 16 registers the compiler keeps in L1. */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Activation row c: y + c * by bytes. */
#define COL(T, y, by, c) ((const T *)((const char *)(y) + (size_t)(c) * (by)))

/* The fp16 pair (d, dmin) at p as floats in lanes 0 and 1 (the single kernels' d_dmin before
 * the multiplication by the activations' scale). */
static inline __m128 d_dmin_x(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm_cvtph_ps(_mm_cvtsi32_si128(v));
}

/* ---- K-quants ----
 * Per super-block the weights' eight 32-value chunks q[] and their scale operands sc[];
 * k_dots then goes chunk by chunk over the columns, each chunk used nc times while in a
 * register, into one int32 sum per column with the single kernel's lanes (sumi); then per
 * column the single kernel's float steps. (Columns outer would need q[] and sc[] reloaded
 * for every column: 16 registers do not hold them.) */

ALWAYS_INLINE void k_dots(__m256i *sumi, const __m256i *q, const __m256i *sc, const void *vy,
                          size_t by, int i, const int nc)
{
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
            const __m256i p = _mm256_maddubs_epi16(q[j], loadu_256(y->qs + 32 * j));
            sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(sc[j], p));
            /* keeps GCC from regrouping the sums into a tree whose 8 x 8 partial products
             * spill to the stack */
            __asm__("" : "+x"(sumi[c]));
        }
}

/* Q4_K and Q5_K differ only in the fifth bit. */
ALWAYS_INLINE void multi_k4(int n, float *s, const void *vx, const void *vy, size_t by,
                            const int nc, const int q5)
{
    const struct block_q4_K *x4 = vx;
    const struct block_q5_K *x5 = vx;
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
    __m256 acc[QUANT_MULTI_MAX];
    __m128 acc_m[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        acc[c] = _mm256_setzero_ps();
        acc_m[c] = _mm_setzero_ps();
    }
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 xdd = d_dmin_x(q5 ? (const void *)&x5[i].d : (const void *)&x4[i].d);
        const __m256i ms =
            _mm256_cvtepu8_epi16(k4_scales_mins(q5 ? x5[i].scales : x4[i].scales));
        const __m128i mins = _mm256_extracti128_si256(ms, 1);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *qs = q5 ? x5[i].qs : x4[i].qs;
        /* Q5_K: bit 2j of each qh byte is the fifth bit of the low nibbles of chunk j, bit
         * 2j + 1 of the high nibbles; h moves them down two bits per chunk */
        __m256i h = q5 ? loadu_256(x5[i].qh) : _mm256_setzero_si256();
        __m256i q[8], sc[8];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i bits = loadu_256(qs + 32 * j);
            q[2 * j] = _mm256_and_si256(bits, m4);
            q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if (q5) {
                q[2 * j] =
                    _mm256_or_si256(q[2 * j], _mm256_and_si256(_mm256_slli_epi16(h, 4), m16));
                q[2 * j + 1] =
                    _mm256_or_si256(q[2 * j + 1], _mm256_and_si256(_mm256_slli_epi16(h, 3), m16));
                h = _mm256_srli_epi16(h, 2);
            }
            sc[2 * j] = pick(scales, pick_32[2 * j]);
            sc[2 * j + 1] = pick(scales, pick_32[2 * j + 1]);
        }
        __m256i sumi[QUANT_MULTI_MAX];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            sumi[c] = _mm256_setzero_si256();
        k_dots(sumi, q, sc, vy, by, i, nc);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
            const __m128 dd = _mm_mul_ps(xdd, _mm_set1_ps(y->d));
            const __m128i prod = _mm_madd_epi16(mins, bsums_32(y));
            acc_m[c] = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m[c]);
            acc[c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi[c]),
                                     acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]) + hsum_128(acc_m[c]);
}

ALWAYS_INLINE void multi_q4_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc)
{
    multi_k4(n, s, vx, vy, by, nc, 0);
}

ALWAYS_INLINE void multi_q5_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc)
{
    multi_k4(n, s, vx, vy, by, nc, 1);
}

/* Q6_K and Q3_K: levels stored with an offset (32, 4 = 1 << shift), which the single kernels
 * subtract up front as -(madd(scales, bsums) << shift). madd by the scales times
 * -(1 << shift) gives the same int32 lanes in one step (|scale| <= 128, so the product fits
 * int16, and the sums are far from overflow); then one float scale per super-block. */
ALWAYS_INLINE void k_offset_cols(__m256 *acc, float xd, __m256i sc16, const int shift,
                                 const __m256i *q, const __m256i *sc, const void *vy, size_t by,
                                 int i, const int nc)
{
    const __m256i neg_sc =
        _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, shift));
    __m256i sumi[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
        sumi[c] = _mm256_madd_epi16(neg_sc, loadu_256(y->bsums));
    }
    k_dots(sumi, q, sc, vy, by, i, nc);
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        const float d = (COL(struct block_q8_K, vy, by, c) + i)->d * xd;
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
    }
}

ALWAYS_INLINE void multi_q6_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc)
{
    const struct block_q6_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu_128(x[i].scales));
        /* q[4 half + k]: the values of q8 bytes 128 half + 32k .. +31, sc[] their scales */
        __m256i q[8], sc[8];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                        : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const uint8_t *ql = x[i].ql + 64 * half, *qh = x[i].qh + 32 * half;
            const __m256i l0 = loadu_256(ql), l1 = loadu_256(ql + 32), hb = loadu_256(qh);
            __m256i *qq = q + 4 * half;
            qq[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                    _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            qq[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                    _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            qq[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                    _mm256_and_si256(hb, m30));
            qq[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                sc[4 * half + k] = pick(scales, pick_16[k]);
        }
        k_offset_cols(acc, _cvtsh_ss(x[i].d), sc16, 5, q, sc, vy, by, i, nc);
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]);
}

ALWAYS_INLINE void multi_q3_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc)
{
    const struct block_q3_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    __m256 acc[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = q3_K_scales(x[i].scales);
        /* bit b of hmask byte l is the third bit of value 32b + l */
        const __m256i hm = loadu_256(x[i].hmask);
        __m256i q[8], sc[8];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                        : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i bits = loadu_256(x[i].qs + 32 * half);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const int b = 4 * half + j;
                const __m256i h =
                    b < 2 ? _mm256_slli_epi16(hm, 2 - b) : _mm256_srli_epi16(hm, b - 2);
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                q[b] = _mm256_or_si256(q2, _mm256_and_si256(h, m4));
                sc[b] = pick(scales, pick_16[j]);
            }
        }
        k_offset_cols(acc, _cvtsh_ss(x[i].d), sc16, 2, q, sc, vy, by, i, nc);
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]);
}

ALWAYS_INLINE void multi_q2_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc)
{
    const struct block_q2_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc[QUANT_MULTI_MAX], acc_m[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        acc[c] = _mm256_setzero_ps();
        acc_m[c] = _mm256_setzero_ps();
    }
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 xdd = d_dmin_x(&x[i].d);
        const __m128i sc8 = loadu_128(x[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        __m256i q[8], sc[8];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                        : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i bits = loadu_256(x[i].qs + 32 * half);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                q[4 * half + j] = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                sc[4 * half + j] = pick(scales, pick_16[j]);
            }
        }
        __m256i sumi[QUANT_MULTI_MAX];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            sumi[c] = _mm256_setzero_si256();
        k_dots(sumi, q, sc, vy, by, i, nc);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
            const __m128 dd = _mm_mul_ps(xdd, _mm_set1_ps(y->d));
            const __m256i prod = _mm256_madd_epi16(mins, loadu_256(y->bsums));
            acc_m[c] = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                        _mm256_cvtepi32_ps(prod), acc_m[c]);
            acc[c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi[c]),
                                     acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]) + hsum_256(acc_m[c]);
}

/* ---- legacy blocks (Q8_0, Q4_0 against Q8_0), as quant_legacy_avx2.c ----
 * Groups of 8 blocks, block k of a group into accumulator k % 4 of its column; leftover
 * blocks into accumulator 0. Four accumulators per column: the columns go through in passes of
 * at most LEGACY_COLS, each re-reading the weights from L1. */
#define LEGACY_COLS 4

static inline float sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    return hsum_256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* The weight side of one block: Q8_0 keeps x and |x| (y takes x's sign, as the single kernel
 * does, -128 quirk included); Q4_0 keeps the nibbles. */
struct wblock {
    __m256i u, x;
};

ALWAYS_INLINE struct wblock unpack_legacy(const void *vx, int b, const int is_q8)
{
    if (is_q8) {
        const __m256i v = loadu_256(((const struct block_q8_0 *)vx)[b].qs);
        return (struct wblock){_mm256_sign_epi8(v, v), v};
    }
    return (struct wblock){nibbles32(((const struct block_q4_0 *)vx)[b].qs),
                           _mm256_setzero_si256()};
}

ALWAYS_INLINE __m256i block_dot(const int is_q8, struct wblock w, const int8_t *yq)
{
    const __m256i s = loadu_256(yq), ones = _mm256_set1_epi16(1);
    if (is_q8)
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w.u, _mm256_sign_epi8(s, w.x)), ones);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(w.u, s),
                                       _mm256_maddubs_epi16(_mm256_set1_epi8(8), s));
    return _mm256_madd_epi16(p, ones);
}

ALWAYS_INLINE uint16_t block_d(const void *vx, int b, const int is_q8)
{
    return is_q8 ? ((const struct block_q8_0 *)vx)[b].d : ((const struct block_q4_0 *)vx)[b].d;
}

/* Q8_0 (is_q8) or Q4_0 weights x, nc <= LEGACY_COLS columns. */
ALWAYS_INLINE void multi_legacy(int n, float *s, const void *vx, const void *vy, size_t by,
                                const int nc, const int is_q8)
{
    const struct block_q8_0 *x8 = vx;
    const struct block_q4_0 *x4 = vx;
    const int nb = n / QK8_0;
    __m256 a[LEGACY_COLS][4];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            a[c][k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256 xd = is_q8 ? HALVES8(x8 + i, d) : HALVES8(x4 + i, d);
        float ds[LEGACY_COLS][8];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_0 *y = COL(struct block_q8_0, vy, by, c) + i;
            _mm256_storeu_ps(ds[c], _mm256_mul_ps(xd, HALVES8(y, d)));
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const struct wblock w = unpack_legacy(vx, i + k, is_q8);
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const struct block_q8_0 *y = COL(struct block_q8_0, vy, by, c) + i + k;
                a[c][k % 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot(is_q8, w, y->qs)),
                                              _mm256_broadcast_ss(&ds[c][k]), a[c][k % 4]);
            }
        }
    }
    for (; i < nb; i++) {
        const struct wblock w = unpack_legacy(vx, i, is_q8);
        const float xd = h2f(block_d(vx, i, is_q8));
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_0 *y = COL(struct block_q8_0, vy, by, c) + i;
            a[c][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot(is_q8, w, y->qs)),
                                      _mm256_set1_ps(xd * h2f(y->d)), a[c][0]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = sum4(a[c][0], a[c][1], a[c][2], a[c][3]);
}

/* ---- entry points: one instantiation per column count ----
 * Columns go through in passes of at most `cols` (8, or LEGACY_COLS), so any nc >= 0 is
 * handled, although callers pass 1..QUANT_MULTI_MAX. */

#define PASS(k, cols, call)                                                                \
    case k: {                                                                              \
        const int w = k < cols ? k : cols;                                                 \
        call;                                                                              \
        break;                                                                             \
    }
#define PASSES(cols, call)                                                                 \
    for (int c0 = 0; c0 < nc; c0 += cols) {                                                \
        float *sc0 = s + c0;                                                               \
        const void *yc0 = (const char *)y + (size_t)c0 * by;                               \
        switch (nc - c0 < cols ? nc - c0 : cols) {                                         \
            PASS(1, cols, call) PASS(2, cols, call) PASS(3, cols, call)                    \
            PASS(4, cols, call) PASS(5, cols, call) PASS(6, cols, call)                    \
            PASS(7, cols, call) PASS(8, cols, call)                                        \
        }                                                                                  \
    }

#define K_ENTRY(t)                                                                         \
    void quant__vec_dot_multi_##t##_avx2(int n, float *s, const void *x, const void *y,   \
                                         size_t by, int nc)                                \
    {                                                                                      \
        PASSES(QUANT_MULTI_MAX, multi_##t(n, sc0, x, yc0, by, w))                          \
    }

K_ENTRY(q2_K)
K_ENTRY(q3_K)
K_ENTRY(q4_K)
K_ENTRY(q5_K)
K_ENTRY(q6_K)

#define LEGACY_ENTRY(t, is_q8)                                                             \
    void quant__vec_dot_multi_##t##_avx2(int n, float *s, const void *x, const void *y,   \
                                         size_t by, int nc)                                \
    {                                                                                      \
        PASSES(LEGACY_COLS, multi_legacy(n, sc0, x, yc0, by, w, is_q8))                    \
    }

LEGACY_ENTRY(q8_0, 1)
LEGACY_ENTRY(q4_0, 0)
