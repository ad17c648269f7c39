/* CPU feature detection via cpuid/xgetbv; the TANDEM_CPU cap for tests and benchmarks. */
#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect(struct cpu_features *f)
{
    unsigned int a, b, c, d;
    memset(f, 0, sizeof(*f));
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave)
        return;
    const unsigned long long xcr0 = xgetbv0();
    const bool ymm_os = (xcr0 & 0x6) == 0x6;
    const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = (b >> 5) & 1;
    const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
               avx512vl = (b >> 31) & 1;
    const bool vnni = (c >> 11) & 1;
    f->avx2 = ymm_os && avx2 && fma && f16c;
    f->avx512 = f->avx2 && zmm_os && avx512f && avx512dq && avx512bw && avx512vl;
    f->avx512_vnni = f->avx512 && vnni;
    unsigned int a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f->avx512_bf16 = f->avx512 && ((a1 >> 5) & 1);
}
#else
static void detect(struct cpu_features *f) { memset(f, 0, sizeof(*f)); }
#endif

static struct cpu_features features;
static int level = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    detect(&features);
    int best = features.avx512 ? 2 : features.avx2 ? 1 : 0;
    const char *cap = getenv("TANDEM_CPU");
    if (cap) {
        int want = !strcmp(cap, "scalar") ? 0 : !strcmp(cap, "avx2") ? 1 : 2;
        if (want < best)
            best = want;
    }
    level = best;
}

const struct cpu_features *cpu_features_get(void)
{
    pthread_once(&once, init);
    return &features;
}

int cpu_level(void)
{
    pthread_once(&once, init);
    return level;
}

const char *cpu_level_name(int l)
{
    static const char *names[] = {"scalar", "avx2", "avx512"};
    return l >= 0 && l <= 2 ? names[l] : "?";
}
