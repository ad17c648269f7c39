/* OpenAI response documents: completions, streaming chunks, embeddings, models and errors. */
#include "server/api_openai.h"
#include "server/api_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output JSON: compact, and floats with the 9 significant digits that round-trip a float32. */
#define DUMP_FLAGS (JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(9))
/* What we report as the backend configuration (OpenAI's system_fingerprint). */
#define FINGERPRINT "tandem"

/* A logprob as a JSON number: OpenAI reports impossible tokens as -9999.0, never -inf. */
static json_t *jlogprob(float lp)
{
    return json_real(isfinite(lp) ? (double)lp : -9999.0);
}

/* "data: " + the document + "\n\n" (compact JSON has no raw newline to end the event early),
 * unless the build failed (bad); drops the reference to doc. */
static char *sse_free(json_t *doc, int bad)
{
    return api_json_finish(doc, bad, DUMP_FLAGS, "data: ", "\n\n");
}

/* The document as compact JSON unless the build failed (bad); drops the reference to doc. */
static char *doc_free(json_t *doc, int bad)
{
    return api_json_finish(doc, bad, DUMP_FLAGS, "", "");
}

/* ---- pieces ---- */

static json_t *usage_json(const struct api_usage *u)
{
    json_t *o = json_object(), *pd = json_object(), *cd = json_object();
    int bad = !o || !pd || !cd;
    if (!bad) {
        long long total = (long long)u->prompt_tokens + u->completion_tokens;
        bad |= api_json_put(o, "prompt_tokens", json_integer(u->prompt_tokens));
        bad |= api_json_put(o, "completion_tokens", json_integer(u->completion_tokens));
        bad |= api_json_put(o, "total_tokens", json_integer(total));
        bad |= api_json_put(pd, "cached_tokens", json_integer(u->cached_tokens));
        bad |= api_json_put(pd, "audio_tokens", json_integer(0));
        bad |= api_json_put(cd, "reasoning_tokens", json_integer(0));
        bad |= api_json_put(cd, "audio_tokens", json_integer(0));
        bad |= api_json_put(cd, "accepted_prediction_tokens", json_integer(0));
        bad |= api_json_put(cd, "rejected_prediction_tokens", json_integer(0));
        bad |= api_json_put(o, "prompt_tokens_details", json_incref(pd));
        bad |= api_json_put(o, "completion_tokens_details", json_incref(cd));
    }
    json_decref(pd);
    json_decref(cd);
    return api_json_built(o, bad);
}

