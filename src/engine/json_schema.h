/* Output constrained to JSON, optionally to a JSON Schema: a byte-level incremental matcher
 * and a sampler stage that masks every token whose text the matcher would reject. */
#ifndef TANDEM_ENGINE_JSON_SCHEMA_H
#define TANDEM_ENGINE_JSON_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampler.h"

struct tandem_model;

enum json_schema_error {
    JSON_SCHEMA_OK = 0,
    JSON_SCHEMA_E_INVALID = -1,      /* the schema is not valid JSON or not a valid schema */
    JSON_SCHEMA_E_UNSUPPORTED = -2,  /* a keyword we cannot enforce (named in the message) */
    JSON_SCHEMA_E_NOMEM = -3,
    JSON_SCHEMA_E_REJECT = -4,       /* json_match_feed: the bytes cannot continue the value */
};

/* A static name for a json_schema_error. */
const char *json_schema_strerror(int err);

/* A compiled schema; immutable, shareable across threads. */
struct json_schema;

/* Compiles schema_json[0..len). NULL/len 0 means "any JSON object" (response_format
 * json_object). Supported: type (incl. arrays of types), properties, required,
 * additionalProperties (false / schema), items, prefixItems, minItems/maxItems, enum, const,
 * anyOf/oneOf, allOf with one member, $ref to #/$defs/... and #/definitions/..., string
 * minLength/maxLength/format (date, date-time, time, uuid, email: enforced loosely or
 * ignored, documented), integer/number (minimum/maximum ignored, digit count bounded),
 * boolean, null; description/title/default/examples are ignored. Anything else that changes
 * validity gives JSON_SCHEMA_E_UNSUPPORTED with the keyword in err.
 * Choices (each makes the output stricter than the schema, never looser):
 *  - anyOf/oneOf/type arrays pick the alternative by the value's first byte; alternatives that
 *    can start with the same byte are UNSUPPORTED unless one serves both there (integer inside
 *    number, {} or an untyped alternative, merged enums/consts). Two object alternatives are
 *    therefore UNSUPPORTED.
 *  - additionalProperties absent: only the listed properties when "properties" is given, any
 *    keys otherwise. Other keys may not use escapes that could spell a listed name.
 *  - minimum/exclusiveMinimum >= 0 forbids the minus sign; other bounds are not enforced.
 *    Numbers: <= 16 integer digits, <= 8 fraction digits, <= 2 exponent digits.
 *  - format is ignored. enum/const values must be written in jansson's compact form.
 *  - $ref only to "#" or a JSON pointer inside the document, with no sibling keywords.
 *  - at most 64 properties per object, 64 anyOf alternatives, 64 prefixItems. */
int json_schema_compile(struct json_schema **out, const char *schema_json, size_t len, char *err,
                        size_t errlen);
void json_schema_free(struct json_schema *s);  /* accepts NULL */

/* Matcher state over one output. Bounded memory (nesting depth <= 64). Output is emitted
 * in a canonical-ish form: whitespace (space, tab, newline) is allowed where JSON allows it,
 * at most 6 bytes and one newline per gap, never after the top-level value (so a model
 * cannot loop on spaces); object keys in any order the schema permits, each at most once.
 * Strings are checked as strict parsers do (UTF-8, escapes, surrogate pairs, no \u0000).
 * Unbounded strings (no maxLength) and additional keys can still run long: cap max_tokens.
 * The schema must outlive the matcher. */
struct json_match;
int json_match_new(struct json_match **out, const struct json_schema *s);
void json_match_free(struct json_match *m);  /* accepts NULL */
void json_match_reset(struct json_match *m);
/* Advances over bytes[0..n) when all of them are acceptable; else JSON_SCHEMA_E_REJECT and the
 * state is unchanged. */
int json_match_feed(struct json_match *m, const char *bytes, size_t n);
/* Would json_match_feed accept these bytes? (state unchanged; allocates nothing) */
bool json_match_accepts(const struct json_match *m, const char *bytes, size_t n);
/* A complete value has been matched: nothing but the end may follow. Exception: a
 * top-level number (or numeric enum value) is complete as soon as it could end, while more
 * digits may still be accepted. */
bool json_match_complete(const struct json_match *m);

/* Token texts of a model, computed once (tandem_token_to_piece of every id, sorted for
 * prefix sharing) and shared, read-only, by every stage. Texts over 256 bytes are never
 * allowed. The model must outlive nothing: the texts are copied. */
struct json_vocab;
int json_vocab_new(struct json_vocab **out, const struct tandem_model *m);
void json_vocab_free(struct json_vocab *v);  /* accepts NULL */

/* A sampler stage: apply() leaves only tokens whose text the matcher accepts (end-of-
 * generation tokens only once the value is complete; empty-text and control tokens never);
 * accept() feeds the chosen token's text. Put it first in the chain (before penalties and
 * truncation). vocab and schema must outlive the stage. Allocates only in the constructor.
 * m (may be NULL) is only used to check the vocabulary size. When no token can continue,
 * the first end-of-generation candidate is left allowed and the failed flag is raised. */
int sampler_stage_json_new(struct sampler_stage **out, const struct json_vocab *vocab,
                           const struct json_schema *schema, const struct tandem_model *m);
/* The stage hit a dead end (no token could continue the value, so only an end-of-generation
 * token was left) or was told a token its matcher rejects; cleared by reset. false for any
 * other stage. */
bool sampler_stage_json_failed(const struct sampler_stage *st);
/* The stage's matcher holds a complete value (false for any other stage). */
bool sampler_stage_json_complete(const struct sampler_stage *st);

#endif
