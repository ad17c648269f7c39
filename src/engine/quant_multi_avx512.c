/* AVX-512 multi-column dot products: one weight row against up to 8 activation rows. */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "base/cpu.h"
#include "engine/quant_k_avx512_impl.h"
#include "engine/quant_legacy_avx512_impl.h"

/* Each kernel unpacks a block (or super-block) of the weight row once and then runs the
 * integer part of the single-column kernel of this level (quant_k_avx512.c,
 * quant_legacy_avx512.c) for every column, with the same int32 lane layout, and the same
 * float steps in the same order per column, so each s[j] is bit-identical to what that kernel
 * returns. The unpacking helpers are the ones those files use (the *_impl.h headers): the lane
 * layout is the contract. VNNI only fuses exact int32 adds (vpdpwssd, vpdpbusd do not saturate), so it
 * changes speed, never results; it is used where the CPU has it. */

/* -1: from the CPU (resolved on first use), 0: plain AVX-512BW, 1: VNNI. */
static atomic_int vnni_mode = -1;

void quant__multi_avx512_set_vnni(int mode);

/* Test hook: force a path (0 plain, 1 VNNI, -1 back to the CPU's choice); VNNI is honoured
 * only where the CPU has it. */
void quant__multi_avx512_set_vnni(int mode)
{
    const int has = cpu_features_get()->avx512_vnni;
    atomic_store_explicit(&vnni_mode, mode < 0 ? has : (mode && has), memory_order_relaxed);
}

static inline int use_vnni(void)
{
    int m = atomic_load_explicit(&vnni_mode, memory_order_relaxed);
    if (m < 0) {
        m = cpu_features_get()->avx512_vnni;
        atomic_store_explicit(&vnni_mode, m, memory_order_relaxed);
    }
    return m;
}

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
 * Per super-block the weights' four 64-value chunks q[] and their scale operands sc[] go to
 * registers; then per column the single kernel's integer sum (k_dot, same int32 lanes) and
 * its float steps. nc is a constant after inlining, so the column loop unrolls and the
 * accumulators stay in registers. */

ALWAYS_INLINE __m512i k_dot(__m512i sumi, const __m512i *q, const __m512i *sc,
                            const struct block_q8_K *y, const int vnni)
{
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        sumi = madd_acc(sumi, _mm512_maddubs_epi16(q[j], loadu_512(y->qs + 64 * j)), sc[j], vnni);
    return sumi;
}

/* Q4_K and Q5_K differ only in the fifth bit. */
ALWAYS_INLINE void multi_k4(int n, float *s, const void *vx, const void *vy, size_t by,
                            const int nc, const int vnni, const int q5)
{
    const struct block_q4_K *x4 = vx;
    const struct block_q5_K *x5 = vx;
    const __m512i m4 = _mm512_set1_epi8(0xF), m16 = _mm512_set1_epi8(0x10), nib = halves(0, 4);
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
        const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(ms));
        const uint8_t *qs = q5 ? x5[i].qs : x4[i].qs;
        __m512i q[4], sc[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            /* low nibbles in the low half, high nibbles in the high half */
            q[j] = _mm512_and_si512(_mm512_srlv_epi64(bcast_256(qs + 32 * j), nib), m4);
            if (q5) {
                /* fifth bits: bit 2j (low half) and 2j + 1 (high half) of each qh byte,
                 * rotated to bit 4 */
                const __m512i rot = halves((64 + 4 - 2 * j) & 63, (64 + 3 - 2 * j) & 63);
                q[j] = or_and(q[j], _mm512_rolv_epi64(bcast_256(x5[i].qh), rot), m16);
            }
            sc[j] = _mm512_shuffle_epi8(scales, load_512(pick_k4[j]));
        }
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
            const __m128 dd = _mm_mul_ps(xdd, _mm_set1_ps(y->d));
            const __m128i prod = _mm_madd_epi16(mins, bsums_32(y));
            acc_m[c] = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m[c]);
            const __m512i sumi = k_dot(_mm512_setzero_si512(), q, sc, y, vnni);
            acc[c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(fold(sumi)),
                                     acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]) + hsum_128(acc_m[c]);
}

