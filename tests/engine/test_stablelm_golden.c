/* stablelm fixtures (LayerNorm with bias, partial NEOX rotary) against the golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_stablelm_F16) { golden_check("stablelm-F16", GOLDEN_FLOAT); }
TEST(golden_stablelm_Q8_0) { golden_check("stablelm-Q8_0", GOLDEN_QUANT); }
