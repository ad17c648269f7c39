/* The OpenAI wire format: request JSON -> struct api_request (validated, bounded), and the
 * response, streaming chunk, embeddings, models and error JSON documents. No I/O, no engine. */
#ifndef TANDEM_SERVER_API_OPENAI_H
#define TANDEM_SERVER_API_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_MAX_STOP 4
#define API_MAX_TOP_LOGPROBS 20

enum api_kind { API_CHAT, API_COMPLETION, API_EMBEDDING };
enum api_format { API_FORMAT_TEXT, API_FORMAT_JSON_OBJECT, API_FORMAT_JSON_SCHEMA };

/* An error for the client: HTTP status and OpenAI's error object fields. */
struct api_error {
    int status;          /* 400, 401, 403, 404, 413, 429, 500, 503 ... */
    const char *type;    /* "invalid_request_error", "authentication_error", "not_found_error",
                          * "rate_limit_error", "server_error", "overloaded_error" ... (static) */
    const char *param;   /* the offending field ("messages[2].content") or NULL (static or
                          * points into param_buf) */
    const char *code;    /* e.g. "model_not_found", "context_length_exceeded" or NULL (static) */
    char message[512];
    char param_buf[96];
};
/* Fills e (message printf-style). param is copied into e->param_buf (e->param points there), so
 * it may be a temporary; a struct copy of e must re-point param. type and code must be static. */
void api_error_set(struct api_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* {"error":{"message":..,"type":..,"param":..,"code":..}} — malloc'd, NULL on OOM. */
char *api_error_json(const struct api_error *e);

struct api_limits {
    size_t max_messages;      /* chat messages per request (default 1024) */
    int max_tokens;           /* largest max_tokens a client may ask for (default 32768) */
    size_t max_text_bytes;    /* bytes of all text in a request (default 1 MiB) */
    size_t max_logit_bias;    /* entries (default 300, OpenAI's own bound) */
    size_t max_inputs;        /* embedding inputs per request (default 256) */
};
/* Fills lim with the defaults above. api_request_parse takes NULL for all defaults, and a zero
 * field means that field's default. */
void api_limits_default(struct api_limits *lim);
/* out = the defaults, overridden by each non-zero field of in (in may be NULL): the limits a
 * parser applies. */
void api_limits_resolve(struct api_limits *out, const struct api_limits *in);

struct api_message {
    const char *role;      /* "system", "developer", "user", "assistant", "tool" */
    const char *content;   /* text parts joined with "\n"; "" when null (assistant w/ tools) */
    const char *name;      /* or NULL */
};

struct api_logit_bias {
    int32_t token;
    float bias;            /* in [-100, 100] as OpenAI documents (outside: 400) */
};

/* A parsed request. Strings point into memory owned by the request (api_request_free). */
struct api_request {
    enum api_kind kind;
    const char *model;
    /* chat */
    struct api_message *messages;
    size_t n_messages;
    /* completions: a string prompt, or token ids (prompt given as an array of integers) */
    const char *prompt;
    int32_t *prompt_tokens;
    size_t n_prompt_tokens;
    bool echo;
    const char *suffix;         /* accepted only when NULL or "" (else 400) */
    /* embeddings: strings (a single string is one input) */
    const char **inputs;
    size_t n_inputs;
    bool base64;                /* encoding_format "base64" */
    int dimensions;             /* 0: model size (anything else: 400) */
    /* generation */
    int max_tokens;             /* max_tokens / max_completion_tokens; -1: not given */
    float temperature;          /* default 1 */
    float top_p;                /* default 1 */
    float presence_penalty, frequency_penalty;  /* [-2, 2] */
    bool has_seed;
    uint64_t seed;
    const char *stop[API_MAX_STOP];
    int n_stop;
    struct api_logit_bias *logit_bias;
    size_t n_logit_bias;
    bool logprobs;
    int top_logprobs;           /* 0..20; completions' integer `logprobs` N maps here, logprobs=true */
    enum api_format format;
    const char *schema_json;    /* json_schema.schema serialized (API_FORMAT_JSON_SCHEMA) */
    const char *schema_name;
    bool stream;
    bool include_usage;         /* stream_options.include_usage */
    const char *user;
    void *priv;                 /* owned memory */
};

/* Parses and validates body[0..len) as a request of `kind`. Unknown fields are ignored (as
 * OpenAI does for forward compatibility); wrong types, out-of-range values, n != 1, missing
 * required fields, limits exceeded give 400 with `param` naming the field. Returns 0, or -1
 * with *err filled (then *out holds nothing to free). */
int api_request_parse(struct api_request *out, enum api_kind kind, const char *body, size_t len,
                      const struct api_limits *lim, struct api_error *err);
void api_request_free(struct api_request *r);  /* accepts a zeroed struct */

struct api_usage {
    int prompt_tokens;
    int completion_tokens;
    int cached_tokens;          /* prompt tokens served from the prefix cache */
};

struct api_top_logprob {
    const char *token;          /* token text (may be a partial UTF-8 sequence) */
    size_t token_len;
    float logprob;
};
struct api_token_logprob {
    const char *token;
    size_t token_len;
    float logprob;
    int n_top;
    struct api_top_logprob top[API_MAX_TOP_LOGPROBS];
};

/* A finished (non-streamed) choice, or the data of one streamed chunk. */
struct api_result {
    const char *id;             /* "chatcmpl-..." / "cmpl-..." */
    int64_t created;            /* unix seconds */
    const char *model;
    const char *text;           /* the whole text, or this chunk's delta */
    size_t text_len;
    const char *finish_reason;  /* "stop", "length" or NULL (mid-stream) */
    const struct api_token_logprob *logprobs;  /* per token of `text`, or NULL */
    size_t n_logprobs;
    bool want_logprobs;         /* emit "logprobs": {...} (else "logprobs": null) */
    const struct api_usage *usage;  /* NULL: no usage field (but see usage_null) */
    bool usage_null;            /* chunks only, usage NULL: emit "usage":null, as OpenAI does on
                                 * every chunk of a stream with include_usage */
    int64_t text_offset;        /* completions' logprobs: text_offset of the first token, in code
                                 * points (the echoed prompt and earlier chunks before it) */
};

/* Each returns a malloc'd NUL-terminated string, NULL on OOM. Strings from the model are
 * escaped as JSON; invalid UTF-8 becomes U+FFFD (logprob token bytes keep the raw bytes in
 * "bytes"). */
char *api_chat_response_json(const struct api_result *r);
char *api_completion_response_json(const struct api_result *r);
/* One SSE event "data: {...}\n\n" of a chat.completion.chunk: role_first adds
 * "role":"assistant" to the delta (the first chunk); usage_only makes the final usage chunk
 * ("choices": [] and usage). */
char *api_chat_chunk_sse(const struct api_result *r, bool role_first, bool usage_only);
/* The same for text_completion chunks. */
char *api_completion_chunk_sse(const struct api_result *r, bool usage_only);
/* "data: [DONE]\n\n" (static; do not free). */
const char *api_sse_done(void);
/* {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...] or base64}],
 *  "model":..,"usage":{"prompt_tokens":..,"total_tokens":..}} — vecs[i] has dim floats. */
char *api_embeddings_json(const char *model, const float *const *vecs, size_t n, int dim,
                          bool base64, int prompt_tokens);
/* {"object":"list","data":[{"id":..,"object":"model","created":..,"owned_by":..}]} */
char *api_models_json(const char *const *ids, const char *const *owners, size_t n,
                      int64_t created);

#endif
