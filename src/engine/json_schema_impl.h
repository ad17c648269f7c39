/* Internals shared by json_schema.c (schema -> node graph) and json_match.c (the matcher). */
#ifndef TANDEM_ENGINE_JSON_SCHEMA_IMPL_H
#define TANDEM_ENGINE_JSON_SCHEMA_IMPL_H

#include <stdint.h>

#include "engine/json_schema.h"

/* Bounds that keep the matcher's state fixed-size and its output finite per value. */
#define JSON__MAX_DEPTH 64   /* nested objects/arrays */
#define JSON__MAX_PROPS 64   /* properties per object (a 64-bit "seen" mask) */
#define JSON__MAX_ALTS 64    /* anyOf/oneOf alternatives, prefixItems entries */
#define JSON__MAX_LITS 65535 /* enum values per node */
#define JSON__MAX_NAME 65535 /* bytes of one encoded property name or literal */
#define JSON__MAX_NODES 65536
#define JSON__MAX_BYTES (16u << 20) /* names and literals of one schema */
#define JSON__INT_DIGITS 16         /* fits int64, so every parser reads it exactly */
#define JSON__FRAC_DIGITS 8
#define JSON__EXP_DIGITS 2 /* 1e99 at most: strtod never overflows */
#define JSON__WS_MAX 6     /* whitespace bytes per gap: a newline and an indent of up to 5 */
#define JSON__NONE UINT32_MAX

/* Node kinds. ANYOF is resolved by the value's first byte (alternatives must not share
 * one, except where one alternative subsumes the other there); REF is followed. */
enum json__kind {
    JSON__NEVER = 0, /* schema false: nothing matches */
    JSON__OBJECT,
    JSON__ARRAY,
    JSON__STRING,
    JSON__NUMBER,
    JSON__INTEGER,
    JSON__LITERAL, /* enum/const/true/false/null: one of a sorted set of exact byte strings */
    JSON__ANYOF,
    JSON__REF,
};

/* Built-in nodes present in every schema. */
enum {
    JSON__N_ANY = 0, /* any JSON value (an ANYOF of the five below) */
    JSON__N_ANY_OBJECT,
    JSON__N_ANY_ARRAY,
    JSON__N_ANY_STRING,
    JSON__N_ANY_NUMBER,
    JSON__N_ANY_LITERAL, /* false, null, true */
    JSON__N_NEVER,
    JSON__N_BUILTIN,
};

/* A byte string in the schema's pool. */
struct json__str {
    uint32_t off, len;
};

struct json__node {
    uint8_t kind;   /* enum json__kind */
    uint8_t nonneg; /* NUMBER/INTEGER: no minus sign (minimum >= 0) */
    union {
        struct {
            uint32_t names;      /* strs[names .. +n]: JSON-encoded names, sorted bytewise */
            uint32_t nodes;      /* list[nodes .. +n]: the schema of each property */
            uint32_t n;          /* <= JSON__MAX_PROPS */
            uint64_t required;   /* bit i: property i (in sorted order) is required */
            uint32_t additional; /* node of other keys' values, JSON__NONE: no other keys */
        } obj;
        struct {
            uint32_t prefix, n_prefix; /* list[prefix .. +n_prefix]: prefixItems */
            uint32_t items;            /* node of the other items */
            uint32_t min, max;         /* item counts */
        } arr;
        struct {
            uint32_t min, max; /* length in code points */
        } str;
        struct {
            uint32_t lits, n; /* strs[lits .. +n]: canonical JSON texts, sorted, unique */
        } lit;
        struct {
            uint32_t alts, n; /* list[alts .. +n] */
            uint32_t table;   /* dispatch[table .. +256]: concrete node per first byte */
        } anyof;
        struct {
            uint32_t target;
        } ref;
    } u;
};

struct json_schema {
    struct json__node *nodes;
    uint32_t n_nodes, cap_nodes;
    struct json__str *strs;
    uint32_t n_strs, cap_strs;
    uint32_t *list;
    uint32_t n_list, cap_list;
    uint32_t *dispatch; /* 256 entries per ANYOF node; JSON__NONE where no alternative */
    uint32_t n_dispatch, cap_dispatch;
    char *bytes;
    uint32_t n_bytes, cap_bytes;
    uint32_t root;
};

/* Follows REF nodes (cycles are rejected at compile time). */
static inline uint32_t json__resolve(const struct json_schema *s, uint32_t n)
{
    for (uint32_t i = 0; i < s->n_nodes && s->nodes[n].kind == JSON__REF; i++)
        n = s->nodes[n].u.ref.target;
    return n;
}

/* A vocabulary from explicit texts (tests, benchmarks): texts[i][0..lens[i]), eog[i] != 0
 * marks end-of-generation tokens. Copied. */
int json__vocab_new_texts(struct json_vocab **out, const char *const *texts, const size_t *lens,
                          const uint8_t *eog, int32_t n);
int32_t json__vocab_n(const struct json_vocab *v);

#endif
