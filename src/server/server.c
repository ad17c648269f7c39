/* The server's life: configuration (a file, or -m options), loaded models shared across
 * reloads, request routing to the handlers, health, model list, embeddings. */
#include "server/server.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/model.h"
#include "server/api_anthropic.h"
#include "server/server_impl.h"
#include "tandem.h"
#include "tokenizer/chat_template.h"

void server_config_default(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    http_config_default(&cfg->http);
    api_limits_default(&cfg->limits);
    cfg->shutdown_grace_s = 10;
}

/* ---- helpers shared with completion.c ---- */

void server__respond_error(struct http_req *r, const struct api_error *e, bool anthropic)
{
    char *body = anthropic ? api_anthropic_error_json(e) : api_error_json(e);
    if (e->status == 503)
        http_req_add_header(r, "Retry-After", "1");
    if (body) {
        http_respond(r, e->status, "application/json", body, strlen(body));
        free(body);
    } else {
        http_respond(r, 500, "text/plain", "out of memory", 13);
    }
}

void server__respond_json(struct http_req *r, int status, char *body)
{
    if (!body) {
        struct api_error e;
        api_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
        server__respond_error(r, &e, false);
        return;
    }
    http_respond(r, status, "application/json", body, strlen(body));
    free(body);
}

int64_t server__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int32_t *server__tokenize(const struct tandem_model *m, const char *text, size_t len,
                          bool add_special, bool parse_special, int *n)
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

/* ---- served state ---- */

static void local_put(struct served_local *sl)
{
    if (!sl || atomic_fetch_sub(&sl->refs, 1) != 1)
        return;
    local_model_free(sl->lm);
    chat_template_free(sl->tmpl);
    free(sl->key);
    free(sl);
}

struct served_state *server__state_get(struct server *s)
{
    pthread_mutex_lock(&s->state_mu);
    struct served_state *st = s->state;
    atomic_fetch_add(&st->refs, 1);
    pthread_mutex_unlock(&s->state_mu);
    return st;
}

void server__state_put(struct served_state *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    for (size_t i = 0; st->locals && i < st->cfg->n_models; i++)
        local_put(st->locals[i]);
    free(st->locals);
    free(st->health);
    pthread_mutex_destroy(&st->health_mu);
    gw_config_free(st->cfg);
    free(st);
}

static char *local_key(const struct gw_local *l)
{
    const size_t n = strlen(l->path) + 64;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s|%d|%d|%d|%d", l->path, l->slots, l->ctx_size, l->threads, l->batch);
    return k;
}

static struct served_local *local_load(const struct server *s, const struct gw_model *gm,
                                       char *err, size_t errlen)
{
    struct served_local *sl = calloc(1, sizeof(*sl));
    if (!sl)
        return NULL;
    atomic_init(&sl->refs, 1);
    struct local_config lc;
    local_config_default(&lc);
    lc.name = gm->name;
    lc.path = gm->local.path;
    lc.n_slots = gm->local.slots > 0 ? gm->local.slots : s->cfg.default_slots;
    lc.n_ctx = gm->local.ctx_size > 0 ? gm->local.ctx_size : s->cfg.default_ctx;
    lc.n_threads = gm->local.threads > 0 ? gm->local.threads : s->cfg.default_threads;
    lc.n_batch = gm->local.batch > 0 ? gm->local.batch : s->cfg.default_batch;
    lc.queue_max = s->cfg.queue_max;
    char msg[256] = "";
    if (!(sl->key = local_key(&gm->local)) || local_model_new(&sl->lm, &lc, err, errlen))
        goto fail;
    sl->m = local_model_engine(sl->lm);
    if (chat_template_from_gguf(&sl->tmpl, sl->m->gguf, NULL, msg, sizeof(msg))) {
        snprintf(err, errlen, "%s: chat template: %s", gm->name, msg);
        goto fail;
    }
    if (chat_template_flags(sl->tmpl) & (CHAT_TEMPLATE_UNKNOWN | CHAT_TEMPLATE_FALLBACK))
        fprintf(stderr, "tandem serve: warning: %s: %s (chat requests use the %s format)\n",
                gm->name, msg[0] ? msg : "chat template unusable",
                chat_family_name(chat_template_family(sl->tmpl)));
    const int32_t bos = tandem_token_bos(sl->m), eos = tandem_token_eos(sl->m);
    int n = bos >= 0 ? tandem_token_to_piece(sl->m, bos, sl->bos, sizeof(sl->bos) - 1, true) : 0;
    sl->bos[n > 0 && n < (int)sizeof(sl->bos) ? n : 0] = 0;
    n = eos >= 0 ? tandem_token_to_piece(sl->m, eos, sl->eos, sizeof(sl->eos) - 1, true) : 0;
    sl->eos[n > 0 && n < (int)sizeof(sl->eos) ? n : 0] = 0;
    sl->end_of_turn = chat_family_end_of_turn(chat_template_family(sl->tmpl));
    /* Which bytes can start a control token's text: messages without any of them need no
     * special-token neutralizing (completion.c), which saves a tokenization per message. */
    bool seen[256] = {false};
    size_t nf = 0;
    char sp[64], plain[64];
    for (int32_t id = 0; id < tandem_model_n_vocab(sl->m); id++) {
        const int ls = tandem_token_to_piece(sl->m, id, sp, sizeof(sp), true);
        if (ls <= 1 || seen[(unsigned char)sp[0]] ||
            tandem_token_to_piece(sl->m, id, plain, sizeof(plain), false) != 0)
            continue;
        seen[(unsigned char)sp[0]] = true;
        if (sp[0])
            sl->special_first[nf++] = sp[0];
    }
    sl->special_first[nf] = 0;
    return sl;
fail:
    local_put(sl);
    return NULL;
}

