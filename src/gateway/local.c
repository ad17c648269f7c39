/* The local upstream: slots over one engine context, continuous batching, prefix cache. */
#include "gateway/local.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json_schema.h"
#include "engine/model.h"
#include "tandem.h"
#include "tokenizer/tokenizer.h"

#define LOCAL_MAX_SLOTS 64

const char *local_strerror(int err)
{
    switch (err) {
    case LOCAL_OK: return "ok";
    case LOCAL_E_ARG: return "invalid argument";
    case LOCAL_E_NOMEM: return "out of memory";
    case LOCAL_E_BUSY: return "all slots are busy and the queue is full";
    case LOCAL_E_TOO_LONG: return "the prompt does not fit the context";
    case LOCAL_E_LOAD: return "the model could not be loaded";
    case LOCAL_E_STOPPED: return "the server is shutting down";
    default: return "unknown error";
    }
}

void local_config_default(struct local_config *cfg)
{
    *cfg = (struct local_config){.n_slots = 4, .n_batch = 512, .prompt_chunk = 128,
                                 .queue_max = 64};
}

struct local_job {
    atomic_int refs;
    atomic_bool cancelled;
    uint64_t gen;            /* the model's cancel_gen when queued */
    struct gen_sink sink;
    int32_t *prompt;
    int n_prompt;
    struct sampler_config sampling;
    struct sampler_logit_bias *bias;
    int max_tokens;
    char **stop;
    int n_stop;
    struct json_schema *schema;  /* owned */
    bool json_object;
    struct local_job *next;  /* queue link */
};

enum slot_state { SLOT_FREE, SLOT_PROMPT, SLOT_GEN };

struct slot {
    int seq;
    enum slot_state state;
    struct local_job *job;
    int32_t *cache;          /* [n_ctx] the tokens whose K/V the sequence holds */
    int n_cache;
    uint64_t last_used;      /* step counter, for choosing among equal prefixes */
    int n_done;              /* prompt tokens evaluated (including reused ones) */
    int n_reused;
    int n_gen;
    int32_t last;            /* sampled, not yet evaluated */
    struct sampler_chain *smp;
    struct sampler_stop *stop;
    struct tokenizer_stream *ts;
    char *text;              /* generated text (for stop strings), grown by doubling */
    size_t text_len, text_cap, emitted;
    char *piece;             /* [piece_cap] */
    struct gen_logprob *lp;  /* [lp_cap] logprobs of tokens not yet emitted */
    int n_lp, lp_cap;
};

struct local_model {
    char *name;
    struct tandem_model *model;
    struct tandem_ctx *ctx;
    struct local_config cfg;
    int n_ctx;
    size_t piece_cap;
    struct slot slots[LOCAL_MAX_SLOTS];
    struct tandem_span *spans;      /* [n_slots] */
    struct slot **span_slot;        /* [n_slots] */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    uint64_t cancel_gen;     /* local_model_cancel_all bumps it: jobs older than it end */
    struct local_job *q_head, *q_tail;
    int q_len;
    uint64_t step;
    struct local_stats stats;
    /* constrained output: built on first use */
    struct json_vocab *jvocab;
    struct json_schema *any_object;
    /* embeddings: a context of its own */
    pthread_mutex_t embd_mu;
    struct tandem_ctx *embd_ctx;
};

/* ---- jobs ---- */

