/* falcon fixtures (fused QKV, multi-query attention, parallel attention + FFN) against the
 * golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_falcon_F16) { golden_check("falcon-F16", GOLDEN_FLOAT); }
TEST(golden_falcon_Q8_0) { golden_check("falcon-Q8_0", GOLDEN_QUANT); }
