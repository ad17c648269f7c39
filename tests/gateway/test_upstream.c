/* Upstream providers against tests/e2e/fake_upstream.py: wire formats, streaming, usage,
 * finish reasons, error mapping, timeouts, cancellation, connection reuse; the SSE parser. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway/upstream.h"
#include "gateway/upstream_impl.h"

extern char **environ;

#define KEY "test-key"

/* ---- the fake server ---- */

struct fake {
    pid_t pid;
    int port;
    int stdin_fd; /* closing it makes the fake exit (--watch-stdin) */
    char rec[300];
    char base[64];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Starts the fake with extra arguments (NULL-terminated list, may be NULL); 0 on success. */
static int fake_start(struct fake *f, const char *const *extra)
{
    int out[2], in[2];
    memset(f, 0, sizeof(*f));
    snprintf(f->rec, sizeof(f->rec), "%s/record.jsonl", test_tmpdir());
    if (pipe(out) || pipe(in))
        return -1;
    const char *argv[32] = {"/usr/bin/python3", "tests/e2e/fake_upstream.py", "--record", f->rec,
                            "--key", KEY, "--watch-stdin"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    int rc = posix_spawn(&f->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(in[0]);
    f->stdin_fd = in[1];
    if (rc) {
        close(out[0]);
        return -1;
    }
    char line[64] = {0};
    size_t len = 0;
    double deadline = now_ms() + 5000;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len) && now_ms() < deadline) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t k = read(out[0], line + len, sizeof(line) - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(out[0]);
    if (sscanf(line, "PORT %d", &f->port) != 1)
        return -1;
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->port);
    return 0;
}

static void fake_stop(struct fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    if (f->stdin_fd > 0)
        close(f->stdin_fd);
    f->pid = 0;
}

/* The n-th recorded request (-1: the last) as a JSON object, or NULL. */
static json_t *fake_request(const struct fake *f, int n)
{
    FILE *fp = fopen(f->rec, "r");
    if (!fp)
        return NULL;
    char *line = NULL, *want = NULL;
    size_t cap = 0;
    int i = 0;
    while (getline(&line, &cap, fp) > 0) {
        if (n < 0 || i == n) {
            free(want);
            want = strdup(line);
        }
        i++;
    }
    free(line);
    fclose(fp);
    json_t *doc = want ? json_loads(want, 0, NULL) : NULL;
    free(want);
    return doc;
}

static int fake_count(const struct fake *f)
{
    FILE *fp = fopen(f->rec, "r");
    int n = 0, ch;
    if (!fp)
        return 0;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

/* The recorded body parsed as JSON (a new reference). */
static json_t *req_body(json_t *rec)
{
    return json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
}

static const char *req_header(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(json_object_get(rec, "headers"), name));
}

/* ---- a collecting sink ---- */

struct collect {
    char text[8192];
    size_t len;
    int n_text, n_done;
    char reason[16];
    int prompt, cached, completion;
    double t0, gone_after_ms; /* > 0: gone() turns true that long after t0 */
    int gone_after_texts;     /* > 0: gone() turns true after that many text calls */
};

static void c_text(void *ud, const char *text, size_t len, const struct gen_logprob *lp, int n)
{
    (void)lp;
    (void)n;
    struct collect *c = ud;
    if (c->len + len < sizeof(c->text)) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    c->n_text++;
}

static void c_done(void *ud, const char *reason, int p, int cached, int comp)
{
    struct collect *c = ud;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    c->prompt = p;
    c->cached = cached;
    c->completion = comp;
    c->n_done++;
}

static bool c_gone(void *ud)
{
    struct collect *c = ud;
    if (c->gone_after_ms > 0 && now_ms() - c->t0 > c->gone_after_ms)
        return true;
    return c->gone_after_texts > 0 && c->n_text >= c->gone_after_texts;
}

static struct gen_sink sink_of(struct collect *c)
{
    memset(c, 0, sizeof(*c));
    c->t0 = now_ms();
    return (struct gen_sink){.text = c_text, .done = c_done, .gone = c_gone, .ud = c};
}

/* One upstream_call into a collecting sink, and what it produced. */
struct call {
    struct collect col;
    struct gen_sink sink;
    struct upstream_result res;
};

/* Calls up with req (request id rid, may be NULL) into a fresh sink; upstream_call's result. */
static int call_run(struct call *c, struct upstream_pool *pool, const struct gw_upstream *up,
                    const struct api_request *req, const char *rid)
{
    c->sink = sink_of(&c->col);
    return upstream_call(pool, up, req, &c->sink, rid, &c->res);
}

/* Checks what a call delivered: its text, text calls, finish reason and token counts (NULL and
 * -1 are not checked). */
static void check_delivered(const struct call *c, const char *text, int n_text, const char *reason,
                            int prompt, int completion)
{
    if (text)
        CHECK_STR(c->col.text, text);
    if (n_text >= 0)
        CHECK_EQ_INT(c->col.n_text, n_text);
    if (reason)
        CHECK_STR(c->col.reason, reason);
    if (prompt >= 0)
        CHECK_EQ_INT(c->col.prompt, prompt);
    if (completion >= 0)
        CHECK_EQ_INT(c->col.completion, completion);
}

/* Checks the outcome of a call: the upstream's HTTP status, the status for the client, whether a
 * retry may help and whether output had begun (-1: not checked). */
static void check_outcome(const struct call *c, int http_status, int error_status, int retryable,
                         int started)
{
    if (http_status >= 0)
        CHECK_EQ_INT(c->res.http_status, http_status);
    if (error_status >= 0)
        CHECK_EQ_INT(c->res.error.status, error_status);
    if (retryable >= 0)
        CHECK_EQ_INT(c->res.retryable, retryable);
    if (started >= 0)
        CHECK_EQ_INT(c->res.started, started);
}

/* The last recorded request (*rec) and its parsed body: new references, NULL when missing. */
static json_t *last_body(const struct fake *f, json_t **rec)
{
    *rec = fake_request(f, -1);
    return *rec ? req_body(*rec) : NULL;
}

/* ---- requests and upstreams ---- */

static struct gw_upstream mk_up(enum gw_provider p, const struct fake *f, const char *model)
{
    static char base[GW_PROVIDER_COUNT][80];
    bool v1 = p == GW_PROVIDER_OPENAI || p == GW_PROVIDER_MISTRAL ||
              p == GW_PROVIDER_OPENAI_COMPATIBLE;
    snprintf(base[p], sizeof(base[p]), "%s%s", f->base, v1 ? "/v1" : "");
    return (struct gw_upstream){
        .provider = p,
        .base_url = base[p],
        .api_key = KEY,
        .model = model,
        .timeouts = {.connect_ms = 1000, .first_byte_ms = 2000, .total_ms = 4000},
    };
}

static struct api_message MSGS[] = {
    {.role = "system", .content = "Be brief."},
    {.role = "user", .content = "hello there"},
    {.role = "assistant", .content = "Hi!"},
    {.role = "user", .content = "how are you"},
};

static struct api_request mk_req(bool stream)
{
    return (struct api_request){
        .kind = API_CHAT,
        .messages = MSGS,
        .n_messages = 4,
        .max_tokens = -1,
        .temperature = 1.0f,
        .top_p = 1.0f,
        .stream = stream,
    };
}

#define START(f)                                                                           \
    struct fake f;                                                                         \
    REQUIRE(fake_start(&f, NULL) == 0);                                                    \
    struct upstream_pool *pool = NULL;                                                     \
    REQUIRE(upstream_pool_new(&pool) == 0)

#define STOP(f)                                                                            \
    do {                                                                                   \
        upstream_pool_free(pool);                                                          \
        fake_stop(&f);                                                                     \
    } while (0)

static const enum gw_provider THREE[] = {GW_PROVIDER_OPENAI, GW_PROVIDER_ANTHROPIC,
                                         GW_PROVIDER_GEMINI};

/* ---- SSE parser ---- */

struct sse_log {
    char buf[1024];
    int n;
};

static int sse_rec(void *ud, const char *event, const char *data, size_t len)
{
    struct sse_log *l = ud;
    size_t o = strlen(l->buf);
    snprintf(l->buf + o, sizeof(l->buf) - o, "[%s|%.*s]", event, (int)len, data);
    l->n++;
    return 0;
}

TEST(upstream_sse_parser)
{
    static const char *const inputs[] = {
        "event: a\ndata: x\n\n: comment\ndata:y\ndata: z\n\nid: 1\nretry: 5\ndata\n\n",
        "event: a\r\ndata: x\r\n\r\n: comment\r\ndata:y\r\ndata: z\r\n\r\nid: 1\r\ndata\r\n\r\n",
        "event: a\rdata: x\r\r: comment\rdata:y\rdata: z\r\rdata\r\r",
    };
    const char *want = "[a|x][message|y\nz][message|]";
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(inputs[k]);
        /* whole, byte by byte, and split at every position */
        for (size_t split = 0; split <= n; split++) {
            struct sse_log log = {.n = 0};
            struct up_sse s;
            up__sse_init(&s, sse_rec, &log);
            CHECK_EQ_INT(up__sse_feed(&s, inputs[k], split), 0);
            CHECK_EQ_INT(up__sse_feed(&s, inputs[k] + split, n - split), 0);
            CHECK_STR(log.buf, want);
            up__sse_free(&s);
        }
        struct sse_log log = {.n = 0};
        struct up_sse s;
        up__sse_init(&s, sse_rec, &log);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ_INT(up__sse_feed(&s, inputs[k] + i, 1), 0);
        CHECK_STR(log.buf, want);
        up__sse_free(&s);
    }
    /* an event without its blank line is not dispatched */
    struct sse_log log = {.n = 0};
    struct up_sse s;
    up__sse_init(&s, sse_rec, &log);
    CHECK_EQ_INT(up__sse_feed(&s, "data: partial\n", 14), 0);
    CHECK_EQ_INT(log.n, 0);
    up__sse_free(&s);
}

