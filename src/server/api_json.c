/* JSON helpers the OpenAI and Anthropic wire formats share: UTF-8, typed fields, output buffers. */
#include "server/api_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* ---- UTF-8 ---- */

size_t api_json_utf8_seq(const unsigned char *s, size_t n, size_t *consumed)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    *consumed = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n)
            return 0;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
        *consumed = i + 1;
    }
    return need;
}

bool api_json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t used, len = api_json_utf8_seq(u + i, n - i, &used);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

json_t *api_json_str(const char *s, size_t n)
{
    if (!s)
        return json_string("");
    if (api_json_utf8_valid(s, n))
        return json_stringn(s, n);
    /* Each bad byte becomes at most 3 bytes. */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    unsigned char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t used, len = api_json_utf8_seq(u + i, n - i, &used);
        if (len) {
            memcpy(out + o, u + i, len);
            o += len;
            i += len;
        } else {
            out[o++] = 0xEF;
            out[o++] = 0xBF;
            out[o++] = 0xBD;
            i += used;
        }
    }
    json_t *j = json_stringn((const char *)out, o);
    free(out);
    return j;
}

json_t *api_json_cstr(const char *s)
{
    return api_json_str(s, s ? strlen(s) : 0);
}

/* ---- reading typed fields ---- */

const char *api_json_type_name(const json_t *v)
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

json_t *api_json_opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int api_json_type_error(const struct api_json_ctx *j, const char *param, const char *expected,
                        const json_t *v)
{
    if (j->dialect == API_JSON_DIALECT_ANTHROPIC)
        api_error_set(j->err, 400, INVALID, NULL, param, "%s: Input should be %s, but got %s.",
                      param, expected, api_json_type_name(v));
    else
        api_error_set(j->err, 400, INVALID, "invalid_type", param,
                      "Invalid type for '%s': expected %s, but got %s instead.", param, expected,
                      api_json_type_name(v));
    return -1;
}

int api_json_missing_error(const struct api_json_ctx *j, const char *param)
{
    if (j->dialect == API_JSON_DIALECT_ANTHROPIC)
        api_error_set(j->err, 400, INVALID, NULL, param, "%s: Field required", param);
    else
        api_error_set(j->err, 400, INVALID, "missing_required_parameter", param,
                      "Missing required parameter: '%s'.", param);
    return -1;
}

/* How a type error names what each kind expects. */
static const char *const kind_names[] = {
    [API_JSON_KIND_OBJECT] = "an object", [API_JSON_KIND_ARRAY] = "an array",
    [API_JSON_KIND_STRING] = "a string",  [API_JSON_KIND_INTEGER] = "an integer",
    [API_JSON_KIND_NUMBER] = "a number",  [API_JSON_KIND_BOOLEAN] = "a boolean",
};

static bool is_kind(const json_t *v, enum api_json_kind k)
{
    switch (k) {
    case API_JSON_KIND_OBJECT:
        return json_is_object(v);
    case API_JSON_KIND_ARRAY:
        return json_is_array(v);
    case API_JSON_KIND_STRING:
        return json_is_string(v);
    case API_JSON_KIND_INTEGER:
        return json_is_integer(v);
    case API_JSON_KIND_NUMBER:
        return json_is_number(v);
    case API_JSON_KIND_BOOLEAN:
        return json_is_boolean(v);
    }
    return false;
}

json_t *api_json_need(const struct api_json_ctx *j, json_t *obj, const char *key,
                      enum api_json_kind k, const char *param)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        api_json_missing_error(j, param);
        return NULL;
    }
    if (!is_kind(v, k)) {
        api_json_type_error(j, param, kind_names[k], v);
        return NULL;
    }
    return v;
}

int api_json_want(const struct api_json_ctx *j, json_t *obj, const char *key, enum api_json_kind k,
                  const char *param, json_t **out)
{
    json_t *v = api_json_opt(obj, key);
    *out = NULL;
    if (v && !is_kind(v, k))
        return api_json_type_error(j, param, kind_names[k], v);
    *out = v;
    return 0;
}

size_t api_json_join_parts(char *dst, json_t *parts)
{
    char *p = dst;
    for (size_t j = 0; j < json_array_size(parts); j++) {
        json_t *part = json_array_get(parts, j);
        json_t *text = json_object_get(part, json_string_value(json_object_get(part, "type")));
        size_t len = json_string_length(text);
        if (j > 0)
            *p++ = '\n';
        memcpy(p, json_string_value(text), len);
        p += len;
    }
    *p = 0;
    return (size_t)(p - dst);
}

/* ---- building documents ---- */

int api_json_put(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

int api_json_push(json_t *arr, json_t *v)
{
    return v ? json_array_append_new(arr, v) : -1;
}

json_t *api_json_built(json_t *v, int bad)
{
    if (bad) {
        json_decref(v);
        return NULL;
    }
    return v;
}

void api_json_buf_add(struct api_json_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > API_JSON_MAX_DOC_BYTES || b->len > API_JSON_MAX_DOC_BYTES - n) {
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

void api_json_buf_str(struct api_json_buf *b, const char *s)
{
    api_json_buf_add(b, s, strlen(s));
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct api_json_buf *b = data;
    api_json_buf_add(b, buf, size);
    return b->failed ? -1 : 0;
}

void api_json_buf_dump(struct api_json_buf *b, const json_t *v, size_t flags)
{
    if (!v || json_dump_callback(v, dump_cb, b, flags))
        b->failed = true;
}

char *api_json_buf_take(struct api_json_buf *b)
{
    char *p = b->p;
    if (b->failed) {
        free(p);
        p = NULL;
    }
    memset(b, 0, sizeof(*b));
    return p;
}

char *api_json_finish(json_t *doc, int bad, size_t flags, const char *prefix, const char *suffix)
{
    struct api_json_buf b = {0};
    if (!api_json_built(doc, bad))
        return NULL;
    api_json_buf_str(&b, prefix);
    api_json_buf_dump(&b, doc, flags);
    api_json_buf_str(&b, suffix);
    json_decref(doc);
    return api_json_buf_take(&b);
}
