/* AVX-512 K-quant helpers shared by quant_k_avx512.c and quant_multi_avx512.c. */
#ifndef TANDEM_ENGINE_QUANT_K_AVX512_IMPL_H
#define TANDEM_ENGINE_QUANT_K_AVX512_IMPL_H

#include <immintrin.h>
#include <stdint.h>

#include "engine/quant_impl.h"

/* acc += pairwise products of int16 p and scales sc, summed into int32 lanes. The empty asm
 * keeps the compiler (clang does) from fusing madd + add into vpdpwssd in the plain path,
 * which must run on CPUs without VNNI although this file is compiled with -mavx512vnni. */
static inline __attribute__((always_inline)) __m512i
madd_acc(__m512i acc, __m512i p, __m512i sc, const int vnni)
{
    if (vnni)
        return _mm512_dpwssd_epi32(acc, p, sc);
    __m512i m = _mm512_madd_epi16(p, sc);
    __asm__("" : "+v"(m));
    return _mm512_add_epi32(acc, m);
}

static inline __m256i loadu_256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i loadu_128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline __m512i loadu_512(const void *p) { return _mm512_loadu_si512(p); }
/* 32 bytes into both 256-bit halves. */
static inline __m512i bcast_256(const void *p) { return _mm512_broadcast_i64x4(loadu_256(p)); }

/* Per-qword counts: a for the low 256-bit half, b for the high one. */
static inline __m512i halves(long long a, long long b)
{
    return _mm512_set_epi64(b, b, b, b, a, a, a, a);
}

/* pshufb controls for a register holding the same 8 words in every 128-bit lane: word 2j
 * over lanes 0-1 and word 2j + 1 over lanes 2-3 (the 32-value sub-blocks 2j, 2j + 1). */
#define W8(a) a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1
static const uint8_t pick_k4[4][64] __attribute__((aligned(64))) = {
    {W8(0), W8(0), W8(2), W8(2)},
    {W8(4), W8(4), W8(6), W8(6)},
    {W8(8), W8(8), W8(10), W8(10)},
    {W8(12), W8(12), W8(14), W8(14)},
};

/* vpermd indices: lane i (of 4) filled with dword 4c + i, i.e. the four 16-value scales of
 * 64-value chunk c. */
#define L4(a) a, a, a, a
static const int32_t pick_16[4][16] __attribute__((aligned(64))) = {
    {L4(0), L4(1), L4(2), L4(3)},
    {L4(4), L4(5), L4(6), L4(7)},
    {L4(8), L4(9), L4(10), L4(11)},
    {L4(12), L4(13), L4(14), L4(15)},
};

static inline __m512i load_512(const void *p) { return _mm512_load_si512(p); }

/* The four 16-value scales of 64-value chunk c, one per 128-bit lane. */
static inline __m512i scale_16(__m512i scales, int c)
{
    return _mm512_permutexvar_epi32(load_512(pick_16[c]), scales);
}

/* Sixteen int16 scales as dwords holding the scale in both words, for pick_16. */
static inline __m512i dup_words(__m256i sc16)
{
    const __m512i d = _mm512_cvtepi16_epi32(sc16);
    return _mm512_ternarylogic_epi32(d, _mm512_set1_epi32(0xffff), _mm512_slli_epi32(d, 16), 0xEA);
}

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

/* Lanes k and k + 8 summed: exactly the int32 lanes of the AVX2 kernels, whose float steps
 * (and so results, bit for bit) the AVX-512 kernels then repeat. Lane k of either half covers
 * bytes 4k..4k+3 of a 32-value chunk, as in a 256-bit register. */
static inline __m256i fold(__m512i v)
{
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
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
    return _mm_ternarylogic_epi32(lo, _mm_srli_epi16(b, 2), _mm_set1_epi8(0x30), 0xF8);
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
    const __m128i hi = _mm_slli_epi32(_mm_srlv_epi32(h, _mm_setr_epi32(0, 2, 4, 6)), 4);
    const __m128i all = _mm_ternarylogic_epi32(lo, hi, _mm_set1_epi8(0x30), 0xF8);
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(all, _mm_set1_epi8(32)));
}

static inline __m128i bsums_32(const struct block_q8_K *y)
{
    return _mm_hadd_epi16(loadu_128(y->bsums), loadu_128(y->bsums + 8));
}

/* a | (b & c) in one vpternlogd: merges masked bit fields. */
static inline __m512i or_and(__m512i a, __m512i b, __m512i c)
{
    return _mm512_ternarylogic_epi32(a, b, c, 0xF8);
}

#endif
