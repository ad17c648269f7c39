/* Float types and the 32-value legacy block types: exact dequantizers, the reference
 * quantizers (ggml's semantics, so our files and activations match its byte for byte) and the
 * scalar dot products that the SIMD kernels in quant_legacy_avx*.c are tested against. */
#include "engine/quant_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The reference quantizers convert floats to small integers with a plain C cast, which x86
 * compiles to cvttss2si (truncate; NaN and out-of-range give INT32_MIN) followed by taking the
 * low byte. Spelling that out keeps degenerate blocks (inf, NaN, a scale whose inverse
 * overflows) defined behaviour and still byte-identical to files made on x86. */
static inline int32_t trunc_i32(float f)
{
    if (!(f > -2147483904.0f && f < 2147483648.0f))
        return INT32_MIN;
    return (int32_t)f;
}

static inline int low_i8(int32_t v)
{
    const int b = (int)((uint32_t)v & 0xffu);
    return b < 128 ? b : b - 256;
}

static inline int low_u8(int32_t v) { return (int)((uint32_t)v & 0xffu); }

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* The quantizers below keep each product x * id in its own statement: the reference rounds it
 * before adding the offset, and a compiler may fuse a product and an add of one expression
 * into an FMA (clang does on FMA targets), which would change some quants. */

/* ---- F32, F16, BF16 ---- */

void quant__to_float_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void quant__from_float_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void quant__to_float_f16(const void *src, float *dst, int64_t n)
{
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp16_to_fp32(x[i]);
}

void quant__from_float_f16(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++)
        y[i] = fp16_from_fp32(src[i]);
}

void quant__to_float_bf16(const void *src, float *dst, int64_t n)
{
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = bf16_to_fp32(x[i]);
}

void quant__from_float_bf16(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++)
        y[i] = bf16_from_fp32(src[i]);
}

/* Float dot products accumulate in double: the oracle should be more accurate than the SIMD
 * kernels it checks. */
void quant__vec_dot_f32(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)x[i] * y[i];
    *s = (float)sum;
}

void quant__vec_dot_f16(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
    *s = (float)sum;
}

void quant__vec_dot_bf16(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
    *s = (float)sum;
}

/* ---- Q4_0: q in 0..15, x = d * (q - 8); byte j holds element j (low nibble) and j+16 ---- */

/* The value of largest magnitude, sign kept (the first one on ties, as in the reference);
 * Q4_0 and Q5_0 map it to the most negative quant. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    *min = lo;
    *max = hi;
}

void quant__from_float_q4_0(const float *src, void *dst, int64_t n)
{
    struct block_q4_0 *y = dst;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK4_0;
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_fp32(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float v0 = x[j] * id, v1 = x[j + QK4_0 / 2] * id;
            const int q0 = min_int(15, low_i8(trunc_i32(v0 + 8.5f)));
            const int q1 = min_int(15, low_i8(trunc_i32(v1 + 8.5f)));
            y[i].qs[j] = (uint8_t)((q0 & 0xff) | ((q1 & 0x0f) << 4));
        }
    }
}

void quant__to_float_q4_0(const void *src, float *dst, int64_t n)
{
    const struct block_q4_0 *x = src;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        float *y = dst + i * QK4_0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void quant__vec_dot_q4_0(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK4_0;
    float sum = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
        }
        sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

/* ---- Q4_1: q in 0..15, x = d * q + m ---- */

void quant__from_float_q4_1(const float *src, void *dst, int64_t n)
{
    struct block_q4_1 *y = dst;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK4_1;
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_fp32(d);
        y[i].m = fp16_from_fp32(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float v0 = (x[j] - min) * id, v1 = (x[j + QK4_1 / 2] - min) * id;
            const int q0 = min_int(15, low_i8(trunc_i32(v0 + 0.5f)));
            const int q1 = min_int(15, low_i8(trunc_i32(v1 + 0.5f)));
            y[i].qs[j] = (uint8_t)((q0 & 0xff) | ((q1 & 0x0f) << 4));
        }
    }
}

void quant__to_float_q4_1(const void *src, float *dst, int64_t n)
{
    const struct block_q4_1 *x = src;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        float *y = dst + i * QK4_1;
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void quant__vec_dot_q4_1(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK4_1;
    float sum = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK4_1 / 2];
        }
        sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    *s = sum;
}

/* ---- Q5_0: q in 0..31, x = d * (q - 16); bit 4 of element j is bit j of qh ---- */

