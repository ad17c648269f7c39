/* Upstream plumbing shared by every provider: libcurl handles and sharing, timeouts and
 * cancellation, the SSE parser, and the mapping of failures to results and client errors. */
#include "gateway/upstream_impl.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POOL_IDLE_MAX 16      /* idle handle pairs kept for reuse */
#define POLL_MS 25            /* longest wait between timeout / gone() checks */
#define MAX_RETRY_AFTER_MS (24 * 3600 * 1000)
#define USER_AGENT "tandem/0.1"

const char *upstream_strerror(int err)
{
    switch (err) {
    case UPSTREAM_OK: return "ok";
    case UPSTREAM_E_ARG: return "invalid argument";
    case UPSTREAM_E_NOMEM: return "out of memory";
    case UPSTREAM_E_CONNECT: return "cannot connect to the upstream";
    case UPSTREAM_E_TIMEOUT: return "the upstream timed out";
    case UPSTREAM_E_HTTP: return "the upstream answered an HTTP error";
    case UPSTREAM_E_PROTOCOL: return "unreadable or truncated upstream answer";
    case UPSTREAM_E_CANCELLED: return "cancelled: the client left";
    default: return "unknown upstream error";
    }
}

/* ---- bounded buffers ---- */

int up__buf_put(struct up_buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return UPSTREAM_E_PROTOCOL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return UPSTREAM_E_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void up__buf_reset(struct up_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void up__buf_free(struct up_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- SSE ---- */

void up__sse_init(struct up_sse *s, up_sse_event_fn on_event, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->line.max = UP_MAX_SSE_LINE;
    s->data.max = UP_MAX_SSE_DATA;
    s->on_event = on_event;
    s->ud = ud;
}

void up__sse_free(struct up_sse *s)
{
    up__buf_free(&s->line);
    up__buf_free(&s->data);
}

static int sse_dispatch(struct up_sse *s)
{
    int rc = 0;
    if (s->has_data) {
        size_t n = s->data.len;
        if (n && s->data.data[n - 1] == '\n')
            n--;
        if (s->data.data)
            s->data.data[n] = 0;
        rc = s->on_event(s->ud, s->event[0] ? s->event : "message",
                         s->data.data ? s->data.data : "", n);
    }
    up__buf_reset(&s->data);
    s->has_data = false;
    s->event[0] = 0;
    return rc;
}

static int sse_line(struct up_sse *s)
{
    const char *line = s->line.data ? s->line.data : "";
    size_t len = s->line.len;
    int rc = 0;
    if (len == 0)
        return sse_dispatch(s);
    if (line[0] == ':')
        goto out; /* a comment (keep-alive) */
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && !memcmp(line, "data", 4)) {
        rc = up__buf_put(&s->data, val, vlen);
        if (!rc)
            rc = up__buf_put(&s->data, "\n", 1);
        s->has_data = true;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
        size_t n = vlen < sizeof(s->event) - 1 ? vlen : sizeof(s->event) - 1;
        memcpy(s->event, val, n);
        s->event[n] = 0;
    } /* id, retry and unknown fields are ignored */
out:
    up__buf_reset(&s->line);
    return rc;
}

int up__sse_feed(struct up_sse *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->after_cr) {
            s->after_cr = false;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (j > i) {
            int rc = up__buf_put(&s->line, p + i, j - i);
            if (rc)
                return rc;
        }
        if (j == n)
            break;
        s->after_cr = p[j] == '\r';
        i = j + 1;
        int rc = sse_line(s);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- JSON and header helpers ---- */

json_t *up__json_num(float f)
{
    char tmp[32];
    if (!isfinite(f))
        return NULL;
    snprintf(tmp, sizeof(tmp), "%.6g", (double)f);
    return json_real(strtod(tmp, NULL));
}

int up__json_count(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return 0;
    if (!(d > 0))
        return 0;
    return d >= (double)INT_MAX ? INT_MAX : (int)d;
}

bool up__json_set(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return false;
    return json_object_set_new(obj, key, value) == 0;
}

static bool message_of(json_t *root, char *out, size_t cap)
{
    if (json_is_array(root))
        root = json_array_get(root, 0);
    json_t *e = json_object_get(root, "error");
    json_t *m = NULL;
    if (json_is_object(e))
        m = json_object_get(e, "message");
    else if (json_is_string(e))
        m = e;
    if (!json_is_string(m))
        m = json_object_get(root, "message");
    if (!json_is_string(m) || !json_string_length(m))
        return false;
    snprintf(out, cap, "%s", json_string_value(m));
    return true;
}

bool up__error_message(const char *body, size_t len, char *out, size_t cap)
{
    if (!body || !len || !cap)
        return false;
    json_t *root = json_loadb(body, len, 0, NULL);
    bool ok = root && message_of(root, out, cap);
    json_decref(root);
    return ok;
}

int up__header(struct up_http *h, const char *name, const char *value)
{
    char line[8192];
    for (const unsigned char *q = (const unsigned char *)value; *q; q++)
        if (*q < 0x20 || *q == 0x7f)
            return UPSTREAM_E_ARG;
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof(line))
        return UPSTREAM_E_ARG;
    struct curl_slist *l = curl_slist_append(h->headers, line);
    explicit_bzero(line, sizeof(line)); /* it may hold a key */
    if (!l)
        return UPSTREAM_E_NOMEM;
    h->headers = l;
    return 0;
}

int up__body(struct up_http *h, json_t *doc)
{
    if (!doc)
        return UPSTREAM_E_NOMEM;
    h->body = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!h->body)
        return UPSTREAM_E_NOMEM;
    if (strlen(h->body) > UP_MAX_REQUEST_BODY)
        return UPSTREAM_E_ARG;
    return 0;
}

/* ---- errors and results ---- */

/* Replaces every word of msg that carries a piece of the key (its first or last 8 bytes, or
 * all of a short key) with "[redacted]": vendors echo keys, partly masked, in 401 messages. */
static void redact(char *msg, size_t cap, const char *key)
{
    size_t klen = key ? strlen(key) : 0;
    if (!klen)
        return;
    char head[9] = {0}, tail[9] = {0};
    size_t piece = klen < 8 ? klen : 8;
    memcpy(head, key, piece);
    memcpy(tail, key + klen - piece, piece);
    char out[sizeof(((struct api_error *)0)->message)];
    size_t o = 0;
    const char *p = msg;
    while (*p && o + 1 < sizeof(out)) {
        if (isspace((unsigned char)*p)) {
            out[o++] = *p++;
            continue;
        }
        const char *w = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t wl = (size_t)(p - w);
        char word[sizeof(out)];
        size_t cl = wl < sizeof(word) - 1 ? wl : sizeof(word) - 1;
        memcpy(word, w, cl);
        word[cl] = 0;
        const char *rep = word;
        if (strstr(word, head) || strstr(word, tail))
            rep = "[redacted]";
        size_t rl = strlen(rep);
        if (rl > sizeof(out) - 1 - o)
            rl = sizeof(out) - 1 - o;
        memcpy(out + o, rep, rl);
        o += rl;
    }
    out[o] = 0;
    snprintf(msg, cap, "%s", out);
    explicit_bzero(head, sizeof(head));
    explicit_bzero(tail, sizeof(tail));
}

static void set_error(struct up_call *c, int status, const char *type, const char *code,
                      const char *fmt, va_list ap)
{
    char msg[sizeof(c->res->error.message)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    redact(msg, sizeof(msg), c->up->api_key);
    api_error_set(&c->res->error, status, type, code, NULL, "%s", msg);
}

static void error_set(struct up_call *c, int status, const char *type, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void error_set(struct up_call *c, int status, const char *type, const char *code,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(c, status, type, code, fmt, ap);
    va_end(ap);
}

int up__fail(struct up_call *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(c, 502, "server_error", "upstream_error", fmt, ap);
    va_end(ap);
    if (!c->fail)
        c->fail = err;
    return err;
}

int up__bad_request(struct up_call *c, const char *param, const char *fmt, ...)
{
    char msg[sizeof(c->res->error.message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_error_set(&c->res->error, 400, "invalid_request_error", NULL, param, "%s", msg);
    return UPSTREAM_E_ARG;
}

int up__completion_prompt(struct up_call *c, const char **out)
{
    if (c->req->n_prompt_tokens || !c->req->prompt)
        return up__bad_request(c, "prompt",
                               "Token-id prompts cannot be sent to a provider; send text.");
    *out = c->req->prompt;
    return 0;
}

void up__emit(struct up_call *c, const char *text, size_t len)
{
    if (!len)
        return;
    c->res->started = true;
    c->sink->text(c->sink->ud, text, len, NULL, 0);
}

/* ---- the pool ---- */

struct handle {
    CURL *easy;
    CURLM *multi; /* owns the connection cache of this handle: reused across calls */
};

struct upstream_pool {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t idle_lock;
    struct handle idle[POOL_IDLE_MAX];
    int n_idle;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    struct upstream_pool *p = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&p->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    struct upstream_pool *p = ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&p->locks[data]);
}

/* The share holds DNS answers and TLS sessions for every thread. Connections are not put in
 * it: libcurl documents that sharing its connection cache between concurrent threads is not
 * supported. Each handle pair keeps its own live connections instead, and pairs go back to a
 * free-list, so consecutive calls reuse warm connections (and HTTP/2 sessions). */
int upstream_pool_new(struct upstream_pool **out)
{
    if (!out)
        return UPSTREAM_E_ARG;
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return UPSTREAM_E_NOMEM;
    struct upstream_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return UPSTREAM_E_NOMEM;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&p->locks[i], NULL);
    pthread_mutex_init(&p->idle_lock, NULL);
    p->share = curl_share_init();
    if (!p->share || curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock) ||
        curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
        curl_share_setopt(p->share, CURLSHOPT_USERDATA, p) ||
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) {
        upstream_pool_free(p);
        return UPSTREAM_E_NOMEM;
    }
    *out = p;
    return 0;
}

static void handle_free(struct handle *h)
{
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    h->easy = NULL;
    h->multi = NULL;
}

void upstream_pool_free(struct upstream_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        handle_free(&p->idle[i]);
    if (p->share)
        curl_share_cleanup(p->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&p->locks[i]);
    pthread_mutex_destroy(&p->idle_lock);
    free(p);
}

static int handle_get(struct upstream_pool *p, struct handle *h)
{
    pthread_mutex_lock(&p->idle_lock);
    if (p->n_idle) {
        *h = p->idle[--p->n_idle];
        pthread_mutex_unlock(&p->idle_lock);
        curl_easy_reset(h->easy); /* keeps live connections and caches */
        return 0;
    }
    pthread_mutex_unlock(&p->idle_lock);
    h->easy = curl_easy_init();
    h->multi = curl_multi_init();
    if (!h->easy || !h->multi) {
        handle_free(h);
        return UPSTREAM_E_NOMEM;
    }
    return 0;
}

/* Returns the pair to the free-list; `reusable` is false after a call that was cut short
 * mid-transfer (libcurl closes that connection anyway, but keep no doubt about it). */
static void handle_put(struct upstream_pool *p, struct handle *h, bool reusable)
{
    if (reusable) {
        pthread_mutex_lock(&p->idle_lock);
        if (p->n_idle < POOL_IDLE_MAX) {
            p->idle[p->n_idle++] = *h;
            pthread_mutex_unlock(&p->idle_lock);
            return;
        }
        pthread_mutex_unlock(&p->idle_lock);
    }
    handle_free(h);
}

/* ---- one transfer ---- */

enum abort_reason { ABORT_NONE, ABORT_CANCELLED, ABORT_FIRST_BYTE, ABORT_TOTAL };

struct xfer {
    struct up_call *call;
    const struct up_provider *prov;
    const char *name;      /* the provider as configured ("mistral" ...) for messages */
    CURL *easy;
    double t0;             /* monotonic ms when the request started */
    double t_first;        /* when the first response byte arrived, 0 before */
    double t_sent;         /* when the request body was fully sent, 0 before */
    enum abort_reason abort;
    int mode;              /* 0 undecided, 1 SSE, 2 buffered body */
    long status;
    struct up_buf body;
    struct up_sse sse;
    int retry_after_ms;
    bool have_retry_ms;    /* a retry-after-ms header wins over Retry-After */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void first_byte(struct xfer *x)
{
    if (x->t_first == 0)
        x->t_first = now_ms();
}

/* Decides whether the transfer must stop now: the client left, no answer byte within
 * first_byte_ms of the request being sent, or the whole exchange over total_ms. */
static enum abort_reason check_abort(struct xfer *x)
{
    const struct up_call *c = x->call;
    if (x->abort != ABORT_NONE)
        return x->abort;
    if (c->sink->gone && c->sink->gone(c->sink->ud))
        return x->abort = ABORT_CANCELLED;
    double t = now_ms();
    const struct gw_timeouts *to = &c->up->timeouts;
    if (x->t_first == 0 && to->first_byte_ms > 0) {
        /* The clock starts when the request went out: the body fully uploaded, else the
         * moment the connection was ready (libcurl's pre-transfer time). */
        double sent = x->t_sent;
        curl_off_t pre_us = 0;
        if (sent == 0 &&
            curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre_us) == CURLE_OK &&
            pre_us > 0)
            sent = x->t0 + (double)pre_us / 1e3;
        if (sent > 0 && t - sent > to->first_byte_ms)
            return x->abort = ABORT_FIRST_BYTE;
    }
    if (to->total_ms > 0 && t - x->t0 > to->total_ms)
        return x->abort = ABORT_TOTAL;
    return ABORT_NONE;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    struct xfer *x = ud;
    if (x->t_sent == 0 && ultotal > 0 && ulnow >= ultotal)
        x->t_sent = now_ms();
    return check_abort(x) != ABORT_NONE;
}

static int parse_retry_after(const char *v, size_t n, bool in_ms)
{
    char tmp[64];
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (!n || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    char *end;
    double d = strtod(tmp, &end);
    if (end != tmp && *end == 0) {
        if (!(d >= 0))
            return -1;
        d = in_ms ? d : d * 1000.0;
        return d > MAX_RETRY_AFTER_MS ? MAX_RETRY_AFTER_MS : (int)ceil(d);
    }
    if (in_ms)
        return -1;
    time_t when = curl_getdate(tmp, NULL); /* an HTTP-date */
    if (when < 0)
        return -1;
    double ms = difftime(when, time(NULL)) * 1000.0;
    if (ms < 0)
        ms = 0;
    return ms > MAX_RETRY_AFTER_MS ? MAX_RETRY_AFTER_MS : (int)ms;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
                      size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
        return false;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return true;
}

static size_t header_cb(char *p, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems;
    const char *v;
    size_t vn;
    first_byte(x);
    if (n >= 5 && !memcmp(p, "HTTP/", 5)) { /* a new response (after 100 Continue) */
        x->retry_after_ms = 0;
        x->have_retry_ms = false;
    } else if (header_is(p, n, "retry-after-ms", &v, &vn)) {
        int ms = parse_retry_after(v, vn, true);
        if (ms >= 0) {
            x->retry_after_ms = ms;
            x->have_retry_ms = true;
        }
    } else if (!x->have_retry_ms && header_is(p, n, "retry-after", &v, &vn)) {
        int ms = parse_retry_after(v, vn, false);
        if (ms >= 0)
            x->retry_after_ms = ms;
    }
    return n;
}

static int sse_event_cb(void *ud, const char *event, const char *data, size_t len)
{
    struct xfer *x = ud;
    if (x->call->terminal)
        return 0; /* anything after the terminal event is ignored */
    return x->prov->event(x->call, event, data, len);
}

static size_t write_cb(char *p, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems;
    first_byte(x);
    if (!x->mode) {
        const char *ct = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
        bool ok = x->status >= 200 && x->status < 300;
        /* A server that answers a stream request with plain JSON is read as a whole. */
        x->mode = ok && x->call->stream && ct && !strncasecmp(ct, "text/event-stream", 17)
                      ? 1
                      : 2;
        x->body.max = ok ? UP_MAX_BODY : UP_MAX_ERROR_BODY;
    }
    if (x->mode == 1) {
        int rc = up__sse_feed(&x->sse, p, n);
        if (rc) {
            if (!x->call->fail) {
                if (rc == UPSTREAM_E_NOMEM)
                    x->call->fail = rc;
                else
                    up__fail(x->call, UPSTREAM_E_PROTOCOL,
                             "upstream %s sent an unreadable event stream", x->name);
            }
            return 0;
        }
        return n;
    }
    int rc = up__buf_put(&x->body, p, n);
    if (rc) {
        if (x->status >= 200 && x->status < 300) {
            if (rc == UPSTREAM_E_NOMEM)
                x->call->fail = rc;
            else
                up__fail(x->call, UPSTREAM_E_PROTOCOL,
                         "upstream %s answer is over %u bytes", x->name,
                         (unsigned)UP_MAX_BODY);
            return 0;
        }
        /* An error body past the cap: keep its start, drop the rest. */
    }
    return n;
}

static int setup(struct xfer *x, struct up_http *h, struct upstream_pool *pool, char *errbuf)
{
    const struct up_call *c = x->call;
    const struct gw_timeouts *to = &c->up->timeouts;
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                      \
    do {                                                                                   \
        if (rc == CURLE_OK)                                                                \
            rc = curl_easy_setopt(e, opt, val);                                            \
    } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, h->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(h->body));
    SET(CURLOPT_HTTPHEADER, h->headers);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SHARE, pool->share);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(to->connect_ms > 0 ? to->connect_ms : 10000));
    if (to->total_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, (long)to->total_ms);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    SET(CURLOPT_XFERINFODATA, x);
    SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
    if (rc == CURLE_OUT_OF_MEMORY)
        return UPSTREAM_E_NOMEM;
    /* CURLE_UNSUPPORTED_PROTOCOL from PROTOCOLS_STR or an unknown option on an old libcurl:
     * only HTTP/2 is optional; everything else must hold. */
    return rc == CURLE_OK ? 0 : UPSTREAM_E_ARG;
}

