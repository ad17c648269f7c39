/* The sampler chain: candidates from logits, stages in order, log-probabilities. */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sampler_strerror(int err)
{
    switch (err) {
    case SAMPLER_OK: return "ok";
    case SAMPLER_E_INVALID: return "invalid sampling parameter";
    case SAMPLER_E_NOMEM: return "out of memory";
    case SAMPLER_E_STATE: return "sampler not in a state for this call";
    case SAMPLER_E_LIMIT: return "sampler limit exceeded";
    }
    return "unknown sampler error";
}

/* Overflow to +inf would poison the softmax (inf - inf); logits saturate instead. */
static float saturate(float v)
{
    return v > FLT_MAX ? FLT_MAX : v;
}

static int finite_in(float v, float lim)
{
    return v == v && v >= -lim && v <= lim;
}

/* ---- the chain ---- */

struct sampler_chain {
    int32_t n_vocab;
    struct sampler_candidate *cand; /* [n_vocab] */
    struct sampler_candidates cur;
    struct sampler_stage *stages[SAMPLER_MAX_STAGES];
    size_t n_stages;
    uint64_t seed;
    /* log-probabilities */
    bool lp_on;
    size_t lp_after;
    float lp_inv_t;
    int32_t lp_n_top;
    float *lp_snap; /* [n_vocab] scaled logits at the snapshot, by token id */
    double lp_lse;  /* log-sum-exp of lp_snap */
    bool have_sample;
    struct sampler_logprobs lp;
};

void sampler_config_default(struct sampler_config *cfg)
{
    *cfg = (struct sampler_config){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = SAMPLER_SEED_RANDOM,
    };
}

int sampler_chain_new_empty(struct sampler_chain **out, int32_t n_vocab)
{
    *out = NULL;
    if (n_vocab <= 0)
        return SAMPLER_E_INVALID;
    struct sampler_chain *c = calloc(1, sizeof(*c));
    if (!c)
        return SAMPLER_E_NOMEM;
    c->n_vocab = n_vocab;
    c->cand = malloc((size_t)n_vocab * sizeof(*c->cand));
    if (!c->cand) {
        free(c);
        return SAMPLER_E_NOMEM;
    }
    c->lp_inv_t = 1.0f;
    *out = c;
    return SAMPLER_OK;
}

int sampler_chain_add(struct sampler_chain *c, struct sampler_stage *st)
{
    if (!c || !st || !st->iface || !st->iface->name || !st->iface->apply) {
        sampler_stage_free(st);
        return SAMPLER_E_INVALID;
    }
    if (c->n_stages == SAMPLER_MAX_STAGES) {
        sampler_stage_free(st);
        return SAMPLER_E_LIMIT;
    }
    c->stages[c->n_stages++] = st;
    return SAMPLER_OK;
}

int sampler_chain_set_logprobs(struct sampler_chain *c, size_t after_stage, float temperature,
                               int32_t n_top)
{
    if (!c || after_stage > c->n_stages || n_top < 0 || n_top > SAMPLER_MAX_TOP_LOGPROBS ||
        temperature != temperature)
        return SAMPLER_E_INVALID;
    if (!c->lp_snap) {
        c->lp_snap = malloc((size_t)c->n_vocab * sizeof(float));
        if (!c->lp_snap)
            return SAMPLER_E_NOMEM;
    }
    c->lp_on = true;
    c->lp_after = after_stage;
    c->lp_inv_t = temperature > 0 ? 1.0f / temperature : 1.0f;
    c->lp_n_top = n_top;
    return SAMPLER_OK;
}

static uint64_t clock_seed(void)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)(uintptr_t)&ts << 16) ^ (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    uint64_t st[4];
    sampler__rng_seed(st, x);
    return st[0] == SAMPLER_SEED_RANDOM ? st[0] - 1 : st[0];
}

#define TRY(expr)                                                                          \
    do {                                                                                   \
        rc = (expr);                                                                       \
        if (rc)                                                                            \
            goto fail;                                                                     \
        rc = sampler_chain_add(c, st);                                                     \
        st = NULL;                                                                         \
        if (rc)                                                                            \
            goto fail;                                                                     \
    } while (0)

