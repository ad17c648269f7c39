/* One generation request, end to end: privacy check, routing plan, attempts on local models
 * and upstream providers (retries, fallbacks), and the answer in the client's own API shape
 * (OpenAI chat or completions, Anthropic Messages), streamed or not. */
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine/json_schema.h"
#include "engine/model.h"
#include "gateway/pii.h"
#include "server/api_anthropic.h"
#include "server/metrics.h"
#include "server/server_impl.h"
#include "tandem.h"
#include "tokenizer/chat_template.h"

#define PIECE_MAX 256
#define MAX_ATTEMPTS_TOTAL 16

struct gen {
    struct server *srv;
    struct served_state *st;      /* reference, released by gen_free */
    enum client_api api;
    struct http_req *r;           /* until the answer is opened or sent */
    char id[48];
    int64_t created;
    char *model_name;             /* the name the client asked for */
    const struct tandem_model *m; /* the local model serving it (logprob texts), or NULL */
    bool want_logprobs, include_usage, stream;
    /* streaming */
    struct http_stream *hs;
    bool opened, stream_failed, sink_frees;
    /* non-streamed answers are collected here */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    char *text;
    size_t text_len, text_cap;
    struct gen_logprob *lps;
    size_t n_lps, lps_cap;
    const char *reason;
    struct api_usage usage;
    int64_t text_offset;
    char *echo;                   /* completions' echo: the prompt, sent first */
    /* privacy and routing, reported in response headers */
    struct pii_restorer *restorer;
    char privacy_hdr[256];
    const char *target;           /* the model that served (or is serving) the request */
    const struct gw_model *target_model;
    /* accounting, done once in gen_free */
    double t_start, t_first;      /* monotonic seconds */
    int status;                   /* the HTTP status of an error answer, 0 when answered */
    const char *privacy_action;   /* "none", "allow", "route_local", "pseudonymize", "block" */
    unsigned pii[PII_KIND_COUNT];
    struct admission adm;         /* key, budget reservation */
    uint8_t prompt_sha256[32];    /* of the request body as received */
    EVP_MD_CTX *response_md;      /* SHA-256 over the text sent to the client */
};

static double mono_now(void) { return (double)server__now_ms() / 1000.0; }

/* Cost of the request in USD: the configured cloud price for providers; for local models the
 * machine's hourly cost (energy + hardware) over the request's duration, shared by the slots. */
static void request_cost(const struct gen *g, double secs, double *cloud, double *local,
                         double *saved)
{
    *cloud = *local = *saved = 0;
    const struct gw_model *t = g->target_model;
    if (!t)
        return;
    const double in = g->usage.prompt_tokens, out = g->usage.completion_tokens;
    if (t->kind == GW_MODEL_PROVIDER) {
        *cloud = (in * t->upstream.price.input_per_mtok + out * t->upstream.price.output_per_mtok) / 1e6;
        return;
    }
    const struct gw_local_cost *lc = &g->st->cfg->gov.local_cost;
    const double per_hour = lc->watts / 1000.0 * lc->usd_per_kwh + lc->hardware_usd_per_hour;
    const int slots = g->st->locals[t - g->st->cfg->models]
                          ? local_model_stats_slots(g->st->locals[t - g->st->cfg->models]->lm)
                          : 1;
    *local = per_hour * secs / 3600.0 / (slots > 0 ? slots : 1);
    const double ref = (in * lc->reference.input_per_mtok + out * lc->reference.output_per_mtok) / 1e6;
    *saved = ref > *local ? ref - *local : 0;
}

