/* gemma2 fixtures (26 layers: post-norms, soft-capping, sliding window on even layers) against
 * the golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_gemma2_F16) { golden_check("gemma2-F16", GOLDEN_FLOAT); }
TEST(golden_gemma2_Q8_0) { golden_check("gemma2-Q8_0", GOLDEN_QUANT); }