TEST(upstream_sse_limits)
{
    struct sse_log log = {.n = 0};
    struct up_sse s;
    up__sse_init(&s, sse_rec, &log);
    char *big = malloc(UP_MAX_SSE_LINE + 10);
    REQUIRE(big);
    memset(big, 'a', UP_MAX_SSE_LINE + 10);
    memcpy(big, "data: ", 6);
    CHECK_EQ_INT(up__sse_feed(&s, big, UP_MAX_SSE_LINE + 10), UPSTREAM_E_PROTOCOL);
    up__sse_free(&s);
    free(big);
}

TEST(upstream_error_message_and_strerror)
{
    char m[64];
    const char *a = "{\"error\":{\"message\":\"a\"}}";
    const char *b = "[{\"error\":{\"code\":400,\"message\":\"b\"}}]";
    const char *c = "{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"c\"}}";
    CHECK(up__error_message(a, strlen(a), m, sizeof(m)));
    CHECK_STR(m, "a");
    CHECK(up__error_message(c, strlen(c), m, sizeof(m)));
    CHECK_STR(m, "c");
    CHECK(up__error_message(b, strlen(b), m, sizeof(m)));
    CHECK_STR(m, "b");
    CHECK(!up__error_message("nope", 4, m, sizeof(m)));
    for (int e = 0; e >= -7; e--)
        CHECK(strcmp(upstream_strerror(e), "unknown upstream error") != 0);
}

