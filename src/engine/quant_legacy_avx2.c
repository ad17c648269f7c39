/* AVX2/FMA/F16C kernels for the float and legacy block types: dot products and activation
 * quantizers (formats and reference semantics in quant_legacy.c). */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "engine/quant_legacy_avx2_impl.h"

/* ---- shared helpers ---- */

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Byte j = 0x10 where bit j of the (little-endian) 32-bit field at p is set, else 0. */
static inline __m256i fifth_bits(const uint8_t *p)
{
    uint32_t bits;
    memcpy(&bits, p, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Sums of 4 adjacent u*s byte products as 8 int32 (u unsigned <= 31, s signed: no int16
 * saturation). */
static inline __m256i dot_u8s8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* As dot_u8s8 for (u - off) * s, u <= 31, off 8 or 16: the int16 difference stays in range. */
static inline __m256i dot_u8s8_off(__m256i u, __m256i s, __m256i off)
{
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, s), _mm256_maddubs_epi16(off, s));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Signed x * signed y via |x| * sign(y, x). Exact unless x = y = -128 (the reference
 * quantizers never produce -128). */
static inline __m256i dot_s8s8(__m256i x, __m256i y)
{
    return dot_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static inline __m256i load32(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* ---- F32, F16, BF16 dot products ----
 * x (the weights) is streamed from memory: a short head brings it to a 32-byte boundary so no
 * load straddles a cache line. y stays in cache. All loads tolerate any alignment. */

/* Elements before p reaches a 32-byte boundary (0 if its address is not a multiple of elem). */
static inline int head_to_32(const void *p, int elem, int n)
{
    const int mis = (int)((uintptr_t)p & 31);
    if (!mis || mis % elem)
        return 0;
    const int h = (32 - mis) / elem;
    return h < n ? h : n;
}

static const int32_t tail_mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes 0..k-1 set, k <= 8. */
static inline __m256i lanes(int k)
{
    return _mm256_loadu_si256((const __m256i *)(tail_mask_src + 8 - k));
}

static inline float sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    return hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

void quant__vec_dot_f32_avx2(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = head_to_32(x, 4, n);
    if (i)
        a1 = _mm256_mul_ps(_mm256_maskload_ps(x, lanes(i)), _mm256_maskload_ps(y, lanes(i)));
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    if (i < n) {
        const __m256i m = lanes(n - i);
        a2 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), a2);
    }
    *s = sum4(a0, a1, a2, a3);
}

#define F16U(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

void quant__vec_dot_f16_avx2(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int head = head_to_32(x, 2, n);
    float rest = 0;
    for (int k = 0; k < head; k++)
        rest += h2f(x[k]) * h2f(y[k]);
    int i = head;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(F16U(x + i), F16U(y + i), a0);
        a1 = _mm256_fmadd_ps(F16U(x + i + 8), F16U(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(F16U(x + i + 16), F16U(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(F16U(x + i + 24), F16U(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(F16U(x + i), F16U(y + i), a0);
    for (; i < n; i++)
        rest += h2f(x[i]) * h2f(y[i]);
    *s = sum4(a0, a1, a2, a3) + rest;
}

static inline __m256 widen_bf16(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

#define BFU(p) widen_bf16(_mm_loadu_si128((const __m128i *)(p)))

void quant__vec_dot_bf16_avx2(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int head = head_to_32(x, 2, n);
    float rest = 0;
    for (int k = 0; k < head; k++)
        rest += bf16_to_fp32(x[k]) * bf16_to_fp32(y[k]);
    int i = head;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(BFU(x + i), BFU(y + i), a0);
        a1 = _mm256_fmadd_ps(BFU(x + i + 8), BFU(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(BFU(x + i + 16), BFU(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(BFU(x + i + 24), BFU(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(BFU(x + i), BFU(y + i), a0);
    for (; i < n; i++)
        rest += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
    *s = sum4(a0, a1, a2, a3) + rest;
}

/* ---- block dot products ----
 * Blocks go in groups of 8: SCALES stores the 8 scale products d_x * d_y into ds[STRIDE * k],
 * converted with one vcvtph2ps pair, and each block's 8 int32 partial sums are scaled into
 * one of four accumulators. */

#define GROUP_LOOP(BLOCK_DOT, SCALES, STRIDE, TAIL_EXTRA)                                 \
    for (; i + 8 <= nb; i += 8) {                                                          \
        float ds[16];                                                                      \
        SCALES;                                                                            \
        for (int k = 0; k < 8; k += 4) {                                                   \
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(BLOCK_DOT(i + k)),                     \
                                 _mm256_broadcast_ss(ds + STRIDE * k), a0);                \
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(BLOCK_DOT(i + k + 1)),                 \
                                 _mm256_broadcast_ss(ds + STRIDE * (k + 1)), a1);          \
            a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(BLOCK_DOT(i + k + 2)),                 \
                                 _mm256_broadcast_ss(ds + STRIDE * (k + 2)), a2);          \
            a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(BLOCK_DOT(i + k + 3)),                 \
                                 _mm256_broadcast_ss(ds + STRIDE * (k + 3)), a3);          \
        }                                                                                  \
    }                                                                                      \
    for (; i < nb; i++) {                                                                  \
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(BLOCK_DOT(i)),                             \
                             _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), a0);               \
        TAIL_EXTRA;                                                                        \
    }

#define SCALES_0() _mm256_storeu_ps(ds, _mm256_mul_ps(HALVES8(x + i, d), HALVES8(y + i, d)))

static inline int32_t load_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The 32-bit field at byte 0 of each of 4 consecutive blocks of `size` bytes: d and m of
 * Q4_1/Q5_1, d and s of Q8_1. (Explicit inserts: GCC builds a vector from 8 scalars through
 * the stack.) */
static inline __m128i dwords4(const uint8_t *p, size_t size)
{
    __m128i v = _mm_cvtsi32_si128(load_i32(p));
    v = _mm_insert_epi32(v, load_i32(p + size), 1);
    v = _mm_insert_epi32(v, load_i32(p + 2 * size), 2);
    return _mm_insert_epi32(v, load_i32(p + 3 * size), 3);
}

/* _1 types: (d_x, m_x) times (d_y, s_y) lane by lane gives d_x * d_y in the even lanes (the
 * scales, ds[2k]) and the m_x * s_y terms in the odd ones, which are summed on the side. */
static inline void scales_1(float ds[16], __m256 *am, const void *x, size_t xsize, const void *y,
                            size_t ysize)
{
    const uint8_t *xb = x, *yb = y;
    const __m256 lo = _mm256_mul_ps(_mm256_cvtph_ps(dwords4(xb, xsize)),
                                    _mm256_cvtph_ps(dwords4(yb, ysize)));
    const __m256 hi = _mm256_mul_ps(_mm256_cvtph_ps(dwords4(xb + 4 * xsize, xsize)),
                                    _mm256_cvtph_ps(dwords4(yb + 4 * ysize, ysize)));
    _mm256_storeu_ps(ds, lo);
    _mm256_storeu_ps(ds + 8, hi);
    *am = _mm256_add_ps(*am, _mm256_blend_ps(_mm256_setzero_ps(), _mm256_add_ps(lo, hi), 0xaa));
}

#define SCALES_1() scales_1(ds, &am, x + i, sizeof(*x), y + i, sizeof(*y))
#define MIN_TAIL() mt += h2f(x[i].m) * h2f(y[i].s)
#define NOTHING() ((void)0)

void quant__vec_dot_q4_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK4_0;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define Q4_0_DOT(b) dot_u8s8_off(nibbles32(x[b].qs), load32(y[b].qs), off)
    GROUP_LOOP(Q4_0_DOT, SCALES_0(), 1, NOTHING())
#undef Q4_0_DOT
    *s = sum4(a0, a1, a2, a3);
}

void quant__vec_dot_q4_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q4_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK4_1;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, am = a0;
    float mt = 0;
    int i = 0;
#define Q4_1_DOT(b) dot_u8s8(nibbles32(x[b].qs), load32(y[b].qs))
    GROUP_LOOP(Q4_1_DOT, SCALES_1(), 2, MIN_TAIL())
#undef Q4_1_DOT
    *s = sum4(a0, a1, a2, a3) + (hsum_ps(am) + mt);
}

void quant__vec_dot_q5_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK5_0;
    const __m256i off = _mm256_set1_epi8(16);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define Q5_0_DOT(b)                                                                        \
    dot_u8s8_off(_mm256_or_si256(nibbles32(x[b].qs), fifth_bits(x[b].qh)), load32(y[b].qs), off)
    GROUP_LOOP(Q5_0_DOT, SCALES_0(), 1, NOTHING())
#undef Q5_0_DOT
    *s = sum4(a0, a1, a2, a3);
}

void quant__vec_dot_q5_1_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q5_1 *x = vx;
    const struct block_q8_1 *y = vy;
    const int nb = n / QK5_1;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, am = a0;
    float mt = 0;
    int i = 0;
#define Q5_1_DOT(b) dot_u8s8(_mm256_or_si256(nibbles32(x[b].qs), fifth_bits(x[b].qh)), load32(y[b].qs))
    GROUP_LOOP(Q5_1_DOT, SCALES_1(), 2, MIN_TAIL())
#undef Q5_1_DOT
    *s = sum4(a0, a1, a2, a3) + (hsum_ps(am) + mt);
}

void quant__vec_dot_q8_0_avx2(int n, float *s, const void *vx, const void *vy)
{
    const struct block_q8_0 *x = vx;
    const struct block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define Q8_0_DOT(b) dot_s8s8(load32(x[b].qs), load32(y[b].qs))
    GROUP_LOOP(Q8_0_DOT, SCALES_0(), 1, NOTHING())
#undef Q8_0_DOT
    *s = sum4(a0, a1, a2, a3);
}

/* ---- activation quantizers: bit-identical to the reference ones ---- */

void quant__from_float_f16_avx2(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 qnan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        /* vcvtps2ph keeps NaN payload bits; the reference gives sign | 0x7e00. */
        const __m256 canon = _mm256_or_ps(_mm256_and_ps(v, sign), qnan);
        v = _mm256_blendv_ps(v, canon, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        y[i] = fp16_from_fp32(src[i]);
}

/* 8 floats -> bf16 (round to nearest even, NaN quieted) as 8 int32 holding 16-bit values. */
static inline __m256i bf16_round8(__m256 f)
{
    const __m256i u = _mm256_castps_si256(f);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(r, q, nan);
}

void quant__from_float_bf16_avx2(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = bf16_round8(_mm256_loadu_ps(src + i));
        const __m256i b = bf16_round8(_mm256_loadu_ps(src + i + 8));
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; i++)
        y[i] = bf16_from_fp32(src[i]);
}

/* roundf (half away from zero), exactly: truncate, then step away from zero when the dropped
 * fraction is at least one half. v - trunc(v) is exact in binary floating point, so no double
 * rounding can creep in (unlike trunc(v + 0.5), which rounds 0.49999997 up). */
static inline __m256 round_half_away(__m256 v)
{
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 frac = _mm256_and_ps(_mm256_sub_ps(v, t), absmask);
    const __m256 step = _mm256_or_ps(_mm256_andnot_ps(absmask, v), _mm256_set1_ps(1.0f));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(up, step));
}

/* One Q8 block: d (as float) into *d_out and the 32 quants into *q_out (the low byte of the
 * truncating conversion, as the reference's cast compiles on x86). Returns -1, setting
 * nothing, for a block holding a NaN: the reference's sequential max is order-dependent then,
 * so such blocks are left to the scalar code. */
static inline int quantize_q8_block_avx2(const float *x, float *d_out, __m256i *q_out)
{
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 nan = _mm256_or_ps(
        _mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)),
        _mm256_or_ps(_mm256_cmp_ps(v2, v2, _CMP_UNORD_Q), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
    if (_mm256_movemask_ps(nan))
        return -1;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 m = _mm256_max_ps(
        _mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
        _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    const float amax = hmax_ps(m);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = d;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i lo = _mm256_set1_epi32(0xff);
    const __m256i i0 = _mm256_and_si256(_mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v0, vid))), lo);
    const __m256i i1 = _mm256_and_si256(_mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v1, vid))), lo);
    const __m256i i2 = _mm256_and_si256(_mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v2, vid))), lo);
    const __m256i i3 = _mm256_and_si256(_mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v3, vid))), lo);
    /* Values are 0..255 now, so the saturating packs are plain narrowings. */
    const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(i0, i1), _mm256_packus_epi32(i2, i3));
    *q_out = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return 0;
}

void quant__from_float_q8_0_avx2(const float *src, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        __m256i q;
        if (quantize_q8_block_avx2(src + i * QK8_0, &d, &q) < 0) {
            quant__from_float_q8_0(src + i * QK8_0, &y[i], QK8_0);
            continue;
        }
        y[i].d = fp16_from_fp32(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

void quant__from_float_q8_1_avx2(const float *src, void *dst, int64_t n)
{
    struct block_q8_1 *y = dst;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        __m256i q;
        if (quantize_q8_block_avx2(src + i * QK8_1, &d, &q) < 0) {
            quant__from_float_q8_1(src + i * QK8_1, &y[i], QK8_1);
            continue;
        }
        y[i].d = fp16_from_fp32(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        /* sum of signed bytes = sum of (byte ^ 0x80) as unsigned - 32 * 128 */
        const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8(-128)),
                                            _mm256_setzero_si256());
        const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        const int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
        y[i].s = fp16_from_fp32((float)sum * d);
    }
}
