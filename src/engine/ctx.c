/* Contexts: KV cache and scratch allocated once; decode validates and runs the forward pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/ops.h"

#define DEFAULT_N_BATCH 256
#define DEFAULT_MAX_CTX 4096

struct tandem_ctx_params tandem_ctx_default_params(void)
{
    return (struct tandem_ctx_params){.n_ctx = 0, .n_batch = 0, .n_threads = 0, .n_seq = 0};
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
                    s->logits, s->pos, s->seq, s->out, s->tok};
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
    s->pos = malloc(B * sizeof(int32_t));
    s->seq = malloc(B * sizeof(int32_t));
    s->out = malloc(B * sizeof(int32_t));
    s->tok = malloc(B * sizeof(int32_t));
    total += 4 * B * sizeof(int32_t);
    if (!s->pos || !s->seq || !s->out || !s->tok)
        return TANDEM_E_NOMEM;
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
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0 || p.n_threads > 1024 || p.n_seq < 0 ||
        p.n_seq > 256) {
        if (err)
            snprintf(err, errlen,
                     "invalid context parameters (n_ctx %d, n_batch %d, n_threads %d, n_seq %d)",
                     p.n_ctx, p.n_batch, p.n_threads, p.n_seq);
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
    if (!p.n_seq)
        p.n_seq = 1;
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
    c->n_seq = p.n_seq;
    model__rope_scaling(m, c->n_ctx, &c->rope_factors, &c->rope_mscale);
    const size_t kv = (size_t)p.n_seq * m->hp.n_layer * c->n_ctx * m->hp.n_head_kv * m->hp.head_dim;
    int rc = TANDEM_E_NOMEM;
    c->seq_past = calloc((size_t)p.n_seq, sizeof(int));
    c->span_row = calloc((size_t)p.n_seq, sizeof(int));
    c->kv_bytes = 2 * kv * sizeof(uint16_t);
    c->k_cache = malloc(kv * sizeof(uint16_t));
    c->v_cache = malloc(kv * sizeof(uint16_t));
    c->pool = pool_new(c->n_threads);
    if (!c->seq_past || !c->span_row || !c->k_cache || !c->v_cache || !c->pool ||
        (rc = scratch_alloc(c))) {
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
    free(c->seq_past);
    free(c->span_row);
    free(c);
}

static int check_tokens(const struct tandem_ctx *c, const int32_t *tokens, int n)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->model->hp.n_vocab)
            return TANDEM_E_ARG;
    return 0;
}

int tandem_decode(struct tandem_ctx *c, const int32_t *tokens, int n, bool all_logits)
{
    if (n < 1 || n > c->n_batch)
        return TANDEM_E_ARG;
    const int past = c->seq_past[0];
    if (past + n > c->n_ctx)
        return TANDEM_E_CONTEXT_FULL;
    if (check_tokens(c, tokens, n))
        return TANDEM_E_ARG;
    struct scratch *s = &c->s;
    const int first = all_logits ? 0 : n - 1;
    for (int i = 0; i < n; i++) {
        s->pos[i] = past + i;
        s->seq[i] = 0;
        s->out[i] = first + i;
    }
    c->batch = (struct batch){.n = n, .tokens = tokens, .pos = s->pos, .seq = s->seq,
                              .n_out = n - first, .out = s->out};
    c->model->arch->forward(c);
    c->seq_past[0] += n;
    c->logits_first = first;
    c->n_spans = 0;
    return 0;
}

int tandem_decode_spans(struct tandem_ctx *c, const struct tandem_span *spans, int n_spans)
{
    if (n_spans < 1 || n_spans > c->n_seq)
        return TANDEM_E_ARG;
    int total = 0;
    for (int i = 0; i < n_spans; i++) {
        const struct tandem_span *sp = &spans[i];
        if (sp->seq < 0 || sp->seq >= c->n_seq || sp->n < 1 || !sp->tokens ||
            sp->n > c->n_batch - total)
            return TANDEM_E_ARG;
        for (int j = 0; j < i; j++)
            if (spans[j].seq == sp->seq)
                return TANDEM_E_ARG;
        if (c->seq_past[sp->seq] + sp->n > c->n_ctx)
            return TANDEM_E_CONTEXT_FULL;
        if (check_tokens(c, sp->tokens, sp->n))
            return TANDEM_E_ARG;
        total += sp->n;
    }
    struct scratch *s = &c->s;
    int t = 0, n_out = 0;
    for (int i = 0; i < n_spans; i++) {
        const struct tandem_span *sp = &spans[i];
        memcpy(s->tok + t, sp->tokens, (size_t)sp->n * sizeof(int32_t));
        for (int j = 0; j < sp->n; j++) {
            s->pos[t + j] = c->seq_past[sp->seq] + j;
            s->seq[t + j] = sp->seq;
        }
        t += sp->n;
        c->span_row[i] = sp->logits ? n_out : -1;
        if (sp->logits)
            s->out[n_out++] = t - 1;
    }
    c->batch = (struct batch){.n = total, .tokens = s->tok, .pos = s->pos, .seq = s->seq,
                              .n_out = n_out, .out = s->out};
    c->model->arch->forward(c);
    for (int i = 0; i < n_spans; i++)
        c->seq_past[spans[i].seq] += spans[i].n;
    c->n_spans = n_spans;
    c->logits_first = 0;
    return 0;
}

const float *tandem_span_logits(const struct tandem_ctx *c, int i)
{
    if (i < 0 || i >= c->n_spans || c->span_row[i] < 0)
        return NULL;
    return c->s.logits + (size_t)c->span_row[i] * c->model->hp.n_vocab;
}

const float *tandem_logits(const struct tandem_ctx *c, int i)
{
    if (c->n_logits == 0 || c->n_spans)
        return NULL;
    if (i < 0)
        i = c->logits_first + c->n_logits - 1;
    if (i < c->logits_first || i >= c->logits_first + c->n_logits)
        return NULL;
    return c->s.logits + (size_t)(i - c->logits_first) * c->model->hp.n_vocab;
}

int tandem_embed(struct tandem_ctx *c, int seq, const int32_t *tokens, int n, float *out)
{
    const int E = c->model->hp.n_embd;
    if (seq < 0 || seq >= c->n_seq || n < 1 || !tokens || !out)
        return TANDEM_E_ARG;
    if (n > c->n_ctx)
        return TANDEM_E_CONTEXT_FULL;
    if (check_tokens(c, tokens, n))
        return TANDEM_E_ARG;
    struct scratch *s = &c->s;
    double *sum = calloc((size_t)E, sizeof(double));
    if (!sum)
        return TANDEM_E_NOMEM;
    c->seq_past[seq] = 0;
    for (int done = 0; done < n;) {
        const int m = n - done < c->n_batch ? n - done : c->n_batch;
        for (int i = 0; i < m; i++) {
            s->pos[i] = done + i;
            s->seq[i] = seq;
        }
        c->batch = (struct batch){.n = m, .tokens = tokens + done, .pos = s->pos, .seq = s->seq,
                                  .n_out = 0, .out = s->out, .embd = true};
        c->model->arch->forward(c);
        for (int i = 0; i < m; i++)
            for (int d = 0; d < E; d++)
                sum[d] += s->xb[(size_t)i * E + d];
        done += m;
        c->seq_past[seq] = done;
    }
    c->seq_past[seq] = 0;
    c->n_logits = 0;
    c->n_spans = 0;
    double norm = 0;
    for (int d = 0; d < E; d++) {
        sum[d] /= n;
        norm += sum[d] * sum[d];
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0.0;
    for (int d = 0; d < E; d++)
        out[d] = (float)(sum[d] * norm);
    free(sum);
    return 0;
}

int tandem_ctx_n_past(const struct tandem_ctx *c) { return c->seq_past[0]; }
int tandem_ctx_n_ctx(const struct tandem_ctx *c) { return c->n_ctx; }
int tandem_ctx_n_threads(const struct tandem_ctx *c) { return c->n_threads; }
int tandem_ctx_n_seq(const struct tandem_ctx *c) { return c->n_seq; }
size_t tandem_ctx_kv_bytes(const struct tandem_ctx *c) { return c->kv_bytes; }
size_t tandem_ctx_scratch_bytes(const struct tandem_ctx *c) { return c->scratch_bytes; }

int tandem_ctx_truncate(struct tandem_ctx *c, int n_past) { return tandem_seq_truncate(c, 0, n_past); }

int tandem_seq_n_past(const struct tandem_ctx *c, int seq)
{
    if (seq < 0 || seq >= c->n_seq)
        return TANDEM_E_ARG;
    return c->seq_past[seq];
}

int tandem_seq_truncate(struct tandem_ctx *c, int seq, int n_past)
{
    if (seq < 0 || seq >= c->n_seq || n_past < 0 || n_past > c->seq_past[seq])
        return TANDEM_E_ARG;
    c->seq_past[seq] = n_past;
    return 0;
}

int tandem_seq_copy(struct tandem_ctx *c, int src, int dst, int n)
{
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq || n < 0 ||
        n > c->seq_past[src])
        return TANDEM_E_ARG;
    if (src == dst) {
        c->seq_past[dst] = n;
        return 0;
    }
    const struct hparams *hp = &c->model->hp;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    for (int il = 0; il < hp->n_layer; il++) {
        const size_t so = ctx__kv_off(c, src, il), dof = ctx__kv_off(c, dst, il);
        memcpy(c->k_cache + dof, c->k_cache + so, (size_t)n * kv_dim * sizeof(uint16_t));
        for (size_t d = 0; d < kv_dim; d++)
            memcpy(c->v_cache + dof + d * c->n_ctx, c->v_cache + so + d * c->n_ctx,
                   (size_t)n * sizeof(uint16_t));
    }
    c->seq_past[dst] = n;
    return 0;
}
