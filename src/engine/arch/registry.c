/* The architectures compiled into the engine. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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

bool tandem_arch_supported(const char *name, size_t len)
{
    for (int i = 0; engine_archs[i]; i++)
        if (strlen(engine_archs[i]->name) == len && !memcmp(engine_archs[i]->name, name, len))
            return true;
    return false;
}

static char arch_list[256];
static pthread_once_t arch_list_once = PTHREAD_ONCE_INIT;

static void build_arch_list(void)
{
    size_t n = 0;
    for (int i = 0; engine_archs[i] && n < sizeof(arch_list); i++) {
        int w = snprintf(arch_list + n, sizeof(arch_list) - n, "%s%s", i ? ", " : "",
                         engine_archs[i]->name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

const char *tandem_supported_archs(void)
{
    pthread_once(&arch_list_once, build_arch_list);
    return arch_list;
}
