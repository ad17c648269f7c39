/* A fixed thread pool for data-parallel kernels: threads are made once, never per token. */
#ifndef TANDEM_BASE_POOL_H
#define TANDEM_BASE_POOL_H

/* A parallel job: called once on every thread with ith in [0, nth). The caller's thread runs
 * ith = 0. Jobs split their own work, statically by ith or dynamically via pool_next(). */
typedef void (*pool_job_fn)(void *arg, int ith, int nth);

struct pool;

/* A pool of n_threads in all (the caller plus n_threads - 1 workers); n_threads < 1 means 1.
 * Returns NULL when out of memory or threads cannot be created. */
struct pool *pool_new(int n_threads);
/* Joins the workers. Accepts NULL. Must not be called while pool_run is running. */
void pool_free(struct pool *p);
int pool_size(const struct pool *p);

/* Runs fn on every thread of the pool and returns when all have finished. Not reentrant:
 * one pool_run at a time per pool (the engine owns one pool per context). */
void pool_run(struct pool *p, pool_job_fn fn, void *arg);

/* Dynamic scheduling inside a job: returns the next chunk index in [0, n_chunks) or -1 when
 * all are taken. The counter is reset by pool_run before each job. */
int pool_next(struct pool *p, int n_chunks);

#endif