/* Builds the state for cfg (taking ownership of it), reusing the local models of `prev` that
 * the new configuration names with the same file and options. */
static struct served_state *state_new(struct server *s, struct gw_config *cfg,
                                      const struct served_state *prev, char *err, size_t errlen)
{
    struct served_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&st->refs, 1);
    pthread_mutex_init(&st->health_mu, NULL);
    st->cfg = cfg;
    st->locals = calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*st->locals));
    st->health = calloc(cfg->n_models ? cfg->n_models : 1, sizeof(*st->health));
    if (!st->locals || !st->health) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    st->limits = s->cfg.limits;
    if (s->config_path && cfg->limits.max_messages > 0)
        st->limits.max_messages = (size_t)cfg->limits.max_messages;
    if (s->config_path)  /* the file's 0 means no cap beyond each model's context */
        st->limits.max_tokens = cfg->limits.max_tokens > 0 ? cfg->limits.max_tokens : 1 << 24;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct gw_model *gm = &cfg->models[i];
        if (gm->kind != GW_MODEL_LOCAL)
            continue;
        char *key = local_key(&gm->local);
        for (size_t k = 0; prev && key && k < prev->cfg->n_models && !st->locals[i]; k++) {
            struct served_local *old = prev->locals[k];
            /* Same file and options, and the same public name (the scheduler reports it). */
            if (old && !strcmp(old->key, key) && !strcmp(local_model_name(old->lm), gm->name)) {
                atomic_fetch_add(&old->refs, 1);
                st->locals[i] = old;
            }
        }
        free(key);
        if (!st->locals[i] && !(st->locals[i] = local_load(s, gm, err, errlen)))
            goto fail;
        /* Health of providers survives a reload by name; locals start fresh. */
    }
    for (size_t i = 0; prev && i < cfg->n_models; i++) {
        const struct gw_model *old = gw_config_find_model(prev->cfg, cfg->models[i].name);
        if (old)
            st->health[i] = prev->health[old - prev->cfg->models];
    }
    return st;
fail:
    server__state_put(st);
    return NULL;
}

