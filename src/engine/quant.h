/* Tensor types: block layouts, type traits and the runtime-dispatched dot-product kernels. */
#ifndef TANDEM_ENGINE_QUANT_H
#define TANDEM_ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "base/fp16.h"

/* Values are the GGUF/ggml type ids, so a tensor's on-disk type maps straight to the enum. */
enum qtype {
    QTYPE_F32 = 0,
    QTYPE_F16 = 1,
    QTYPE_Q4_0 = 2,
    QTYPE_Q4_1 = 3,
    QTYPE_Q5_0 = 6,
    QTYPE_Q5_1 = 7,
    QTYPE_Q8_0 = 8,
    QTYPE_Q8_1 = 9,
    QTYPE_Q2_K = 10,
    QTYPE_Q3_K = 11,
    QTYPE_Q4_K = 12,
    QTYPE_Q5_K = 13,
    QTYPE_Q6_K = 14,
    QTYPE_Q8_K = 15,
    QTYPE_BF16 = 30,
    QTYPE_COUNT = 31
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* Legacy blocks of 32 values. d/m are IEEE half floats stored as raw bits. */
struct block_q4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
struct block_q4_1 { uint16_t d; uint16_t m; uint8_t qs[QK4_1 / 2]; };
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct block_q5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct block_q8_0 { uint16_t d; int8_t qs[QK8_0]; };
/* Activation type for q4_1/q5_1: s = d * sum(qs). Scales are half floats, as on disk. */
struct block_q8_1 { uint16_t d; uint16_t s; int8_t qs[QK8_1]; };

/* K-quant super-blocks of 256 values. */
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d; uint16_t dmin; };
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct block_q4_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct block_q5_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
/* Activation type for all K-quants: float scale, bsums[j] = sum of qs[16j..16j+15]. */
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

_Static_assert(sizeof(struct block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(struct block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(struct block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(struct block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(struct block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(struct block_q8_1) == 36, "q8_1 block");
_Static_assert(sizeof(struct block_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(struct block_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(struct block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(struct block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(struct block_q6_K) == 210, "q6_K block");
_Static_assert(sizeof(struct block_q8_K) == 292, "q8_K block");

/* Dequantize n values (n a multiple of the block size). */
typedef void (*quant_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantize n values (n a multiple of the block size) into blocks. */
typedef void (*quant_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(x, y) over n values: x in the weight type, y in that type's vec_dot_type. */
typedef void (*quant_vec_dot_fn)(int n, float *s, const void *x, const void *y);

struct qtype_traits {
    const char *name;                  /* "Q4_K", as GGUF tools print it */
    int64_t block_size;                /* values per block */
    size_t type_size;                  /* bytes per block */
    bool is_quantized;
    quant_to_float_fn to_float;        /* required */
    quant_from_float_fn from_float;    /* required: reference (scalar) quantizer */
    enum qtype vec_dot_type;           /* type the other operand of vec_dot must be in */
    quant_vec_dot_fn vec_dot;          /* scalar reference kernel; NULL for activation-only types */
};

/* Traits of a type, or NULL for an id that is not a supported type. Static storage. */
const struct qtype_traits *quant_traits(int type);
/* Type by name ("Q4_K", case-insensitive), or -1. */
int quant_type_from_name(const char *name);
/* Bytes of a row of n values; 0 if n is not a multiple of the block size. */
size_t quant_row_size(enum qtype t, int64_t n);

/* SIMD levels, from the CPU at run time (base/cpu.h decides which is available). */
enum quant_level { QUANT_LEVEL_SCALAR = 0, QUANT_LEVEL_AVX2 = 1, QUANT_LEVEL_AVX512 = 2, QUANT_LEVEL_COUNT };

/* The fastest vec_dot kernel for type t at or below `level` (falls back to scalar). */
quant_vec_dot_fn quant_vec_dot_at(enum qtype t, enum quant_level level);
/* The fastest quantizer for activations of type t (Q8_0, Q8_1, Q8_K, F16, BF16) at or below
 * `level`; its output must equal the reference from_float bit for bit. */
quant_from_float_fn quant_from_float_at(enum qtype t, enum quant_level level);

/* One weight row x against nc activation rows (1 <= nc <= QUANT_MULTI_MAX) of y, row stride by
 * bytes: s[j] = dot(x, y + j*by). Each s[j] must be bit-identical to what the same level's
 * vec_dot returns for that column; the point is unpacking x once for several tokens (prompt
 * processing). */
#define QUANT_MULTI_MAX 8
typedef void (*quant_vec_dot_multi_fn)(int n, float *s, const void *x, const void *y, size_t by,
                                       int nc);
/* The multi-column kernel for type t at exactly `level`, or NULL if that level has none. */
quant_vec_dot_multi_fn quant_vec_dot_multi_at(enum qtype t, enum quant_level level);

/* The level to use on this machine (base/cpu.c: the CPU's best, capped by TANDEM_CPU). */
enum quant_level quant_level_best(void);

#endif
