/* Thread pool: workers spin briefly on a generation counter, then sleep on a condvar. */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() __asm__ volatile("" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* About 20-50 microseconds of spinning before sleeping: long enough to bridge the gap
 * between the kernels of one forward pass, short enough not to burn a core when idle. */
#define SPIN_ITERS (1 << 16)

struct worker {
    struct pool *pool;
    pthread_t thread;
    int ith;
};

struct pool {
    int n_threads;
    struct worker *workers;   /* n_threads - 1 */
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint generation;   /* bumped for every job */
    atomic_int n_done;        /* workers finished with the current job */
    atomic_int next_chunk;
    atomic_bool stop;
    pool_job_fn fn;
    void *arg;
};

static void *worker_main(void *opaque)
{
    struct worker *w = opaque;
    struct pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        p->fn(p->arg, w->ith, p->n_threads);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel);
    }
}

struct pool *pool_new(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof(*p->workers));
        if (!p->workers)
            goto fail;
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i] = (struct worker){.pool = p, .ith = i + 1};
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]))
                goto fail;
            p->n_started++;
        }
    }
    return p;
fail:
    pool_free(p);
    return NULL;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p);
}

int pool_size(const struct pool *p) { return p ? p->n_threads : 1; }

void pool_run(struct pool *p, pool_job_fn fn, void *arg)
{
    if (p->n_threads == 1) {
        atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n_threads);
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) < p->n_threads - 1)
        cpu_relax();
}

int pool_next(struct pool *p, int n_chunks)
{
    int c = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed);
    return c < n_chunks ? c : -1;
}