static void job_free(struct local_job *j)
{
    json_schema_free(j->schema);
    free(j->prompt);
    free(j->bias);
    for (int i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    free(j->stop);
    free(j);
}

void local_job_release(struct local_job *j)
{
    if (j && atomic_fetch_sub(&j->refs, 1) == 1)
        job_free(j);
}

void local_job_cancel(struct local_job *j)
{
    if (j)
        atomic_store(&j->cancelled, true);
}

static struct local_job *job_new(const struct local_job_params *p, const struct gen_sink *sink)
{
    struct local_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_schema_free(p->schema);
        return NULL;
    }
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancelled, false);
    j->sink = *sink;
    j->n_prompt = p->n_prompt;
    j->sampling = p->sampling;
    j->max_tokens = p->max_tokens;
    j->schema = p->schema;
    j->json_object = p->json_object;
    j->prompt = malloc(sizeof(int32_t) * (size_t)p->n_prompt);
    if (!j->prompt)
        goto fail;
    memcpy(j->prompt, p->prompt, sizeof(int32_t) * (size_t)p->n_prompt);
    if (p->sampling.n_logit_bias) {
        j->bias = malloc(sizeof(*j->bias) * p->sampling.n_logit_bias);
        if (!j->bias)
            goto fail;
        memcpy(j->bias, p->sampling.logit_bias, sizeof(*j->bias) * p->sampling.n_logit_bias);
        j->sampling.logit_bias = j->bias;
    }
    if (p->n_stop > 0) {
        j->stop = calloc((size_t)p->n_stop, sizeof(char *));
        if (!j->stop)
            goto fail;
        for (int i = 0; i < p->n_stop; i++) {
            if (!(j->stop[i] = strdup(p->stop[i])))
                goto fail;
            j->n_stop++;
        }
    }
    return j;
fail:
    job_free(j);
    return NULL;
}

/* ---- slots ---- */

static void slot_reset_job(struct slot *s)
{
    sampler_free(s->smp);
    sampler_stop_free(s->stop);
    tokenizer_stream_free(s->ts);
    s->smp = NULL;
    s->stop = NULL;
    s->ts = NULL;
    s->job = NULL;
    s->state = SLOT_FREE;
    s->text_len = s->emitted = 0;
    s->n_lp = s->n_gen = s->n_done = s->n_reused = 0;
}

/* The sampler chain of a job: the standard one, or with the JSON stage in front. */
static int build_chain(struct local_model *lm, struct slot *s, const struct local_job *j)
{
    const int32_t n_vocab = tandem_model_n_vocab(lm->model);
    if (!j->schema && !j->json_object)
        return sampler_chain_new(&s->smp, &j->sampling, n_vocab);
    const struct json_schema *schema = j->schema;
    if (!lm->jvocab && json_vocab_new(&lm->jvocab, lm->model))
        return SAMPLER_E_NOMEM;
    if (!schema) {
        if (!lm->any_object && json_schema_compile(&lm->any_object, NULL, 0, NULL, 0))
            return SAMPLER_E_NOMEM;
        schema = lm->any_object;
    }
    struct sampler_stage *st = NULL;
    int rc = sampler_stage_json_new(&st, lm->jvocab, schema, lm->model);
    return rc ? rc : sampler_chain_new_front(&s->smp, &j->sampling, n_vocab, st);
}

static size_t common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    size_t i = 0;
    while ((int)i < na && (int)i < nb && a[i] == b[i])
        i++;
    return i;
}

/* Puts a queued job into a free slot, reusing the longest cached prefix of any slot. */
static int slot_start(struct local_model *lm, struct slot *s, struct local_job *j)
{
    /* The best source of a prefix: this slot's own cache, or another slot's (copied). */
    int best_len = (int)common_prefix(s->cache, s->n_cache, j->prompt, j->n_prompt);
    struct slot *src = s;
    for (int i = 0; i < lm->cfg.n_slots; i++) {
        struct slot *o = &lm->slots[i];
        const int n = (int)common_prefix(o->cache, o->n_cache, j->prompt, j->n_prompt);
        if (n > best_len + 16) {  /* copying costs; take it only when clearly better */
            best_len = n;
            src = o;
        }
    }
    /* At least the last prompt token is evaluated again: its logits start the generation. */
    int reuse = best_len < j->n_prompt ? best_len : j->n_prompt - 1;
    if (src != s)
        tandem_seq_copy(lm->ctx, src->seq, s->seq, reuse);
    else
        tandem_seq_truncate(lm->ctx, s->seq, reuse);
    if (src != s)
        memcpy(s->cache, src->cache, sizeof(int32_t) * (size_t)reuse);
    s->n_cache = reuse;
    s->n_done = s->n_reused = reuse;
    s->job = j;
    s->state = SLOT_PROMPT;
    struct sampler_stop_config sc = {.strings = (const char *const *)j->stop,
                                     .n_strings = (size_t)j->n_stop};
    int rc;
    if ((rc = build_chain(lm, s, j)) || (rc = sampler_stop_new(&s->stop, &sc)) ||
        !(s->ts = tokenizer_stream_new(lm->model->tok, 0)))
        return rc ? rc : LOCAL_E_NOMEM;
    /* The penalties look at the prompt too, as llama.cpp's do. */
    for (int i = 0; i < j->n_prompt; i++)
        sampler_accept(s->smp, j->prompt[i]);
    return 0;
}

