/* Anthropic Messages: request parsing into struct api_request, and message, event, error JSON. */
#include "server/api_anthropic.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"
/* A hard cap on any one document we build (a reply is bounded by max_tokens anyway). */
#define MAX_DOC_BYTES ((size_t)1 << 31)

/* ==== request ==== */

struct actx {
    struct api_limits lim;
    struct api_error *err;
    size_t text_bytes; /* all text so far, against lim.max_text_bytes */
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
        api_error_set(c->err, 400, INVALID, NULL, param, "%s: %s", param, msg);
    else
        api_error_set(c->err, 400, INVALID, NULL, NULL, "%s", msg);
    return -1;
}

static int fail_nomem(struct actx *c)
{
    api_error_set(c->err, 500, "api_error", NULL, NULL, "Out of memory parsing the request.");
    return -1;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int type_err(struct actx *c, const char *param, const char *expected, const json_t *v)
{
    return fail(c, param, "Input should be %s, but got %s.", expected, type_name(v));
}

static int missing(struct actx *c, const char *param)
{
    return fail(c, param, "Field required");
}

/* Counts n more bytes of text against the request's limit: 413 beyond it. */
static int add_text(struct actx *c, size_t n, const char *param)
{
    if (n > c->lim.max_text_bytes || c->text_bytes > c->lim.max_text_bytes - n) {
        api_error_set(c->err, 413, "request_too_large", NULL, param,
                      "%s: the request has too much text: at most %zu bytes are allowed across "
                      "the system prompt, all messages and stop sequences.",
                      param, c->lim.max_text_bytes);
        return -1;
    }
    c->text_bytes += n;
    return 0;
}

/* An optional field: NULL when absent or JSON null. */
static json_t *opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Sets key to v, taking the reference; a NULL v (OOM) fails. */
static int put(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static int push(json_t *arr, json_t *v)
{
    return v ? json_array_append_new(arr, v) : -1;
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
            return type_err(c, param, "an object", b);
        json_t *type = json_object_get(b, "type");
        snprintf(param, sizeof(param), "%s.%zu.type", base, j);
        if (!type)
            return missing(c, param);
        if (!json_is_string(type))
            return type_err(c, param, "a string", type);
        const char *t = json_string_value(type);
        if (strcmp(t, "text")) {
            if (is_unsupported_block(t))
                return fail(c, param,
                            "content blocks of type '%.40s' are not supported by this model: "
                            "only text is.",
                            t);
            return fail(c, param, "Input tag '%.40s' is not one of the expected tags: 'text'.", t);
        }
        json_t *text = json_object_get(b, "text");
        snprintf(param, sizeof(param), "%s.%zu.text", base, j);
        if (!text)
            return missing(c, param);
        if (!json_is_string(text))
            return type_err(c, param, "a string", text);
        size_t len = json_string_length(text);
        if (len == 0)
            return fail(c, param, "text content blocks must be non-empty");
        if (add_text(c, len + (j > 0), param))
            return -1;
        total += len + (j > 0);
    }
    /* total is bounded by max_text_bytes, so total + 1 cannot overflow. */
    char *joined = malloc(total + 1), *p = joined;
    if (!joined)
        return fail_nomem(c);
    for (size_t j = 0; j < n; j++) {
        json_t *text = json_object_get(json_array_get(blocks, j), "text");
        size_t len = json_string_length(text);
        if (j > 0)
            *p++ = '\n';
        memcpy(p, json_string_value(text), len);
        p += len;
    }
    *p = 0;
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
    return type_err(c, param, "a string or an array of content blocks", v);
}

/* {"role":role,"content":text}, taking the reference to text (also on failure). NULL on OOM. */
static json_t *chat_message(const char *role, json_t *text)
{
    json_t *m = json_object();
    if (!m) {
        json_decref(text);
        return NULL;
    }
    /* put() consumes its value even when it fails. */
    int bad = put(m, "content", text);
    bad |= put(m, "role", json_string(role));
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static int parse_message(struct actx *c, json_t *m, size_t i, size_t n, json_t *msgs_out)
{
    char param[96];
    snprintf(param, sizeof(param), "messages.%zu", i);
    if (!json_is_object(m))
        return type_err(c, param, "an object", m);

    json_t *role = json_object_get(m, "role");
    snprintf(param, sizeof(param), "messages.%zu.role", i);
    if (!role)
        return missing(c, param);
    if (!json_is_string(role))
        return type_err(c, param, "a string", role);
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
        return missing(c, param);
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
    return push(msgs_out, chat_message(assistant ? "assistant" : "user", text)) ? fail_nomem(c) : 0;
}

static int parse_messages(struct actx *c, json_t *root, json_t *msgs_out, bool has_system)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs))
        return missing(c, "messages");
    if (!json_is_array(msgs))
        return type_err(c, "messages", "an array", msgs);
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
    json_t *v = opt(root, "max_tokens");
    if (!v)
        return missing(c, "max_tokens");
    if (!json_is_integer(v))
        return type_err(c, "max_tokens", "an integer", v);
    long long x = json_integer_value(v);
    if (x < 1)
        return fail(c, "max_tokens", "Input should be greater than or equal to 1, but got %lld.",
                    x);
    if (x > c->lim.max_tokens)
        return fail(c, "max_tokens",
                    "%lld > %d, which is the maximum allowed number of output tokens for this "
                    "model.",
                    x, c->lim.max_tokens);
    return put(req, "max_tokens", json_integer(x)) ? fail_nomem(c) : 0;
}