void quant__from_float_q5_0(const float *src, void *dst, int64_t n)
{
    struct block_q5_0 *y = dst;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK5_0;
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_fp32(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const float v0 = x[j] * id, v1 = x[j + QK5_0 / 2] * id;
            const int q0 = min_int(31, low_i8(trunc_i32(v0 + 16.5f)));
            const int q1 = min_int(31, low_i8(trunc_i32(v1 + 16.5f)));
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 & 0x10) >> 4 << j;
            qh |= (uint32_t)(q1 & 0x10) >> 4 << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

void quant__to_float_q5_0(const void *src, float *dst, int64_t n)
{
    const struct block_q5_0 *x = src;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        float *y = dst + i * QK5_0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((x[i].qs[j] & 0x0f) | h0) - 16) * d;
            y[j + QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* 0x10 in byte k where bit k of b is set: b copied to every byte, bit k kept in byte k, and
 * each nonzero byte turned into 0x80 by adding 0x7f (no carry leaves a byte), then moved. */
static inline uint64_t fifth_bits8(unsigned b)
{
    const uint64_t x = ((uint64_t)(b & 0xff) * 0x0101010101010101ull) & 0x8040201008040201ull;
    return ((x + 0x7f7f7f7f7f7f7f7full) & 0x8080808080808080ull) >> 3;
}

/* The 32 five-bit quants of a Q5 block, in element order, 8 at a time in 64-bit words (this is
 * the kernel on non-x86 builds, so the byte-at-a-time bit fiddling is worth avoiding). */
static void unpack_q5(const uint8_t qs[16], const uint8_t qh[4], uint8_t q[32])
{
    for (int k = 0; k < 2; k++) {
        uint64_t lo;
        memcpy(&lo, qs + 8 * k, 8);
        const uint64_t a = (lo & 0x0f0f0f0f0f0f0f0full) | fifth_bits8(qh[k]);
        const uint64_t b = (lo >> 4 & 0x0f0f0f0f0f0f0f0full) | fifth_bits8(qh[k + 2]);
        memcpy(q + 8 * k, &a, 8);
        memcpy(q + 16 + 8 * k, &b, 8);
    }
}

void quant__vec_dot_q5_0(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK5_0;
    float sum = 0;
    for (int i = 0; i < nb; i++) {
        uint8_t q[32];
        unpack_q5(x[i].qs, x[i].qh, q);
        int sumi = 0;
        for (int j = 0; j < 32; j++)
            sumi += (q[j] - 16) * y[i].qs[j];
        sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

/* ---- Q5_1: q in 0..31, x = d * q + m ---- */

void quant__from_float_q5_1(const float *src, void *dst, int64_t n)
{
    struct block_q5_1 *y = dst;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK5_1;
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp16_from_fp32(d);
        y[i].m = fp16_from_fp32(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* No clamp to 31 here, as in the reference: (max - min) * id rounds to <= 31. */
            const float v0 = (x[j] - min) * id, v1 = (x[j + QK5_1 / 2] - min) * id;
            const int q0 = low_u8(trunc_i32(v0 + 0.5f));
            const int q1 = low_u8(trunc_i32(v1 + 0.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 & 0x10) >> 4 << j;
            qh |= (uint32_t)(q1 & 0x10) >> 4 << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

void quant__to_float_q5_1(const void *src, float *dst, int64_t n)
{
    const struct block_q5_1 *x = src;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        float *y = dst + i * QK5_1;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)((x[i].qs[j] & 0x0f) | h0) * d + m;
            y[j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void quant__vec_dot_q5_1(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK5_1;
    float sum = 0;
    for (int i = 0; i < nb; i++) {
        uint8_t q[32];
        unpack_q5(x[i].qs, x[i].qh, q);
        int sumi = 0;
        for (int j = 0; j < 32; j++)
            sumi += q[j] * y[i].qs[j];
        sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    *s = sum;
}

/* ---- Q8_0 and Q8_1: q in -127..127, x = d * q; Q8_1 also keeps s = d * sum(q) ---- */

/* One block's scale (as the unrounded float, stored as half in *d_half) and 32 quants;
 * returns sum(q). Shared by Q8_0 and Q8_1. */
static int quantize_q8_block(const float *x, float *d_out, uint16_t *d_half, int8_t *qs)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = d;
    *d_half = fp16_from_fp32(d);
    int sum = 0;
    for (int j = 0; j < QK8_0; j++) {
        qs[j] = (int8_t)low_i8(trunc_i32(roundf(x[j] * id)));
        sum += qs[j];
    }
    return sum;
}

void quant__from_float_q8_0(const float *src, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    float d;
    for (int64_t i = 0; i < nb; i++)
        quantize_q8_block(src + i * QK8_0, &d, &y[i].d, y[i].qs);
}

void quant__to_float_q8_0(const void *src, float *dst, int64_t n)
{
    const struct block_q8_0 *x = src;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            dst[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

void quant__vec_dot_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q8_0 *x = vx, *y = vy;
    const int nb = n / QK8_0;
    float sum = 0;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++)
            sumi += x[i].qs[j] * y[i].qs[j];
        sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

void quant__from_float_q8_1(const float *src, void *dst, int64_t n)
{
    struct block_q8_1 *y = dst;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        const int sum = quantize_q8_block(src + i * QK8_1, &d, &y[i].d, y[i].qs);
        /* As in the reference: the float d, not its half rounding. */
        y[i].s = fp16_from_fp32((float)sum * d);
    }
}

void quant__to_float_q8_1(const void *src, float *dst, int64_t n)
{
    const struct block_q8_1 *x = src;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++)
            dst[i * QK8_1 + j] = (float)x[i].qs[j] * d;
    }
}
