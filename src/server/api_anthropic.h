/* The Anthropic Messages wire format (inbound POST /v1/messages): request JSON -> struct
 * api_request, and the message, SSE event and error documents. No I/O, no engine. */
#ifndef TANDEM_SERVER_API_ANTHROPIC_H
#define TANDEM_SERVER_API_ANTHROPIC_H

#include "server/api_openai.h"

/* Anthropic accepts many stop sequences; tandem's engine takes API_MAX_STOP, and a request
 * with more gets a 400 that says so (rather than silently dropping some). */
#define API_ANTHROPIC_MAX_STOP API_MAX_STOP

/* Parses and validates an Anthropic Messages request body[0..len) into *out (kind API_CHAT), so
 * the rest of the server handles it exactly like an OpenAI chat request:
 *  - `system` (a string or an array of text blocks, joined with "\n") becomes a first message
 *    with role "system"; message content (a string or text blocks joined with "\n") is copied
 *    as is; image, document, tool_use, tool_result, thinking ... blocks give 400;
 *  - max_tokens is required (1 .. lim->max_tokens); temperature must lie in [0, 1];
 *    top_k is type-checked and ignored (the engine samples with temperature and top_p only);
 *  - stop_sequences -> stop (at most API_ANTHROPIC_MAX_STOP, else 400); metadata.user_id ->
 *    user; non-empty `tools`, a tool_choice that demands a tool and thinking "enabled" give 400;
 *    unknown fields are ignored.
 * Errors are 400 invalid_request_error whose param is Anthropic's dotted path
 * ("messages.1.content.0.type") and whose message starts with it; too much text (against
 * lim->max_text_bytes) is 413 request_too_large; out of memory is 500.
 * Returns 0, or -1 with *err filled (then *out holds nothing to free). On success *out owns its
 * memory exactly as after api_request_parse: release it with api_request_free. lim may be NULL
 * (defaults). */
int api_anthropic_parse(struct api_request *out, const char *body, size_t len,
                        const struct api_limits *lim, struct api_error *err);

/* Anthropic's error type for an HTTP status: 400 (and other 4xx) invalid_request_error, 401
 * authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
 * request_too_large, 429 rate_limit_error, 503/529 overloaded_error, 504 timeout_error, 500 and
 * other statuses api_error. Static string. */
const char *api_anthropic_error_type(int status);

/* {"type":"error","error":{"type":..,"message":..}} with the type from e->status (e->type, an
 * OpenAI name, is not used). malloc'd, NULL on OOM or a NULL e. */
char *api_anthropic_error_json(const struct api_error *e);

/* A finished message, or the data a streaming event needs. Nothing here is owned. */
struct api_anthropic_result {
    const char *id;    /* "msg_..." (NULL: "msg_tandem") */
    const char *model; /* echoed back (NULL: "") */
    const char *text;  /* the whole text, or this event's delta (NULL: "") */
    size_t text_len;
    const char *finish_reason;     /* in OpenAI terms: "stop", "length" or NULL (not finished) */
    const char *stop_sequence;     /* with "stop": the stop sequence that matched, NULL for the
                                    * model's own end of turn */
    const struct api_usage *usage; /* NULL: all zeros */
};

/* Anthropic's stop_reason for an OpenAI finish reason: "length" -> "max_tokens"; "stop" ->
 * "stop_sequence" when stop_sequence is non-NULL, else "end_turn"; "tool_calls" -> "tool_use";
 * "content_filter" -> "refusal"; NULL -> NULL (not finished); anything else -> "end_turn".
 * Static string. */
const char *api_anthropic_stop_reason(const char *finish_reason, const char *stop_sequence);

/* The non-streamed message: {"id","type":"message","role":"assistant","model","content":[{"type":
 * "text","text"}],"stop_reason","stop_sequence","usage":{"input_tokens","output_tokens",
 * "cache_creation_input_tokens":0,"cache_read_input_tokens"}}. As in Anthropic's accounting,
 * input_tokens excludes the cached prefix: it is prompt_tokens - cached_tokens, and the cached
 * part is cache_read_input_tokens. Model text is escaped with invalid UTF-8 replaced by U+FFFD.
 * malloc'd, NULL on OOM or a NULL r. */
char *api_anthropic_response_json(const struct api_anthropic_result *r);

/* The events of a stream, in the order Anthropic sends them for a text reply:
 * MESSAGE_START, CONTENT_BLOCK_START, PING, CONTENT_BLOCK_DELTA..., CONTENT_BLOCK_STOP,
 * MESSAGE_DELTA, MESSAGE_STOP (PING may also come at any time as a keep-alive). */
enum api_anthropic_event {
    API_ANTHROPIC_MESSAGE_START,       /* uses id, model, usage (input and cache tokens) */
    API_ANTHROPIC_CONTENT_BLOCK_START, /* index 0, an empty text block */
    API_ANTHROPIC_PING,
    API_ANTHROPIC_CONTENT_BLOCK_DELTA, /* uses text/text_len: one text_delta */
    API_ANTHROPIC_CONTENT_BLOCK_STOP,  /* index 0 */
    API_ANTHROPIC_MESSAGE_DELTA,       /* uses finish_reason, stop_sequence, usage (output) */
    API_ANTHROPIC_MESSAGE_STOP,
};

/* One SSE event "event: NAME\ndata: {...}\n\n" (compact JSON, so no raw newline inside).
 * r may be NULL for the events that use nothing from it. malloc'd, NULL on OOM or an unknown
 * event. */
char *api_anthropic_event_sse(enum api_anthropic_event ev, const struct api_anthropic_result *r);

/* "event: error\ndata: {"type":"error","error":{...}}\n\n": an error after the stream has begun
 * (the HTTP status is already 200, so the type carries it). malloc'd, NULL on OOM. */
char *api_anthropic_error_sse(const struct api_error *e);

#endif
