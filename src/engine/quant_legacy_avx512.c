/* AVX-512 kernels for the float and legacy block types: dot products and activation
 * quantizers (formats and reference semantics in quant_legacy.c). The AVX-512 level promises
 * F/BW/VL/DQ only; VNNI and BF16 instructions run only where cpuid reports them. */
#include "engine/quant_impl.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/cpu.h"
#include "engine/quant_legacy_avx512_impl.h"

/* Extensions beyond the level's baseline; read once at load time, so every call afterwards is
 * a plain branch on a constant. */
static bool use_vnni, use_bf16;

__attribute__((constructor)) static void detect_extensions(void)
{
    const struct cpu_features *f = cpu_features_get();
    use_vnni = f->avx512_vnni;
    use_bf16 = f->avx512_bf16;
}

/* Test hook: turn the VNNI / BF16 paths off (0) or back on (1, only if the CPU has them), so
 * the plain AVX-512 paths can be tested on a CPU that has the extensions. Not thread-safe. */
void quant__legacy_avx512_extensions(int vnni, int bf16);
void quant__legacy_avx512_extensions(int vnni, int bf16)
{
    detect_extensions();
    use_vnni = use_vnni && vnni;
    use_bf16 = use_bf16 && bf16;
}

/* ---- shared helpers ---- */

/* The two halves at bytes 0..3 of each block (d, m of Q4_1/Q5_1; d, s of Q8_1), as 16 floats:
 * lanes 2t and 2t + 1 hold block t's. Dword permutes need block sizes that are multiples of 4. */
_Static_assert(sizeof(struct block_q4_1) % 4 == 0 && sizeof(struct block_q5_1) % 4 == 0 &&
                   sizeof(struct block_q8_1) % 4 == 0,
               "half_pairs8 permutes whole dwords");
static inline __attribute__((always_inline)) __m512 half_pairs8(const void *p, const int size)
{
    const uint8_t *b = p;
    const __m512i w = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set1_epi32(size / 4));
    __m512i h = _mm512_permutex2var_epi32(_mm512_loadu_si512(b), w, _mm512_loadu_si512(b + 64));
    if (7 * size >= 128) {
        const int w2 = second_window(size);
        const __m512i h2 = _mm512_permutex2var_epi32(
            _mm512_loadu_si512(b + w2), _mm512_sub_epi32(w, _mm512_set1_epi32(w2 / 4)),
            _mm512_loadu_si512(b + w2 + 64));
        h = _mm512_mask_mov_epi32(h, _mm512_cmpge_epi32_mask(w, _mm512_set1_epi32(32)), h2);
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(h));
}

/* Adds 16 to every byte whose bit in the two blocks' 32-bit qh fields is set. */
static inline __m512i add_fifth_bits(__m512i v, const uint8_t *qha, const uint8_t *qhb)
{
    uint32_t a, b;
    memcpy(&a, qha, 4);
    memcpy(&b, qhb, 4);
    const __mmask64 m = _cvtu64_mask64((uint64_t)a | (uint64_t)b << 32);
    return _mm512_mask_add_epi8(v, m, v, _mm512_set1_epi8(16));
}

/* Sums of 4 adjacent u*s byte products (u unsigned, s signed) as 16 int32. Without VNNI the
 * pairs go through int16, which saturates only for u = 128 with s = -128. */
static inline __m512i dot_u8s8(__m512i u, __m512i s, const bool vnni)
{
    if (vnni)
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

/* As dot_u8s8 for (u - off) * s with u <= 31 and off 8 or 16 (no int16 overflow). */
static inline __m512i dot_u8s8_off(__m512i u, __m512i s, __m512i off, const bool vnni)
{
    if (vnni)
        return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s),
                                _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, s));
    const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(u, s), _mm512_maddubs_epi16(off, s));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
}

/* Signed x * signed y as |x| * (y negated where x < 0). Exact unless x = y = -128 (the
 * reference quantizers never produce -128). */