/* ---- OpenAI ---- */

TEST(upstream_openai_plain)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "gpt-test");
    struct api_request req = mk_req(false);
    req.temperature = 0.7f;
    req.max_tokens = 50;
    req.stop[0] = "END";
    req.n_stop = 1;
    req.has_seed = true;
    req.seed = 42;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, "req-123"), 0);
    /* the prompt counts the words of every message */
    check_delivered(&got, "You said: how are you", 1, "stop", 8, 5);
    CHECK_EQ_INT(got.col.n_done, 1);
    CHECK_EQ_INT(got.res.prompt_tokens, 8);
    check_outcome(&got, 200, -1, -1, 1);
    CHECK(got.res.latency_ms > 0 && got.res.ttfb_ms > 0 && got.res.ttfb_ms <= got.res.latency_ms);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_STR(json_string_value(json_object_get(rec, "path")), "/v1/chat/completions");
    CHECK_STR(req_header(rec, "authorization"), "Bearer " KEY);
    CHECK_STR(req_header(rec, "x-request-id"), "req-123");
    CHECK_STR(req_header(rec, "user-agent"), "tandem/0.1");
    CHECK_STR(req_header(rec, "content-type"), "application/json");
    CHECK_STR(json_string_value(json_object_get(b, "model")), "gpt-test");
    json_t *msgs = json_object_get(b, "messages");
    CHECK_EQ_INT(json_array_size(msgs), 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 2), "role")), "assistant");
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 3), "content")),
              "how are you");
    CHECK_NEAR(json_real_value(json_object_get(b, "temperature")), 0.7, 1e-12);
    CHECK(json_object_get(b, "top_p") == NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "max_completion_tokens")), 50);
    CHECK_STR(json_string_value(json_array_get(json_object_get(b, "stop"), 0)), "END");
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "seed")), 42);
    CHECK(json_object_get(b, "stream") == NULL);
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

