/* HTTP server layer: round trips, ids, limits, SSE streams, disconnects, stop, concurrency. */
#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"

/* ---- shared state between the test thread, handlers and producer threads ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_server *srv;
    pthread_t producer;
    bool have_producer;
    /* results recorded by handlers / producers, checked by the test thread */
    int second_answer_rc;
    int crlf_header_rc;
    int cap_first_rc, cap_second_rc;
    bool cap_gone;
    bool gone_before; /* client_gone before the client left (must be false) */
    double gone_at;   /* when client_gone turned true */
    int write_after_gone_rc;
    bool stop_seen; /* producer saw http_server_stopping */
    int port;
    int raw_fd; /* a keep-alive connection opened before the stop */
    int new_conn_rc;
    int slow_write_rc;
    bool streaming;         /* a producer has started */      /* curl result for a new connection during the grace period */
    char during_stop[1024]; /* answer on the keep-alive connection during the grace period */
    int write_after_cut_rc;
    bool gone_after_cut;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_producer(void *(*fn)(void *), void *arg)
{
    pthread_mutex_lock(&g.mu);
    if (pthread_create(&g.producer, NULL, fn, arg) == 0)
        g.have_producer = true;
    g.streaming = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

/* Waits (at most 5 s) until a handler has opened a stream and started its producer. */
static bool wait_streaming(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g.mu);
    while (!g.streaming && pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0)
        ;
    bool ok = g.streaming;
    pthread_mutex_unlock(&g.mu);
    return ok;
}

static void join_producer(void)
{
    pthread_mutex_lock(&g.mu);
    bool have = g.have_producer;
    g.have_producer = false;
    pthread_t t = g.producer;
    pthread_mutex_unlock(&g.mu);
    if (have)
        pthread_join(t, NULL);
}

/* A plain TCP connection to 127.0.0.1:port, or -1. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req and reads one response (headers plus Content-Length bytes) into out, waiting at
 * most timeout_ms. Returns the bytes read (possibly 0). */