/* Metrics of one finished request (called once, from gen_free). */
static void account(struct gen *g)
{
    struct metrics_tandem *mt = g->srv->metrics;
    if (!mt || !g->model_name)
        return;
    const double secs = mono_now() - g->t_start;
    const char *target = g->target ? g->target : "none";
    char status[8];
    snprintf(status, sizeof(status), "%d", g->status);
    const char *outcome = g->status ? "error"
                          : g->reason && !strcmp(g->reason, "cancelled") ? "cancelled" : "ok";
    const char *l3[3] = {g->model_name, target, outcome};
    metrics_add(mt->requests, l3, 1);
    if (g->status) {
        const char *le[3] = {g->model_name, target, status};
        metrics_add(mt->request_errors, le, 1);
    }
    const char *l2[2] = {g->model_name, target};
    metrics_observe(mt->request_duration, l2, secs);
    if (g->t_first > 0)
        metrics_observe(mt->ttft, l2, g->t_first - g->t_start);
    const char *lp[3] = {g->model_name, target, "prompt"}, *lc[3] = {g->model_name, target, "completion"},
               *lk[3] = {g->model_name, target, "cached"};
    metrics_add(mt->tokens, lp, g->usage.prompt_tokens);
    metrics_add(mt->tokens, lc, g->usage.completion_tokens);
    metrics_add(mt->tokens, lk, g->usage.cached_tokens);
    double cloud, local, saved;
    request_cost(g, secs, &cloud, &local, &saved);
    const char *c1[3] = {g->model_name, target, "cloud"}, *c2[3] = {g->model_name, target, "local"},
               *c3[3] = {g->model_name, target, "saved"};
    metrics_add(mt->cost_usd, c1, cloud);
    metrics_add(mt->cost_usd, c2, local);
    metrics_add(mt->cost_usd, c3, saved);
    if (g->usage.cached_tokens > 0) {
        const char *lm[1] = {target};
        metrics_add(mt->prefix_cache_hits, lm, 1);
    }
    for (int k = 0; k < PII_KIND_COUNT; k++)
        if (g->pii[k]) {
            const char *lk1[1] = {pii_kind_name((enum pii_kind)k)};
            metrics_add(mt->privacy_detections, lk1, g->pii[k]);
        }
    if (g->privacy_action && strcmp(g->privacy_action, "none")) {
        const char *la[1] = {g->privacy_action};
        metrics_add(mt->privacy_actions, la, 1);
    }
    if (!g->srv->gov)
        return;
    uint8_t resp[32] = {0};
    unsigned rl = 0;
    if (g->response_md)
        EVP_DigestFinal_ex(g->response_md, resp, &rl);
    int64_t pii_total = 0;
    for (int k = 0; k < PII_KIND_COUNT; k++)
        pii_total += g->pii[k];
    const struct govern_record rec = {
        .request_id = g->id, .model = g->model_name, .target = g->target,
        .target_kind = !g->target_model ? "" : g->target_model->kind == GW_MODEL_LOCAL ? "local" : "cloud",
        .privacy = g->privacy_action, .outcome = outcome, .http_status = g->status,
        .prompt_tokens = g->usage.prompt_tokens, .completion_tokens = g->usage.completion_tokens,
        .latency_ms = (int64_t)(secs * 1000), .ttft_ms = g->t_first > 0 ? (int64_t)((g->t_first - g->t_start) * 1000) : 0,
        .pii_count = pii_total, .cost_usd = cloud, .local_cost_usd = local,
        .cloud_equiv_usd = local + saved, .response_text = g->stream ? NULL : g->text,
        .response_len = g->stream ? 0 : g->text_len, .prompt_sha256 = g->prompt_sha256,
        .response_sha256 = resp};
    govern_finish(g->srv->gov, &g->adm, &rec);
}

static void gen_free(struct gen *g)
{
    if (!g)
        return;
    account(g);
    EVP_MD_CTX_free(g->response_md);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    pii_restore_free(g->restorer);
    server__state_put(g->st);
    free(g->model_name);
    free(g->text);
    free(g->lps);
    free(g->echo);
    free(g);
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

static size_t utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void add_headers(struct gen *g)
{
    if (g->target)
        http_req_add_header(g->r, "X-Tandem-Target", g->target);
    if (g->privacy_hdr[0])
        http_req_add_header(g->r, "X-Tandem-Privacy", g->privacy_hdr);
}

/* ---- the client's API shape ---- */

static void stream_send(struct gen *g, char *event)
{
    if (!event)
        return;
    if (!g->stream_failed && http_stream_write(g->hs, event, strlen(event)) != HTTP_OK)
        g->stream_failed = true;
    free(event);
}

static struct api_token_logprob *convert_logprobs(const struct tandem_model *m,
                                                  const struct gen_logprob *lp, size_t n,
                                                  char **pieces_out)
{
    *pieces_out = NULL;
    if (n == 0 || !m)
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

/* Opens the streamed answer (once) and sends what starts it. Caller holds g->mu. */
static void stream_begin(struct gen *g)
{
    if (g->opened)
        return;
    g->opened = true;
    add_headers(g);
    if (http_stream_open(g->r, 200, "text/event-stream", &g->hs)) {
        g->stream_failed = true;
        g->hs = NULL;
        return;
    }
    if (g->api == CLIENT_ANTHROPIC) {
        struct api_usage u = {0};
        struct api_anthropic_result ar = {.id = g->id, .model = g->model_name, .usage = &u};
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_START, &ar));
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_START, &ar));
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_PING, &ar));
        return;
    }
    struct api_result first = {.id = g->id, .created = g->created, .model = g->model_name,
                               .text = "", .usage_null = g->include_usage};
    if (g->api == CLIENT_OPENAI_CHAT) {
        stream_send(g, api_chat_chunk_sse(&first, true, false));
    } else if (g->echo) {
        first.text = g->echo;
        first.text_len = strlen(g->echo);
        stream_send(g, api_completion_chunk_sse(&first, false));
        g->text_offset = (int64_t)utf8_count(g->echo, first.text_len);
    }
}