/* The raw bytes of a token as an array of integers (they may be a partial UTF-8 sequence). */
static json_t *bytes_json(const char *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (api_json_push(a, json_integer((unsigned char)s[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* One entry of chat logprobs.content (with top_logprobs when with_top). */
static json_t *chat_token_json(const char *tok, size_t len, float lp)
{
    json_t *o = json_object();
    if (!o || api_json_put(o, "token", api_json_str(tok, len)) ||
        api_json_put(o, "logprob", jlogprob(lp)) ||
        api_json_put(o, "bytes", bytes_json(tok, len))) {
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
            bad |= api_json_push(
                top, chat_token_json(t->top[k].token, t->top[k].token_len, t->top[k].logprob));
        if (!bad) {
            bad |= api_json_put(e, "top_logprobs", top);
            top = NULL;
        }
        json_decref(top);
        if (!bad) {
            bad |= api_json_push(content, e);
            e = NULL;
        }
        json_decref(e);
    }
    if (!bad) {
        bad |= api_json_put(o, "content", content);
        content = NULL;
        bad |= api_json_put(o, "refusal", json_null());
    }
    json_decref(content);
    return api_json_built(o, bad);
}

/* The legacy endpoint writes a token that is not valid UTF-8 as "bytes:\xNN..." text. */
static json_t *legacy_token_json(const char *tok, size_t len)
{
    if (!tok)
        return json_string("");
    if (api_json_utf8_valid(tok, len))
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
        bad |= api_json_push(toks, legacy_token_json(t->token, t->token_len));
        bad |= api_json_push(lps, jlogprob(t->logprob));
        bad |= api_json_push(offs, json_integer(off));
        off += count_chars(t->token, t->token_len);
        json_t *top = json_object();
        bad |= !top;
        int n_top = top_count(t);
        for (int k = 0; !bad && k < n_top; k++) {
            json_t *key = legacy_token_json(t->top[k].token, t->top[k].token_len);
            bad |= !key;
            if (key && api_json_put(top, json_string_value(key), jlogprob(t->top[k].logprob)))
                bad = 1;
            json_decref(key);
        }
        if (!bad)
            bad |= api_json_push(tops, top);
        else
            json_decref(top);
    }
    if (!bad) {
        bad |= api_json_put(o, "tokens", toks);
        bad |= api_json_put(o, "token_logprobs", lps);
        bad |= api_json_put(o, "top_logprobs", tops);
        bad |= api_json_put(o, "text_offset", offs);
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
    if (!o || api_json_put(o, "id", api_json_cstr(r->id)) ||
        api_json_put(o, "object", json_string(object)) ||
        api_json_put(o, "created", json_integer(r->created)) ||
        api_json_put(o, "model", api_json_cstr(r->model))) {
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
        bad |= api_json_put(msg, "role", json_string("assistant"));
        bad |= api_json_put(msg, "content", api_json_str(r->text, r->text_len));
        bad |= api_json_put(msg, "refusal", json_null());
        bad |= api_json_put(msg, "annotations", json_array());
        bad |= api_json_put(choice, "index", json_integer(0));
        bad |= api_json_put(choice, "message", json_incref(msg));
        bad |= api_json_put(choice, "logprobs",
                            r->want_logprobs ? chat_logprobs_json(r) : json_null());
        bad |= api_json_put(choice, "finish_reason", finish_json(r->finish_reason));
        bad |= api_json_push(choices, json_incref(choice));
        bad |= api_json_put(doc, "choices", json_incref(choices));
        if (r->usage)
            bad |= api_json_put(doc, "usage", usage_json(r->usage));
        bad |= api_json_put(doc, "service_tier", json_string("default"));
        bad |= api_json_put(doc, "system_fingerprint", json_string(FINGERPRINT));
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
        bad |= api_json_put(choice, "text", api_json_str(r->text, r->text_len));
        bad |= api_json_put(choice, "index", json_integer(0));
        bad |= api_json_put(choice, "logprobs",
                            r->want_logprobs ? legacy_logprobs_json(r) : json_null());
        bad |= api_json_put(choice, "finish_reason", finish_json(r->finish_reason));
        bad |= api_json_push(choices, json_incref(choice));
        bad |= api_json_put(doc, "choices", json_incref(choices));
        if (r->usage)
            bad |= api_json_put(doc, "usage", usage_json(r->usage));
        bad |= api_json_put(doc, "system_fingerprint", json_string(FINGERPRINT));
    }
    json_decref(choice);
    json_decref(choices);
    return doc_free(doc, bad);
}

/* The tail of every chunk: system_fingerprint, then usage as the stream asked for it. */
static int chunk_tail(json_t *doc, const struct api_result *r)
{
    int bad = api_json_put(doc, "system_fingerprint", json_string(FINGERPRINT));
    if (r->usage)
        bad |= api_json_put(doc, "usage", usage_json(r->usage));
    else if (r->usage_null)
        bad |= api_json_put(doc, "usage", json_null());
    return bad;
}

/* Finishes a chunk: choices (reference dropped), then the tail; a usage-only chunk without usage
 * says "usage":null. The SSE event, or NULL when the build failed (bad) or runs out of memory. */
static char *chunk_sse(json_t *doc, json_t *choices, int bad, const struct api_result *r,
                       bool usage_only)
{
    if (!bad) {
        bad |= api_json_put(doc, "choices", json_incref(choices));
        if (usage_only && !r->usage)
            bad |= api_json_put(doc, "system_fingerprint", json_string(FINGERPRINT)) ||
                   api_json_put(doc, "usage", json_null());
        else
            bad |= chunk_tail(doc, r);
    }
    json_decref(choices);
    return sse_free(doc, bad);
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
            bad |= api_json_put(delta, "role", json_string("assistant"));
            bad |= api_json_put(delta, "content", api_json_str(r->text, r->text_len));
            bad |= api_json_put(delta, "refusal", json_null());
        } else if (!bad && (r->text_len > 0 || !r->finish_reason)) {
            /* The finishing chunk carries an empty delta unless it also has text. */
            bad |= api_json_put(delta, "content", api_json_str(r->text, r->text_len));
        }
        if (!bad) {
            bad |= api_json_put(choice, "index", json_integer(0));
            bad |= api_json_put(choice, "delta", json_incref(delta));
            bad |= api_json_put(choice, "logprobs",
                                r->want_logprobs ? chat_logprobs_json(r) : json_null());
            bad |= api_json_put(choice, "finish_reason", finish_json(r->finish_reason));
            bad |= api_json_push(choices, json_incref(choice));
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
            bad |= api_json_put(choice, "text", api_json_str(r->text, r->text_len));
            bad |= api_json_put(choice, "index", json_integer(0));
            bad |= api_json_put(choice, "logprobs",
                                r->want_logprobs ? legacy_logprobs_json(r) : json_null());
            bad |= api_json_put(choice, "finish_reason", finish_json(r->finish_reason));
            bad |= api_json_push(choices, json_incref(choice));
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
        bad |= api_json_put(err, "message",
                            api_json_str(e->message, strnlen(e->message, sizeof(e->message))));
        bad |= api_json_put(err, "type", json_string(type));
        bad |= api_json_put(err, "param", e->param ? api_json_cstr(e->param) : json_null());
        bad |= api_json_put(err, "code", e->code ? api_json_cstr(e->code) : json_null());
        bad |= api_json_put(doc, "error", json_incref(err));
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
            bad |= api_json_put(m, "id", api_json_cstr(ids[i]));
            bad |= api_json_put(m, "object", json_string("model"));
            bad |= api_json_put(m, "created", json_integer(created));
            bad |= api_json_put(m, "owned_by",
                                api_json_cstr(owners && owners[i] ? owners[i] : "tandem"));
            bad |= api_json_push(data, json_incref(m));
        }
        json_decref(m);
    }
    if (!bad) {
        bad |= api_json_put(doc, "object", json_string("list"));
        bad |= api_json_put(doc, "data", json_incref(data));
    }
    json_decref(data);
    return doc_free(doc, bad);
}

/* ---- embeddings: built by hand (a million json_real objects would be slow) ---- */

/* %.9g round-trips a float32. Not-finite values are not JSON; they become 0. */
static void buf_float(struct api_json_buf *b, float x)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.9g", isfinite(x) ? (double)x : 0.0);
    /* A locale with a decimal comma must not leak into JSON. */
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.';
    api_json_buf_add(b, tmp, (size_t)n);
}

static void buf_base64_floats(struct api_json_buf *b, const float *v, int dim)
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
            api_json_buf_add(b, out, 4);
            k = 0;
        }
    }
}

