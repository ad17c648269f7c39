/* AVX-512 kernels for the K-quants (BW/VL/DQ, VNNI where present) and the Q8_K quantizer. */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "base/cpu.h"
#include "engine/quant_k_avx512_impl.h"

/* Each 512-bit step covers 64 values whose q8 bytes are contiguous: two 32-value chunks of the
 * super-block, one per 256-bit half. The quant bits are loaded once and broadcast to both
 * halves, and a per-qword variable shift (or rotate) brings each half's bits into place. The
 * product is maddubs (unsigned levels x int8, exact in int16) followed by a 16-bit madd by
 * the sub-block scale, fused into one vpdpwssd with VNNI. */

/* -1: from the CPU (resolved on first use), 0: plain AVX-512BW, 1: VNNI. */
static atomic_int vnni_mode = -1;

void quant__k_avx512_set_vnni(int mode);

/* Test hook (tests/engine/test_quant_k.c): force a path; VNNI is honoured only if present. */
void quant__k_avx512_set_vnni(int mode)
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

/* The fp16 pair (d, dmin) at p times the activations' scale yd, in lanes 0 and 1. */
static inline __m128 d_dmin(const void *p, float yd)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(v)), _mm_set1_ps(yd));
}

ALWAYS_INLINE void dot_q4_K(int n, float *s, const void *vx, const void *vy, const int vnni)
{
    const struct block_q4_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0xF), nib = halves(0, 4);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(x[i].scales));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsums_32(&y[i]));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m);
        const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            /* low nibbles in the low half, high nibbles in the high half */
            const __m512i q = _mm512_and_si512(_mm512_srlv_epi64(bcast_256(q4), nib), m4);
            const __m512i p = _mm512_maddubs_epi16(q, loadu_512(q8));
            sumi = madd_acc(sumi, p, _mm512_shuffle_epi8(scales, load_512(pick_k4[j])), vnni);
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    *s = hsum_256(acc) + hsum_128(acc_m);
}

ALWAYS_INLINE void dot_q5_K(int n, float *s, const void *vx, const void *vy, const int vnni)
{
    const struct block_q5_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0xF), m16 = _mm512_set1_epi8(0x10), nib = halves(0, 4);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(x[i].scales));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsums_32(&y[i]));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m);
        const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(ms));
        const __m512i qh = bcast_256(x[i].qh);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            /* fifth bits: bit 2j (low half) and 2j + 1 (high half) of each qh byte rotated to
             * bit 4; a rotate by 4 - b never moves the bit out of its byte */
            const __m512i rot = halves((64 + 4 - 2 * j) & 63, (64 + 3 - 2 * j) & 63);
            const __m512i lo = _mm512_and_si512(_mm512_srlv_epi64(bcast_256(q4), nib), m4);
            const __m512i q = or_and(lo, _mm512_rolv_epi64(qh, rot), m16);
            const __m512i p = _mm512_maddubs_epi16(q, loadu_512(q8));
            sumi = madd_acc(sumi, p, _mm512_shuffle_epi8(scales, load_512(pick_k4[j])), vnni);
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    *s = hsum_256(acc) + hsum_128(acc_m);
}

ALWAYS_INLINE void dot_q6_K(int n, float *s, const void *vx, const void *vy, const int vnni)
{
    const struct block_q6_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl_a = halves(4, 2), shr_b = halves(0, 2);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i sc = _mm256_cvtepi8_epi16(loadu_128(x[i].scales));
        const __m512i scales = dup_words(sc);
        /* levels are stored +32: subtract 32 * sum(scale * bsum) */
        const __m256i off = _mm256_madd_epi16(sc, loadu_256(y[i].bsums));
        __m512i sumi = _mm512_zextsi256_si512(
            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5)));
        const uint8_t *ql = x[i].ql, *qhp = x[i].qh;
        const int8_t *q8 = y[i].qs;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++, ql += 64, qhp += 32, q8 += 128) {
            /* a: values 0-63 of the half (low nibbles of ql[0..63], qh bits 0-1 and 2-3);
             * b: values 64-127 (high nibbles, qh bits 4-5 and 6-7) */
            const __m512i l = loadu_512(ql), qh = bcast_256(qhp);
            const __m512i a = or_and(_mm512_and_si512(l, m4), _mm512_sllv_epi64(qh, shl_a), m30);
            const __m512i b = or_and(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                     _mm512_srlv_epi64(qh, shr_b), m30);
            const __m512i pa = _mm512_maddubs_epi16(a, loadu_512(q8));
            const __m512i pb = _mm512_maddubs_epi16(b, loadu_512(q8 + 64));
            sumi = madd_acc(sumi, pa, scale_16(scales, 2 * half), vnni);
            sumi = madd_acc(sumi, pb, scale_16(scales, 2 * half + 1), vnni);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    *s = hsum_256(acc);
}

ALWAYS_INLINE void dot_q3_K(int n, float *s, const void *vx, const void *vy, const int vnni)
{
    const struct block_q3_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i sc = q3_K_scales(x[i].scales);
        const __m512i scales = dup_words(sc);
        /* levels are stored +4: subtract 4 * sum(scale * bsum) */
        const __m256i off = _mm256_madd_epi16(sc, loadu_256(y[i].bsums));
        __m512i sumi = _mm512_zextsi256_si512(
            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 2)));
        const __m512i hm = bcast_256(x[i].hmask);
        const int8_t *q8 = y[i].qs;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i bits = bcast_256(x[i].qs + 32 * half);
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++, q8 += 64) {
                /* chunks j = 2jj (low half) and 2jj + 1: level bits at shift 2j, third bit
                 * at hmask bit b = 4 * half + j, rotated to bit 2 */
                const int b = 4 * half + 2 * jj;
                const __m512i q2 = _mm512_and_si512(
                    _mm512_srlv_epi64(bits, halves(4 * jj, 4 * jj + 2)), m3);
                const __m512i q = or_and(q2, _mm512_rolv_epi64(hm, halves((66 - b) & 63,
                                                                          (65 - b) & 63)), m4);
                const __m512i p = _mm512_maddubs_epi16(q, loadu_512(q8));
                sumi = madd_acc(sumi, p, scale_16(scales, 2 * half + jj), vnni);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    *s = hsum_256(acc);
}