TEST(upstream_openai_stream)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI_COMPATIBLE, &f, "local-llm");
    struct api_request req = mk_req(true);
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, "req-s"), 0);
    /* one text call per word: delivered as they arrive */
    check_delivered(&got, "You said: how are you", 5, "stop", 8, 5);
    CHECK_EQ_INT(got.col.n_done, 1);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_STR(req_header(rec, "accept"), "text/event-stream");
    CHECK(json_is_true(json_object_get(b, "stream")));
    CHECK(json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    CHECK(json_object_get(b, "max_tokens") == NULL);
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

TEST(upstream_openai_length_and_completion)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "gpt-test");
    struct api_request req = {.kind = API_COMPLETION, .prompt = "one two three four",
                              .max_tokens = 3, .temperature = 1, .top_p = 1};
    for (int stream = 0; stream < 2; stream++) {
        req.stream = stream;
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), 0);
        check_delivered(&got, "You said: one ", -1, "length", -1, 3);
    }
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK(req_header(rec, "x-request-id") == NULL);
    json_t *msgs = json_object_get(b, "messages");
    CHECK_EQ_INT(json_array_size(msgs), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "user");
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
              "one two three four");
    json_decref(b);
    json_decref(rec);
    /* token-id prompts cannot be translated */
    int32_t toks[2] = {1, 2};
    req.prompt = NULL;
    req.prompt_tokens = toks;
    req.n_prompt_tokens = 2;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_ARG);
    CHECK_EQ_INT(got.res.error.status, 400);
    CHECK_EQ_INT(got.col.n_done, 0);
    STOP(f);
}

TEST(upstream_mistral_body)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_MISTRAL, &f, "mistral-small");
    struct api_request req = mk_req(true);
    req.max_tokens = 100;
    req.has_seed = true;
    req.seed = 7;
    req.messages[0].role = "developer";
    struct call got;
    int rc = call_run(&got, pool, &up, &req, NULL);
    req.messages[0].role = "system";
    CHECK_EQ_INT(rc, 0);
    CHECK_STR(got.col.text, "You said: how are you");
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 100);
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "random_seed")), 7);
    CHECK(json_object_get(b, "stream_options") == NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(b, "messages"),
                                                               0),
                                                "role")),
              "system");
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

/* ---- Anthropic ---- */

static struct api_message AMSGS[] = {
    {.role = "assistant", .content = "I open."},
    {.role = "system", .content = "Sys one."},
    {.role = "user", .content = "first"},
    {.role = "user", .content = "second"},
    {.role = "developer", .content = "Sys two."},
    {.role = "assistant", .content = "ok"},
    {.role = "user", .content = ""},
    {.role = "user", .content = "say hi"},
};

