/* JSON Schema compiler: a schema (parsed with jansson) becomes a graph of matcher nodes. */
#include "engine/json_schema_impl.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCHEMA_DEPTH 128 /* nesting of subschemas while compiling */
#define MAX_REFS 4096        /* distinct $ref targets */

/* Type bits for "type" and for filtering enum values. */
enum {
    T_NULL = 1,
    T_BOOL = 2,
    T_OBJ = 4,
    T_ARR = 8,
    T_STR = 16,
    T_NUM = 32,
    T_INT = 64,
    T_ALL = 127,
};

struct ref_memo {
    json_t *target;
    uint32_t node;
};

struct cc {
    struct json_schema *s;
    json_t *doc;
    struct ref_memo *refs; /* [MAX_REFS] */
    uint32_t n_refs;
    char *err;
    size_t errlen;
};

/* Keywords that change validity and that we cannot enforce. */
static const char *const unsupported_kw[] = {
    "pattern",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "multipleOf",
    "$dynamicRef",
    "$recursiveRef",
};

/* Keywords we enforce (or deliberately ignore, as documented), for sibling checks. */
static const char *const validating_kw[] = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
};

static int fail(struct cc *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct cc *c, int code, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Grows *p (elements of `elem` bytes) to hold `need`; capped at `max` elements. */
static int grow(void **p, uint32_t *cap, uint64_t need, size_t elem, uint32_t max)
{
    if (need <= *cap)
        return 0;
    if (need > max)
        return JSON_SCHEMA_E_UNSUPPORTED;
    uint64_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    if (nc > max)
        nc = max;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return JSON_SCHEMA_E_NOMEM;
    *p = q;
    *cap = (uint32_t)nc;
    return 0;
}

static int too_big(struct cc *c, int rc)
{
    if (rc == JSON_SCHEMA_E_NOMEM)
        return fail(c, rc, "out of memory compiling the schema");
    return fail(c, rc, "schema too large for the matcher");
}

static int add_node(struct cc *c, uint8_t kind, uint32_t *out)
{
    struct json_schema *s = c->s;
    int rc = grow((void **)&s->nodes, &s->cap_nodes, (uint64_t)s->n_nodes + 1, sizeof(*s->nodes),
                  JSON__MAX_NODES);
    if (rc)
        return too_big(c, rc);
    memset(&s->nodes[s->n_nodes], 0, sizeof(s->nodes[0]));
    s->nodes[s->n_nodes].kind = kind;
    *out = s->n_nodes++;
    return 0;
}

/* Appends count elements of elem bytes from v to the array *arr (*n in use, *cap allocated, at
 * most max); *first gets the index of the first. */
static int append(struct cc *c, void **arr, uint32_t *n, uint32_t *cap, size_t elem, uint32_t max,
                  const void *v, size_t count, uint32_t *first)
{
    int rc = grow(arr, cap, (uint64_t)*n + count, elem, max);
    if (rc)
        return too_big(c, rc);
    if (count)
        memcpy((char *)*arr + (size_t)*n * elem, v, count * elem);
    *first = *n;
    *n += (uint32_t)count;
    return 0;
}

static int add_bytes(struct cc *c, const char *p, size_t n, uint32_t *off)
{
    struct json_schema *s = c->s;
    if (n > JSON__MAX_NAME)
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "a property name or enum value is too long");
    return append(c, (void **)&s->bytes, &s->n_bytes, &s->cap_bytes, 1, JSON__MAX_BYTES, p, n,
                  off);
}

static int add_strs(struct cc *c, const struct json__str *v, uint32_t n, uint32_t *first)
{
    struct json_schema *s = c->s;
    return append(c, (void **)&s->strs, &s->n_strs, &s->cap_strs, sizeof(*s->strs),
                  UINT32_MAX / 2, v, n, first);
}

static int add_list(struct cc *c, const uint32_t *v, uint32_t n, uint32_t *first)
{
    struct json_schema *s = c->s;
    return append(c, (void **)&s->list, &s->n_list, &s->cap_list, sizeof(*s->list),
                  UINT32_MAX / 2, v, n, first);
}

/* ---- literals (enum, const, true/false/null) ---- */

struct sortable {
    const char *p;
    uint32_t len;
    uint32_t idx; /* payload: index into the caller's parallel arrays */
    struct json__str str;
};

static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int r = n ? memcmp(a, b, n) : 0;
    if (r)
        return r;
    return na < nb ? -1 : na > nb;
}

static int cmp_sortable(const void *x, const void *y)
{
    const struct sortable *a = x, *b = y;
    return cmp_bytes(a->p, a->len, b->p, b->len);
}