ALWAYS_INLINE void dot_q2_K(int n, float *s, const void *vx, const void *vy, const int vnni)
{
    const struct block_q2_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m256 acc_m = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m128i sc8 = loadu_128(x[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i prod = _mm256_madd_epi16(mins, loadu_256(y[i].bsums));
        acc_m = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                 _mm256_cvtepi32_ps(prod), acc_m);
        const __m512i scales = dup_words(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4)));
        const int8_t *q8 = y[i].qs;
        __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i bits = bcast_256(x[i].qs + 32 * half);
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++, q8 += 64) {
                const __m512i q = _mm512_and_si512(
                    _mm512_srlv_epi64(bits, halves(4 * jj, 4 * jj + 2)), m3);
                const __m512i p = _mm512_maddubs_epi16(q, loadu_512(q8));
                sumi = madd_acc(sumi, p, scale_16(scales, 2 * half + jj), vnni);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    *s = hsum_256(acc) + hsum_256(acc_m);
}

/* One plain and one VNNI instantiation per type; the VNNI one is only called after cpuid. */
#define DOT_ENTRY(t)                                                                       \
    __attribute__((noinline)) static void dot_##t##_plain(int n, float *s, const void *x,  \
                                                          const void *y)                    \
    {                                                                                      \
        dot_##t(n, s, x, y, 0);                                                            \
    }                                                                                      \
    __attribute__((noinline)) static void dot_##t##_vnni(int n, float *s, const void *x,   \
                                                         const void *y)                     \
    {                                                                                      \
        dot_##t(n, s, x, y, 1);                                                            \
    }                                                                                      \
    void quant__vec_dot_##t##_avx512(int n, float *s, const void *x, const void *y)        \
    {                                                                                      \
        if (use_vnni())                                                                    \
            dot_##t##_vnni(n, s, x, y);                                                    \
        else                                                                               \
            dot_##t##_plain(n, s, x, y);                                                   \
    }

DOT_ENTRY(q2_K)
DOT_ENTRY(q3_K)
DOT_ENTRY(q4_K)
DOT_ENTRY(q5_K)
DOT_ENTRY(q6_K)

/* ---- Q8_K quantizer, bit-identical to quant__from_float_q8_K ---- */

/* The scalar nearest_int (add 1.5 * 2^23, low mantissa bits), min 127, then the low byte. */
static inline __m128i q8_K_levels(__m512 v, __m512 iscale)
{
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(iscale, v), _mm512_set1_ps(12582912.f));
    __m512i i = _mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32(0x007fffff));
    i = _mm512_sub_epi32(i, _mm512_set1_epi32(0x00400000));
    i = _mm512_min_epi32(i, _mm512_set1_epi32(127));
    return _mm512_cvtepi32_epi8(i); /* truncating */
}

void quant__from_float_q8_K_avx512(const float *src, void *dst, int64_t n)
{
    struct block_q8_K *y = dst;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        /* max |x| (NaN never wins: it is the first operand of max), then the first element
         * with that magnitude, as the scalar's strict "greater" scan picks it */
        __m512 vmax = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + j)), vmax);
        const float amax = _mm512_reduce_max_ps(vmax);
        if (!amax) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const __m512 vam = _mm512_set1_ps(amax);
        int first = 0;
        for (int j = 0; j < QK_K; j += 16) {
            const __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + j)), vam,
                                                   _CMP_EQ_OQ);
            if (k) {
                first = j + __builtin_ctz((unsigned)k);
                break;
            }
        }
        const float iscale = -127.f / src[first];
        const __m512 vis = _mm512_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 16)
            _mm_storeu_si128((__m128i *)(y[i].qs + j), q8_K_levels(_mm512_loadu_ps(src + j), vis));
        /* bsums: byte pairs, then pairs of pairs (dwords of 4 bytes), then the four dwords of
         * each 16-byte lane */
        __m512i s4[4];
        for (int k = 0; k < 4; k++)
            s4[k] = _mm512_madd_epi16(_mm512_maddubs_epi16(ones, loadu_512(y[i].qs + 64 * k)),
                                      _mm512_set1_epi16(1));
        /* s4[k] lane g holds four partial sums of group 4k + g */
        const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s4[0], s4[1]),
                                             _mm512_unpackhi_epi32(s4[0], s4[1]));
        const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s4[2], s4[3]),
                                             _mm512_unpackhi_epi32(s4[2], s4[3]));
        /* lane g: [s0 pair, s1 pair, s0 pair, s1 pair] -> per lane: sums of groups 4k+g */
        const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23),
                                           _mm512_unpackhi_epi64(t01, t23));
        /* lane g, dword k: group 4k + g; transpose to group order 0..15 */
        const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __m512i ordered = _mm512_permutexvar_epi32(idx, u);
        _mm256_storeu_si256((__m256i *)y[i].bsums, _mm512_cvtepi32_epi16(ordered));
        y[i].d = 1 / iscale;
    }
}
