/* AVX2 K-quant helpers shared by quant_k_avx2.c and quant_multi_avx2.c (same lane layout). */
#ifndef TANDEM_ENGINE_QUANT_K_AVX2_IMPL_H
#define TANDEM_ENGINE_QUANT_K_AVX2_IMPL_H

#include <immintrin.h>
#include <stdint.h>

#include "engine/quant_impl.h"

static inline float hsum_128(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

static inline float hsum_256(__m256 v)
{
    return hsum_128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

static inline __m256i loadu_256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i loadu_128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* pshufb controls that broadcast one 16-bit word over a 128-bit lane. pick_32[k]: word k
 * in both lanes (one scale per 32 values); pick_16[k]: word 2k in the low lane, 2k + 1 in
 * the high lane (one scale per 16 values). */
#define W8(a) a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1
static const uint8_t pick_32[8][32] __attribute__((aligned(32))) = {
    {W8(0), W8(0)},   {W8(2), W8(2)},   {W8(4), W8(4)},   {W8(6), W8(6)},
    {W8(8), W8(8)},   {W8(10), W8(10)}, {W8(12), W8(12)}, {W8(14), W8(14)},
};
static const uint8_t pick_16[4][32] __attribute__((aligned(32))) = {
    {W8(0), W8(2)}, {W8(4), W8(6)}, {W8(8), W8(10)}, {W8(12), W8(14)},
};

static inline __m256i pick(__m256i v, const uint8_t *ctl)
{
    return _mm256_shuffle_epi8(v, _mm256_load_si256((const __m256i *)ctl));
}

/* Q4_K/Q5_K scales and mins (12 bytes at s, 16 readable) as bytes: scales 0-7, mins 0-7.
 * Bytes 0-3: scale 0-3 and the top bits of scale 4-7; 4-7: min 0-3 and the top bits of min
 * 4-7; 8-11: the low nibbles of scale 4-7 and min 4-7. */
static inline __m128i k4_scales_mins(const uint8_t *s)
{
    const __m128i v = loadu_128(s);
    const __m128i a =
        _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i lo = _mm_or_si128(
        _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)),
        _mm_and_si128(_mm_srli_epi16(a, 4),
                      _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)));
    const __m128i b =
        _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    return _mm_or_si128(lo, _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30)));
}

/* Q3_K's sixteen scales, unbiased (-32..31), as words. s - 4 .. s + 11 must be readable (the
 * scales end 2 bytes before the block does). Scale i: low nibble from byte i % 8 (high
 * nibble for i >= 8), top two bits from byte 8 + i % 4, bit pair i / 4. */
static inline __m256i q3_K_scales(const uint8_t *s)
{
    const __m128i v = loadu_128(s - 4);
    const __m128i l =
        _mm_shuffle_epi8(v, _mm_setr_epi8(4, 5, 6, 7, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i lo = _mm_or_si128(
        _mm_and_si128(l, _mm_setr_epi8(15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0, 0, 0)),
        _mm_and_si128(_mm_srli_epi16(l, 4),
                      _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15, 15, 15, 15, 15)));
    const __m128i h = _mm_shuffle_epi8(v, _mm_set1_epi32(0x0f0e0d0c)); /* bytes 8-11 of s */
    const __m128i hi = _mm_and_si128(
        _mm_slli_epi32(_mm_srlv_epi32(h, _mm_setr_epi32(0, 2, 4, 6)), 4), _mm_set1_epi8(0x30));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32)));
}

/* Pairwise sums of the 16 bsums: the sums of the eight 32-value sub-blocks. */
static inline __m128i bsums_32(const struct block_q8_K *y)
{
    return _mm_hadd_epi16(loadu_128(y->bsums), loadu_128(y->bsums + 8));
}

#endif