/* Runs the transfer with our own multi loop so that gone() and the first-byte timeout are
 * checked every POLL_MS even while libcurl waits (the progress callback alone may be called
 * only once a second when nothing moves). */
static CURLcode perform(struct xfer *x, CURLM *m)
{
    CURLcode result = CURLE_OK;
    if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    int running = 1;
    bool finished = false;
    while (!finished) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == x->easy) {
                result = msg->data.result;
                finished = true;
            }
        if (finished || !running) {
            finished = true;
            break;
        }
        if (check_abort(x) != ABORT_NONE) {
            result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (curl_multi_poll(m, NULL, 0, POLL_MS, NULL) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
    }
    curl_multi_remove_handle(m, x->easy);
    return result;
}

static const char *http_error_type(long status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return "invalid_request_error";
    }
}

/* An upstream HTTP error status -> result and the client's error. */
static int map_http(struct xfer *x)
{
    struct up_call *c = x->call;
    struct upstream_result *res = c->res;
    const char *name = x->name;
    long st = x->status;
    char msg[400];
    bool have = up__error_message(x->body.data, x->body.len, msg, sizeof(msg));
    res->retry_after_ms = x->retry_after_ms;
    res->retryable = st == 408 || st == 409 || st == 429 || st >= 500;
    if (st >= 500 || st < 400) {
        if (have)
            error_set(c, 502, "server_error", "upstream_error",
                      "upstream error: %s answered HTTP %ld: %s", name, st, msg);
        else
            error_set(c, 502, "server_error", "upstream_error",
                      "upstream error: %s answered HTTP %ld", name, st);
        return UPSTREAM_E_HTTP;
    }
    if (have)
        error_set(c, (int)st, http_error_type(st), st == 429 ? "rate_limit_exceeded" : NULL,
                  "%s", msg);
    else
        error_set(c, (int)st, http_error_type(st), st == 429 ? "rate_limit_exceeded" : NULL,
                  "upstream %s answered HTTP %ld", name, st);
    return UPSTREAM_E_HTTP;
}