static size_t raw_exchange(int fd, const char *req, char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;
    out[0] = 0;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        return 0;
    double end = now_s() + timeout_ms / 1000.0;
    while (len + 1 < cap) {
        const char *eoh = strstr(out, "\r\n\r\n");
        if (eoh) {
            const char *cl = strcasestr(out, "Content-Length:");
            size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
            if (len >= (size_t)(eoh + 4 - out) + body)
                break;
        }
        int left = (int)((end - now_s()) * 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = 0;
    }
    return len;
}

/* ---- producers ---- */

/* Three events 100 ms apart, an idle pause long enough for a keep-alive comment, one more. */
static void *produce_events(void *arg)
{
    struct http_stream *st = arg;
    char ev[64];
    for (int i = 0; i < 3; i++) {
        int n = snprintf(ev, sizeof(ev), "data: event %d\n\n", i);
        http_stream_write(st, ev, (size_t)n);
        sleep_ms(100);
    }
    sleep_ms(1400);
    http_stream_write(st, "data: [DONE]\n\n", 14);
    http_stream_close(st);
    return NULL;
}

/* One event, then watch (without writing) until the client leaves. */
static void *produce_until_gone(void *arg)
{
    struct http_stream *st = arg;
    bool before = http_stream_client_gone(st);
    http_stream_write(st, "data: first\n\n", 13);
    double t0 = now_s();
    double at = 0;
    while (now_s() - t0 < 5) {
        if (http_stream_client_gone(st)) {
            at = now_s();
            break;
        }
        sleep_ms(2);
    }
    int rc = http_stream_write(st, "data: late\n\n", 12);
    pthread_mutex_lock(&g.mu);
    g.gone_before = before;
    g.gone_at = at;
    g.write_after_gone_rc = rc;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    http_stream_close(st);
    return NULL;
}

/* Streams until the server begins stopping, then finishes politely. */
static void *produce_until_stopping(void *arg)
{
    struct http_stream *st = arg;
    http_stream_write(st, "data: hello\n\n", 13);
    double t0 = now_s();
    while (!http_server_stopping(g.srv) && now_s() - t0 < 5)
        sleep_ms(5);
    /* During the grace period: new connections are refused, and a request on an existing
     * keep-alive connection is answered 503 without reaching the handler. */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", g.port);
    CURL *c = curl_easy_init();
    CURLcode crc = CURLE_FAILED_INIT;
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        crc = curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    char during[1024];
    raw_exchange(g.raw_fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", during, sizeof(during), 1000);
    int rc = http_stream_write(st, "data: bye\n\n", 11);
    pthread_mutex_lock(&g.mu);
    g.stop_seen = rc == HTTP_OK;
    g.new_conn_rc = (int)crc;
    memcpy(g.during_stop, during, sizeof(during));
    pthread_mutex_unlock(&g.mu);
    http_stream_close(st);
    return NULL;
}

/* Ignores stopping until it is cut. */
static void *produce_stubborn(void *arg)
{
    struct http_stream *st = arg;
    http_stream_write(st, "data: hello\n\n", 13);
    double t0 = now_s();
    while (!http_stream_client_gone(st) && now_s() - t0 < 5)
        sleep_ms(10);
    int rc = http_stream_write(st, "data: more\n\n", 12);
    pthread_mutex_lock(&g.mu);
    g.gone_after_cut = http_stream_client_gone(st);
    g.write_after_cut_rc = rc;
    pthread_mutex_unlock(&g.mu);
    http_stream_close(st);
    return NULL;
}

/* ---- the test handler ---- */

static void handler(struct http_req *r, void *ud)
{
    (void)ud;
    const char *path = http_req_path(r);
    struct http_stream *st = NULL;
    if (!strcmp(path, "/echo")) {
        size_t blen;
        const char *body = http_req_body(r, &blen);
        const char *q = http_req_query(r, "q"), *flag = http_req_query(r, "flag");
        const char *h = http_req_header(r, "X-TEST-HEADER");
        size_t cap = blen + 512;
        char *out = malloc(cap);
        if (!out)
            return;
        int n = snprintf(out, cap, "method=%s path=%s q=%s flag=%s missing=%s h=%s len=%zu body=%s",
                         http_req_method(r), path, q ? q : "(null)", flag ? flag : "(null)",
                         http_req_query(r, "nope") ? "yes" : "no", h ? h : "(null)", blen, body);
        http_req_add_header(r, "X-Echo", "yes");
        http_respond(r, 200, "text/plain", out, (size_t)n);
        free(out);
    } else if (!strcmp(path, "/missing")) {
        http_respond(r, 404, "application/json", "{\"error\":\"nope\"}", 16);
    } else if (!strcmp(path, "/noanswer")) {
        /* returns without answering */
    } else if (!strcmp(path, "/twice")) {
        int crlf = http_req_add_header(r, "X-Bad", "a\r\nInjected: 1");
        http_respond(r, 201, "text/plain", "one", 3);
        int rc = http_respond(r, 200, "text/plain", "two", 3);
        pthread_mutex_lock(&g.mu);
        g.second_answer_rc = rc;
        g.crlf_header_rc = crlf;
        pthread_mutex_unlock(&g.mu);
    } else if (!strcmp(path, "/events")) {
        if (http_stream_open(r, 200, "text/event-stream", &st) == HTTP_OK)
            start_producer(produce_events, st);
    } else if (!strcmp(path, "/disconnect")) {
        if (http_stream_open(r, 200, "text/event-stream", &st) == HTTP_OK)
            start_producer(produce_until_gone, st);
    } else if (!strcmp(path, "/polite")) {
        if (http_stream_open(r, 200, "text/event-stream", &st) == HTTP_OK)
            start_producer(produce_until_stopping, st);
    } else if (!strcmp(path, "/stubborn")) {
        if (http_stream_open(r, 200, "text/event-stream", &st) == HTTP_OK)
            start_producer(produce_stubborn, st);
    } else if (!strcmp(path, "/cap")) {
        /* Written before the handler returns, so nothing can be sent yet: the cap is hit. */
        if (http_stream_open(r, 200, "text/event-stream", &st) != HTTP_OK)
            return;
        char block[1000];
        memset(block, 'x', sizeof(block));
        int a = http_stream_write(st, block, sizeof(block));
        int b = http_stream_write(st, block, 100);
        bool gone = http_stream_client_gone(st);
        http_stream_close(st);
        pthread_mutex_lock(&g.mu);
        g.cap_first_rc = a;
        g.cap_second_rc = b;
        g.cap_gone = gone;
        pthread_mutex_unlock(&g.mu);
    } else {
        http_respond(r, 404, "text/plain", "no such path", 12);
    }
}

/* ---- a small libcurl client ---- */

struct reply {
    long status;
    CURLcode rc;
    char *body;
    size_t len, cap;
    char hdrs[8192];
    size_t hlen;
    int abort_after; /* >0: abort the transfer once this many body bytes arrived */
    double aborted_at;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *rp = ud;
    size_t len = sz * n;
    if (rp->len + len + 1 > rp->cap) {
        size_t nc = (rp->len + len + 1) * 2;
        char *nb = realloc(rp->body, nc);
        if (!nb)
            return 0;
        rp->body = nb;
        rp->cap = nc;
    }
    memcpy(rp->body + rp->len, p, len);
    rp->len += len;
    rp->body[rp->len] = 0;
    if (rp->abort_after > 0 && rp->len >= (size_t)rp->abort_after) {
        rp->aborted_at = now_s();
        return 0; /* abort: curl closes the connection */
    }
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *rp = ud;
    size_t len = sz * n;
    if (rp->hlen + len < sizeof(rp->hdrs)) {
        memcpy(rp->hdrs + rp->hlen, p, len);
        rp->hlen += len;
        rp->hdrs[rp->hlen] = 0;
    }
    return len;
}

/* Value of a response header (case-insensitive name) copied into out; false if absent. */
static bool reply_header(const struct reply *rp, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = rp->hdrs;
    while (line && *line) {
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= outlen)
                k = outlen - 1;
            memcpy(out, v, k);
            out[k] = 0;
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

static void reply_free(struct reply *rp)
{
    free(rp->body);
    rp->body = NULL;
}

struct upload {
    const char *data;
    size_t len, pos;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t k = sz * n;
    if (k > u->len - u->pos)
        k = u->len - u->pos;
    memcpy(buf, u->data + u->pos, k);
    u->pos += k;
    return k;
}

/* One request. body: POSTed when non-NULL; chunked: send it with Transfer-Encoding: chunked. */
static void request_ex(int port, const char *method, const char *path, const char *body,
                       size_t blen, bool chunked, struct curl_slist *hdrs, long timeout_ms,
                       struct reply *rp)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    if (!c) {
        rp->rc = CURLE_FAILED_INIT;
        return;
    }
    struct upload up = {body, blen, 0};
    struct curl_slist *h = hdrs;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body && !chunked) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    rp->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rp->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

static void request(int port, const char *method, const char *path, const char *body,
                    struct curl_slist *hdrs, struct reply *rp)
{
    request_ex(port, method, path, body, body ? strlen(body) : 0, false, hdrs, 5000, rp);
}

static struct http_server *start(struct http_config *cfg)
{
    char err[256];
    struct http_server *s = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any client thread */
    int rc = http_server_start(&s, cfg, handler, NULL, err, sizeof(err));
    if (rc != HTTP_OK)
        fprintf(stderr, "    http_server_start: %s (%s)\n", http_strerror(rc), err);
    g.srv = s;
    return s;
}

static struct http_server *start_default(void)
{
    struct http_config cfg;
    http_config_default(&cfg);
    cfg.port = 0;
    cfg.sse_keepalive_s = 1;
    return start(&cfg);
}

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s))
            return false;
    return true;
}

