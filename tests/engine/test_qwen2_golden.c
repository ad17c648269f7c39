/* qwen2 fixtures (q/k/v biases, NEOX rope, bpe384 vocabulary) against the golden logits. */
#include "engine/golden.h"
#include "test.h"

TEST(golden_qwen2_F16) { golden_check("qwen2-F16", GOLDEN_FLOAT); }
TEST(golden_qwen2_Q8_0) { golden_check("qwen2-Q8_0", GOLDEN_QUANT); }
TEST(golden_qwen2_Q4_K_M) { golden_check("qwen2-Q4_K_M", GOLDEN_QUANT); }