static void emit(struct slot *s, size_t upto)
{
    if (upto > s->emitted || s->n_lp) {
        s->job->sink.text(s->job->sink.ud, s->text + s->emitted, upto - s->emitted, s->lp,
                          s->n_lp);
        s->emitted = upto;
        s->n_lp = 0;
    }
}

static void slot_finish(struct local_model *lm, struct slot *s, const char *reason,
                        bool text_final)
{
    struct local_job *j = s->job;
    if (text_final && s->ts) {
        /* Held back for a possible stop string, or an incomplete character: final now. */
        const int n = tokenizer_stream_flush(s->ts, s->piece, lm->piece_cap);
        if (n > 0 && s->text_len + (size_t)n <= s->text_cap) {
            memcpy(s->text + s->text_len, s->piece, (size_t)n);
            s->text_len += (size_t)n;
        }
        emit(s, s->text_len);
    }
    j->sink.done(j->sink.ud, reason, j->n_prompt, s->n_reused, s->n_gen);
    pthread_mutex_lock(&lm->mu);
    lm->stats.slots_busy--;
    lm->stats.gen_tokens += (uint64_t)s->n_gen;
    pthread_mutex_unlock(&lm->mu);
    slot_reset_job(s);
    local_job_release(j);
}

static int text_reserve(struct slot *s, size_t more)
{
    if (s->text_len + more <= s->text_cap)
        return 0;
    size_t cap = s->text_cap ? s->text_cap : 4096;
    while (cap < s->text_len + more)
        cap *= 2;
    char *t = realloc(s->text, cap);
    if (!t)
        return LOCAL_E_NOMEM;
    s->text = t;
    s->text_cap = cap;
    return 0;
}

/* Samples the next token of a slot from its logits, streams what became final, and ends the
 * job when a stop condition holds. */
static void slot_sample(struct local_model *lm, struct slot *s, const float *logits)
{
    struct local_job *j = s->job;
    const int32_t tok = sampler_sample(s->smp, logits);
    if (tok < 0) {
        slot_finish(lm, s, "stop", true);
        return;
    }
    sampler_accept(s->smp, tok);
    if ((j->sampling.logprobs || j->sampling.n_probs > 0) && s->n_lp < s->lp_cap) {
        struct sampler_logprobs lp;
        if (sampler_logprobs(s->smp, &lp) == 0) {
            struct gen_logprob *o = &s->lp[s->n_lp++];
            o->token = lp.token;
            o->logprob = lp.logprob;
            o->n_top = lp.n_top;
            memcpy(o->top, lp.top, sizeof(lp.top[0]) * (size_t)lp.n_top);
        }
    }
    if (tandem_token_is_eog(lm->model, tok) || sampler_stop_token(s->stop, tok) == SAMPLER_STOP_TOKEN) {
        s->n_lp = s->n_lp > 0 ? s->n_lp - 1 : 0;  /* the end token is not part of the text */
        slot_finish(lm, s, "stop", true);
        return;
    }
    s->n_gen++;
    const int n = tokenizer_stream_feed(s->ts, tok, s->piece, lm->piece_cap);
    if (n > 0) {
        if (text_reserve(s, (size_t)n)) {
            slot_finish(lm, s, "stop", true);
            return;
        }
        memcpy(s->text + s->text_len, s->piece, (size_t)n);
        s->text_len += (size_t)n;
    }
    size_t upto = s->emitted;
    const enum sampler_stop_reason why = sampler_stop_text(s->stop, s->text, s->text_len, &upto);
    if (why == SAMPLER_STOP_STRING) {
        emit(s, upto);
        slot_finish(lm, s, "stop", false);
        return;
    }
    if (s->lp_cap && s->n_lp == s->lp_cap)
        upto = upto > s->emitted ? upto : s->emitted;  /* flush the logprobs buffer */
    if (upto > s->emitted || s->n_lp == s->lp_cap)
        emit(s, upto);
    const int past = tandem_seq_n_past(lm->ctx, s->seq);
    if ((j->max_tokens > 0 && s->n_gen >= j->max_tokens) || past >= lm->n_ctx) {
        slot_finish(lm, s, "length", true);
        return;
    }
    s->last = tok;
    s->state = SLOT_GEN;
}

