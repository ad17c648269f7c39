/* Attention kernels with AVX2 + F16C + FMA. */
#include <immintrin.h>

#include "engine/attn_kernels.h"

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void attn__qk_avx2(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                   float *out)
{
    if (hd % 8) {
        attn__qk_scalar(hd, n_rows, k, stride, q, out);
        return;
    }
    for (int i = 0; i < n_rows; i++) {
        const uint16_t *row = k + (size_t)i * stride;
        __m256 acc = _mm256_setzero_ps();
        for (int d = 0; d < hd; d += 8) {
            const __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + d)));
            const __m256 qv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q + d)));
            acc = _mm256_fmadd_ps(kv, qv, acc);
        }
        out[i] = hsum256(acc);
    }
}
