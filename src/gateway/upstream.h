/* Upstream providers: one request to a cloud (or any OpenAI-compatible) API in the vendor's own
 * wire format over libcurl, its answer (streamed or not) translated into gen_sink calls. */
#ifndef TANDEM_GATEWAY_UPSTREAM_H
#define TANDEM_GATEWAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/config.h"
#include "gateway/sink.h"
#include "server/api_openai.h"

enum upstream_error {
    UPSTREAM_OK = 0,
    UPSTREAM_E_ARG = -1,
    UPSTREAM_E_NOMEM = -2,
    UPSTREAM_E_CONNECT = -3,    /* DNS, TCP, TLS, or the connect timeout */
    UPSTREAM_E_TIMEOUT = -4,    /* first-byte or total timeout */
    UPSTREAM_E_HTTP = -5,       /* the upstream answered an HTTP error (see http_status) */
    UPSTREAM_E_PROTOCOL = -6,   /* an answer we cannot read: bad JSON, truncated stream ... */
    UPSTREAM_E_CANCELLED = -7,  /* the sink's gone() said the client left */
};
const char *upstream_strerror(int err);

/* What happened, for retries, fallbacks, circuit breakers, metrics and the client's error. */
struct upstream_result {
    int http_status;        /* the upstream's status, 0 when none arrived */
    bool started;           /* bytes of the answer reached the sink: no retry, no fallback */
    bool retryable;         /* 408/409/429/5xx, connection errors, timeouts before any byte */
    int retry_after_ms;     /* from a Retry-After header, else 0 */
    double latency_ms;      /* request sent to the last byte */
    double ttfb_ms;         /* request sent to the first byte of the answer */
    int prompt_tokens, completion_tokens;  /* normalized usage reported by the upstream */
    struct api_error error; /* when the call failed: the error to give the client (OpenAI
                             * shape: upstream 4xx keep their status and message, 5xx and
                             * transport failures become 502/504) */
};

/* Shared libcurl state (connection reuse, HTTP/2): one per process, thread-safe. */
struct upstream_pool;
int upstream_pool_new(struct upstream_pool **out);
void upstream_pool_free(struct upstream_pool *p);  /* accepts NULL */

/* Sends `req` (its messages or prompt, sampling parameters, max_tokens, stop, stream) to the
 * provider `up` describes, with model id up->model, in the provider's format: OpenAI chat
 * completions (openai, mistral, openai-compatible), Anthropic Messages, Gemini
 * generateContent / streamGenerateContent. Streams upstream when req->stream is set, and calls
 * sink->text for each text delta and sink->done exactly once when the call succeeds (reason
 * "stop" or "length", usage normalized). On failure sink->done is NOT called: the caller
 * decides between retry, fallback and an error (res->started tells whether text was already
 * delivered; then the caller must end the client's answer itself). The X-Request-Id header
 * carries request_id upstream. Blocking: runs on the caller's thread, honours
 * up->timeouts and sink->gone. Secrets never appear in res->error. */
int upstream_call(struct upstream_pool *pool, const struct gw_upstream *up,
                  const struct api_request *req, const struct gen_sink *sink,
                  const char *request_id, struct upstream_result *res);

#endif