/* A transport failure (no usable HTTP answer) -> result and the client's error. */
static int map_curl(struct xfer *x, CURLcode cc, const char *errbuf)
{
    struct up_call *c = x->call;
    struct upstream_result *res = c->res;
    const char *name = x->name;
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    bool got_byte = x->t_first != 0;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t conn = 0;
        curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &conn);
        if (conn == 0) {
            res->retryable = true;
            error_set(c, 504, "server_error", "upstream_timeout",
                      "upstream %s: connection timed out (%s)", name, detail);
            return UPSTREAM_E_CONNECT;
        }
        res->retryable = !got_byte;
        error_set(c, 504, "server_error", "upstream_timeout",
                  "upstream %s did not finish within %d ms", name, c->up->timeouts.total_ms);
        return UPSTREAM_E_TIMEOUT;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SEND_ERROR:
        res->retryable = true;
        error_set(c, 502, "server_error", "upstream_unreachable",
                  "upstream %s unreachable: %s", name, detail);
        return UPSTREAM_E_CONNECT;
    case CURLE_OUT_OF_MEMORY:
        error_set(c, 500, "server_error", NULL, "out of memory");
        return UPSTREAM_E_NOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        error_set(c, 502, "server_error", "upstream_error",
                  "upstream %s: bad base_url (%s)", name, detail);
        return UPSTREAM_E_ARG;
    default:
        break;
    }
    /* Closed, reset, or broken mid-way: before any byte it is a connection failure. */
    if (!got_byte) {
        res->retryable = true;
        error_set(c, 502, "server_error", "upstream_unreachable",
                  "upstream %s closed the connection without answering: %s", name, detail);
        return UPSTREAM_E_CONNECT;
    }
    res->retryable = !res->started;
    error_set(c, 502, "server_error", "upstream_error",
              "upstream error: %s answer broke off: %s", name, detail);
    return UPSTREAM_E_PROTOCOL;
}

