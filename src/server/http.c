/* HTTP/1.1 server over libmicrohttpd (thread per connection): bounded bodies, streams, stop. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_ID_MAX 128     /* longest client request id we accept */
#define HTTP_MAX_HEADERS 32 /* response headers a handler may add */
#define HTTP_HEADER_NAME_MAX 256
#define HTTP_HEADER_VALUE_MAX 8192
#define HTTP_CONN_MEMORY (64 * 1024)   /* per-connection MHD pool: request line + headers */
#define HTTP_STREAM_BLOCK 16384        /* advisory size MHD asks the stream reader for */
#define HTTP_READER_SLICE_MS 250       /* how often an idle stream reader looks at its socket */
#define HTTP_DISCARD_MIN (1024 * 1024) /* over-cap chunked bytes swallowed before hanging up */

static const char KEEPALIVE[] = ":keep-alive\n\n";

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_config cfg;
    http_handler_fn fn;
    void *ud;
    struct sockaddr_storage addr;
    int port;
    atomic_bool stopping;
    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t cv;           /* signalled when active or n_streams drops */
    unsigned active;             /* requests inside the user handler */
    unsigned n_streams;          /* streams MHD still holds */
    bool cut;                    /* grace expired: every stream is cut */
    struct http_stream *streams; /* doubly linked list of streams MHD still holds */
    pthread_mutex_t log_mu;
    char log[256]; /* last message from MHD (reported by http_server_start) */
};

struct http_header {
    char *name, *value;
};

struct http_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method, *path; /* owned by MHD, valid for the request */
    char id[HTTP_ID_MAX + 1];
    char *body; /* NUL-terminated, at most max_body_bytes + 1 bytes */
    size_t body_len, body_alloc;
    bool too_large;   /* body exceeded the cap: answer 413 at the end */
    size_t discarded; /* over-cap bytes swallowed */
    bool queued;      /* a response went to MHD already */
    struct http_header headers[HTTP_MAX_HEADERS];
    int n_headers;
    struct MHD_Response *resp; /* the handler's answer, not yet queued */
    int status;
};

struct http_stream {
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* data queued, producer closed, or stream cut */
    int refs;           /* producer + MHD */
    bool mhd_gone;      /* MHD released the response: fd no longer ours to touch */
    bool producer_closed;
    bool peer_closed;            /* the socket said the client hung up */
    bool overflow;               /* more than cap unsent: the client stopped reading */
    bool cut;                    /* the server stopped past its grace period */
    bool sse;                    /* text/event-stream: keep-alive comments allowed */
    int fd;                      /* the connection's socket, valid while !mhd_gone */
    struct MHD_Connection *conn; /* touched only from the reader, on the connection's thread */
    unsigned idle_timeout_s;     /* restored on the connection when the stream ends */
    char *buf;                   /* unsent bytes are buf[head, tail) */
    size_t head, tail, alloc;
    size_t cap;
    unsigned keepalive_s;
    struct timespec last_send;
    struct http_server *srv;         /* used only by MHD's callbacks (server outlives them) */
    struct http_stream *prev, *next; /* in srv->streams, under srv->mu */
};

const char *http_strerror(int err)
{
    switch (err) {
    case HTTP_OK:
        return "ok";
    case HTTP_E_ARG:
        return "invalid argument";
    case HTTP_E_NOMEM:
        return "out of memory";
    case HTTP_E_CLOSED:
        return "client connection closed";
    case HTTP_E_LISTEN:
        return "cannot listen";
    default:
        return "unknown error";
    }
}

void http_config_default(struct http_config *cfg)
{
    if (!cfg)
        return;
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->max_body_bytes = 4u << 20;
    cfg->max_connections = 256;
    cfg->idle_timeout_s = 60;
    cfg->sse_keepalive_s = 15;
    cfg->stream_buffer_cap = 4u << 20;
}

/* ---- small helpers ---- */

static void mono_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

static int64_t ts_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

static struct timespec ms_ts(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    return ts;
}

/* Condition variables that wait on the monotonic clock (wall-clock jumps do not matter). */
static int cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr))
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc ? -1 : 0;
}