int sampler_chain_new(struct sampler_chain **out, const struct sampler_config *cfg,
                      int32_t n_vocab)
{
    return sampler_chain_new_front(out, cfg, n_vocab, NULL);
}

int sampler_chain_new_front(struct sampler_chain **out, const struct sampler_config *cfg,
                            int32_t n_vocab, struct sampler_stage *first)
{
    *out = NULL;
    struct sampler_stage *st = first;
    if (!cfg || cfg->temperature != cfg->temperature || cfg->temperature > 1e6f ||
        !(cfg->top_p >= 0.0f && cfg->top_p <= 1.0f) || !(cfg->min_p >= 0.0f && cfg->min_p <= 1.0f) ||
        cfg->n_probs < 0 || cfg->n_probs > SAMPLER_MAX_TOP_LOGPROBS || (cfg->n_logit_bias && !cfg->logit_bias)) {
        sampler_stage_free(first);
        return SAMPLER_E_INVALID;
    }
    struct sampler_chain *c = NULL;
    int rc = sampler_chain_new_empty(&c, n_vocab);
    if (rc) {
        sampler_stage_free(first);
        return rc;
    }
    c->seed = cfg->seed == SAMPLER_SEED_RANDOM ? clock_seed() : cfg->seed;
    if (first) {
        rc = sampler_chain_add(c, st);  /* owns the stage from here, even on failure */
        st = NULL;
        if (rc)
            goto fail;
    }
    if (cfg->n_logit_bias)
        TRY(sampler_stage_logit_bias_new(&st, n_vocab, cfg->n_logit_bias, cfg->logit_bias));
    bool penalties = cfg->repeat_penalty != 1.0f || cfg->frequency_penalty != 0.0f ||
                     cfg->presence_penalty != 0.0f;
    if (cfg->repeat_last_n < 0 || cfg->repeat_last_n > SAMPLER_MAX_LAST_N) {
        rc = SAMPLER_E_INVALID;
        goto fail;
    }
    if (penalties && cfg->repeat_last_n > 0)
        TRY(sampler_stage_penalties_new(&st, n_vocab, cfg->repeat_last_n, cfg->repeat_penalty,
                                        cfg->frequency_penalty, cfg->presence_penalty));
    else if (!(cfg->repeat_penalty > 0.0f) || !finite_in(cfg->frequency_penalty, 1e6f) ||
             !finite_in(cfg->presence_penalty, 1e6f)) {
        rc = SAMPLER_E_INVALID;
        goto fail;
    }
    size_t lp_after = c->n_stages;
    if (cfg->temperature <= 0.0f) {
        TRY(sampler_stage_greedy_new(&st));
    } else {
        if (cfg->top_k > 0)
            TRY(sampler_stage_top_k_new(&st, cfg->top_k));
        if (cfg->top_p < 1.0f)
            TRY(sampler_stage_top_p_new(&st, cfg->top_p, 1));
        if (cfg->min_p > 0.0f)
            TRY(sampler_stage_min_p_new(&st, cfg->min_p, 1));
        if (cfg->temperature != 1.0f)
            TRY(sampler_stage_temperature_new(&st, cfg->temperature));
        TRY(sampler_stage_dist_new(&st, c->seed));
    }
    if (cfg->logprobs || cfg->n_probs > 0) {
        rc = sampler_chain_set_logprobs(c, lp_after, cfg->temperature, cfg->n_probs);
        if (rc)
            goto fail;
    }
    *out = c;
    return SAMPLER_OK;
fail:
    sampler_stage_free(st);
    sampler_free(c);
    return rc;
}

#undef TRY

size_t sampler_chain_n_stages(const struct sampler_chain *c)
{
    return c ? c->n_stages : 0;
}

const struct sampler_stage *sampler_chain_stage(const struct sampler_chain *c, size_t i)
{
    return c && i < c->n_stages ? c->stages[i] : NULL;
}

uint64_t sampler_chain_seed(const struct sampler_chain *c)
{
    return c ? c->seed : 0;
}

void sampler_free(struct sampler_chain *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_stages; i++)
        sampler_stage_free(c->stages[i]);
    free(c->lp_snap);
    free(c->cand);
    free(c);
}

/* Log-softmax bookkeeping over the candidates as they are now (normally the whole
 * vocabulary): scaled logits by id, their log-sum-exp, and the n_top best. */