/* ---- tests ---- */

TEST(http_config_and_errors)
{
    struct http_config cfg;
    http_config_default(&cfg);
    CHECK_STR(cfg.host, "127.0.0.1");
    CHECK_EQ_INT(cfg.port, 8080);
    CHECK_EQ_INT(cfg.max_body_bytes, 4 << 20);
    CHECK_EQ_INT(cfg.max_connections, 256);
    CHECK_EQ_INT(cfg.idle_timeout_s, 60);
    CHECK_EQ_INT(cfg.sse_keepalive_s, 15);
    CHECK_EQ_INT(cfg.stream_buffer_cap, 4 << 20);
    CHECK_STR(http_strerror(HTTP_E_CLOSED), "client connection closed");

    char err[256];
    struct http_server *s = (struct http_server *)&cfg;
    cfg.host = "not-an-address";
    CHECK_EQ_INT(http_server_start(&s, &cfg, handler, NULL, err, sizeof(err)), HTTP_E_ARG);
    CHECK(s == NULL);
    CHECK(strstr(err, "not-an-address") != NULL);
    cfg.host = "127.0.0.1";
    cfg.port = 70000;
    CHECK_EQ_INT(http_server_start(&s, &cfg, handler, NULL, err, sizeof(err)), HTTP_E_ARG);
    cfg.port = 0;
    CHECK_EQ_INT(http_server_start(&s, &cfg, NULL, NULL, err, sizeof(err)), HTTP_E_ARG);
    CHECK_EQ_INT(http_server_start(&s, NULL, handler, NULL, err, sizeof(err)), HTTP_E_ARG);

    /* A port already taken is HTTP_E_LISTEN with a readable reason. */
    struct http_server *a = start(&cfg);
    REQUIRE(a);
    CHECK(http_server_port(a) > 0);
    cfg.port = http_server_port(a);
    CHECK_EQ_INT(http_server_start(&s, &cfg, handler, NULL, err, sizeof(err)), HTTP_E_LISTEN);
    CHECK(s == NULL);
    CHECK(strstr(err, "cannot listen") != NULL);
    CHECK(!http_server_stopping(a));
    http_server_stop(a, 0);
    http_server_stop(NULL, 0);

    /* "localhost" is accepted. */
    cfg.host = "localhost";
    cfg.port = 0;
    struct http_server *b = start(&cfg);
    CHECK(b != NULL);
    http_server_stop(b, 0);
}