/* Sorts and dedupes strings already in the pool and makes a LITERAL node of them. */
static int literal_node(struct cc *c, struct sortable *v, uint32_t n, uint32_t *out)
{
    if (n == 0) {
        *out = JSON__N_NEVER;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        v[i].p = c->s->bytes + v[i].str.off;
    qsort(v, n, sizeof(*v), cmp_sortable);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (k == 0 || cmp_sortable(&v[k - 1], &v[i]) != 0)
            v[k++] = v[i];
    struct json__str *strs = malloc(k * sizeof(*strs));
    if (!strs)
        return fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
    for (uint32_t i = 0; i < k; i++)
        strs[i] = v[i].str;
    uint32_t first;
    int rc = add_strs(c, strs, k, &first);
    free(strs);
    if (rc)
        return rc;
    rc = add_node(c, JSON__LITERAL, out);
    if (rc)
        return rc;
    c->s->nodes[*out].u.lit.lits = first;
    c->s->nodes[*out].u.lit.n = k;
    return 0;
}

static unsigned type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    case JSON_OBJECT:
        return T_OBJ;
    case JSON_ARRAY:
        return T_ARR;
    case JSON_STRING:
        return T_STR;
    case JSON_INTEGER:
        return T_NUM | T_INT;
    case JSON_REAL: {
        double d = json_real_value(v);
        return (d > -9e18 && d < 9e18 && d == (double)(int64_t)d) ? T_NUM | T_INT : T_NUM;
    }
    }
    return 0;
}

/* The canonical compact text of v, the shortest real formatting that reads back the same. */
static char *dump_value(const json_t *v)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    if (json_is_real(v) || json_is_object(v) || json_is_array(v)) {
        char *t = json_dumps(v, flags | JSON_REAL_PRECISION(15));
        if (!t)
            return NULL;
        json_t *back = json_loads(t, JSON_DECODE_ANY, NULL);
        int same = back && json_equal(back, (json_t *)v);
        json_decref(back);
        if (same)
            return t;
        free(t);
    }
    return json_dumps(v, flags);
}

/* A LITERAL node of the values (those whose type is in `types`). */
static int compile_literals(struct cc *c, json_t *const *vals, size_t n, unsigned types,
                            uint32_t *out)
{
    if (n > JSON__MAX_LITS)
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "enum: more than %u values", JSON__MAX_LITS);
    struct sortable *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
    uint32_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(type_of(vals[i]) & types))
            continue;
        char *t = dump_value(vals[i]);
        if (!t) {
            rc = fail(c, JSON_SCHEMA_E_NOMEM, "enum: cannot serialise a value");
            goto out;
        }
        size_t len = strlen(t);
        rc = add_bytes(c, t, len, &v[k].str.off);
        free(t);
        if (rc)
            goto out;
        v[k].str.len = (uint32_t)len;
        v[k].len = (uint32_t)len;
        k++;
    }
    rc = literal_node(c, v, k, out);
out:
    free(v);
    return rc;
}

static int fixed_literals(struct cc *c, const char *const *texts, uint32_t n, uint32_t *out)
{
    struct sortable v[4];
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        int rc = add_bytes(c, texts[i], len, &v[i].str.off);
        if (rc)
            return rc;
        v[i].str.len = v[i].len = (uint32_t)len;
    }
    return literal_node(c, v, n, out);
}

/* ---- keyword helpers ---- */

static bool in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i]))
            return true;
    return false;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Validating keywords of sch other than those in `except`. */
static int count_validating(json_t *sch, const char *const *except, size_t n_except)
{
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(sch, k, v)
    {
        (void)v;
        if (in_list(k, validating_kw, N_OF(validating_kw)) && !in_list(k, except, n_except))
            n++;
    }
    return n;
}

/* A non-negative integer keyword, clamped to uint32 (absent: dflt). */
static int count_kw(struct cc *c, json_t *sch, const char *kw, uint32_t dflt, uint32_t *out)
{
    json_t *v = json_object_get(sch, kw);
    *out = dflt;
    if (!v)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return fail(c, JSON_SCHEMA_E_INVALID, "%s must be a non-negative integer", kw);
    if (!(d >= 0) || (d < 1e18 && d != (double)(uint64_t)d))
        return fail(c, JSON_SCHEMA_E_INVALID, "%s must be a non-negative integer", kw);
    *out = d >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    return 0;
}

static int compile(struct cc *c, json_t *sch, int depth, uint32_t *out);

/* ---- $ref ---- */

static int resolve_pointer(struct cc *c, const char *ref, json_t **target)
{
    if (ref[0] != '#')
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                    "$ref '%.80s': only local references (#/...) are supported", ref);
    json_t *cur = c->doc;
    const char *p = ref + 1;
    if (*p && *p != '/')
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "$ref '%.80s': anchors are not supported", ref);
    char seg[256];
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1'))
                ch = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof(seg))
                return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "$ref '%.80s': segment too long", ref);
            seg[n++] = ch;
        }
        seg[n] = 0;
        json_t *next = NULL;
        if (json_is_object(cur)) {
            next = json_object_get(cur, seg);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            if (n && !*end)
                next = json_array_get(cur, i);
        }
        if (!next)
            return fail(c, JSON_SCHEMA_E_INVALID, "$ref '%.80s' does not resolve", ref);
        cur = next;
    }
    *target = cur;
    return 0;
}

