/* Thread pool: every thread runs each job once; dynamic chunks cover the range exactly. */
#include "test.h"

#include <stdatomic.h>

#include "base/pool.h"

struct job {
    struct pool *pool;
    atomic_int calls;
    atomic_int hits[1000];
};

static void count_job(void *arg, int ith, int nth)
{
    struct job *j = arg;
    (void)ith;
    (void)nth;
    atomic_fetch_add(&j->calls, 1);
    int c;
    while ((c = pool_next(j->pool, 1000)) >= 0)
        atomic_fetch_add(&j->hits[c], 1);
}

TEST(pool_runs_every_thread_and_chunk)
{
    for (int n = 1; n <= 4; n++) {
        struct pool *p = pool_new(n);
        REQUIRE(p);
        CHECK_EQ_INT(pool_size(p), n);
        static struct job j;
        for (int rep = 0; rep < 200; rep++) {
            memset(&j, 0, sizeof(j));
            j.pool = p;
            pool_run(p, count_job, &j);
            CHECK_EQ_INT(atomic_load(&j.calls), n);
            int bad = 0;
            for (int i = 0; i < 1000; i++)
                bad += atomic_load(&j.hits[i]) != 1;
            CHECK_EQ_INT(bad, 0);
        }
        pool_free(p);
    }
    pool_free(NULL);
}
