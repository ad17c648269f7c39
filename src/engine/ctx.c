/* Contexts: KV cache and scratch allocated once; decode validates and runs the forward pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/ops.h"

#define DEFAULT_N_BATCH 256
#define DEFAULT_MAX_CTX 4096

struct tandem_ctx_params tandem_ctx_default_params(void)
{
    return (struct tandem_ctx_params){.n_ctx = 0, .n_batch = 0, .n_threads = 0};
}

static void *alloc_floats(size_t n, size_t *total)
{
    *total += n * sizeof(float);
    return malloc(n * sizeof(float) + 64);
}

static void scratch_free(struct scratch *s)
{
    void *ptrs[] = {s->x,      s->xb,     s->xb2,     s->q,     s->k,      s->v,
                    s->hb,     s->hb2,    s->moe_out, s->moe_in, s->router, s->moe_sel,
                    s->moe_w,  s->moe_rows, s->rope_cs, s->att,  s->qh,     s->ph, s->act,
                    s->logits};
    for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
        free(ptrs[i]);
    memset(s, 0, sizeof(*s));
}

static int scratch_alloc(struct tandem_ctx *c)
{
    const struct hparams *hp = &c->model->hp;
    struct scratch *s = &c->s;
    const size_t B = (size_t)c->n_batch;
    const size_t q_dim = (size_t)hp->n_head * hp->head_dim;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t wide = q_dim > (size_t)hp->n_embd ? q_dim : (size_t)hp->n_embd;
    const size_t ff = (size_t)hp->n_ff;
    const size_t n_exp = hp->n_expert > 0 ? (size_t)hp->n_expert : 1;
    const size_t k_used = hp->n_expert_used > 0 ? (size_t)hp->n_expert_used : 1;
    size_t total = 0;
    s->x = alloc_floats(B * hp->n_embd, &total);
    s->xb = alloc_floats(B * wide, &total);
    s->xb2 = alloc_floats(B * wide, &total);
    s->q = alloc_floats(B * q_dim, &total);
    s->k = alloc_floats(B * kv_dim, &total);
    s->v = alloc_floats(B * kv_dim, &total);
    s->hb = alloc_floats(B * ff, &total);
    s->hb2 = alloc_floats(B * ff, &total);
    if (hp->n_expert) {
        s->moe_out = alloc_floats(B * hp->n_embd, &total);
        s->moe_in = alloc_floats(B * hp->n_embd, &total);
        s->router = alloc_floats(B * n_exp, &total);
        s->moe_sel = malloc(B * k_used * sizeof(int32_t));
        s->moe_w = alloc_floats(B * k_used, &total);
        s->moe_rows = malloc(B * sizeof(int32_t));
        if (!s->moe_out || !s->moe_in || !s->router || !s->moe_sel || !s->moe_w || !s->moe_rows)
            return TANDEM_E_NOMEM;
    }
    s->rope_cs = alloc_floats(B * (size_t)hp->n_rot, &total);
    s->att = alloc_floats((size_t)c->n_threads * c->n_ctx, &total);
    s->qh = malloc((size_t)c->n_threads * hp->head_dim * sizeof(uint16_t));
    s->ph = malloc((size_t)c->n_threads * c->n_ctx * sizeof(uint16_t));
    /* Widest activation row: K values at 2 bytes (F16) beats every 8-bit block format. */
    size_t max_k = wide > ff ? wide : ff;
    s->act_size = OPS_MAX_MATMULS * B * (max_k * 2 + 64);
    s->act = malloc(s->act_size);
    total += s->act_size + (size_t)c->n_threads * (hp->head_dim + c->n_ctx) * sizeof(uint16_t);
    total += B * (size_t)hp->n_vocab * sizeof(float);
    c->scratch_bytes = total;
    /* Logits for a whole batch are only touched when all_logits is asked for. */
    s->logits = malloc(B * (size_t)hp->n_vocab * sizeof(float));
    if (!s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->hb || !s->hb2 ||
        !s->rope_cs || !s->att || !s->qh || !s->ph || !s->act || !s->logits)
        return TANDEM_E_NOMEM;
    return 0;
}

