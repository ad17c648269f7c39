/* Upstream internals: the call state, bounded buffers, the SSE parser and the provider table
 * shared by upstream.c (libcurl plumbing) and upstream_{openai,anthropic,gemini}.c. */
#ifndef TANDEM_GATEWAY_UPSTREAM_IMPL_H
#define TANDEM_GATEWAY_UPSTREAM_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gateway/upstream.h"

#define UP_MAX_BODY (16u << 20)      /* a non-streamed answer */
#define UP_MAX_ERROR_BODY (64u << 10) /* kept of an error answer (the rest is dropped) */
#define UP_MAX_SSE_LINE (1u << 20)   /* one SSE line */
#define UP_MAX_SSE_DATA (4u << 20)   /* one SSE event's data, all lines joined */
#define UP_MAX_URL 4096
#define UP_MAX_REQUEST_BODY (64u << 20) /* the JSON we send (the API layer caps text earlier) */
#define UP_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* A growable byte buffer with a hard cap; always NUL-terminated when data != NULL. */
struct up_buf {
    char *data;
    size_t len, cap, max;
};
/* Appends n bytes: 0, UPSTREAM_E_NOMEM, or UPSTREAM_E_PROTOCOL when len would pass max. */
int up__buf_put(struct up_buf *b, const void *p, size_t n);
void up__buf_reset(struct up_buf *b); /* len = 0, memory kept */
void up__buf_free(struct up_buf *b);  /* accepts a zeroed struct */

/* Called per complete SSE event: `event` is the event: field ("message" when none), data the
 * data: lines joined with "\n" (NUL-terminated, len bytes). A negative return stops the
 * parser and is returned by up__sse_feed. */
typedef int (*up_sse_event_fn)(void *ud, const char *event, const char *data, size_t len);

/* A text/event-stream parser (WHATWG rules: CRLF, LF or CR line ends, comments, multi-line
 * data, event names) fed with arbitrary byte slices; lines over UP_MAX_SSE_LINE or events over
 * UP_MAX_SSE_DATA are a protocol error. */
struct up_sse {
    struct up_buf line, data;
    char event[64];
    bool has_data, after_cr;
    up_sse_event_fn on_event;
    void *ud;
};
void up__sse_init(struct up_sse *s, up_sse_event_fn on_event, void *ud);
/* Parses n more bytes: 0, or the first negative error (allocation, limit, on_event's). */
int up__sse_feed(struct up_sse *s, const char *p, size_t n);
void up__sse_free(struct up_sse *s); /* accepts a zeroed struct */

/* One call in flight, shared between the plumbing and the provider. */
struct up_call {
    const struct gw_upstream *up;
    const struct api_request *req;
    const struct gen_sink *sink;
    struct upstream_result *res;
    const char *finish;     /* "stop" / "length" once the upstream said; NULL before */
    bool terminal;          /* the stream's terminal event arrived */
    bool stream;            /* the answer is expected as SSE */
    int prompt_tokens, cached_tokens, completion_tokens;
    int fail;               /* a provider-detected failure (negative) or 0 */
};

/* Gives text to the sink (skips empty text) and marks the answer started. */
void up__emit(struct up_call *c, const char *text, size_t len);
/* Records a failure found while reading the answer (an error event, bad JSON): sets c->fail
 * and res->error (502 server_error, the message redacted); returns `err`. */
int up__fail(struct up_call *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fills res->error with a 400 for a request that cannot be translated; returns
 * UPSTREAM_E_ARG. */
int up__bad_request(struct up_call *c, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* JSON helpers. A float from the API rounded to 6 significant digits (0.7f -> 0.7). */
json_t *up__json_num(float f);
/* obj[key] as a non-negative int (clamped to INT_MAX), or 0 when absent or not a number. */
int up__json_count(const json_t *obj, const char *key);
/* Sets obj[key] = value, taking the reference; false on NULL value or failure (out of memory). */
bool up__json_set(json_t *obj, const char *key, json_t *value);
/* The message out of a vendor error document (error.message, error as a string, message, or
 * the first element of an array holding one of those); false when there is none. */
bool up__error_message(const char *body, size_t len, char *out, size_t cap);

/* What a provider builds for the plumbing to send. */
struct up_http {
    char url[UP_MAX_URL];
    struct curl_slist *headers; /* the vendor's own headers (auth, version) */
    char *body;                 /* malloc'd JSON */
};
/* Appends "name: value" to h->headers; UPSTREAM_E_ARG when value holds a control character
 * (header injection), UPSTREAM_E_NOMEM. */
int up__header(struct up_http *h, const char *name, const char *value);
/* Serializes a request document into h->body (compact); UPSTREAM_E_NOMEM/ARG on failure. */
int up__body(struct up_http *h, json_t *doc);

/* A vendor's wire format. Every slot is required. */
struct up_provider {
    const char *name;
    /* URL, headers (auth) and JSON body for c->req; fills res->error when it returns
     * UPSTREAM_E_ARG. Sets c->stream when the request asks for SSE. */
    int (*build)(struct up_call *c, struct up_http *h);
    /* A whole (non-streamed) response document: emits the text, sets finish and usage. */
    int (*parse)(struct up_call *c, json_t *root);
    /* One SSE event of a streamed response; sets c->terminal on the last one. */
    int (*event)(struct up_call *c, const char *event, const char *data, size_t len);
};
extern const struct up_provider up__openai, up__anthropic, up__gemini;

/* The text a chat request sends for a completion request (its string prompt) or a 400. */
int up__completion_prompt(struct up_call *c, const char **out);

#endif
