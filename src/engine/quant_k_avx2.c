/* AVX2 kernels for the K-quants: dot products against Q8_K, and the Q8_K quantizer. */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <string.h>

#include "engine/quant_k_avx2_impl.h"

/* Every dot product works the same way: unsigned quant levels (the -4/-32 offsets of Q3_K
 * and Q6_K moved into a bsums term) times int8 activations with maddubs (no saturation: levels
 * are at most 63, so a pair sums to at most 2 * 63 * 128), then madd by the 16-bit sub-block
 * scale into exact int32 lanes; one float FMA per super-block. */

/* The fp16 pair (d, dmin) at p times the activations' scale yd, in lanes 0 and 1. */
static inline __m128 d_dmin(const void *p, float yd)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(v)), _mm_set1_ps(yd));
}

void quant__vec_dot_q4_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(x[i].scales));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsums_32(&y[i]));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i bits = loadu_256(q4);
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            __m256i pl = _mm256_maddubs_epi16(lo, loadu_256(q8));
            __m256i ph = _mm256_maddubs_epi16(hi, loadu_256(q8 + 32));
            pl = _mm256_madd_epi16(pick(scales, pick_32[2 * j]), pl);
            ph = _mm256_madd_epi16(pick(scales, pick_32[2 * j + 1]), ph);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_256(acc) + hsum_128(acc_m);
}

void quant__vec_dot_q5_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(x[i].scales));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsums_32(&y[i]));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps(dd, 0x55), _mm_cvtepi32_ps(prod), acc_m);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *ql = x[i].qs;
        const int8_t *q8 = y[i].qs;
        /* bit 2j of each qh byte is the fifth bit of the low nibbles of chunk j, bit 2j+1 of
         * the high nibbles; h moves them down two bits per chunk */
        __m256i h = loadu_256(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, ql += 32, q8 += 64) {
            const __m256i bits = loadu_256(ql);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(h, 4), m16));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(h, 3), m16));
            h = _mm256_srli_epi16(h, 2);
            __m256i pl = _mm256_maddubs_epi16(lo, loadu_256(q8));
            __m256i ph = _mm256_maddubs_epi16(hi, loadu_256(q8 + 32));
            pl = _mm256_madd_epi16(pick(scales, pick_32[2 * j]), pl);
            ph = _mm256_madd_epi16(pick(scales, pick_32[2 * j + 1]), ph);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_256(acc) + hsum_128(acc_m);
}