static inline __m512i dot_s8s8(__m512i x, __m512i y, const bool vnni)
{
    const __mmask64 neg = _mm512_movepi8_mask(x);
    const __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
    return dot_u8s8(_mm512_abs_epi8(x), sy, vnni);
}

/* ---- F32, F16, BF16 dot products ----
 * x (the weights) is streamed from memory: a masked head brings it to a 64-byte boundary,
 * since 64-byte loads that straddle cache lines cut the bandwidth one core draws from DRAM by
 * about 40% (measured on Zen 5). y stays in cache. All loads tolerate any alignment. */

/* Elements before p reaches a 64-byte boundary (0 if its address is not a multiple of elem). */
static inline int head_to_64(const void *p, int elem, int n)
{
    const int mis = (int)((uintptr_t)p & 63);
    if (!mis || mis % elem)
        return 0;
    const int h = (64 - mis) / elem;
    return h < n ? h : n;
}

static inline __mmask16 mask16(int k) { return (__mmask16)((1u << k) - 1); }
static inline __mmask32 mask32(int k) { return (__mmask32)((1ull << k) - 1); }

void quant__vec_dot_f32_avx512(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = head_to_64(x, 4, n);
    if (i) {
        const __mmask16 m = mask16(i);
        a1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), _mm512_maskz_loadu_ps(m, y));
    }
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        const __mmask16 m = mask16(n - i);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a2);
    }
    *s = hsum4(a0, a1, a2, a3);
}

