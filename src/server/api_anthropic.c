/* Anthropic Messages: request parsing into struct api_request, and message, event, error JSON. */
#include "server/api_anthropic.h"
#include "server/api_json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* ==== request ==== */

struct actx {
    struct api_limits lim;
    struct api_json_ctx j; /* j.err: where errors go */
    size_t text_bytes;     /* all text so far, against lim.max_text_bytes */
};

/* A 400 invalid_request_error; the message starts with the param path, as Anthropic's do.
 * Always returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct actx *c, const char *param,
                                                      const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (param)
        api_error_set(c->j.err, 400, INVALID, NULL, param, "%s: %s", param, msg);
    else
        api_error_set(c->j.err, 400, INVALID, NULL, NULL, "%s", msg);
    return -1;
}

static int fail_nomem(struct actx *c)
{
    api_error_set(c->j.err, 500, "api_error", NULL, NULL, "Out of memory parsing the request.");
    return -1;
}

/* Counts n more bytes of text against the request's limit: 413 beyond it. */
static int add_text(struct actx *c, size_t n, const char *param)
{
    if (n > c->lim.max_text_bytes || c->text_bytes > c->lim.max_text_bytes - n) {
        api_error_set(c->j.err, 413, "request_too_large", NULL, param,
                      "%s: the request has too much text: at most %zu bytes are allowed across "
                      "the system prompt, all messages and stop sequences.",
                      param, c->lim.max_text_bytes);
        return -1;
    }
    c->text_bytes += n;
    return 0;
}

/* Block types Anthropic defines that tandem's text-only models cannot take. */
static const char *const unsupported_blocks[] = {
    "image",         "document",          "tool_use",        "tool_result",
    "thinking",      "redacted_thinking", "server_tool_use", "web_search_tool_result",
    "search_result", "container_upload",  "mcp_tool_use",    "mcp_tool_result",
};

static bool is_unsupported_block(const char *t)
{
    for (size_t i = 0; i < sizeof(unsupported_blocks) / sizeof(unsupported_blocks[0]); i++)
        if (!strcmp(t, unsupported_blocks[i]))
            return true;
    return false;
}

/* An array of content blocks at `base` ("system", "messages.2.content"): only text blocks, whose
 * texts are joined with "\n" into *out (a new jansson string). */
static int parse_blocks(struct actx *c, json_t *blocks, const char *base, json_t **out)
{
    char param[96];
    size_t n = json_array_size(blocks), total = 0;
    for (size_t j = 0; j < n; j++) {
        json_t *b = json_array_get(blocks, j);
        snprintf(param, sizeof(param), "%s.%zu", base, j);
        if (!json_is_object(b))
            return api_json_type_error(&c->j, param, "an object", b);
        snprintf(param, sizeof(param), "%s.%zu.type", base, j);
        json_t *type = api_json_need(&c->j, b, "type", API_JSON_KIND_STRING, param);
        if (!type)
            return -1;
        const char *t = json_string_value(type);
        if (strcmp(t, "text")) {
            if (is_unsupported_block(t))
                return fail(c, param,
                            "content blocks of type '%.40s' are not supported by this model: "
                            "only text is.",
                            t);
            return fail(c, param, "Input tag '%.40s' is not one of the expected tags: 'text'.", t);
        }
        snprintf(param, sizeof(param), "%s.%zu.text", base, j);
        json_t *text = api_json_need(&c->j, b, "text", API_JSON_KIND_STRING, param);
        if (!text)
            return -1;
        size_t len = json_string_length(text);
        if (len == 0)
            return fail(c, param, "text content blocks must be non-empty");
        if (add_text(c, len + (j > 0), param))
            return -1;
        total += len + (j > 0);
    }
    /* total is bounded by max_text_bytes, so total + 1 cannot overflow. */
    char *joined = malloc(total + 1);
    if (!joined)
        return fail_nomem(c);
    api_json_join_parts(joined, blocks);
    /* Valid UTF-8 joined with "\n" stays valid, so only OOM makes this NULL. */
    *out = json_stringn(joined, total);
    free(joined);
    return *out ? 0 : fail_nomem(c);
}