/* An optional number in [lo, hi], copied to req when given. */
static int parse_number(struct actx *c, json_t *root, const char *key, double lo, double hi,
                        json_t *req)
{
    json_t *v = opt(root, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return type_err(c, key, "a number", v);
    double x = json_number_value(v);
    if (x < lo || x > hi)
        return fail(c, key, "Input should be between %g and %g, but got %g.", lo, hi, x);
    return req && put(req, key, json_real(x)) ? fail_nomem(c) : 0;
}

static int parse_stop_sequences(struct actx *c, json_t *root, json_t *req)
{
    json_t *v = opt(root, "stop_sequences");
    if (!v)
        return 0;
    if (!json_is_array(v))
        return type_err(c, "stop_sequences", "an array of strings", v);
    size_t n = json_array_size(v);
    if (n > API_ANTHROPIC_MAX_STOP)
        return fail(c, "stop_sequences",
                    "tandem supports at most %d stop sequences per request, got %zu.",
                    API_ANTHROPIC_MAX_STOP, n);
    if (n == 0)
        return 0;
    json_t *stop = json_array();
    if (!stop || put(req, "stop", stop))
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        char param[96];
        json_t *s = json_array_get(v, i);
        snprintf(param, sizeof(param), "stop_sequences.%zu", i);
        if (!json_is_string(s))
            return type_err(c, param, "a string", s);
        if (json_string_length(s) == 0)
            return fail(c, param, "stop sequences must be non-empty");
        if (add_text(c, json_string_length(s), param))
            return -1;
        if (push(stop, json_incref(s)))
            return fail_nomem(c);
    }
    return 0;
}

static int parse_metadata(struct actx *c, json_t *root, json_t *req)
{
    json_t *md = opt(root, "metadata");
    if (!md)
        return 0;
    if (!json_is_object(md))
        return type_err(c, "metadata", "an object", md);
    json_t *uid = opt(md, "user_id");
    if (!uid)
        return 0;
    if (!json_is_string(uid))
        return type_err(c, "metadata.user_id", "a string", uid);
    if (add_text(c, json_string_length(uid), "metadata.user_id"))
        return -1;
    return put(req, "user", json_incref(uid)) ? fail_nomem(c) : 0;
}