ALWAYS_INLINE void multi_q4_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc, const int vnni)
{
    multi_k4(n, s, vx, vy, by, nc, vnni, 0);
}

ALWAYS_INLINE void multi_q5_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc, const int vnni)
{
    multi_k4(n, s, vx, vy, by, nc, vnni, 1);
}

/* Q6_K and Q3_K: levels stored with an offset (32, 4 = 1 << shift), which the single kernels
 * subtract as -(madd(scales, bsums) << shift) in the low half of sumi. madd by the scales
 * times -(1 << shift) gives the same int32 lanes in one step (|scale| <= 128, so the product
 * fits int16, and the sums are far from overflow); then one float scale per super-block. */
ALWAYS_INLINE void k_offset_cols(__m256 *acc, float xd, __m256i sc16, const int shift,
                                 const __m512i *q, const __m512i *sc, const void *vy, size_t by,
                                 int i, const int nc, const int vnni)
{
    const __m256i neg_sc = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, shift));
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) {
        const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
        const float d = y->d * xd;
        const __m256i off = _mm256_madd_epi16(neg_sc, loadu_256(y->bsums));
        const __m512i sumi = k_dot(_mm512_zextsi256_si512(off), q, sc, y, vnni);
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc[c]);
    }
}

ALWAYS_INLINE void multi_q6_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc, const int vnni)
{
    const struct block_q6_K *x = vx;
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl_a = halves(4, 2), shr_b = halves(0, 2);
    __m256 acc[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu_128(x[i].scales));
        const __m512i scales = dup_words(sc16);
        /* q[2h]: values 0-63 of half h (low nibbles of ql, qh bits 0-1 and 2-3), q[2h + 1]:
         * values 64-127 (high nibbles, qh bits 4-5 and 6-7) */
        __m512i q[4], sc[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i l = loadu_512(x[i].ql + 64 * h), qh = bcast_256(x[i].qh + 32 * h);
            q[2 * h] = or_and(_mm512_and_si512(l, m4), _mm512_sllv_epi64(qh, shl_a), m30);
            q[2 * h + 1] = or_and(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                  _mm512_srlv_epi64(qh, shr_b), m30);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            sc[k] = scale_16(scales, k);
        k_offset_cols(acc, _cvtsh_ss(x[i].d), sc16, 5, q, sc, vy, by, i, nc, vnni);
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]);
}

ALWAYS_INLINE void multi_q3_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc, const int vnni)
{
    const struct block_q3_K *x = vx;
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(4);
    __m256 acc[QUANT_MULTI_MAX];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = q3_K_scales(x[i].scales);
        const __m512i scales = dup_words(sc16);
        const __m512i hm = bcast_256(x[i].hmask);
        /* q[2 half + jj]: chunks j = 2jj (low half) and 2jj + 1 of that half: level bits at
         * shift 2j, third bit at hmask bit 4 half + j, rotated to bit 2 */
        __m512i q[4], sc[4];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i bits = bcast_256(x[i].qs + 32 * half);
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++) {
                const int b = 4 * half + 2 * jj;
                const __m512i q2 =
                    _mm512_and_si512(_mm512_srlv_epi64(bits, halves(4 * jj, 4 * jj + 2)), m3);
                q[2 * half + jj] =
                    or_and(q2, _mm512_rolv_epi64(hm, halves((66 - b) & 63, (65 - b) & 63)), m4);
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            sc[k] = scale_16(scales, k);
        k_offset_cols(acc, _cvtsh_ss(x[i].d), sc16, 2, q, sc, vy, by, i, nc, vnni);
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]);
}