/* A string, or an array of text blocks, at param -> a new jansson string in *out. */
static int parse_text(struct actx *c, json_t *v, const char *param, json_t **out)
{
    if (json_is_string(v)) {
        if (add_text(c, json_string_length(v), param))
            return -1;
        *out = json_incref(v);
        return 0;
    }
    if (json_is_array(v))
        return parse_blocks(c, v, param, out);
    return api_json_type_error(&c->j, param, "a string or an array of content blocks", v);
}

/* {"role":role,"content":text}, taking the reference to text (also on failure). NULL on OOM. */
static json_t *chat_message(const char *role, json_t *text)
{
    json_t *m = json_object();
    if (!m) {
        json_decref(text);
        return NULL;
    }
    /* api_json_put() consumes its value even when it fails. */
    int bad = api_json_put(m, "content", text);
    bad |= api_json_put(m, "role", json_string(role));
    return api_json_built(m, bad);
}

static int parse_message(struct actx *c, json_t *m, size_t i, size_t n, json_t *msgs_out)
{
    char param[96];
    snprintf(param, sizeof(param), "messages.%zu", i);
    if (!json_is_object(m))
        return api_json_type_error(&c->j, param, "an object", m);

    snprintf(param, sizeof(param), "messages.%zu.role", i);
    json_t *role = api_json_need(&c->j, m, "role", API_JSON_KIND_STRING, param);
    if (!role)
        return -1;
    const char *r = json_string_value(role);
    if (!strcmp(r, "system"))
        return fail(c, param,
                    "Unexpected role \"system\". The Messages API accepts a top-level `system` "
                    "parameter, not \"system\" as an input message role.");
    if (strcmp(r, "user") && strcmp(r, "assistant"))
        return fail(c, param, "Input should be 'user' or 'assistant'.");
    bool assistant = !strcmp(r, "assistant");

    json_t *content = json_object_get(m, "content");
    snprintf(param, sizeof(param), "messages.%zu.content", i);
    if (!content)
        return api_json_missing_error(&c->j, param);
    json_t *text = NULL;
    if (parse_text(c, content, param, &text))
        return -1;
    /* Only a final assistant turn (a prefill the model continues) may be empty. */
    if (json_string_length(text) == 0 && !(assistant && i + 1 == n)) {
        json_decref(text);
        snprintf(param, sizeof(param), "messages.%zu", i);
        return fail(c, param,
                    "all messages must have non-empty content except for the optional final "
                    "assistant message");
    }
    return api_json_push(msgs_out, chat_message(assistant ? "assistant" : "user", text))
               ? fail_nomem(c)
               : 0;
}

static int parse_messages(struct actx *c, json_t *root, json_t *msgs_out, bool has_system)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs))
        return api_json_missing_error(&c->j, "messages");
    if (!json_is_array(msgs))
        return api_json_type_error(&c->j, "messages", "an array", msgs);
    size_t n = json_array_size(msgs);
    if (n == 0)
        return fail(c, "messages", "at least one message is required");
    if (n > c->lim.max_messages - has_system)
        return fail(c, "messages", "too many messages: at most %zu are allowed, got %zu.",
                    c->lim.max_messages - has_system, n);
    for (size_t i = 0; i < n; i++)
        if (parse_message(c, json_array_get(msgs, i), i, n, msgs_out))
            return -1;
    return 0;
}

static int parse_max_tokens(struct actx *c, json_t *root, json_t *req)
{
    json_t *v;
    if (api_json_want(&c->j, root, "max_tokens", API_JSON_KIND_INTEGER, "max_tokens", &v))
        return -1;
    if (!v)
        return api_json_missing_error(&c->j, "max_tokens");
    long long x = json_integer_value(v);
    if (x < 1)
        return fail(c, "max_tokens", "Input should be greater than or equal to 1, but got %lld.",
                    x);
    if (x > c->lim.max_tokens)
        return fail(c, "max_tokens",
                    "%lld > %d, which is the maximum allowed number of output tokens for this "
                    "model.",
                    x, c->lim.max_tokens);
    return api_json_put(req, "max_tokens", json_integer(x)) ? fail_nomem(c) : 0;
}