/* tools, tool_choice and thinking: features a text-only local model cannot honour. */
static int parse_unsupported(struct actx *c, json_t *root)
{
    json_t *tools = opt(root, "tools");
    if (tools && !(json_is_array(tools) && json_array_size(tools) == 0))
        return fail(c, "tools", "tools are not supported by this model.");

    json_t *tc = opt(root, "tool_choice");
    if (tc) {
        if (!json_is_object(tc))
            return type_err(c, "tool_choice", "an object", tc);
        json_t *t = json_object_get(tc, "type");
        if (!t)
            return missing(c, "tool_choice.type");
        if (!json_is_string(t))
            return type_err(c, "tool_choice.type", "a string", t);
        /* With no tools, "auto" and "none" ask for nothing; "any" and "tool" demand a call. */
        const char *s = json_string_value(t);
        if (strcmp(s, "auto") && strcmp(s, "none"))
            return fail(c, "tool_choice.type",
                        "tool_choice '%.40s' needs tools, which are not supported by this "
                        "model.",
                        s);
    }

    json_t *th = opt(root, "thinking");
    if (th) {
        if (!json_is_object(th))
            return type_err(c, "thinking", "an object", th);
        json_t *t = json_object_get(th, "type");
        if (!t)
            return missing(c, "thinking.type");
        if (!json_is_string(t))
            return type_err(c, "thinking.type", "a string", t);
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
    json_t *tk = opt(root, "top_k");
    if (tk) {
        if (!json_is_integer(tk))
            return type_err(c, "top_k", "an integer", tk);
        if (json_integer_value(tk) < 0)
            return fail(c, "top_k", "Input should be greater than or equal to 0, but got %lld.",
                        (long long)json_integer_value(tk));
    }
    json_t *st = opt(root, "stream");
    if (st) {
        if (!json_is_boolean(st))
            return type_err(c, "stream", "a boolean", st);
        if (put(req, "stream", json_boolean(json_is_true(st))))
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
        return missing(c, "model");
    if (!json_is_string(model))
        return type_err(c, "model", "a string", model);
    if (json_string_length(model) == 0)
        return fail(c, "model", "String should have at least 1 character.");
    if (put(req, "model", json_incref(model)))
        return fail_nomem(c);

    json_t *msgs = json_array();
    if (!msgs || put(req, "messages", msgs))
        return fail_nomem(c);
    json_t *sys = opt(root, "system");
    json_t *sys_text = NULL;
    if (sys && parse_text(c, sys, "system", &sys_text))
        return -1;
    /* An empty system prompt is the same as none. */
    bool has_system = sys_text && json_string_length(sys_text) > 0;
    if (has_system) {
        if (push(msgs, chat_message("system", sys_text)))
            return fail_nomem(c);
    } else {
        json_decref(sys_text);
    }
    return parse_messages(c, root, msgs, has_system) || parse_generation(c, root, req) ? -1 : 0;
}

static void limits_resolve(struct api_limits *out, const struct api_limits *in)
{
    api_limits_default(out);
    if (!in)
        return;
    if (in->max_messages)
        out->max_messages = in->max_messages;
    if (in->max_tokens > 0)
        out->max_tokens = in->max_tokens;
    if (in->max_text_bytes)
        out->max_text_bytes = in->max_text_bytes;
    if (in->max_logit_bias)
        out->max_logit_bias = in->max_logit_bias;
    if (in->max_inputs)
        out->max_inputs = in->max_inputs;
}

/* The Anthropic request is validated here, in Anthropic's terms, and then handed to
 * api_request_parse as the equivalent OpenAI chat request: *out then owns its memory exactly as
 * api_request_free expects, without this file depending on api_openai.c's private layout. */
int api_anthropic_parse(struct api_request *out, const char *body, size_t len,
                        const struct api_limits *lim, struct api_error *err)
{
    struct api_error scratch;
    struct actx c = {.err = err ? err : &scratch};
    limits_resolve(&c.lim, lim);
    if (!out) {
        api_error_set(c.err, 500, "api_error", NULL, NULL, "No request to fill.");
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
        fail(&c, NULL, "The request body must be a JSON object, but got %s.", type_name(root));
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
    rc = api_request_parse(out, API_CHAT, text, n, &c.lim, c.err);

out:
    free(text);
    json_decref(req);
    json_decref(root);
    return rc;
}

/* ==== documents ==== */

/* A growable output buffer with a hard cap. */
struct obuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void ob_add(struct obuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > MAX_DOC_BYTES || b->len > MAX_DOC_BYTES - n) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static int ob_dump_cb(const char *buf, size_t size, void *data)
{
    struct obuf *b = data;
    ob_add(b, buf, size);
    return b->failed ? -1 : 0;
}

/* prefix + compact JSON of doc + suffix as a malloc'd string (our malloc, not jansson's
 * allocator); drops the reference to doc. NULL when bad (a failed build) or on OOM. */
static char *finish(json_t *doc, int bad, const char *prefix, const char *suffix)
{
    struct obuf b = {0};
    if (bad || !doc) {
        json_decref(doc);
        return NULL;
    }
    ob_add(&b, prefix, strlen(prefix));
    if (json_dump_callback(doc, ob_dump_cb, &b, JSON_COMPACT))
        b.failed = true;
    ob_add(&b, suffix, strlen(suffix));
    json_decref(doc);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Bytes of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid or cut short; then *skip
 * is the length of its longest valid prefix (at least 1), which one U+FFFD replaces. */
static size_t utf8_next(const unsigned char *s, size_t n, size_t *skip)
{
    unsigned char c0 = s[0], lo = 0x80, hi = 0xBF; /* the range allowed for the second byte */
    size_t need;
    *skip = 1;
    if (c0 < 0x80)
        return 1;
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        need = 2;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        need = 3;
        lo = c0 == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c0 == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        need = 4;
        lo = c0 == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
        hi = c0 == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    for (size_t k = 1; k < need; k++) {
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (k >= n || s[k] < l || s[k] > h)
            return 0;
        *skip = k + 1;
    }
    return need;
}

/* A JSON string of s[0..n) with invalid UTF-8 replaced by U+FFFD; NULL s is "". NULL on OOM. */
static json_t *jstr(const char *s, size_t n)
{
    if (!s)
        return json_string("");
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, skip;
    while (i < n) {
        size_t k = utf8_next(u + i, n - i, &skip);
        if (!k)
            break;
        i += k;
    }
    if (i == n)
        return json_stringn(s, n);
    /* Each bad byte becomes at most 3 bytes. */
    unsigned char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    memcpy(buf, u, i);
    size_t o = i;
    while (i < n) {
        size_t k = utf8_next(u + i, n - i, &skip);
        if (k) {
            memcpy(buf + o, u + i, k);
            o += k;
            i += k;
        } else {
            buf[o++] = 0xEF;
            buf[o++] = 0xBF;
            buf[o++] = 0xBD;
            i += skip;
        }
    }
    json_t *j = json_stringn((const char *)buf, o);
    free(buf);
    return j;
}

static json_t *jcstr(const char *s)
{
    return jstr(s, s ? strlen(s) : 0);
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
        bad |= put(doc, "type", json_string("error"));
        bad |= put(inner, "type", json_string(api_anthropic_error_type(e->status)));
        /* The message may quote client text cut at 512 bytes: sanitize, never trust. */
        bad |= put(inner, "message", jstr(e->message, strnlen(e->message, sizeof(e->message))));
        bad |= put(doc, "error", json_incref(inner));
    }
    json_decref(inner);
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
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
    int bad = put(obj, "stop_reason", sr ? json_string(sr) : json_null());
    bool seq = sr && !strcmp(sr, "stop_sequence");
    bad |= put(obj, "stop_sequence", seq ? jcstr(r->stop_sequence) : json_null());
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
    int bad = put(o, "input_tokens", json_integer(input > 0 ? input : 0));
    bad |= put(o, "cache_creation_input_tokens", json_integer(0));
    bad |= put(o, "cache_read_input_tokens", json_integer(cached));
    bad |=
        put(o, "output_tokens", json_integer(u->completion_tokens > 0 ? u->completion_tokens : 0));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *text_block(const char *text, size_t len)
{
    json_t *b = json_object();
    if (!b)
        return NULL;
    if (put(b, "type", json_string("text")) || put(b, "text", jstr(text ? text : "", len))) {
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
        bad |= put(m, "id", jcstr(r->id ? r->id : "msg_tandem"));
        bad |= put(m, "type", json_string("message"));
        bad |= put(m, "role", json_string("assistant"));
        bad |= put(m, "model", jcstr(r->model ? r->model : ""));
        if (!start)
            bad |= push(content, text_block(r->text, r->text ? r->text_len : 0));
        bad |= put(m, "content", json_incref(content));
        if (start) {
            bad |= put(m, "stop_reason", json_null());
            bad |= put(m, "stop_sequence", json_null());
        } else {
            bad |= put_stop(m, r);
        }
        bad |= put(m, "usage", usage_json(r->usage));
    }
    json_decref(content);
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
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
    int bad = !doc || put(doc, "type", json_string(name));
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    switch (ev) {
    case API_ANTHROPIC_MESSAGE_START:
        bad |= put(doc, "message", message_json(r, true));
        break;
    case API_ANTHROPIC_CONTENT_BLOCK_START:
        bad |= put(doc, "index", json_integer(0));
        bad |= put(doc, "content_block", text_block("", 0));
        break;
    case API_ANTHROPIC_CONTENT_BLOCK_DELTA: {
        json_t *d = json_object();
        bad |= !d;
        if (d) {
            bad |= put(d, "type", json_string("text_delta"));
            bad |= put(d, "text", jstr(r->text ? r->text : "", r->text ? r->text_len : 0));
        }
        bad |= put(doc, "index", json_integer(0));
        bad |= put(doc, "delta", d);
        break;
    }
    case API_ANTHROPIC_CONTENT_BLOCK_STOP:
        bad |= put(doc, "index", json_integer(0));
        break;
    case API_ANTHROPIC_MESSAGE_DELTA: {
        json_t *d = json_object(), *u = json_object();
        bad |= !d || !u;
        if (d)
            bad |= put_stop(d, r);
        if (u)
            bad |= put(u, "output_tokens",
                       json_integer(r->usage && r->usage->completion_tokens > 0
                                        ? r->usage->completion_tokens
                                        : 0));
        bad |= put(doc, "delta", d);
        bad |= put(doc, "usage", u);
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