static int compile_ref(struct cc *c, json_t *sch, int depth, uint32_t *out)
{
    json_t *r = json_object_get(sch, "$ref");
    if (!json_is_string(r))
        return fail(c, JSON_SCHEMA_E_INVALID, "$ref must be a string");
    static const char *const self[] = {"$ref"};
    if (count_validating(sch, self, 1))
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "$ref with sibling keywords is not supported");
    json_t *target = NULL;
    int rc = resolve_pointer(c, json_string_value(r), &target);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < c->n_refs; i++)
        if (c->refs[i].target == target) {
            *out = c->refs[i].node;
            return 0;
        }
    if (c->n_refs >= MAX_REFS)
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "$ref: more than %d targets", MAX_REFS);
    uint32_t node;
    rc = add_node(c, JSON__REF, &node);
    if (rc)
        return rc;
    c->refs[c->n_refs++] = (struct ref_memo){target, node};
    uint32_t t;
    rc = compile(c, target, depth + 1, &t);
    if (rc)
        return rc;
    c->s->nodes[node].u.ref.target = t;
    *out = node;
    return 0;
}

/* ---- typed nodes ---- */

struct prop_tmp {
    char *name; /* JSON-encoded, without quotes (malloc'd) */
    uint32_t node;
    bool required;
};

static char *encode_name(const char *key)
{
    json_t *js = json_string(key);
    if (!js)
        return NULL;
    char *t = json_dumps(js, JSON_ENCODE_ANY);
    json_decref(js);
    if (!t)
        return NULL;
    size_t n = strlen(t);
    memmove(t, t + 1, n - 2); /* strip the quotes */
    t[n - 2] = 0;
    return t;
}

static int compile_object(struct cc *c, json_t *sch, int depth, uint32_t *out)
{
    struct prop_tmp props[JSON__MAX_PROPS];
    uint32_t n = 0;
    int rc = 0;
    json_t *jp = json_object_get(sch, "properties");
    json_t *jr = json_object_get(sch, "required");
    json_t *ja = json_object_get(sch, "additionalProperties");
    if (jp && !json_is_object(jp))
        return fail(c, JSON_SCHEMA_E_INVALID, "properties must be an object");
    if (jr && !json_is_array(jr))
        return fail(c, JSON_SCHEMA_E_INVALID, "required must be an array of strings");
    /* Absent additionalProperties: no other keys when properties are listed (stricter than
     * the schema, so still valid), any keys when none are. */
    uint32_t additional = JSON__NONE;
    if (ja) {
        if (json_is_true(ja)) {
            additional = JSON__N_ANY;
        } else if (!json_is_false(ja)) {
            rc = compile(c, ja, depth + 1, &additional);
            if (rc)
                return rc;
            if (additional == JSON__N_NEVER)
                additional = JSON__NONE;
        }
    } else if (!jp) {
        additional = JSON__N_ANY;
    }
    const char *key;
    json_t *val;
    if (jp) {
        json_object_foreach(jp, key, val)
        {
            uint32_t node;
            rc = compile(c, val, depth + 1, &node);
            if (rc)
                goto out;
            if (node == JSON__N_NEVER)
                continue; /* a property that may not appear */
            if (n >= JSON__MAX_PROPS) {
                rc = fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                          "properties: more than %d properties in one object", JSON__MAX_PROPS);
                goto out;
            }
            props[n] = (struct prop_tmp){encode_name(key), node, false};
            if (!props[n++].name) {
                rc = fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
                goto out;
            }
        }
    }
    for (size_t i = 0; jr && i < json_array_size(jr); i++) {
        json_t *r = json_array_get(jr, i);
        if (!json_is_string(r)) {
            rc = fail(c, JSON_SCHEMA_E_INVALID, "required must be an array of strings");
            goto out;
        }
        const char *name = json_string_value(r);
        uint32_t j = 0;
        json_t *pj = jp ? json_object_get(jp, name) : NULL;
        if (pj && json_is_false(pj)) {
            rc = fail(c, JSON_SCHEMA_E_INVALID, "required property '%.60s' has schema false", name);
            goto out;
        }
        char *enc = encode_name(name);
        if (!enc) {
            rc = fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
            goto out;
        }
        while (j < n && strcmp(props[j].name, enc))
            j++;
        if (j == n) {
            if (additional == JSON__NONE) {
                free(enc);
                rc = fail(c, JSON_SCHEMA_E_INVALID,
                          "required property '%.60s' is not allowed by additionalProperties", name);
                goto out;
            }
            if (n >= JSON__MAX_PROPS) {
                free(enc);
                rc = fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                          "properties: more than %d properties in one object", JSON__MAX_PROPS);
                goto out;
            }
            props[n++] = (struct prop_tmp){enc, additional, false};
        } else {
            free(enc);
        }
        props[j].required = true;
    }
    /* Sort by encoded name so the names still matching a key prefix form a range. */
    struct sortable v[JSON__MAX_PROPS];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)strlen(props[i].name);
        rc = add_bytes(c, props[i].name, len, &v[i].str.off);
        if (rc)
            goto out;
        v[i].str.len = v[i].len = len;
        v[i].idx = i;
    }
    for (uint32_t i = 0; i < n; i++)
        v[i].p = c->s->bytes + v[i].str.off;
    qsort(v, n, sizeof(v[0]), cmp_sortable);
    struct json__str names[JSON__MAX_PROPS];
    uint32_t nodes[JSON__MAX_PROPS];
    uint64_t required = 0;
    for (uint32_t i = 0; i < n; i++) {
        names[i] = v[i].str;
        nodes[i] = props[v[i].idx].node;
        if (props[v[i].idx].required)
            required |= (uint64_t)1 << i;
    }
    uint32_t first_name, first_node;
    if ((rc = add_strs(c, names, n, &first_name)) || (rc = add_list(c, nodes, n, &first_node)) ||
        (rc = add_node(c, JSON__OBJECT, out)))
        goto out;
    struct json__node *nd = &c->s->nodes[*out];
    nd->u.obj.names = first_name;
    nd->u.obj.nodes = first_node;
    nd->u.obj.n = n;
    nd->u.obj.required = required;
    nd->u.obj.additional = additional;