/* An optional number in [lo, hi], copied to req when given. */
static int parse_number(struct actx *c, json_t *root, const char *key, double lo, double hi,
                        json_t *req)
{
    json_t *v;
    if (api_json_want(&c->j, root, key, API_JSON_KIND_NUMBER, key, &v))
        return -1;
    if (!v)
        return 0;
    double x = json_number_value(v);
    if (x < lo || x > hi)
        return fail(c, key, "Input should be between %g and %g, but got %g.", lo, hi, x);
    return req && api_json_put(req, key, json_real(x)) ? fail_nomem(c) : 0;
}

static int parse_stop_sequences(struct actx *c, json_t *root, json_t *req)
{
    json_t *v = api_json_opt(root, "stop_sequences");
    if (!v)
        return 0;
    if (!json_is_array(v))
        return api_json_type_error(&c->j, "stop_sequences", "an array of strings", v);
    size_t n = json_array_size(v);
    if (n > API_ANTHROPIC_MAX_STOP)
        return fail(c, "stop_sequences",
                    "tandem supports at most %d stop sequences per request, got %zu.",
                    API_ANTHROPIC_MAX_STOP, n);
    if (n == 0)
        return 0;
    json_t *stop = json_array();
    if (!stop || api_json_put(req, "stop", stop))
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        char param[96];
        json_t *s = json_array_get(v, i);
        snprintf(param, sizeof(param), "stop_sequences.%zu", i);
        if (!json_is_string(s))
            return api_json_type_error(&c->j, param, "a string", s);
        if (json_string_length(s) == 0)
            return fail(c, param, "stop sequences must be non-empty");
        if (add_text(c, json_string_length(s), param))
            return -1;
        if (api_json_push(stop, json_incref(s)))
            return fail_nomem(c);
    }
    return 0;
}

static int parse_metadata(struct actx *c, json_t *root, json_t *req)
{
    json_t *md, *uid;
    if (api_json_want(&c->j, root, "metadata", API_JSON_KIND_OBJECT, "metadata", &md))
        return -1;
    if (!md)
        return 0;
    if (api_json_want(&c->j, md, "user_id", API_JSON_KIND_STRING, "metadata.user_id", &uid))
        return -1;
    if (!uid)
        return 0;
    if (add_text(c, json_string_length(uid), "metadata.user_id"))
        return -1;
    return api_json_put(req, "user", json_incref(uid)) ? fail_nomem(c) : 0;
}

/* tools, tool_choice and thinking: features a text-only local model cannot honour. */
static int parse_unsupported(struct actx *c, json_t *root)
{
    json_t *tools = api_json_opt(root, "tools");
    if (tools && !(json_is_array(tools) && json_array_size(tools) == 0))
        return fail(c, "tools", "tools are not supported by this model.");

    json_t *tc, *th;
    if (api_json_want(&c->j, root, "tool_choice", API_JSON_KIND_OBJECT, "tool_choice", &tc))
        return -1;
    if (tc) {
        json_t *t = api_json_need(&c->j, tc, "type", API_JSON_KIND_STRING, "tool_choice.type");
        if (!t)
            return -1;
        /* With no tools, "auto" and "none" ask for nothing; "any" and "tool" demand a call. */
        const char *s = json_string_value(t);
        if (strcmp(s, "auto") && strcmp(s, "none"))
            return fail(c, "tool_choice.type",
                        "tool_choice '%.40s' needs tools, which are not supported by this "
                        "model.",
                        s);
    }

    if (api_json_want(&c->j, root, "thinking", API_JSON_KIND_OBJECT, "thinking", &th))
        return -1;
    if (th) {
        json_t *t = api_json_need(&c->j, th, "type", API_JSON_KIND_STRING, "thinking.type");
        if (!t)
            return -1;
        if (strcmp(json_string_value(t), "disabled"))
            return fail(c, "thinking.type", "extended thinking is not supported by this model.");
    }
    return 0;
}

