/* OpenAI request parsing: a JSON body -> struct api_request, validated against api_limits. */
#include "server/api_openai.h"
#include "server/api_json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* Every allocation a request owns besides the JSON tree: a singly linked list freed at once. */
struct req_block {
    struct req_block *next;
    max_align_t data[];
};

struct req_priv {
    json_t *root; /* all jansson strings in the request point into this tree */
    struct req_block *blocks;
};

struct parse_ctx {
    struct api_request *r;
    struct req_priv *priv;
    struct api_limits lim;
    struct api_json_ctx j; /* j.err: where errors go */
    size_t text_bytes;     /* all text so far, against lim.max_text_bytes */
};

static void error_vset(struct api_error *e, int status, const char *type, const char *code,
                       const char *param, const char *fmt, va_list ap)
{
    e->status = status;
    e->type = type;
    e->code = code;
    e->param_buf[0] = 0;
    e->param = NULL;
    if (param) {
        /* Copied: callers build indexed names ("messages[3].role") in stack buffers. */
        snprintf(e->param_buf, sizeof(e->param_buf), "%s", param);
        e->param = e->param_buf;
    }
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

void api_error_set(struct api_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    error_vset(e, status, type, code, param, fmt, ap);
    va_end(ap);
}

void api_limits_default(struct api_limits *lim)
{
    lim->max_messages = 1024;
    lim->max_tokens = 32768;
    lim->max_text_bytes = 1u << 20;
    lim->max_logit_bias = 300;
    lim->max_inputs = 256;
}

void api_limits_resolve(struct api_limits *out, const struct api_limits *in)
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

/* A 400 invalid_request_error naming param. Always returns -1. */
__attribute__((format(printf, 4, 5))) static int fail(struct parse_ctx *c, const char *code,
                                                      const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(c->j.err, 400, INVALID, code, param, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_nomem(struct parse_ctx *c)
{
    api_error_set(c->j.err, 500, "server_error", NULL, NULL, "Out of memory parsing the request.");
    return -1;
}

static void *ctx_alloc(struct parse_ctx *c, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct req_block) - 1) {
        fail_nomem(c);
        return NULL;
    }
    struct req_block *b = malloc(sizeof(*b) + (n ? n : 1));
    if (!b) {
        fail_nomem(c);
        return NULL;
    }
    b->next = c->priv->blocks;
    c->priv->blocks = b;
    return b->data;
}

/* calloc-like: n * size with an overflow check. */
static void *ctx_array(struct parse_ctx *c, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        fail_nomem(c);
        return NULL;
    }
    void *p = ctx_alloc(c, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static int empty_array(struct parse_ctx *c, const char *param)
{
    return fail(c, "empty_array", param,
                "Invalid '%s': empty array. Expected an array with minimum length 1, but got "
                "an empty array instead.",
                param);
}

static int array_too_long(struct parse_ctx *c, const char *param, size_t max, size_t n)
{
    return fail(c, "array_above_max_length", param,
                "Invalid '%s': array too long. Expected an array with maximum length %zu, but "
                "got an array with length %zu instead.",
                param, max, n);
}

/* Counts n more bytes of text against the request's limit. */
static int add_text(struct parse_ctx *c, size_t n, const char *param)
{
    if (n > c->lim.max_text_bytes || c->text_bytes > c->lim.max_text_bytes - n)
        return fail(c, "request_too_large", param,
                    "The request has too much text: at most %zu bytes are allowed across all "
                    "messages, prompts, inputs and stop sequences.",
                    c->lim.max_text_bytes);
    c->text_bytes += n;
    return 0;
}

static int get_bool(struct parse_ctx *c, json_t *obj, const char *key, bool *out)
{
    json_t *v;
    if (api_json_want(&c->j, obj, key, API_JSON_KIND_BOOLEAN, key, &v))
        return -1;
    if (v)
        *out = json_is_true(v);
    return 0;
}

static int get_string(struct parse_ctx *c, json_t *obj, const char *key, const char **out)
{
    json_t *v;
    if (api_json_want(&c->j, obj, key, API_JSON_KIND_STRING, key, &v))
        return -1;
    if (v)
        *out = json_string_value(v);
    return 0;
}

/* A 400 for a number outside its range; bound and got are already formatted. */
static int range_err(struct parse_ctx *c, const char *param, bool integer, bool below,
                     const char *bound, const char *got)
{
    static const char *const codes[2][2] = {
        {"decimal_above_max_value", "decimal_below_min_value"},
        {"integer_above_max_value", "integer_below_min_value"},
    };
    return fail(c, codes[integer][below], param,
                "Invalid '%s': %s %s value. Expected a value %s %s, but got %s instead.", param,
                integer ? "integer" : "decimal", below ? "below minimum" : "above maximum",
                below ? ">=" : "<=", bound, got);
}

static int check_range(struct parse_ctx *c, const char *param, double x, double lo, double hi)
{
    if (!(x < lo) && !(x > hi))
        return 0;
    char bound[32], got[32];
    snprintf(bound, sizeof(bound), "%g", x < lo ? lo : hi);
    snprintf(got, sizeof(got), "%g", x);
    return range_err(c, param, false, x < lo, bound, got);
}

static int get_number(struct parse_ctx *c, json_t *obj, const char *key, double lo, double hi,
                      float *out)
{
    json_t *v;
    if (api_json_want(&c->j, obj, key, API_JSON_KIND_NUMBER, key, &v))
        return -1;
    if (!v)
        return 0;
    double x = json_number_value(v);
    if (check_range(c, key, x, lo, hi))
        return -1;
    *out = (float)x;
    return 0;
}

static int check_int_range(struct parse_ctx *c, const char *param, long long x, long long lo,
                           long long hi)
{
    if (x >= lo && x <= hi)
        return 0;
    char bound[32], got[32];
    snprintf(bound, sizeof(bound), "%lld", x < lo ? lo : hi);
    snprintf(got, sizeof(got), "%lld", x);
    return range_err(c, param, true, x < lo, bound, got);
}

/* An optional integer in [lo, hi]; *present tells whether it was given. */
static int get_int(struct parse_ctx *c, json_t *obj, const char *key, long long lo, long long hi,
                   int *out, bool *present)
{
    json_t *v;
    if (api_json_want(&c->j, obj, key, API_JSON_KIND_INTEGER, key, &v))
        return -1;
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    long long x = json_integer_value(v);
    if (check_int_range(c, key, x, lo, hi))
        return -1;
    *out = (int)x;
    return 0;
}

/* ---- chat messages ---- */

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};

static const char *known_role(const char *s)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (!strcmp(s, roles[i]))
            return roles[i];
    return NULL;
}