TEST(upstream_anthropic_plain)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_ANTHROPIC, &f, "claude-test");
    struct api_request req = mk_req(false);
    req.messages = AMSGS;
    req.n_messages = 8;
    req.temperature = 1.6f;
    req.top_p = 0.9f;
    req.stop[0] = "###";
    req.n_stop = 1;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, "rid-a"), 0);
    check_delivered(&got, "You said: say hi", -1, "stop", 12, 4);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_STR(json_string_value(json_object_get(rec, "path")), "/v1/messages");
    CHECK_STR(req_header(rec, "x-api-key"), KEY);
    CHECK_STR(req_header(rec, "anthropic-version"), "2023-06-01");
    CHECK_STR(req_header(rec, "x-request-id"), "rid-a");
    CHECK(req_header(rec, "authorization") == NULL);
    CHECK_STR(json_string_value(json_object_get(b, "system")), "Sys one.\n\nSys two.");
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 4096);
    CHECK_NEAR(json_real_value(json_object_get(b, "temperature")), 1.0, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(b, "top_p")), 0.9, 1e-12);
    CHECK_STR(json_string_value(json_array_get(json_object_get(b, "stop_sequences"), 0)), "###");
    json_t *msgs = json_object_get(b, "messages");
    CHECK_EQ_INT(json_array_size(msgs), 5);
    static const char *const roles[] = {"user", "assistant", "user", "assistant", "user"};
    static const char *const texts[] = {".", "I open.", "first\n\nsecond", "ok", "say hi"};
    for (size_t i = 0; i < 5 && i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        CHECK_STR(json_string_value(json_object_get(m, "role")), roles[i]);
        CHECK_STR(json_string_value(json_object_get(m, "content")), texts[i]);
    }
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

TEST(upstream_anthropic_stream)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_ANTHROPIC, &f, "claude-test");
    struct api_request req = mk_req(true);
    req.max_tokens = 4;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), 0);
    check_delivered(&got, "You said: how are ", 4, "length", 8, 4);
    CHECK_EQ_INT(got.res.completion_tokens, 4);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK(json_is_true(json_object_get(b, "stream")));
    CHECK_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 4);
    CHECK(json_object_get(b, "temperature") == NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(b, "messages")), 3);
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

/* ---- Gemini ---- */

static void check_gemini_body(json_t *b)
{
    json_t *si = json_object_get(b, "systemInstruction");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(si, "parts"), 0),
                                                "text")),
              "Be brief.");
    json_t *contents = json_object_get(b, "contents");
    CHECK_EQ_INT(json_array_size(contents), 3);
    static const char *const roles[] = {"user", "model", "user"};
    static const char *const texts[] = {"hello there", "Hi!", "how are you"};
    for (size_t i = 0; i < 3 && i < json_array_size(contents); i++) {
        json_t *c = json_array_get(contents, i);
        CHECK_STR(json_string_value(json_object_get(c, "role")), roles[i]);
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(c, "parts"),
                                                                   0),
                                                    "text")),
                  texts[i]);
    }
}

TEST(upstream_gemini_plain)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_GEMINI, &f, "gemini-test");
    struct api_request req = mk_req(false);
    req.temperature = 0.25f;
    req.top_p = 0.5f;
    req.max_tokens = 64;
    req.stop[0] = "x";
    req.stop[1] = "y";
    req.n_stop = 2;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, "rid-g"), 0);
    check_delivered(&got, "You said: how are you", -1, "stop", 8, 5);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_STR(json_string_value(json_object_get(rec, "path")),
              "/v1beta/models/gemini-test:generateContent");
    CHECK_STR(req_header(rec, "x-goog-api-key"), KEY);
    CHECK_STR(req_header(rec, "x-request-id"), "rid-g");
    check_gemini_body(b);
    json_t *g = json_object_get(b, "generationConfig");
    CHECK_NEAR(json_real_value(json_object_get(g, "temperature")), 0.25, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(g, "topP")), 0.5, 1e-12);
    CHECK_EQ_INT(json_integer_value(json_object_get(g, "maxOutputTokens")), 64);
    CHECK_EQ_INT(json_integer_value(json_object_get(g, "candidateCount")), 1);
    CHECK_EQ_INT(json_array_size(json_object_get(g, "stopSequences")), 2);
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

