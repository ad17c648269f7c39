/* CPU feature detection at run time, so one binary uses AVX2/AVX-512 only where they exist. */
#ifndef TANDEM_BASE_CPU_H
#define TANDEM_BASE_CPU_H

#include <stdbool.h>

struct cpu_features {
    bool avx2;        /* with FMA and F16C */
    bool avx512;      /* F, BW, VL, DQ, and the OS saves ZMM state */
    bool avx512_vnni;
    bool avx512_bf16;
};

/* Features of this CPU (cached after the first call; thread-safe). */
const struct cpu_features *cpu_features_get(void);

/* The SIMD level to use: the best the CPU has, lowered by the environment variable
 * TANDEM_CPU=scalar|avx2|avx512 (a cap, never a raise past what the CPU has).
 * Returns 0 (scalar), 1 (AVX2) or 2 (AVX-512). */
int cpu_level(void);
/* "scalar", "avx2" or "avx512". */
const char *cpu_level_name(int level);

#endif
