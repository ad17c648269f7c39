/* OpenAI response documents: completions, streaming chunks, embeddings, models and errors. */
#include "server/api_openai.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output JSON: compact, and floats with the 9 significant digits that round-trip a float32. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))
/* What we report as the backend configuration (OpenAI's system_fingerprint). */
#define FINGERPRINT "tandem"
/* A hard cap on any one document we build by hand (embeddings). */
#define MAX_DOC_BYTES ((size_t)1 << 31)

/* ---- a growable output buffer with a hard cap ---- */

struct dbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void db_add(struct dbuf *b, const char *s, size_t n)
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

static void db_str(struct dbuf *b, const char *s)
{
    db_add(b, s, strlen(s));
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s starts an invalid or truncated one;
 * *consumed gets the bytes of its maximal valid prefix (at least 1), the unit a single U+FFFD
 * replaces (Unicode's "maximal subpart" practice). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *consumed)
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

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t used, len = utf8_seq(u + i, n - i, &used);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

/* A JSON string of s[0..n) with invalid UTF-8 replaced by U+FFFD. NULL on OOM. */
static json_t *jstr(const char *s, size_t n)
{
    if (!s)
        return json_string("");
    if (utf8_valid(s, n))
        return json_stringn(s, n);
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    unsigned char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t used, len = utf8_seq(u + i, n - i, &used);
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

static json_t *jcstr(const char *s)
{
    return jstr(s, s ? strlen(s) : 0);
}

/* A logprob as a JSON number: OpenAI reports impossible tokens as -9999.0, never -inf. */
static json_t *jlogprob(float lp)
{
    return json_real(isfinite(lp) ? (double)lp : -9999.0);
}

/* Sets key to v, taking the reference; a NULL v (OOM) makes the whole build fail. */
static int put(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static int push(json_t *arr, json_t *v)
{
    return v ? json_array_append_new(arr, v) : -1;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct dbuf *b = data;
    db_add(b, buf, size);
    return b->failed ? -1 : 0;
}

/* Serializes v into b. The text lands in our own malloc'd buffer rather than json_dumps' one, so
 * callers free() it even when jansson was given other allocators. */
static void db_json(struct dbuf *b, const json_t *v)
{
    if (!v || json_dump_callback(v, dump_cb, b, JSON_ENCODE_ANY | DUMP_FLAGS))
        b->failed = true;
}

/* The document as a malloc'd string; drops the reference to doc. NULL on OOM. */
static char *dump_free(json_t *doc, const char *prefix, const char *suffix)
{
    struct dbuf b = {0};
    db_str(&b, prefix);
    db_json(&b, doc);
    db_str(&b, suffix);
    json_decref(doc);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* "data: " + the document + "\n\n" (compact JSON has no raw newline to end the event early). */
static char *sse_free(json_t *doc)
{
    return dump_free(doc, "data: ", "\n\n");
}

/* The document as compact JSON unless the build failed (bad); drops the reference to doc. */
static char *doc_free(json_t *doc, int bad)
{
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return dump_free(doc, "", "");
}

/* ---- pieces ---- */

static json_t *usage_json(const struct api_usage *u)
{
    json_t *o = json_object(), *pd = json_object(), *cd = json_object();
    int bad = !o || !pd || !cd;
    if (!bad) {
        long long total = (long long)u->prompt_tokens + u->completion_tokens;
        bad |= put(o, "prompt_tokens", json_integer(u->prompt_tokens));
        bad |= put(o, "completion_tokens", json_integer(u->completion_tokens));
        bad |= put(o, "total_tokens", json_integer(total));
        bad |= put(pd, "cached_tokens", json_integer(u->cached_tokens));
        bad |= put(pd, "audio_tokens", json_integer(0));
        bad |= put(cd, "reasoning_tokens", json_integer(0));
        bad |= put(cd, "audio_tokens", json_integer(0));
        bad |= put(cd, "accepted_prediction_tokens", json_integer(0));
        bad |= put(cd, "rejected_prediction_tokens", json_integer(0));
        bad |= put(o, "prompt_tokens_details", json_incref(pd));
        bad |= put(o, "completion_tokens_details", json_incref(cd));
    }
    json_decref(pd);
    json_decref(cd);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The raw bytes of a token as an array of integers (they may be a partial UTF-8 sequence). */
static json_t *bytes_json(const char *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (push(a, json_integer((unsigned char)s[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* One entry of chat logprobs.content (with top_logprobs when with_top). */
static json_t *chat_token_json(const char *tok, size_t len, float lp)
{
    json_t *o = json_object();
    if (!o || put(o, "token", jstr(tok, len)) || put(o, "logprob", jlogprob(lp)) ||
        put(o, "bytes", bytes_json(tok, len))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* How many top alternatives of t to report: n_top clamped to [0, API_MAX_TOP_LOGPROBS]. */
static int top_count(const struct api_token_logprob *t)
{
    return t->n_top < 0 ? 0 : t->n_top > API_MAX_TOP_LOGPROBS ? API_MAX_TOP_LOGPROBS : t->n_top;
}

/* {"content":[...],"refusal":null} */
static json_t *chat_logprobs_json(const struct api_result *r)
{
    json_t *o = json_object(), *content = json_array();
    int bad = !o || !content;
    size_t n_lp = r->logprobs ? r->n_logprobs : 0;
    for (size_t i = 0; !bad && i < n_lp; i++) {
        const struct api_token_logprob *t = &r->logprobs[i];
        json_t *e = chat_token_json(t->token, t->token_len, t->logprob), *top = json_array();
        bad |= !e || !top;
        int n_top = top_count(t);
        for (int k = 0; !bad && k < n_top; k++)
            bad |=
                push(top, chat_token_json(t->top[k].token, t->top[k].token_len, t->top[k].logprob));
        if (!bad) {
            bad |= put(e, "top_logprobs", top);
            top = NULL;
        }
        json_decref(top);
        if (!bad) {
            bad |= push(content, e);
            e = NULL;
        }
        json_decref(e);
    }
    if (!bad) {
        bad |= put(o, "content", content);
        content = NULL;
        bad |= put(o, "refusal", json_null());
    }
    json_decref(content);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The legacy endpoint writes a token that is not valid UTF-8 as "bytes:\xNN..." text. */
static json_t *legacy_token_json(const char *tok, size_t len)
{
    if (!tok)
        return json_string("");
    if (utf8_valid(tok, len))
        return json_stringn(tok, len);
    if (len > (SIZE_MAX - 7) / 4)
        return NULL;
    char *buf = malloc(6 + len * 4 + 1);
    if (!buf)
        return NULL;
    memcpy(buf, "bytes:", 6);
    for (size_t i = 0; i < len; i++)
        snprintf(buf + 6 + i * 4, 5, "\\x%02x", (unsigned char)tok[i]);
    json_t *j = json_stringn(buf, 6 + len * 4);
    free(buf);
    return j;
}

/* Code points in s[0..n) (start bytes: what a client's string index counts). */
static int64_t count_chars(const char *s, size_t n)
{
    int64_t k = 0;
    for (size_t i = 0; s && i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* {"tokens":[..],"token_logprobs":[..],"top_logprobs":[{tok:lp}],"text_offset":[..]} */
static json_t *legacy_logprobs_json(const struct api_result *r)
{
    json_t *o = json_object(), *toks = json_array(), *lps = json_array(), *tops = json_array(),
           *offs = json_array();
    int bad = !o || !toks || !lps || !tops || !offs;
    int64_t off = r->text_offset;
    size_t n_lp = r->logprobs ? r->n_logprobs : 0;
    for (size_t i = 0; !bad && i < n_lp; i++) {
        const struct api_token_logprob *t = &r->logprobs[i];
        bad |= push(toks, legacy_token_json(t->token, t->token_len));
        bad |= push(lps, jlogprob(t->logprob));
        bad |= push(offs, json_integer(off));
        off += count_chars(t->token, t->token_len);
        json_t *top = json_object();
        bad |= !top;
        int n_top = top_count(t);
        for (int k = 0; !bad && k < n_top; k++) {
            json_t *key = legacy_token_json(t->top[k].token, t->top[k].token_len);
            bad |= !key;
            if (key && put(top, json_string_value(key), jlogprob(t->top[k].logprob)))
                bad = 1;
            json_decref(key);
        }
        if (!bad)
            bad |= push(tops, top);
        else
            json_decref(top);
    }
    if (!bad) {
        bad |= put(o, "tokens", toks);
        bad |= put(o, "token_logprobs", lps);
        bad |= put(o, "top_logprobs", tops);
        bad |= put(o, "text_offset", offs);
        if (!bad)
            return o;
        json_decref(o);
        return NULL;
    }
    json_decref(toks);
    json_decref(lps);
    json_decref(tops);
    json_decref(offs);
    json_decref(o);
    return NULL;
}

static json_t *finish_json(const char *fr)
{
    return fr ? json_string(fr) : json_null();
}

/* id, object, created, model: the head every document shares. */
static json_t *head_json(const struct api_result *r, const char *object)
{
    json_t *o = json_object();
    if (!o || put(o, "id", jcstr(r->id)) || put(o, "object", json_string(object)) ||
        put(o, "created", json_integer(r->created)) || put(o, "model", jcstr(r->model))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- documents ---- */

char *api_chat_response_json(const struct api_result *r)
{
    if (!r)
        return NULL;
    json_t *doc = head_json(r, "chat.completion");
    json_t *choices = json_array(), *choice = json_object(), *msg = json_object();
    int bad = !doc || !choices || !choice || !msg;
    if (!bad) {
        bad |= put(msg, "role", json_string("assistant"));
        bad |= put(msg, "content", jstr(r->text, r->text_len));
        bad |= put(msg, "refusal", json_null());
        bad |= put(msg, "annotations", json_array());
        bad |= put(choice, "index", json_integer(0));
        bad |= put(choice, "message", json_incref(msg));
        bad |= put(choice, "logprobs", r->want_logprobs ? chat_logprobs_json(r) : json_null());
        bad |= put(choice, "finish_reason", finish_json(r->finish_reason));
        bad |= push(choices, json_incref(choice));
        bad |= put(doc, "choices", json_incref(choices));
        if (r->usage)
            bad |= put(doc, "usage", usage_json(r->usage));
        bad |= put(doc, "service_tier", json_string("default"));
        bad |= put(doc, "system_fingerprint", json_string(FINGERPRINT));
    }
    json_decref(msg);
    json_decref(choice);
    json_decref(choices);
    return doc_free(doc, bad);
}

char *api_completion_response_json(const struct api_result *r)
{
    if (!r)
        return NULL;
    json_t *doc = head_json(r, "text_completion");
    json_t *choices = json_array(), *choice = json_object();
    int bad = !doc || !choices || !choice;
    if (!bad) {
        bad |= put(choice, "text", jstr(r->text, r->text_len));
        bad |= put(choice, "index", json_integer(0));
        bad |= put(choice, "logprobs", r->want_logprobs ? legacy_logprobs_json(r) : json_null());
        bad |= put(choice, "finish_reason", finish_json(r->finish_reason));
        bad |= push(choices, json_incref(choice));
        bad |= put(doc, "choices", json_incref(choices));
        if (r->usage)
            bad |= put(doc, "usage", usage_json(r->usage));
        bad |= put(doc, "system_fingerprint", json_string(FINGERPRINT));
    }
    json_decref(choice);
    json_decref(choices);
    return doc_free(doc, bad);
}

/* The tail of every chunk: system_fingerprint, then usage as the stream asked for it. */
static int chunk_tail(json_t *doc, const struct api_result *r)
{
    int bad = put(doc, "system_fingerprint", json_string(FINGERPRINT));
    if (r->usage)
        bad |= put(doc, "usage", usage_json(r->usage));
    else if (r->usage_null)
        bad |= put(doc, "usage", json_null());
    return bad;
}

/* Finishes a chunk: choices (reference dropped), then the tail; a usage-only chunk without usage
 * says "usage":null. The SSE event, or NULL when the build failed (bad) or runs out of memory. */
static char *chunk_sse(json_t *doc, json_t *choices, int bad, const struct api_result *r,
                       bool usage_only)
{
    if (!bad) {
        bad |= put(doc, "choices", json_incref(choices));
        if (usage_only && !r->usage)
            bad |= put(doc, "system_fingerprint", json_string(FINGERPRINT)) ||
                   put(doc, "usage", json_null());
        else
            bad |= chunk_tail(doc, r);
    }
    json_decref(choices);
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return sse_free(doc);
}

char *api_chat_chunk_sse(const struct api_result *r, bool role_first, bool usage_only)
{
    if (!r)
        return NULL;
    json_t *doc = head_json(r, "chat.completion.chunk");
    json_t *choices = json_array();
    int bad = !doc || !choices;
    if (!bad && !usage_only) {
        json_t *choice = json_object(), *delta = json_object();
        bad |= !choice || !delta;
        if (!bad && role_first) {
            bad |= put(delta, "role", json_string("assistant"));
            bad |= put(delta, "content", jstr(r->text, r->text_len));
            bad |= put(delta, "refusal", json_null());
        } else if (!bad && (r->text_len > 0 || !r->finish_reason)) {
            /* The finishing chunk carries an empty delta unless it also has text. */
            bad |= put(delta, "content", jstr(r->text, r->text_len));
        }
        if (!bad) {
            bad |= put(choice, "index", json_integer(0));
            bad |= put(choice, "delta", json_incref(delta));
            bad |= put(choice, "logprobs", r->want_logprobs ? chat_logprobs_json(r) : json_null());
            bad |= put(choice, "finish_reason", finish_json(r->finish_reason));
            bad |= push(choices, json_incref(choice));
        }
        json_decref(delta);
        json_decref(choice);
    }
    return chunk_sse(doc, choices, bad, r, usage_only);
}

char *api_completion_chunk_sse(const struct api_result *r, bool usage_only)
{
    if (!r)
        return NULL;
    json_t *doc = head_json(r, "text_completion");
    json_t *choices = json_array();
    int bad = !doc || !choices;
    if (!bad && !usage_only) {
        json_t *choice = json_object();
        bad |= !choice;
        if (!bad) {
            bad |= put(choice, "text", jstr(r->text, r->text_len));
            bad |= put(choice, "index", json_integer(0));
            bad |=
                put(choice, "logprobs", r->want_logprobs ? legacy_logprobs_json(r) : json_null());
            bad |= put(choice, "finish_reason", finish_json(r->finish_reason));
            bad |= push(choices, json_incref(choice));
        }
        json_decref(choice);
    }
    return chunk_sse(doc, choices, bad, r, usage_only);
}

const char *api_sse_done(void)
{
    return "data: [DONE]\n\n";
}

char *api_error_json(const struct api_error *e)
{
    if (!e)
        return NULL;
    const char *type = e->type            ? e->type
                       : e->status >= 500 ? "server_error"
                                          : "invalid_request_error";
    json_t *doc = json_object(), *err = json_object();
    int bad = !doc || !err;
    if (!bad) {
        /* The message may hold client text cut at 512 bytes: sanitize, never trust. */
        bad |= put(err, "message", jstr(e->message, strnlen(e->message, sizeof(e->message))));
        bad |= put(err, "type", json_string(type));
        bad |= put(err, "param", e->param ? jcstr(e->param) : json_null());
        bad |= put(err, "code", e->code ? jcstr(e->code) : json_null());
        bad |= put(doc, "error", json_incref(err));
    }
    json_decref(err);
    return doc_free(doc, bad);
}

char *api_models_json(const char *const *ids, const char *const *owners, size_t n, int64_t created)
{
    json_t *doc = json_object(), *data = json_array();
    int bad = !doc || !data || (n && !ids);
    for (size_t i = 0; !bad && i < n; i++) {
        json_t *m = json_object();
        bad |= !m;
        if (!bad) {
            bad |= put(m, "id", jcstr(ids[i]));
            bad |= put(m, "object", json_string("model"));
            bad |= put(m, "created", json_integer(created));
            bad |= put(m, "owned_by", jcstr(owners && owners[i] ? owners[i] : "tandem"));
            bad |= push(data, json_incref(m));
        }
        json_decref(m);
    }
    if (!bad) {
        bad |= put(doc, "object", json_string("list"));
        bad |= put(doc, "data", json_incref(data));
    }
    json_decref(data);
    return doc_free(doc, bad);
}

/* ---- embeddings: built by hand (a million json_real objects would be slow) ---- */

/* %.9g round-trips a float32. Not-finite values are not JSON; they become 0. */
static void db_float(struct dbuf *b, float x)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.9g", isfinite(x) ? (double)x : 0.0);
    /* A locale with a decimal comma must not leak into JSON. */
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.';
    db_add(b, tmp, (size_t)n);
}

static void db_base64_floats(struct dbuf *b, const float *v, int dim)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nbytes = (size_t)dim * 4;
    unsigned char in[3];
    char out[4];
    size_t k = 0;
    for (size_t i = 0; i < nbytes; i++) {
        uint32_t u;
        memcpy(&u, &v[i / 4], 4);
        in[k++] = (unsigned char)(u >> (8 * (i % 4))); /* little-endian on any host */
        if (k == 3 || i + 1 == nbytes) {
            uint32_t w =
                (uint32_t)in[0] << 16 | (k > 1 ? (uint32_t)in[1] << 8 : 0) | (k > 2 ? in[2] : 0);
            out[0] = tbl[(w >> 18) & 63];
            out[1] = tbl[(w >> 12) & 63];
            out[2] = k > 1 ? tbl[(w >> 6) & 63] : '=';
            out[3] = k > 2 ? tbl[w & 63] : '=';
            db_add(b, out, 4);
            k = 0;
        }
    }
}

char *api_embeddings_json(const char *model, const float *const *vecs, size_t n, int dim,
                          bool base64, int prompt_tokens)
{
    if (dim < 0 || (n && (!vecs || dim > 0x10000000)))
        return NULL;
    struct dbuf b = {0};
    char tmp[96];
    db_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && !b.failed; i++) {
        if (!vecs[i] && dim > 0) {
            b.failed = true;
            break;
        }
        snprintf(tmp, sizeof(tmp),
                 "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        db_str(&b, tmp);
        if (base64) {
            db_str(&b, "\"");
            db_base64_floats(&b, vecs[i], dim);
            db_str(&b, "\"");
        } else {
            db_str(&b, "[");
            for (int d = 0; d < dim; d++) {
                if (d)
                    db_str(&b, ",");
                db_float(&b, vecs[i][d]);
            }
            db_str(&b, "]");
        }
        db_str(&b, "}");
    }
    db_str(&b, "],\"model\":");
    json_t *jm = jcstr(model);
    db_json(&b, jm);
    json_decref(jm);
    snprintf(tmp, sizeof(tmp), ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}",
             prompt_tokens, prompt_tokens);
    db_str(&b, tmp);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