static int map_abort(struct xfer *x)
{
    struct up_call *c = x->call;
    const char *name = x->name;
    switch (x->abort) {
    case ABORT_CANCELLED:
        error_set(c, 499, "cancelled", NULL, "the client closed the request");
        return UPSTREAM_E_CANCELLED;
    case ABORT_FIRST_BYTE:
        c->res->retryable = true;
        error_set(c, 504, "server_error", "upstream_timeout",
                  "upstream %s sent no answer within %d ms", name,
                  c->up->timeouts.first_byte_ms);
        return UPSTREAM_E_TIMEOUT;
    default:
        c->res->retryable = x->t_first == 0;
        error_set(c, 504, "server_error", "upstream_timeout",
                  "upstream %s did not finish within %d ms", name, c->up->timeouts.total_ms);
        return UPSTREAM_E_TIMEOUT;
    }
}

/* A complete 2xx answer: parse it (buffered) or check the stream reached its end. */
static int finish_ok(struct xfer *x)
{
    struct up_call *c = x->call;
    if (x->mode == 1) {
        if (!c->terminal) {
            c->res->retryable = !c->res->started;
            return up__fail(c, UPSTREAM_E_PROTOCOL,
                            "upstream error: %s stream ended before its last event",
                            x->name);
        }
        return 0;
    }
    json_error_t jerr;
    json_t *root = x->body.len ? json_loadb(x->body.data, x->body.len, 0, &jerr) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: %s answer is not JSON",
                        x->name);
    }
    int rc = x->prov->parse(c, root);
    json_decref(root);
    return rc;
}

