/* The type-traits table and the per-CPU-level kernel dispatch for every tensor type. */
#include "engine/quant_impl.h"

#include <strings.h>

#include "base/cpu.h"

/* Kernel files are developed independently; a kernel not (yet) linked in is a NULL entry,
 * and tests/engine/test_quant.c fails for every supported type that lacks one. */
#pragma weak quant__to_float_f32
#pragma weak quant__from_float_f32
#pragma weak quant__vec_dot_f32
#pragma weak quant__vec_dot_f32_avx2
#pragma weak quant__vec_dot_f32_avx512
#pragma weak quant__to_float_f16
#pragma weak quant__from_float_f16
#pragma weak quant__vec_dot_f16
#pragma weak quant__vec_dot_f16_avx2
#pragma weak quant__vec_dot_f16_avx512
#pragma weak quant__from_float_f16_avx2
#pragma weak quant__from_float_f16_avx512
#pragma weak quant__to_float_bf16
#pragma weak quant__from_float_bf16
#pragma weak quant__vec_dot_bf16
#pragma weak quant__vec_dot_bf16_avx2
#pragma weak quant__vec_dot_bf16_avx512
#pragma weak quant__from_float_bf16_avx2
#pragma weak quant__from_float_bf16_avx512
#pragma weak quant__to_float_q4_0
#pragma weak quant__from_float_q4_0
#pragma weak quant__vec_dot_q4_0
#pragma weak quant__vec_dot_q4_0_avx2
#pragma weak quant__vec_dot_q4_0_avx512
#pragma weak quant__to_float_q4_1
#pragma weak quant__from_float_q4_1
#pragma weak quant__vec_dot_q4_1
#pragma weak quant__vec_dot_q4_1_avx2
#pragma weak quant__vec_dot_q4_1_avx512
#pragma weak quant__to_float_q5_0
#pragma weak quant__from_float_q5_0
#pragma weak quant__vec_dot_q5_0
#pragma weak quant__vec_dot_q5_0_avx2
#pragma weak quant__vec_dot_q5_0_avx512
#pragma weak quant__to_float_q5_1
#pragma weak quant__from_float_q5_1
#pragma weak quant__vec_dot_q5_1
#pragma weak quant__vec_dot_q5_1_avx2
#pragma weak quant__vec_dot_q5_1_avx512
#pragma weak quant__to_float_q8_0
#pragma weak quant__from_float_q8_0
#pragma weak quant__vec_dot_q8_0
#pragma weak quant__vec_dot_q8_0_avx2
#pragma weak quant__vec_dot_q8_0_avx512
#pragma weak quant__from_float_q8_0_avx2
#pragma weak quant__from_float_q8_0_avx512
#pragma weak quant__to_float_q8_1
#pragma weak quant__from_float_q8_1
#pragma weak quant__from_float_q8_1_avx2
#pragma weak quant__from_float_q8_1_avx512
#pragma weak quant__to_float_q2_K
#pragma weak quant__from_float_q2_K
#pragma weak quant__vec_dot_q2_K
#pragma weak quant__vec_dot_q2_K_avx2
#pragma weak quant__vec_dot_q2_K_avx512
#pragma weak quant__to_float_q3_K
#pragma weak quant__from_float_q3_K
#pragma weak quant__vec_dot_q3_K
#pragma weak quant__vec_dot_q3_K_avx2
#pragma weak quant__vec_dot_q3_K_avx512
#pragma weak quant__to_float_q4_K
#pragma weak quant__from_float_q4_K
#pragma weak quant__vec_dot_q4_K
#pragma weak quant__vec_dot_q4_K_avx2
#pragma weak quant__vec_dot_q4_K_avx512
#pragma weak quant__to_float_q5_K
#pragma weak quant__from_float_q5_K
#pragma weak quant__vec_dot_q5_K
#pragma weak quant__vec_dot_q5_K_avx2
#pragma weak quant__vec_dot_q5_K_avx512
#pragma weak quant__to_float_q6_K
#pragma weak quant__from_float_q6_K
#pragma weak quant__vec_dot_q6_K
#pragma weak quant__vec_dot_q6_K_avx2
#pragma weak quant__vec_dot_q6_K_avx512
#pragma weak quant__to_float_q8_K
#pragma weak quant__from_float_q8_K
#pragma weak quant__from_float_q8_K_avx2
#pragma weak quant__from_float_q8_K_avx512

