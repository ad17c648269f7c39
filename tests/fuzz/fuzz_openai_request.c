/* libFuzzer: OpenAI request bodies through api_request_parse, then every response document. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_openai.h"

#define MAX_FUZZ_TOKENS 64

/* A document we produced must be one JSON object; returns it (caller decrefs). */
static json_t *must_parse(const char *doc)
{
    if (!doc)
        abort(); /* no OOM under the fuzzer's limits */
    json_t *v = json_loads(doc, 0, NULL);
    if (!v || !json_is_object(v))
        abort();
    return v;
}

/* must_parse, taking (and freeing) the malloc'd document. */
static json_t *take_doc(char *doc)
{
    json_t *v = must_parse(doc);
    free(doc);
    return v;
}

/* "data: {...}\n\n" with no other line break: a raw newline would end the event early. */
static json_t *must_parse_sse(char *ev)
{
    if (!ev)
        abort();
    size_t n = strlen(ev);
    if (n < 8 || strncmp(ev, "data: ", 6) || strcmp(ev + n - 2, "\n\n"))
        abort();
    ev[n - 2] = 0;
    if (strchr(ev, '\n') || strchr(ev, '\r'))
        abort();
    json_t *v = must_parse(ev + 6);
    free(ev);
    return v;
}

static void check_doc(char *doc)
{
    json_decref(take_doc(doc));
}

/* Whether s[0..n) is UTF-8 that jansson takes as it is. */
static bool valid_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    json_decref(j);
    return j != NULL;
}

/* The text field at a path must equal what went in, when that was valid UTF-8. */
static void check_text(json_t *doc, const char *outer, const char *inner, const char *text,
                       size_t n)
{
    json_t *c = json_array_get(json_object_get(doc, "choices"), 0);
    if (outer)
        c = json_object_get(c, outer);
    json_t *s = json_object_get(c, inner);
    if (!json_is_string(s))
        abort();
    if (valid_utf8(text, n) &&
        (json_string_length(s) != n || memcmp(json_string_value(s), text, n)))
        abort();
}

/* Chat logprobs keep each token's raw bytes in "bytes". */
static void check_chat_logprobs(json_t *doc, const struct api_result *r)
{
    json_t *lp = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "logprobs");
    if (!r->want_logprobs) {
        if (!json_is_null(lp))
            abort();
        return;
    }
    json_t *content = json_object_get(lp, "content");
    if (json_array_size(content) != r->n_logprobs)
        abort();
    for (size_t i = 0; i < r->n_logprobs; i++) {
        const struct api_token_logprob *t = &r->logprobs[i];
        json_t *e = json_array_get(content, i), *bytes = json_object_get(e, "bytes");
        if (json_array_size(bytes) != t->token_len ||
            !json_is_number(json_object_get(e, "logprob")) ||
            json_array_size(json_object_get(e, "top_logprobs")) != (size_t)t->n_top)
            abort();
        for (size_t k = 0; k < t->token_len; k++)
            if (json_integer_value(json_array_get(bytes, k)) != (unsigned char)t->token[k])
                abort();
    }
}

/* Cuts text into tokens of 1..4 bytes (so some split a UTF-8 sequence), alternatives taken from
 * elsewhere in the text, logprobs from the bytes (some not finite, as a masked token's are). */
static size_t make_logprobs(struct api_token_logprob *lp, const char *text, size_t n, int n_top)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < MAX_FUZZ_TOKENS; k++) {
        unsigned char c = (unsigned char)text[i];
        size_t len = 1 + c % 4;
        if (len > n - i)
            len = n - i;
        struct api_token_logprob *t = &lp[k];
        t->token = text + i;
        t->token_len = len;
        t->logprob = c % 13 == 0 ? -INFINITY : c % 17 == 0 ? NAN : -(float)c / 16;
        t->n_top = n_top;
        for (int j = 0; j < n_top; j++) {
            size_t at = (i + (size_t)j * 7) % n, tl = 1 + (size_t)j % 3;
            t->top[j].token = text + at;
            t->top[j].token_len = tl > n - at ? n - at : tl;
            t->top[j].logprob = -(float)j - (float)c / 256;
        }
        i += len;
    }
    return k;
}

