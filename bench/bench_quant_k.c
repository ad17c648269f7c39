/* Micro-benchmark of the K-quant kernels: GB/s of weight data for one thread doing a
 * 4096 x 4096 matrix-vector product, per type and SIMD level (AVX-512 with and without VNNI),
 * three ways: the matrix alone (it may stay in a large L3), a rotation over 256 MiB of such
 * matrices (streamed from DRAM, as in token generation), and a 256 KiB slice that stays in L2
 * (the kernel's own speed, as when prompt processing reuses weights). Also the Q8_K
 * activation quantizer. Q8_0 and Q4_0 are listed for reference when linked.
 *
 * Build and run from the repository root; the kernel objects come from the normal build,
 * which gives the *_avx2.c / *_avx512.c files their ISA flags:
 *   make BUILD=build build/tests/unit
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -o build/bench_quant_k bench/bench_quant_k.c \
 *       build/src/engine/quant.o build/src/engine/quant_[kl]*.o build/src/base/cpu.o -lm -pthread
 *   build/bench_quant_k [TYPE...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "engine/quant_impl.h"

#define ROWS 4096
#define COLS 4096
#define DISTINCT_ROWS 64 /* quantized once, then copied: the reference quantizers are slow */
#define DRAM_BYTES (256u << 20)
#define L2_BYTES (256 * 1024)

#ifndef TANDEM_NO_X86
void quant__k_avx512_set_vnni(int mode);
#pragma weak quant__k_avx512_set_vnni
#endif

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

static volatile float sink;

/* Best seconds per matrix-vector product over mats[0..n_mats) in turn, ROWS rows each (or
 * `rows` rows of mats[0] when n_mats is 1). */
static double time_matvec(quant_vec_dot_fn dot, char *const *mats, int n_mats, int rows,
                          size_t row_size, const void *y, float *out)
{
    int passes = 1;
    double best = 1e30;
    for (int round = 0; round < 6; round++) {
        const double t0 = now();
        for (int p = 0; p < passes; p++) {
            const char *w = mats[p % n_mats];
            for (int r = 0; r < rows; r++)
                dot(COLS, &out[r], w + (size_t)r * row_size, y);
        }
        const double dt = (now() - t0) / passes;
        sink = out[rows / 2];
        if (round > 0 && dt < best)
            best = dt;
        while (dt * passes < 0.1 && passes < (1 << 20))
            passes *= 2; /* batches of >= 100 ms keep timer noise small */
        if (passes < n_mats)
            passes = n_mats;
    }
    return best;
}

