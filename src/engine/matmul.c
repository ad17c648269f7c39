/* Matrix products of quantized weights with float activations, parallel over the pool. */
#include <string.h>

#include "engine/ops.h"

/* Output rows per scheduling chunk, and tokens per inner block: a chunk's weight rows stay in
 * L1/L2 while a block of activation rows streams past them. */
#define ROWS_PER_CHUNK 16
#define TOKENS_PER_BLOCK 8
#define CHUNKS_PER_THREAD 4

struct quantize_job {
    quant_from_float_fn fn;
    const float *x;
    void *dst;
    int T;
    int64_t K;
    size_t row_size;
};

static void quantize_rows(void *arg, int ith, int nth)
{
    const struct quantize_job *j = arg;
    for (int t = ith; t < j->T; t += nth)
        j->fn(j->x + (int64_t)t * j->K, (char *)j->dst + (size_t)t * j->row_size, j->K);
}

struct product {
    const struct weight *w;
    float *y;
    const void *xq;      /* T rows of row_size bytes */
    size_t xq_row;
    quant_vec_dot_fn dot;
    quant_vec_dot_multi_fn multi;   /* NULL: one column at a time */
    int M;
    int rows_per_chunk;
    int n_chunks;
};

struct matmul_job {
    struct pool *pool;
    int n;
    int T;
    int K;
    int total_chunks;
    struct product p[OPS_MAX_MATMULS];
};

static void matmul_chunks(void *arg, int ith, int nth)
{
    struct matmul_job *j = arg;
    (void)ith;
    (void)nth;
    int chunk;
    while ((chunk = pool_next(j->pool, j->total_chunks)) >= 0) {
        int i = 0;
        while (chunk >= j->p[i].n_chunks)
            chunk -= j->p[i++].n_chunks;
        const struct product *p = &j->p[i];
        const int r0 = chunk * p->rows_per_chunk;
        const int r1 = r0 + p->rows_per_chunk < p->M ? r0 + p->rows_per_chunk : p->M;
        const char *wdata = p->w->data;
        for (int t0 = 0; t0 < j->T; t0 += TOKENS_PER_BLOCK) {
            const int t1 = t0 + TOKENS_PER_BLOCK < j->T ? t0 + TOKENS_PER_BLOCK : j->T;
            for (int r = r0; r < r1; r++) {
                const void *wrow = wdata + (size_t)r * p->w->nb1;
                int t = t0;
                if (p->multi) {
                    float s[QUANT_MULTI_MAX];
                    for (; t + 1 < t1; t += QUANT_MULTI_MAX) {
                        const int nc = t1 - t < QUANT_MULTI_MAX ? t1 - t : QUANT_MULTI_MAX;
                        p->multi(j->K, s, wrow, (const char *)p->xq + (size_t)t * p->xq_row,
                                 p->xq_row, nc);
                        for (int c = 0; c < nc; c++)
                            p->y[(int64_t)(t + c) * p->M + r] = s[c];
                    }
                }
                for (; t < t1; t++)
                    p->dot(j->K, &p->y[(int64_t)t * p->M + r], wrow,
                           (const char *)p->xq + (size_t)t * p->xq_row);
            }
        }
    }
}

void op_matmul_n(struct tandem_ctx *c, int n, const struct weight *const *ws, const float *x,
                 int T, float *const *ys)
{
    const int K = (int)ws[0]->ne[0];
    const int nth = pool_size(c->pool);
    const enum quant_level level = quant_level_best();
    struct matmul_job job = {.pool = c->pool, .n = n, .T = T, .K = K};
    /* One quantized copy of x per distinct activation type. */
    enum qtype done_type[OPS_MAX_MATMULS];
    const void *done_buf[OPS_MAX_MATMULS];
    int n_done = 0;
    char *act = c->s.act;
    for (int i = 0; i < n; i++) {
        const struct qtype_traits *tr = quant_traits(ws[i]->type);
        const enum qtype vdt = tr->vec_dot_type;
        struct product *p = &job.p[i];
        p->w = ws[i];
        p->y = ys[i];
        p->M = (int)ws[i]->ne[1];
        /* Few tokens: the product streams weights from memory, and long contiguous runs per
         * thread keep the hardware prefetchers going; still several chunks per thread so a
         * preempted thread's share is picked up by the others. Many tokens: small chunks. */
        p->rows_per_chunk = ROWS_PER_CHUNK;
        if (T <= 16) {
            const int want = (p->M + CHUNKS_PER_THREAD * nth - 1) / (CHUNKS_PER_THREAD * nth);
            p->rows_per_chunk = want > ROWS_PER_CHUNK ? (want + 15) / 16 * 16 : ROWS_PER_CHUNK;
        }
        p->n_chunks = (p->M + p->rows_per_chunk - 1) / p->rows_per_chunk;
        p->dot = quant_vec_dot_at(ws[i]->type, level);
        p->multi = T > 1 ? quant_vec_dot_multi_at(ws[i]->type, level) : NULL;
        p->xq_row = quant_row_size(vdt, K);
        job.total_chunks += p->n_chunks;
        if (vdt == QTYPE_F32) {
            p->xq = x;
            continue;
        }
        p->xq = NULL;
        for (int d = 0; d < n_done; d++)
            if (done_type[d] == vdt)
                p->xq = done_buf[d];
        if (p->xq)
            continue;
        struct quantize_job qj = {.fn = quant_from_float_at(vdt, level), .x = x, .dst = act,
                                  .T = T, .K = K, .row_size = p->xq_row};
        if (T >= 8)
            pool_run(c->pool, quantize_rows, &qj);
        else
            quantize_rows(&qj, 0, 1);
        done_type[n_done] = vdt;
        done_buf[n_done++] = act;
        p->xq = act;
        act += (size_t)T * p->xq_row;
    }
    pool_run(c->pool, matmul_chunks, &job);
}

struct weight op_expert_view(const struct weight *w, int e)
{
    struct weight v = *w;
    v.ne[2] = 1;
    v.data = (const char *)w->data + (size_t)e * (size_t)w->ne[1] * w->nb1;
    return v;
}

struct weight op_rows_view(const struct weight *w, int64_t first, int64_t n)
{
    struct weight v = *w;
    if (w->ne[1] == 1) { /* 1-D (a bias): elements */
        v.ne[0] = n;
        v.data = (const float *)w->data + first;
        return v;
    }
    v.ne[1] = n;
    v.data = (const char *)w->data + (size_t)first * w->nb1;
    return v;
}
