/* fp16/bf16 conversions: exhaustive round trip over every half value. */
#include "test.h"

#include "base/fp16.h"

TEST(fp16_roundtrip_all_values)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_fp32((uint16_t)h);
        uint16_t back = fp16_from_fp32(f);
        if (f != f) /* NaN: any NaN back is fine */
            bad += (back & 0x7c00) != 0x7c00 || !(back & 0x3ff);
        else
            bad += back != h;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(fp16_rounding)
{
    CHECK_EQ_INT(fp16_from_fp32(1.0f), 0x3c00);
    CHECK_EQ_INT(fp16_from_fp32(65504.0f), 0x7bff);
    CHECK_EQ_INT(fp16_from_fp32(1e6f), 0x7c00);
    CHECK_EQ_INT(fp16_from_fp32(-2.0f), 0xc000);
    /* 1 + 2^-11 is a tie between 1 and 1+2^-10: round to even (1). */
    CHECK_EQ_INT(fp16_from_fp32(1.0f + 1.0f / 2048), 0x3c00);
    CHECK_NEAR(fp16_to_fp32(0x0001), 5.9604645e-8, 1e-14);
}

TEST(bf16_conversions)
{
    CHECK_EQ_INT(bf16_from_fp32(1.0f), 0x3f80);
    CHECK(bf16_to_fp32(0x3f80) == 1.0f);
    /* 1 + 2^-8 ties to even -> 1.0 */
    CHECK_EQ_INT(bf16_from_fp32(1.0f + 1.0f / 256), 0x3f80);
    CHECK_EQ_INT(bf16_from_fp32(1.0f + 3.0f / 256), 0x3f82);
}