/* Every response document a request of this shape can lead to, each parsed back. */
static void format_all(const struct api_request *req)
{
    const char *text = "";
    if (req->kind == API_CHAT && req->n_messages)
        text = req->messages[0].content;
    else if (req->kind == API_COMPLETION && req->prompt)
        text = req->prompt;
    else if (req->kind == API_EMBEDDING && req->n_inputs)
        text = req->inputs[0];
    if (!text)
        abort();
    size_t n = strlen(text);
    int n_top = req->top_logprobs; /* 0..API_MAX_TOP_LOGPROBS, checked by check_request */
    static struct api_token_logprob lp[MAX_FUZZ_TOKENS];
    size_t n_lp = make_logprobs(lp, text, n, n_top);
    struct api_usage usage = {.prompt_tokens = (int)(n % 1000),
                              .completion_tokens = (int)n_lp,
                              .cached_tokens = req->n_stop};
    struct api_result r = {.id = req->user ? req->user : "chatcmpl-fuzz",
                           .created = 1721995200,
                           .model = req->model,
                           .text = text,
                           .text_len = n,
                           .finish_reason = req->stop[0] ? req->stop[0] : "stop",
                           .logprobs = lp,
                           .n_logprobs = n_lp,
                           .want_logprobs = req->logprobs,
                           .usage = &usage,
                           .text_offset = req->echo ? (int64_t)n : 0};

    json_t *d = take_doc(api_chat_response_json(&r));
    check_text(d, "message", "content", text, n);
    check_chat_logprobs(d, &r);
    json_decref(d);
    d = take_doc(api_completion_response_json(&r));
    check_text(d, NULL, "text", text, n);
    json_decref(d);

    /* Stream: a role chunk, a delta per token, a finishing chunk, the usage chunk. */
    struct api_result c = r;
    c.finish_reason = NULL;
    c.usage = NULL;
    c.usage_null = req->include_usage;
    c.text_len = 0;
    c.n_logprobs = 0;
    json_decref(must_parse_sse(api_chat_chunk_sse(&c, true, false)));
    for (size_t i = 0; i < n_lp; i++) {
        c.text = lp[i].token;
        c.text_len = lp[i].token_len;
        c.logprobs = &lp[i];
        c.n_logprobs = 1;
        c.text_offset = r.text_offset + (int64_t)i;
        d = must_parse_sse(api_chat_chunk_sse(&c, false, false));
        check_chat_logprobs(d, &c);
        json_decref(d);
        json_decref(must_parse_sse(api_completion_chunk_sse(&c, false)));
    }
    c.text_len = 0;
    c.n_logprobs = 0;
    c.finish_reason = r.finish_reason;
    json_decref(must_parse_sse(api_chat_chunk_sse(&c, false, false)));
    json_decref(must_parse_sse(api_completion_chunk_sse(&c, false)));
    c.usage = req->include_usage ? &usage : NULL;
    json_decref(must_parse_sse(api_chat_chunk_sse(&c, false, true)));
    json_decref(must_parse_sse(api_completion_chunk_sse(&c, true)));
    if (strcmp(api_sse_done(), "data: [DONE]\n\n"))
        abort();

    /* Embeddings: one small vector per input, from its bytes (NaN/inf must not leak out). */
    if (req->kind == API_EMBEDDING) {
        enum { DIM = 5 };
        size_t ni = req->n_inputs < 8 ? req->n_inputs : 8;
        static float store[8][DIM];
        const float *vecs[8];
        for (size_t i = 0; i < ni; i++) {
            const unsigned char *s = (const unsigned char *)req->inputs[i];
            for (int k = 0; k < DIM; k++) {
                unsigned char b = s[k % strlen(req->inputs[i])];
                store[i][k] = b == '!' ? NAN : b == '~' ? INFINITY : ((float)b - 100.0f) / 7.0f;
            }
            vecs[i] = store[i];
        }
        check_doc(api_embeddings_json(req->model, vecs, ni, DIM, req->base64, (int)n));
    }
    const char *ids[2] = {req->model, text}, *owners[2] = {req->user, NULL};
    check_doc(api_models_json(ids, owners, 2, 1721995200));
}

