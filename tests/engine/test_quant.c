/* The type table is complete: every supported type has every kernel at every level. */
#include "test.h"

#include "base/cpu.h"
#include "engine/quant.h"

static const enum qtype weight_types[] = {
    QTYPE_F32,  QTYPE_F16,  QTYPE_BF16, QTYPE_Q4_0, QTYPE_Q4_1, QTYPE_Q5_0, QTYPE_Q5_1,
    QTYPE_Q8_0, QTYPE_Q2_K, QTYPE_Q3_K, QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K,
};

TEST(quant_table_complete)
{
    for (size_t i = 0; i < sizeof(weight_types) / sizeof(weight_types[0]); i++) {
        const enum qtype t = weight_types[i];
        const struct qtype_traits *tr = quant_traits(t);
        REQUIRE(tr);
        if (!tr->to_float || !tr->from_float || !tr->vec_dot)
            test__fail(__FILE__, __LINE__, "%s lacks a scalar kernel", tr->name);
        const struct qtype_traits *vt = quant_traits(tr->vec_dot_type);
        REQUIRE(vt);
        if (!vt->from_float)
            test__fail(__FILE__, __LINE__, "%s: activation type %s cannot be quantized", tr->name,
                       vt->name);
        CHECK_EQ_INT(quant_type_from_name(tr->name), t);
        /* Every level resolves to some kernel; x86 builds have SIMD kernels for all types. */
        for (int l = 0; l < QUANT_LEVEL_COUNT; l++)
            CHECK(quant_vec_dot_at(t, (enum quant_level)l) != NULL);
#ifndef TANDEM_NO_X86
        if (quant_vec_dot_at(t, QUANT_LEVEL_AVX2) == tr->vec_dot)
            test__fail(__FILE__, __LINE__, "%s has no AVX2 kernel", tr->name);
        if (quant_vec_dot_at(t, QUANT_LEVEL_AVX512) == quant_vec_dot_at(t, QUANT_LEVEL_AVX2))
            test__fail(__FILE__, __LINE__, "%s has no AVX-512 kernel", tr->name);
#endif
    }
    CHECK(quant_traits(4) == NULL);
    CHECK(quant_traits(-1) == NULL);
    CHECK(quant_traits(QTYPE_COUNT) == NULL);
    CHECK(quant_traits(1000) == NULL);
    CHECK_EQ_INT(quant_row_size(QTYPE_Q4_K, 512), 288);
    CHECK_EQ_INT(quant_row_size(QTYPE_Q4_K, 100), 0);
    CHECK_EQ_INT(quant_row_size(QTYPE_F16, 3), 6);
}