static void lp_snapshot(struct sampler_chain *c)
{
    const struct sampler_candidates *cur = &c->cur;
    struct sampler_logprobs *lp = &c->lp;
    if (cur->size < (size_t)c->n_vocab)
        for (int32_t i = 0; i < c->n_vocab; i++)
            c->lp_snap[i] = -INFINITY;
    float max = -INFINITY;
    for (size_t i = 0; i < cur->size; i++) {
        float v = saturate(cur->data[i].logit * c->lp_inv_t);
        c->lp_snap[cur->data[i].id] = v;
        if (v > max)
            max = v;
    }
    int32_t n_top = 0;
    if (max == -INFINITY) {
        c->lp_lse = INFINITY; /* every log-probability reads -inf */
    } else {
        double sum = 0;
        for (size_t i = 0; i < cur->size; i++) {
            float v = c->lp_snap[cur->data[i].id];
            /* reported values, not decisions: libm's faster exp is fine here */
            sum += v == max ? 1.0 : exp((double)v - (double)max);
        }
        c->lp_lse = (double)max + log(sum);
    }
    /* the n_top best by insertion into a short sorted list */
    for (size_t i = 0; i < cur->size && c->lp_n_top > 0; i++) {
        struct sampler_token_logprob e = {cur->data[i].id, c->lp_snap[cur->data[i].id]};
        if (n_top == c->lp_n_top) {
            const struct sampler_token_logprob *w = &lp->top[n_top - 1];
            if (!(e.logprob > w->logprob || (e.logprob == w->logprob && e.id < w->id)))
                continue;
            n_top--;
        }
        int32_t j = n_top++;
        while (j > 0 && (e.logprob > lp->top[j - 1].logprob ||
                         (e.logprob == lp->top[j - 1].logprob && e.id < lp->top[j - 1].id))) {
            lp->top[j] = lp->top[j - 1];
            j--;
        }
        lp->top[j] = e;
    }
    for (int32_t i = 0; i < n_top; i++)
        lp->top[i].logprob = (float)((double)lp->top[i].logprob - c->lp_lse);
    lp->n_top = n_top;
}

int32_t sampler_sample(struct sampler_chain *c, const float *logits)
{
    if (!c || !logits)
        return SAMPLER_E_INVALID;
    c->have_sample = false;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        float l = logits[i];
        if (l != l)
            l = -INFINITY;
        c->cand[i] = (struct sampler_candidate){i, saturate(l), 0.0f};
    }
    c->cur = (struct sampler_candidates){c->cand, (size_t)c->n_vocab, false, true, -1};
    for (size_t i = 0; i <= c->n_stages; i++) {
        if (c->lp_on && c->lp_after == i)
            lp_snapshot(c);
        if (i == c->n_stages)
            break;
        c->stages[i]->iface->apply(c->stages[i], &c->cur);
    }
    if (c->cur.selected < 0 || (size_t)c->cur.selected >= c->cur.size)
        return SAMPLER_E_STATE;
    int32_t tok = c->cur.data[c->cur.selected].id;
    if (tok < 0 || tok >= c->n_vocab)
        return SAMPLER_E_STATE;
    if (c->lp_on) {
        c->lp.token = tok;
        c->lp.logprob = (float)((double)c->lp_snap[tok] - c->lp_lse);
    }
    c->have_sample = true;
    return tok;
}

int sampler_accept(struct sampler_chain *c, int32_t token)
{
    if (!c || token < 0 || token >= c->n_vocab)
        return SAMPLER_E_INVALID;
    for (size_t i = 0; i < c->n_stages; i++)
        if (c->stages[i]->iface->accept)
            c->stages[i]->iface->accept(c->stages[i], token);
    return SAMPLER_OK;
}

void sampler_reset(struct sampler_chain *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_stages; i++)
        if (c->stages[i]->iface->reset)
            c->stages[i]->iface->reset(c->stages[i]);
    c->have_sample = false;
}

int sampler_logprobs(const struct sampler_chain *c, struct sampler_logprobs *out)
{
    if (!c || !out)
        return SAMPLER_E_INVALID;
    if (!c->lp_on || !c->have_sample)
        return SAMPLER_E_STATE;
    *out = c->lp;
    return SAMPLER_OK;
}