/* content as an array of parts: text parts joined with "\n" into request-owned memory. */
static int parse_content_parts(struct parse_ctx *c, json_t *parts, size_t mi, const char *role,
                               const char **out)
{
    char param[96];
    size_t n = json_array_size(parts), total = 0;
    snprintf(param, sizeof(param), "messages[%zu].content", mi);
    if (n == 0)
        return empty_array(c, param);
    for (size_t j = 0; j < n; j++) {
        json_t *part = json_array_get(parts, j);
        snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, j);
        if (!json_is_object(part))
            return api_json_type_error(&c->j, param, "an object", part);
        snprintf(param, sizeof(param), "messages[%zu].content[%zu].type", mi, j);
        json_t *type = api_json_need(&c->j, part, "type", API_JSON_KIND_STRING, param);
        if (!type)
            return -1;
        const char *t = json_string_value(type);
        /* Assistant turns may carry a refusal part; it is text the model said. */
        const char *field = !strcmp(t, "text")                                    ? "text"
                            : !strcmp(t, "refusal") && !strcmp(role, "assistant") ? "refusal"
                                                                                  : NULL;
        if (!field) {
            if (!strcmp(t, "image_url") || !strcmp(t, "input_audio") || !strcmp(t, "file"))
                return fail(c, "unsupported_value", param,
                            "Content parts of type '%s' are not supported by this model: only "
                            "text is.",
                            t);
            return fail(c, "invalid_value", param,
                        "Invalid value: '%.40s'. Supported values are: 'text', 'image_url', "
                        "'input_audio', 'refusal' and 'file'.",
                        t);
        }
        snprintf(param, sizeof(param), "messages[%zu].content[%zu].%s", mi, j, field);
        json_t *text = api_json_need(&c->j, part, field, API_JSON_KIND_STRING, param);
        if (!text)
            return -1;
        size_t len = json_string_length(text);
        if (add_text(c, len + (j > 0), param))
            return -1;
        total += len + (j > 0);
    }
    /* total is bounded by max_text_bytes, so total + 1 cannot overflow. */
    char *joined = ctx_alloc(c, total + 1);
    if (!joined)
        return -1;
    api_json_join_parts(joined, parts);
    *out = joined;
    return 0;
}