static int parse_generation(struct actx *c, json_t *root, json_t *req)
{
    if (parse_max_tokens(c, root, req) || parse_number(c, root, "temperature", 0, 1, req) ||
        parse_number(c, root, "top_p", 0, 1, req))
        return -1;
    /* top_k: validated, then ignored (the engine's OpenAI-shaped request has no top_k). */
    json_t *tk, *st;
    if (api_json_want(&c->j, root, "top_k", API_JSON_KIND_INTEGER, "top_k", &tk))
        return -1;
    if (tk) {
        if (json_integer_value(tk) < 0)
            return fail(c, "top_k", "Input should be greater than or equal to 0, but got %lld.",
                        (long long)json_integer_value(tk));
    }
    if (api_json_want(&c->j, root, "stream", API_JSON_KIND_BOOLEAN, "stream", &st))
        return -1;
    if (st) {
        if (api_json_put(req, "stream", json_boolean(json_is_true(st))))
            return fail_nomem(c);
    }
    return parse_stop_sequences(c, root, req) || parse_metadata(c, root, req) ||
                   parse_unsupported(c, root)
               ? -1
               : 0;
}

/* Validates root and builds the equivalent OpenAI chat request in req. */
static int translate(struct actx *c, json_t *root, json_t *req)
{
    json_t *model = json_object_get(root, "model");
    if (!model || json_is_null(model))
        return api_json_missing_error(&c->j, "model");
    if (!json_is_string(model))
        return api_json_type_error(&c->j, "model", "a string", model);
    if (json_string_length(model) == 0)
        return fail(c, "model", "String should have at least 1 character.");
    if (api_json_put(req, "model", json_incref(model)))
        return fail_nomem(c);

    json_t *msgs = json_array();
    if (!msgs || api_json_put(req, "messages", msgs))
        return fail_nomem(c);
    json_t *sys = api_json_opt(root, "system");
    json_t *sys_text = NULL;
    if (sys && parse_text(c, sys, "system", &sys_text))
        return -1;
    /* An empty system prompt is the same as none. */
    bool has_system = sys_text && json_string_length(sys_text) > 0;
    if (has_system) {
        if (api_json_push(msgs, chat_message("system", sys_text)))
            return fail_nomem(c);
    } else {
        json_decref(sys_text);
    }
    return parse_messages(c, root, msgs, has_system) || parse_generation(c, root, req) ? -1 : 0;
}

/* The Anthropic request is validated here, in Anthropic's terms, and then handed to
 * api_request_parse as the equivalent OpenAI chat request: *out then owns its memory exactly as
 * api_request_free expects, without this file depending on api_openai.c's private layout. */
int api_anthropic_parse(struct api_request *out, const char *body, size_t len,
                        const struct api_limits *lim, struct api_error *err)
{
    struct api_error scratch;
    struct actx c = {.j = {err ? err : &scratch, API_JSON_DIALECT_ANTHROPIC}};
    api_limits_resolve(&c.lim, lim);
    if (!out) {
        api_error_set(c.j.err, 500, "api_error", NULL, NULL, "No request to fill.");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (!body && len)
        return fail(&c, NULL, "The request has no body.");

    int rc = -1;
    char *text = NULL;
    json_t *req = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);
    if (!root) {
        fail(&c, NULL, "The request body is not valid JSON: %s (line %d, column %d).", jerr.text,
             jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        fail(&c, NULL, "The request body must be a JSON object, but got %s.",
             api_json_type_name(root));
        goto out;
    }
    req = json_object();
    if (!req) {
        fail_nomem(&c);
        goto out;
    }
    if (translate(&c, root, req))
        goto out;

    size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
    if (n == 0 || n == SIZE_MAX || !(text = malloc(n))) {
        fail_nomem(&c);
        goto out;
    }
    if (json_dumpb(req, text, n, JSON_COMPACT) != n) {
        fail_nomem(&c);
        goto out;
    }
    /* Everything was checked above, so this fails only on OOM (its error is then reported). */
    rc = api_request_parse(out, API_CHAT, text, n, &c.lim, c.j.err);

out:
    free(text);
    json_decref(req);
    json_decref(root);
    return rc;
}

/* ==== documents ==== */

/* prefix + compact JSON of doc + suffix as a malloc'd string; drops the reference to doc. NULL
 * when bad (a failed build) or on OOM. */
static char *finish(json_t *doc, int bad, const char *prefix, const char *suffix)
{
    return api_json_finish(doc, bad, JSON_COMPACT, prefix, suffix);
}

const char *api_anthropic_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    }
    /* Anthropic uses invalid_request_error for the 4xx statuses it does not list. */
    return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
}