out:
    for (uint32_t i = 0; i < n; i++)
        free(props[i].name);
    return rc;
}

static int compile_array(struct cc *c, json_t *sch, int depth, uint32_t *out)
{
    uint32_t prefix[JSON__MAX_ALTS];
    uint32_t n_prefix = 0, items = JSON__N_ANY, min, max;
    int rc;
    if ((rc = count_kw(c, sch, "minItems", 0, &min)) ||
        (rc = count_kw(c, sch, "maxItems", UINT32_MAX, &max)))
        return rc;
    json_t *jpre = json_object_get(sch, "prefixItems");
    json_t *jitems = json_object_get(sch, "items");
    json_t *jadd = json_object_get(sch, "additionalItems");
    json_t *rest = jitems;
    if (json_is_array(jitems)) { /* draft 7 tuple form */
        if (jpre)
            return fail(c, JSON_SCHEMA_E_INVALID, "items: an array together with prefixItems");
        jpre = jitems;
        rest = jadd;
    } else if (jadd) {
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "additionalItems without an items array");
    }
    if (jpre) {
        if (!json_is_array(jpre))
            return fail(c, JSON_SCHEMA_E_INVALID, "prefixItems must be an array");
        if (json_array_size(jpre) > JSON__MAX_ALTS)
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "prefixItems: more than %d entries",
                        JSON__MAX_ALTS);
        for (size_t i = 0; i < json_array_size(jpre); i++) {
            rc = compile(c, json_array_get(jpre, i), depth + 1, &prefix[n_prefix]);
            if (rc)
                return rc;
            if (prefix[n_prefix] == JSON__N_NEVER) { /* no item may stand here: the array ends */
                if (max > n_prefix)
                    max = n_prefix;
                break;
            }
            n_prefix++;
        }
    }
    if (rest) {
        rc = compile(c, rest, depth + 1, &items);
        if (rc)
            return rc;
    }
    if (items == JSON__N_NEVER && max > n_prefix)
        max = n_prefix;
    if (min > max)
        return fail(c, JSON_SCHEMA_E_INVALID, "minItems exceeds the items allowed (maxItems)");
    uint32_t first;
    if ((rc = add_list(c, prefix, n_prefix, &first)) || (rc = add_node(c, JSON__ARRAY, out)))
        return rc;
    struct json__node *nd = &c->s->nodes[*out];
    nd->u.arr.prefix = first;
    nd->u.arr.n_prefix = n_prefix;
    nd->u.arr.items = items;
    nd->u.arr.min = min;
    nd->u.arr.max = max;
    return 0;
}

static int compile_string(struct cc *c, json_t *sch, uint32_t *out)
{
    uint32_t min, max;
    int rc;
    if ((rc = count_kw(c, sch, "minLength", 0, &min)) ||
        (rc = count_kw(c, sch, "maxLength", UINT32_MAX, &max)))
        return rc;
    if (min > max)
        return fail(c, JSON_SCHEMA_E_INVALID, "minLength exceeds maxLength");
    json_t *f = json_object_get(sch, "format");
    if (f && !json_is_string(f))
        return fail(c, JSON_SCHEMA_E_INVALID, "format must be a string");
    if (min == 0 && max == UINT32_MAX) {
        *out = JSON__N_ANY_STRING;
        return 0;
    }
    if ((rc = add_node(c, JSON__STRING, out)))
        return rc;
    c->s->nodes[*out].u.str.min = min;
    c->s->nodes[*out].u.str.max = max;
    return 0;
}