/* ---- the scheduler ---- */

static bool slot_gone(struct local_model *lm, struct slot *s)
{
    struct local_job *j = s->job;
    return atomic_load(&j->cancelled) || j->gen < __atomic_load_n(&lm->cancel_gen, __ATOMIC_ACQUIRE) ||
           (j->sink.gone && j->sink.gone(j->sink.ud));
}

void local_model_cancel_all(struct local_model *lm)
{
    pthread_mutex_lock(&lm->mu);
    __atomic_add_fetch(&lm->cancel_gen, 1, __ATOMIC_RELEASE);
    for (struct local_job *j = lm->q_head; j; j = j->next)
        atomic_store(&j->cancelled, true);
    pthread_cond_signal(&lm->cv);
    pthread_mutex_unlock(&lm->mu);
}

/* One decode step over every active slot: one token per generating slot, then prompt chunks
 * with what is left of the batch. */
static void step(struct local_model *lm)
{
    int n = 0, budget = lm->cfg.n_batch;
    for (int i = 0; i < lm->cfg.n_slots; i++) {
        struct slot *s = &lm->slots[i];
        if (s->state == SLOT_FREE)
            continue;
        if (slot_gone(lm, s)) {
            slot_finish(lm, s, "cancelled", false);
            continue;
        }
        if (s->state == SLOT_GEN && budget > 0) {
            lm->spans[n] = (struct tandem_span){.seq = s->seq, .tokens = &s->last, .n = 1,
                                                .logits = true};
            lm->span_slot[n++] = s;
            budget--;
        }
    }
    for (int i = 0; i < lm->cfg.n_slots && budget > 0; i++) {
        struct slot *s = &lm->slots[(i + (int)lm->step) % lm->cfg.n_slots];  /* fair rotation */
        if (s->state != SLOT_PROMPT)
            continue;
        int m = s->job->n_prompt - s->n_done;
        m = m < lm->cfg.prompt_chunk ? m : lm->cfg.prompt_chunk;
        m = m < budget ? m : budget;
        lm->spans[n] = (struct tandem_span){.seq = s->seq, .tokens = s->job->prompt + s->n_done,
                                            .n = m, .logits = s->n_done + m == s->job->n_prompt};
        lm->span_slot[n++] = s;
        budget -= m;
    }
    lm->step++;
    if (n == 0)
        return;
    if (tandem_decode_spans(lm->ctx, lm->spans, n)) {
        for (int i = 0; i < n; i++)
            slot_finish(lm, lm->span_slot[i], "stop", true);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct slot *s = lm->span_slot[i];
        const struct tandem_span *sp = &lm->spans[i];
        memcpy(s->cache + s->n_cache, sp->tokens, sizeof(int32_t) * (size_t)sp->n);
        s->n_cache += sp->n;
        s->last_used = lm->step;
        if (s->state == SLOT_PROMPT) {
            s->n_done += sp->n;
            if (s->n_done < s->job->n_prompt)
                continue;
        }
        slot_sample(lm, s, tandem_span_logits(lm->ctx, i));
    }
}