ALWAYS_INLINE void multi_q2_K(int n, float *s, const void *vx, const void *vy, size_t by,
                              const int nc, const int vnni)
{
    const struct block_q2_K *x = vx;
    const __m512i m3 = _mm512_set1_epi8(3);
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
        const __m512i scales = dup_words(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4)));
        __m512i q[4], sc[4];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i bits = bcast_256(x[i].qs + 32 * half);
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++)
                q[2 * half + jj] =
                    _mm512_and_si512(_mm512_srlv_epi64(bits, halves(4 * jj, 4 * jj + 2)), m3);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            sc[k] = scale_16(scales, k);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_K *y = COL(struct block_q8_K, vy, by, c) + i;
            const __m128 dd = _mm_mul_ps(xdd, _mm_set1_ps(y->d));
            const __m256i prod = _mm256_madd_epi16(mins, loadu_256(y->bsums));
            acc_m[c] = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                        _mm256_cvtepi32_ps(prod), acc_m[c]);
            const __m512i sumi = k_dot(_mm512_setzero_si512(), q, sc, y, vnni);
            acc[c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(fold(sumi)),
                                     acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum_256(acc[c]) + hsum_256(acc_m[c]);
}

/* ---- legacy blocks (Q8_0, Q4_0 against Q8_0), as quant_legacy_avx512.c ----
 * Two blocks per 512-bit vector, groups of 8 blocks into four accumulators per column. Four
 * accumulators times 8 columns would not fit the register file, so the columns go through in
 * passes of at most LEGACY_COLS; a pass re-reads the weights (cheap: they are in L1). */
#define LEGACY_COLS 4

ALWAYS_INLINE __m512i dot_u8s8(__m512i u, __m512i s, const int vnni)
{
    if (vnni)
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

ALWAYS_INLINE __m512i dot_u8s8_off(__m512i u, __m512i s, __m512i off, const int vnni)
{
    if (vnni)
        return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s),
                                _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, s));
    const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(u, s), _mm512_maddubs_epi16(off, s));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
}

/* The weight half of a pair: Q8_0 keeps |x| and the sign mask (y is negated where x < 0, as
 * the single kernel does, -128 quirk included); Q4_0 keeps the nibbles. */
struct wpair {
    __m512i u;
    __mmask64 neg;
};

ALWAYS_INLINE struct wpair unpack_q8_0(const struct block_q8_0 *x, int a, int b)
{
    const __m512i v = load_pair(x[a].qs, x[b].qs);
    return (struct wpair){_mm512_abs_epi8(v), _mm512_movepi8_mask(v)};
}

ALWAYS_INLINE struct wpair unpack_q4_0(const struct block_q4_0 *x, int a, int b)
{
    return (struct wpair){nibbles_pair(x[a].qs, x[b].qs), 0};
}

ALWAYS_INLINE __m512i pair_dot(const int is_q8, struct wpair w, __m512i yq, const int vnni)
{
    if (is_q8)
        return dot_u8s8(w.u, _mm512_mask_sub_epi8(yq, w.neg, _mm512_setzero_si512(), yq), vnni);
    return dot_u8s8_off(w.u, yq, _mm512_set1_epi8(8), vnni);
}

