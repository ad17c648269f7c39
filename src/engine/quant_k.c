/* K-quants Q2_K..Q6_K and their Q8_K activations: exact dequantization and scalar dot products. */
#include "engine/quant_impl.h"

#include <math.h>
#include <string.h>

/* Layouts follow ggml's K-quants. A super-block holds 256 values in sub-blocks of 16 (Q2_K,
 * Q3_K, Q6_K) or 32 (Q4_K, Q5_K) values, each with its own small integer scale (and min), and
 * one or two fp16 super-scales. Quantized bits are stored so that one 32-byte load covers 32
 * consecutive values' low bits: for a 128-value half, byte l holds the bits of values
 * l, l+32, l+64, l+96 (2-bit types) or l, l+32 (4-bit nibbles per 64 values). */

/* Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves the rounded
 * integer in the low mantissa bits. No float-to-int conversion, so no UB for any input; the
 * SIMD Q8_K quantizers use the same steps, which makes them bit-identical. */
static inline int nearest_int(float f)
{
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* Scale and min j (0..7) of Q4_K/Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes.
 * Bytes 0-3: scale 0-3 (low 6 bits), high 2 bits of scale 4-7; bytes 4-7: min 0-3, high 2
 * bits of min 4-7; bytes 8-11: low nibble scale 4-7, high nibble min 4-7. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* The sixteen signed scales of Q3_K: 6-bit values biased by 32. Low nibbles: bytes 0-7
 * (scales 0-7 low, 8-15 high nibble); high 2 bits: byte 8 + (i % 4), bit pair i / 4. */
static inline void q3_K_scales(const uint8_t *s, int out[16])
{
    for (int i = 0; i < 16; i++) {
        const int lo = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
        const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        out[i] = (lo | hi << 4) - 32;
    }
}

/* ---- dequantization ---- */

void quant__to_float_q2_K(const void *src, float *dst, int64_t n)
{
    const struct block_q2_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *dst++ = dl * ((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void quant__to_float_q3_K(const void *src, float *dst, int64_t n)
{
    const struct block_q3_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d);
        int sc[16];
        q3_K_scales(x[i].scales, sc);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int is = 0;
        uint8_t m = 1;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d * sc[is++];
                    for (int l = 16 * k; l < 16 * k + 16; l++)
                        *dst++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void quant__to_float_q4_K(const void *src, float *dst, int64_t n)
{
    const struct block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q += 32) {
            int sc, m;
            scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void quant__to_float_q5_K(const void *src, float *dst, int64_t n)
{
    const struct block_q5_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int j = 0; j < QK_K / 64; j++, ql += 32) {
            int sc, m;
            scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

void quant__to_float_q6_K(const void *src, float *dst, int64_t n)
{
    const struct block_q6_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * sc[is] * q1;
                dst[l + 32] = d * sc[is + 2] * q2;
                dst[l + 64] = d * sc[is + 4] * q3;
                dst[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

void quant__to_float_q8_K(const void *src, float *dst, int64_t n)
{
    const struct block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            *dst++ = x[i].d * x[i].qs[j];
}

/* ---- Q8_K activations ---- */

/* As the reference engine quantizes activations for its K-quant products: per 256 values,
 * the first value of largest magnitude maps to -127 (iscale = -127 / max, keeping the sign),
 * levels round half to even and are capped at 127; an all-zero block is all zeros. With
 * -127 rather than -128 our integer dot products equal the reference's, so logits match the
 * golden files almost exactly. */
void quant__from_float_q8_K(const float *src, void *dst, int64_t n)
{
    struct block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(src[j]);
            if (ax > amax) {
                amax = ax;
                max = src[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = nearest_int(iscale * src[j]);
            /* The low byte, as the SIMD kernels' truncating packs store it. */
            y[i].qs[j] = (int8_t)(uint8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- scalar dot products against Q8_K: exact integer sums per sub-block, then scaled ---- */

/* The oracles of the SIMD kernels, and the only kernels on non-x86 builds: levels are decoded
 * into a small array, then dotted per sub-block in plain loops the compiler can vectorize.
 * Min terms use the activations' bsums: sum(m * q8) over a sub-block is m * bsum. */

void quant__vec_dot_q2_K(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q2_K *x = vx;
    const struct block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t q[QK_K];
        for (int half = 0; half < 2; half++)
            for (int part = 0; part < 4; part++)
                for (int l = 0; l < 32; l++)
                    q[128 * half + 32 * part + l] = (x[i].qs[32 * half + l] >> (2 * part)) & 3;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += (x[i].scales[j] & 0xF) * dot;
            summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        sumf += y[i].d * (fp16_to_fp32(x[i].d) * (float)sumi -
                          fp16_to_fp32(x[i].dmin) * (float)summ);
    }
    *s = sumf;
}

void quant__vec_dot_q3_K(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q3_K *x = vx;
    const struct block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sc[16];
        q3_K_scales(x[i].scales, sc);
        int8_t q[QK_K];
        for (int half = 0; half < 2; half++)
            for (int part = 0; part < 4; part++)
                for (int l = 0; l < 32; l++) {
                    const int b = 4 * half + part; /* hmask bit of values 32b.. */
                    q[32 * b + l] = (int8_t)(((x[i].qs[32 * half + l] >> (2 * part)) & 3) +
                                             (((x[i].hmask[l] >> b) & 1) << 2) - 4);
                }
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += sc[j] * dot;
        }
        sumf += y[i].d * fp16_to_fp32(x[i].d) * (float)sumi;
    }
    *s = sumf;
}

void quant__vec_dot_q4_K(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_K *x = vx;
    const struct block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, q += 32, q8 += 64) {
            int sc1, m1, sc2, m2;
            scale_min_k4(2 * j, x[i].scales, &sc1, &m1);
            scale_min_k4(2 * j + 1, x[i].scales, &sc2, &m2);
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (q[l] & 0xF) * q8[l];
                hi += (q[l] >> 4) * q8[l + 32];
            }
            sumi += sc1 * lo + sc2 * hi;
            summ += m1 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m2 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        sumf += y[i].d * (fp16_to_fp32(x[i].d) * (float)sumi -
                          fp16_to_fp32(x[i].dmin) * (float)summ);
    }
    *s = sumf;
}

void quant__vec_dot_q5_K(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_K *x = vx;
    const struct block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t q[QK_K];
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++) {
                const uint8_t lo = x[i].qs[32 * j + l], hi = x[i].qh[l];
                q[64 * j + l] = (uint8_t)((lo & 0xF) | (((hi >> (2 * j)) & 1) << 4));
                q[64 * j + l + 32] = (uint8_t)((lo >> 4) | (((hi >> (2 * j + 1)) & 1) << 4));
            }
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            scale_min_k4(j, x[i].scales, &sc, &m);
            int32_t dot = 0;
            for (int l = 0; l < 32; l++)
                dot += q[32 * j + l] * y[i].qs[32 * j + l];
            sumi += sc * dot;
            summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sumf += y[i].d * (fp16_to_fp32(x[i].d) * (float)sumi -
                          fp16_to_fp32(x[i].dmin) * (float)summ);
    }
    *s = sumf;
}

void quant__vec_dot_q6_K(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q6_K *x = vx;
    const struct block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[i].ql + 64 * half, *qh = x[i].qh + 32 * half;
            int8_t *o = q + 128 * half;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * dot;
        }
        sumf += y[i].d * fp16_to_fp32(x[i].d) * (float)sumi;
    }
    *s = sumf;
}