/* A free slot for the job: the one whose cache shares the longest prefix with its prompt
 * when that prefix is worth keeping (a chat turn), otherwise the least recently used one, so
 * that other slots' cached conversations survive. */
static struct slot *free_slot(struct local_model *lm, const struct local_job *j)
{
    struct slot *best = NULL, *lru = NULL;
    size_t best_len = 0;
    for (int i = 0; i < lm->cfg.n_slots; i++) {
        struct slot *s = &lm->slots[i];
        if (s->state != SLOT_FREE)
            continue;
        const size_t n = common_prefix(s->cache, s->n_cache, j->prompt, j->n_prompt);
        if (!best || n > best_len) {
            best = s;
            best_len = n;
        }
        if (!lru || s->last_used < lru->last_used)
            lru = s;
    }
    return best_len >= 8 ? best : lru;
}

static void *sched_main(void *arg)
{
    struct local_model *lm = arg;
    pthread_mutex_lock(&lm->mu);
    for (;;) {
        /* Admit waiting jobs into free slots. */
        struct slot *s;
        while (lm->q_head && (s = free_slot(lm, lm->q_head))) {
            struct local_job *j = lm->q_head;
            lm->q_head = j->next;
            if (!lm->q_head)
                lm->q_tail = NULL;
            lm->q_len--;
            lm->stats.queued = lm->q_len;
            lm->stats.slots_busy++;
            pthread_mutex_unlock(&lm->mu);
            if (slot_start(lm, s, j)) {
                s->job = j;
                slot_finish(lm, s, "stop", false);
            } else {
                pthread_mutex_lock(&lm->mu);
                lm->stats.cached_tokens += (uint64_t)s->n_reused;
                pthread_mutex_unlock(&lm->mu);
            }
            pthread_mutex_lock(&lm->mu);
        }
        if (lm->stopping)
            break;
        if (lm->stats.slots_busy == 0) {
            pthread_cond_wait(&lm->cv, &lm->mu);
            continue;
        }
        pthread_mutex_unlock(&lm->mu);
        step(lm);
        pthread_mutex_lock(&lm->mu);
    }
    /* Shutting down: end what runs and what waits. */
    struct local_job *q = lm->q_head;
    lm->q_head = lm->q_tail = NULL;
    lm->q_len = 0;
    pthread_mutex_unlock(&lm->mu);
    for (int i = 0; i < lm->cfg.n_slots; i++)
        if (lm->slots[i].state != SLOT_FREE)
            slot_finish(lm, &lm->slots[i], "cancelled", false);
    while (q) {
        struct local_job *next = q->next;
        q->sink.done(q->sink.ud, "cancelled", q->n_prompt, 0, 0);
        local_job_release(q);
        q = next;
    }
    return NULL;
}

