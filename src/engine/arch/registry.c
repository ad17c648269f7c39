/* The architectures compiled into the engine. */
#include "engine/model.h"

extern const struct arch_ops arch_llama;

const struct arch_ops *const engine_archs[] = {&arch_llama, NULL};
