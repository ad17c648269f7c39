/* Attention kernels with AVX-512: the query stays in registers, each key row is one pass. */
#include <immintrin.h>

#include "engine/attn_kernels.h"

void attn__qk_avx512(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                     float *out)
{
    if (hd % 16 || hd > 256) {
        attn__qk_avx2(hd, n_rows, k, stride, q, out);
        return;
    }
    const int nv = hd / 16;
    __m512 qv[16];
    for (int v = 0; v < nv; v++)
        qv[v] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q + 16 * v)));
    for (int i = 0; i < n_rows; i++) {
        const uint16_t *row = k + (size_t)i * stride;
        __m512 acc = _mm512_setzero_ps();
        for (int v = 0; v < nv; v++)
            acc = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * v))),
                                  qv[v], acc);
        out[i] = _mm512_reduce_add_ps(acc);
    }
}