/* A configuration for the -m options: YAML text run through the same loader as a file. */
static int config_from_models(const struct server_config *c, struct gw_config **out, char *err,
                              size_t errlen)
{
    size_t cap = 256;
    for (int i = 0; i < c->n_models; i++)
        cap += 2 * (strlen(c->models[i].path) + strlen(c->models[i].name ? c->models[i].name : "")) + 160;
    char *y = malloc(cap);
    if (!y)
        return -1;
    size_t o = (size_t)snprintf(y, cap, "models:\n");
    for (int i = 0; i < c->n_models; i++) {
        const struct local_config *m = &c->models[i];
        /* Double-quoted YAML scalars: escape backslashes and quotes. */
        const char *fields[2] = {m->name ? m->name : m->path, m->path};
        for (int f = 0; f < 2; f++) {
            o += (size_t)snprintf(y + o, cap - o, f ? "    local:\n      path: \"" : "  - name: \"");
            for (const char *p = fields[f]; *p && o + 4 < cap; p++) {
                if (*p == '"' || *p == '\\')
                    y[o++] = '\\';
                y[o++] = *p;
            }
            o += (size_t)snprintf(y + o, cap - o, "\"\n");
        }
    }
    const int rc = gw_config_parse(out, y, o, "command line", err, errlen);
    free(y);
    return rc;
}

int server_reload(struct server *s, char *err, size_t errlen)
{
    if (!s->config_path) {
        snprintf(err, errlen, "no configuration file to reload (started with -m)");
        return -1;
    }
    struct gw_config *cfg = NULL;
    if (gw_config_load(&cfg, s->config_path, err, errlen))
        return -1;
    struct served_state *prev = server__state_get(s);
    struct served_state *st = state_new(s, cfg, prev, err, errlen);
    server__state_put(prev);
    if (!st)
        return -1;
    pthread_mutex_lock(&s->state_mu);
    prev = s->state;
    s->state = st;
    pthread_mutex_unlock(&s->state_mu);
    server__state_put(prev);  /* freed once the last request using it ends */
    return 0;
}

/* ---- handlers ---- */

static struct served_local *embedding_model(struct served_state *st, const char *name)
{
    const struct gw_model *m = gw_config_find_model(st->cfg, name);
    if (m)
        return st->locals[m - st->cfg->models];
    const struct gw_route *r = gw_config_find_route(st->cfg, name);
    for (size_t i = 0; r && i < r->n_targets; i++) {
        const struct gw_model *t = gw_config_find_model(st->cfg, r->targets[i].model);
        if (t && st->locals[t - st->cfg->models])
            return st->locals[t - st->cfg->models];
    }
    return NULL;
}

static void handle_embeddings(struct server *s, struct http_req *r)
{
    struct served_state *st = server__state_get(s);
    struct api_request rq = {0};
    struct api_error err = {0};
    size_t blen = 0;
    const char *body = http_req_body(r, &blen);
    float **vecs = NULL;
    if (api_request_parse(&rq, API_EMBEDDING, body, blen, &st->limits, &err))
        goto fail;
    struct served_local *sl = embedding_model(st, rq.model);
    int total = 0;
    if (!sl) {
        const bool known = gw_config_find_model(st->cfg, rq.model) || gw_config_find_route(st->cfg, rq.model);
        api_error_set(&err, known ? 400 : 404, "invalid_request_error",
                      known ? "embeddings_unsupported" : "model_not_found", "model",
                      known ? "'%s' has no local model to compute embeddings with"
                            : "The model '%s' does not exist",
                      rq.model);
        goto fail;
    }
    const int E = local_model_n_embd(sl->lm);
    vecs = calloc(rq.n_inputs, sizeof(float *));
    if (!vecs)
        goto oom;
    for (size_t i = 0; i < rq.n_inputs; i++) {
        int n = 0;
        int32_t *ids = server__tokenize(sl->m, rq.inputs[i], strlen(rq.inputs[i]), true, false, &n);
        if (!ids || !(vecs[i] = malloc(sizeof(float) * (size_t)E))) {
            free(ids);
            goto oom;
        }
        const int rc = local_embed(sl->lm, ids, n, vecs[i]);
        free(ids);
        if (rc) {
            api_error_set(&err, 400, "invalid_request_error",
                          rc == LOCAL_E_TOO_LONG ? "context_length_exceeded" : NULL, "input",
                          "input %zu: %s (%d tokens, context %d)", i, local_strerror(rc), n,
                          local_model_n_ctx(sl->lm));
            goto fail;
        }
        total += n;
    }
    server__respond_json(r, 200, api_embeddings_json(rq.model, (const float *const *)vecs,
                                                     rq.n_inputs, E, rq.base64, total));
    goto out;
oom:
    api_error_set(&err, 500, "server_error", NULL, NULL, "out of memory");
fail:
    server__respond_error(r, &err, false);
out:
    for (size_t i = 0; vecs && i < rq.n_inputs; i++)
        free(vecs[i]);
    free(vecs);
    api_request_free(&rq);
    server__state_put(st);
}