static inline __m512 f16_masked(__mmask16 m, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

void quant__vec_dot_f16_avx512(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = head_to_64(x, 2, n);
    if (i) {
        /* up to 31 elements */
        a1 = _mm512_mul_ps(f16_masked(mask16(i < 16 ? i : 16), x),
                           f16_masked(mask16(i < 16 ? i : 16), y));
        if (i > 16)
            a2 = _mm512_mul_ps(f16_masked(mask16(i - 16), x + 16), f16_masked(mask16(i - 16), y + 16));
    }
#define F16U(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(F16U(x + i), F16U(y + i), a0);
        a1 = _mm512_fmadd_ps(F16U(x + i + 16), F16U(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(F16U(x + i + 32), F16U(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(F16U(x + i + 48), F16U(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(F16U(x + i), F16U(y + i), a0);
#undef F16U
    if (i < n)
        a3 = _mm512_fmadd_ps(f16_masked(mask16(n - i), x + i), f16_masked(mask16(n - i), y + i), a3);
    *s = hsum4(a0, a1, a2, a3);
}

static inline __m512 widen_bf16(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* vdpbf16ps: 32 products per instruction, pairs summed in float. It treats bf16 subnormals
 * (below 1.2e-38) as zero, which the widening path does not. */
static void dot_bf16_dp(int n, float *s, const uint16_t *x, const uint16_t *y)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#define BFM(m, p) ((__m512bh)_mm512_maskz_loadu_epi16((m), (p)))
#define BFU(p) ((__m512bh)_mm512_loadu_si512(p))
    int i = head_to_64(x, 2, n);
    if (i)
        a1 = _mm512_dpbf16_ps(a1, BFM(mask32(i), x), BFM(mask32(i), y));
    for (; i + 128 <= n; i += 128) {
        a0 = _mm512_dpbf16_ps(a0, BFU(x + i), BFU(y + i));
        a1 = _mm512_dpbf16_ps(a1, BFU(x + i + 32), BFU(y + i + 32));
        a2 = _mm512_dpbf16_ps(a2, BFU(x + i + 64), BFU(y + i + 64));
        a3 = _mm512_dpbf16_ps(a3, BFU(x + i + 96), BFU(y + i + 96));
    }
    for (; i + 32 <= n; i += 32)
        a0 = _mm512_dpbf16_ps(a0, BFU(x + i), BFU(y + i));
    if (i < n)
        a2 = _mm512_dpbf16_ps(a2, BFM(mask32(n - i), x + i), BFM(mask32(n - i), y + i));
#undef BFM
#undef BFU
    *s = hsum4(a0, a1, a2, a3);
}

static void dot_bf16_widen(int n, float *s, const uint16_t *x, const uint16_t *y)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#define BFM(m, p) widen_bf16(_mm256_maskz_loadu_epi16((m), (p)))
#define BFU(p) widen_bf16(_mm256_loadu_si256((const __m256i *)(p)))
    int i = head_to_64(x, 2, n);
    if (i) {
        const int h = i < 16 ? i : 16;
        a1 = _mm512_mul_ps(BFM(mask16(h), x), BFM(mask16(h), y));
        if (i > 16)
            a2 = _mm512_mul_ps(BFM(mask16(i - 16), x + 16), BFM(mask16(i - 16), y + 16));
    }
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(BFU(x + i), BFU(y + i), a0);
        a1 = _mm512_fmadd_ps(BFU(x + i + 16), BFU(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(BFU(x + i + 32), BFU(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(BFU(x + i + 48), BFU(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(BFU(x + i), BFU(y + i), a0);
    if (i < n)
        a3 = _mm512_fmadd_ps(BFM(mask16(n - i), x + i), BFM(mask16(n - i), y + i), a3);
#undef BFM
#undef BFU
    *s = hsum4(a0, a1, a2, a3);
}

void quant__vec_dot_bf16_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_bf16)
        dot_bf16_dp(n, s, vx, vy);
    else
        dot_bf16_widen(n, s, vx, vy);
}

/* ---- block dot products ----
 * Two blocks per 512-bit vector, four pairs per group of 8 blocks. SCALES sets `ds`, whose
 * lane STRIDE * t holds block t's d_x * d_y; vpermps spreads them over each pair's halves.
 * A leftover pair gets its scales directly; an odd last block is paired with itself and a
 * zero scale for the copy. Each kernel is instantiated with and without VNNI. */

#define PAIR_LOOP(PAIR_DOT, SCALES, STRIDE, TAIL_EXTRA)                                   \
    const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, STRIDE, STRIDE, STRIDE, \
                                           STRIDE, STRIDE, STRIDE, STRIDE, STRIDE);       \
    const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(2 * STRIDE));            \
    const __m512i idx2 = _mm512_add_epi32(idx0, _mm512_set1_epi32(4 * STRIDE));            \
    const __m512i idx3 = _mm512_add_epi32(idx0, _mm512_set1_epi32(6 * STRIDE));            \
    for (; i + 8 <= nb; i += 8) {                                                         \
        __m512 ds;                                                                        \
        SCALES;                                                                           \
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR_DOT(i, i + 1)),                      \
                             _mm512_permutexvar_ps(idx0, ds), a0);                        \
        a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR_DOT(i + 2, i + 3)),                  \
                             _mm512_permutexvar_ps(idx1, ds), a1);                        \
        a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR_DOT(i + 4, i + 5)),                  \
                             _mm512_permutexvar_ps(idx2, ds), a2);                        \
        a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR_DOT(i + 6, i + 7)),                  \
                             _mm512_permutexvar_ps(idx3, ds), a3);                        \
    }                                                                                     \
    for (; i < nb; i += 2) {                                                              \
        const int j = i + 1 < nb ? i + 1 : i;                                             \
        const float sa = h2f(x[i].d) * h2f(y[i].d);                                       \
        const float sb = j != i ? h2f(x[j].d) * h2f(y[j].d) : 0.0f;                       \
        const __m512 sc = _mm512_insertf32x8(_mm512_set1_ps(sa), _mm256_set1_ps(sb), 1);  \
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR_DOT(i, j)), sc, a0);                 \
        TAIL_EXTRA(i);                                                                    \
        if (j != i)                                                                       \
            TAIL_EXTRA(j);                                                                \
    }