static void bench_type(enum qtype t)
{
    const struct qtype_traits *tr = quant_traits(t), *vt;
    if (!tr || !tr->vec_dot || !tr->from_float || !(vt = quant_traits(tr->vec_dot_type)) ||
        !vt->from_float)
        return;
    const size_t row_size = quant_row_size(t, COLS), bytes = row_size * ROWS;
    int n_mats = (int)(DRAM_BYTES / bytes);
    if (n_mats < 2)
        n_mats = 2;
    char **mats = calloc((size_t)n_mats, sizeof(char *));
    float *x = malloc(sizeof(float) * COLS * DISTINCT_ROWS), *out = malloc(sizeof(float) * ROWS);
    void *y = malloc(quant_row_size(tr->vec_dot_type, COLS));
    if (!mats || !x || !out || !y)
        goto oom;
    for (size_t i = 0; i < (size_t)COLS * DISTINCT_ROWS; i++)
        x[i] = rng_gauss() * 0.02f;
    for (int m = 0; m < n_mats; m++) {
        if (!(mats[m] = malloc(bytes)))
            goto oom;
        if (m == 0) {
            tr->from_float(x, mats[0], (int64_t)COLS * DISTINCT_ROWS);
            for (int r = DISTINCT_ROWS; r < ROWS; r++)
                memcpy(mats[0] + (size_t)r * row_size,
                       mats[0] + (size_t)(r % DISTINCT_ROWS) * row_size, row_size);
        } else {
            memcpy(mats[m], mats[0], bytes);
        }
    }
    vt->from_float(x, y, COLS);

    int l2_rows = (int)(L2_BYTES / row_size);
    const int top = (int)quant_level_best();
    quant_vec_dot_fn prev = NULL;
    /* level 3 = AVX-512 without VNNI, on a VNNI machine */
    for (int l = 0; l <= top + 1; l++) {
        const char *name = l <= top ? cpu_level_name(l) : "avx512-novnni";
        quant_vec_dot_fn dot = quant_vec_dot_at(t, (enum quant_level)(l <= top ? l : top));
#ifndef TANDEM_NO_X86
        if (l > top) {
            if (top < QUANT_LEVEL_AVX512 || !cpu_features_get()->avx512_vnni ||
                !quant__k_avx512_set_vnni || t < QTYPE_Q2_K || t > QTYPE_Q6_K)
                break;
            quant__k_avx512_set_vnni(0);
            prev = NULL;
        }
#else
        if (l > top)
            break;
#endif
        if (!dot || dot == prev)
            continue;
        prev = dot;
        const double t_l3 = time_matvec(dot, mats, 1, ROWS, row_size, y, out);
        const double t_mem = time_matvec(dot, mats, n_mats, ROWS, row_size, y, out);
        const double t_l2 = time_matvec(dot, mats, 1, l2_rows, row_size, y, out);
        printf("| %-5s | %-13s | %8.1f | %8.1f | %8.1f | %7.1f |\n", tr->name, name,
               (double)bytes / t_l3 * 1e-9, (double)bytes / t_mem * 1e-9,
               (double)row_size * l2_rows / t_l2 * 1e-9, t_l3 / ROWS * 1e9);
    }
#ifndef TANDEM_NO_X86
    if (quant__k_avx512_set_vnni)
        quant__k_avx512_set_vnni(-1);
#endif
    for (int m = 0; m < n_mats; m++)
        free(mats[m]);
    free(mats);
    free(x);
    free(out);
    free(y);
    return;
oom:
    fprintf(stderr, "out of memory\n");
    exit(1);
}

/* The Q8_K activation quantizer: GB/s of float input, one 4096-value row at a time. */
static void bench_q8_K(void)
{
    float *x = malloc(sizeof(float) * COLS);
    void *q = malloc(quant_row_size(QTYPE_Q8_K, COLS));
    if (!x || !q)
        exit(1);
    for (int i = 0; i < COLS; i++)
        x[i] = rng_gauss();
    quant_from_float_fn prev = NULL;
    for (int l = 0; l <= (int)quant_level_best(); l++) {
        quant_from_float_fn fn = quant_from_float_at(QTYPE_Q8_K, (enum quant_level)l);
        if (!fn || fn == prev)
            continue;
        prev = fn;
        double best = 1e30;
        for (int round = 0; round < 5; round++) {
            const double t0 = now();
            for (int p = 0; p < 2000; p++)
                fn(x, q, COLS);
            const double dt = (now() - t0) / 2000;
            if (dt < best)
                best = dt;
        }
        printf("| Q8_K quantize | %-6s | %8.2f GB/s | %7.0f ns/row |\n", cpu_level_name(l),
               COLS * sizeof(float) / best * 1e-9, best * 1e9);
    }
    free(x);
    free(q);
}

int main(int argc, char **argv)
{
    const struct cpu_features *f = cpu_features_get();
    printf("%dx%d mat-vec, 1 thread; best level %s (vnni %d)\n", ROWS, COLS,
           cpu_level_name((int)quant_level_best()), f->avx512_vnni);
    printf("| type  | level         | GB/s 1 mat | GB/s DRAM | GB/s L2 | ns/row  |\n");
    printf("|-------|---------------|----------|----------|----------|---------|\n");
    if (argc > 1) {
        for (int a = 1; a < argc; a++) {
            const int t = quant_type_from_name(argv[a]);
            if (t < 0)
                fprintf(stderr, "unknown type %s\n", argv[a]);
            else
                bench_type((enum qtype)t);
        }
    } else {
        const enum qtype types[] = {QTYPE_Q4_0, QTYPE_Q8_0, QTYPE_Q2_K, QTYPE_Q3_K,
                                    QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K};
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            bench_type(types[i]);
    }
    bench_q8_K();
    return 0;
}