char *api_embeddings_json(const char *model, const float *const *vecs, size_t n, int dim,
                          bool base64, int prompt_tokens)
{
    if (dim < 0 || (n && (!vecs || dim > 0x10000000)))
        return NULL;
    struct api_json_buf b = {0};
    char tmp[96];
    api_json_buf_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && !b.failed; i++) {
        if (!vecs[i] && dim > 0) {
            b.failed = true;
            break;
        }
        snprintf(tmp, sizeof(tmp),
                 "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        api_json_buf_str(&b, tmp);
        if (base64) {
            api_json_buf_str(&b, "\"");
            buf_base64_floats(&b, vecs[i], dim);
            api_json_buf_str(&b, "\"");
        } else {
            api_json_buf_str(&b, "[");
            for (int d = 0; d < dim; d++) {
                if (d)
                    api_json_buf_str(&b, ",");
                buf_float(&b, vecs[i][d]);
            }
            api_json_buf_str(&b, "]");
        }
        api_json_buf_str(&b, "}");
    }
    api_json_buf_str(&b, "],\"model\":");
    json_t *jm = api_json_cstr(model);
    api_json_buf_dump(&b, jm, DUMP_FLAGS);
    json_decref(jm);
    snprintf(tmp, sizeof(tmp), ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}",
             prompt_tokens, prompt_tokens);
    api_json_buf_str(&b, tmp);
    return api_json_buf_take(&b);
}
