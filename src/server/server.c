/* The OpenAI-compatible server: request routing, prompt building, streaming sinks. */
#include "server/server.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine/json_schema.h"
#include "engine/model.h"
#include "tandem.h"
#include "tokenizer/chat_template.h"

#define PIECE_MAX 256

struct served_model {
    struct local_model *lm;
    const struct tandem_model *m;
    struct chat_template *tmpl;
    char bos[64], eos[64];
    const char *end_of_turn;  /* stop string of the template family, or NULL */
};

struct server {
    struct http_server *http;
    struct api_limits limits;
    struct served_model *models;
    int n_models;
    int grace_s;
    int64_t started;
};

void server_config_default(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    http_config_default(&cfg->http);
    api_limits_default(&cfg->limits);
    cfg->shutdown_grace_s = 10;
}

/* ---- small helpers ---- */

static void respond_error(struct http_req *r, const struct api_error *e)
{
    char *body = api_error_json(e);
    if (e->status == 503 || e->status == 429)
        http_req_add_header(r, "Retry-After", "1");
    if (body) {
        http_respond(r, e->status, "application/json", body, strlen(body));
        free(body);
    } else {
        http_respond(r, 500, "text/plain", "out of memory", 13);
    }
}

static void respond_json(struct http_req *r, int status, char *body)
{
    if (!body) {
        struct api_error e;
        api_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
        respond_error(r, &e);
        return;
    }
    http_respond(r, status, "application/json", body, strlen(body));
    free(body);
}

static void make_id(char *out, size_t cap, const char *prefix)
{
    unsigned char b[12];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        memset(b, 0, sizeof(b));
    int n = snprintf(out, cap, "%s", prefix);
    for (size_t i = 0; i < sizeof(b) && n + 2 < (int)cap; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", b[i]);
}

static struct served_model *find_model(struct server *s, const char *name)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(local_model_name(s->models[i].lm), name))
            return &s->models[i];
    return NULL;
}

/* Tokenizes text into a malloc'd array; *n gets the count. */
static int32_t *tokenize(const struct tandem_model *m, const char *text, size_t len, bool add_special,
                         bool parse_special, int *n)
{
    size_t cap = len + 16;
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    if (!ids)
        return NULL;
    int k = tandem_tokenize(m, text, len, ids, cap, add_special, parse_special);
    if (k > (int)cap) {
        int32_t *more = realloc(ids, sizeof(int32_t) * (size_t)k);
        if (!more) {
            free(ids);
            return NULL;
        }
        ids = more;
        k = tandem_tokenize(m, text, len, ids, (size_t)k, add_special, parse_special);
    }
    if (k < 0) {
        free(ids);
        return NULL;
    }
    *n = k;
    return ids;
}

/* Untrusted message text must not smuggle control tokens ("<|im_end|>") into the prompt,
 * which is tokenized with special-token parsing for the template's own markers: every control
 * token's text found in it gets a zero-width space after its first character. Returns a
 * malloc'd copy when something changed, else NULL. */
static char *neutralize_specials(const struct tandem_model *m, const char *text)
{
    int n = 0;
    int32_t *ids = tokenize(m, text, strlen(text), false, true, &n);
    if (!ids)
        return NULL;
    char *out = NULL;
    char piece[PIECE_MAX], plain[PIECE_MAX];
    for (int i = 0; i < n; i++) {
        const int ls = tandem_token_to_piece(m, ids[i], piece, sizeof(piece) - 1, true);
        const int lp = tandem_token_to_piece(m, ids[i], plain, sizeof(plain) - 1, false);
        if (ls <= 1 || ls >= PIECE_MAX - 1 || lp != 0)
            continue;
        piece[ls] = 0;
        const char *src = out ? out : text;
        if (!strstr(src, piece))
            continue;
        /* Rebuild src with "\xE2\x80\x8B" inserted after the first byte of each occurrence. */
        size_t count = 0;
        for (const char *p = strstr(src, piece); p; p = strstr(p + ls, piece))
            count++;
        char *dst = malloc(strlen(src) + count * 3 + 1);
        if (!dst)
            break;
        size_t o = 0;
        const char *p = src, *hit;
        while ((hit = strstr(p, piece))) {
            memcpy(dst + o, p, (size_t)(hit - p) + 1);
            o += (size_t)(hit - p) + 1;
            memcpy(dst + o, "\xE2\x80\x8B", 3);
            o += 3;
            p = hit + 1;
        }
        memcpy(dst + o, p, strlen(p) + 1);
        free(out);
        out = dst;
    }
    free(ids);
    return out;
}