static void handle_models(struct server *s, struct http_req *r)
{
    struct served_state *st = server__state_get(s);
    const size_t n = st->cfg->n_models + st->cfg->n_routes;
    const char **ids = calloc(n ? n : 1, sizeof(char *)), **owners = calloc(n ? n : 1, sizeof(char *));
    if (ids && owners) {
        for (size_t i = 0; i < st->cfg->n_models; i++) {
            const struct gw_model *m = &st->cfg->models[i];
            ids[i] = m->name;
            owners[i] = m->kind == GW_MODEL_LOCAL ? "tandem" : gw_provider_name(m->upstream.provider);
        }
        for (size_t i = 0; i < st->cfg->n_routes; i++) {
            ids[st->cfg->n_models + i] = st->cfg->routes[i].name;
            owners[st->cfg->n_models + i] = "tandem-route";
        }
        server__respond_json(r, 200, api_models_json(ids, owners, n, s->started));
    } else {
        server__respond_json(r, 500, NULL);
    }
    free(ids);
    free(owners);
    server__state_put(st);
}

static void handle_health(struct server *s, struct http_req *r)
{
    struct served_state *st = server__state_get(s);
    size_t cap = 256 + st->cfg->n_models * 256, o = 0;
    char *buf = malloc(cap);
    if (!buf) {
        server__state_put(st);
        server__respond_json(r, 500, NULL);
        return;
    }
    const int64_t now = server__now_ms();
    o += (size_t)snprintf(buf, cap, "{\"status\":\"%s\",\"models\":[",
                          http_server_stopping(s->http) ? "stopping" : "ok");
    pthread_mutex_lock(&st->health_mu);
    for (size_t i = 0; i < st->cfg->n_models && o + 256 < cap; i++) {
        const struct gw_model *m = &st->cfg->models[i];
        o += (size_t)snprintf(buf + o, cap - o, "%s{\"name\":\"%s\"", i ? "," : "", m->name);
        if (st->locals[i]) {
            struct local_stats ls;
            local_model_stats(st->locals[i]->lm, &ls);
            o += (size_t)snprintf(buf + o, cap - o,
                                  ",\"kind\":\"local\",\"slots_busy\":%d,\"slots\":%d,\"queued\":%d,"
                                  "\"requests\":%llu}",
                                  ls.slots_busy, ls.n_slots, ls.queued, (unsigned long long)ls.requests);
        } else {
            const struct route_health *h = &st->health[i];
            o += (size_t)snprintf(buf + o, cap - o,
                                  ",\"kind\":\"provider\",\"circuit\":\"%s\",\"latency_ms\":%.1f,"
                                  "\"successes\":%llu,\"failures\":%llu}",
                                  !h->open_until_ms ? "closed" : now < h->open_until_ms ? "open" : "half-open",
                                  h->latency_ms, (unsigned long long)h->successes,
                                  (unsigned long long)h->failures);
        }
    }
    pthread_mutex_unlock(&st->health_mu);
    o += (size_t)snprintf(buf + o, cap - o, "]}");
    http_respond(r, http_server_stopping(s->http) ? 503 : 200, "application/json", buf, o);
    free(buf);
    server__state_put(st);
}

struct usage_json {
    json_t *arr;
};

static int usage_row(void *ud, const struct store_usage_group *g)
{
    struct usage_json *u = ud;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:f}", "group", g->group, "label",
                          g->label, "requests", (json_int_t)g->requests, "prompt_tokens",
                          (json_int_t)g->prompt_tokens, "completion_tokens",
                          (json_int_t)g->completion_tokens, "cost_usd", g->cost_usd,
                          "local_cost_usd", g->local_cost_usd, "saved_usd", g->saved_usd);
    if (o)
        json_array_append_new(u->arr, o);
    return 0;
}

