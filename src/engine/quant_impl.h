/* Internal: the kernel functions behind the type-traits table in quant.c.
 * Naming: quant__to_float_<t>, quant__from_float_<t> (reference quantizer), quant__vec_dot_<t>
 * (scalar oracle, second operand in the type's vec_dot_type), and _avx2 / _avx512 variants
 * that must agree with the scalar oracle (bit for bit for quantizers; within float rounding
 * of the accumulation order for dot products). */
#ifndef TANDEM_ENGINE_QUANT_IMPL_H
#define TANDEM_ENGINE_QUANT_IMPL_H

#include "engine/quant.h"

#define QUANT__DECL_TYPE(t)                                                              \
    void quant__to_float_##t(const void *src, float *dst, int64_t n);                    \
    void quant__from_float_##t(const float *src, void *dst, int64_t n);

#define QUANT__DECL_DOT(t)                                                               \
    void quant__vec_dot_##t(int n, float *s, const void *x, const void *y);              \
    void quant__vec_dot_##t##_avx2(int n, float *s, const void *x, const void *y);       \
    void quant__vec_dot_##t##_avx512(int n, float *s, const void *x, const void *y);

#define QUANT__DECL_ACT(t)                                                               \
    void quant__from_float_##t##_avx2(const float *src, void *dst, int64_t n);           \
    void quant__from_float_##t##_avx512(const float *src, void *dst, int64_t n);

/* quant_legacy*.c: float types and the 32-value block types. */
QUANT__DECL_TYPE(f32) QUANT__DECL_DOT(f32)
QUANT__DECL_TYPE(f16) QUANT__DECL_DOT(f16) QUANT__DECL_ACT(f16)
QUANT__DECL_TYPE(bf16) QUANT__DECL_DOT(bf16) QUANT__DECL_ACT(bf16)
QUANT__DECL_TYPE(q4_0) QUANT__DECL_DOT(q4_0)
QUANT__DECL_TYPE(q4_1) QUANT__DECL_DOT(q4_1)
QUANT__DECL_TYPE(q5_0) QUANT__DECL_DOT(q5_0)
QUANT__DECL_TYPE(q5_1) QUANT__DECL_DOT(q5_1)
QUANT__DECL_TYPE(q8_0) QUANT__DECL_DOT(q8_0) QUANT__DECL_ACT(q8_0)
QUANT__DECL_TYPE(q8_1) QUANT__DECL_ACT(q8_1)
/* quant_k*.c: K-quants and their activation type. */
QUANT__DECL_TYPE(q2_K) QUANT__DECL_DOT(q2_K)
QUANT__DECL_TYPE(q3_K) QUANT__DECL_DOT(q3_K)
QUANT__DECL_TYPE(q4_K) QUANT__DECL_DOT(q4_K)
QUANT__DECL_TYPE(q5_K) QUANT__DECL_DOT(q5_K)
QUANT__DECL_TYPE(q6_K) QUANT__DECL_DOT(q6_K)
QUANT__DECL_TYPE(q8_K) QUANT__DECL_ACT(q8_K)

/* quant_multi_*.c: multi-column kernels (see quant_vec_dot_multi_fn), where they pay off. */
#define QUANT__DECL_MULTI(t)                                                                   \
    void quant__vec_dot_multi_##t##_avx2(int n, float *s, const void *x, const void *y,        \
                                         size_t by, int nc);                                   \
    void quant__vec_dot_multi_##t##_avx512(int n, float *s, const void *x, const void *y,      \
                                           size_t by, int nc);
QUANT__DECL_MULTI(q4_0) QUANT__DECL_MULTI(q8_0) QUANT__DECL_MULTI(q2_K) QUANT__DECL_MULTI(q3_K)
QUANT__DECL_MULTI(q4_K) QUANT__DECL_MULTI(q5_K) QUANT__DECL_MULTI(q6_K)

/* Test hooks: force the plain AVX-512 paths (0) or the VNNI/BF16 ones again (1, only where the
 * CPU has them). Not thread-safe; for tests and benchmarks. */
void quant__k_avx512_set_vnni(int on);
void quant__legacy_avx512_extensions(int vnni, int bf16);
void quant__multi_avx512_set_vnni(int on);

#endif
