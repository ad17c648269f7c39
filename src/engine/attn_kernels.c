/* Attention kernels: the scalar reference and the dispatch to the SIMD versions. */
#include "engine/attn_kernels.h"

#include "base/fp16.h"

#pragma weak attn__qk_avx2
#pragma weak attn__qk_avx512

void attn__qk_scalar(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                     float *out)
{
    for (int i = 0; i < n_rows; i++) {
        const uint16_t *row = k + (size_t)i * stride;
        float s = 0;
        for (int d = 0; d < hd; d++)
            s += fp16_to_fp32(row[d]) * fp16_to_fp32(q[d]);
        out[i] = s;
    }
}

attn_qk_fn attn_qk_at(int level)
{
    if (level >= 2 && attn__qk_avx512)
        return attn__qk_avx512;
    if (level >= 1 && attn__qk_avx2)
        return attn__qk_avx2;
    return attn__qk_scalar;
}