static void stream_text(struct gen *g, const char *text, size_t len, const struct gen_logprob *lp,
                        int n_lp)
{
    if (g->api == CLIENT_ANTHROPIC) {
        if (len) {
            struct api_anthropic_result ar = {.id = g->id, .model = g->model_name, .text = text,
                                              .text_len = len};
            stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_DELTA, &ar));
        }
        return;
    }
    char *pieces = NULL;
    struct api_token_logprob *alp =
        g->want_logprobs ? convert_logprobs(g->m, lp, (size_t)n_lp, &pieces) : NULL;
    struct api_result r = {.id = g->id, .created = g->created, .model = g->model_name,
                           .text = text, .text_len = len, .logprobs = alp,
                           .n_logprobs = alp ? (size_t)n_lp : 0, .want_logprobs = g->want_logprobs,
                           .usage_null = g->include_usage, .text_offset = g->text_offset};
    stream_send(g, g->api == CLIENT_OPENAI_CHAT ? api_chat_chunk_sse(&r, false, false)
                                                : api_completion_chunk_sse(&r, false));
    g->text_offset += (int64_t)utf8_count(text, len);
    free(alp);
    free(pieces);
}

static void stream_finish(struct gen *g, const char *reason, const struct api_usage *u)
{
    if (g->api == CLIENT_ANTHROPIC) {
        struct api_anthropic_result ar = {.id = g->id, .model = g->model_name,
                                          .finish_reason = reason, .usage = u};
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_STOP, &ar));
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_DELTA, &ar));
        stream_send(g, api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_STOP, &ar));
        return;
    }
    struct api_result r = {.id = g->id, .created = g->created, .model = g->model_name, .text = "",
                           .finish_reason = reason, .usage_null = g->include_usage};
    const bool chat = g->api == CLIENT_OPENAI_CHAT;
    stream_send(g, chat ? api_chat_chunk_sse(&r, false, false) : api_completion_chunk_sse(&r, false));
    if (g->include_usage) {
        r.usage = u;
        r.finish_reason = NULL;
        stream_send(g, chat ? api_chat_chunk_sse(&r, false, true) : api_completion_chunk_sse(&r, true));
    }
    if (!g->stream_failed)
        http_stream_write(g->hs, api_sse_done(), strlen(api_sse_done()));
}

/* Ends an open stream with an error event (the SDKs raise it), then [DONE] for OpenAI. */
static void stream_error(struct gen *g, const struct api_error *e)
{
    if (g->api == CLIENT_ANTHROPIC) {
        stream_send(g, api_anthropic_error_sse(e));
        return;
    }
    char *body = api_error_json(e);
    if (body) {
        size_t n = strlen(body) + 16;
        char *ev = malloc(n);
        if (ev)
            snprintf(ev, n, "data: %s\n\n", body);
        free(body);
        stream_send(g, ev);
    }
    if (!g->stream_failed)
        http_stream_write(g->hs, api_sse_done(), strlen(api_sse_done()));
}

static void stream_close(struct gen *g)
{
    if (g->hs)
        http_stream_close(g->hs);
    g->hs = NULL;
}

/* The whole (non-streamed) answer. */
static void respond_final(struct gen *g)
{
    add_headers(g);
    if (g->api == CLIENT_ANTHROPIC) {
        struct api_anthropic_result ar = {.id = g->id, .model = g->model_name,
                                          .text = g->text ? g->text : "", .text_len = g->text_len,
                                          .finish_reason = g->reason, .usage = &g->usage};
        server__respond_json(g->r, 200, api_anthropic_response_json(&ar));
        return;
    }
    char *pieces = NULL;
    struct api_token_logprob *alp =
        g->want_logprobs ? convert_logprobs(g->m, g->lps, g->n_lps, &pieces) : NULL;
    struct api_result res = {.id = g->id, .created = g->created, .model = g->model_name,
                             .text = g->text ? g->text : "", .text_len = g->text_len,
                             .finish_reason = g->reason, .logprobs = alp,
                             .n_logprobs = alp ? g->n_lps : 0, .want_logprobs = g->want_logprobs,
                             .usage = &g->usage};
    server__respond_json(g->r, 200, g->api == CLIENT_OPENAI_CHAT ? api_chat_response_json(&res)
                                                                 : api_completion_response_json(&res));
    free(alp);
    free(pieces);
}

/* ---- sinks: what local models and upstreams call ---- */

static void collect(struct gen *g, const char *text, size_t len, const struct gen_logprob *lp,
                    int n_lp)
{
    if (g->text_len + len + 1 > g->text_cap) {
        size_t cap = g->text_cap ? g->text_cap * 2 : 1024;
        while (cap < g->text_len + len + 1)
            cap *= 2;
        char *t = realloc(g->text, cap);
        if (!t)
            return;
        g->text = t;
        g->text_cap = cap;
    }
    memcpy(g->text + g->text_len, text, len);
    g->text_len += len;
    g->text[g->text_len] = 0;
    if (!g->want_logprobs || n_lp <= 0)
        return;
    if (g->n_lps + (size_t)n_lp > g->lps_cap) {
        size_t cap = g->lps_cap ? g->lps_cap * 2 : 64;
        while (cap < g->n_lps + (size_t)n_lp)
            cap *= 2;
        struct gen_logprob *l = realloc(g->lps, cap * sizeof(*l));
        if (!l)
            return;
        g->lps = l;
        g->lps_cap = cap;
    }
    memcpy(g->lps + g->n_lps, lp, sizeof(*lp) * (size_t)n_lp);
    g->n_lps += (size_t)n_lp;
}