/* Has the peer closed (or reset) the socket? Never reads, never blocks. */
static bool fd_peer_closed(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* RFC 9110 token characters (header names). */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

static void make_request_id(char *out, const char *client)
{
    if (client) {
        size_t n = strnlen(client, HTTP_ID_MAX + 1);
        bool ok = n >= 1 && n <= HTTP_ID_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = client[i] > 0x20 && client[i] < 0x7f;
        if (ok) {
            memcpy(out, client, n);
            out[n] = 0;
            return;
        }
    }
    unsigned char rnd[16];
    size_t got = 0;
    while (got < sizeof(rnd)) {
        ssize_t r = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < sizeof(rnd)) {
        /* No kernel randomness: unique enough from the clock, a counter and the address. */
        static atomic_uint_fast64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = atomic_fetch_add(&counter, 1) ^ (uint64_t)(uintptr_t)out;
        memcpy(rnd, &a, 8);
        memcpy(rnd + 8, &b, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(rnd); i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[2 * sizeof(rnd)] = 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    char msg[sizeof(s->log)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    pthread_mutex_lock(&s->log_mu);
    memcpy(s->log, msg, n + 1);
    pthread_mutex_unlock(&s->log_mu);
    if (getenv("TANDEM_HTTP_DEBUG"))
        fprintf(stderr, "http: %s\n", msg);
}

/* ---- streams ---- */

static void stream_unref(struct http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!last)
        return;
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st->buf);
    free(st);
}

static bool stream_dead_locked(const struct http_stream *st)
{
    return st->mhd_gone || st->peer_closed || st->overflow || st->cut;
}

/* MHD's content reader, on the connection thread: blocks until there is something to send. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_stream *st = cls;
    ssize_t ret;
    (void)pos;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (st->peer_closed || st->overflow || st->cut) {
            ret = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (st->tail > st->head) {
            size_t n = st->tail - st->head;
            if (n > max)
                n = max;
            memcpy(out, st->buf + st->head, n);
            st->head += n;
            if (st->head == st->tail)
                st->head = st->tail = 0;
            mono_now(&st->last_send);
            ret = (ssize_t)n;
            break;
        }
        if (st->producer_closed) {
            /* Back to the idle timeout for the next request on this connection. */
            MHD_set_connection_option(st->conn, MHD_CONNECTION_OPTION_TIMEOUT, st->idle_timeout_s);
            ret = MHD_CONTENT_READER_END_OF_STREAM;
            break;
        }
        struct timespec now;
        mono_now(&now);
        int64_t wake = ts_ms(&now) + HTTP_READER_SLICE_MS;
        if (st->sse && st->keepalive_s) {
            int64_t due = ts_ms(&st->last_send) + (int64_t)st->keepalive_s * 1000;
            if (ts_ms(&now) >= due && max >= sizeof(KEEPALIVE) - 1) {
                memcpy(out, KEEPALIVE, sizeof(KEEPALIVE) - 1);
                st->last_send = now;
                ret = (ssize_t)(sizeof(KEEPALIVE) - 1);
                break;
            }
            if (due < wake)
                wake = due;
        }
        struct timespec until = ms_ts(wake);
        pthread_cond_timedwait(&st->cv, &st->mu, &until);
        /* This is the connection's own thread, so its socket is certainly still open. */
        if (fd_peer_closed(st->fd))
            st->peer_closed = true;
    }
    pthread_mutex_unlock(&st->mu);
    return ret;
}

/* MHD is done with the response (sent, or connection gone): drop its reference. */
static void stream_mhd_free(void *cls)
{
    struct http_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    st->mhd_gone = true;
    st->fd = -1;
    struct http_server *srv = st->srv;
    st->srv = NULL;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (srv) {
        pthread_mutex_lock(&srv->mu);
        if (st->prev)
            st->prev->next = st->next;
        else
            srv->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->prev = st->next = NULL;
        srv->n_streams--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    }
    stream_unref(st);
}