TEST(upstream_gemini_stream)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_GEMINI, &f, "models/gemini-test");
    struct api_request req = mk_req(true);
    req.max_tokens = 2;
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), 0);
    check_delivered(&got, "You said: ", 2, "length", -1, 2);
    json_t *rec, *b = last_body(&f, &rec);
    REQUIRE(rec && b);
    CHECK_STR(json_string_value(json_object_get(rec, "path")),
              "/v1beta/models/gemini-test:streamGenerateContent?alt=sse");
    check_gemini_body(b);
    json_decref(b);
    json_decref(rec);
    STOP(f);
}

/* ---- faults ---- */

TEST(upstream_fault_http500)
{
    START(f);
    for (size_t i = 0; i < 3; i++) {
        struct gw_upstream up = mk_up(THREE[i], &f, "fault-http500");
        struct api_request req = mk_req(i == 1);
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_HTTP);
        check_outcome(&got, 500, 502, 1, 0);
        CHECK(strstr(got.res.error.message, "500") != NULL);
        CHECK(strstr(got.res.error.message, "fake internal error") != NULL);
        CHECK_EQ_INT(got.col.n_done, 0);
        CHECK_EQ_INT(got.col.n_text, 0);
    }
    STOP(f);
}

TEST(upstream_fault_http429)
{
    START(f);
    for (size_t i = 0; i < 3; i++) {
        struct gw_upstream up = mk_up(THREE[i], &f, "fault-http429");
        struct api_request req = mk_req(false);
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_HTTP);
        check_outcome(&got, 429, -1, 1, -1);
        CHECK_EQ_INT(got.res.retry_after_ms, 1000);
        CHECK_EQ_INT(got.res.error.status, 429);
        CHECK_STR(got.res.error.type, "rate_limit_error");
        CHECK_STR(got.res.error.message, "Rate limit reached (fake)");
    }
    STOP(f);
}

TEST(upstream_fault_http400_and_bad_json)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_ANTHROPIC, &f, "fault-http400");
    struct api_request req = mk_req(false);
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_HTTP);
    CHECK_EQ_INT(got.res.error.status, 400);
    CHECK_STR(got.res.error.type, "invalid_request_error");
    CHECK_STR(got.res.error.message, "fake invalid request");
    CHECK(!got.res.retryable);
    up = mk_up(GW_PROVIDER_OPENAI, &f, "fault-bad_json");
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_PROTOCOL);
    CHECK_EQ_INT(got.res.error.status, 502);
    CHECK_EQ_INT(got.col.n_done, 0);
    STOP(f);
}

TEST(upstream_fault_hang)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "fault-hang");
    up.timeouts.first_byte_ms = 300;
    struct api_request req = mk_req(true);
    struct call got;
    double t0 = now_ms();
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_TIMEOUT);
    double dt = now_ms() - t0;
    CHECK(dt >= 290 && dt < 800);
    check_outcome(&got, 0, 504, 1, 0);
    /* the total timeout also holds when the first-byte one is off */
    up.timeouts.first_byte_ms = 0;
    up.timeouts.total_ms = 400;
    t0 = now_ms();
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_TIMEOUT);
    dt = now_ms() - t0;
    CHECK(dt >= 390 && dt < 900);
    CHECK_EQ_INT(got.res.error.status, 504);
    STOP(f);
}

