/* Micro-benchmark of the multi-column dot kernels: one thread computing a 2048 x 2048 weight
 * matrix times 64 activation rows (prompt processing), per type and SIMD level, once with the
 * single-column kernel and once with the multi-column one, tiled as src/engine/matmul.c does
 * (chunks of ROWS_PER_CHUNK weight rows, blocks of TOKENS_PER_BLOCK activation rows; both can
 * be set with -r and -b to try other tilings). Prints GFLOP/s (2 * rows * cols * tokens per
 * product) and the matrix's tokens per second.
 *
 * Build and run from the repository root; the kernel objects come from the normal build,
 * which gives the *_avx2.c / *_avx512.c files their ISA flags:
 *   make BUILD=build build/tests/unit
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -o build/bench_quant_multi \
 *       bench/bench_quant_multi.c build/src/engine/quant.o build/src/engine/quant_[klm]*.o \
 *       build/src/base/cpu.o -lm -pthread
 *   build/bench_quant_multi [-r ROWS_PER_CHUNK] [-b TOKENS_PER_BLOCK] [TYPE...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "engine/quant_impl.h"

#define ROWS 2048
#define COLS 2048
#define TOKENS 64
#define DISTINCT_ROWS 64 /* quantized once, then copied: the reference quantizers are slow */

#ifndef TANDEM_NO_X86
void quant__multi_avx512_set_vnni(int mode);
#pragma weak quant__k_avx512_set_vnni
#pragma weak quant__legacy_avx512_extensions
#pragma weak quant__multi_avx512_set_vnni
#endif

static int rows_per_chunk = 16, tokens_per_block = 16;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float rng_gauss(void)
{
    float s = 0; /* sum of 4 uniforms: bell-shaped enough for benchmark data */
    for (int k = 0; k < 4; k++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        s += (float)(rng_state >> 40) / (float)(1 << 24);
    }
    return (s - 2.0f) * 1.7f;
}

/* y[t][r] = dot(w row r, x row t), tiled as matmul.c; multi NULL: one column at a time. */
static void product(quant_vec_dot_fn dot, quant_vec_dot_multi_fn multi, const char *w,
                    size_t w_row, const char *x, size_t x_row, float *y)
{
    for (int r0 = 0; r0 < ROWS; r0 += rows_per_chunk) {
        const int r1 = r0 + rows_per_chunk < ROWS ? r0 + rows_per_chunk : ROWS;
        for (int t0 = 0; t0 < TOKENS; t0 += tokens_per_block) {
            const int t1 = t0 + tokens_per_block < TOKENS ? t0 + tokens_per_block : TOKENS;
            for (int r = r0; r < r1; r++) {
                const char *wr = w + (size_t)r * w_row;
                int t = t0;
                if (multi) {
                    float s[QUANT_MULTI_MAX];
                    for (; t + 1 < t1; t += QUANT_MULTI_MAX) {
                        const int nc = t1 - t < QUANT_MULTI_MAX ? t1 - t : QUANT_MULTI_MAX;
                        multi(COLS, s, wr, x + (size_t)t * x_row, x_row, nc);
                        for (int c = 0; c < nc; c++)
                            y[(size_t)(t + c) * ROWS + r] = s[c];
                    }
                }
                for (; t < t1; t++)
                    dot(COLS, &y[(size_t)t * ROWS + r], wr, x + (size_t)t * x_row);
            }
        }
    }
}

/* Best seconds per product over 7 rounds of at least 0.2 s each. */
static double time_product(quant_vec_dot_fn dot, quant_vec_dot_multi_fn multi, const char *w,
                           size_t w_row, const char *x, size_t x_row, float *y)
{
    int passes = 1;
    double best = 1e30;
    for (int round = 0; round < 7; round++) {
        const double t0 = now();
        for (int p = 0; p < passes; p++)
            product(dot, multi, w, w_row, x, x_row, y);
        const double dt = (now() - t0) / passes;
        if (round > 0 && dt < best)
            best = dt;
        while (dt * passes < 0.2 && passes < (1 << 16))
            passes *= 2;
    }
    return best;
}

#ifndef TANDEM_NO_X86
static void set_vnni(int mode)
{
    if (quant__k_avx512_set_vnni)
        quant__k_avx512_set_vnni(mode);
    if (quant__legacy_avx512_extensions)
        quant__legacy_avx512_extensions(mode != 0, 1);
    if (quant__multi_avx512_set_vnni)
        quant__multi_avx512_set_vnni(mode);
}
#endif