TEST(http_get_post_round_trip)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    int port = http_server_port(s);
    struct reply rp = {0};
    struct curl_slist *h = curl_slist_append(NULL, "x-test-header: Value 1");
    request(port, NULL, "/echo?q=hello%20world&flag", NULL, h, &rp);
    CHECK_EQ_INT(rp.rc, CURLE_OK);
    CHECK_EQ_INT(rp.status, 200);
    CHECK_STR(rp.body,
              "method=GET path=/echo q=hello world flag= missing=no h=Value 1 len=0 body=");
    char v[256];
    CHECK(reply_header(&rp, "X-Echo", v, sizeof(v)) && !strcmp(v, "yes"));
    CHECK(reply_header(&rp, "Content-Type", v, sizeof(v)) && !strcmp(v, "text/plain"));
    reply_free(&rp);

    struct reply rp2 = {0};
    h = curl_slist_append(NULL, "X-Test-Header: posted");
    const char *body = "{\"a\":1,\"b\":\"\xc3\xa9\"}";
    request(port, NULL, "/echo", body, h, &rp2);
    CHECK_EQ_INT(rp2.status, 200);
    char want[256];
    snprintf(want, sizeof(want),
             "method=POST path=/echo q=(null) flag=(null) missing=no h=posted len=%zu body=%s",
             strlen(body), body);
    CHECK_STR(rp2.body, want);
    reply_free(&rp2);

    /* A body with NUL bytes arrives whole (length, not strlen). */
    struct reply rp3 = {0};
    request_ex(port, "PUT", "/echo", "a\0b", 3, false, NULL, 5000, &rp3);
    CHECK_EQ_INT(rp3.status, 200);
    CHECK(rp3.body && strstr(rp3.body, "method=PUT") && strstr(rp3.body, "len=3"));
    reply_free(&rp3);

    /* A chunked upload under the cap. */
    struct reply rp4 = {0};
    request_ex(port, NULL, "/echo", "chunky body", 11, true, NULL, 5000, &rp4);
    CHECK_EQ_INT(rp4.status, 200);
    CHECK(rp4.body && strstr(rp4.body, "len=11 body=chunky body"));
    reply_free(&rp4);
    http_server_stop(s, 1);
}

TEST(http_keepalive_reuses_connection)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", http_server_port(s));
    CURL *c = curl_easy_init();
    REQUIRE(c);
    struct reply rp = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long conns = -1;
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    CHECK_EQ_INT(conns, 0); /* the second request reused the first connection */
    curl_easy_cleanup(c);
    reply_free(&rp);
    http_server_stop(s, 1);
}

