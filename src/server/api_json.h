/* JSON helpers the OpenAI and Anthropic wire formats share: UTF-8, typed fields, output buffers. */
#ifndef TANDEM_SERVER_API_JSON_H
#define TANDEM_SERVER_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/api_openai.h"

/* A hard cap on any one document built in an api_json_buf (a reply is bounded by max_tokens). */
#define API_JSON_MAX_DOC_BYTES ((size_t)1 << 31)

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when s starts an invalid or
 * truncated one; *consumed gets the bytes of its maximal valid prefix (at least 1), the unit a
 * single U+FFFD replaces (Unicode's "maximal subpart" practice). No overlongs, surrogates or
 * code points past U+10FFFF are valid. */
size_t api_json_utf8_seq(const unsigned char *s, size_t n, size_t *consumed);

/* Whether s[0..n) is entirely valid UTF-8 (in the sense of api_json_utf8_seq). */
bool api_json_utf8_valid(const char *s, size_t n);

/* A new JSON string of s[0..n) with each invalid UTF-8 unit replaced by U+FFFD; a NULL s gives
 * "". The caller owns the reference. NULL on OOM. */
json_t *api_json_str(const char *s, size_t n);

/* api_json_str of a NUL-terminated s (NULL gives ""). */
json_t *api_json_cstr(const char *s);

/* ---- reading typed fields ---- */

/* Whose words a field error uses: OpenAI's ("Invalid type for 'x': expected ..." with a `code`)
 * or Anthropic's ("x: Input should be ...", the param path first, no code). */
enum api_json_dialect { API_JSON_DIALECT_OPENAI, API_JSON_DIALECT_ANTHROPIC };

/* The JSON types a field may be required to have. NUMBER accepts integers and reals. */
enum api_json_kind {
    API_JSON_KIND_OBJECT,
    API_JSON_KIND_ARRAY,
    API_JSON_KIND_STRING,
    API_JSON_KIND_INTEGER,
    API_JSON_KIND_NUMBER,
    API_JSON_KIND_BOOLEAN,
};

/* Where field errors go and whose words they use. */
struct api_json_ctx {
    struct api_error *err; /* filled on an error; never NULL */
    enum api_json_dialect dialect;
};

/* "a string", "an integer" ... (static), the words type errors use for v's type. */
const char *api_json_type_name(const json_t *v);

/* obj[key] (borrowed), or NULL when absent or JSON null (both mean "not given"). */
json_t *api_json_opt(json_t *obj, const char *key);

/* Fills j->err with a 400 invalid_request_error: param should be `expected` ("a string or an array
 * of content parts") but is v. Always returns -1. */
int api_json_type_error(const struct api_json_ctx *j, const char *param, const char *expected,
                        const json_t *v);

/* Fills j->err with a 400 invalid_request_error: the required param is missing. Returns -1. */
int api_json_missing_error(const struct api_json_ctx *j, const char *param);

/* A required field: obj[key] (borrowed) when it is present and of kind k, else NULL with j->err
 * filled (missing, or a type error; JSON null is a type error) naming param, which may differ
 * from key ("messages[2].role"). */
json_t *api_json_need(const struct api_json_ctx *j, json_t *obj, const char *key,
                      enum api_json_kind k, const char *param);

/* An optional field: *out is obj[key] (borrowed) when of kind k, NULL when absent or null.
 * Returns 0, or -1 with j->err filled by a type error naming param (and *out NULL). */
int api_json_want(const struct api_json_ctx *j, json_t *obj, const char *key, enum api_json_kind k,
                  const char *param, json_t **out);

/* Writes into dst the texts of the array parts joined with "\n", and a NUL. Each part must
 * already be checked to be an object whose "type" string names the key holding its text string
 * ({"type":"text","text":..}, {"type":"refusal","refusal":..}); dst must have room for the
 * joined length + 1. Returns the joined length. */
size_t api_json_join_parts(char *dst, json_t *parts);

/* ---- building documents ---- */

/* Sets obj[key] to v, taking the reference (also on failure). -1 when v is NULL (an OOM while
 * building it) or on OOM, so `bad |= api_json_put(...)` chains a whole build. */
int api_json_put(json_t *obj, const char *key, json_t *v);

/* Appends v to arr, taking the reference (also on failure); -1 for a NULL v or on OOM. */
int api_json_push(json_t *arr, json_t *v);

/* v when bad is 0; else drops the reference to v (which may be NULL) and returns NULL. Ends a
 * build that chained its api_json_put/api_json_push results into bad. */
json_t *api_json_built(json_t *v, int bad);

/* A growable, NUL-terminated output buffer capped at API_JSON_MAX_DOC_BYTES. Start it zeroed;
 * after any failure (OOM, cap) it ignores further additions and keeps failed set. p is malloc'd
 * (our allocator, not jansson's): take it with api_json_buf_take. */
struct api_json_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

/* Appends s[0..n). */
void api_json_buf_add(struct api_json_buf *b, const char *s, size_t n);

/* Appends the NUL-terminated s. */
void api_json_buf_str(struct api_json_buf *b, const char *s);

/* Appends v serialized with jansson's dump flags; a NULL v fails the buffer. */
void api_json_buf_dump(struct api_json_buf *b, const json_t *v, size_t flags);

/* The text (the caller frees it), or NULL after freeing it when the buffer failed. b is left
 * empty either way. */
char *api_json_buf_take(struct api_json_buf *b);

/* prefix + doc serialized with flags + suffix, malloc'd. Drops the reference to doc. NULL when
 * bad is non-zero (a failed build), doc is NULL or on OOM. */
char *api_json_finish(json_t *doc, int bad, size_t flags, const char *prefix, const char *suffix);

#endif