static int parse_message(struct parse_ctx *c, json_t *m, size_t i, struct api_message *out)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (!json_is_object(m))
        return api_json_type_error(&c->j, param, "an object", m);

    snprintf(param, sizeof(param), "messages[%zu].role", i);
    json_t *role = api_json_need(&c->j, m, "role", API_JSON_KIND_STRING, param);
    if (!role)
        return -1;
    out->role = known_role(json_string_value(role));
    if (!out->role)
        return fail(c, "invalid_value", param,
                    "Invalid value: '%.40s'. Supported values are: 'system', 'developer', "
                    "'user', 'assistant' and 'tool'.",
                    json_string_value(role));

    json_t *content = json_object_get(m, "content");
    snprintf(param, sizeof(param), "messages[%zu].content", i);
    if (!content || json_is_null(content)) {
        /* Only an assistant turn may omit content (it carried tool calls or a refusal). */
        if (strcmp(out->role, "assistant"))
            return api_json_missing_error(&c->j, param);
        out->content = "";
    } else if (json_is_string(content)) {
        if (add_text(c, json_string_length(content), param))
            return -1;
        out->content = json_string_value(content);
    } else if (json_is_array(content)) {
        if (parse_content_parts(c, content, i, out->role, &out->content))
            return -1;
    } else {
        return api_json_type_error(&c->j, param, "a string or an array of content parts", content);
    }

    json_t *name;
    snprintf(param, sizeof(param), "messages[%zu].name", i);
    if (api_json_want(&c->j, m, "name", API_JSON_KIND_STRING, param, &name))
        return -1;
    if (name) {
        if (add_text(c, json_string_length(name), param))
            return -1;
        out->name = json_string_value(name);
    }
    return 0;
}

static int parse_messages(struct parse_ctx *c, json_t *root)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs))
        return api_json_missing_error(&c->j, "messages");
    if (!json_is_array(msgs))
        return api_json_type_error(&c->j, "messages", "an array", msgs);
    size_t n = json_array_size(msgs);
    if (n == 0)
        return empty_array(c, "messages");
    if (n > c->lim.max_messages)
        return array_too_long(c, "messages", c->lim.max_messages, n);
    c->r->messages = ctx_array(c, n, sizeof(*c->r->messages));
    if (!c->r->messages)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (parse_message(c, json_array_get(msgs, i), i, &c->r->messages[i]))
            return -1;
    c->r->n_messages = n;
    return 0;
}

static int parse_tools(struct parse_ctx *c, json_t *root)
{
    static const char *const keys[] = {"tools", "functions"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = api_json_opt(root, keys[k]);
        if (v && !(json_is_array(v) && json_array_size(v) == 0))
            return fail(c, "unsupported_parameter", keys[k],
                        "tools are not supported by this model");
    }
    /* With no tools, "none" and "auto" ask for nothing; anything else asks for a tool call. */
    static const char *const choices[] = {"tool_choice", "function_call"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = api_json_opt(root, choices[k]);
        if (v && !(json_is_string(v) && (!strcmp(json_string_value(v), "none") ||
                                         !strcmp(json_string_value(v), "auto"))))
            return fail(c, "unsupported_parameter", "tools",
                        "tools are not supported by this model");
    }
    return 0;
}

/* ---- completions ---- */