TEST(http_request_id)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    int port = http_server_port(s);
    char v[256];

    struct reply a = {0};
    request(port, NULL, "/echo", NULL, curl_slist_append(NULL, "X-Request-Id: req-42_abc"), &a);
    CHECK(reply_header(&a, "X-Request-Id", v, sizeof(v)));
    CHECK_STR(v, "req-42_abc");
    reply_free(&a);

    struct reply b = {0}, c = {0};
    request(port, NULL, "/echo", NULL, NULL, &b);
    request(port, NULL, "/echo", NULL, NULL, &c);
    char vb[256] = "", vc[256] = "";
    CHECK(reply_header(&b, "X-Request-Id", vb, sizeof(vb)) && is_hex32(vb));
    CHECK(reply_header(&c, "X-Request-Id", vc, sizeof(vc)) && is_hex32(vc));
    CHECK(strcmp(vb, vc) != 0);
    reply_free(&b);
    reply_free(&c);

    /* Too long, or with a space: replaced by a fresh id. */
    char longid[200] = "X-Request-Id: ";
    memset(longid + strlen(longid), 'a', 129);
    struct reply d = {0}, e = {0};
    request(port, NULL, "/echo", NULL, curl_slist_append(NULL, longid), &d);
    CHECK(reply_header(&d, "X-Request-Id", v, sizeof(v)) && is_hex32(v));
    request(port, NULL, "/echo", NULL, curl_slist_append(NULL, "X-Request-Id: a b"), &e);
    CHECK(reply_header(&e, "X-Request-Id", v, sizeof(v)) && is_hex32(v));
    reply_free(&d);
    reply_free(&e);

    /* Error answers carry it too. */
    struct reply f = {0};
    request(port, NULL, "/noanswer", NULL, curl_slist_append(NULL, "X-Request-Id: oops"), &f);
    CHECK(reply_header(&f, "X-Request-Id", v, sizeof(v)) && !strcmp(v, "oops"));
    reply_free(&f);
    http_server_stop(s, 1);
}

TEST(http_status_and_handler_mistakes)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    int port = http_server_port(s);
    struct reply a = {0};
    request(port, NULL, "/missing", NULL, NULL, &a);
    CHECK_EQ_INT(a.status, 404);
    CHECK_STR(a.body, "{\"error\":\"nope\"}");
    reply_free(&a);

    struct reply b = {0};
    request(port, NULL, "/noanswer", NULL, NULL, &b);
    CHECK_EQ_INT(b.status, 500);
    char v[256];
    CHECK(reply_header(&b, "Content-Type", v, sizeof(v)) && !strcmp(v, "application/json"));
    CHECK(b.body && strstr(b.body, "\"type\":\"server_error\""));
    reply_free(&b);

    struct reply c = {0};
    request(port, NULL, "/twice", NULL, NULL, &c);
    CHECK_EQ_INT(c.status, 201);
    CHECK_STR(c.body, "one");
    CHECK(!reply_header(&c, "Injected", v, sizeof(v)));
    reply_free(&c);
    pthread_mutex_lock(&g.mu);
    CHECK_EQ_INT(g.second_answer_rc, HTTP_E_ARG);
    CHECK_EQ_INT(g.crlf_header_rc, HTTP_E_ARG);
    pthread_mutex_unlock(&g.mu);
    http_server_stop(s, 1);
}