void quant__vec_dot_q6_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q6_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i sc = _mm256_cvtepi8_epi16(loadu_128(x[i].scales));
        /* levels are stored +32: subtract 32 * sum(scale * bsum) */
        const __m256i off = _mm256_madd_epi16(sc, loadu_256(y[i].bsums));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, q8 += 128) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc, sc, 0x11)
                                        : _mm256_permute2x128_si256(sc, sc, 0x00);
            const __m256i l0 = loadu_256(ql), l1 = loadu_256(ql + 32), hb = loadu_256(qh);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_and_si256(hb, m30));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            const __m256i p0 = _mm256_maddubs_epi16(q0, loadu_256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(q1, loadu_256(q8 + 32));
            const __m256i p2 = _mm256_maddubs_epi16(q2, loadu_256(q8 + 64));
            const __m256i p3 = _mm256_maddubs_epi16(q3, loadu_256(q8 + 96));
            const __m256i s0 = _mm256_madd_epi16(pick(scales, pick_16[0]), p0);
            const __m256i s1 = _mm256_madd_epi16(pick(scales, pick_16[1]), p1);
            const __m256i s2 = _mm256_madd_epi16(pick(scales, pick_16[2]), p2);
            const __m256i s3 = _mm256_madd_epi16(pick(scales, pick_16[3]), p3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(s0, s1),
                                                           _mm256_add_epi32(s2, s3)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_256(acc);
}

void quant__vec_dot_q3_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q3_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i sc = q3_K_scales(x[i].scales);
        /* levels are stored +4: subtract 4 * sum(scale * bsum) */
        const __m256i off = _mm256_madd_epi16(sc, loadu_256(y[i].bsums));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 2));
        /* bit b of hmask byte l is the third bit of value 32b + l */
        const __m256i hm = loadu_256(x[i].hmask);
        const int8_t *q8 = y[i].qs;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc, sc, 0x11)
                                        : _mm256_permute2x128_si256(sc, sc, 0x00);
            const __m256i bits = loadu_256(x[i].qs + 32 * half);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++, q8 += 32) {
                const int b = 4 * half + j;
                const __m256i h =
                    b < 2 ? _mm256_slli_epi16(hm, 2 - b) : _mm256_srli_epi16(hm, b - 2);
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                const __m256i q3 = _mm256_or_si256(q2, _mm256_and_si256(h, m4));
                const __m256i p = _mm256_maddubs_epi16(q3, loadu_256(q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pick(scales, pick_16[j]), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_256(acc);
}

void quant__vec_dot_q2_K_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q2_K *x = vx;
    const struct block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128 dd = d_dmin(&x[i].d, y[i].d);
        const __m128i sc8 = loadu_128(x[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i prod = _mm256_madd_epi16(mins, loadu_256(y[i].bsums));
        acc_m = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                 _mm256_cvtepi32_ps(prod), acc_m);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i scales = half ? _mm256_permute2x128_si256(sc, sc, 0x11)
                                        : _mm256_permute2x128_si256(sc, sc, 0x00);
            const __m256i bits = loadu_256(x[i].qs + 32 * half);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++, q8 += 32) {
                const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                const __m256i p = _mm256_maddubs_epi16(q2, loadu_256(q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pick(scales, pick_16[j]), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_256(acc) + hsum_256(acc_m);
}

/* ---- Q8_K quantizer, bit-identical to quant__from_float_q8_K ---- */

/* The scalar nearest_int: add 1.5 * 2^23 and take the low mantissa bits, then the min with
 * 127 and the low byte, exactly as the scalar code stores it (for any input). */
static inline __m256i q8_K_levels(__m256 v, __m256 iscale)
{
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(iscale, v), _mm256_set1_ps(12582912.f));
    __m256i i = _mm256_and_si256(_mm256_castps_si256(t), _mm256_set1_epi32(0x007fffff));
    i = _mm256_sub_epi32(i, _mm256_set1_epi32(0x00400000));
    i = _mm256_min_epi32(i, _mm256_set1_epi32(127));
    return _mm256_and_si256(i, _mm256_set1_epi32(0xff));
}

/* Sums of each 16 bytes of qs[256], in order (exact: |sum| <= 2048). */
static inline void q8_K_bsums(const int8_t *qs, int16_t *bsums)
{
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i p[8];
    for (int k = 0; k < 8; k++) /* lane 0: pair sums of bytes 32k..+15, lane 1: 32k+16.. */
        p[k] = _mm256_maddubs_epi16(ones, loadu_256(qs + 32 * k));
    const __m256i a =
        _mm256_hadd_epi16(_mm256_hadd_epi16(p[0], p[1]), _mm256_hadd_epi16(p[2], p[3]));
    const __m256i b =
        _mm256_hadd_epi16(_mm256_hadd_epi16(p[4], p[5]), _mm256_hadd_epi16(p[6], p[7]));
    /* lane 0: groups 0, 2, .., 14; lane 1: groups 1, 3, .., 15 */
    const __m256i c = _mm256_hadd_epi16(a, b);
    const __m128i even = _mm256_castsi256_si128(c), odd = _mm256_extracti128_si256(c, 1);
    _mm_storeu_si128((__m128i *)bsums, _mm_unpacklo_epi16(even, odd));
    _mm_storeu_si128((__m128i *)(bsums + 8), _mm_unpackhi_epi16(even, odd));
}

void quant__from_float_q8_K_avx2(const float *src, void *dst, int64_t n)
{
    struct block_q8_K *y = dst;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        /* max |x| (NaN never wins: it is the first operand of max), then the first element
         * with that magnitude, as the scalar's strict "greater" scan picks it */
        __m256 vmax = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(src + j), abs_mask), vmax);
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        if (!amax) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const __m256 vam = _mm256_set1_ps(amax);
        int first = 0;
        for (int j = 0; j < QK_K; j += 8) {
            const __m256 ax = _mm256_and_ps(_mm256_loadu_ps(src + j), abs_mask);
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(ax, vam, _CMP_EQ_OQ));
            if (mask) {
                first = j + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        const float iscale = -127.f / src[first];
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (int j = 0; j < QK_K; j += 32) {
            const __m256i a = q8_K_levels(_mm256_loadu_ps(src + j), vis);
            const __m256i b = q8_K_levels(_mm256_loadu_ps(src + j + 8), vis);
            const __m256i c = q8_K_levels(_mm256_loadu_ps(src + j + 16), vis);
            const __m256i e = q8_K_levels(_mm256_loadu_ps(src + j + 24), vis);
            /* values are 0..255, so the saturating packs keep them unchanged */
            const __m256i ab = _mm256_packus_epi32(a, b), ce = _mm256_packus_epi32(c, e);
            const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, ce), order);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), bytes);
        }
        q8_K_bsums(y[i].qs, y[i].bsums);
        y[i].d = 1 / iscale;
    }
}