static int parse_token_ids(struct parse_ctx *c, json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n > c->lim.max_text_bytes)
        return fail(c, "request_too_large", "prompt",
                    "Invalid 'prompt': at most %zu token ids are allowed.", c->lim.max_text_bytes);
    int32_t *ids = ctx_array(c, n, sizeof(*ids));
    if (!ids)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t))
            return fail(c, "invalid_type", "prompt",
                        "Invalid 'prompt': a token array must hold only integers, but element %zu "
                        "is %s.",
                        i, api_json_type_name(t));
        long long x = json_integer_value(t);
        if (x < 0 || x > INT32_MAX)
            return fail(c, "invalid_value", "prompt",
                        "Invalid 'prompt': token id %lld at index %zu is out of range (token ids "
                        "are integers from 0 to %d).",
                        x, i, INT32_MAX);
        ids[i] = (int32_t)x;
    }
    c->r->prompt_tokens = ids;
    c->r->n_prompt_tokens = n;
    return 0;
}

static int parse_prompt(struct parse_ctx *c, json_t *root)
{
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p))
        return api_json_missing_error(&c->j, "prompt");
    if (json_is_array(p)) {
        size_t n = json_array_size(p);
        if (n == 0)
            return fail(c, "empty_array", "prompt",
                        "Invalid 'prompt': empty array. Expected a string, an array of one "
                        "string or an array of token ids.");
        json_t *first = json_array_get(p, 0);
        if (json_is_integer(first))
            return parse_token_ids(c, p);
        if (n > 1)
            return fail(c, "unsupported_value", "prompt",
                        "Invalid 'prompt': batches of several prompts are not supported (n and "
                        "batch prompts are unsupported); send one prompt per request.");
        if (json_is_array(first)) {
            if (json_array_size(first) == 0)
                return fail(c, "empty_array", "prompt", "Invalid 'prompt': empty token array.");
            return parse_token_ids(c, first);
        }
        p = first;
    }
    if (!json_is_string(p))
        return api_json_type_error(&c->j, "prompt",
                                   "a string, an array of one string or an array of token ids", p);
    if (add_text(c, json_string_length(p), "prompt"))
        return -1;
    c->r->prompt = json_string_value(p);
    return 0;
}

static int parse_completion(struct parse_ctx *c, json_t *root)
{
    struct api_request *r = c->r;
    if (parse_prompt(c, root) || get_bool(c, root, "echo", &r->echo) ||
        get_string(c, root, "suffix", &r->suffix))
        return -1;
    if (r->suffix && r->suffix[0])
        return fail(c, "unsupported_parameter", "suffix",
                    "suffix is not supported by this model (no fill-in-the-middle).");
    int best_of = 1;
    if (get_int(c, root, "best_of", 1, 1 << 20, &best_of, NULL))
        return -1;
    if (best_of != 1)
        return fail(c, "unsupported_value", "best_of", "best_of > 1 is not supported");
    /* The legacy endpoint's `logprobs` is an integer: how many alternatives per token. */
    json_t *lp;
    if (api_json_want(&c->j, root, "logprobs", API_JSON_KIND_INTEGER, "logprobs", &lp))
        return -1;
    if (lp) {
        if (check_int_range(c, "logprobs", json_integer_value(lp), 0, 5))
            return -1;
        r->logprobs = true;
        r->top_logprobs = (int)json_integer_value(lp);
    }
    return 0;
}

/* ---- embeddings ---- */

static int parse_embedding(struct parse_ctx *c, json_t *root)
{
    struct api_request *r = c->r;
    json_t *in = json_object_get(root, "input");
    if (!in || json_is_null(in))
        return api_json_missing_error(&c->j, "input");
    const char *const unsupported_tokens =
        "Invalid 'input': token id inputs are not supported; send strings.";
    size_t n = 1;
    if (json_is_array(in)) {
        n = json_array_size(in);
        if (n == 0)
            return empty_array(c, "input");
        if (n > c->lim.max_inputs)
            return array_too_long(c, "input", c->lim.max_inputs, n);
    } else if (!json_is_string(in)) {
        return api_json_type_error(&c->j, "input", "a string or an array of strings", in);
    }
    r->inputs = ctx_array(c, n, sizeof(*r->inputs));
    if (!r->inputs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char param[96];
        json_t *s = json_is_array(in) ? json_array_get(in, i) : in;
        if (json_is_array(in))
            snprintf(param, sizeof(param), "input[%zu]", i);
        else
            snprintf(param, sizeof(param), "input");
        if (json_is_integer(s) || json_is_array(s))
            return fail(c, "unsupported_value", "input", "%s", unsupported_tokens);
        if (!json_is_string(s))
            return api_json_type_error(&c->j, param, "a string", s);
        if (json_string_length(s) == 0)
            return fail(c, "invalid_value", param,
                        "Invalid '%s': empty string. Each input must be a non-empty string.",
                        param);
        if (add_text(c, json_string_length(s), param))
            return -1;
        r->inputs[i] = json_string_value(s);
    }
    r->n_inputs = n;

    json_t *fmt;
    if (api_json_want(&c->j, root, "encoding_format", API_JSON_KIND_STRING, "encoding_format",
                      &fmt))
        return -1;
    if (fmt) {
        if (!strcmp(json_string_value(fmt), "base64"))
            r->base64 = true;
        else if (strcmp(json_string_value(fmt), "float"))
            return fail(c, "invalid_value", "encoding_format",
                        "Invalid value: '%.40s'. Supported values are: 'float' and 'base64'.",
                        json_string_value(fmt));
    }
    if (api_json_opt(root, "dimensions"))
        return fail(c, "unsupported_parameter", "dimensions",
                    "dimensions is not supported by this model: embeddings always have the "
                    "model's own size.");
    return get_string(c, root, "user", &r->user);
}