TEST(upstream_fault_slow_first_byte)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_GEMINI, &f, "fault-slow_first_byte");
    up.timeouts.first_byte_ms = 300; /* the fake waits 1000 ms */
    struct api_request req = mk_req(false);
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_TIMEOUT);
    CHECK(got.res.retryable);
    up.timeouts.first_byte_ms = 2500;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), 0);
    CHECK_STR(got.col.text, "You said: how are you");
    CHECK(got.res.ttfb_ms >= 950);
    STOP(f);
}

TEST(upstream_fault_reset)
{
    START(f);
    for (size_t i = 0; i < 3; i++) {
        struct gw_upstream up = mk_up(THREE[i], &f, "fault-reset");
        struct api_request req = mk_req(i != 0);
        struct call got;
        int rc = call_run(&got, pool, &up, &req, NULL);
        CHECK(rc == UPSTREAM_E_CONNECT || rc == UPSTREAM_E_PROTOCOL);
        check_outcome(&got, -1, 502, 1, 0);
        CHECK_EQ_INT(got.col.n_done, 0);
    }
    STOP(f);
}

TEST(upstream_fault_truncate)
{
    START(f);
    for (size_t i = 0; i < 3; i++) {
        struct gw_upstream up = mk_up(THREE[i], &f, "fault-truncate");
        struct api_request req = mk_req(true);
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_PROTOCOL);
        check_outcome(&got, -1, -1, 0, 1);
        CHECK_STR(got.col.text, "You said: ");
        CHECK_EQ_INT(got.col.n_done, 0);
        CHECK_EQ_INT(got.res.error.status, 502);
        /* non-streamed: a body cut short */
        req.stream = false;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_PROTOCOL);
        CHECK(!got.res.started);
        CHECK_EQ_INT(got.col.n_text, 0);
        CHECK_EQ_INT(got.col.n_done, 0);
    }
    STOP(f);
}

TEST(upstream_wrong_key)
{
    START(f);
    static const char *const msgs[] = {"Incorrect API key provided", "invalid x-api-key",
                                       "API key not valid"};
    const char *bad = "sk-secret-0123456789abcdef";
    for (size_t i = 0; i < 3; i++) {
        struct gw_upstream up = mk_up(THREE[i], &f, "m");
        up.api_key = bad;
        struct api_request req = mk_req(i == 2);
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_HTTP);
        check_outcome(&got, 401, 401, -1, -1);
        CHECK_STR(got.res.error.type, "authentication_error");
        CHECK(!got.res.retryable);
        CHECK(strstr(got.res.error.message, msgs[i]) != NULL);
        CHECK(strstr(got.res.error.message, "sk-secret") == NULL);
        CHECK(strstr(got.res.error.message, "89abcdef") == NULL);
    }
    /* the fake echoed the key: it was sent, and redacted on the way back */
    json_t *rec = fake_request(&f, 0);
    REQUIRE(rec);
    CHECK_STR(req_header(rec, "authorization"), "Bearer sk-secret-0123456789abcdef");
    json_decref(rec);
    STOP(f);
}

TEST(upstream_cancel)
{
    START(f);
    /* the client leaves while the upstream is silent */
    struct gw_upstream up = mk_up(GW_PROVIDER_ANTHROPIC, &f, "fault-hang");
    struct api_request req = mk_req(true);
    struct collect col;
    struct gen_sink sink = sink_of(&col);
    col.gone_after_ms = 150;
    struct upstream_result res;
    double t0 = now_ms();
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, &res), UPSTREAM_E_CANCELLED);
    CHECK(now_ms() - t0 < 500);
    CHECK_EQ_INT(col.n_done, 0);
    /* ... and mid-stream, after the first delta (chunks are 300 ms apart) */
    fake_stop(&f);
    const char *extra[] = {"--chunk-delay-ms", "300", NULL};
    REQUIRE(fake_start(&f, extra) == 0);
    up = mk_up(GW_PROVIDER_OPENAI, &f, "gpt");
    sink = sink_of(&col);
    col.gone_after_texts = 1;
    t0 = now_ms();
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, &res), UPSTREAM_E_CANCELLED);
    CHECK(now_ms() - t0 < 1000);
    CHECK(res.started);
    CHECK(!res.retryable);
    CHECK_EQ_INT(col.n_done, 0);
    /* already gone: nothing is sent */
    int before = fake_count(&f);
    sink = sink_of(&col);
    col.gone_after_ms = 1e-9;
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, &res), UPSTREAM_E_CANCELLED);
    CHECK_EQ_INT(fake_count(&f), before);
    STOP(f);
}