/* ---- one generation request ---- */

struct gen {
    struct server *srv;
    struct served_model *sm;
    enum api_kind kind;
    char id[48];
    int64_t created;
    char *model_name;
    bool want_logprobs, include_usage, stream;
    struct http_stream *st;
    bool stream_failed;
    /* non-streamed: everything is collected here */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    char *text;
    size_t text_len, text_cap;
    struct gen_logprob *lps;
    size_t n_lps, lps_cap;
    const char *reason;
    struct api_usage usage;
    int64_t text_offset;     /* code points streamed so far (completions' logprobs) */
};

static void gen_free(struct gen *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->model_name);
    free(g->text);
    free(g->lps);
    free(g);
}

/* API logprobs of n tokens; token texts go to `pieces` (n * (1 + top) * PIECE_MAX bytes). */
static struct api_token_logprob *convert_logprobs(const struct tandem_model *m,
                                                  const struct gen_logprob *lp, size_t n,
                                                  char **pieces_out)
{
    *pieces_out = NULL;
    if (n == 0)
        return NULL;
    struct api_token_logprob *out = calloc(n, sizeof(*out));
    char *pieces = malloc(n * (1 + API_MAX_TOP_LOGPROBS) * PIECE_MAX);
    if (!out || !pieces) {
        free(out);
        free(pieces);
        return NULL;
    }
    char *p = pieces;
    for (size_t i = 0; i < n; i++) {
        int len = tandem_token_to_piece(m, lp[i].token, p, PIECE_MAX, false);
        out[i].token = p;
        out[i].token_len = len > 0 && len <= PIECE_MAX ? (size_t)len : 0;
        out[i].logprob = lp[i].logprob;
        p += PIECE_MAX;
        out[i].n_top = lp[i].n_top < API_MAX_TOP_LOGPROBS ? lp[i].n_top : API_MAX_TOP_LOGPROBS;
        for (int k = 0; k < out[i].n_top; k++) {
            len = tandem_token_to_piece(m, lp[i].top[k].id, p, PIECE_MAX, false);
            out[i].top[k].token = p;
            out[i].top[k].token_len = len > 0 && len <= PIECE_MAX ? (size_t)len : 0;
            out[i].top[k].logprob = lp[i].top[k].logprob;
            p += PIECE_MAX;
        }
    }
    *pieces_out = pieces;
    return out;
}

static size_t utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void stream_send(struct gen *g, char *event)
{
    if (!event)
        return;
    if (!g->stream_failed && http_stream_write(g->st, event, strlen(event)) != HTTP_OK)
        g->stream_failed = true;
    free(event);
}

