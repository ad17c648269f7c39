/* Micro-benchmark of the vec_dot kernels: GB/s of weight data, per type and SIMD level, for
 * one thread doing a 4096 x 4096 matrix-vector product (weights streamed from memory, as in
 * token generation) and the same product over a 256 KiB slice of rows that stays in L2
 * (the kernels' own speed, as when prompt processing reuses weights).
 *
 * Build and run from the repository root; the kernel objects come from the normal build,
 * which gives the *_avx2.c / *_avx512.c files their ISA flags:
 *   make BUILD=build build/tests/unit
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -o build/bench_quant bench/bench_quant.c \
 *       build/src/engine/quant.o build/src/engine/quant_[kl]*.o build/src/base/cpu.o -lm -pthread
 *   build/bench_quant [TYPE...]      (default: every type with a dot kernel)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "engine/quant.h"

#define ROWS 4096
#define COLS 4096
#define DISTINCT_ROWS 64 /* quantized once, then copied: quantizing 16M values is slow */
#define L2_BYTES (256 * 1024)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x853c49e6748fea9bull;

static float rng_gauss(void)
{
    /* Sum of 4 uniforms: close enough to a bell for benchmark data. */
    float s = 0;
    for (int k = 0; k < 4; k++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        s += (float)(rng_state >> 40) / (float)(1 << 24);
    }
    return (s - 2.0f) * 1.7f;
}

/* The core's clock right now, from a chain of dependent adds (one per cycle): VMs and turbo
 * make it drift, so each row reports it and cycles per block as well as GB/s. */
static double clock_ghz(void)
{
#if defined(__x86_64__)
    unsigned long n = 200000000ul, x = 0;
    const double t0 = now();
    __asm__ volatile("1: add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n sub $4, %1\n jnz 1b"
                     : "+r"(x), "+r"(n));
    return 0.2 / (now() - t0);
#else
    return 0;
#endif
}

static volatile float sink;

/* Seconds per pass of `rows` dot products over `w` (best of several timed batches). */
static double time_matvec(quant_vec_dot_fn dot, const char *w, size_t row_size, int rows,
                          const void *y, float *out)
{
    int passes = 1;
    double best = 1e30;
    for (int round = 0; round < 10; round++) {
        const double t0 = now();
        for (int p = 0; p < passes; p++)
            for (int r = 0; r < rows; r++)
                dot(COLS, &out[r], w + (size_t)r * row_size, y);
        const double dt = (now() - t0) / passes;
        sink = out[rows / 2];
        if (round > 0 && dt < best)
            best = dt;
        /* Grow the batch until one takes ~50 ms, so timer noise stays small. */
        while (dt * passes < 0.05 && passes < (1 << 20))
            passes *= 2;
    }
    return best;
}

static void bench_type(enum qtype t)
{
    const struct qtype_traits *tr = quant_traits(t), *vt;
    if (!tr || !tr->vec_dot || !tr->from_float || !(vt = quant_traits(tr->vec_dot_type)))
        return;
    const size_t row_size = quant_row_size(t, COLS);
    const size_t bytes = row_size * ROWS;
    char *w = malloc(bytes);
    float *x = malloc(sizeof(float) * COLS * DISTINCT_ROWS);
    float *out = malloc(sizeof(float) * ROWS);
    void *y = malloc(quant_row_size(tr->vec_dot_type, COLS));
    if (!w || !x || !out || !y) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)COLS * DISTINCT_ROWS; i++)
        x[i] = rng_gauss() * 0.02f;
    tr->from_float(x, w, (int64_t)COLS * DISTINCT_ROWS);
    for (int r = DISTINCT_ROWS; r < ROWS; r++)
        memcpy(w + (size_t)r * row_size, w + (size_t)(r % DISTINCT_ROWS) * row_size, row_size);
    vt->from_float(x, y, COLS);

    int l2_rows = (int)(L2_BYTES / row_size);
    if (l2_rows < 1)
        l2_rows = 1;
    quant_vec_dot_fn prev = NULL;
    for (int l = 0; l <= (int)quant_level_best(); l++) {
        quant_vec_dot_fn dot = quant_vec_dot_at(t, (enum quant_level)l);
        if (!dot || dot == prev)
            continue;
        prev = dot;
        const double ghz = clock_ghz();
        const double t_mem = time_matvec(dot, w, row_size, ROWS, y, out);
        const double t_l2 = time_matvec(dot, w, row_size, l2_rows, y, out);
        /* cycles per 32 values, from the L2-resident run */
        const double cyc = t_l2 / l2_rows / (COLS / 32.0) * ghz * 1e9;
        printf("| %-5s | %-6s | %8.1f | %8.1f | %8.1f | %9.2f | %5.2f |\n", tr->name,
               cpu_level_name(l), (double)bytes / t_mem * 1e-9,
               (double)row_size * l2_rows / t_l2 * 1e-9, t_mem / ROWS * 1e9, cyc, ghz);
    }
    free(w);
    free(x);
    free(out);
    free(y);
}

int main(int argc, char **argv)
{
    const struct cpu_features *f = cpu_features_get();
    printf("%dx%d mat-vec, 1 thread; best level %s (vnni %d, bf16 %d)\n", ROWS, COLS,
           cpu_level_name((int)quant_level_best()), f->avx512_vnni, f->avx512_bf16);
    printf("GB/s of weight bytes; mem: the whole matrix streamed from DRAM; L2: a 256 KiB slice\n"
           "reused; ns/row: mem case; cyc/32val: core cycles per 32 weights (L2 case) at GHz\n");
    printf("| type  | level  | GB/s mem | GB/s L2  | ns/row   | cyc/32val | GHz   |\n");
    printf("|-------|--------|----------|----------|----------|-----------|-------|\n");
    if (argc > 1) {
        for (int a = 1; a < argc; a++) {
            const int t = quant_type_from_name(argv[a]);
            if (t < 0)
                fprintf(stderr, "unknown type %s\n", argv[a]);
            else
                bench_type((enum qtype)t);
        }
        return 0;
    }
    for (int t = 0; t < QTYPE_COUNT; t++)
        bench_type((enum qtype)t);
    return 0;
}
