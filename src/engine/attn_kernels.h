/* Attention kernels over the F16 KV cache: one query against many cached key rows. */
#ifndef TANDEM_ENGINE_ATTN_KERNELS_H
#define TANDEM_ENGINE_ATTN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* out[i] = dot(q, k + i*stride) for i in [0, n_rows): hd halves per row, f32 accumulation.
 * q holds hd halves. */
typedef void (*attn_qk_fn)(int hd, int n_rows, const uint16_t *k, size_t stride,
                           const uint16_t *q, float *out);

/* The kernel for a SIMD level (0 scalar, 1 AVX2, 2 AVX-512), falling back to lower levels. */
attn_qk_fn attn_qk_at(int level);

void attn__qk_scalar(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                     float *out);
void attn__qk_avx2(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                   float *out);
void attn__qk_avx512(int hd, int n_rows, const uint16_t *k, size_t stride, const uint16_t *q,
                     float *out);

#endif