int tandem_ctx_new(struct tandem_ctx **out, struct tandem_model *m,
                   const struct tandem_ctx_params *params, char *err, size_t errlen)
{
    *out = NULL;
    struct tandem_ctx_params p = params ? *params : tandem_ctx_default_params();
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0 || p.n_threads > 1024) {
        if (err)
            snprintf(err, errlen, "invalid context parameters (n_ctx %d, n_batch %d, n_threads %d)",
                     p.n_ctx, p.n_batch, p.n_threads);
        return TANDEM_E_ARG;
    }
    if (!p.n_ctx)
        p.n_ctx = m->hp.n_ctx_train < DEFAULT_MAX_CTX ? m->hp.n_ctx_train : DEFAULT_MAX_CTX;
    if (m->hp.n_pos_max && p.n_ctx > m->hp.n_pos_max) {
        if (params && params->n_ctx) {
            if (err)
                snprintf(err, errlen, "a context of %d positions exceeds the model's %d learned positions",
                         p.n_ctx, m->hp.n_pos_max);
            return TANDEM_E_ARG;
        }
        p.n_ctx = m->hp.n_pos_max;
    }
    if (!p.n_batch)
        p.n_batch = DEFAULT_N_BATCH;
    if (p.n_batch > p.n_ctx)
        p.n_batch = p.n_ctx;
    if (!p.n_threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int)n : 1;
    }
    struct tandem_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return TANDEM_E_NOMEM;
    c->model = m;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->n_threads = p.n_threads;
    const size_t kv = (size_t)m->hp.n_layer * c->n_ctx * m->hp.n_head_kv * m->hp.head_dim;
    int rc = TANDEM_E_NOMEM;
    c->kv_bytes = 2 * kv * sizeof(uint16_t);
    c->k_cache = malloc(kv * sizeof(uint16_t));
    c->v_cache = malloc(kv * sizeof(uint16_t));
    c->pool = pool_new(c->n_threads);
    if (!c->k_cache || !c->v_cache || !c->pool || (rc = scratch_alloc(c))) {
        if (err)
            snprintf(err, errlen, "cannot allocate a context of %d positions (%s)", c->n_ctx,
                     tandem_strerror(rc));
        tandem_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void tandem_ctx_free(struct tandem_ctx *c)
{
    if (!c)
        return;
    pool_free(c->pool);
    scratch_free(&c->s);
    free(c->k_cache);
    free(c->v_cache);
    free(c);
}

int tandem_decode(struct tandem_ctx *c, const int32_t *tokens, int n, bool all_logits)
{
    if (n < 1 || n > c->n_batch)
        return TANDEM_E_ARG;
    if (c->n_past + n > c->n_ctx)
        return TANDEM_E_CONTEXT_FULL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->model->hp.n_vocab)
            return TANDEM_E_ARG;
    c->batch = (struct batch){.n = n, .n_past = c->n_past, .tokens = tokens,
                              .all_logits = all_logits};
    c->model->arch->forward(c);
    c->n_past += n;
    return 0;
}

const float *tandem_logits(const struct tandem_ctx *c, int i)
{
    if (c->n_logits == 0)
        return NULL;
    if (i < 0)
        i = c->logits_first + c->n_logits - 1;
    if (i < c->logits_first || i >= c->logits_first + c->n_logits)
        return NULL;
    return c->s.logits + (size_t)(i - c->logits_first) * c->model->hp.n_vocab;
}

int tandem_ctx_n_past(const struct tandem_ctx *c) { return c->n_past; }
int tandem_ctx_n_ctx(const struct tandem_ctx *c) { return c->n_ctx; }
int tandem_ctx_n_threads(const struct tandem_ctx *c) { return c->n_threads; }
size_t tandem_ctx_kv_bytes(const struct tandem_ctx *c) { return c->kv_bytes; }
size_t tandem_ctx_scratch_bytes(const struct tandem_ctx *c) { return c->scratch_bytes; }

int tandem_ctx_truncate(struct tandem_ctx *c, int n_past)
{
    if (n_past < 0 || n_past > c->n_past)
        return TANDEM_E_ARG;
    c->n_past = n_past;
    return 0;
}
