/* tandem bench: prompt-processing and generation throughput, mean ± sd over repetitions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tandem.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem bench -m MODEL [-p N_PROMPT] [-n N_GEN] [-b N_BATCH] [-t THREADS]\n"
               "                    [-r REPS] [--json]\n"
               "  pp: N_PROMPT tokens (default 512) evaluated in batches of N_BATCH from an empty\n"
               "  cache; tg: N_GEN tokens (default 128) generated one at a time from an empty\n"
               "  cache. Each test runs once to warm up, then REPS times (default 5).\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Tokens/s of one run, or a negative value on error. */
static double run_pp(struct tandem_ctx *c, const int32_t *toks, int n, int n_batch)
{
    tandem_ctx_truncate(c, 0);
    double t0 = now();
    for (int i = 0; i < n; i += n_batch) {
        int m = n - i < n_batch ? n - i : n_batch;
        if (tandem_decode(c, toks + i, m, false))
            return -1;
    }
    return n / (now() - t0);
}

static double run_tg(struct tandem_ctx *c, const int32_t *toks, int n)
{
    tandem_ctx_truncate(c, 0);
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (tandem_decode(c, toks + i, 1, false))
            return -1;
    return n / (now() - t0);
}

/* Resident anonymous and file-backed memory of this process, in bytes (Linux). */
static void rss(uint64_t *anon, uint64_t *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            *anon = kb * 1024;
        else if (sscanf(line, "RssFile: %llu kB", &kb) == 1)
            *file = kb * 1024;
    }
    fclose(f);
}

struct stat {
    const char *name;
    int n;
    double mean, sd;
};

int cmd_bench(int argc, char **argv)
{
    const char *model_path = NULL;
    int n_prompt = 512, n_gen = 128, n_threads = 0, reps = 5, n_batch = 256, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int *dst = NULL;
        long lo = 0, hi = 1 << 20;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = args_value("bench", argc, argv, &i)))
                return 2;
            continue;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        } else if (!strcmp(a, "-p")) {
            dst = &n_prompt;
        } else if (!strcmp(a, "-n")) {
            dst = &n_gen;
        } else if (!strcmp(a, "-b")) {
            dst = &n_batch, lo = 1, hi = 8192;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            dst = &n_threads, lo = 1, hi = 1024;
        } else if (!strcmp(a, "-r")) {
            dst = &reps, lo = 1, hi = 1000;
        } else {
            fprintf(stderr, "tandem bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!(v = args_value("bench", argc, argv, &i)) || args_int("bench", a, v, lo, hi, dst))
            return 2;
    }
    if (!model_path) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    char err[512];
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    int32_t *toks = NULL;
    double *samples = NULL;
    if (tandem_model_load(&m, model_path, err, sizeof(err))) {
        fprintf(stderr, "tandem bench: %s\n", err);
        goto out;
    }
    const int need = n_prompt > n_gen ? n_prompt : n_gen;
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = need > 0 ? need : 1;
    p.n_batch = n_batch;
    p.n_threads = n_threads;
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem bench: %s\n", err);
        goto out;
    }
    toks = malloc(sizeof(int32_t) * (size_t)p.n_ctx);
    samples = malloc(sizeof(double) * (size_t)reps);
    if (!toks || !samples)
        goto out;
    uint32_t seed = 42;
    for (int i = 0; i < p.n_ctx; i++) {
        seed = seed * 1664525u + 1013904223u;
        toks[i] = (int32_t)((seed >> 8) % (uint32_t)tandem_model_n_vocab(m));
    }
    struct stat stats[2];
    int n_stats = 0;
    for (int test = 0; test < 2; test++) {
        const int n = test == 0 ? n_prompt : n_gen;
        if (n <= 0)
            continue;
        for (int r = -1; r < reps; r++) {
            double tps = test == 0 ? run_pp(c, toks, n, n_batch) : run_tg(c, toks, n);
            if (tps < 0) {
                fprintf(stderr, "tandem bench: decode failed\n");
                goto out;
            }
            if (r >= 0)
                samples[r] = tps;
        }
        double mean = 0, var = 0;
        for (int r = 0; r < reps; r++)
            mean += samples[r];
        mean /= reps;
        for (int r = 0; r < reps; r++)
            var += (samples[r] - mean) * (samples[r] - mean);
        stats[n_stats++] = (struct stat){test == 0 ? "pp" : "tg", n, mean,
                                         reps > 1 ? sqrt(var / (reps - 1)) : 0};
    }
    uint64_t anon, file;
    rss(&anon, &file);
    const double mib = 1024.0 * 1024.0;
    const double size_mib = tandem_model_size(m) / mib;
    const double np = (double)tandem_model_n_params(m);
    char params[16];
    if (np >= 1e9)
        snprintf(params, sizeof(params), "%.2f B", np / 1e9);
    else if (np >= 1e6)
        snprintf(params, sizeof(params), "%.2f M", np / 1e6);
    else
        snprintf(params, sizeof(params), "%.2f K", np / 1e3);
    const int threads = tandem_ctx_n_threads(c);
    const char *simd = cpu_level_name(cpu_level());
    if (json) {
        printf("{\"model\": \"%s\", \"size_bytes\": %llu, \"n_params\": %llu, \"threads\": %d, "
               "\"simd\": \"%s\", \"n_batch\": %d, \"reps\": %d, \"rss_anon_bytes\": %llu, "
               "\"rss_file_bytes\": %llu, \"kv_bytes\": %llu, \"scratch_bytes\": %llu, "
               "\"results\": [",
               tandem_model_desc(m), (unsigned long long)tandem_model_size(m),
               (unsigned long long)tandem_model_n_params(m), threads, simd, n_batch, reps,
               (unsigned long long)anon, (unsigned long long)file,
               (unsigned long long)tandem_ctx_kv_bytes(c), (unsigned long long)tandem_ctx_scratch_bytes(c));
        for (int i = 0; i < n_stats; i++)
            printf("%s{\"test\": \"%s%d\", \"n_tokens\": %d, \"tokens_per_s\": %.3f, \"sd\": %.3f}",
                   i ? ", " : "", stats[i].name, stats[i].n, stats[i].n, stats[i].mean, stats[i].sd);
        printf("]}\n");
    } else {
        printf("| %-24s | %10s | %8s | %7s | %6s | %8s | %18s |\n", "model", "size", "params",
               "threads", "simd", "test", "t/s");
        printf("| %.24s | %.10s | %.8s | %.7s | %.6s | %.8s | %.18s |\n",
               "------------------------", "----------", "--------", "-------", "------",
               "--------", "------------------");
        for (int i = 0; i < n_stats; i++) {
            char test[16], tps[32];
            snprintf(test, sizeof(test), "%s%d", stats[i].name, stats[i].n);
            snprintf(tps, sizeof(tps), "%.2f ± %.2f", stats[i].mean, stats[i].sd);
            printf("| %-24s | %6.2f MiB | %8s | %7d | %6s | %8s | %19s |\n",
                   tandem_model_desc(m), size_mib, params, threads, simd, test, tps);
        }
        printf("\nmemory: weights %.1f MiB mapped (%.1f MiB resident), anonymous %.1f MiB "
               "(KV cache %.1f MiB, scratch %.1f MiB allocated)\n",
               size_mib, file / mib, anon / mib, tandem_ctx_kv_bytes(c) / mib,
               tandem_ctx_scratch_bytes(c) / mib);
    }
    rc = 0;
out:
    free(toks);
    free(samples);
    tandem_ctx_free(c);
    tandem_model_free(m);
    return rc;
}