#pragma weak quant__vec_dot_multi_q4_0_avx2
#pragma weak quant__vec_dot_multi_q4_0_avx512
#pragma weak quant__vec_dot_multi_q8_0_avx2
#pragma weak quant__vec_dot_multi_q8_0_avx512
#pragma weak quant__vec_dot_multi_q2_K_avx2
#pragma weak quant__vec_dot_multi_q2_K_avx512
#pragma weak quant__vec_dot_multi_q3_K_avx2
#pragma weak quant__vec_dot_multi_q3_K_avx512
#pragma weak quant__vec_dot_multi_q4_K_avx2
#pragma weak quant__vec_dot_multi_q4_K_avx512
#pragma weak quant__vec_dot_multi_q5_K_avx2
#pragma weak quant__vec_dot_multi_q5_K_avx512
#pragma weak quant__vec_dot_multi_q6_K_avx2
#pragma weak quant__vec_dot_multi_q6_K_avx512

#define WEIGHT(T, t, NAME, BS, SIZE, VDT)                                                 \
    [QTYPE_##T] = {.name = NAME, .block_size = BS, .type_size = SIZE,                    \
                   .is_quantized = BS > 1, .to_float = quant__to_float_##t,              \
                   .from_float = quant__from_float_##t, .vec_dot_type = QTYPE_##VDT,     \
                   .vec_dot = quant__vec_dot_##t}
#define ACT(T, t, NAME, BS, SIZE)                                                         \
    [QTYPE_##T] = {.name = NAME, .block_size = BS, .type_size = SIZE, .is_quantized = 1, \
                   .to_float = quant__to_float_##t, .from_float = quant__from_float_##t, \
                   .vec_dot_type = QTYPE_##T, .vec_dot = NULL}

static const struct qtype_traits traits[QTYPE_COUNT] = {
    WEIGHT(F32, f32, "F32", 1, 4, F32),
    WEIGHT(F16, f16, "F16", 1, 2, F16),
    WEIGHT(BF16, bf16, "BF16", 1, 2, BF16),
    WEIGHT(Q4_0, q4_0, "Q4_0", QK4_0, sizeof(struct block_q4_0), Q8_0),
    WEIGHT(Q4_1, q4_1, "Q4_1", QK4_1, sizeof(struct block_q4_1), Q8_1),
    WEIGHT(Q5_0, q5_0, "Q5_0", QK5_0, sizeof(struct block_q5_0), Q8_0),
    WEIGHT(Q5_1, q5_1, "Q5_1", QK5_1, sizeof(struct block_q5_1), Q8_1),
    WEIGHT(Q8_0, q8_0, "Q8_0", QK8_0, sizeof(struct block_q8_0), Q8_0),
    ACT(Q8_1, q8_1, "Q8_1", QK8_1, sizeof(struct block_q8_1)),
    WEIGHT(Q2_K, q2_K, "Q2_K", QK_K, sizeof(struct block_q2_K), Q8_K),
    WEIGHT(Q3_K, q3_K, "Q3_K", QK_K, sizeof(struct block_q3_K), Q8_K),
    WEIGHT(Q4_K, q4_K, "Q4_K", QK_K, sizeof(struct block_q4_K), Q8_K),
    WEIGHT(Q5_K, q5_K, "Q5_K", QK_K, sizeof(struct block_q5_K), Q8_K),
    WEIGHT(Q6_K, q6_K, "Q6_K", QK_K, sizeof(struct block_q6_K), Q8_K),
    ACT(Q8_K, q8_K, "Q8_K", QK_K, sizeof(struct block_q8_K)),
};

#define LEVELS(T, t) [QTYPE_##T] = {quant__vec_dot_##t, quant__vec_dot_##t##_avx2, quant__vec_dot_##t##_avx512}
static const quant_vec_dot_fn vec_dot_by_level[QTYPE_COUNT][QUANT_LEVEL_COUNT] = {
    LEVELS(F32, f32),   LEVELS(F16, f16),   LEVELS(BF16, bf16), LEVELS(Q4_0, q4_0),
    LEVELS(Q4_1, q4_1), LEVELS(Q5_0, q5_0), LEVELS(Q5_1, q5_1), LEVELS(Q8_0, q8_0),
    LEVELS(Q2_K, q2_K), LEVELS(Q3_K, q3_K), LEVELS(Q4_K, q4_K), LEVELS(Q5_K, q5_K),
    LEVELS(Q6_K, q6_K),
};

#define ACT_LEVELS(T, t) [QTYPE_##T] = {quant__from_float_##t, quant__from_float_##t##_avx2, quant__from_float_##t##_avx512}
static const quant_from_float_fn from_float_by_level[QTYPE_COUNT][QUANT_LEVEL_COUNT] = {
    [QTYPE_F32] = {quant__from_float_f32, NULL, NULL},
    ACT_LEVELS(F16, f16), ACT_LEVELS(BF16, bf16), ACT_LEVELS(Q8_0, q8_0),
    ACT_LEVELS(Q8_1, q8_1), ACT_LEVELS(Q8_K, q8_K),
};

#define MULTI(T, t) [QTYPE_##T] = {NULL, quant__vec_dot_multi_##t##_avx2, quant__vec_dot_multi_##t##_avx512}
static const quant_vec_dot_multi_fn multi_by_level[QTYPE_COUNT][QUANT_LEVEL_COUNT] = {
    MULTI(Q4_0, q4_0), MULTI(Q8_0, q8_0), MULTI(Q2_K, q2_K), MULTI(Q3_K, q3_K),
    MULTI(Q4_K, q4_K), MULTI(Q5_K, q5_K), MULTI(Q6_K, q6_K),
};

quant_vec_dot_multi_fn quant_vec_dot_multi_at(enum qtype t, enum quant_level level)
{
    if (!quant_traits(t) || level < 0 || level >= QUANT_LEVEL_COUNT)
        return NULL;
    return multi_by_level[t][level];
}

const struct qtype_traits *quant_traits(int type)
{
    if (type < 0 || type >= QTYPE_COUNT || !traits[type].name)
        return NULL;
    return &traits[type];
}

int quant_type_from_name(const char *name)
{
    for (int t = 0; t < QTYPE_COUNT; t++)
        if (traits[t].name && !strcasecmp(traits[t].name, name))
            return t;
    return -1;
}

size_t quant_row_size(enum qtype t, int64_t n)
{
    const struct qtype_traits *tr = quant_traits(t);
    if (!tr || n < 0 || n % tr->block_size)
        return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

quant_vec_dot_fn quant_vec_dot_at(enum qtype t, enum quant_level level)
{
    if (!quant_traits(t))
        return NULL;
    for (int l = level; l >= 0; l--)
        if (vec_dot_by_level[t][l])
            return vec_dot_by_level[t][l];
    return NULL;
}

quant_from_float_fn quant_from_float_at(enum qtype t, enum quant_level level)
{
    if (!quant_traits(t))
        return NULL;
    for (int l = level; l >= 0; l--)
        if (from_float_by_level[t][l])
            return from_float_by_level[t][l];
    return traits[t].from_float;
}

enum quant_level quant_level_best(void) { return (enum quant_level)cpu_level(); }