/* Q8_0 (is_q8) or Q4_0 weights x, nc <= LEGACY_COLS columns. */
ALWAYS_INLINE void multi_legacy(int n, float *s, const void *vx, const void *vy, size_t by,
                                const int nc, const int is_q8, const int vnni)
{
    const struct block_q8_0 *x8 = vx;
    const struct block_q4_0 *x4 = vx;
    const int nb = n / QK8_0;
    __m512 a[LEGACY_COLS][4];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
#pragma GCC unroll 8
        for (int k = 0; k < 4; k++)
            a[c][k] = _mm512_setzero_ps();
    const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const __m256 xd = is_q8 ? HALVES8(x8 + i, d) : HALVES8(x4 + i, d);
        struct wpair w[4];
#pragma GCC unroll 8
        for (int p = 0; p < 4; p++)
            w[p] = is_q8 ? unpack_q8_0(x8, i + 2 * p, i + 2 * p + 1)
                         : unpack_q4_0(x4, i + 2 * p, i + 2 * p + 1);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_0 *y = COL(struct block_q8_0, vy, by, c) + i;
            const __m512 ds = _mm512_castps256_ps512(_mm256_mul_ps(xd, HALVES8(y, d)));
#pragma GCC unroll 8
            for (int p = 0; p < 4; p++) {
                const __m512i idx = _mm512_add_epi32(idx0, _mm512_set1_epi32(2 * p));
                const __m512i dot = pair_dot(is_q8, w[p], load_pair(y[2 * p].qs, y[2 * p + 1].qs),
                                             vnni);
                a[c][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, ds),
                                          a[c][p]);
            }
        }
    }
    /* leftover pairs; an odd last block is paired with itself and a zero scale for the copy */
    for (; i < nb; i += 2) {
        const int j = i + 1 < nb ? i + 1 : i;
        const uint16_t xda = is_q8 ? x8[i].d : x4[i].d, xdb = is_q8 ? x8[j].d : x4[j].d;
        const struct wpair w = is_q8 ? unpack_q8_0(x8, i, j) : unpack_q4_0(x4, i, j);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const struct block_q8_0 *y = COL(struct block_q8_0, vy, by, c);
            const float sa = h2f(xda) * h2f(y[i].d);
            const float sb = j != i ? h2f(xdb) * h2f(y[j].d) : 0.0f;
            const __m512 sc = _mm512_insertf32x8(_mm512_set1_ps(sa), _mm256_set1_ps(sb), 1);
            const __m512i dot = pair_dot(is_q8, w, load_pair(y[i].qs, y[j].qs), vnni);
            a[c][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, a[c][0]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++)
        s[c] = hsum4(a[c][0], a[c][1], a[c][2], a[c][3]);
}

/* ---- entry points ----
 * One instantiation per column count and VNNI mode (the VNNI ones are only called after
 * cpuid). Columns go through in passes of at most `cols` (8, or LEGACY_COLS), so any nc >= 0
 * is handled, although callers pass 1..QUANT_MULTI_MAX. */

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

#define ENTRY(t, cols, call_plain, call_vnni)                                              \
    __attribute__((noinline)) static void multi_##t##_plain(int n, float *s, const void *x, \
                                                             const void *y, size_t by,      \
                                                             int nc)                        \
    {                                                                                      \
        PASSES(cols, call_plain)                                                           \
    }                                                                                      \
    __attribute__((noinline)) static void multi_##t##_vnni(int n, float *s, const void *x,  \
                                                            const void *y, size_t by,       \
                                                            int nc)                         \
    {                                                                                      \
        PASSES(cols, call_vnni)                                                            \
    }                                                                                      \
    void quant__vec_dot_multi_##t##_avx512(int n, float *s, const void *x, const void *y,  \
                                           size_t by, int nc)                               \
    {                                                                                      \
        if (use_vnni())                                                                    \
            multi_##t##_vnni(n, s, x, y, by, nc);                                          \
        else                                                                               \
            multi_##t##_plain(n, s, x, y, by, nc);                                         \
    }

#define K_ENTRY(t)                                                                         \
    ENTRY(t, QUANT_MULTI_MAX, multi_##t(n, sc0, x, yc0, by, w, 0),                         \
          multi_##t(n, sc0, x, yc0, by, w, 1))
#define LEGACY_ENTRY(t, is_q8)                                                             \
    ENTRY(t, LEGACY_COLS, multi_legacy(n, sc0, x, yc0, by, w, is_q8, 0),                   \
          multi_legacy(n, sc0, x, yc0, by, w, is_q8, 1))

K_ENTRY(q2_K)
K_ENTRY(q3_K)
K_ENTRY(q4_K)
K_ENTRY(q5_K)
K_ENTRY(q6_K)
LEGACY_ENTRY(q8_0, 1)
LEGACY_ENTRY(q4_0, 0)