int local_submit(struct local_model *lm, const struct local_job_params *p,
                 const struct gen_sink *sink, struct local_job **out)
{
    if (out)
        *out = NULL;
    if (!lm || !p || !sink || !sink->text || !sink->done || p->n_prompt < 1 || !p->prompt ||
        p->n_stop < 0 || (p->n_stop && !p->stop)) {
        if (p)
            json_schema_free(p->schema);
        return LOCAL_E_ARG;
    }
    const int32_t n_vocab = tandem_model_n_vocab(lm->model);
    int bad = p->n_prompt >= lm->n_ctx ? LOCAL_E_TOO_LONG : 0;
    for (int i = 0; i < p->n_prompt && !bad; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= n_vocab)
            bad = LOCAL_E_ARG;
    if (bad) {
        json_schema_free(p->schema);
        return bad;
    }
    struct local_job *j = job_new(p, sink);
    if (!j)
        return LOCAL_E_NOMEM;
    pthread_mutex_lock(&lm->mu);
    if (lm->stopping || lm->q_len >= lm->cfg.queue_max) {
        const int rc = lm->stopping ? LOCAL_E_STOPPED : LOCAL_E_BUSY;
        pthread_mutex_unlock(&lm->mu);
        job_free(j);
        return rc;
    }
    if (out)
        atomic_fetch_add(&j->refs, 1);
    j->gen = lm->cancel_gen;
    if (lm->q_tail)
        lm->q_tail->next = j;
    else
        lm->q_head = j;
    lm->q_tail = j;
    lm->q_len++;
    lm->stats.queued = lm->q_len;
    lm->stats.requests++;
    lm->stats.prompt_tokens += (uint64_t)p->n_prompt;
    pthread_cond_signal(&lm->cv);
    pthread_mutex_unlock(&lm->mu);
    if (out)
        *out = j;
    return 0;
}

/* ---- lifetime ---- */

int local_model_new(struct local_model **out, const struct local_config *cfg_in, char *err,
                    size_t errlen)
{
    *out = NULL;
    struct local_config cfg;
    local_config_default(&cfg);
    if (cfg_in) {
        cfg.name = cfg_in->name;
        cfg.path = cfg_in->path;
        if (cfg_in->n_slots > 0)
            cfg.n_slots = cfg_in->n_slots;
        cfg.n_ctx = cfg_in->n_ctx;
        cfg.n_threads = cfg_in->n_threads;
        if (cfg_in->n_batch > 0)
            cfg.n_batch = cfg_in->n_batch;
        if (cfg_in->prompt_chunk > 0)
            cfg.prompt_chunk = cfg_in->prompt_chunk;
        if (cfg_in->queue_max > 0)
            cfg.queue_max = cfg_in->queue_max;
    }
    if (!cfg.path || cfg.n_slots > LOCAL_MAX_SLOTS || cfg.n_ctx < 0) {
        if (err)
            snprintf(err, errlen, "local model: a path and 1..%d slots are required", LOCAL_MAX_SLOTS);
        return LOCAL_E_ARG;
    }
    struct local_model *lm = calloc(1, sizeof(*lm));
    if (!lm)
        return LOCAL_E_NOMEM;
    pthread_mutex_init(&lm->mu, NULL);
    pthread_mutex_init(&lm->embd_mu, NULL);
    pthread_cond_init(&lm->cv, NULL);
    int rc = LOCAL_E_LOAD;
    if (tandem_model_load(&lm->model, cfg.path, err, errlen))
        goto fail;
    if (!lm->model->tok) {
        if (err)
            snprintf(err, errlen, "%s: no usable tokenizer (%s)", cfg.path,
                     tandem_model_tokenizer_error(lm->model));
        goto fail;
    }
    struct tandem_ctx_params cp = tandem_ctx_default_params();
    cp.n_ctx = cfg.n_ctx;
    cp.n_seq = cfg.n_slots;
    cp.n_threads = cfg.n_threads;
    cp.n_batch = cfg.n_batch;
    if (tandem_ctx_new(&lm->ctx, lm->model, &cp, err, errlen))
        goto fail;
    cfg.n_batch = cp.n_batch < tandem_ctx_n_ctx(lm->ctx) ? cp.n_batch : tandem_ctx_n_ctx(lm->ctx);
    lm->cfg = cfg;
    lm->n_ctx = tandem_ctx_n_ctx(lm->ctx);
    rc = LOCAL_E_NOMEM;
    lm->name = strdup(cfg.name ? cfg.name : cfg.path);
    lm->cfg.name = lm->name;
    lm->cfg.path = NULL;
    lm->piece_cap = TOKENIZER_STREAM_CAP(lm->model->tok);
    lm->spans = calloc((size_t)cfg.n_slots, sizeof(*lm->spans));
    lm->span_slot = calloc((size_t)cfg.n_slots, sizeof(*lm->span_slot));
    if (!lm->name || !lm->spans || !lm->span_slot)
        goto fail;
    for (int i = 0; i < cfg.n_slots; i++) {
        struct slot *s = &lm->slots[i];
        s->seq = i;
        s->lp_cap = 64;
        s->cache = malloc(sizeof(int32_t) * (size_t)lm->n_ctx);
        s->piece = malloc(lm->piece_cap);
        s->lp = malloc(sizeof(*s->lp) * (size_t)s->lp_cap);
        if (!s->cache || !s->piece || !s->lp || text_reserve(s, 4096))
            goto fail;
    }
    lm->stats.n_slots = cfg.n_slots;
    if (pthread_create(&lm->thread, NULL, sched_main, lm)) {
        if (err)
            snprintf(err, errlen, "cannot start the scheduler thread");
        goto fail;
    }
    lm->thread_started = true;
    *out = lm;
    return 0;
fail:
    if (err && rc == LOCAL_E_NOMEM)
        snprintf(err, errlen, "out of memory setting up %s", cfg.path);
    local_model_free(lm);
    return rc;
}