static int compile_number(struct cc *c, json_t *sch, bool integer, uint32_t *out)
{
    static const char *const bounds[] = {"minimum", "maximum", "exclusiveMinimum",
                                         "exclusiveMaximum"};
    bool nonneg = false;
    for (size_t i = 0; i < N_OF(bounds); i++) {
        json_t *b = json_object_get(sch, bounds[i]);
        if (b && !json_is_number(b))
            return fail(c, JSON_SCHEMA_E_INVALID, "%s must be a number", bounds[i]);
        /* Only the sign is enforced: a lower bound >= 0 forbids the minus sign. */
        if (b && i % 2 == 0 && json_number_value(b) >= 0)
            nonneg = true;
    }
    if (!integer && !nonneg) {
        *out = JSON__N_ANY_NUMBER;
        return 0;
    }
    int rc = add_node(c, integer ? JSON__INTEGER : JSON__NUMBER, out);
    if (rc)
        return rc;
    c->s->nodes[*out].nonneg = nonneg;
    return 0;
}

static int type_bit(struct cc *c, json_t *t, unsigned *mask)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"null", T_NULL},  {"boolean", T_BOOL}, {"object", T_OBJ}, {"array", T_ARR},
                 {"string", T_STR}, {"number", T_NUM},   {"integer", T_INT}};
    if (!json_is_string(t))
        return fail(c, JSON_SCHEMA_E_INVALID, "type must be a string or an array of strings");
    for (size_t i = 0; i < N_OF(names); i++)
        if (!strcmp(json_string_value(t), names[i].name)) {
            *mask |= names[i].bit;
            return 0;
        }
    return fail(c, JSON_SCHEMA_E_INVALID, "type: unknown type '%.40s'", json_string_value(t));
}

static bool has_any(json_t *sch, const char *const *kw, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (json_object_get(sch, kw[i]))
            return true;
    return false;
}

static int make_anyof(struct cc *c, const uint32_t *alts, uint32_t n, uint32_t *out);

/* type / enum / const and the keywords of each type. */
static int compile_typed(struct cc *c, json_t *sch, int depth, uint32_t *out)
{
    unsigned types = 0;
    json_t *jt = json_object_get(sch, "type");
    int rc;
    if (jt) {
        if (json_is_array(jt)) {
            if (json_array_size(jt) == 0)
                return fail(c, JSON_SCHEMA_E_INVALID, "type: empty array");
            for (size_t i = 0; i < json_array_size(jt); i++)
                if ((rc = type_bit(c, json_array_get(jt, i), &types)))
                    return rc;
        } else if ((rc = type_bit(c, jt, &types))) {
            return rc;
        }
    }
    json_t *je = json_object_get(sch, "enum");
    json_t *jc = json_object_get(sch, "const");
    if (je || jc) {
        if (je && !json_is_array(je))
            return fail(c, JSON_SCHEMA_E_INVALID, "enum must be an array");
        unsigned filter = types ? types : T_ALL;
        if (filter & T_NUM)
            filter |= T_INT;
        if (jc) {
            bool in_enum = !je;
            for (size_t i = 0; je && i < json_array_size(je); i++)
                in_enum |= json_equal(json_array_get(je, i), jc);
            return compile_literals(c, &jc, 1, in_enum ? filter : 0, out);
        }
        size_t n = json_array_size(je);
        json_t **vals = malloc((n ? n : 1) * sizeof(*vals));
        if (!vals)
            return fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
        for (size_t i = 0; i < n; i++)
            vals[i] = json_array_get(je, i);
        rc = compile_literals(c, vals, n, filter, out);
        free(vals);
        return rc;
    }
    if (!types) { /* infer from the keywords: stricter than the schema, never looser */
        static const char *const obj_kw[] = {"properties", "required", "additionalProperties"};
        static const char *const arr_kw[] = {"items", "prefixItems", "additionalItems", "minItems",
                                             "maxItems"};
        static const char *const str_kw[] = {"minLength", "maxLength"};
        static const char *const num_kw[] = {"minimum", "maximum", "exclusiveMinimum",
                                             "exclusiveMaximum"};
        types |= has_any(sch, obj_kw, N_OF(obj_kw)) ? T_OBJ : 0;
        types |= has_any(sch, arr_kw, N_OF(arr_kw)) ? T_ARR : 0;
        types |= has_any(sch, str_kw, N_OF(str_kw)) ? T_STR : 0;
        types |= has_any(sch, num_kw, N_OF(num_kw)) ? T_NUM : 0;
        if (!types) {
            *out = JSON__N_ANY;
            return 0;
        }
    }
    uint32_t alts[6];
    uint32_t n = 0;
    if ((types & (T_NULL | T_BOOL)) == (T_NULL | T_BOOL)) {
        alts[n++] = JSON__N_ANY_LITERAL;
    } else if (types & T_NULL) {
        static const char *const t[] = {"null"};
        if ((rc = fixed_literals(c, t, 1, &alts[n++])))
            return rc;
    } else if (types & T_BOOL) {
        static const char *const t[] = {"false", "true"};
        if ((rc = fixed_literals(c, t, 2, &alts[n++])))
            return rc;
    }
    if ((types & T_OBJ) && (rc = compile_object(c, sch, depth, &alts[n++])))
        return rc;
    if ((types & T_ARR) && (rc = compile_array(c, sch, depth, &alts[n++])))
        return rc;
    if ((types & T_STR) && (rc = compile_string(c, sch, &alts[n++])))
        return rc;
    if ((types & (T_NUM | T_INT)) && (rc = compile_number(c, sch, !(types & T_NUM), &alts[n++])))
        return rc;
    if (n == 1) {
        *out = alts[0];
        return 0;
    }
    return make_anyof(c, alts, n, out);
}