/* _0 types: the 8 scale products in lanes 0..7. */
#define SCALES_0() ds = _mm512_castps256_ps512(_mm256_mul_ps(HALVES8(x + i, d), HALVES8(y + i, d)))
/* _1 types: (d_x, m_x) times (d_y, s_y) lane by lane gives d_x * d_y in the even lanes and
 * the m_x * s_y terms in the odd ones, which are summed on the side. */
#define SCALES_1()                                                                        \
    ds = _mm512_mul_ps(half_pairs8(x + i, (int)sizeof(*x)), half_pairs8(y + i, (int)sizeof(*y))); \
    am = _mm512_mask_add_ps(am, 0xaaaa, am, ds)
#define MIN_TAIL(b) mt += h2f(x[b].m) * h2f(y[b].s)
#define NO_TAIL(b) ((void)(b))

static inline __attribute__((always_inline)) void
dot_q4_0(int n, float *s, const struct block_q4_0 *x, const struct block_q8_0 *y, const bool vnni)
{
    const int nb = n / QK4_0;
    const __m512i off = _mm512_set1_epi8(8);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define PAIR(a, b) dot_u8s8_off(nibbles_pair(x[a].qs, x[b].qs), load_pair(y[a].qs, y[b].qs), off, vnni)
    PAIR_LOOP(PAIR, SCALES_0(), 1, NO_TAIL)
#undef PAIR
    *s = hsum4(a0, a1, a2, a3);
}

void quant__vec_dot_q4_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_vnni)
        dot_q4_0(n, s, vx, vy, true);
    else
        dot_q4_0(n, s, vx, vy, false);
}

static inline __attribute__((always_inline)) void
dot_q4_1(int n, float *s, const struct block_q4_1 *x, const struct block_q8_1 *y, const bool vnni)
{
    const int nb = n / QK4_1;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 am = _mm512_setzero_ps();
    float mt = 0;
    int i = 0;
#define PAIR(a, b) dot_u8s8(nibbles_pair(x[a].qs, x[b].qs), load_pair(y[a].qs, y[b].qs), vnni)
    PAIR_LOOP(PAIR, SCALES_1(), 2, MIN_TAIL)
#undef PAIR
    *s = hsum4(a0, a1, a2, a3) + (_mm512_reduce_add_ps(am) + mt);
}

void quant__vec_dot_q4_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_vnni)
        dot_q4_1(n, s, vx, vy, true);
    else
        dot_q4_1(n, s, vx, vy, false);
}

static inline __attribute__((always_inline)) void
dot_q5_0(int n, float *s, const struct block_q5_0 *x, const struct block_q8_0 *y, const bool vnni)
{
    const int nb = n / QK5_0;
    const __m512i off = _mm512_set1_epi8(16);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define PAIR(a, b)                                                                         \
    dot_u8s8_off(add_fifth_bits(nibbles_pair(x[a].qs, x[b].qs), x[a].qh, x[b].qh),        \
                 load_pair(y[a].qs, y[b].qs), off, vnni)
    PAIR_LOOP(PAIR, SCALES_0(), 1, NO_TAIL)
#undef PAIR
    *s = hsum4(a0, a1, a2, a3);
}

void quant__vec_dot_q5_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_vnni)
        dot_q5_0(n, s, vx, vy, true);
    else
        dot_q5_0(n, s, vx, vy, false);
}

static inline __attribute__((always_inline)) void
dot_q5_1(int n, float *s, const struct block_q5_1 *x, const struct block_q8_1 *y, const bool vnni)
{
    const int nb = n / QK5_1;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 am = _mm512_setzero_ps();
    float mt = 0;
    int i = 0;
#define PAIR(a, b)                                                                         \
    dot_u8s8(add_fifth_bits(nibbles_pair(x[a].qs, x[b].qs), x[a].qh, x[b].qh),            \
             load_pair(y[a].qs, y[b].qs), vnni)
    PAIR_LOOP(PAIR, SCALES_1(), 2, MIN_TAIL)
#undef PAIR
    *s = hsum4(a0, a1, a2, a3) + (_mm512_reduce_add_ps(am) + mt);
}