void local_model_free(struct local_model *lm)
{
    if (!lm)
        return;
    if (lm->thread_started) {
        pthread_mutex_lock(&lm->mu);
        lm->stopping = true;
        pthread_cond_signal(&lm->cv);
        pthread_mutex_unlock(&lm->mu);
        pthread_join(lm->thread, NULL);
    }
    for (int i = 0; i < LOCAL_MAX_SLOTS; i++) {
        struct slot *s = &lm->slots[i];
        slot_reset_job(s);
        free(s->cache);
        free(s->piece);
        free(s->lp);
        free(s->text);
    }
    free(lm->spans);
    free(lm->span_slot);
    json_vocab_free(lm->jvocab);
    json_schema_free(lm->any_object);
    tandem_ctx_free(lm->embd_ctx);
    tandem_ctx_free(lm->ctx);
    tandem_model_free(lm->model);
    pthread_mutex_destroy(&lm->mu);
    pthread_mutex_destroy(&lm->embd_mu);
    pthread_cond_destroy(&lm->cv);
    free(lm->name);
    free(lm);
}

const char *local_model_name(const struct local_model *lm) { return lm->name; }
const struct tandem_model *local_model_engine(const struct local_model *lm) { return lm->model; }
int local_model_n_ctx(const struct local_model *lm) { return lm->n_ctx; }
int local_model_n_embd(const struct local_model *lm) { return tandem_model_n_embd(lm->model); }

int local_model_stats_slots(const struct local_model *lm) { return lm->cfg.n_slots; }

void local_model_stats(struct local_model *lm, struct local_stats *out)
{
    pthread_mutex_lock(&lm->mu);
    *out = lm->stats;
    pthread_mutex_unlock(&lm->mu);
}

int local_embed(struct local_model *lm, const int32_t *tokens, int n, float *out)
{
    if (!lm || !tokens || n < 1 || !out)
        return LOCAL_E_ARG;
    if (n > lm->n_ctx)
        return LOCAL_E_TOO_LONG;
    pthread_mutex_lock(&lm->embd_mu);
    int rc = 0;
    if (!lm->embd_ctx) {
        struct tandem_ctx_params cp = tandem_ctx_default_params();
        cp.n_ctx = lm->n_ctx;
        cp.n_threads = lm->cfg.n_threads;
        cp.n_batch = lm->cfg.n_batch;
        if (tandem_ctx_new(&lm->embd_ctx, lm->model, &cp, NULL, 0))
            rc = LOCAL_E_NOMEM;
    }
    if (!rc && tandem_embed(lm->embd_ctx, 0, tokens, n, out))
        rc = LOCAL_E_ARG;
    pthread_mutex_unlock(&lm->embd_mu);
    return rc;
}
