/* Governance on the request path: keys, allow-lists, rate limits, budgets, usage, audit. */
#include "server/govern.h"

#include <limits.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/keys.h"
#include "trust/audit.h"
#include "trust/audit_store.h"

#define HEAD_EVERY 64  /* sign a tree head every this many audit entries (and on close) */

/* A finished request waiting for the writer thread: the record with its strings copied. */
struct pending {
    struct pending *next;
    struct admission adm;
    struct govern_record rec;
    uint8_t prompt_sha[32], response_sha[32];
    char *texts;  /* prompt then response, when the audit log keeps texts */
    char strs[6][160];
};

struct governance {
    /* Usage rows and audit entries are written by one thread, off the request path. */
    pthread_t writer;
    bool writer_started, stopping;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct pending *q_head, *q_tail;
    size_t q_len;
    struct store *store;
    struct keys_limiter *limiter;
    struct audit_storage audit_st;
    struct audit_log *audit;
    struct audit_key *signing_key;
    bool include_text;
};

static void *writer_main(void *arg);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int govern_open(struct governance **out, const struct gw_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct governance *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    pthread_mutex_init(&g->qmu, NULL);
    pthread_cond_init(&g->qcv, NULL);
    char path[PATH_MAX];
    const char *p = cfg->gov.state_path;
    if (!p) {
        if (store_default_path(path, sizeof(path), true)) {
            snprintf(err, errlen, "cannot make the state directory for tandem.db ($TANDEM_HOME)");
            goto fail;
        }
        p = path;
    }
    if (store_open(&g->store, p, err, errlen))
        goto fail;
    if (!(g->limiter = keys_limiter_new(0))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    g->include_text = cfg->gov.audit_include_text;
    g->audit_st = audit_store_storage(g->store);
    struct audit_log_options ao = {.include_text = g->include_text};
    int rc = audit_log_open(&g->audit_st, &ao, &g->audit);
    if (rc) {
        snprintf(err, errlen, "%s: the audit log cannot be opened (%s); run `tandem audit verify`",
                 p, audit_strerror(rc));
        goto fail;
    }
    if (cfg->gov.audit_signing_key) {
        if ((rc = audit_key_load(cfg->gov.audit_signing_key, &g->signing_key)) ||
            !audit_key_has_private(g->signing_key)) {
            snprintf(err, errlen, "%s: not an Ed25519 private key (%s)", cfg->gov.audit_signing_key,
                     rc ? audit_strerror(rc) : "public key only");
            goto fail;
        }
    }
    if (pthread_create(&g->writer, NULL, writer_main, g) == 0)
        g->writer_started = true;
    *out = g;
    return 0;
fail:
    govern_close(g);
    return -1;
}

void govern_close(struct governance *g)
{
    if (!g)
        return;
    if (g->writer_started) {
        /* Everything queued is written before the last head is signed. */
        pthread_mutex_lock(&g->qmu);
        g->stopping = true;
        pthread_cond_signal(&g->qcv);
        pthread_mutex_unlock(&g->qmu);
        pthread_join(g->writer, NULL);
    }
    if (g->audit && g->signing_key)
        audit_sign_head(g->audit, g->signing_key, now_ms(), NULL);
    audit_log_free(g->audit);
    audit_key_free(g->signing_key);
    keys_limiter_free(g->limiter);
    store_close(g->store);
    pthread_mutex_destroy(&g->qmu);
    pthread_cond_destroy(&g->qcv);
    free(g);
}

bool govern_open_mode(struct governance *g) { return store_key_active_count(g->store) == 0; }

bool govern_include_text(const struct governance *g) { return g->include_text; }

struct store *govern_store(struct governance *g) { return g->store; }

/* The presented key: "Authorization: Bearer KEY" or "x-api-key: KEY"; NULL when none. */
static const char *presented_key(struct http_req *r)
{
    const char *a = http_req_header(r, "Authorization");
    if (a && !strncasecmp(a, "Bearer ", 7)) {
        a += 7;
        while (*a == ' ')
            a++;
        return *a ? a : NULL;
    }
    const char *x = http_req_header(r, "x-api-key");
    return x && *x ? x : NULL;
}

bool govern_is_admin(struct governance *g, struct http_req *r, const struct gw_config *cfg)
{
    const char *k = presented_key(r);
    if (!k)
        return false;
    const size_t n = strlen(k);
    if (cfg->gov.admin_key) {
        const size_t m = strlen(cfg->gov.admin_key);
        if (n == m && CRYPTO_memcmp(k, cfg->gov.admin_key, n) == 0)
            return true;
    }
    struct store_key key;
    return keys_verify(g->store, k, n, &key, NULL) == 0 && key.admin;
}

static int rate_refused(int rl, int64_t retry_ms, const char *who, struct api_error *err,
                        int *retry_s)
{
    *retry_s = (int)((retry_ms + 999) / 1000);
    api_error_set(err, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                  rl == KEYS_E_TOO_LARGE
                      ? "This request needs more tokens than the %s tokens-per-minute limit."
                      : "Rate limit reached for the %s; retry after %d s.",
                  who, *retry_s);
    return -1;
}

int govern_admit(struct governance *g, const struct gw_config *cfg, struct http_req *r,
                 const char *model, int64_t tokens, double max_cost_usd, struct admission *adm,
                 struct api_error *err, int *retry_s)
{
    memset(adm, 0, sizeof(*adm));
    *retry_s = 0;
    /* Open mode (no key exists): whatever key an SDK sends is ignored. */
    if (govern_open_mode(g))
        return 0;
    const char *k = presented_key(r);
    if (!k) {
        api_error_set(err, 401, "invalid_request_error", "invalid_api_key", NULL,
                      "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' "
                      "(create one with `tandem keys create`).");
        return -1;
    }
    int store_err = 0;
    const int rc = keys_verify(g->store, k, strlen(k), &adm->key, &store_err);
    if (rc == KEYS_E_REVOKED || rc == KEYS_E_INVALID || rc == KEYS_E_ARG) {
        api_error_set(err, 401, "invalid_request_error", "invalid_api_key", NULL,
                      rc == KEYS_E_REVOKED ? "This API key has been revoked."
                                           : "Incorrect API key provided.");
        return -1;
    }
    if (rc) {
        api_error_set(err, 500, "server_error", NULL, NULL, "the key store failed (%s)",
                      keys_strerror(rc));
        return -1;
    }
    adm->keyed = true;
    if (!keys_model_allowed(&adm->key, model)) {
        api_error_set(err, 403, "permission_error", "model_not_allowed", "model",
                      "This API key may not use the model '%s'.", model);
        return -1;
    }
    int64_t retry_ms = 0;
    int rl = keys_rate_check(g->limiter, adm->key.id, adm->key.rpm, adm->key.tpm, tokens,
                             now_ms(), &retry_ms);
    if (rl == KEYS_E_RATE || rl == KEYS_E_TOO_LARGE)
        return rate_refused(rl, retry_ms, "API key's", err, retry_s);
    const struct gw_team *team = adm->key.team[0] ? gw_config_find_team(cfg, adm->key.team) : NULL;
    if (team && (team->rpm || team->tpm)) {
        char tid[STORE_NAME_MAX + 8];
        snprintf(tid, sizeof(tid), "team:%s", team->name);
        rl = keys_rate_check(g->limiter, tid, team->rpm, team->tpm, tokens, now_ms(), &retry_ms);
        if (rl == KEYS_E_RATE || rl == KEYS_E_TOO_LARGE)
            return rate_refused(rl, retry_ms, "team's", err, retry_s);
    }
    const double team_budget = team ? team->budget_usd_month : 0;
    if (adm->key.budget_usd_month > 0 || team_budget > 0) {
        const int b = store_budget_reserve(g->store, adm->key.id, adm->key.team, max_cost_usd,
                                           adm->key.budget_usd_month, team_budget, now_ms(),
                                           &adm->reservation);
        if (b == STORE_E_BUDGET) {
            api_error_set(err, 429, "insufficient_quota", "insufficient_quota", NULL,
                          "The monthly budget of this API key or its team is used up.");
            return -1;
        }
        if (b) {
            api_error_set(err, 500, "server_error", NULL, NULL, "the budget store failed (%s)",
                          store_strerror(b));
            return -1;
        }
    }
    return 0;
}

static enum audit_privacy audit_privacy_of(const char *p)
{
    if (!p || !strcmp(p, "none"))
        return AUDIT_PRIVACY_PASS;
    if (!strcmp(p, "route_local"))
        return AUDIT_PRIVACY_LOCAL;
    if (!strcmp(p, "pseudonymize"))
        return AUDIT_PRIVACY_PSEUDONYMIZE;
    if (!strcmp(p, "block"))
        return AUDIT_PRIVACY_BLOCK;
    return AUDIT_PRIVACY_PASS;
}

static enum audit_outcome audit_outcome_of(int status, const char *outcome)
{
    if (!status)
        return outcome && !strcmp(outcome, "cancelled") ? AUDIT_OUTCOME_CANCELLED : AUDIT_OUTCOME_OK;
    switch (status) {
    case 401: return AUDIT_OUTCOME_UNAUTHORIZED;
    case 403: return AUDIT_OUTCOME_BLOCKED;
    case 429: return AUDIT_OUTCOME_RATE_LIMITED;
    default: return AUDIT_OUTCOME_ERROR;
    }
}

static void copy_name(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void write_record(struct governance *g, const struct admission *adm,
                         const struct govern_record *rec)
{
    char outcome[32];
    if (rec->http_status)
        snprintf(outcome, sizeof(outcome), "%s%d", rec->http_status == 403 ? "" : "error:",
                 rec->http_status);
    const bool blocked = rec->http_status == 403;
    struct store_usage u = {
        .ts_ms = now_ms(), .request_id = rec->request_id,
        .key_id = adm && adm->keyed ? adm->key.id : "", .team = adm && adm->keyed ? adm->key.team : "",
        .model = rec->model ? rec->model : "", .target = rec->target ? rec->target : "",
        .target_kind = rec->target_kind, .prompt_tokens = rec->prompt_tokens,
        .completion_tokens = rec->completion_tokens, .latency_ms = rec->latency_ms,
        .ttft_ms = rec->ttft_ms, .cost_usd = rec->cost_usd, .local_cost_usd = rec->local_cost_usd,
        .cloud_equiv_usd = rec->cloud_equiv_usd, .privacy_action = rec->privacy ? rec->privacy : "",
        .pii_count = rec->pii_count,
        .outcome = blocked ? "blocked" : rec->http_status ? outcome : rec->outcome ? rec->outcome : "ok"};
    if (adm && adm->reservation)
        store_budget_settle(g->store, adm->reservation, &u, NULL);
    else
        store_usage_insert(g->store, &u, NULL);
    if (adm && adm->keyed && rec->completion_tokens > 0)
        keys_rate_add_tokens(g->limiter, adm->key.id, rec->completion_tokens, u.ts_ms);

    struct audit_record ar;
    memset(&ar, 0, sizeof(ar));
    ar.ts_ms = u.ts_ms;
    copy_name(ar.request_id, sizeof(ar.request_id), rec->request_id);
    copy_name(ar.key_id, sizeof(ar.key_id), u.key_id);
    copy_name(ar.model, sizeof(ar.model), rec->model);
    copy_name(ar.target, sizeof(ar.target), rec->target);
    ar.privacy = audit_privacy_of(rec->privacy);
    ar.outcome = audit_outcome_of(rec->http_status, rec->outcome);
    ar.http_status = (uint16_t)(rec->http_status ? rec->http_status : 200);
    audit_record_set_texts(&ar, g->include_text ? rec->prompt_text : NULL, rec->prompt_len,
                           g->include_text ? rec->response_text : NULL, rec->response_len);
    if ((!g->include_text || !rec->prompt_text) && rec->prompt_sha256)
        memcpy(ar.prompt_sha256, rec->prompt_sha256, AUDIT_HASH_SIZE);
    if ((!g->include_text || !rec->response_text) && rec->response_sha256)
        memcpy(ar.response_sha256, rec->response_sha256, AUDIT_HASH_SIZE);
    uint64_t idx = 0;
    if (audit_append(g->audit, &ar, &idx) == 0 && g->signing_key && (idx + 1) % HEAD_EVERY == 0)
        audit_sign_head(g->audit, g->signing_key, u.ts_ms, NULL);
}

#define QUEUE_MAX 65536  /* beyond this, the request thread writes its record itself */

static void *writer_main(void *arg)
{
    struct governance *g = arg;
    pthread_mutex_lock(&g->qmu);
    for (;;) {
        while (!g->q_head && !g->stopping)
            pthread_cond_wait(&g->qcv, &g->qmu);
        if (!g->stopping) {
            /* Let a few milliseconds of records gather: one wake-up writes them all. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 2000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            while (!g->stopping && pthread_cond_timedwait(&g->qcv, &g->qmu, &ts) == 0)
                ;
        }
        struct pending *batch = g->q_head;
        g->q_head = g->q_tail = NULL;
        g->q_len = 0;
        const bool stop = g->stopping;
        pthread_mutex_unlock(&g->qmu);
        while (batch) {
            struct pending *p = batch;
            batch = p->next;
            write_record(g, &p->adm, &p->rec);
            free(p->texts);
            free(p);
        }
        pthread_mutex_lock(&g->qmu);
        if (stop && !g->q_head)
            break;
    }
    pthread_mutex_unlock(&g->qmu);
    return NULL;
}

static const char *keep(char *dst, size_t cap, const char *src)
{
    if (!src)
        return NULL;
    snprintf(dst, cap, "%s", src);
    return dst;
}

void govern_finish(struct governance *g, const struct admission *adm, const struct govern_record *rec)
{
    if (!g)
        return;
    struct pending *p = calloc(1, sizeof(*p));
    pthread_mutex_lock(&g->qmu);
    const bool queue = p && g->writer_started && !g->stopping && g->q_len < QUEUE_MAX;
    pthread_mutex_unlock(&g->qmu);
    if (!queue) {
        free(p);
        write_record(g, adm, rec);
        return;
    }
    p->adm = *adm;
    p->rec = *rec;
    p->rec.request_id = keep(p->strs[0], sizeof(p->strs[0]), rec->request_id);
    p->rec.model = keep(p->strs[1], sizeof(p->strs[1]), rec->model);
    p->rec.target = keep(p->strs[2], sizeof(p->strs[2]), rec->target);
    p->rec.target_kind = keep(p->strs[3], sizeof(p->strs[3]), rec->target_kind);
    p->rec.privacy = keep(p->strs[4], sizeof(p->strs[4]), rec->privacy);
    p->rec.outcome = keep(p->strs[5], sizeof(p->strs[5]), rec->outcome);
    if (rec->prompt_sha256) {
        memcpy(p->prompt_sha, rec->prompt_sha256, 32);
        p->rec.prompt_sha256 = p->prompt_sha;
    }
    if (rec->response_sha256) {
        memcpy(p->response_sha, rec->response_sha256, 32);
        p->rec.response_sha256 = p->response_sha;
    }
    p->rec.prompt_text = p->rec.response_text = NULL;
    p->rec.prompt_len = p->rec.response_len = 0;
    if (g->include_text && (rec->prompt_text || rec->response_text)) {
        const size_t pl = rec->prompt_text ? rec->prompt_len : 0;
        const size_t rl = rec->response_text ? rec->response_len : 0;
        if ((p->texts = malloc(pl + rl + 1))) {
            memcpy(p->texts, rec->prompt_text ? rec->prompt_text : "", pl);
            memcpy(p->texts + pl, rec->response_text ? rec->response_text : "", rl);
            if (rec->prompt_text) {
                p->rec.prompt_text = p->texts;
                p->rec.prompt_len = pl;
            }
            if (rec->response_text) {
                p->rec.response_text = p->texts + pl;
                p->rec.response_len = rl;
            }
        }
    }
    pthread_mutex_lock(&g->qmu);
    if (g->q_tail)
        g->q_tail->next = p;
    else
        g->q_head = p;
    g->q_tail = p;
    g->q_len++;
    if (g->q_len == 1)
        pthread_cond_signal(&g->qcv);  /* the writer sleeps only on an empty queue */
    pthread_mutex_unlock(&g->qmu);
}