int http_stream_write(struct http_stream *st, const char *data, size_t len)
{
    if (!st || (!data && len))
        return HTTP_E_ARG;
    int rc = HTTP_OK;
    pthread_mutex_lock(&st->mu);
    /* Under the mutex with !mhd_gone, the free callback has not run, so fd is still open. */
    if (!stream_dead_locked(st) && fd_peer_closed(st->fd)) {
        st->peer_closed = true;
        pthread_cond_broadcast(&st->cv);
    }
    if (stream_dead_locked(st) || st->producer_closed) {
        rc = HTTP_E_CLOSED;
        goto out;
    }
    if (len == 0)
        goto out;
    size_t pending = st->tail - st->head;
    if (len > st->cap - pending) {
        /* The client is not reading: cut the response rather than send a stream with a hole. */
        st->overflow = true;
        pthread_cond_broadcast(&st->cv);
        rc = HTTP_E_CLOSED;
        goto out;
    }
    if (len > st->alloc - st->tail) {
        if (st->head) {
            memmove(st->buf, st->buf + st->head, pending);
            st->head = 0;
            st->tail = pending;
        }
        if (len > st->alloc - st->tail) {
            size_t need = pending + len; /* <= cap, no overflow */
            size_t na = st->alloc ? st->alloc : 4096;
            while (na < need)
                na = na > SIZE_MAX / 2 ? need : na * 2;
            if (na > st->cap)
                na = st->cap;
            char *nb = realloc(st->buf, na);
            if (!nb) {
                rc = HTTP_E_NOMEM;
                goto out;
            }
            st->buf = nb;
            st->alloc = na;
        }
    }
    memcpy(st->buf + st->tail, data, len);
    st->tail += len;
    pthread_cond_broadcast(&st->cv);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

bool http_stream_client_gone(const struct http_stream *cst)
{
    if (!cst)
        return true;
    /* The stream object is never const itself; the mutex and flags are shared state. */
    struct http_stream *st = (struct http_stream *)cst;
    pthread_mutex_lock(&st->mu);
    if (!stream_dead_locked(st) && fd_peer_closed(st->fd)) {
        st->peer_closed = true;
        pthread_cond_broadcast(&st->cv); /* let the reader end the response now */
    }
    bool gone = stream_dead_locked(st);
    pthread_mutex_unlock(&st->mu);
    return gone;
}

void http_stream_close(struct http_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->producer_closed = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
}

/* ---- requests ---- */

const char *http_req_method(const struct http_req *r)
{
    return r ? r->method : NULL;
}

const char *http_req_path(const struct http_req *r)
{
    return r ? r->path : NULL;
}

const char *http_req_query(const struct http_req *r, const char *key)
{
    if (!r || !key)
        return NULL;
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    return v ? v : ""; /* "?flag" without '=' is present with an empty value */
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    if (!r || !name)
        return NULL;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
    if (len)
        *len = r ? r->body_len : 0;
    if (!r)
        return NULL;
    return r->body ? r->body : "";
}

const char *http_req_id(const struct http_req *r)
{
    return r ? r->id : NULL;
}

int http_req_add_header(struct http_req *r, const char *name, const char *value)
{
    if (!r || !name || !value || !is_token(name) || has_crlf(value))
        return HTTP_E_ARG;
    if (strlen(name) > HTTP_HEADER_NAME_MAX || strlen(value) > HTTP_HEADER_VALUE_MAX)
        return HTTP_E_ARG;
    /* Framing and the request id belong to this layer. */
    if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Transfer-Encoding") ||
        !strcasecmp(name, "X-Request-Id"))
        return HTTP_E_ARG;
    if (r->n_headers >= HTTP_MAX_HEADERS)
        return HTTP_E_ARG;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return HTTP_E_NOMEM;
    }
    r->headers[r->n_headers++] = (struct http_header){n, v};
    return HTTP_OK;
}

static bool status_ok(int status)
{
    return status >= 100 && status <= 599;
}

static bool content_type_ok(const char *ct)
{
    return !ct || (!has_crlf(ct) && strlen(ct) <= HTTP_HEADER_VALUE_MAX);
}

int http_respond(struct http_req *r, int status, const char *content_type, const char *body,
                 size_t len)
{
    if (!r || r->resp || r->queued || !status_ok(status) || (!body && len) ||
        !content_type_ok(content_type))
        return HTTP_E_ARG;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(len ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return HTTP_E_NOMEM;
    if (content_type && MHD_add_response_header(resp, "Content-Type", content_type) != MHD_YES) {
        MHD_destroy_response(resp);
        return HTTP_E_NOMEM;
    }
    r->resp = resp;
    r->status = status;
    return HTTP_OK;
}

int http_stream_open(struct http_req *r, int status, const char *content_type,
                     struct http_stream **out)
{
    if (out)
        *out = NULL;
    if (!r || !out || r->resp || r->queued || !status_ok(status) || !content_type_ok(content_type))
        return HTTP_E_ARG;
    struct http_server *srv = r->srv;
    struct http_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return HTTP_E_NOMEM;
    if (pthread_mutex_init(&st->mu, NULL)) {
        free(st);
        return HTTP_E_NOMEM;
    }
    if (cond_init_mono(&st->cv)) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return HTTP_E_NOMEM;
    }
    st->refs = 2;
    st->cap = srv->cfg.stream_buffer_cap;
    st->keepalive_s = srv->cfg.sse_keepalive_s;
    st->sse = content_type && !strncasecmp(content_type, "text/event-stream", 17);
    st->srv = srv;
    st->fd = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        st->fd = ci->connect_fd;
    st->conn = r->conn;
    st->idle_timeout_s = srv->cfg.idle_timeout_s;
    mono_now(&st->last_send);

    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_read, st, stream_mhd_free);
    if (!resp) {
        st->refs = 1;
        stream_unref(st);
        return HTTP_E_NOMEM;
    }
    /* From here MHD owns one reference; destroying resp runs stream_mhd_free. */
    pthread_mutex_lock(&srv->mu);
    st->next = srv->streams;
    if (srv->streams)
        srv->streams->prev = st;
    srv->streams = st;
    srv->n_streams++;
    st->cut = srv->cut;
    pthread_mutex_unlock(&srv->mu);

    if ((content_type && MHD_add_response_header(resp, "Content-Type", content_type) != MHD_YES) ||
        MHD_add_response_header(resp, "Cache-Control", "no-cache") != MHD_YES) {
        MHD_destroy_response(resp); /* drops MHD's reference and unlinks */
        stream_unref(st);
        return HTTP_E_NOMEM;
    }
    /* A quiet stream is not an idle connection: MHD's timeout would cut it (the reader is
     * waiting inside MHD, not on the socket). Disconnects are found by polling instead. */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    r->resp = resp;
    r->status = status;
    *out = st;
    return HTTP_OK;
}