/* What a successful parse promises, whatever the body was. */
static void check_request(const struct api_request *r, enum api_kind kind,
                          const struct api_limits *lim)
{
    if (r->kind != kind || !r->model || !r->model[0] || !r->priv)
        abort();
    size_t text = 0;
    if (kind == API_CHAT) {
        if (r->n_messages < 1 || r->n_messages > lim->max_messages || !r->messages)
            abort();
        for (size_t i = 0; i < r->n_messages; i++) {
            const struct api_message *m = &r->messages[i];
            if (!m->role || !m->content)
                abort();
            text += strlen(m->content) + (m->name ? strlen(m->name) : 0);
        }
    } else if (kind == API_COMPLETION) {
        if (!r->prompt == !r->n_prompt_tokens || (r->n_prompt_tokens && !r->prompt_tokens))
            abort();
        for (size_t i = 0; i < r->n_prompt_tokens; i++)
            if (r->prompt_tokens[i] < 0)
                abort();
        if (r->prompt)
            text += strlen(r->prompt);
        if (r->suffix && r->suffix[0])
            abort();
    } else {
        if (r->n_inputs < 1 || r->n_inputs > lim->max_inputs)
            abort();
        for (size_t i = 0; i < r->n_inputs; i++) {
            if (!r->inputs[i] || !r->inputs[i][0])
                abort();
            text += strlen(r->inputs[i]);
        }
    }
    if (r->n_stop < 0 || r->n_stop > API_MAX_STOP)
        abort();
    for (int i = 0; i < r->n_stop; i++) {
        if (!r->stop[i] || !r->stop[i][0])
            abort();
        text += strlen(r->stop[i]);
    }
    if (text > lim->max_text_bytes)
        abort();
    if (r->max_tokens != -1 && (r->max_tokens < 1 || r->max_tokens > lim->max_tokens))
        abort();
    if (r->n_logit_bias > lim->max_logit_bias || (r->n_logit_bias && !r->logit_bias))
        abort();
    for (size_t i = 0; i < r->n_logit_bias; i++)
        if (r->logit_bias[i].token < 0 || !(fabsf(r->logit_bias[i].bias) <= 100))
            abort();
    if (!(r->temperature >= 0 && r->temperature <= 2) || !(r->top_p >= 0 && r->top_p <= 1) ||
        !(fabsf(r->presence_penalty) <= 2) || !(fabsf(r->frequency_penalty) <= 2))
        abort();
    if (r->top_logprobs < 0 || r->top_logprobs > API_MAX_TOP_LOGPROBS ||
        (r->top_logprobs && !r->logprobs))
        abort();
    if ((r->format == API_FORMAT_JSON_SCHEMA) != (r->schema_json != NULL) ||
        (r->schema_json && !r->schema_name))
        abort();
    if (r->schema_json) {
        json_t *s = json_loads(r->schema_json, 0, NULL);
        if (!json_is_object(s))
            abort();
        json_decref(s);
    }
    if (r->include_usage && !r->stream)
        abort();
}

/* The error contract: a client status, a type, one JSON document for the body. */
static void check_error(const struct api_error *e)
{
    if (e->status < 400 || e->status > 599 || !e->type ||
        !memchr(e->message, 0, sizeof(e->message)))
        abort();
    json_t *d = take_doc(api_error_json(e));
    json_t *err = json_object_get(d, "error");
    if (!json_is_string(json_object_get(err, "message")) ||
        !json_is_string(json_object_get(err, "type")))
        abort();
    json_decref(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum api_kind kinds[] = {API_CHAT, API_COMPLETION, API_EMBEDDING};
    struct api_limits lims[2];
    api_limits_default(&lims[0]);
    lims[1] = (struct api_limits){.max_messages = 2,
                                  .max_tokens = 16,
                                  .max_text_bytes = 48,
                                  .max_logit_bias = 2,
                                  .max_inputs = 2};
    for (size_t k = 0; k < 3; k++) {
        for (size_t l = 0; l < 2; l++) {
            struct api_request req;
            struct api_error err;
            memset(&err, 0, sizeof(err));
            if (api_request_parse(&req, kinds[k], (const char *)data, size, &lims[l], &err)) {
                check_error(&err);
                /* Nothing to free, and freeing the zeroed struct again is harmless. */
                api_request_free(&req);
                continue;
            }
            check_request(&req, kinds[k], &lims[l]);
            format_all(&req);
            api_request_free(&req);
        }
    }
    return 0;
}