TEST(upstream_connect_refused)
{
    struct upstream_pool *pool = NULL;
    REQUIRE(upstream_pool_new(&pool) == 0);
    struct fake f;
    REQUIRE(fake_start(&f, NULL) == 0);
    fake_stop(&f); /* its port is now (very likely) closed */
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "m");
    struct api_request req = mk_req(false);
    struct call got;
    CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), UPSTREAM_E_CONNECT);
    check_outcome(&got, 0, 502, 1, -1);
    upstream_pool_free(pool);
}

TEST(upstream_connection_reuse)
{
    START(f);
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "m");
    for (int i = 0; i < 3; i++) {
        struct api_request req = mk_req(i == 1);
        struct call got;
        CHECK_EQ_INT(call_run(&got, pool, &up, &req, NULL), 0);
    }
    json_t *a = fake_request(&f, 0), *b = fake_request(&f, 2);
    REQUIRE(a && b);
    CHECK_EQ_INT(json_integer_value(json_object_get(a, "client_port")),
                 json_integer_value(json_object_get(b, "client_port")));
    json_decref(a);
    json_decref(b);
    STOP(f);
}

struct thread_arg {
    struct upstream_pool *pool;
    const struct fake *f;
    int idx, ok;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 4; i++) {
        struct gw_upstream up = mk_up(THREE[(a->idx + i) % 3], a->f, "m");
        struct api_request req = mk_req((a->idx + i) % 2);
        struct call got;
        if (call_run(&got, a->pool, &up, &req, NULL) == 0 &&
            !strcmp(got.col.text, "You said: how are you") && got.col.n_done == 1)
            a->ok++;
    }
    return NULL;
}

TEST(upstream_threads)
{
    START(f);
    /* mk_up keeps one base string per provider: fill them before the threads share them */
    for (size_t i = 0; i < 3; i++)
        (void)mk_up(THREE[i], &f, "m");
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.pool = pool, .f = &f, .idx = i};
        REQUIRE(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].ok, 4);
    }
    STOP(f);
}

TEST(upstream_bad_arguments)
{
    struct upstream_pool *pool = NULL;
    REQUIRE(upstream_pool_new(&pool) == 0);
    struct fake f = {.base = "http://127.0.0.1:9"};
    struct gw_upstream up = mk_up(GW_PROVIDER_OPENAI, &f, "m");
    struct api_request req = mk_req(false);
    struct collect col;
    struct gen_sink sink = sink_of(&col);
    struct upstream_result res;
    CHECK_EQ_INT(upstream_call(NULL, &up, &req, &sink, NULL, &res), UPSTREAM_E_ARG);
    CHECK_EQ_INT(upstream_call(pool, NULL, &req, &sink, NULL, &res), UPSTREAM_E_ARG);
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, NULL), UPSTREAM_E_ARG);
    req.kind = API_EMBEDDING;
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, &res), UPSTREAM_E_ARG);
    CHECK_EQ_INT(res.error.status, 400);
    req.kind = API_CHAT;
    up.api_key = "bad\r\nX-Injected: 1";
    CHECK_EQ_INT(upstream_call(pool, &up, &req, &sink, NULL, &res), UPSTREAM_E_ARG);
    CHECK(strstr(res.error.message, "Injected") == NULL);
    up.api_key = KEY;
    up.base_url = "file:///etc";
    CHECK(upstream_call(pool, &up, &req, &sink, NULL, &res) < 0);
    CHECK_EQ_INT(col.n_done, 0);
    upstream_pool_free(pool);
    upstream_pool_free(NULL);
}