/* ---- generation parameters shared by chat and completions ---- */

static int parse_max_tokens(struct parse_ctx *c, json_t *root)
{
    static const char *const keys[] = {"max_tokens", "max_completion_tokens"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v;
        if (api_json_want(&c->j, root, keys[k], API_JSON_KIND_INTEGER, keys[k], &v))
            return -1;
        if (!v)
            continue;
        long long x = json_integer_value(v);
        if (x < 1)
            return check_int_range(c, keys[k], x, 1, c->lim.max_tokens);
        if (x > c->lim.max_tokens)
            return fail(c, "integer_above_max_value", keys[k],
                        "%s is too large: %lld. This model supports at most %d completion "
                        "tokens, whereas you provided %lld.",
                        keys[k], x, c->lim.max_tokens, x);
        /* max_completion_tokens is the newer name; it wins when both are given. */
        c->r->max_tokens = (int)x;
    }
    return 0;
}

static int parse_stop(struct parse_ctx *c, json_t *root)
{
    json_t *v = api_json_opt(root, "stop");
    if (!v)
        return 0;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return 0;
        if (add_text(c, json_string_length(v), "stop"))
            return -1;
        c->r->stop[c->r->n_stop++] = json_string_value(v);
        return 0;
    }
    if (!json_is_array(v))
        return api_json_type_error(&c->j, "stop", "a string or an array of strings", v);
    if (json_array_size(v) > API_MAX_STOP)
        return array_too_long(c, "stop", API_MAX_STOP, json_array_size(v));
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        char param[96];
        snprintf(param, sizeof(param), "stop[%zu]", i);
        if (!json_is_string(s))
            return api_json_type_error(&c->j, param, "a string", s);
        if (json_string_length(s) == 0)
            continue;
        if (add_text(c, json_string_length(s), param))
            return -1;
        c->r->stop[c->r->n_stop++] = json_string_value(s);
    }
    return 0;
}

/* A logit_bias key: a decimal token id, 0..INT32_MAX, nothing else. */
static bool parse_token_key(const char *s, int32_t *out)
{
    long long x = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        x = x * 10 + (*s - '0');
        if (x > INT32_MAX)
            return false;
    }
    *out = (int32_t)x;
    return true;
}

static int parse_logit_bias(struct parse_ctx *c, json_t *root)
{
    json_t *v;
    if (api_json_want(&c->j, root, "logit_bias", API_JSON_KIND_OBJECT, "logit_bias", &v))
        return -1;
    if (!v)
        return 0;
    size_t n = json_object_size(v);
    if (n > c->lim.max_logit_bias)
        return fail(c, "invalid_value", "logit_bias",
                    "Invalid 'logit_bias': too many entries (%zu); at most %zu are allowed.", n,
                    c->lim.max_logit_bias);
    if (n == 0)
        return 0;
    struct api_logit_bias *lb = ctx_array(c, n, sizeof(*lb));
    if (!lb)
        return -1;
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(v, key, val)
    {
        if (!parse_token_key(key, &lb[i].token))
            return fail(c, "invalid_value", "logit_bias",
                        "Invalid key in 'logit_bias': '%.40s' is not a token id (a decimal "
                        "integer >= 0).",
                        key);
        if (!json_is_number(val))
            return fail(c, "invalid_type", "logit_bias",
                        "Invalid value in 'logit_bias' for token %s: expected a number, but got "
                        "%s instead.",
                        key, api_json_type_name(val));
        double b = json_number_value(val);
        if (b < -100 || b > 100)
            return fail(c, "invalid_value", "logit_bias",
                        "Invalid value in 'logit_bias' for token %s: %g is outside [-100, 100].",
                        key, b);
        lb[i].bias = (float)b;
        i++;
    }
    c->r->logit_bias = lb;
    c->r->n_logit_bias = i;
    return 0;
}