/* An ANYOF node; direct LITERAL alternatives are merged into one, NEVER ones dropped. */
static int make_anyof(struct cc *c, const uint32_t *alts, uint32_t n, uint32_t *out)
{
    uint32_t keep[JSON__MAX_ALTS + 1];
    uint32_t k = 0, n_lit = 0, n_lit_alts = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct json__node *nd = &c->s->nodes[alts[i]];
        if (alts[i] == JSON__N_NEVER)
            continue;
        if (nd->kind == JSON__LITERAL) {
            n_lit += nd->u.lit.n;
            n_lit_alts++;
            continue;
        }
        keep[k++] = alts[i];
    }
    if (n_lit_alts == 1) {
        for (uint32_t i = 0; i < n; i++)
            if (c->s->nodes[alts[i]].kind == JSON__LITERAL && alts[i] != JSON__N_NEVER)
                keep[k++] = alts[i];
    } else if (n_lit_alts > 1) {
        struct sortable *v = calloc(n_lit, sizeof(*v));
        if (!v)
            return fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct json__node *nd = &c->s->nodes[alts[i]];
            if (nd->kind != JSON__LITERAL)
                continue;
            for (uint32_t j = 0; j < nd->u.lit.n; j++) {
                v[m].str = c->s->strs[nd->u.lit.lits + j];
                v[m].len = v[m].str.len;
                m++;
            }
        }
        int rc = literal_node(c, v, m, &keep[k]);
        free(v);
        if (rc)
            return rc;
        k++;
    }
    if (k == 0) {
        *out = JSON__N_NEVER;
        return 0;
    }
    if (k == 1) {
        *out = keep[0];
        return 0;
    }
    uint32_t first;
    int rc;
    if ((rc = add_list(c, keep, k, &first)) || (rc = add_node(c, JSON__ANYOF, out)))
        return rc;
    c->s->nodes[*out].u.anyof.alts = first;
    c->s->nodes[*out].u.anyof.n = k;
    c->s->nodes[*out].u.anyof.table = JSON__NONE;
    return 0;
}

static int compile(struct cc *c, json_t *sch, int depth, uint32_t *out)
{
    if (depth > MAX_SCHEMA_DEPTH)
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "schema nested more than %d levels",
                    MAX_SCHEMA_DEPTH);
    if (json_is_true(sch)) {
        *out = JSON__N_ANY;
        return 0;
    }
    if (json_is_false(sch)) {
        *out = JSON__N_NEVER;
        return 0;
    }
    if (!json_is_object(sch))
        return fail(c, JSON_SCHEMA_E_INVALID, "a schema must be an object or a boolean");
    const char *k;
    json_t *v;
    json_object_foreach(sch, k, v)
    {
        if (in_list(k, unsupported_kw, N_OF(unsupported_kw)))
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "keyword '%s' is not supported", k);
        if (!strcmp(k, "uniqueItems") && !json_is_false(v))
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "keyword 'uniqueItems' is not supported");
    }
    if (json_object_get(sch, "$ref"))
        return compile_ref(c, sch, depth, out);
    json_t *all = json_object_get(sch, "allOf");
    if (all) {
        static const char *const self[] = {"allOf"};
        if (!json_is_array(all) || json_array_size(all) == 0)
            return fail(c, JSON_SCHEMA_E_INVALID, "allOf must be a non-empty array");
        if (json_array_size(all) != 1 || count_validating(sch, self, 1))
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                        "allOf is supported only with one member and no sibling keywords");
        return compile(c, json_array_get(all, 0), depth + 1, out);
    }
    json_t *any = json_object_get(sch, "anyOf");
    json_t *one = json_object_get(sch, "oneOf");
    if (any || one) {
        static const char *const self[] = {"anyOf", "oneOf"};
        const char *kw = any ? "anyOf" : "oneOf";
        if (any && one)
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "anyOf together with oneOf");
        json_t *arr = any ? any : one;
        if (!json_is_array(arr) || json_array_size(arr) == 0)
            return fail(c, JSON_SCHEMA_E_INVALID, "%s must be a non-empty array", kw);
        if (count_validating(sch, self, 2))
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "%s with sibling keywords is not supported",
                        kw);
        if (json_array_size(arr) > JSON__MAX_ALTS)
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "%s: more than %d alternatives", kw,
                        JSON__MAX_ALTS);
        uint32_t alts[JSON__MAX_ALTS];
        uint32_t n = (uint32_t)json_array_size(arr);
        for (uint32_t i = 0; i < n; i++) {
            int rc = compile(c, json_array_get(arr, i), depth + 1, &alts[i]);
            if (rc)
                return rc;
        }
        return make_anyof(c, alts, n, out);
    }
    return compile_typed(c, sch, depth, out);
}