static void deliver(struct gen *g, const char *text, size_t len, const struct gen_logprob *lp,
                    int n_lp)
{
    if (len && g->t_first == 0)
        g->t_first = mono_now();
    if (len && g->response_md)
        EVP_DigestUpdate(g->response_md, text, len);
    if (!g->stream) {
        collect(g, text, len, lp, n_lp);
        return;
    }
    if (len == 0 && (!g->want_logprobs || n_lp == 0))
        return;
    stream_begin(g);
    stream_text(g, text, len, lp, n_lp);
}

static void sink_text(void *ud, const char *text, size_t len, const struct gen_logprob *lp,
                      int n_lp)
{
    struct gen *g = ud;
    pthread_mutex_lock(&g->mu);
    if (g->restorer) {
        /* Placeholders become the original values again, also across chunk boundaries. */
        const char *out = NULL;
        size_t out_len = 0;
        if (pii_restore_feed(g->restorer, text, len, &out, &out_len) == 0)
            deliver(g, out, out_len, lp, n_lp);
    } else {
        deliver(g, text, len, lp, n_lp);
    }
    pthread_mutex_unlock(&g->mu);
}

static bool sink_gone(void *ud)
{
    struct gen *g = ud;
    if (!g->stream)
        return false;
    pthread_mutex_lock(&g->mu);
    const bool gone = g->stream_failed || (g->hs && http_stream_client_gone(g->hs));
    pthread_mutex_unlock(&g->mu);
    return gone;
}

static void sink_done(void *ud, const char *reason, int prompt_tokens, int cached_tokens,
                      int completion_tokens)
{
    struct gen *g = ud;
    pthread_mutex_lock(&g->mu);
    if (g->restorer && strcmp(reason, "cancelled")) {
        const char *out = NULL;
        size_t out_len = 0;
        if (pii_restore_flush(g->restorer, &out, &out_len) == 0 && out_len)
            deliver(g, out, out_len, NULL, 0);
    }
    g->reason = reason;
    g->usage = (struct api_usage){.prompt_tokens = prompt_tokens,
                                  .completion_tokens = completion_tokens,
                                  .cached_tokens = cached_tokens};
    if (g->stream) {
        stream_begin(g);
        if (!strcmp(reason, "cancelled")) {
            struct api_error e;
            api_error_set(&e, 503, "server_error", "server_shutting_down", NULL,
                          "the server is shutting down; the response was cut short");
            stream_error(g, &e);
        } else {
            stream_finish(g, reason, &g->usage);
        }
        stream_close(g);
    }
    g->done = true;
    const bool frees = g->sink_frees;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (frees)
        gen_free(g);
}

/* ---- prompts for local models ---- */

/* Control-token text in untrusted messages gets a zero-width space after its first character,
 * so that it cannot become a control token (docs/server.md). Returns a malloc'd copy when
 * something changed, else NULL. */