static void bench_type(enum qtype t)
{
    const struct qtype_traits *tr = quant_traits(t), *vt;
    if (!tr || !tr->vec_dot || !tr->from_float || !(vt = quant_traits(tr->vec_dot_type)) ||
        !vt->from_float)
        return;
    const size_t w_row = quant_row_size(t, COLS), x_row = quant_row_size(tr->vec_dot_type, COLS);
    float *f = malloc(sizeof(float) * COLS * DISTINCT_ROWS);
    char *w = malloc(w_row * ROWS), *x = malloc(x_row * TOKENS);
    float *y1 = malloc(sizeof(float) * ROWS * TOKENS), *y2 = malloc(sizeof(float) * ROWS * TOKENS);
    if (!f || !w || !x || !y1 || !y2) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)COLS * DISTINCT_ROWS; i++)
        f[i] = rng_gauss() * 0.02f;
    tr->from_float(f, w, (int64_t)COLS * DISTINCT_ROWS);
    for (int r = DISTINCT_ROWS; r < ROWS; r++)
        memcpy(w + (size_t)r * w_row, w + (size_t)(r % DISTINCT_ROWS) * w_row, w_row);
    for (int k = 0; k < TOKENS; k++) {
        for (int i = 0; i < COLS; i++)
            f[i] = rng_gauss();
        vt->from_float(f, x + (size_t)k * x_row, COLS);
    }

    const int top = (int)quant_level_best();
    const double flop = 2.0 * ROWS * COLS * TOKENS;
    /* level top + 1 = AVX-512 without VNNI, on a VNNI machine */
    for (int l = QUANT_LEVEL_AVX2; l <= top + 1; l++) {
        const char *name = l <= top ? cpu_level_name(l) : "avx512-novnni";
        const enum quant_level level = (enum quant_level)(l <= top ? l : top);
#ifndef TANDEM_NO_X86
        if (l > top) {
            if (top < QUANT_LEVEL_AVX512 || !cpu_features_get()->avx512_vnni)
                break;
            set_vnni(0);
        }
#else
        if (l > top)
            break;
#endif
        const quant_vec_dot_fn dot = quant_vec_dot_at(t, level);
        const quant_vec_dot_multi_fn multi = quant_vec_dot_multi_at(t, level);
        if (!dot || !multi)
            continue;
        const double ts = time_product(dot, NULL, w, w_row, x, x_row, y1);
        const double tm = time_product(dot, multi, w, w_row, x, x_row, y2);
        const int same = !memcmp(y1, y2, sizeof(float) * ROWS * TOKENS);
        printf("| %-5s | %-13s | %8.1f | %8.1f | %8.0f | %8.0f | %5.2fx |%s\n", tr->name, name,
               flop / ts * 1e-9, flop / tm * 1e-9, TOKENS / ts, TOKENS / tm, ts / tm,
               same ? "" : " MISMATCH");
    }
#ifndef TANDEM_NO_X86
    set_vnni(-1);
#endif
    free(f);
    free(w);
    free(x);
    free(y1);
    free(y2);
}

int main(int argc, char **argv)
{
    int a = 1;
    for (; a + 1 < argc && argv[a][0] == '-'; a += 2) {
        const int v = (int)strtol(argv[a + 1], NULL, 10);
        if (v < 1 || v > 4096) {
            fprintf(stderr, "bad value %s\n", argv[a + 1]);
            return 1;
        }
        if (!strcmp(argv[a], "-r"))
            rows_per_chunk = v;
        else if (!strcmp(argv[a], "-b"))
            tokens_per_block = v;
        else {
            fprintf(stderr, "usage: %s [-r ROWS_PER_CHUNK] [-b TOKENS_PER_BLOCK] [TYPE...]\n",
                    argv[0]);
            return 1;
        }
    }
    const struct cpu_features *f = cpu_features_get();
    printf("%dx%d weights x %d tokens, 1 thread, tiles %d rows x %d tokens; best level %s "
           "(vnni %d)\n",
           ROWS, COLS, TOKENS, rows_per_chunk, tokens_per_block,
           cpu_level_name((int)quant_level_best()), f->avx512_vnni);
    printf("| type  | level         | GFLOP/s single | GFLOP/s multi | tok/s single | tok/s multi "
           "| speedup |\n");
    printf("|-------|---------------|------|------|------|------|------|\n");
    if (a < argc) {
        for (; a < argc; a++) {
            const int t = quant_type_from_name(argv[a]);
            if (t < 0)
                fprintf(stderr, "unknown type %s\n", argv[a]);
            else
                bench_type((enum qtype)t);
        }
    } else {
        const enum qtype types[] = {QTYPE_Q4_K, QTYPE_Q6_K, QTYPE_Q8_0, QTYPE_Q5_K,
                                    QTYPE_Q3_K, QTYPE_Q2_K, QTYPE_Q4_0};
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            bench_type(types[i]);
    }
    return 0;
}