/* ---- after compiling: $ref cycles, first-byte dispatch of anyOf ---- */

static void first_bytes(const struct json_schema *s, uint32_t n, uint64_t set[4])
{
    const struct json__node *nd = &s->nodes[n];
#define ADD(b) (set[(uint8_t)(b) >> 6] |= (uint64_t)1 << ((uint8_t)(b)&63))
    switch (nd->kind) {
    case JSON__OBJECT:
        ADD('{');
        break;
    case JSON__ARRAY:
        ADD('[');
        break;
    case JSON__STRING:
        ADD('"');
        break;
    case JSON__NUMBER:
    case JSON__INTEGER:
        for (char d = '0'; d <= '9'; d++)
            ADD(d);
        if (!nd->nonneg)
            ADD('-');
        break;
    case JSON__LITERAL:
        for (uint32_t i = 0; i < nd->u.lit.n; i++) {
            const struct json__str *t = &s->strs[nd->u.lit.lits + i];
            if (t->len)
                ADD(s->bytes[t->off]);
        }
        break;
    default:
        break;
    }
#undef ADD
}

static bool is_any_builtin(uint32_t n)
{
    return n >= JSON__N_ANY_OBJECT && n <= JSON__N_ANY_LITERAL;
}

/* Which of two concrete nodes starting with the same byte serves both; JSON__NONE: neither. */
static uint32_t subsume(const struct json_schema *s, uint32_t a, uint32_t b)
{
    if (a == b)
        return a;
    uint8_t ka = s->nodes[a].kind, kb = s->nodes[b].kind;
    if (is_any_builtin(a) && (ka == kb || (ka == JSON__NUMBER && kb == JSON__INTEGER)))
        return a;
    if (is_any_builtin(b) && (ka == kb || (kb == JSON__NUMBER && ka == JSON__INTEGER)))
        return b;
    if (ka == JSON__NUMBER && kb == JSON__INTEGER)
        return a;
    if (kb == JSON__NUMBER && ka == JSON__INTEGER)
        return b;
    return JSON__NONE;
}

static int prep_anyof(struct cc *c, uint32_t n, uint8_t *mark)
{
    struct json_schema *s = c->s;
    if (mark[n] == 2)
        return 0;
    if (mark[n] == 1)
        return fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                    "anyOf/oneOf refers back to itself without an object or array between");
    mark[n] = 1;
    int rc = grow((void **)&s->dispatch, &s->cap_dispatch, (uint64_t)s->n_dispatch + 256,
                  sizeof(*s->dispatch), UINT32_MAX / 2);
    if (rc)
        return too_big(c, rc);
    uint32_t table = s->n_dispatch;
    s->n_dispatch += 256;
    for (int b = 0; b < 256; b++)
        s->dispatch[table + b] = JSON__NONE;
    for (uint32_t i = 0; i < s->nodes[n].u.anyof.n; i++) {
        uint32_t a = json__resolve(s, s->list[s->nodes[n].u.anyof.alts + i]);
        uint32_t entry[256];
        if (s->nodes[a].kind == JSON__ANYOF) {
            if ((rc = prep_anyof(c, a, mark)))
                return rc;
            memcpy(entry, s->dispatch + s->nodes[a].u.anyof.table, sizeof(entry));
        } else {
            uint64_t set[4] = {0};
            first_bytes(s, a, set);
            for (int b = 0; b < 256; b++)
                entry[b] = (set[b >> 6] >> (b & 63)) & 1 ? a : JSON__NONE;
        }
        for (int b = 0; b < 256; b++) {
            if (entry[b] == JSON__NONE)
                continue;
            uint32_t *slot = &s->dispatch[table + b];
            uint32_t win = *slot == JSON__NONE ? entry[b] : subsume(s, *slot, entry[b]);
            if (win == JSON__NONE)
                return fail(c, JSON_SCHEMA_E_UNSUPPORTED,
                            "anyOf/oneOf: two alternatives can start with '%c'; alternatives "
                            "must differ in their first character",
                            b);
            *slot = win;
        }
    }
    s->nodes[n].u.anyof.table = table;
    mark[n] = 2;
    return 0;
}