static int parse_response_format(struct parse_ctx *c, json_t *root)
{
    struct api_request *r = c->r;
    json_t *rf;
    if (api_json_want(&c->j, root, "response_format", API_JSON_KIND_OBJECT, "response_format", &rf))
        return -1;
    if (!rf)
        return 0;
    json_t *type = api_json_need(&c->j, rf, "type", API_JSON_KIND_STRING, "response_format.type");
    if (!type)
        return -1;
    const char *t = json_string_value(type);
    if (!strcmp(t, "text"))
        r->format = API_FORMAT_TEXT;
    else if (!strcmp(t, "json_object"))
        r->format = API_FORMAT_JSON_OBJECT;
    else if (!strcmp(t, "json_schema"))
        r->format = API_FORMAT_JSON_SCHEMA;
    else
        return fail(c, "invalid_value", "response_format.type",
                    "Invalid value: '%.40s'. Supported values are: 'text', 'json_object' and "
                    "'json_schema'.",
                    t);
    if (r->format != API_FORMAT_JSON_SCHEMA)
        return 0;

    json_t *js = api_json_need(&c->j, rf, "json_schema", API_JSON_KIND_OBJECT,
                               "response_format.json_schema");
    if (!js)
        return -1;
    json_t *name =
        api_json_need(&c->j, js, "name", API_JSON_KIND_STRING, "response_format.json_schema.name");
    if (!name)
        return -1;
    r->schema_name = json_string_value(name);
    json_t *strict, *schema;
    if (api_json_want(&c->j, js, "strict", API_JSON_KIND_BOOLEAN,
                      "response_format.json_schema.strict", &strict))
        return -1;
    schema = api_json_need(&c->j, js, "schema", API_JSON_KIND_OBJECT,
                           "response_format.json_schema.schema");
    if (!schema)
        return -1;
    /* Two passes of json_dumpb keep the text in request memory (and off jansson's allocator). */
    size_t len = json_dumpb(schema, NULL, 0, JSON_COMPACT);
    if (len == 0)
        return fail_nomem(c);
    char *text = ctx_alloc(c, len + 1);
    if (!text)
        return -1;
    if (json_dumpb(schema, text, len, JSON_COMPACT) != len)
        return fail_nomem(c);
    text[len] = 0;
    r->schema_json = text;
    return 0;
}