TEST(http_body_over_cap_is_413)
{
    struct http_config cfg;
    http_config_default(&cfg);
    cfg.port = 0;
    cfg.max_body_bytes = 1024;
    struct http_server *s = start(&cfg);
    REQUIRE(s);
    int port = http_server_port(s);
    const char *want = "{\"error\":{\"message\":\"request body exceeds 1024 bytes\","
                       "\"type\":\"invalid_request_error\",\"param\":null,"
                       "\"code\":\"request_too_large\"}}";
    char *big = malloc(8192);
    REQUIRE(big);
    memset(big, 'b', 8192);
    char v[256];

    /* Exactly the cap is fine. */
    struct reply ok = {0};
    request_ex(port, NULL, "/echo", big, 1024, false, NULL, 5000, &ok);
    CHECK_EQ_INT(ok.status, 200);
    CHECK(ok.body && strstr(ok.body, "len=1024"));
    reply_free(&ok);

    /* Content-Length over the cap: answered from the headers. */
    struct reply a = {0};
    request_ex(port, NULL, "/echo", big, 1025, false, NULL, 5000, &a);
    CHECK_EQ_INT(a.status, 413);
    CHECK_STR(a.body, want);
    CHECK(reply_header(&a, "Content-Type", v, sizeof(v)) && !strcmp(v, "application/json"));
    CHECK(reply_header(&a, "X-Request-Id", v, sizeof(v)));
    reply_free(&a);

    /* A huge Content-Length is refused from the headers alone: no body is ever sent. */
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    char raw[2048];
    raw_exchange(fd,
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
                 "\r\n",
                 raw, sizeof(raw), 2000);
    close(fd);
    CHECK(!strncmp(raw, "HTTP/1.1 413", 12));
    CHECK(strstr(raw, want) != NULL);

    /* Chunked upload that grows past the cap. */
    struct reply b = {0};
    request_ex(port, NULL, "/echo", big, 8192, true, NULL, 5000, &b);
    CHECK_EQ_INT(b.status, 413);
    CHECK_STR(b.body, want);
    reply_free(&b);

    /* The server is fine afterwards. */
    struct reply c = {0};
    request(port, NULL, "/echo", "small", NULL, &c);
    CHECK_EQ_INT(c.status, 200);
    reply_free(&c);
    free(big);
    http_server_stop(s, 1);
}

TEST(http_sse_stream_with_keepalive)
{
    struct http_server *s = start_default(); /* keep-alive every 1 s */
    REQUIRE(s);
    struct reply rp = {0};
    double t0 = now_s();
    request(http_server_port(s), NULL, "/events", NULL, NULL, &rp);
    double took = now_s() - t0;
    join_producer();
    CHECK_EQ_INT(rp.rc, CURLE_OK);
    CHECK_EQ_INT(rp.status, 200);
    char v[256];
    CHECK(reply_header(&rp, "Content-Type", v, sizeof(v)) && !strcmp(v, "text/event-stream"));
    CHECK(reply_header(&rp, "Cache-Control", v, sizeof(v)) && !strcmp(v, "no-cache"));
    CHECK(reply_header(&rp, "Transfer-Encoding", v, sizeof(v)) && !strcmp(v, "chunked"));
    CHECK(reply_header(&rp, "X-Request-Id", v, sizeof(v)) && is_hex32(v));
    REQUIRE(rp.body);
    const char *e0 = strstr(rp.body, "data: event 0\n\n");
    const char *e1 = strstr(rp.body, "data: event 1\n\n");
    const char *e2 = strstr(rp.body, "data: event 2\n\n");
    const char *ka = strstr(rp.body, ":keep-alive\n\n");
    const char *done = strstr(rp.body, "data: [DONE]\n\n");
    CHECK(e0 && e1 && e2 && ka && done);
    CHECK(e0 < e1 && e1 < e2 && e2 < ka && ka < done);
    CHECK(took > 1.5 && took < 4);
    reply_free(&rp);
    http_server_stop(s, 1);
}

TEST(http_stream_client_disconnect)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    struct reply rp = {.abort_after = 13};
    request(http_server_port(s), NULL, "/disconnect", NULL, NULL, &rp);
    double left = now_s(); /* the connection is closed when curl returns */
    CHECK_EQ_INT(rp.rc, CURLE_WRITE_ERROR);
    join_producer();
    pthread_mutex_lock(&g.mu);
    CHECK(!g.gone_before);
    CHECK(g.gone_at > 0);
    double latency = g.gone_at - left;
    CHECK(latency < 0.1);
    CHECK_EQ_INT(g.write_after_gone_rc, HTTP_E_CLOSED);
    pthread_mutex_unlock(&g.mu);
    reply_free(&rp);

    /* A client that times out mid-stream is noticed the same way. */
    struct reply rp2 = {0};
    request_ex(http_server_port(s), NULL, "/disconnect", NULL, 0, false, NULL, 300, &rp2);
    left = now_s();
    CHECK_EQ_INT(rp2.rc, CURLE_OPERATION_TIMEDOUT);
    CHECK(rp2.body && !strcmp(rp2.body, "data: first\n\n"));
    join_producer();
    pthread_mutex_lock(&g.mu);
    CHECK(g.gone_at > 0 && g.gone_at - left < 0.1);
    CHECK_EQ_INT(g.write_after_gone_rc, HTTP_E_CLOSED);
    pthread_mutex_unlock(&g.mu);
    reply_free(&rp2);
    http_server_stop(s, 1);
}