/* {"type":"error","error":{"type":..,"message":..}}, or NULL on OOM. */
static json_t *error_doc(const struct api_error *e)
{
    json_t *doc = json_object(), *inner = json_object();
    int bad = !doc || !inner;
    if (!bad) {
        bad |= api_json_put(doc, "type", json_string("error"));
        bad |= api_json_put(inner, "type", json_string(api_anthropic_error_type(e->status)));
        /* The message may quote client text cut at 512 bytes: sanitize, never trust. */
        bad |= api_json_put(inner, "message",
                            api_json_str(e->message, strnlen(e->message, sizeof(e->message))));
        bad |= api_json_put(doc, "error", json_incref(inner));
    }
    json_decref(inner);
    return api_json_built(doc, bad);
}

char *api_anthropic_error_json(const struct api_error *e)
{
    if (!e)
        return NULL;
    json_t *doc = error_doc(e);
    return finish(doc, !doc, "", "");
}

char *api_anthropic_error_sse(const struct api_error *e)
{
    if (!e)
        return NULL;
    json_t *doc = error_doc(e);
    return finish(doc, !doc, "event: error\ndata: ", "\n\n");
}

const char *api_anthropic_stop_reason(const char *finish_reason, const char *stop_sequence)
{
    if (!finish_reason)
        return NULL;
    if (!strcmp(finish_reason, "length"))
        return "max_tokens";
    if (!strcmp(finish_reason, "stop"))
        return stop_sequence ? "stop_sequence" : "end_turn";
    if (!strcmp(finish_reason, "tool_calls"))
        return "tool_use";
    if (!strcmp(finish_reason, "content_filter"))
        return "refusal";
    return "end_turn";
}

/* "stop_reason" and "stop_sequence" into obj (null when not finished). */
static int put_stop(json_t *obj, const struct api_anthropic_result *r)
{
    const char *sr = api_anthropic_stop_reason(r->finish_reason, r->stop_sequence);
    int bad = api_json_put(obj, "stop_reason", sr ? json_string(sr) : json_null());
    bool seq = sr && !strcmp(sr, "stop_sequence");
    bad |= api_json_put(obj, "stop_sequence", seq ? api_json_cstr(r->stop_sequence) : json_null());
    return bad;
}

static json_t *usage_json(const struct api_usage *u)
{
    struct api_usage zero = {0};
    if (!u)
        u = &zero;
    int cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
    if (cached > u->prompt_tokens)
        cached = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
    int input = u->prompt_tokens - cached;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = api_json_put(o, "input_tokens", json_integer(input > 0 ? input : 0));
    bad |= api_json_put(o, "cache_creation_input_tokens", json_integer(0));
    bad |= api_json_put(o, "cache_read_input_tokens", json_integer(cached));
    bad |= api_json_put(o, "output_tokens",
                        json_integer(u->completion_tokens > 0 ? u->completion_tokens : 0));
    return api_json_built(o, bad);
}