static bool valid_request_id(const char *id)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= 200)
            return false;
    return n > 0;
}

static const struct up_provider *const PROVIDERS[GW_PROVIDER_COUNT] = {
    [GW_PROVIDER_OPENAI] = &up__openai,
    [GW_PROVIDER_ANTHROPIC] = &up__anthropic,
    [GW_PROVIDER_GEMINI] = &up__gemini,
    [GW_PROVIDER_MISTRAL] = &up__openai,
    [GW_PROVIDER_OPENAI_COMPATIBLE] = &up__openai,
};

int upstream_call(struct upstream_pool *pool, const struct gw_upstream *up,
                  const struct api_request *req, const struct gen_sink *sink,
                  const char *request_id, struct upstream_result *res)
{
    if (!res)
        return UPSTREAM_E_ARG;
    memset(res, 0, sizeof(*res));
    static const struct gw_upstream no_up;
    struct up_call c = {.up = up ? up : &no_up, .req = req, .sink = sink, .res = res};
    if (!pool || !up || !req || !sink || !sink->text || !sink->done || !up->base_url ||
        !up->model || (unsigned)up->provider >= GW_PROVIDER_COUNT) {
        api_error_set(&res->error, 500, "server_error", NULL, NULL,
                      "upstream call without a complete configuration");
        return UPSTREAM_E_ARG;
    }
    if (req->kind == API_EMBEDDING)
        return up__bad_request(&c, NULL, "Embeddings are not supported by upstream providers.");
    const struct up_provider *prov = PROVIDERS[up->provider];
    struct up_http h;
    memset(&h, 0, sizeof(h));
    struct handle hd = {0};
    struct xfer x = {.call = &c, .prov = prov, .name = gw_provider_name(up->provider)};
    char errbuf[CURL_ERROR_SIZE] = {0};
    bool reusable = false;
    int rc;
    up__sse_init(&x.sse, sse_event_cb, &x);
    x.body.max = UP_MAX_BODY;
    if (sink->gone && sink->gone(sink->ud)) {
        x.abort = ABORT_CANCELLED;
        rc = map_abort(&x);
        goto out;
    }
    rc = prov->build(&c, &h);
    if (rc == UPSTREAM_E_NOMEM)
        error_set(&c, 500, "server_error", NULL, "out of memory");
    else if (rc && !res->error.status)
        error_set(&c, 500, "server_error", NULL,
                  "the request cannot be sent to %s (bad header or size)", x.name);
    if (rc)
        goto out;
    if ((rc = up__header(&h, "Content-Type", "application/json")) ||
        (rc = up__header(&h, "Accept", c.stream ? "text/event-stream" : "application/json")) ||
        (rc = up__header(&h, "Expect", ""))) {
        error_set(&c, 500, "server_error", NULL, "out of memory");
        goto out;
    }
    if (request_id && valid_request_id(request_id) &&
        (rc = up__header(&h, "X-Request-Id", request_id))) {
        error_set(&c, 500, "server_error", NULL, "out of memory");
        goto out;
    }
    if ((rc = handle_get(pool, &hd))) {
        error_set(&c, 500, "server_error", NULL, "out of memory");
        goto out;
    }
    x.easy = hd.easy;
    if ((rc = setup(&x, &h, pool, errbuf))) {
        error_set(&c, 502, "server_error", "upstream_error",
                  "upstream %s: the base_url or an option is not supported by libcurl",
                  x.name);
        goto out;
    }
    x.t0 = now_ms();
    CURLcode cc = perform(&x, hd.multi);
    double t_end = now_ms();
    reusable = cc == CURLE_OK;
    curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &x.status);
    res->http_status = (int)x.status;
    res->ttfb_ms = x.t_first ? x.t_first - x.t0 : 0;
    res->latency_ms = t_end - x.t0;
    if (c.fail == UPSTREAM_E_NOMEM) {
        rc = UPSTREAM_E_NOMEM;
        error_set(&c, 500, "server_error", NULL, "out of memory");
    } else if (c.terminal && c.fail == 0 && x.abort != ABORT_CANCELLED) {
        rc = 0; /* the stream ended properly; a broken close after it does not matter */
    } else if (x.abort != ABORT_NONE) {
        rc = map_abort(&x);
    } else if (c.fail) {
        rc = c.fail;
        if (!res->started && rc == UPSTREAM_E_PROTOCOL && c.terminal == false &&
            x.mode == 1)
            res->retryable = true;
    } else if (x.status && (x.status < 200 || x.status >= 300)) {
        rc = map_http(&x);
    } else if (cc != CURLE_OK) {
        rc = map_curl(&x, cc, errbuf);
    } else {
        rc = finish_ok(&x);
    }
    if (rc == 0) {
        res->prompt_tokens = c.prompt_tokens;
        res->completion_tokens = c.completion_tokens;
        memset(&res->error, 0, sizeof(res->error));
        sink->done(sink->ud, c.finish ? c.finish : "stop", c.prompt_tokens, c.cached_tokens,
                   c.completion_tokens);
    } else {
        res->prompt_tokens = c.prompt_tokens;
        res->completion_tokens = c.completion_tokens;
        if (res->started)
            res->retryable = false;
    }
out:
    if (hd.easy)
        handle_put(pool, &hd, reusable); /* reset before its next use */
    for (struct curl_slist *l = h.headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data)); /* auth headers hold the key */
    curl_slist_free_all(h.headers);
    free(h.body);
    up__buf_free(&x.body);
    up__sse_free(&x.sse);
    return rc;
}
