/* llama and Mixtral fixtures in every tensor type against the golden logits. */
#include "engine/golden.h"
#include "test.h"

#define GOLDEN(id, name, cls) \
    TEST(golden_##id) { golden_check(name, cls); }

GOLDEN(llama_F32, "llama-F32", GOLDEN_FLOAT)
GOLDEN(llama_F16, "llama-F16", GOLDEN_FLOAT)
GOLDEN(llama_BF16, "llama-BF16", GOLDEN_BF16)
GOLDEN(llama_Q8_0, "llama-Q8_0", GOLDEN_QUANT)
GOLDEN(llama_Q4_0, "llama-Q4_0", GOLDEN_QUANT)
GOLDEN(llama_Q4_1, "llama-Q4_1", GOLDEN_QUANT)
GOLDEN(llama_Q5_0, "llama-Q5_0", GOLDEN_QUANT)
GOLDEN(llama_Q5_1, "llama-Q5_1", GOLDEN_QUANT)
GOLDEN(llama_Q2_K, "llama-Q2_K", GOLDEN_QUANT)
GOLDEN(llama_Q3_K_M, "llama-Q3_K_M", GOLDEN_QUANT)
GOLDEN(llama_Q4_K_M, "llama-Q4_K_M", GOLDEN_QUANT)
GOLDEN(llama_Q5_K_M, "llama-Q5_K_M", GOLDEN_QUANT)
GOLDEN(llama_Q6_K, "llama-Q6_K", GOLDEN_QUANT)
GOLDEN(mixtral_F16, "mixtral-F16", GOLDEN_FLOAT)
GOLDEN(mixtral_Q8_0, "mixtral-Q8_0", GOLDEN_QUANT)
GOLDEN(mixtral_Q4_K_M, "mixtral-Q4_K_M", GOLDEN_QUANT)

/* The real trained model: logits of the prompt and the 32-token greedy story continuation. */
TEST(golden_stories260K)
{
    golden_check_files("stories260K", "models/stories260K.gguf", "fixtures/golden/stories260K.bin",
                       "fixtures/golden/stories260K-prompt.txt", GOLDEN_FLOAT);
}