static int parse_generation(struct parse_ctx *c, json_t *root)
{
    struct api_request *r = c->r;
    if (parse_max_tokens(c, root) || get_number(c, root, "temperature", 0, 2, &r->temperature) ||
        get_number(c, root, "top_p", 0, 1, &r->top_p) ||
        get_number(c, root, "presence_penalty", -2, 2, &r->presence_penalty) ||
        get_number(c, root, "frequency_penalty", -2, 2, &r->frequency_penalty))
        return -1;

    json_t *n, *seed;
    if (api_json_want(&c->j, root, "n", API_JSON_KIND_INTEGER, "n", &n))
        return -1;
    if (n) {
        if (json_integer_value(n) < 1)
            return check_int_range(c, "n", json_integer_value(n), 1, 1);
        if (json_integer_value(n) > 1)
            return fail(c, "unsupported_value", "n", "n > 1 is not supported");
    }

    if (api_json_want(&c->j, root, "seed", API_JSON_KIND_INTEGER, "seed", &seed))
        return -1;
    if (seed) {
        r->has_seed = true;
        r->seed = (uint64_t)(int64_t)json_integer_value(seed);
    }

    if (parse_stop(c, root) || parse_logit_bias(c, root) || parse_response_format(c, root) ||
        get_bool(c, root, "stream", &r->stream) || get_string(c, root, "user", &r->user))
        return -1;

    json_t *so = api_json_opt(root, "stream_options");
    if (so) {
        if (!r->stream)
            return fail(c, "invalid_value", "stream_options",
                        "The 'stream_options' parameter is only allowed when 'stream' is "
                        "enabled.");
        if (!json_is_object(so))
            return api_json_type_error(&c->j, "stream_options", "an object", so);
        json_t *iu;
        if (api_json_want(&c->j, so, "include_usage", API_JSON_KIND_BOOLEAN,
                          "stream_options.include_usage", &iu))
            return -1;
        r->include_usage = json_is_true(iu);
    }

    if (r->kind == API_CHAT) {
        bool tl_given = false;
        if (get_bool(c, root, "logprobs", &r->logprobs) ||
            get_int(c, root, "top_logprobs", 0, API_MAX_TOP_LOGPROBS, &r->top_logprobs, &tl_given))
            return -1;
        if (tl_given && !r->logprobs)
            return fail(c, "invalid_value", "top_logprobs",
                        "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                        "'top_logprobs' is used.");
    }
    return 0;
}

static void priv_free(struct req_priv *p)
{
    if (!p)
        return;
    struct req_block *b = p->blocks;
    while (b) {
        struct req_block *next = b->next;
        free(b);
        b = next;
    }
    json_decref(p->root);
    free(p);
}

void api_request_free(struct api_request *r)
{
    if (!r)
        return;
    priv_free(r->priv);
    memset(r, 0, sizeof(*r));
}

int api_request_parse(struct api_request *out, enum api_kind kind, const char *body, size_t len,
                      const struct api_limits *lim, struct api_error *err)
{
    struct api_error scratch;
    struct parse_ctx c = {.r = out, .j = {err ? err : &scratch, API_JSON_DIALECT_OPENAI}};
    api_limits_resolve(&c.lim, lim);
    if (!out) {
        api_error_set(c.j.err, 500, "server_error", NULL, NULL, "No request to fill.");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (kind != API_CHAT && kind != API_COMPLETION && kind != API_EMBEDDING) {
        api_error_set(c.j.err, 500, "server_error", NULL, NULL, "Unknown request kind.");
        return -1;
    }
    out->kind = kind;
    out->max_tokens = -1;
    out->temperature = 1;
    out->top_p = 1;
    if (!body && len) {
        fail(&c, NULL, NULL, "The request has no body.");
        return -1;
    }

    c.priv = calloc(1, sizeof(*c.priv));
    if (!c.priv) {
        fail_nomem(&c);
        return -1;
    }
    out->priv = c.priv;

    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);
    if (!root) {
        fail(&c, NULL, NULL,
             "We could not parse the JSON body of your request: %s (line %d, column %d). The "
             "API expects a JSON object.",
             jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    c.priv->root = root;
    if (!json_is_object(root)) {
        fail(&c, NULL, NULL, "The request body must be a JSON object, but got %s.",
             api_json_type_name(root));
        goto fail;
    }

    json_t *model = json_object_get(root, "model");
    if (!model || json_is_null(model)) {
        fail(&c, "missing_required_parameter", "model", "You must provide a model parameter.");
        goto fail;
    }
    if (!json_is_string(model)) {
        api_json_type_error(&c.j, "model", "a string", model);
        goto fail;
    }
    if (json_string_length(model) == 0) {
        fail(&c, "invalid_value", "model", "Invalid 'model': empty string.");
        goto fail;
    }
    out->model = json_string_value(model);

    int rc = 0;
    switch (kind) {
    case API_CHAT:
        rc = parse_messages(&c, root) || parse_tools(&c, root) || parse_generation(&c, root);
        break;
    case API_COMPLETION:
        rc = parse_completion(&c, root) || parse_generation(&c, root);
        break;
    case API_EMBEDDING:
        rc = parse_embedding(&c, root);
        break;
    }
    if (rc)
        goto fail;
    return 0;

fail:
    api_request_free(out);
    return -1;
}
