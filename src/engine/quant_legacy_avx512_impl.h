/* AVX-512 legacy-block helpers shared by quant_legacy_avx512.c and quant_multi_avx512.c. */
#ifndef TANDEM_ENGINE_QUANT_LEGACY_AVX512_IMPL_H
#define TANDEM_ENGINE_QUANT_LEGACY_AVX512_IMPL_H

#include <immintrin.h>
#include <stdint.h>

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1)));
}

/* Block fields of a group of 8 blocks, gathered by permutes over 64-byte loads instead of 8 or
 * 16 scalar inserts each. Block sizes are 18..36 bytes (constants after inlining, so the index
 * setup is hoisted). Fields before byte 128 come from the loads at 0 and 64; the rest from a
 * second window of 128 bytes ending no later than the group does, so no load leaves it. */
static inline int second_window(int size) { return 8 * size - 128 < 128 ? 8 * size - 128 : 128; }

/* The half at byte `off` of each block, as 8 floats. */
static inline __attribute__((always_inline)) __m256 halves8(const void *p, const int size,
                                                            const int off)
{
    const uint8_t *b = p;
    const __m512i k = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i w = _mm512_add_epi16(_mm512_mullo_epi16(k, _mm512_set1_epi16((short)(size / 2))),
                                       _mm512_set1_epi16((short)(off / 2)));
    __m512i h = _mm512_permutex2var_epi16(_mm512_loadu_si512(b), w, _mm512_loadu_si512(b + 64));
    if (7 * size + off >= 128) {
        const int w2 = second_window(size);
        const __m512i h2 = _mm512_permutex2var_epi16(
            _mm512_loadu_si512(b + w2), _mm512_sub_epi16(w, _mm512_set1_epi16((short)(w2 / 2))),
            _mm512_loadu_si512(b + w2 + 64));
        h = _mm512_mask_mov_epi16(h, _mm512_cmpge_epi16_mask(w, _mm512_set1_epi16(64)), h2);
    }
    return _mm256_cvtph_ps(_mm512_castsi512_si128(h));
}

#define HALVES8(p, f)                                                                     \
    halves8((p), (int)sizeof((p)[0]), (int)((const char *)&(p)[0].f - (const char *)(p)))

/* Two blocks' 32 quants side by side: block a in the low 256 bits, block b in the high. */
static inline __m512i load_pair(const int8_t *a, const int8_t *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Two 4-bit blocks' nibbles as bytes in element order, laid out as load_pair's: each 16-byte
 * qs goes to two 128-bit lanes, and the second of them is shifted down to the high nibbles. */
static inline __m512i nibbles_pair(const uint8_t *qa, const uint8_t *qb)
{
    const __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qa));
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qb));
    const __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    const __m512i sh = _mm512_srlv_epi64(t, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
    return _mm512_and_si512(sh, _mm512_set1_epi8(0x0f));
}

#endif