static json_t *text_block(const char *text, size_t len)
{
    json_t *b = json_object();
    if (!b)
        return NULL;
    if (api_json_put(b, "type", json_string("text")) ||
        api_json_put(b, "text", api_json_str(text ? text : "", len))) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* The message object; `start` gives message_start's form (empty content, no stop reason). */
static json_t *message_json(const struct api_anthropic_result *r, bool start)
{
    json_t *m = json_object(), *content = json_array();
    int bad = !m || !content;
    if (!bad) {
        bad |= api_json_put(m, "id", api_json_cstr(r->id ? r->id : "msg_tandem"));
        bad |= api_json_put(m, "type", json_string("message"));
        bad |= api_json_put(m, "role", json_string("assistant"));
        bad |= api_json_put(m, "model", api_json_cstr(r->model ? r->model : ""));
        if (!start)
            bad |= api_json_push(content, text_block(r->text, r->text ? r->text_len : 0));
        bad |= api_json_put(m, "content", json_incref(content));
        if (start) {
            bad |= api_json_put(m, "stop_reason", json_null());
            bad |= api_json_put(m, "stop_sequence", json_null());
        } else {
            bad |= put_stop(m, r);
        }
        bad |= api_json_put(m, "usage", usage_json(r->usage));
    }
    json_decref(content);
    return api_json_built(m, bad);
}

char *api_anthropic_response_json(const struct api_anthropic_result *r)
{
    if (!r)
        return NULL;
    json_t *m = message_json(r, false);
    return finish(m, !m, "", "");
}

static const char *const event_names[] = {
    [API_ANTHROPIC_MESSAGE_START] = "message_start",
    [API_ANTHROPIC_CONTENT_BLOCK_START] = "content_block_start",
    [API_ANTHROPIC_PING] = "ping",
    [API_ANTHROPIC_CONTENT_BLOCK_DELTA] = "content_block_delta",
    [API_ANTHROPIC_CONTENT_BLOCK_STOP] = "content_block_stop",
    [API_ANTHROPIC_MESSAGE_DELTA] = "message_delta",
    [API_ANTHROPIC_MESSAGE_STOP] = "message_stop",
};

char *api_anthropic_event_sse(enum api_anthropic_event ev, const struct api_anthropic_result *r)
{
    static const struct api_anthropic_result none = {0};
    if ((unsigned)ev >= sizeof(event_names) / sizeof(event_names[0]))
        return NULL;
    if (!r)
        r = &none;
    const char *name = event_names[ev];
    json_t *doc = json_object();
    int bad = !doc || api_json_put(doc, "type", json_string(name));
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    switch (ev) {
    case API_ANTHROPIC_MESSAGE_START:
        bad |= api_json_put(doc, "message", message_json(r, true));
        break;
    case API_ANTHROPIC_CONTENT_BLOCK_START:
        bad |= api_json_put(doc, "index", json_integer(0));
        bad |= api_json_put(doc, "content_block", text_block("", 0));
        break;
    case API_ANTHROPIC_CONTENT_BLOCK_DELTA: {
        json_t *d = json_object();
        bad |= !d;
        if (d) {
            bad |= api_json_put(d, "type", json_string("text_delta"));
            bad |= api_json_put(d, "text",
                                api_json_str(r->text ? r->text : "", r->text ? r->text_len : 0));
        }
        bad |= api_json_put(doc, "index", json_integer(0));
        bad |= api_json_put(doc, "delta", d);
        break;
    }
    case API_ANTHROPIC_CONTENT_BLOCK_STOP:
        bad |= api_json_put(doc, "index", json_integer(0));
        break;
    case API_ANTHROPIC_MESSAGE_DELTA: {
        json_t *d = json_object(), *u = json_object();
        bad |= !d || !u;
        if (d)
            bad |= put_stop(d, r);
        if (u)
            bad |= api_json_put(u, "output_tokens",
                                json_integer(r->usage && r->usage->completion_tokens > 0
                                                 ? r->usage->completion_tokens
                                                 : 0));
        bad |= api_json_put(doc, "delta", d);
        bad |= api_json_put(doc, "usage", u);
        break;
    }
    case API_ANTHROPIC_PING:
    case API_ANTHROPIC_MESSAGE_STOP:
        break;
    }
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "event: %s\ndata: ", name);
    return finish(doc, bad, prefix, "\n\n");
}