/* GET /v1/usage?since=SECONDS_AGO|UNIX_MS&by=key|team|model|target (admin key). */
static void handle_usage(struct server *s, struct http_req *r)
{
    struct served_state *st = server__state_get(s);
    struct api_error err = {0};
    if (!govern_is_admin(s->gov, r, st->cfg)) {
        api_error_set(&err, 401, "invalid_request_error", "invalid_api_key", NULL,
                      "GET /v1/usage needs the admin key");
        server__state_put(st);
        server__respond_error(r, &err, false);
        return;
    }
    server__state_put(st);
    const char *by = http_req_query(r, "by"), *since = http_req_query(r, "since");
    enum store_group g = STORE_GROUP_MODEL;
    for (int i = 0; by && i < STORE_GROUP_COUNT; i++)
        if (!strcmp(by, store_group_name((enum store_group)i)))
            g = (enum store_group)i;
    int64_t since_ms = 0;
    if (since) {
        char *end = NULL;
        const long long v = strtoll(since, &end, 10);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (!end || *end || v < 0) {
            api_error_set(&err, 400, "invalid_request_error", NULL, "since",
                          "since: seconds ago, or a Unix time in milliseconds");
            server__respond_error(r, &err, false);
            return;
        }
        since_ms = v < 1000000000000LL ? now - v * 1000 : v;
    }
    struct usage_json u = {.arr = json_array()};
    const int rc = u.arr ? store_usage_summary(govern_store(s->gov), since_ms, g, usage_row, &u) : -1;
    json_t *doc = rc == 0 ? json_pack("{s:s, s:s, s:I, s:O}", "object", "usage", "by",
                                      store_group_name(g), "since_ms", (json_int_t)since_ms, "data",
                                      u.arr)
                          : NULL;
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    json_decref(u.arr);
    server__respond_json(r, body ? 200 : 500, body);
}

/* Prometheus text: the request metrics kept by completion.c, plus gauges read now. */
static void handle_metrics(struct server *s, struct http_req *r)
{
    struct served_state *st = server__state_get(s);
    struct metrics_tandem *mt = s->metrics;
    const int64_t now = server__now_ms();
    pthread_mutex_lock(&st->health_mu);
    for (size_t i = 0; i < st->cfg->n_models; i++) {
        const char *name[1] = {st->cfg->models[i].name};
        if (st->locals[i]) {
            struct local_stats ls;
            local_model_stats(st->locals[i]->lm, &ls);
            metrics_set(mt->slots_busy, name, ls.slots_busy);
            metrics_set(mt->slots, name, ls.n_slots);
            metrics_set(mt->queue_depth, name, ls.queued);
        } else {
            const struct route_health *h = &st->health[i];
            metrics_set(mt->upstream_up, name, !h->open_until_ms || now >= h->open_until_ms ? 1 : 0);
        }
    }
    pthread_mutex_unlock(&st->health_mu);
    server__state_put(st);
    struct metrics_buf b;
    metrics_buf_init(&b, 0);
    if (metrics_render(mt->reg, &b) == 0)
        http_respond(r, 200, METRICS_CONTENT_TYPE, b.data, b.len);
    else
        http_respond(r, 500, "text/plain", "cannot render metrics\n", 22);
    metrics_buf_free(&b);
}

static void route_request(struct http_req *r, void *ud)
{
    struct server *s = ud;
    const char *method = http_req_method(r), *path = http_req_path(r);
    const bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    struct api_error err = {0};
    bool known = true;
    if (!strcmp(path, "/health") || !strcmp(path, "/v1/health")) {
        if (get) {
            handle_health(s, r);
            return;
        }
    } else if (!strcmp(path, "/v1/usage")) {
        if (get) {
            handle_usage(s, r);
            return;
        }
    } else if (!strcmp(path, "/metrics")) {
        if (get) {
            handle_metrics(s, r);
            return;
        }
    } else if (!strcmp(path, "/v1/models")) {
        if (get) {
            handle_models(s, r);
            return;
        }
    } else if (!strcmp(path, "/v1/chat/completions")) {
        if (post) {
            server__handle_generate(s, r, CLIENT_OPENAI_CHAT);
            return;
        }
    } else if (!strcmp(path, "/v1/completions")) {
        if (post) {
            server__handle_generate(s, r, CLIENT_OPENAI_COMPLETION);
            return;
        }
    } else if (!strcmp(path, "/v1/messages")) {
        if (post) {
            server__handle_generate(s, r, CLIENT_ANTHROPIC);
            return;
        }
    } else if (!strcmp(path, "/v1/embeddings")) {
        if (post) {
            handle_embeddings(s, r);
            return;
        }
    } else {
        known = false;
    }
    if (known)
        api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                      "Method %s is not allowed on %s", method, path);
    else
        api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL,
                      "Unknown request URL: %s %s", method, path);
    server__respond_error(r, &err, !strcmp(path, "/v1/messages"));
}