TEST(http_stream_buffer_cap)
{
    struct http_config cfg;
    http_config_default(&cfg);
    cfg.port = 0;
    cfg.stream_buffer_cap = 1024;
    struct http_server *s = start(&cfg);
    REQUIRE(s);
    struct reply rp = {0};
    request(http_server_port(s), NULL, "/cap", NULL, NULL, &rp);
    pthread_mutex_lock(&g.mu);
    CHECK_EQ_INT(g.cap_first_rc, HTTP_OK);
    CHECK_EQ_INT(g.cap_second_rc, HTTP_E_CLOSED);
    CHECK(g.cap_gone);
    pthread_mutex_unlock(&g.mu);
    /* The response is cut, not ended cleanly: the client must not take it as complete. */
    CHECK(rp.rc != CURLE_OK);
    reply_free(&rp);
    http_server_stop(s, 1);
}

struct bg_req {
    pthread_t t;
    int port;
    const char *path;
    struct reply rp;
};

static void *bg_request(void *arg)
{
    struct bg_req *b = arg;
    request_ex(b->port, NULL, b->path, NULL, 0, false, NULL, 8000, &b->rp);
    return NULL;
}

TEST(http_stop_lets_stream_finish_within_grace)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    g.port = http_server_port(s);
    /* An idle keep-alive connection must not hold up the stop. */
    g.raw_fd = raw_connect(g.port);
    REQUIRE(g.raw_fd >= 0);
    char first[1024];
    raw_exchange(g.raw_fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", first, sizeof(first), 2000);
    CHECK(!strncmp(first, "HTTP/1.1 200", 12));
    struct bg_req b = {.port = g.port, .path = "/polite"};
    REQUIRE(pthread_create(&b.t, NULL, bg_request, &b) == 0);
    REQUIRE(wait_streaming());
    sleep_ms(50); /* the handler returns and the first event goes out */
    double t0 = now_s();
    http_server_stop(s, 3);
    double took = now_s() - t0;
    pthread_join(b.t, NULL);
    join_producer();
    CHECK(took < 1.5); /* returned as soon as the stream ended, not after the grace */
    CHECK_EQ_INT(b.rp.rc, CURLE_OK);
    CHECK(b.rp.body && strstr(b.rp.body, "data: hello\n\n") && strstr(b.rp.body, "data: bye\n\n"));
    pthread_mutex_lock(&g.mu);
    CHECK(g.stop_seen);
    CHECK_EQ_INT(g.new_conn_rc, CURLE_COULDNT_CONNECT);
    CHECK(!strncmp(g.during_stop, "HTTP/1.1 503", 12));
    CHECK(strstr(g.during_stop, "\"server_shutting_down\"") != NULL);
    pthread_mutex_unlock(&g.mu);
    close(g.raw_fd);
    reply_free(&b.rp);
}

TEST(http_stop_cuts_stream_after_grace)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    int port = http_server_port(s);
    struct bg_req b = {.port = port, .path = "/stubborn"};
    REQUIRE(pthread_create(&b.t, NULL, bg_request, &b) == 0);
    REQUIRE(wait_streaming());
    sleep_ms(50);
    double t0 = now_s();
    http_server_stop(s, 1);
    double took = now_s() - t0;
    pthread_join(b.t, NULL);
    join_producer();
    CHECK(took >= 0.9 && took < 2.5);
    CHECK(b.rp.rc != CURLE_OK); /* cut: no terminating chunk */
    CHECK(b.rp.body && strstr(b.rp.body, "data: hello\n\n"));
    pthread_mutex_lock(&g.mu);
    CHECK(g.gone_after_cut);
    CHECK_EQ_INT(g.write_after_cut_rc, HTTP_E_CLOSED);
    pthread_mutex_unlock(&g.mu);
    reply_free(&b.rp);

    /* Nothing listens any more. */
    struct reply rp = {0};
    request_ex(port, NULL, "/echo", NULL, 0, false, NULL, 1000, &rp);
    CHECK_EQ_INT(rp.rc, CURLE_COULDNT_CONNECT);
    reply_free(&rp);
}