static int finish(struct cc *c)
{
    struct json_schema *s = c->s;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].kind == JSON__REF && s->nodes[json__resolve(s, i)].kind == JSON__REF)
            return fail(c, JSON_SCHEMA_E_UNSUPPORTED, "$ref cycle with no schema in between");
    uint8_t *mark = calloc(s->n_nodes, 1);
    if (!mark)
        return fail(c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
    int rc = 0;
    for (uint32_t i = 0; i < s->n_nodes && !rc; i++)
        if (s->nodes[i].kind == JSON__ANYOF)
            rc = prep_anyof(c, i, mark);
    free(mark);
    if (rc)
        return rc;
    if (json__resolve(s, s->root) == JSON__N_NEVER)
        return fail(c, JSON_SCHEMA_E_INVALID, "the schema accepts nothing");
    return 0;
}

static int builtins(struct cc *c)
{
    uint32_t n;
    int rc;
    static const uint8_t kinds[JSON__N_BUILTIN] = {
        [JSON__N_ANY] = JSON__ANYOF,         [JSON__N_ANY_OBJECT] = JSON__OBJECT,
        [JSON__N_ANY_ARRAY] = JSON__ARRAY,   [JSON__N_ANY_STRING] = JSON__STRING,
        [JSON__N_ANY_NUMBER] = JSON__NUMBER, [JSON__N_ANY_LITERAL] = JSON__LITERAL,
        [JSON__N_NEVER] = JSON__NEVER,
    };
    for (int i = 0; i < JSON__N_BUILTIN; i++)
        if ((rc = add_node(c, kinds[i], &n)))
            return rc;
    struct sortable v[3];
    static const char *const lit[] = {"false", "null", "true"};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(lit[i]);
        if ((rc = add_bytes(c, lit[i], len, &v[i].str.off)))
            return rc;
        v[i].str.len = v[i].len = (uint32_t)len;
    }
    uint32_t first;
    struct json__str strs[3] = {v[0].str, v[1].str, v[2].str};
    if ((rc = add_strs(c, strs, 3, &first)))
        return rc;
    uint32_t alts[5] = {JSON__N_ANY_OBJECT, JSON__N_ANY_ARRAY, JSON__N_ANY_STRING,
                        JSON__N_ANY_NUMBER, JSON__N_ANY_LITERAL};
    uint32_t afirst;
    if ((rc = add_list(c, alts, 5, &afirst)))
        return rc;
    struct json__node *nd = c->s->nodes;
    nd[JSON__N_ANY].u.anyof.alts = afirst;
    nd[JSON__N_ANY].u.anyof.n = 5;
    nd[JSON__N_ANY].u.anyof.table = JSON__NONE;
    nd[JSON__N_ANY_OBJECT].u.obj.additional = JSON__N_ANY;
    nd[JSON__N_ANY_ARRAY].u.arr.items = JSON__N_ANY;
    nd[JSON__N_ANY_ARRAY].u.arr.max = UINT32_MAX;
    nd[JSON__N_ANY_STRING].u.str.max = UINT32_MAX;
    nd[JSON__N_ANY_LITERAL].u.lit.lits = first;
    nd[JSON__N_ANY_LITERAL].u.lit.n = 3;
    return 0;
}

int json_schema_compile(struct json_schema **out, const char *schema_json, size_t len, char *err,
                        size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return JSON_SCHEMA_E_INVALID;
    *out = NULL;
    struct cc c = {.err = err, .errlen = errlen};
    c.s = calloc(1, sizeof(*c.s));
    c.refs = malloc(MAX_REFS * sizeof(*c.refs));
    int rc = 0;
    if (!c.s || !c.refs) {
        rc = fail(&c, JSON_SCHEMA_E_NOMEM, "out of memory compiling the schema");
        goto out;
    }
    if ((rc = builtins(&c)))
        goto out;
    if (!schema_json || len == 0) {
        c.s->root = JSON__N_ANY_OBJECT;
    } else {
        json_error_t je;
        c.doc = json_loadb(schema_json, len, JSON_DECODE_ANY, &je);
        if (!c.doc) {
            rc = fail(&c, JSON_SCHEMA_E_INVALID, "schema is not valid JSON: %s (line %d)", je.text,
                      je.line);
            goto out;
        }
        if ((rc = compile(&c, c.doc, 0, &c.s->root)))
            goto out;
    }
    rc = finish(&c);
out:
    json_decref(c.doc);
    free(c.refs);
    if (rc) {
        json_schema_free(c.s);
        return rc;
    }
    *out = c.s;
    return 0;
}

void json_schema_free(struct json_schema *s)
{
    if (!s)
        return;
    free(s->nodes);
    free(s->strs);
    free(s->list);
    free(s->dispatch);
    free(s->bytes);
    free(s);
}