void quant__vec_dot_q5_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_vnni)
        dot_q5_1(n, s, vx, vy, true);
    else
        dot_q5_1(n, s, vx, vy, false);
}

static inline __attribute__((always_inline)) void
dot_q8_0(int n, float *s, const struct block_q8_0 *x, const struct block_q8_0 *y, const bool vnni)
{
    const int nb = n / QK8_0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
#define PAIR(a, b) dot_s8s8(load_pair(x[a].qs, x[b].qs), load_pair(y[a].qs, y[b].qs), vnni)
    PAIR_LOOP(PAIR, SCALES_0(), 1, NO_TAIL)
#undef PAIR
    *s = hsum4(a0, a1, a2, a3);
}

void quant__vec_dot_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    if (use_vnni)
        dot_q8_0(n, s, vx, vy, true);
    else
        dot_q8_0(n, s, vx, vy, false);
}

/* ---- activation quantizers: bit-identical to the reference ones ---- */

/* vcvtps2ph keeps NaN payload bits; the reference gives sign | 0x7e00, which is what the
 * canonical quiet NaN of the same sign converts to. */
static inline __m256i f16_round16(__m512 v)
{
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i canon = _mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)),
        _mm512_set1_epi32(0x7fc00000));
    v = _mm512_mask_mov_ps(v, nan, _mm512_castsi512_ps(canon));
    return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
}

void quant__from_float_f16_avx512(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), f16_round16(_mm512_loadu_ps(src + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, f16_round16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

/* 16 floats -> bf16, round to nearest even, NaN quieted (as bf16_from_fp32). */
static inline __m256i bf16_round16(__m512 f)
{
    const __m512i u = _mm512_castps_si512(f);
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(r);
}

void quant__from_float_bf16_avx512(const float *src, void *dst, int64_t n)
{
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), bf16_round16(_mm512_loadu_ps(src + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, bf16_round16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

/* roundf (half away from zero), exactly: truncate, then step away from zero when the dropped
 * fraction (exact in binary floating point) is at least one half. */
static inline __m512 round_half_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u));
    const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, up, t, step);
}

/* One Q8 block: d (as float) into *d_out and the 32 quants (the low byte of the truncating
 * conversion, as the reference's cast compiles on x86) into qs. Returns -1, writing nothing,
 * for a block holding a NaN: the reference's sequential max is order-dependent then, so such
 * blocks are left to the scalar code. */
static inline int quantize_q8_block_avx512(const float *x, float *d_out, int8_t *qs)
{
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    if (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q))
        return -1;
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = d;
    const __m512 vid = _mm512_set1_ps(id);
    const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v0, vid))));
    const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v1, vid))));
    _mm_storeu_si128((__m128i *)qs, q0);
    _mm_storeu_si128((__m128i *)(qs + 16), q1);
    return 0;
}

void quant__from_float_q8_0_avx512(const float *src, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        if (quantize_q8_block_avx512(src + i * QK8_0, &d, y[i].qs) < 0)
            quant__from_float_q8_0(src + i * QK8_0, &y[i], QK8_0);
        else
            y[i].d = fp16_from_fp32(d);
    }
}

void quant__from_float_q8_1_avx512(const float *src, void *dst, int64_t n)
{
    struct block_q8_1 *y = dst;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        float d;
        if (quantize_q8_block_avx512(src + i * QK8_1, &d, y[i].qs) < 0) {
            quant__from_float_q8_1(src + i * QK8_1, &y[i], QK8_1);
            continue;
        }
        y[i].d = fp16_from_fp32(d);
        /* sum of signed bytes = sum of (byte ^ 0x80) as unsigned - 32 * 128 */
        const __m256i q = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8(-128)),
                                            _mm256_setzero_si256());
        const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        const int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
        y[i].s = fp16_from_fp32((float)sum * d);
    }
}
