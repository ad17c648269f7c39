/* The architectures compiled into the engine. */
#include "engine/model.h"

extern const struct arch_ops arch_llama;
extern const struct arch_ops arch_qwen2;
extern const struct arch_ops arch_stablelm;
extern const struct arch_ops arch_gpt2;
extern const struct arch_ops arch_falcon;
extern const struct arch_ops arch_phi3;
extern const struct arch_ops arch_gemma2;

const struct arch_ops *const engine_archs[] = {&arch_llama, &arch_qwen2, &arch_stablelm,
                                               &arch_gpt2,  &arch_falcon, &arch_phi3,
                                               &arch_gemma2, NULL};