/* {"error":{...}} in OpenAI's shape; code may be NULL. */
static struct MHD_Response *json_error(const char *message, const char *type, const char *code)
{
    char buf[512];
    int n;
    if (code)
        n = snprintf(buf, sizeof(buf),
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":\"%s\"}}",
                     message, type, code);
    else
        n = snprintf(buf, sizeof(buf),
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":null}}",
                     message, type);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_COPY);
    if (resp && MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return resp;
}

/* Adds X-Request-Id and the handler's headers, queues, and drops our reference to resp. */
static enum MHD_Result queue(struct http_req *r, int status, struct MHD_Response *resp, bool close)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    if (close)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->queued = true;
    return ret;
}

static enum MHD_Result answer_too_large(struct http_req *r)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", r->srv->cfg.max_body_bytes);
    return queue(r, 413, json_error(msg, "invalid_request_error", "request_too_large"), true);
}

static void req_free(struct http_req *r)
{
    if (!r)
        return;
    if (r->resp)
        MHD_destroy_response(r->resp); /* never queued (a stream's MHD ref goes with it) */
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->body);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

/* Parses a Content-Length value; false when it is not a plain decimal number. */
static bool parse_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            v = UINT64_MAX; /* saturate: certainly over any cap */
        else
            v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int body_append(struct http_req *r, const char *data, size_t n)
{
    size_t cap = r->srv->cfg.max_body_bytes;
    if (r->too_large || n > cap - r->body_len) {
        r->too_large = true;
        r->discarded += n;
        return 0;
    }
    size_t need = r->body_len + n + 1; /* <= cap + 1 */
    if (need > r->body_alloc) {
        size_t na = r->body_alloc ? r->body_alloc : 4096;
        while (na < need)
            na = na > SIZE_MAX / 2 ? need : na * 2;
        if (na > cap + 1)
            na = cap + 1;
        char *nb = realloc(r->body, na);
        if (!nb)
            return -1;
        r->body = nb;
        r->body_alloc = na;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct http_req *r = *con_cls;
    (void)version;

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->path = url;
        make_request_id(r->id, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"));
        *con_cls = r;
        if (atomic_load(&srv->stopping))
            return queue(
                r, 503,
                json_error("the server is shutting down", "server_error", "server_shutting_down"),
                true);
        uint64_t clen;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (parse_length(cl, &clen)) {
            if (clen > srv->cfg.max_body_bytes)
                return answer_too_large(r); /* before the body is read at all */
            if (clen > 0) {
                r->body = malloc((size_t)clen + 1);
                if (!r->body)
                    return MHD_NO;
                r->body_alloc = (size_t)clen + 1;
            }
        }
        return MHD_YES;
    }
    r->method = method;
    r->path = url;
    if (r->queued) {
        *upload_size = 0; /* answered early: MHD discards the rest */
        return MHD_YES;
    }
    if (*upload_size) {
        if (body_append(r, upload_data, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        /* A chunked upload past the cap is swallowed for a while so the 413 can be read, but
         * not forever. */
        size_t limit =
            srv->cfg.max_body_bytes > HTTP_DISCARD_MIN ? srv->cfg.max_body_bytes : HTTP_DISCARD_MIN;
        return r->discarded > limit ? MHD_NO : MHD_YES;
    }
    if (r->too_large)
        return answer_too_large(r);

    pthread_mutex_lock(&srv->mu);
    srv->active++;
    pthread_mutex_unlock(&srv->mu);

    srv->fn(r, srv->ud);

    enum MHD_Result ret;
    if (r->resp) {
        struct MHD_Response *resp = r->resp;
        r->resp = NULL;
        ret = queue(r, r->status, resp, false);
    } else {
        ret = queue(r, 500, json_error("the handler did not answer", "server_error", NULL), false);
    }
    pthread_mutex_lock(&srv->mu);
    srv->active--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return ret;
}

/* ---- server ---- */

static int parse_host(const char *host, int port, struct sockaddr_storage *ss, bool *v6)
{
    char tmp[64];
    memset(ss, 0, sizeof(*ss));
    *v6 = false;
    if (!host || !*host)
        return HTTP_E_ARG;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    size_t n = strlen(host);
    if (n >= sizeof(tmp))
        return HTTP_E_ARG;
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = 0;
    } else {
        memcpy(tmp, host, n + 1);
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, tmp, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return HTTP_OK;
    }
    if (inet_pton(AF_INET6, tmp, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return HTTP_OK;
    }
    return HTTP_E_ARG;
}

static void server_free(struct http_server *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->log_mu);
    free((char *)s->cfg.host);
    free(s);
}

int http_server_start(struct http_server **out, const struct http_config *cfg, http_handler_fn fn,
                      void *ud, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = 0;
    if (out)
        *out = NULL;
    if (!out || !cfg || !fn) {
        snprintf(err, errlen, "http: missing server, config or handler");
        return HTTP_E_ARG;
    }
    if (cfg->port < 0 || cfg->port > 65535 || cfg->max_connections == 0 ||
        cfg->stream_buffer_cap == 0 || cfg->max_body_bytes >= SIZE_MAX / 2) {
        snprintf(err, errlen,
                 "http: bad config (port 0..65535, max_connections and stream_buffer_cap > 0)");
        return HTTP_E_ARG;
    }
    struct sockaddr_storage ss;
    bool v6;
    if (parse_host(cfg->host, cfg->port, &ss, &v6)) {
        snprintf(err, errlen, "http: host '%s' is not an IP address or localhost",
                 cfg->host ? cfg->host : "(null)");
        return HTTP_E_ARG;
    }
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "http: out of memory");
        return HTTP_E_NOMEM;
    }
    if (pthread_mutex_init(&s->mu, NULL)) {
        free(s);
        snprintf(err, errlen, "http: out of memory");
        return HTTP_E_NOMEM;
    }
    if (pthread_mutex_init(&s->log_mu, NULL)) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        snprintf(err, errlen, "http: out of memory");
        return HTTP_E_NOMEM;
    }
    if (cond_init_mono(&s->cv)) {
        pthread_mutex_destroy(&s->log_mu);
        pthread_mutex_destroy(&s->mu);
        free(s);
        snprintf(err, errlen, "http: out of memory");
        return HTTP_E_NOMEM;
    }
    s->cfg = *cfg;
    s->cfg.host = strdup(cfg->host);
    s->fn = fn;
    s->ud = ud;
    s->addr = ss;
    atomic_init(&s->stopping, false);
    if (!s->cfg.host) {
        server_free(s);
        snprintf(err, errlen, "http: out of memory");
        return HTTP_E_NOMEM;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->idle_timeout_s,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "http: cannot listen on %s:%d: %s", cfg->host, cfg->port,
                 s->log[0] ? s->log : "libmicrohttpd refused to start");
        server_free(s);
        return HTTP_E_LISTEN;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di && di->port ? di->port : cfg->port;
    *out = s;
    return HTTP_OK;
}

int http_server_port(const struct http_server *s)
{
    return s ? s->port : HTTP_E_ARG;
}

bool http_server_stopping(const struct http_server *s)
{
    return s && atomic_load(&((struct http_server *)s)->stopping);
}

void http_server_stop(struct http_server *s, int grace_s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    /* The socket must stay open until MHD_stop_daemon, but it should stop taking connections
     * now: on Linux shutdown() of a listening socket refuses new and pending ones. */
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);

    struct timespec now;
    mono_now(&now);
    struct timespec deadline = ms_ts(ts_ms(&now) + (grace_s > 0 ? (int64_t)grace_s * 1000 : 0));
    pthread_mutex_lock(&s->mu);
    while (s->active || s->n_streams) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT)
            break;
    }
    /* Past grace: cut every stream MHD still holds so its reader returns at once. Streams
     * opened later by a handler that is still running are cut at birth (s->cut). */
    s->cut = true;
    for (struct http_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        st->cut = true;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->mu);

    /* Closes every connection and joins its thread; each stream's free callback runs. A
     * handler that never returns would block here: handlers watch http_server_stopping. */
    MHD_stop_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    server_free(s);
}