static void sink_text(void *ud, const char *text, size_t len, const struct gen_logprob *lp,
                      int n_lp)
{
    struct gen *g = ud;
    if (!g->stream) {
        pthread_mutex_lock(&g->mu);
        if (g->text_len + len + 1 > g->text_cap) {
            size_t cap = g->text_cap ? g->text_cap * 2 : 1024;
            while (cap < g->text_len + len + 1)
                cap *= 2;
            char *t = realloc(g->text, cap);
            if (t) {
                g->text = t;
                g->text_cap = cap;
            }
        }
        if (g->text_len + len + 1 <= g->text_cap) {
            memcpy(g->text + g->text_len, text, len);
            g->text_len += len;
            g->text[g->text_len] = 0;
        }
        if (g->want_logprobs && n_lp > 0) {
            if (g->n_lps + (size_t)n_lp > g->lps_cap) {
                size_t cap = g->lps_cap ? g->lps_cap * 2 : 64;
                while (cap < g->n_lps + (size_t)n_lp)
                    cap *= 2;
                struct gen_logprob *l = realloc(g->lps, cap * sizeof(*l));
                if (l) {
                    g->lps = l;
                    g->lps_cap = cap;
                }
            }
            if (g->n_lps + (size_t)n_lp <= g->lps_cap) {
                memcpy(g->lps + g->n_lps, lp, sizeof(*lp) * (size_t)n_lp);
                g->n_lps += (size_t)n_lp;
            }
        }
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (len == 0 && (!g->want_logprobs || n_lp == 0))
        return;
    pthread_mutex_lock(&g->mu);  /* held by the handler until the stream is open */
    char *pieces = NULL;
    struct api_token_logprob *alp =
        g->want_logprobs ? convert_logprobs(g->sm->m, lp, (size_t)n_lp, &pieces) : NULL;
    struct api_result r = {.id = g->id, .created = g->created, .model = g->model_name,
                           .text = text, .text_len = len, .logprobs = alp,
                           .n_logprobs = alp ? (size_t)n_lp : 0, .want_logprobs = g->want_logprobs,
                           .usage_null = g->include_usage, .text_offset = g->text_offset};
    stream_send(g, g->kind == API_CHAT ? api_chat_chunk_sse(&r, false, false)
                                       : api_completion_chunk_sse(&r, false));
    g->text_offset += (int64_t)utf8_count(text, len);
    pthread_mutex_unlock(&g->mu);
    free(alp);
    free(pieces);
}

static bool sink_gone(void *ud)
{
    struct gen *g = ud;
    if (!g->stream)
        return false;
    pthread_mutex_lock(&g->mu);
    const bool gone = g->stream_failed || http_stream_client_gone(g->st);
    pthread_mutex_unlock(&g->mu);
    return gone;
}

static void sink_done(void *ud, const char *reason, int prompt_tokens, int cached_tokens,
                      int completion_tokens)
{
    struct gen *g = ud;
    struct api_usage u = {.prompt_tokens = prompt_tokens, .completion_tokens = completion_tokens,
                          .cached_tokens = cached_tokens};
    if (!g->stream) {
        pthread_mutex_lock(&g->mu);
        g->reason = reason;
        g->usage = u;
        g->done = true;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    pthread_mutex_lock(&g->mu);
    pthread_mutex_unlock(&g->mu);  /* the handler has finished opening the stream */
    if (!strcmp(reason, "cancelled")) {
        /* Shutdown (or a client already gone): an error event tells SDKs why it ended. */
        struct api_error e;
        api_error_set(&e, 503, "server_error", "server_shutting_down", NULL,
                      "the server is shutting down; the response was cut short");
        char *body = api_error_json(&e);
        if (body) {
            size_t n = strlen(body) + 16;
            char *ev = malloc(n);
            if (ev)
                snprintf(ev, n, "data: %s\n\n", body);
            free(body);
            stream_send(g, ev);
        }
    } else {
        struct api_result r = {.id = g->id, .created = g->created, .model = g->model_name,
                               .text = "", .text_len = 0, .finish_reason = reason,
                               .want_logprobs = false, .usage_null = g->include_usage};
        stream_send(g, g->kind == API_CHAT ? api_chat_chunk_sse(&r, false, false)
                                           : api_completion_chunk_sse(&r, false));
        if (g->include_usage) {
            r.usage = &u;
            r.finish_reason = NULL;
            stream_send(g, g->kind == API_CHAT ? api_chat_chunk_sse(&r, false, true)
                                               : api_completion_chunk_sse(&r, true));
        }
    }
    if (!g->stream_failed)
        http_stream_write(g->st, api_sse_done(), strlen(api_sse_done()));
    if (g->st)
        http_stream_close(g->st);
    gen_free(g);
}

/* The prompt of a chat request, rendered by the model's template and tokenized. */
static int32_t *chat_prompt_ids(struct served_model *sm, const struct api_request *rq, int *n,
                                struct api_error *err)
{
    struct chat_message *msgs = calloc(rq->n_messages, sizeof(*msgs));
    char **owned = calloc(rq->n_messages, sizeof(char *));
    int32_t *ids = NULL;
    if (!msgs || !owned)
        goto out;
    for (size_t i = 0; i < rq->n_messages; i++) {
        const char *role = rq->messages[i].role;
        msgs[i].role = !strcmp(role, "developer") ? "system" : role;
        owned[i] = neutralize_specials(sm->m, rq->messages[i].content);
        msgs[i].content = owned[i] ? owned[i] : rq->messages[i].content;
    }
    struct chat_apply_params ap = {.messages = msgs, .n_messages = rq->n_messages,
                                   .add_generation_prompt = true, .bos_token = sm->bos,
                                   .eos_token = sm->eos};
    struct chat_prompt prompt = {0};
    char msg[256];
    if (chat_template_apply(sm->tmpl, &ap, &prompt, msg, sizeof(msg))) {
        api_error_set(err, 400, "invalid_request_error", NULL, "messages",
                      "the chat template cannot render these messages: %s", msg);
        goto out;
    }
    ids = tokenize(sm->m, prompt.text, prompt.len, !(prompt.flags & CHAT_PROMPT_HAS_BOS), true, n);
    chat_prompt_free(&prompt);
out:
    if (!ids && !err->status)
        api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; owned && i < rq->n_messages; i++)
        free(owned[i]);
    free(owned);
    free(msgs);
    return ids;
}

static void handle_generate(struct server *s, struct http_req *r, enum api_kind kind)
{
    struct api_request rq = {0};
    struct api_error err = {0};
    size_t blen = 0;
    const char *body = http_req_body(r, &blen);
    if (api_request_parse(&rq, kind, body, blen, &s->limits, &err)) {
        respond_error(r, &err);
        return;
    }
    struct served_model *sm = find_model(s, rq.model);
    int32_t *ids = NULL;
    int n_ids = 0;
    struct json_schema *schema = NULL;
    struct gen *g = NULL;
    if (!sm) {
        api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%s' does not exist", rq.model);
        goto fail;
    }
    if (kind == API_CHAT) {
        ids = chat_prompt_ids(sm, &rq, &n_ids, &err);
    } else if (rq.prompt_tokens) {
        const int V = tandem_model_n_vocab(sm->m);
        for (size_t i = 0; i < rq.n_prompt_tokens; i++)
            if (rq.prompt_tokens[i] >= V) {
                api_error_set(&err, 400, "invalid_request_error", NULL, "prompt",
                              "token id %d is outside the vocabulary (%d)", rq.prompt_tokens[i], V);
                goto fail;
            }
        ids = malloc(sizeof(int32_t) * (rq.n_prompt_tokens + 1));
        if (ids)
            memcpy(ids, rq.prompt_tokens, sizeof(int32_t) * rq.n_prompt_tokens);
        n_ids = (int)rq.n_prompt_tokens;
    } else {
        ids = tokenize(sm->m, rq.prompt, strlen(rq.prompt), true, false, &n_ids);
    }
    if (!ids) {
        if (!err.status)
            api_error_set(&err, 500, "server_error", NULL, NULL, "cannot tokenize the prompt");
        goto fail;
    }
    const int n_ctx = local_model_n_ctx(sm->lm);
    if (n_ids < 1 || n_ids >= n_ctx) {
        api_error_set(&err, 400, "invalid_request_error", "context_length_exceeded",
                      kind == API_CHAT ? "messages" : "prompt",
                      "This model's maximum context length is %d tokens; the prompt has %d", n_ctx,
                      n_ids);
        goto fail;
    }
    if (rq.max_tokens > 0 && n_ids + rq.max_tokens > n_ctx) {
        api_error_set(&err, 400, "invalid_request_error", "context_length_exceeded", "max_tokens",
                      "This model's maximum context length is %d tokens; the prompt (%d) plus "
                      "max_tokens (%d) exceeds it", n_ctx, n_ids, rq.max_tokens);
        goto fail;
    }
    if (rq.format == API_FORMAT_JSON_SCHEMA) {
        char msg[256] = "";
        if (json_schema_compile(&schema, rq.schema_json, strlen(rq.schema_json), msg, sizeof(msg))) {
            api_error_set(&err, 400, "invalid_request_error", NULL, "response_format.json_schema",
                          "unsupported JSON schema: %s", msg);
            goto fail;
        }
    }
    g = calloc(1, sizeof(*g));
    if (!g || !(g->model_name = strdup(rq.model))) {
        api_error_set(&err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->srv = s;
    g->sm = sm;
    g->kind = kind;
    g->created = (int64_t)time(NULL);
    make_id(g->id, sizeof(g->id), kind == API_CHAT ? "chatcmpl-" : "cmpl-");
    g->want_logprobs = rq.logprobs;
    g->include_usage = rq.include_usage;
    g->stream = rq.stream;

    struct local_job_params jp = {.prompt = ids, .n_prompt = n_ids, .max_tokens = rq.max_tokens,
                                  .stop = rq.stop, .n_stop = rq.n_stop, .schema = schema,
                                  .json_object = rq.format == API_FORMAT_JSON_OBJECT};
    const char *stops[API_MAX_STOP + 1];
    if (kind == API_CHAT && sm->end_of_turn) {
        memcpy(stops, rq.stop, sizeof(char *) * (size_t)rq.n_stop);
        stops[rq.n_stop] = sm->end_of_turn;
        jp.stop = stops;
        jp.n_stop = rq.n_stop + 1;
    }
    sampler_config_default(&jp.sampling);
    jp.sampling.temperature = rq.temperature;
    jp.sampling.top_k = 0;
    jp.sampling.top_p = rq.top_p;
    jp.sampling.min_p = 0;
    jp.sampling.repeat_penalty = 1.0f;
    jp.sampling.repeat_last_n = rq.presence_penalty != 0 || rq.frequency_penalty != 0 ? n_ctx : 0;
    jp.sampling.presence_penalty = rq.presence_penalty;
    jp.sampling.frequency_penalty = rq.frequency_penalty;
    jp.sampling.seed = rq.has_seed ? rq.seed : SAMPLER_SEED_RANDOM;
    jp.sampling.logprobs = rq.logprobs;
    jp.sampling.n_probs = rq.top_logprobs;
    struct sampler_logit_bias *bias = NULL;
    if (rq.n_logit_bias) {
        const int V = tandem_model_n_vocab(sm->m);
        bias = calloc(rq.n_logit_bias, sizeof(*bias));
        if (!bias) {
            api_error_set(&err, 500, "server_error", NULL, NULL, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < rq.n_logit_bias; i++) {
            if (rq.logit_bias[i].token >= V) {
                free(bias);
                api_error_set(&err, 400, "invalid_request_error", NULL, "logit_bias",
                              "token id %d is outside the vocabulary (%d)", rq.logit_bias[i].token, V);
                goto fail;
            }
            bias[i].token = rq.logit_bias[i].token;
            /* OpenAI: -100 bans a token, 100 forces it. */
            bias[i].bias = rq.logit_bias[i].bias <= -100.0f ? -INFINITY : rq.logit_bias[i].bias;
        }
        jp.sampling.logit_bias = bias;
        jp.sampling.n_logit_bias = rq.n_logit_bias;
    }
    struct gen_sink sink = {.text = sink_text, .done = sink_done, .gone = sink_gone, .ud = g};
    if (!rq.stream && rq.echo && rq.prompt) {
        const size_t pl = strlen(rq.prompt);
        sink_text(g, rq.prompt, pl, NULL, 0);
        g->text_offset = (int64_t)utf8_count(rq.prompt, pl);
    }
    /* A stream is opened only once the job is queued, so that a full queue is a plain 503;
     * the scheduler's first callbacks wait on g->mu until the stream is open. */
    struct local_job *job = NULL;
    if (rq.stream)
        pthread_mutex_lock(&g->mu);
    const int rc = local_submit(sm->lm, &jp, &sink, rq.stream ? NULL : &job);
    free(bias);
    if (rc) {
        if (rq.stream)
            pthread_mutex_unlock(&g->mu);
        if (rc == LOCAL_E_BUSY || rc == LOCAL_E_STOPPED)
            api_error_set(&err, 503, "server_error", "overloaded", NULL,
                          "%s; retry shortly", local_strerror(rc));
        else
            api_error_set(&err, rc == LOCAL_E_TOO_LONG ? 400 : 500,
                          rc == LOCAL_E_TOO_LONG ? "invalid_request_error" : "server_error", NULL,
                          NULL, "%s", local_strerror(rc));
        goto fail;
    }
    if (rq.stream) {
        if (http_stream_open(r, 200, "text/event-stream", &g->st)) {
            /* Cannot answer: the job runs into a failed stream and ends at its next step. */
            g->stream_failed = true;
        } else {
            /* The first chunk carries the role (chat) or the echoed prompt (completions). */
            struct api_result first = {.id = g->id, .created = g->created,
                                       .model = g->model_name, .text = "",
                                       .usage_null = g->include_usage, .want_logprobs = false};
            if (kind == API_CHAT) {
                stream_send(g, api_chat_chunk_sse(&first, true, false));
            } else if (rq.echo && rq.prompt) {
                first.text = rq.prompt;
                first.text_len = strlen(rq.prompt);
                stream_send(g, api_completion_chunk_sse(&first, false));
                g->text_offset = (int64_t)utf8_count(rq.prompt, first.text_len);
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    if (rq.stream)
        goto out;  /* the sink owns g now */
    pthread_mutex_lock(&g->mu);
    while (!g->done)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    local_job_release(job);
    if (!strcmp(g->reason, "cancelled")) {
        api_error_set(&err, 503, "server_error", "server_shutting_down", NULL,
                      "the server is shutting down");
        goto fail;
    }
    char *pieces = NULL;
    struct api_token_logprob *alp =
        g->want_logprobs ? convert_logprobs(sm->m, g->lps, g->n_lps, &pieces) : NULL;
    struct api_result res = {.id = g->id, .created = g->created, .model = g->model_name,
                             .text = g->text ? g->text : "", .text_len = g->text_len,
                             .finish_reason = g->reason, .logprobs = alp,
                             .n_logprobs = alp ? g->n_lps : 0, .want_logprobs = g->want_logprobs,
                             .usage = &g->usage};
    respond_json(r, 200, kind == API_CHAT ? api_chat_response_json(&res)
                                          : api_completion_response_json(&res));
    free(alp);
    free(pieces);
    gen_free(g);
    g = NULL;
    goto out;
fail:
    gen_free(g);
    respond_error(r, &err);
out:
    json_schema_free(schema);
    free(ids);
    api_request_free(&rq);
}

static void handle_embeddings(struct server *s, struct http_req *r)
{
    struct api_request rq = {0};
    struct api_error err = {0};
    size_t blen = 0;
    const char *body = http_req_body(r, &blen);
    if (api_request_parse(&rq, API_EMBEDDING, body, blen, &s->limits, &err)) {
        respond_error(r, &err);
        return;
    }
    struct served_model *sm = find_model(s, rq.model);
    float **vecs = NULL;
    int total = 0;
    const int E = sm ? local_model_n_embd(sm->lm) : 0;
    if (!sm) {
        api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%s' does not exist", rq.model);
        goto fail;
    }
    vecs = calloc(rq.n_inputs, sizeof(float *));
    if (!vecs)
        goto oom;
    for (size_t i = 0; i < rq.n_inputs; i++) {
        int n = 0;
        int32_t *ids = tokenize(sm->m, rq.inputs[i], strlen(rq.inputs[i]), true, false, &n);
        if (!ids || !(vecs[i] = malloc(sizeof(float) * (size_t)E))) {
            free(ids);
            goto oom;
        }
        const int rc = local_embed(sm->lm, ids, n, vecs[i]);
        free(ids);
        if (rc) {
            api_error_set(&err, 400, "invalid_request_error",
                          rc == LOCAL_E_TOO_LONG ? "context_length_exceeded" : NULL, "input",
                          "input %zu: %s (%d tokens, context %d)", i, local_strerror(rc), n,
                          local_model_n_ctx(sm->lm));
            goto fail;
        }
        total += n;
    }
    respond_json(r, 200, api_embeddings_json(rq.model, (const float *const *)vecs, rq.n_inputs, E,
                                             rq.base64, total));
    goto out;
oom:
    api_error_set(&err, 500, "server_error", NULL, NULL, "out of memory");
fail:
    respond_error(r, &err);
out:
    for (size_t i = 0; vecs && i < rq.n_inputs; i++)
        free(vecs[i]);
    free(vecs);
    api_request_free(&rq);
}

static void handle_models(struct server *s, struct http_req *r)
{
    const char *ids[64], *owners[64];
    size_t n = 0;
    for (int i = 0; i < s->n_models && n < 64; i++, n++) {
        ids[n] = local_model_name(s->models[i].lm);
        owners[n] = "tandem";
    }
    respond_json(r, 200, api_models_json(ids, owners, n, s->started));
}

static void handle_health(struct server *s, struct http_req *r)
{
    char buf[4096];
    int o = snprintf(buf, sizeof(buf), "{\"status\":\"%s\",\"models\":[",
                     http_server_stopping(s->http) ? "stopping" : "ok");
    for (int i = 0; i < s->n_models && o < (int)sizeof(buf) - 256; i++) {
        struct local_stats st;
        local_model_stats(s->models[i].lm, &st);
        o += snprintf(buf + o, sizeof(buf) - (size_t)o,
                      "%s{\"slots_busy\":%d,\"slots\":%d,\"queued\":%d,\"requests\":%llu}",
                      i ? "," : "", st.slots_busy, st.n_slots, st.queued,
                      (unsigned long long)st.requests);
    }
    o += snprintf(buf + o, sizeof(buf) - (size_t)o, "]}");
    http_respond(r, http_server_stopping(s->http) ? 503 : 200, "application/json", buf, (size_t)o);
}

static void route(struct http_req *r, void *ud)
{
    struct server *s = ud;
    const char *method = http_req_method(r), *path = http_req_path(r);
    const bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    struct api_error err = {0};
    if (!strcmp(path, "/health") || !strcmp(path, "/v1/health")) {
        if (get) {
            handle_health(s, r);
            return;
        }
    } else if (!strcmp(path, "/v1/models")) {
        if (get) {
            handle_models(s, r);
            return;
        }
    } else if (!strcmp(path, "/v1/chat/completions")) {
        if (post) {
            handle_generate(s, r, API_CHAT);
            return;
        }
    } else if (!strcmp(path, "/v1/completions")) {
        if (post) {
            handle_generate(s, r, API_COMPLETION);
            return;
        }
    } else if (!strcmp(path, "/v1/embeddings")) {
        if (post) {
            handle_embeddings(s, r);
            return;
        }
    } else {
        api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                      "Unknown request URL: %s %s", method, path);
        respond_error(r, &err);
        return;
    }
    api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                  "Method %s is not allowed on %s", method, path);
    respond_error(r, &err);
}

/* ---- lifetime ---- */

int server_start(struct server **out, const struct server_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->n_models < 1 || cfg->n_models > 64) {
        snprintf(err, errlen, "between 1 and 64 models are needed");
        return -1;
    }
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->limits = cfg->limits;
    s->grace_s = cfg->shutdown_grace_s > 0 ? cfg->shutdown_grace_s : 10;
    s->started = (int64_t)time(NULL);
    s->models = calloc((size_t)cfg->n_models, sizeof(*s->models));
    if (!s->models)
        goto fail;
    for (int i = 0; i < cfg->n_models; i++) {
        struct served_model *sm = &s->models[i];
        for (int k = 0; k < i; k++)
            if (cfg->models[k].name && cfg->models[i].name &&
                !strcmp(cfg->models[k].name, cfg->models[i].name)) {
                snprintf(err, errlen, "two models are named '%s'", cfg->models[i].name);
                goto fail;
            }
        if (local_model_new(&sm->lm, &cfg->models[i], err, errlen))
            goto fail;
        s->n_models++;
        sm->m = local_model_engine(sm->lm);
        char msg[256] = "";
        if (chat_template_from_gguf(&sm->tmpl, sm->m->gguf, NULL, msg, sizeof(msg))) {
            snprintf(err, errlen, "%s: chat template: %s", local_model_name(sm->lm), msg);
            goto fail;
        }
        if (chat_template_flags(sm->tmpl) & (CHAT_TEMPLATE_UNKNOWN | CHAT_TEMPLATE_FALLBACK))
            fprintf(stderr, "tandem serve: warning: %s: %s (chat requests use the %s format)\n",
                    local_model_name(sm->lm), msg[0] ? msg : "chat template unusable",
                    chat_family_name(chat_template_family(sm->tmpl)));
        const int32_t bos = tandem_token_bos(sm->m), eos = tandem_token_eos(sm->m);
        int n = bos >= 0 ? tandem_token_to_piece(sm->m, bos, sm->bos, sizeof(sm->bos) - 1, true) : 0;
        sm->bos[n > 0 && n < (int)sizeof(sm->bos) ? n : 0] = 0;
        n = eos >= 0 ? tandem_token_to_piece(sm->m, eos, sm->eos, sizeof(sm->eos) - 1, true) : 0;
        sm->eos[n > 0 && n < (int)sizeof(sm->eos) ? n : 0] = 0;
        sm->end_of_turn = chat_family_end_of_turn(chat_template_family(sm->tmpl));
    }
    if (http_server_start(&s->http, &cfg->http, route, s, err, errlen))
        goto fail;
    *out = s;
    return 0;
fail:
    server_stop(s);
    return -1;
}

int server_port(const struct server *s) { return http_server_port(s->http); }

struct canceller {
    struct server *s;
    int after_s;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    sleep((unsigned)c->after_s);
    for (int i = 0; i < c->s->n_models; i++)
        local_model_cancel_all(c->s->models[i].lm);
    return NULL;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    if (s->http) {
        /* Streams still running shortly before the grace period ends are ended cleanly (an
         * error event and [DONE]) rather than cut. */
        struct canceller c = {.s = s, .after_s = s->grace_s > 1 ? s->grace_s - 1 : 0};
        pthread_t t;
        const bool started = pthread_create(&t, NULL, cancel_later, &c) == 0;
        http_server_stop(s->http, s->grace_s);
        if (started) {
            pthread_cancel(t);
            pthread_join(t, NULL);
        }
    }
    for (int i = 0; i < s->n_models; i++) {
        local_model_free(s->models[i].lm);
        chat_template_free(s->models[i].tmpl);
    }
    free(s->models);
    free(s);
}