/* ---- lifetime ---- */

int server_start(struct server **out, const struct server_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct server *s = calloc(1, sizeof(*s));
    struct gw_config *gc = NULL;
    if (!s)
        return -1;
    pthread_mutex_init(&s->state_mu, NULL);
    s->cfg = *cfg;
    s->cfg.models = NULL;
    s->grace_s = cfg->shutdown_grace_s > 0 ? cfg->shutdown_grace_s : 10;
    s->started = (int64_t)time(NULL);
    route_breaker_config_default(&s->breaker);
    if (cfg->config_path) {
        if (!(s->config_path = strdup(cfg->config_path)) ||
            gw_config_load(&gc, cfg->config_path, err, errlen))
            goto fail;
    } else if (cfg->n_models < 1) {
        snprintf(err, errlen, "no model: give -m MODEL or --config FILE");
        goto fail;
    } else if (config_from_models(cfg, &gc, err, errlen)) {
        goto fail;
    }
    struct http_config hc = cfg->http;
    if (cfg->config_path && !cfg->listen_override) {
        hc.host = gc->listen_host;
        hc.port = gc->listen_port;
    }
    if (hc.host && !(s->host = strdup(hc.host))) {
        gw_config_free(gc);
        goto fail;
    }
    hc.host = s->host;
    if (cfg->config_path && gc->limits.max_body_bytes)
        hc.max_body_bytes = gc->limits.max_body_bytes;
    if (cfg->config_path && gc->limits.queue > 0)
        s->cfg.queue_max = gc->limits.queue;
    if (metrics_tandem_new(&s->metrics, "0.1", 0)) {
        snprintf(err, errlen, "out of memory");
        gw_config_free(gc);
        goto fail;
    }
    if (upstream_pool_new(&s->pool)) {
        snprintf(err, errlen, "cannot set up the HTTP client");
        gw_config_free(gc);
        goto fail;
    }
    if (govern_open(&s->gov, gc, err, errlen)) {
        gw_config_free(gc);
        goto fail;
    }
    if (govern_open_mode(s->gov)) {
        const char *h = hc.host ? hc.host : "127.0.0.1";
        const bool loopback = !strcmp(h, "127.0.0.1") || !strcmp(h, "::1") || !strcmp(h, "localhost") ||
                              !strncmp(h, "127.", 4);
        if (!loopback) {
            snprintf(err, errlen,
                     "no API keys exist: refusing to serve open on %s; create one with `tandem keys "
                     "create --name NAME` or listen on 127.0.0.1",
                     h);
            gw_config_free(gc);
            goto fail;
        }
        fprintf(stderr, "tandem serve: no API keys: serving open on loopback only (`tandem keys "
                        "create` turns authentication on)\n");
    }
    if (!(s->state = state_new(s, gc, NULL, err, errlen)))
        goto fail;
    if (http_server_start(&s->http, &hc, route_request, s, err, errlen))
        goto fail;
    *out = s;
    return 0;
fail:
    server_stop(s);
    return -1;
}

int server_port(const struct server *s) { return http_server_port(s->http); }
const char *server_host(const struct server *s) { return s->host ? s->host : "127.0.0.1"; }

struct canceller {
    struct server *s;
    int after_s;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    sleep((unsigned)c->after_s);
    struct served_state *st = server__state_get(c->s);
    for (size_t i = 0; i < st->cfg->n_models; i++)
        if (st->locals[i])
            local_model_cancel_all(st->locals[i]->lm);
    server__state_put(st);
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
    server__state_put(s->state);
    upstream_pool_free(s->pool);
    metrics_tandem_free(s->metrics);
    govern_close(s->gov);
    pthread_mutex_destroy(&s->state_mu);
    free(s->config_path);
    free(s->host);
    free(s);
}