struct conc {
    pthread_t t;
    int port, idx;
    bool ok;
};

static void *conc_request(void *arg)
{
    struct conc *c = arg;
    char body[64], want[80];
    snprintf(body, sizeof(body), "request number %d", c->idx);
    snprintf(want, sizeof(want), "body=%s", body);
    struct reply rp = {0};
    request(c->port, NULL, "/echo", body, NULL, &rp);
    c->ok = rp.rc == CURLE_OK && rp.status == 200 && rp.body && strstr(rp.body, want);
    reply_free(&rp);
    return NULL;
}

TEST(http_concurrent_requests)
{
    struct http_server *s = start_default();
    REQUIRE(s);
    struct conc cs[50];
    int started = 0;
    for (int i = 0; i < 50; i++) {
        cs[i] = (struct conc){.port = http_server_port(s), .idx = i};
        if (pthread_create(&cs[i].t, NULL, conc_request, &cs[i]) == 0)
            started++;
        else
            break;
    }
    CHECK_EQ_INT(started, 50);
    int ok = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(cs[i].t, NULL);
        ok += cs[i].ok;
    }
    CHECK_EQ_INT(ok, 50);
    http_server_stop(s, 1);
}

TEST(http_ipv6_loopback)
{
    struct http_config cfg;
    http_config_default(&cfg);
    cfg.host = "::1";
    cfg.port = 0;
    char err[256];
    struct http_server *s = NULL;
    int rc = http_server_start(&s, &cfg, handler, NULL, err, sizeof(err));
    if (rc == HTTP_E_LISTEN) {
        fprintf(stderr, "    (no IPv6 loopback here: %s)\n", err);
        return;
    }
    REQUIRE(rc == HTTP_OK);
    char url[128];
    snprintf(url, sizeof(url), "http://[::1]:%d/echo", http_server_port(s));
    CURL *c = curl_easy_init();
    REQUIRE(c);
    struct reply rp = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    CHECK(rp.body && strstr(rp.body, "path=/echo"));
    curl_easy_cleanup(c);
    reply_free(&rp);
    http_server_stop(s, 0);
}

/* Quiet for longer than the idle timeout, twice: once before data, once before the end. */
static void *produce_slow(void *arg)
{
    struct http_stream *st = arg;
    http_stream_write(st, "a\n", 2);
    sleep_ms(1500);
    int rc = http_stream_write(st, "b\n", 2);
    pthread_mutex_lock(&g.mu);
    g.slow_write_rc = rc;
    pthread_mutex_unlock(&g.mu);
    sleep_ms(1500);
    http_stream_close(st);
    return NULL;
}

static void slow_handler(struct http_req *r, void *ud)
{
    (void)ud;
    struct http_stream *st;
    if (http_stream_open(r, 200, "application/x-ndjson", &st) == HTTP_OK)
        start_producer(produce_slow, st);
}

TEST(http_quiet_stream_outlives_idle_timeout)
{
    struct http_config cfg;
    http_config_default(&cfg);
    cfg.port = 0;
    cfg.idle_timeout_s = 1;
    char err[256];
    struct http_server *s = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    REQUIRE(http_server_start(&s, &cfg, slow_handler, NULL, err, sizeof(err)) == HTTP_OK);
    struct reply rp = {0};
    request_ex(http_server_port(s), NULL, "/x", NULL, 0, false, NULL, 8000, &rp);
    join_producer();
    CHECK_EQ_INT(rp.rc, CURLE_OK);
    CHECK_STR(rp.body, "a\nb\n"); /* and no keep-alive comment: not an event stream */
    pthread_mutex_lock(&g.mu);
    CHECK_EQ_INT(g.slow_write_rc, HTTP_OK);
    pthread_mutex_unlock(&g.mu);
    reply_free(&rp);
    http_server_stop(s, 1);
}
