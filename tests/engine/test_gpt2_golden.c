/* gpt2 fixtures (learned positions, LayerNorm, biases, GELU) against the golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_gpt2_F16) { golden_check("gpt2-F16", GOLDEN_FLOAT); }
TEST(golden_gpt2_Q8_0) { golden_check("gpt2-Q8_0", GOLDEN_QUANT); }
