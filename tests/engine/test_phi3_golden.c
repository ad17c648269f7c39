/* phi3 fixtures (fused QKV, fused gate/up) against the golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_phi3_F16) { golden_check("phi3-F16", GOLDEN_FLOAT); }
TEST(golden_phi3_Q8_0) { golden_check("phi3-Q8_0", GOLDEN_QUANT); }