static char *neutralize_specials(const struct tandem_model *m, const char *text)
{
    int n = 0;
    int32_t *ids = server__tokenize(m, text, strlen(text), false, true, &n);
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
        size_t count = 0;
        for (const char *p = strstr(src, piece); p; p = strstr(p + ls, piece))
            count++;
        if (!count)
            continue;
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

static int32_t *chat_prompt_ids(const struct served_local *sl, const struct api_request *rq, int *n,
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
        owned[i] = sl->special_first[0] && strpbrk(rq->messages[i].content, sl->special_first)
                       ? neutralize_specials(sl->m, rq->messages[i].content)
                       : NULL;
        msgs[i].content = owned[i] ? owned[i] : rq->messages[i].content;
    }
    struct chat_apply_params ap = {.messages = msgs, .n_messages = rq->n_messages,
                                   .add_generation_prompt = true, .bos_token = sl->bos,
                                   .eos_token = sl->eos};
    struct chat_prompt prompt = {0};
    char msg[256];
    if (chat_template_apply(sl->tmpl, &ap, &prompt, msg, sizeof(msg))) {
        api_error_set(err, 400, "invalid_request_error", NULL, "messages",
                      "the chat template cannot render these messages: %s", msg);
        goto out;
    }
    ids = server__tokenize(sl->m, prompt.text, prompt.len, !(prompt.flags & CHAT_PROMPT_HAS_BOS),
                           true, n);
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

/* Queues the request on a local model. Returns 0 when queued (the sink answers from then
 * on), else fills err (retry another target when err->status is 503). */
static int attempt_local(struct gen *g, const struct served_local *sl, const struct api_request *rq,
                         struct api_error *err)
{
    int32_t *ids = NULL;
    int n_ids = 0;
    struct json_schema *schema = NULL;
    struct sampler_logit_bias *bias = NULL;
    int rc = -1;
    if (rq->kind == API_CHAT) {
        ids = chat_prompt_ids(sl, rq, &n_ids, err);
    } else if (rq->prompt_tokens) {
        const int V = tandem_model_n_vocab(sl->m);
        for (size_t i = 0; i < rq->n_prompt_tokens; i++)
            if (rq->prompt_tokens[i] >= V) {
                api_error_set(err, 400, "invalid_request_error", NULL, "prompt",
                              "token id %d is outside the vocabulary (%d)", rq->prompt_tokens[i], V);
                goto out;
            }
        if ((ids = malloc(sizeof(int32_t) * (rq->n_prompt_tokens + 1))))
            memcpy(ids, rq->prompt_tokens, sizeof(int32_t) * rq->n_prompt_tokens);
        n_ids = (int)rq->n_prompt_tokens;
    } else {
        ids = server__tokenize(sl->m, rq->prompt, strlen(rq->prompt), true, false, &n_ids);
    }
    if (!ids) {
        if (!err->status)
            api_error_set(err, 500, "server_error", NULL, NULL, "cannot tokenize the prompt");
        goto out;
    }
    const int n_ctx = local_model_n_ctx(sl->lm);
    if (n_ids < 1 || n_ids >= n_ctx || (rq->max_tokens > 0 && n_ids + rq->max_tokens > n_ctx)) {
        api_error_set(err, 400, "invalid_request_error", "context_length_exceeded",
                      n_ids >= n_ctx ? (rq->kind == API_CHAT ? "messages" : "prompt") : "max_tokens",
                      "This model's maximum context length is %d tokens; the prompt has %d%s", n_ctx,
                      n_ids, rq->max_tokens > 0 ? " plus max_tokens" : "");
        goto out;
    }
    if (rq->format == API_FORMAT_JSON_SCHEMA) {
        char msg[256] = "";
        if (json_schema_compile(&schema, rq->schema_json, strlen(rq->schema_json), msg, sizeof(msg))) {
            api_error_set(err, 400, "invalid_request_error", NULL, "response_format.json_schema",
                          "unsupported JSON schema: %s", msg);
            goto out;
        }
    }
    struct local_job_params jp = {.prompt = ids, .n_prompt = n_ids, .max_tokens = rq->max_tokens,
                                  .stop = rq->stop, .n_stop = rq->n_stop, .schema = schema,
                                  .json_object = rq->format == API_FORMAT_JSON_OBJECT};
    const char *stops[API_MAX_STOP + 1];
    if (rq->kind == API_CHAT && sl->end_of_turn) {
        memcpy(stops, rq->stop, sizeof(char *) * (size_t)rq->n_stop);
        stops[rq->n_stop] = sl->end_of_turn;
        jp.stop = stops;
        jp.n_stop = rq->n_stop + 1;
    }
    sampler_config_default(&jp.sampling);
    jp.sampling.temperature = rq->temperature;
    jp.sampling.top_k = 0;
    jp.sampling.top_p = rq->top_p;
    jp.sampling.min_p = 0;
    jp.sampling.repeat_penalty = 1.0f;
    jp.sampling.repeat_last_n = rq->presence_penalty != 0 || rq->frequency_penalty != 0 ? n_ctx : 0;
    jp.sampling.presence_penalty = rq->presence_penalty;
    jp.sampling.frequency_penalty = rq->frequency_penalty;
    jp.sampling.seed = rq->has_seed ? rq->seed : SAMPLER_SEED_RANDOM;
    jp.sampling.logprobs = rq->logprobs;
    jp.sampling.n_probs = rq->top_logprobs;
    if (rq->n_logit_bias) {
        const int V = tandem_model_n_vocab(sl->m);
        if (!(bias = calloc(rq->n_logit_bias, sizeof(*bias)))) {
            api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < rq->n_logit_bias; i++) {
            if (rq->logit_bias[i].token >= V) {
                api_error_set(err, 400, "invalid_request_error", NULL, "logit_bias",
                              "token id %d is outside the vocabulary (%d)", rq->logit_bias[i].token, V);
                goto out;
            }
            bias[i].token = rq->logit_bias[i].token;
            /* OpenAI: -100 bans a token, 100 forces it. */
            bias[i].bias = rq->logit_bias[i].bias <= -100.0f ? -INFINITY : rq->logit_bias[i].bias;
        }
        jp.sampling.logit_bias = bias;
        jp.sampling.n_logit_bias = rq->n_logit_bias;
    }
    g->m = sl->m;
    struct gen_sink sink = {.text = sink_text, .done = sink_done, .gone = sink_gone, .ud = g};
    /* A stream opens only once the job is queued, so a full queue is a plain 503 (or the next
     * target); the scheduler's first callbacks wait on g->mu until it is open. */
    pthread_mutex_lock(&g->mu);
    g->sink_frees = g->stream;
    const int lrc = local_submit(sl->lm, &jp, &sink, NULL);
    schema = NULL;  /* the job owns it now, whatever local_submit said */
    if (lrc) {
        g->sink_frees = false;
        pthread_mutex_unlock(&g->mu);
        if (lrc == LOCAL_E_BUSY || lrc == LOCAL_E_STOPPED)
            api_error_set(err, 503, "server_error", "overloaded", NULL, "%s; retry shortly",
                          local_strerror(lrc));
        else
            api_error_set(err, lrc == LOCAL_E_TOO_LONG ? 400 : 500,
                          lrc == LOCAL_E_TOO_LONG ? "invalid_request_error" : "server_error", NULL,
                          NULL, "%s", local_strerror(lrc));
        goto out;
    }
    if (g->stream)
        stream_begin(g);
    pthread_mutex_unlock(&g->mu);
    rc = 0;
out:
    free(bias);
    json_schema_free(schema);
    free(ids);
    return rc;
}

/* Calls an upstream provider with retries (jittered exponential backoff, never after the
 * first byte reached the client). 0: answered (the sink finished it). */
static int attempt_upstream(struct gen *g, const struct gw_model *t, int index,
                            const struct api_request *rq, struct api_error *err)
{
    struct served_state *st = g->st;
    const struct gw_upstream *up = &t->upstream;
    struct gen_sink sink = {.text = sink_text, .done = sink_done, .gone = sink_gone, .ud = g};
    g->m = NULL;
    for (int attempt = 0;; attempt++) {
        struct upstream_result res;
        memset(&res, 0, sizeof(res));
        const int rc = upstream_call(g->srv->pool, up, rq, &sink, http_req_id(g->r), &res);
        const int64_t now = server__now_ms();
        pthread_mutex_lock(&st->health_mu);
        route_health_record(&st->health[index], &g->srv->breaker, rc == 0 || !res.retryable,
                            res.latency_ms, now);
        pthread_mutex_unlock(&st->health_mu);
        if (rc == 0)
            return 0;
        *err = res.error;
        if (!err->status)
            api_error_set(err, 502, "server_error", "upstream_error", NULL, "%s: %s", t->name,
                          upstream_strerror(rc));
        if (res.started) {
            /* Text already reached the client: end its answer with the error. */
            pthread_mutex_lock(&g->mu);
            if (g->stream) {
                stream_error(g, err);
                stream_close(g);
            }
            g->done = true;
            pthread_mutex_unlock(&g->mu);
            return 1;
        }
        if (rc == UPSTREAM_E_CANCELLED || !res.retryable || attempt >= up->retries.max)
            return -1;
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            rnd = (uint64_t)now;
        const int delay = route_backoff_ms(up->retries.backoff_ms, attempt + 1, 10000,
                                           res.retry_after_ms, rnd);
        usleep((useconds_t)delay * 1000);
    }
}

/* ---- privacy ---- */

/* Scans the request's text with the policy's detectors: counts per kind, and whether any. */
static bool scan_pii(const struct api_request *rq, unsigned mask, unsigned counts[PII_KIND_COUNT])
{
    memset(counts, 0, sizeof(unsigned) * PII_KIND_COUNT);
    unsigned c[PII_KIND_COUNT];
    bool any = false;
    for (size_t i = 0; i < rq->n_messages; i++) {
        if (pii_count(rq->messages[i].content, strlen(rq->messages[i].content), mask, c) == 0)
            for (int k = 0; k < PII_KIND_COUNT; k++)
                counts[k] += c[k];
    }
    if (rq->prompt && pii_count(rq->prompt, strlen(rq->prompt), mask, c) == 0)
        for (int k = 0; k < PII_KIND_COUNT; k++)
            counts[k] += c[k];
    for (int k = 0; k < PII_KIND_COUNT; k++)
        any |= counts[k] > 0;
    return any;
}

static void privacy_header(struct gen *g, const char *action, const unsigned counts[PII_KIND_COUNT])
{
    int o = snprintf(g->privacy_hdr, sizeof(g->privacy_hdr), "action=%s", action);
    for (int k = 0; k < PII_KIND_COUNT && o < (int)sizeof(g->privacy_hdr) - 32; k++)
        if (counts[k])
            o += snprintf(g->privacy_hdr + o, sizeof(g->privacy_hdr) - (size_t)o, "%s%s:%u",
                          o == (int)strlen("action=") + (int)strlen(action) ? "; detected=" : ",",
                          pii_kind_name((enum pii_kind)k), counts[k]);
}

/* A copy of the request's texts with PII replaced by placeholders (for cloud targets). The
 * strings belong to `owned` (freed by the caller). */
static int pseudonymize(struct pii_vault *v, unsigned mask, struct api_request *cloud,
                        const struct api_request *rq, char **owned, size_t n_owned)
{
    *cloud = *rq;
    struct api_message *msgs = NULL;
    if (rq->n_messages) {
        msgs = calloc(rq->n_messages, sizeof(*msgs));
        if (!msgs)
            return -1;
        owned[n_owned - 1] = (char *)msgs;
    }
    for (size_t i = 0; i < rq->n_messages; i++) {
        msgs[i] = rq->messages[i];
        size_t len = 0;
        if (pii_vault_pseudonymize(v, rq->messages[i].content, strlen(rq->messages[i].content),
                                   mask, &owned[i], &len, NULL))
            return -1;
        msgs[i].content = owned[i];
    }
    cloud->messages = msgs;
    if (rq->prompt) {
        size_t len = 0;
        if (pii_vault_pseudonymize(v, rq->prompt, strlen(rq->prompt), mask, &owned[n_owned - 2],
                                   &len, NULL))
            return -1;
        cloud->prompt = owned[n_owned - 2];
    }
    return 0;
}

/* ---- the handler ---- */

void server__handle_generate(struct server *s, struct http_req *r, enum client_api api)
{
    const bool anthropic = api == CLIENT_ANTHROPIC;
    struct served_state *st = server__state_get(s);
    struct api_request rq = {0};
    struct api_error err = {0};
    struct gen *g = NULL;
    struct pii_vault *vault = NULL;
    char **owned = NULL;
    size_t n_owned = 0;
    size_t blen = 0;
    const char *body = http_req_body(r, &blen);
    const int prc = anthropic ? api_anthropic_parse(&rq, body, blen, &st->limits, &err)
                              : api_request_parse(&rq, api == CLIENT_OPENAI_CHAT ? API_CHAT
                                                                                 : API_COMPLETION,
                                                  body, blen, &st->limits, &err);
    if (prc) {
        server__state_put(st);
        server__respond_error(r, &err, anthropic);
        return;
    }
    g = calloc(1, sizeof(*g));
    if (!g || !(g->model_name = strdup(rq.model))) {
        free(g);
        g = NULL;
        api_error_set(&err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->srv = s;
    g->st = st;
    st = NULL;  /* g holds the reference now */
    g->t_start = mono_now();
    g->privacy_action = "none";
    EVP_Digest(body, blen, g->prompt_sha256, NULL, EVP_sha256(), NULL);
    if ((g->response_md = EVP_MD_CTX_new()) && !EVP_DigestInit_ex(g->response_md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(g->response_md);
        g->response_md = NULL;
    }
    g->api = api;
    g->r = r;
    g->created = (int64_t)time(NULL);
    make_id(g->id, sizeof(g->id), anthropic ? "msg_" : api == CLIENT_OPENAI_CHAT ? "chatcmpl-" : "cmpl-");
    g->want_logprobs = rq.logprobs;
    g->include_usage = rq.include_usage;
    g->stream = rq.stream;
    if (rq.echo && rq.prompt)
        g->echo = strdup(rq.prompt);
    if (!g->stream && g->echo)
        collect(g, g->echo, strlen(g->echo), NULL, 0);

    /* Privacy: what the applicable policy detects, before anything leaves. */
    const struct gw_privacy *policy = route_privacy_policy(g->st->cfg, rq.model);
    unsigned counts[PII_KIND_COUNT] = {0};
    const bool pii = policy ? scan_pii(&rq, policy->detect, counts) : false;
    const int64_t now = server__now_ms();
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint64_t)now;
    struct route_plan plan;
    pthread_mutex_lock(&g->st->health_mu);
    const int rrc = route_plan(g->st->cfg, rq.model, pii, g->st->health, &s->breaker, now, rnd, &plan);
    pthread_mutex_unlock(&g->st->health_mu);
    const char *action = !pii ? "none"
                         : plan.privacy == ROUTE_PRIVACY_LOCAL ? "route_local"
                         : plan.privacy == ROUTE_PRIVACY_PSEUDONYMIZE ? "pseudonymize"
                         : plan.privacy == ROUTE_PRIVACY_BLOCK ? "block" : "allow";
    privacy_header(g, action, counts);
    g->privacy_action = action;
    memcpy(g->pii, counts, sizeof(g->pii));
    if (s->gov) {
        /* Keys, allow-lists, rate limits, and the worst case cost reserved against budgets. */
        size_t text = rq.prompt ? strlen(rq.prompt) : 0;
        for (size_t i = 0; i < rq.n_messages; i++)
            text += strlen(rq.messages[i].content);
        const int64_t in_est = (int64_t)(text / 3 + 16);
        const int64_t out_max = rq.max_tokens > 0 ? rq.max_tokens : 4096;
        double max_cost = 0;
        for (size_t i = 0; rrc == ROUTE_OK && i < plan.n; i++) {
            const struct gw_model *t = plan.targets[i];
            const double c = t->kind == GW_MODEL_PROVIDER
                                 ? ((double)in_est * t->upstream.price.input_per_mtok +
                                    (double)out_max * t->upstream.price.output_per_mtok) / 1e6
                                 : 0;
            max_cost = c > max_cost ? c : max_cost;
        }
        int retry_s = 0;
        if (govern_admit(s->gov, g->st->cfg, r, rq.model, in_est + out_max, max_cost, &g->adm, &err,
                         &retry_s)) {
            if (retry_s > 0) {
                char ra[16];
                snprintf(ra, sizeof(ra), "%d", retry_s);
                http_req_add_header(r, "Retry-After", ra);
            }
            goto fail;
        }
    }
    if (rrc == ROUTE_E_UNKNOWN) {
        api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%s' does not exist", rq.model);
        goto fail;
    }
    if (rrc == ROUTE_E_BLOCKED) {
        char kinds[160] = "";
        int o = 0;
        for (int k = 0; k < PII_KIND_COUNT && o < (int)sizeof(kinds) - 20; k++)
            if (counts[k])
                o += snprintf(kinds + o, sizeof(kinds) - (size_t)o, "%s%s", o ? ", " : "",
                              pii_kind_name((enum pii_kind)k));
        api_error_set(&err, 403, "permission_error", "pii_blocked", "messages",
                      "the request contains personal data (%s) and the privacy policy for '%s' "
                      "blocks it",
                      kinds, rq.model);
        goto fail;
    }
    if (rrc == ROUTE_E_NO_TARGET) {
        api_error_set(&err, 503, "server_error", "no_healthy_target", NULL,
                      "every target of '%s' is failing; retry shortly", rq.model);
        goto fail;
    }

    /* Cloud targets of a pseudonymize policy see placeholders; the answer is restored. */
    struct api_request cloud_rq = rq;
    bool have_cloud_rq = false;
    int result = -1;
    for (size_t i = 0; i < plan.n && i < MAX_ATTEMPTS_TOTAL; i++) {
        const struct gw_model *t = plan.targets[i];
        const int index = (int)(t - g->st->cfg->models);
        g->target = t->name;
        g->target_model = t;
        memset(&err, 0, sizeof(err));
        if (t->kind == GW_MODEL_LOCAL) {
            if (!g->st->locals[index]) {
                api_error_set(&err, 503, "server_error", "model_unavailable", NULL,
                              "the local model '%s' is not loaded", t->name);
                continue;
            }
            pii_restore_free(g->restorer);
            g->restorer = NULL;
            const bool frees = g->stream;
            if (attempt_local(g, g->st->locals[index], &rq, &err) == 0) {
                if (frees) {
                    g = NULL;  /* the sink answers and frees it */
                    result = 2;
                } else {
                    result = 0;
                }
                break;
            }
            if (err.status != 503)
                break;  /* a bad request stays bad on another target */
            continue;
        }
        const struct api_request *send = &rq;
        if (plan.privacy == ROUTE_PRIVACY_PSEUDONYMIZE && pii) {
            if (!have_cloud_rq) {
                n_owned = rq.n_messages + 2;
                owned = calloc(n_owned, sizeof(char *));
                vault = pii_vault_new();
                if (!owned || !vault ||
                    pseudonymize(vault, plan.policy->detect, &cloud_rq, &rq, owned, n_owned)) {
                    api_error_set(&err, 500, "server_error", NULL, NULL,
                                  "cannot pseudonymize the request");
                    break;
                }
                have_cloud_rq = true;
            }
            pii_restore_free(g->restorer);
            g->restorer = pii_restore_new(vault);
            send = &cloud_rq;
        }
        const int urc = attempt_upstream(g, t, index, send, &err);
        if (urc >= 0) {
            result = urc;  /* 0: answered; 1: failed after the first byte (already ended) */
            break;
        }
    }
    if (result == 2)
        goto out;
    if (result == 0 && g->stream)
        goto out;  /* the stream was opened and closed by the sink */
    if (result == 0) {
        pthread_mutex_lock(&g->mu);
        while (!g->done)
            pthread_cond_wait(&g->cv, &g->mu);
        pthread_mutex_unlock(&g->mu);
        if (!strcmp(g->reason, "cancelled")) {
            api_error_set(&err, 503, "server_error", "server_shutting_down", NULL,
                          "the server is shutting down");
            goto fail;
        }
        respond_final(g);
        goto out;
    }
    if (result == 1)
        goto out;
    if (!err.status)
        api_error_set(&err, 503, "server_error", "no_target", NULL, "no target could serve '%s'",
                      rq.model);
fail:
    if (g)
        g->status = err.status;
    if (g && g->opened) {
        /* Cannot happen before any target answered, but never leave a stream open. */
        stream_error(g, &err);
        stream_close(g);
    } else {
        if (g)
            add_headers(g);
        server__respond_error(r, &err, anthropic);
    }
out:
    for (size_t i = 0; owned && i < n_owned; i++)
        free(owned[i]);
    free(owned);
    pii_vault_free(vault);
    gen_free(g);
    server__state_put(st);
    api_request_free(&rq);
}
