/* AVX2 legacy-block helpers shared by quant_legacy_avx2.c and quant_multi_avx2.c. */
#ifndef TANDEM_ENGINE_QUANT_LEGACY_AVX2_IMPL_H
#define TANDEM_ENGINE_QUANT_LEGACY_AVX2_IMPL_H

#include <immintrin.h>
#include <stdint.h>

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* The half field `f` of 8 consecutive blocks starting at p, as 8 floats. */
#define HALVES8(p, f)                                                                     \
    _mm256_cvtph_ps(_mm_setr_epi16((short)(p)[0].f, (short)(p)[1].f, (short)(p)[2].f,   \
                                   (short)(p)[3].f, (short)(p)[4].f, (short)(p)[5].f,   \
                                   (short)(p)[6].f, (short)(p)[7].f))

/* 32 nibbles of a 4-bit block as bytes 0..15 in element order: low nibbles (elements 0..15)
 * in the low lane, high nibbles (elements 16..31) in the high lane. */
static inline __m256i nibbles32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

#endif
