/* Memory read bandwidth: what token generation is bounded by. Reads a large buffer with
 * N threads (default: all CPUs), best of several passes. Usage: membw [MiB] [threads] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct slice {
    const uint64_t *p;
    size_t n;
    uint64_t sink;
};

static void *reader(void *arg)
{
    struct slice *s = arg;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= s->n; i += 4) {
        a0 ^= s->p[i];
        a1 ^= s->p[i + 1];
        a2 ^= s->p[i + 2];
        a3 ^= s->p[i + 3];
    }
    s->sink = a0 ^ a1 ^ a2 ^ a3;
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048;
    long nt = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (mib < 64 || nt < 1 || nt > 256) {
        fprintf(stderr, "usage: membw [MiB >= 64] [threads]\n");
        return 2;
    }
    size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof(uint64_t));
    if (!buf)
        return 1;
    memset(buf, 1, n * sizeof(uint64_t));
    pthread_t th[256];
    struct slice sl[256];
    double best = 0;
    uint64_t sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        for (long t = 0; t < nt; t++) {
            sl[t] = (struct slice){buf + n / nt * t, n / nt, 0};
            pthread_create(&th[t], NULL, reader, &sl[t]);
        }
        for (long t = 0; t < nt; t++) {
            pthread_join(th[t], NULL);
            sink ^= sl[t].sink;
        }
        double gbs = n * sizeof(uint64_t) / (now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    printf("read bandwidth: %.2f GB/s (%zu MiB, %ld threads, best of 5) [%llu]\n", best, mib, nt,
           (unsigned long long)(sink & 1));
    free(buf);
    return 0;
}
