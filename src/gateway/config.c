/* Gateway configuration: libyaml events → a bounded node tree → validated struct gw_config. */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Tree bounds beyond the public ones: a 1 MiB file cannot hold more than this many useful
 * nodes, and a cap per collection keeps duplicate-key checks quadratic in a small number. */
#define MAX_NODES 65536
#define MAX_ITEMS 4096
#define PATH_LEN 256

const char *gw_config_strerror(int err)
{
    switch (err) {
    case GW_CONFIG_OK:
        return "ok";
    case GW_CONFIG_E_ARG:
        return "invalid argument";
    case GW_CONFIG_E_NOMEM:
        return "out of memory";
    case GW_CONFIG_E_IO:
        return "I/O error";
    case GW_CONFIG_E_SYNTAX:
        return "YAML syntax error";
    case GW_CONFIG_E_INVALID:
        return "invalid configuration";
    case GW_CONFIG_E_LIMIT:
        return "configuration over a limit or unsupported YAML";
    case GW_CONFIG_E_ENV:
        return "environment variable missing";
    }
    return "unknown error";
}

/* ---- names of enums (tables indexed by enum) ---- */

static const char *const PROVIDER_NAMES[GW_PROVIDER_COUNT] = {
    [GW_PROVIDER_OPENAI] = "openai",
    [GW_PROVIDER_ANTHROPIC] = "anthropic",
    [GW_PROVIDER_GEMINI] = "gemini",
    [GW_PROVIDER_MISTRAL] = "mistral",
    [GW_PROVIDER_OPENAI_COMPATIBLE] = "openai-compatible",
};
static const char *const PROVIDER_URLS[GW_PROVIDER_COUNT] = {
    [GW_PROVIDER_OPENAI] = "https://api.openai.com/v1",
    [GW_PROVIDER_ANTHROPIC] = "https://api.anthropic.com",
    [GW_PROVIDER_GEMINI] = "https://generativelanguage.googleapis.com",
    [GW_PROVIDER_MISTRAL] = "https://api.mistral.ai/v1",
    [GW_PROVIDER_OPENAI_COMPATIBLE] = NULL,
};
static const char *const ACTION_NAMES[GW_PRIVACY_ACTION_COUNT] = {
    [GW_PRIVACY_ALLOW] = "allow",
    [GW_PRIVACY_ROUTE_LOCAL] = "route_local",
    [GW_PRIVACY_PSEUDONYMIZE] = "pseudonymize",
    [GW_PRIVACY_BLOCK] = "block",
};
static const char *const PII_NAMES[GW_PII_COUNT] = {
    [GW_PII_EMAIL] = "email",     [GW_PII_PHONE] = "phone",
    [GW_PII_CARD] = "card",       [GW_PII_IBAN] = "iban",
    [GW_PII_IPV4] = "ipv4",       [GW_PII_IPV6] = "ipv6",
    [GW_PII_SSN] = "ssn",         [GW_PII_NATIONAL_ID] = "national_id",
    [GW_PII_API_KEY] = "api_key", [GW_PII_PRIVATE_KEY] = "private_key",
    [GW_PII_PERSON] = "person",
};
static const char *const STRATEGY_NAMES[GW_ROUTE_STRATEGY_COUNT] = {
    [GW_ROUTE_ORDERED] = "ordered",
    [GW_ROUTE_WEIGHTED] = "weighted",
    [GW_ROUTE_LEAST_LATENCY] = "least_latency",
};

const char *gw_provider_name(enum gw_provider p)
{
    return (unsigned)p < GW_PROVIDER_COUNT ? PROVIDER_NAMES[p] : "?";
}

const char *gw_provider_default_base_url(enum gw_provider p)
{
    return (unsigned)p < GW_PROVIDER_COUNT ? PROVIDER_URLS[p] : NULL;
}

const char *gw_privacy_action_name(enum gw_privacy_action a)
{
    return (unsigned)a < GW_PRIVACY_ACTION_COUNT ? ACTION_NAMES[a] : "?";
}

const char *gw_pii_kind_name(enum gw_pii_kind k)
{
    return (unsigned)k < GW_PII_COUNT ? PII_NAMES[k] : "?";
}

const char *gw_route_strategy_name(enum gw_route_strategy s)
{
    return (unsigned)s < GW_ROUTE_STRATEGY_COUNT ? STRATEGY_NAMES[s] : "?";
}

/* ---- memory: every allocation is a block on a list, wiped and freed together ---- */

struct gw_mem {
    struct gw_mem *next;
    size_t size;
    max_align_t data[];
};

static void *mem_alloc(struct gw_mem **list, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct gw_mem))
        return NULL;
    struct gw_mem *m = calloc(1, sizeof(*m) + n);
    if (!m)
        return NULL;
    m->size = n;
    m->next = *list;
    *list = m;
    return m->data;
}

static char *mem_strndup(struct gw_mem **list, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = mem_alloc(list, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Wipes as it frees: configuration text and structs hold API keys. */
static void mem_free_all(struct gw_mem *m)
{
    while (m) {
        struct gw_mem *next = m->next;
        explicit_bzero(m->data, m->size);
        free(m);
        m = next;
    }
}

/* ---- the node tree built from libyaml events ---- */

enum yn_type { YN_SCALAR, YN_MAP, YN_SEQ };

struct yn {
    enum yn_type type;
    int line, col;   /* 1-based */
    const char *str; /* scalar text, NUL-terminated (may hold an escaped \0: see len) */
    size_t len;
    bool plain;       /* an unquoted scalar: the only kind that can be null, a number, a bool */
    struct yn **kids; /* mapping: key, value, key, value...; list: items */
    size_t n, cap;
};

struct pctx {
    const char *name;
    char *err;
    size_t errlen;
    struct gw_mem *tree; /* nodes and their text */
    size_t n_nodes;
    struct gw_config *cfg;
};

static int vfail(struct pctx *c, int rc, int line, int col, const char *path, const char *fmt,
                 va_list ap)
{
    if (!c->err || !c->errlen)
        return rc;
    size_t off = 0;
    int k;
    if (line > 0)
        k = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->name, line, col);
    else
        k = snprintf(c->err, c->errlen, "%s: ", c->name);
    if (k > 0)
        off = (size_t)k < c->errlen ? (size_t)k : c->errlen - 1;
    if (path && path[0] && off < c->errlen - 1) {
        k = snprintf(c->err + off, c->errlen - off, "%s: ", path);
        if (k > 0)
            off += (size_t)k < c->errlen - off ? (size_t)k : c->errlen - off - 1;
    }
    if (off < c->errlen - 1)
        vsnprintf(c->err + off, c->errlen - off, fmt, ap);
    return rc;
}

/* Formats "name:line:col: path: message" into the caller's buffer; returns rc. */
__attribute__((format(printf, 5, 6))) static int fail(struct pctx *c, int rc, const struct yn *at,
                                                      const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, rc, at ? at->line : 0, at ? at->col : 0, path, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 5, 6))) static int fail_mark(struct pctx *c, int rc, yaml_mark_t mark,
                                                           const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, rc, (int)mark.line + 1, (int)mark.column + 1, path, fmt, ap);
    va_end(ap);
    return rc;
}

static int syntax_error(struct pctx *c, yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory while parsing YAML");
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_READER_ERROR)
        return fail(c, GW_CONFIG_E_SYNTAX, NULL, NULL, "byte %zu: %s", p->problem_offset, problem);
    if (p->context)
        return fail_mark(c, GW_CONFIG_E_SYNTAX, p->problem_mark, NULL, "%s (%s at line %d)",
                         problem, p->context, (int)p->context_mark.line + 1);
    return fail_mark(c, GW_CONFIG_E_SYNTAX, p->problem_mark, NULL, "%s", problem);
}

static bool yn_is_null(const struct yn *n)
{
    if (!n)
        return true;
    if (n->type != YN_SCALAR || !n->plain)
        return false;
    return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
           !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

/* A short, printable description of a node for "got ..." in messages. */
static const char *describe(const struct yn *n, char *buf, size_t len)
{
    if (yn_is_null(n))
        return "null";
    if (n->type == YN_MAP)
        return "a mapping";
    if (n->type == YN_SEQ)
        return "a list";
    size_t o = 0;
    if (len < 8)
        return "a value";
    buf[o++] = '"';
    for (size_t i = 0; i < n->len && o + 5 < len; i++) {
        if (i == 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = (unsigned char)n->str[i];
        buf[o++] = (ch < 0x20 || ch == 0x7f || ch == '"') ? '?' : (char)ch;
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

static struct yn *node_new(struct pctx *c, const yaml_event_t *ev, enum yn_type type)
{
    if (c->n_nodes >= MAX_NODES)
        return NULL;
    struct yn *n = mem_alloc(&c->tree, sizeof(*n));
    if (!n)
        return NULL;
    c->n_nodes++;
    n->type = type;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static int node_push(struct pctx *c, struct yn *parent, struct yn *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct yn **k = mem_alloc(&c->tree, cap * sizeof(*k));
        if (!k)
            return GW_CONFIG_E_NOMEM;
        if (parent->n)
            memcpy(k, parent->kids, parent->n * sizeof(*k));
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static int next_event(struct pctx *c, yaml_parser_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(p, ev))
        return syntax_error(c, p);
    return 0;
}

/* Rejects YAML features a configuration file has no use for and that hide what it means:
 * anchors and aliases (expansion bombs, action at a distance) and explicit tags. */
static int check_props(struct pctx *c, const yaml_event_t *ev, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
    if (anchor)
        return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL,
                         "YAML anchors (&%s) and aliases are not supported", (const char *)anchor);
    if (tag)
        return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL,
                         "YAML tags (%s) are not supported", (const char *)tag);
    return 0;
}

/* Builds the node that starts with event `ev` (which the caller deletes). */
static int build_node(struct pctx *c, yaml_parser_t *p, const yaml_event_t *ev, int depth,
                      struct yn **out)
{
    int rc;
    struct yn *n = NULL;
    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL,
                         "YAML aliases (*%s) are not supported",
                         (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        if ((rc = check_props(c, ev, ev->data.scalar.anchor, ev->data.scalar.tag)))
            return rc;
        if (ev->data.scalar.length > GW_CONFIG_MAX_STRING)
            return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL,
                             "a string of %zu bytes is over the %d-byte limit",
                             ev->data.scalar.length, GW_CONFIG_MAX_STRING);
        if (!(n = node_new(c, ev, YN_SCALAR)))
            goto nomem_or_limit;
        n->str = mem_strndup(&c->tree, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!n->str)
            return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        *out = n;
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        const bool map = ev->type == YAML_MAPPING_START_EVENT;
        if ((rc = check_props(c, ev,
                              map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
                              map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag)))
            return rc;
        if (depth >= GW_CONFIG_MAX_DEPTH)
            return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL,
                             "nesting deeper than %d levels", GW_CONFIG_MAX_DEPTH);
        if (!(n = node_new(c, ev, map ? YN_MAP : YN_SEQ)))
            goto nomem_or_limit;
        const yaml_event_type_t end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
        for (;;) {
            yaml_event_t e;
            if ((rc = next_event(c, p, &e)))
                return rc;
            if (e.type == end) {
                yaml_event_delete(&e);
                break;
            }
            struct yn *kid;
            rc = build_node(c, p, &e, depth + 1, &kid);
            yaml_event_delete(&e);
            if (rc)
                return rc;
            if (n->n >= 2 * MAX_ITEMS)
                return fail(c, GW_CONFIG_E_LIMIT, kid, NULL, "more than %d entries in one %s",
                            MAX_ITEMS, map ? "mapping" : "list");
            if (map && !(n->n & 1)) {
                if (kid->type != YN_SCALAR)
                    return fail(c, GW_CONFIG_E_LIMIT, kid, NULL,
                                "mapping keys must be plain strings, got %s",
                                kid->type == YN_MAP ? "a mapping" : "a list");
                if (kid->plain && !strcmp(kid->str, "<<"))
                    return fail(c, GW_CONFIG_E_LIMIT, kid, NULL,
                                "YAML merge keys (<<) are not supported");
                for (size_t i = 0; i < n->n; i += 2)
                    if (n->kids[i]->len == kid->len &&
                        !memcmp(n->kids[i]->str, kid->str, kid->len)) {
                        char d[64];
                        return fail(c, GW_CONFIG_E_INVALID, kid, NULL,
                                    "duplicate key %s (first at line %d)",
                                    describe(kid, d, sizeof(d)), n->kids[i]->line);
                    }
            }
            if ((rc = node_push(c, n, kid)))
                return fail(c, rc, NULL, NULL, "out of memory");
        }
        *out = n;
        return 0;
    }
    default:
        return fail_mark(c, GW_CONFIG_E_SYNTAX, ev->start_mark, NULL, "unexpected YAML event");
    }
nomem_or_limit:
    if (c->n_nodes >= MAX_NODES)
        return fail_mark(c, GW_CONFIG_E_LIMIT, ev->start_mark, NULL, "more than %d YAML nodes",
                         MAX_NODES);
    return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
}

/* Parses the whole stream into one root node: exactly one document. */
static int build_tree(struct pctx *c, const char *text, size_t len, struct yn **root)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc;
    bool have_ev = false;
    *root = NULL;
    if (!yaml_parser_initialize(&p))
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if ((rc = next_event(c, &p, &ev))) /* stream start */
        goto out;
    yaml_event_delete(&ev);
    if ((rc = next_event(c, &p, &ev)))
        goto out;
    have_ev = true;
    if (ev.type == YAML_STREAM_END_EVENT) {
        rc = fail(c, GW_CONFIG_E_INVALID, NULL, NULL, "the configuration is empty");
        goto out;
    }
    if (ev.data.document_start.tag_directives.start != ev.data.document_start.tag_directives.end) {
        rc = fail_mark(c, GW_CONFIG_E_LIMIT, ev.start_mark, NULL,
                       "%%TAG directives are not supported");
        goto out;
    }
    yaml_event_delete(&ev);
    have_ev = false;
    if ((rc = next_event(c, &p, &ev)))
        goto out;
    have_ev = true;
    if ((rc = build_node(c, &p, &ev, 0, root)))
        goto out;
    yaml_event_delete(&ev);
    have_ev = false;
    if ((rc = next_event(c, &p, &ev))) /* document end */
        goto out;
    yaml_event_delete(&ev);
    if ((rc = next_event(c, &p, &ev)))
        goto out;
    have_ev = true;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = fail_mark(c, GW_CONFIG_E_LIMIT, ev.start_mark, NULL,
                       "only one YAML document is allowed (remove this '---')");
out:
    if (have_ev)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    return rc;
}

/* ---- schema helpers ---- */

/* Bounded string building for key paths (truncation is harmless: they only label errors). */
static void path_append(char *buf, size_t len, size_t *o, const char *s)
{
    while (*s && *o + 1 < len)
        buf[(*o)++] = *s++;
    buf[*o] = 0;
}

static void path_key(char *buf, size_t len, const char *base, const char *key)
{
    char tmp[PATH_LEN];
    size_t o = 0;
    path_append(tmp, sizeof(tmp), &o, base);
    if (base[0])
        path_append(tmp, sizeof(tmp), &o, ".");
    path_append(tmp, sizeof(tmp), &o, key);
    o = 0;
    path_append(buf, len, &o, tmp);
}

static void path_index(char *buf, size_t len, const char *base, size_t i)
{
    char tmp[PATH_LEN], num[32];
    size_t o = 0;
    snprintf(num, sizeof(num), "[%zu]", i);
    path_append(tmp, sizeof(tmp), &o, base);
    path_append(tmp, sizeof(tmp), &o, num);
    o = 0;
    path_append(buf, len, &o, tmp);
}

/* Levenshtein distance, or a large number when either string is long. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    size_t row[GW_CONFIG_MAX_NAME + 2];
    if (la > GW_CONFIG_MAX_NAME || lb > GW_CONFIG_MAX_NAME)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of `names` (n of them, or NULL-terminated when n == SIZE_MAX) within 2 edits. */
static const char *suggest(const char *s, size_t len, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n && names[i]; i++) {
        size_t d = edit_distance(s, len, names[i]);
        if (d < bestd) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

static void join_names(char *buf, size_t len, const char *const *names, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && names[i] && o < len; i++) {
        int k = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", names[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

/* Requires a mapping whose keys all belong to `keys` (NULL-terminated). */
static int check_map(struct pctx *c, const struct yn *n, const char *path, const char *const *keys)
{
    char d[64];
    if (!n || n->type != YN_MAP)
        return fail(c, GW_CONFIG_E_INVALID, n, path, "expected a mapping, got %s",
                    describe(n, d, sizeof(d)));
    for (size_t i = 0; i < n->n; i += 2) {
        const struct yn *k = n->kids[i];
        bool known = false;
        for (size_t j = 0; keys[j]; j++)
            if (!strcmp(keys[j], k->str) && strlen(keys[j]) == k->len)
                known = true;
        if (known)
            continue;
        const char *s = suggest(k->str, k->len, keys, SIZE_MAX);
        if (s)
            return fail(c, GW_CONFIG_E_INVALID, k, path, "unknown key %s (did you mean \"%s\"?)",
                        describe(k, d, sizeof(d)), s);
        char list[512];
        join_names(list, sizeof(list), keys, SIZE_MAX);
        return fail(c, GW_CONFIG_E_INVALID, k, path, "unknown key %s (expected one of: %s)",
                    describe(k, d, sizeof(d)), list);
    }
    return 0;
}

/* The value of `key` in mapping `n`, or NULL. */
static const struct yn *map_get(const struct yn *n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; n && i + 1 < n->n; i += 2)
        if (n->kids[i]->len == kl && !memcmp(n->kids[i]->str, key, kl))
            return n->kids[i + 1];
    return NULL;
}

/* The key node of `key` in mapping `n` (for positions), or NULL. */
static const struct yn *map_key(const struct yn *n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; n && i + 1 < n->n; i += 2)
        if (n->kids[i]->len == kl && !memcmp(n->kids[i]->str, key, kl))
            return n->kids[i];
    return NULL;
}

static bool has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return true;
    }
    return false;
}

/* A non-empty string without control characters, copied into the config. `secret`: never
 * echo the value. */
static int get_str(struct pctx *c, const struct yn *v, const char *path, bool secret,
                   const char **out)
{
    char d[64];
    if (yn_is_null(v) || v->type != YN_SCALAR)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected a string, got %s",
                    describe(v, d, sizeof(d)));
    if (v->len == 0)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "must not be empty");
    if (has_control(v->str, v->len))
        return fail(c, GW_CONFIG_E_INVALID, v, path, "contains a control character%s",
                    secret ? "" : " (tabs, newlines and \\0 are not allowed here)");
    const char *s = mem_strndup(&c->cfg->mem__, v->str, v->len);
    if (!s)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    *out = s;
    return 0;
}

/* Strict decimal integer (optional sign, digits only), within [min, max]. */
static int get_ll(struct pctx *c, const struct yn *v, const char *path, long long min,
                  long long max, long long *out)
{
    char d[64];
    bool ok = v && v->type == YN_SCALAR && v->plain && v->len > 0 && v->len <= 19;
    size_t i = 0;
    if (ok && (v->str[0] == '-' || v->str[0] == '+'))
        i = 1;
    if (ok && i == v->len)
        ok = false;
    for (size_t j = i; ok && j < v->len; j++)
        if (v->str[j] < '0' || v->str[j] > '9')
            ok = false;
    if (!ok)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected an integer, got %s",
                    describe(v, d, sizeof(d)));
    long long x = strtoll(v->str, NULL, 10);
    if (x < min || x > max)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "must be between %lld and %lld, got %s", min,
                    max, v->str);
    *out = x;
    return 0;
}

static int get_int(struct pctx *c, const struct yn *v, const char *path, int min, int max, int *out)
{
    long long x;
    int rc = get_ll(c, v, path, min, max, &x);
    if (!rc)
        *out = (int)x;
    return rc;
}

/* A byte count: an integer, optionally with a KiB, MiB or GiB suffix. */
static int get_size(struct pctx *c, const struct yn *v, const char *path, long long min,
                    long long max, size_t *out)
{
    static const struct {
        const char *suffix;
        long long mul;
    } units[] = {{"KiB", 1LL << 10}, {"MiB", 1LL << 20}, {"GiB", 1LL << 30}};
    if (v && v->type == YN_SCALAR && v->plain && v->len > 3 && v->len < 32) {
        for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            if (strcmp(v->str + v->len - 3, units[u].suffix))
                continue;
            struct yn num = *v;
            char buf[32];
            size_t nl = v->len - 3;
            while (nl > 0 && v->str[nl - 1] == ' ')
                nl--;
            memcpy(buf, v->str, nl);
            buf[nl] = 0;
            num.str = buf;
            num.len = nl;
            long long x;
            int rc = get_ll(c, &num, path, 0, max / units[u].mul, &x);
            if (rc)
                return rc;
            if (x * units[u].mul < min)
                return fail(c, GW_CONFIG_E_INVALID, v, path, "must be at least %lld bytes", min);
            *out = (size_t)(x * units[u].mul);
            return 0;
        }
    }
    long long x;
    int rc = get_ll(c, v, path, min, max, &x);
    if (!rc)
        *out = (size_t)x;
    return rc;
}

/* Strict decimal number: [+-]digits[.digits][e[+-]digits] (or .digits), within [min, max]. */
static int get_double(struct pctx *c, const struct yn *v, const char *path, double min, double max,
                      double *out)
{
    char d[64];
    bool ok = v && v->type == YN_SCALAR && v->plain && v->len > 0 && v->len < 64;
    size_t i = 0, digits = 0;
    const char *s = ok ? v->str : "";
    if (ok && (s[i] == '-' || s[i] == '+'))
        i++;
    while (ok && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (ok && s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (ok && digits && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = 0;
        i++;
        if (s[i] == '-' || s[i] == '+')
            i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, e++;
        if (!e)
            ok = false;
    }
    if (!ok || !digits || i != v->len)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected a number, got %s",
                    describe(v, d, sizeof(d)));
    double x = strtod(s, NULL);
    if (!(x >= min && x <= max)) {
        if (x < min && min == 0)
            return fail(c, GW_CONFIG_E_INVALID, v, path, "must be >= 0, got %s", s);
        return fail(c, GW_CONFIG_E_INVALID, v, path, "must be between %g and %g, got %s", min, max,
                    s);
    }
    *out = x;
    return 0;
}

/* One of `names` (n entries), as its index. */
static int get_enum(struct pctx *c, const struct yn *v, const char *path, const char *what,
                    const char *const *names, size_t n, int *out)
{
    char d[64], list[256];
    if (yn_is_null(v) || v->type != YN_SCALAR)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected a %s name, got %s", what,
                    describe(v, d, sizeof(d)));
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == v->len && !strcmp(names[i], v->str)) {
            *out = (int)i;
            return 0;
        }
    join_names(list, sizeof(list), names, n);
    const char *s = suggest(v->str, v->len, names, n);
    if (s)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "unknown %s %s (did you mean \"%s\"?)", what,
                    describe(v, d, sizeof(d)), s);
    return fail(c, GW_CONFIG_E_INVALID, v, path, "unknown %s %s (expected one of: %s)", what,
                describe(v, d, sizeof(d)), list);
}

static int get_seq(struct pctx *c, const struct yn *v, const char *path, size_t max,
                   const char *what)
{
    char d[64];
    if (!v || v->type != YN_SEQ)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected a list, got %s",
                    describe(v, d, sizeof(d)));
    if (v->n > max)
        return fail(c, GW_CONFIG_E_LIMIT, v, path, "%zu %s, at most %zu are allowed", v->n, what,
                    max);
    return 0;
}

/* Model and route names travel in JSON bodies, URLs and metrics labels: keep them tame. */
static int get_name(struct pctx *c, const struct yn *v, const char *path, const char **out)
{
    char d[64];
    int rc = get_str(c, v, path, false, out);
    if (rc)
        return rc;
    if (v->len > GW_CONFIG_MAX_NAME)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "a name is at most %d bytes",
                    GW_CONFIG_MAX_NAME);
    for (size_t i = 0; i < v->len; i++) {
        char ch = v->str[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._-:/@+", ch)))
            return fail(c, GW_CONFIG_E_INVALID, v, path,
                        "invalid name %s: use letters, digits and . _ - : / @ +",
                        describe(v, d, sizeof(d)));
    }
    return 0;
}

/* ---- sections ---- */

static bool valid_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* listen: "host:port", "[v6]:port", ":port" (all interfaces) or a bare port (127.0.0.1). */
static int parse_listen(struct pctx *c, const struct yn *v, const char *path)
{
    char d[64], host[256];
    const char *s;
    size_t hl = 0;
    const char *port = NULL;
    if (yn_is_null(v) || v->type != YN_SCALAR || v->len == 0)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "expected \"host:port\", got %s",
                    describe(v, d, sizeof(d)));
    s = v->str;
    if (strspn(s, "0123456789") == v->len) {
        memcpy(host, "127.0.0.1", 10);
        port = s;
    } else if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return fail(c, GW_CONFIG_E_INVALID, v, path, "expected \"[ipv6]:port\", got %s",
                        describe(v, d, sizeof(d)));
        hl = (size_t)(rb - s - 1);
        if (hl >= sizeof(host))
            return fail(c, GW_CONFIG_E_INVALID, v, path, "host too long");
        memcpy(host, s + 1, hl);
        host[hl] = 0;
        unsigned char a6[16];
        if (inet_pton(AF_INET6, host, a6) != 1)
            return fail(c, GW_CONFIG_E_INVALID, v, path, "invalid IPv6 address in %s",
                        describe(v, d, sizeof(d)));
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return fail(c, GW_CONFIG_E_INVALID, v, path,
                        "expected \"host:port\" (e.g. 127.0.0.1:8080), got %s",
                        describe(v, d, sizeof(d)));
        if (memchr(s, ':', (size_t)(colon - s)))
            return fail(c, GW_CONFIG_E_INVALID, v, path,
                        "IPv6 addresses need brackets, e.g. [::1]:8080; got %s",
                        describe(v, d, sizeof(d)));
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return fail(c, GW_CONFIG_E_INVALID, v, path, "host too long");
        memcpy(host, s, hl);
        host[hl] = 0;
        if (hl == 0) {
            memcpy(host, "0.0.0.0", 8);
        } else if (strspn(host, "0123456789.") == hl) {
            unsigned char a4[4];
            if (inet_pton(AF_INET, host, a4) != 1)
                return fail(c, GW_CONFIG_E_INVALID, v, path, "invalid IPv4 address in %s",
                            describe(v, d, sizeof(d)));
        } else if (!valid_hostname(host, hl)) {
            return fail(c, GW_CONFIG_E_INVALID, v, path, "invalid host name in %s",
                        describe(v, d, sizeof(d)));
        }
        port = colon + 1;
    }
    size_t pl = strlen(port);
    if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl || strtol(port, NULL, 10) > 65535)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "invalid port in %s (expected 0..65535)",
                    describe(v, d, sizeof(d)));
    c->cfg->listen_port = (int)strtol(port, NULL, 10);
    c->cfg->listen_host = mem_strndup(&c->cfg->mem__, host, strlen(host));
    if (!c->cfg->listen_host)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    return 0;
}

static int parse_limits(struct pctx *c, const struct yn *v, const char *path)
{
    static const char *const keys[] = {"max_body_bytes", "max_messages", "max_tokens", "queue",
                                       NULL};
    char p[PATH_LEN];
    int rc;
    struct gw_limits *l = &c->cfg->limits;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    const struct yn *x;
    if ((x = map_get(v, "max_body_bytes"))) {
        path_key(p, sizeof(p), path, "max_body_bytes");
        if ((rc = get_size(c, x, p, 1024, 1LL << 30, &l->max_body_bytes)))
            return rc;
    }
    if ((x = map_get(v, "max_messages"))) {
        path_key(p, sizeof(p), path, "max_messages");
        if ((rc = get_int(c, x, p, 1, 1000000, &l->max_messages)))
            return rc;
    }
    if ((x = map_get(v, "max_tokens"))) {
        path_key(p, sizeof(p), path, "max_tokens");
        if ((rc = get_int(c, x, p, 0, 1 << 24, &l->max_tokens)))
            return rc;
    }
    if ((x = map_get(v, "queue"))) {
        path_key(p, sizeof(p), path, "queue");
        if ((rc = get_int(c, x, p, 0, 1000000, &l->queue)))
            return rc;
    }
    return 0;
}

static int parse_local(struct pctx *c, const struct yn *v, const char *path, struct gw_local *l)
{
    static const char *const keys[] = {"path",    "slots", "parallel", "ctx_size",
                                       "threads", "batch", NULL};
    static const struct {
        const char *key;
        int max;
        size_t off;
    } ints[] = {
        {"slots", 256, offsetof(struct gw_local, slots)},
        {"parallel", 256, offsetof(struct gw_local, slots)},
        {"ctx_size", 1 << 20, offsetof(struct gw_local, ctx_size)},
        {"threads", 1024, offsetof(struct gw_local, threads)},
        {"batch", 1 << 16, offsetof(struct gw_local, batch)},
    };
    char p[PATH_LEN];
    int rc;
    if (v && v->type == YN_SCALAR && !yn_is_null(v)) /* shorthand: local: file.gguf */
        return get_str(c, v, path, false, &l->path);
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    const struct yn *x = map_get(v, "path");
    path_key(p, sizeof(p), path, "path");
    if (!x)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "missing key \"path\" (the GGUF file)");
    if ((rc = get_str(c, x, p, false, &l->path)))
        return rc;
    if (map_get(v, "slots") && map_get(v, "parallel"))
        return fail(c, GW_CONFIG_E_INVALID, map_key(v, "parallel"), path,
                    "\"parallel\" is another name for \"slots\": give only one");
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (!(x = map_get(v, ints[i].key)))
            continue;
        path_key(p, sizeof(p), path, ints[i].key);
        if ((rc = get_int(c, x, p, 0, ints[i].max, (int *)((char *)l + ints[i].off))))
            return rc;
    }
    return 0;
}

/* Parses a privacy block into *pr (whose defaults the caller set). Checks that local_model
 * names a local model; `inherit` is the top-level local_model an override may fall back on. */
static int parse_privacy(struct pctx *c, const struct yn *v, const char *path,
                         struct gw_privacy *pr, const char *inherit)
{
    static const char *const keys[] = {"action", "local_model", "detect", NULL};
    char p[PATH_LEN], d[64];
    int rc, a;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    pr->pos.line = v->line;
    pr->pos.col = v->col;
    const struct yn *x;
    if ((x = map_get(v, "action"))) {
        path_key(p, sizeof(p), path, "action");
        if ((rc = get_enum(c, x, p, "privacy action", ACTION_NAMES, GW_PRIVACY_ACTION_COUNT, &a)))
            return rc;
        pr->action = (enum gw_privacy_action)a;
    }
    if ((x = map_get(v, "detect"))) {
        path_key(p, sizeof(p), path, "detect");
        if ((rc = get_seq(c, x, p, 64, "kinds")))
            return rc;
        pr->detect = 0;
        for (size_t i = 0; i < x->n; i++) {
            char pi[PATH_LEN];
            path_index(pi, sizeof(pi), p, i);
            if ((rc = get_enum(c, x->kids[i], pi, "PII kind", PII_NAMES, GW_PII_COUNT, &a)))
                return rc;
            pr->detect |= 1u << a;
        }
    }
    pr->local_model = inherit;
    const struct yn *lm = map_get(v, "local_model");
    if (lm) {
        path_key(p, sizeof(p), path, "local_model");
        if ((rc = get_str(c, lm, p, false, &pr->local_model)))
            return rc;
        const struct gw_model *m = gw_config_find_model(c->cfg, pr->local_model);
        if (!m) {
            const char *names[GW_CONFIG_MAX_MODELS];
            for (size_t i = 0; i < c->cfg->n_models; i++)
                names[i] = c->cfg->models[i].name;
            const char *s = suggest(lm->str, lm->len, names, c->cfg->n_models);
            return fail(c, GW_CONFIG_E_INVALID, lm, p, "unknown model %s%s%s%s",
                        describe(lm, d, sizeof(d)), s ? " (did you mean \"" : "", s ? s : "",
                        s ? "\"?)" : "");
        }
        if (m->kind != GW_MODEL_LOCAL)
            return fail(c, GW_CONFIG_E_INVALID, lm, p,
                        "model %s is a %s provider model; local_model must name a model with "
                        "local: (data must not leave)",
                        describe(lm, d, sizeof(d)), gw_provider_name(m->upstream.provider));
    }
    if (pr->action == GW_PRIVACY_ROUTE_LOCAL && !pr->local_model)
        return fail(c, GW_CONFIG_E_INVALID, map_get(v, "action") ? map_get(v, "action") : v, path,
                    "action route_local needs local_model: the name of a local model");
    return 0;
}

/* The secret of a provider model: a literal, or `env:VAR` read now. Never echoes a value. */
/* A secret: a literal, or `env:VAR` resolved now. *env_out gets VAR (or NULL). Never echoes
 * the value. */
static int get_secret(struct pctx *c, const struct yn *v, const char *path, const char **out,
                      const char **env_out)
{
    int rc = get_str(c, v, path, true, out);
    *env_out = NULL;
    if (rc)
        return rc;
    if (strncmp(*out, "env:", 4))
        return 0;
    const char *var = *out + 4;
    size_t vl = strlen(var);
    bool ok = vl > 0 && vl <= 255 && !(var[0] >= '0' && var[0] <= '9');
    for (size_t i = 0; ok && i < vl; i++)
        ok = (var[i] >= 'A' && var[i] <= 'Z') || (var[i] >= 'a' && var[i] <= 'z') ||
             (var[i] >= '0' && var[i] <= '9') || var[i] == '_';
    if (!ok)
        return fail(c, GW_CONFIG_E_INVALID, v, path,
                    "invalid environment variable name after \"env:\" (letters, digits, _)");
    *env_out = var;
    const char *val = getenv(var);
    if (!val)
        return fail(c, GW_CONFIG_E_ENV, v, path, "environment variable %s is not set", var);
    size_t len = strlen(val);
    if (len == 0)
        return fail(c, GW_CONFIG_E_ENV, v, path, "environment variable %s is empty", var);
    if (len > GW_CONFIG_MAX_STRING)
        return fail(c, GW_CONFIG_E_ENV, v, path, "environment variable %s is longer than %d bytes",
                    var, GW_CONFIG_MAX_STRING);
    if (has_control(val, len))
        return fail(c, GW_CONFIG_E_ENV, v, path,
                    "environment variable %s contains a control character (a stray newline?)", var);
    *out = mem_strndup(&c->cfg->mem__, val, len);
    if (!*out)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    return 0;
}

static int parse_api_key(struct pctx *c, const struct yn *v, const char *path,
                         struct gw_upstream *up)
{
    return get_secret(c, v, path, &up->api_key, &up->api_key_env);
}

/* A price block {input_per_mtok, output_per_mtok} into *pr. */
static int parse_price(struct pctx *c, const struct yn *x, const char *p, struct gw_price *pr)
{
    static const char *const keys[] = {"input_per_mtok", "output_per_mtok", NULL};
    char pp[PATH_LEN];
    const struct yn *y;
    int rc;
    if ((rc = check_map(c, x, p, keys)))
        return rc;
    if ((y = map_get(x, "input_per_mtok"))) {
        path_key(pp, sizeof(pp), p, "input_per_mtok");
        if ((rc = get_double(c, y, pp, 0, 1e6, &pr->input_per_mtok)))
            return rc;
    }
    if ((y = map_get(x, "output_per_mtok"))) {
        path_key(pp, sizeof(pp), p, "output_per_mtok");
        if ((rc = get_double(c, y, pp, 0, 1e6, &pr->output_per_mtok)))
            return rc;
    }
    return 0;
}

static int parse_team(struct pctx *c, const struct yn *v, const char *path, struct gw_team *t)
{
    static const char *const keys[] = {"name", "budget_usd_month", "rpm", "tpm", NULL};
    char p[PATH_LEN];
    int rc;
    const struct yn *x;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    if (!(x = map_get(v, "name")))
        return fail(c, GW_CONFIG_E_INVALID, v, path, "missing key \"name\"");
    path_key(p, sizeof(p), path, "name");
    if ((rc = get_str(c, x, p, false, &t->name)))
        return rc;
    for (size_t i = 0; i < c->cfg->gov.n_teams; i++)
        if (!strcmp(c->cfg->gov.teams[i].name, t->name))
            return fail(c, GW_CONFIG_E_INVALID, x, p, "team \"%s\" is defined twice", t->name);
    if ((x = map_get(v, "budget_usd_month"))) {
        path_key(p, sizeof(p), path, "budget_usd_month");
        if ((rc = get_double(c, x, p, 0, 1e9, &t->budget_usd_month)))
            return rc;
    }
    if ((x = map_get(v, "rpm"))) {
        path_key(p, sizeof(p), path, "rpm");
        if ((rc = get_int(c, x, p, 0, 1 << 30, &t->rpm)))
            return rc;
    }
    if ((x = map_get(v, "tpm"))) {
        path_key(p, sizeof(p), path, "tpm");
        if ((rc = get_int(c, x, p, 0, 1 << 30, &t->tpm)))
            return rc;
    }
    return 0;
}

static int parse_audit(struct pctx *c, const struct yn *v, const char *path)
{
    static const char *const keys[] = {"signing_key", "include_text", NULL};
    char p[PATH_LEN], d[64];
    int rc;
    const struct yn *x;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    if ((x = map_get(v, "signing_key"))) {
        path_key(p, sizeof(p), path, "signing_key");
        if ((rc = get_str(c, x, p, false, &c->cfg->gov.audit_signing_key)))
            return rc;
    }
    if ((x = map_get(v, "include_text"))) {
        path_key(p, sizeof(p), path, "include_text");
        const bool t = x->type == YN_SCALAR && x->plain && x->len == 4 && !memcmp(x->str, "true", 4);
        const bool f = x->type == YN_SCALAR && x->plain && x->len == 5 && !memcmp(x->str, "false", 5);
        if (!t && !f)
            return fail(c, GW_CONFIG_E_INVALID, x, p, "expected true or false, got %s",
                        describe(x, d, sizeof(d)));
        c->cfg->gov.audit_include_text = t;
    }
    return 0;
}

static int parse_local_cost(struct pctx *c, const struct yn *v, const char *path)
{
    static const char *const keys[] = {"watts", "usd_per_kwh", "hardware_usd_per_hour",
                                       "reference", NULL};
    struct gw_local_cost *lc = &c->cfg->gov.local_cost;
    char p[PATH_LEN];
    int rc;
    const struct yn *x;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    if ((x = map_get(v, "watts"))) {
        path_key(p, sizeof(p), path, "watts");
        if ((rc = get_double(c, x, p, 0, 1e7, &lc->watts)))
            return rc;
    }
    if ((x = map_get(v, "usd_per_kwh"))) {
        path_key(p, sizeof(p), path, "usd_per_kwh");
        if ((rc = get_double(c, x, p, 0, 1e4, &lc->usd_per_kwh)))
            return rc;
    }
    if ((x = map_get(v, "hardware_usd_per_hour"))) {
        path_key(p, sizeof(p), path, "hardware_usd_per_hour");
        if ((rc = get_double(c, x, p, 0, 1e6, &lc->hardware_usd_per_hour)))
            return rc;
    }
    if ((x = map_get(v, "reference"))) {
        path_key(p, sizeof(p), path, "reference");
        if ((rc = parse_price(c, x, p, &lc->reference)))
            return rc;
    }
    return 0;
}

static int parse_base_url(struct pctx *c, const struct yn *v, const char *path,
                          struct gw_upstream *up)
{
    const char *s;
    int rc = get_str(c, v, path, false, &s);
    if (rc)
        return rc;
    size_t skip = !strncasecmp(s, "https://", 8) ? 8 : !strncasecmp(s, "http://", 7) ? 7 : 0;
    if (!skip || !s[skip] || s[skip] == '/' || strchr(s, ' '))
        return fail(c, GW_CONFIG_E_INVALID, v, path,
                    "expected an http:// or https:// URL with a host");
    size_t len = strlen(s);
    while (len > skip + 1 && s[len - 1] == '/')
        len--;
    ((char *)s)[len] = 0; /* our own copy */
    up->base_url = s;
    return 0;
}

static int parse_provider_parts(struct pctx *c, const struct yn *v, const char *path,
                                struct gw_model *m)
{
    char p[PATH_LEN];
    int rc, a;
    struct gw_upstream *up = &m->upstream;
    const struct yn *x;

    path_key(p, sizeof(p), path, "provider");
    if ((rc = get_enum(c, map_get(v, "provider"), p, "provider", PROVIDER_NAMES, GW_PROVIDER_COUNT,
                       &a)))
        return rc;
    up->provider = (enum gw_provider)a;
    if ((x = map_get(v, "base_url"))) {
        path_key(p, sizeof(p), path, "base_url");
        if ((rc = parse_base_url(c, x, p, up)))
            return rc;
    } else if (!(up->base_url = PROVIDER_URLS[up->provider])) {
        return fail(c, GW_CONFIG_E_INVALID, map_get(v, "provider"), path,
                    "provider openai-compatible needs base_url (e.g. http://127.0.0.1:8000/v1)");
    }
    if ((x = map_get(v, "api_key"))) {
        path_key(p, sizeof(p), path, "api_key");
        if ((rc = parse_api_key(c, x, p, up)))
            return rc;
    } else if (up->provider != GW_PROVIDER_OPENAI_COMPATIBLE) {
        return fail(c, GW_CONFIG_E_INVALID, v, path,
                    "provider %s needs api_key (write \"api_key: env:VAR\" to read it from the "
                    "environment)",
                    PROVIDER_NAMES[up->provider]);
    }
    up->model = m->name;
    if ((x = map_get(v, "model"))) {
        path_key(p, sizeof(p), path, "model");
        if ((rc = get_str(c, x, p, false, &up->model)))
            return rc;
    }
    if ((x = map_get(v, "price"))) {
        path_key(p, sizeof(p), path, "price");
        if ((rc = parse_price(c, x, p, &up->price)))
            return rc;
    }
    if ((x = map_get(v, "timeouts"))) {
        static const char *const keys[] = {"connect_ms", "first_byte_ms", "total_ms", NULL};
        int *dst[] = {&up->timeouts.connect_ms, &up->timeouts.first_byte_ms,
                      &up->timeouts.total_ms};
        char pp[PATH_LEN];
        path_key(p, sizeof(p), path, "timeouts");
        if ((rc = check_map(c, x, p, keys)))
            return rc;
        for (size_t i = 0; keys[i]; i++) {
            const struct yn *y = map_get(x, keys[i]);
            path_key(pp, sizeof(pp), p, keys[i]);
            if (y && (rc = get_int(c, y, pp, 1, 86400000, dst[i])))
                return rc;
        }
        if (up->timeouts.total_ms < up->timeouts.connect_ms ||
            up->timeouts.total_ms < up->timeouts.first_byte_ms)
            return fail(c, GW_CONFIG_E_INVALID, x, p,
                        "total_ms (%d) must be at least connect_ms (%d) and first_byte_ms (%d)",
                        up->timeouts.total_ms, up->timeouts.connect_ms, up->timeouts.first_byte_ms);
    }
    if ((x = map_get(v, "retries"))) {
        static const char *const keys[] = {"max", "backoff_ms", NULL};
        char pp[PATH_LEN];
        const struct yn *y;
        path_key(p, sizeof(p), path, "retries");
        if ((rc = check_map(c, x, p, keys)))
            return rc;
        if ((y = map_get(x, "max"))) {
            path_key(pp, sizeof(pp), p, "max");
            if ((rc = get_int(c, y, pp, 0, 10, &up->retries.max)))
                return rc;
        }
        if ((y = map_get(x, "backoff_ms"))) {
            path_key(pp, sizeof(pp), p, "backoff_ms");
            if ((rc = get_int(c, y, pp, 0, 60000, &up->retries.backoff_ms)))
                return rc;
        }
    }
    return 0;
}

static const char *const MODEL_KEYS[] = {"name",    "local",   "provider", "base_url",
                                         "api_key", "model",   "price",    "timeouts",
                                         "retries", "privacy", NULL};
static const char *const PROVIDER_ONLY_KEYS[] = {"base_url", "api_key", "model", "price",
                                                 "timeouts", "retries", NULL};

static int parse_model(struct pctx *c, const struct yn *v, const char *path, struct gw_model *m)
{
    char p[PATH_LEN], d[64];
    int rc;
    if ((rc = check_map(c, v, path, MODEL_KEYS)))
        return rc;
    m->pos.line = v->line;
    m->pos.col = v->col;
    const struct yn *x = map_get(v, "name");
    if (!x)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "missing key \"name\"");
    path_key(p, sizeof(p), path, "name");
    if ((rc = get_name(c, x, p, &m->name)))
        return rc;
    for (const struct gw_model *o = c->cfg->models; o < m; o++)
        if (!strcmp(o->name, m->name))
            return fail(c, GW_CONFIG_E_INVALID, x, p,
                        "duplicate model name %s (first defined at line %d)",
                        describe(x, d, sizeof(d)), o->pos.line);
    const struct yn *local = map_get(v, "local"), *prov = map_get(v, "provider");
    if (local && prov)
        return fail(c, GW_CONFIG_E_INVALID, map_key(v, "provider"), path,
                    "a model has either local: or provider:, not both");
    if (!local && !prov)
        return fail(c, GW_CONFIG_E_INVALID, v, path,
                    "a model needs local: { path: file.gguf } or provider: (one of: openai, "
                    "anthropic, gemini, mistral, openai-compatible)");
    if (local) {
        m->kind = GW_MODEL_LOCAL;
        for (size_t i = 0; PROVIDER_ONLY_KEYS[i]; i++) {
            const struct yn *k = map_key(v, PROVIDER_ONLY_KEYS[i]);
            if (k)
                return fail(c, GW_CONFIG_E_INVALID, k, path,
                            "key \"%s\" applies to provider models only (this model is local)",
                            PROVIDER_ONLY_KEYS[i]);
        }
        path_key(p, sizeof(p), path, "local");
        return parse_local(c, local, p, &m->local);
    }
    m->kind = GW_MODEL_PROVIDER;
    return parse_provider_parts(c, v, path, m);
}

static int check_target_model(struct pctx *c, const struct yn *v, const char *path,
                              const char *name)
{
    char d[64];
    if (gw_config_find_model(c->cfg, name))
        return 0;
    if (gw_config_find_route(c->cfg, name))
        return fail(c, GW_CONFIG_E_INVALID, v, path, "%s is a route; route targets must be models",
                    describe(v, d, sizeof(d)));
    const char *names[GW_CONFIG_MAX_MODELS];
    for (size_t i = 0; i < c->cfg->n_models; i++)
        names[i] = c->cfg->models[i].name;
    const char *s = suggest(v->str, v->len, names, c->cfg->n_models);
    return fail(c, GW_CONFIG_E_INVALID, v, path, "unknown model %s%s%s%s",
                describe(v, d, sizeof(d)), s ? " (did you mean \"" : "", s ? s : "",
                s ? "\"?)" : "");
}

static int parse_route(struct pctx *c, const struct yn *v, const char *path, struct gw_route *r)
{
    static const char *const keys[] = {"name", "targets", "strategy", "fallback", NULL};
    static const char *const target_keys[] = {"model", "weight", NULL};
    char p[PATH_LEN], pi[PATH_LEN], pk[PATH_LEN], d[64];
    int rc, a;
    if ((rc = check_map(c, v, path, keys)))
        return rc;
    r->pos.line = v->line;
    r->pos.col = v->col;
    const struct yn *x = map_get(v, "name");
    if (!x)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "missing key \"name\"");
    path_key(p, sizeof(p), path, "name");
    if ((rc = get_name(c, x, p, &r->name)))
        return rc;
    const struct gw_model *shadow = gw_config_find_model(c->cfg, r->name);
    if (shadow)
        return fail(c, GW_CONFIG_E_INVALID, x, p,
                    "route name %s is already a model name (line %d); give the route its own name",
                    describe(x, d, sizeof(d)), shadow->pos.line);
    for (const struct gw_route *o = c->cfg->routes; o < r; o++)
        if (!strcmp(o->name, r->name))
            return fail(c, GW_CONFIG_E_INVALID, x, p,
                        "duplicate route name %s (first defined at line %d)",
                        describe(x, d, sizeof(d)), o->pos.line);
    if ((x = map_get(v, "strategy"))) {
        path_key(p, sizeof(p), path, "strategy");
        if ((rc = get_enum(c, x, p, "strategy", STRATEGY_NAMES, GW_ROUTE_STRATEGY_COUNT, &a)))
            return rc;
        r->strategy = (enum gw_route_strategy)a;
    }
    x = map_get(v, "targets");
    path_key(p, sizeof(p), path, "targets");
    if (!x)
        return fail(c, GW_CONFIG_E_INVALID, v, path, "missing key \"targets\" (a list of models)");
    if ((rc = get_seq(c, x, p, GW_CONFIG_MAX_TARGETS, "targets")))
        return rc;
    if (x->n == 0)
        return fail(c, GW_CONFIG_E_INVALID, x, p, "a route needs at least one target");
    r->targets = mem_alloc(&c->cfg->mem__, x->n * sizeof(*r->targets));
    if (!r->targets)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < x->n; i++) {
        const struct yn *t = x->kids[i], *name = t;
        struct gw_route_target *rt = &r->targets[i];
        path_index(pi, sizeof(pi), p, i);
        rt->weight = 1;
        if (t->type == YN_MAP) { /* long form: { model: x, weight: 3 } */
            if ((rc = check_map(c, t, pi, target_keys)))
                return rc;
            if (!(name = map_get(t, "model")))
                return fail(c, GW_CONFIG_E_INVALID, t, pi, "missing key \"model\"");
            path_key(pk, sizeof(pk), pi, "weight");
            const struct yn *w = map_get(t, "weight");
            if (w && (rc = get_int(c, w, pk, 1, 1000000, &rt->weight)))
                return rc;
            path_key(pi, sizeof(pi), pi, "model");
        }
        if ((rc = get_str(c, name, pi, false, &rt->model)))
            return rc;
        if ((rc = check_target_model(c, name, pi, rt->model)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->targets[j].model, rt->model))
                return fail(c, GW_CONFIG_E_INVALID, name, pi, "model %s is listed twice",
                            describe(name, d, sizeof(d)));
        r->n_targets++;
    }
    if ((x = map_get(v, "fallback"))) {
        path_key(p, sizeof(p), path, "fallback");
        if ((rc = get_seq(c, x, p, GW_CONFIG_MAX_TARGETS, "fallback models")))
            return rc;
        r->fallback = mem_alloc(&c->cfg->mem__, (x->n ? x->n : 1) * sizeof(*r->fallback));
        if (!r->fallback)
            return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        for (size_t i = 0; i < x->n; i++) {
            const struct yn *t = x->kids[i];
            path_index(pi, sizeof(pi), p, i);
            if ((rc = get_str(c, t, pi, false, &r->fallback[i])))
                return rc;
            if ((rc = check_target_model(c, t, pi, r->fallback[i])))
                return rc;
            for (size_t j = 0; j < r->n_targets; j++)
                if (!strcmp(r->targets[j].model, r->fallback[i]))
                    return fail(c, GW_CONFIG_E_INVALID, t, pi,
                                "model %s is already a target of this route",
                                describe(t, d, sizeof(d)));
            for (size_t j = 0; j < i; j++)
                if (!strcmp(r->fallback[j], r->fallback[i]))
                    return fail(c, GW_CONFIG_E_INVALID, t, pi, "model %s is listed twice",
                                describe(t, d, sizeof(d)));
            r->n_fallback++;
        }
    }
    return 0;
}

static void privacy_default(struct gw_privacy *pr)
{
    memset(pr, 0, sizeof(*pr));
    pr->action = GW_PRIVACY_ALLOW;
    pr->detect = GW_PII_ALL;
}

static int parse_root(struct pctx *c, const struct yn *root)
{
    static const char *const keys[] = {"listen", "models",      "routes", "privacy", "limits",
                                       "state",  "admin_key",   "audit",  "local_cost", "teams",
                                       NULL};
    struct gw_config *cfg = c->cfg;
    char p[PATH_LEN], d[64];
    int rc;
    const struct yn *x;

    if (root->type != YN_MAP)
        return fail(c, GW_CONFIG_E_INVALID, root, NULL,
                    "the configuration must be a mapping of keys (listen:, models:, ...), got %s",
                    describe(root, d, sizeof(d)));
    if ((rc = check_map(c, root, "", keys)))
        return rc;
    if ((x = map_get(root, "listen")) && (rc = parse_listen(c, x, "listen")))
        return rc;
    if ((x = map_get(root, "limits")) && (rc = parse_limits(c, x, "limits")))
        return rc;
    if ((x = map_get(root, "state")) && (rc = get_str(c, x, "state", false, &cfg->gov.state_path)))
        return rc;
    if ((x = map_get(root, "admin_key")) &&
        (rc = get_secret(c, x, "admin_key", &cfg->gov.admin_key, &cfg->gov.admin_key_env)))
        return rc;
    if ((x = map_get(root, "audit")) && (rc = parse_audit(c, x, "audit")))
        return rc;
    if ((x = map_get(root, "local_cost")) && (rc = parse_local_cost(c, x, "local_cost")))
        return rc;
    if ((x = map_get(root, "teams")) && !yn_is_null(x)) {
        if ((rc = get_seq(c, x, "teams", GW_CONFIG_MAX_ROUTES, "teams")))
            return rc;
        cfg->gov.teams = mem_alloc(&cfg->mem__, (x->n ? x->n : 1) * sizeof(*cfg->gov.teams));
        if (!cfg->gov.teams)
            return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        for (size_t i = 0; i < x->n; i++) {
            memset(&cfg->gov.teams[i], 0, sizeof(cfg->gov.teams[i]));
            path_index(p, sizeof(p), "teams", i);
            if ((rc = parse_team(c, x->kids[i], p, &cfg->gov.teams[i])))
                return rc;
            cfg->gov.n_teams++;
        }
    }

    const struct yn *models = map_get(root, "models");
    if (!models)
        return fail(c, GW_CONFIG_E_INVALID, root, NULL, "missing key \"models\"");
    if ((rc = get_seq(c, models, "models", GW_CONFIG_MAX_MODELS, "models")))
        return rc;
    if (models->n == 0)
        return fail(c, GW_CONFIG_E_INVALID, models, "models", "at least one model is needed");
    cfg->models = mem_alloc(&cfg->mem__, models->n * sizeof(*cfg->models));
    if (!cfg->models)
        return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < models->n; i++) {
        struct gw_model *m = &cfg->models[i];
        m->upstream.timeouts = (struct gw_timeouts){10000, 60000, 600000};
        m->upstream.retries = (struct gw_retries){2, 250};
        path_index(p, sizeof(p), "models", i);
        if ((rc = parse_model(c, models->kids[i], p, m)))
            return rc;
        cfg->n_models++;
    }

    if ((x = map_get(root, "privacy")) &&
        (rc = parse_privacy(c, x, "privacy", &cfg->privacy, NULL)))
        return rc;
    /* per-model overrides, now that every model and the top-level policy are known */
    for (size_t i = 0; i < models->n; i++) {
        struct gw_model *m = &cfg->models[i];
        if (!(x = map_get(models->kids[i], "privacy")))
            continue;
        path_index(p, sizeof(p), "models", i);
        char pp[PATH_LEN];
        path_key(pp, sizeof(pp), p, "privacy");
        privacy_default(&m->privacy);
        m->privacy.detect = cfg->privacy.detect;
        if ((rc = parse_privacy(c, x, pp, &m->privacy, cfg->privacy.local_model)))
            return rc;
        m->has_privacy = true;
    }

    if ((x = map_get(root, "routes")) && !yn_is_null(x)) {
        if ((rc = get_seq(c, x, "routes", GW_CONFIG_MAX_ROUTES, "routes")))
            return rc;
        cfg->routes = mem_alloc(&cfg->mem__, (x->n ? x->n : 1) * sizeof(*cfg->routes));
        if (!cfg->routes)
            return fail(c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        for (size_t i = 0; i < x->n; i++) {
            path_index(p, sizeof(p), "routes", i);
            if ((rc = parse_route(c, x->kids[i], p, &cfg->routes[i])))
                return rc;
            cfg->n_routes++;
        }
    }
    return 0;
}

/* ---- public API ---- */

int gw_config_parse(struct gw_config **out, const char *text, size_t len,
                    const char *name_for_errors, char *err, size_t errlen)
{
    struct pctx c = {
        .name = name_for_errors ? name_for_errors : "<config>", .err = err, .errlen = errlen};
    struct gw_config *cfg = NULL;
    struct gw_mem *mem = NULL;
    struct yn *root = NULL;
    int rc;

    if (err && errlen)
        err[0] = 0;
    if (!out)
        return fail(&c, GW_CONFIG_E_ARG, NULL, NULL, "no output pointer");
    *out = NULL;
    if (!text && len)
        return fail(&c, GW_CONFIG_E_ARG, NULL, NULL, "no text");
    if (len > GW_CONFIG_MAX_FILE_BYTES)
        return fail(&c, GW_CONFIG_E_LIMIT, NULL, NULL,
                    "the configuration is %zu bytes, over the %u-byte limit", len,
                    GW_CONFIG_MAX_FILE_BYTES);
    if (!(cfg = mem_alloc(&mem, sizeof(*cfg))))
        return fail(&c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
    cfg->mem__ = mem;
    c.cfg = cfg;
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 8080;
    cfg->limits = (struct gw_limits){4u << 20, 1024, 0, 64};
    privacy_default(&cfg->privacy);
    if (!(cfg->source = mem_strndup(&cfg->mem__, c.name, strlen(c.name)))) {
        rc = fail(&c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if ((rc = build_tree(&c, text ? text : "", len, &root)))
        goto out;
    rc = parse_root(&c, root);
out:
    mem_free_all(c.tree);
    if (rc) {
        gw_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int gw_config_load(struct gw_config **out, const char *path, char *err, size_t errlen)
{
    struct pctx c = {.name = path ? path : "<config>", .err = err, .errlen = errlen};
    char ebuf[128];
    char *buf = NULL;
    size_t n = 0;
    int rc, fd;
    if (out)
        *out = NULL;
    if (!out || !path)
        return fail(&c, GW_CONFIG_E_ARG, NULL, NULL, "no path or output pointer");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fail(&c, GW_CONFIG_E_IO, NULL, NULL, "cannot open: %s",
                    strerror_r(errno, ebuf, sizeof(ebuf)));
    /* read at most one byte past the cap, so an oversized file is recognised without fstat */
    const size_t cap = GW_CONFIG_MAX_FILE_BYTES + 1;
    if (!(buf = malloc(cap))) {
        rc = fail(&c, GW_CONFIG_E_NOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    while (n < cap) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = fail(&c, GW_CONFIG_E_IO, NULL, NULL, "cannot read: %s",
                      strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (n > GW_CONFIG_MAX_FILE_BYTES) {
        rc = fail(&c, GW_CONFIG_E_LIMIT, NULL, NULL, "the file is over the %u-byte limit",
                  GW_CONFIG_MAX_FILE_BYTES);
        goto out;
    }
    rc = gw_config_parse(out, buf, n, path, err, errlen);
out:
    if (buf) {
        explicit_bzero(buf, n);
        free(buf);
    }
    close(fd);
    return rc;
}

void gw_config_free(struct gw_config *cfg)
{
    if (cfg)
        mem_free_all(cfg->mem__); /* the struct itself is the list's first allocation */
}

const struct gw_model *gw_config_find_model(const struct gw_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (cfg->models[i].name && !strcmp(cfg->models[i].name, name))
            return &cfg->models[i];
    return NULL;
}

const struct gw_route *gw_config_find_route(const struct gw_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (cfg->routes[i].name && !strcmp(cfg->routes[i].name, name))
            return &cfg->routes[i];
    return NULL;
}

const struct gw_team *gw_config_find_team(const struct gw_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->gov.n_teams; i++)
        if (!strcmp(cfg->gov.teams[i].name, name))
            return &cfg->gov.teams[i];
    return NULL;
}

const struct gw_privacy *gw_config_model_privacy(const struct gw_config *cfg,
                                                 const struct gw_model *model)
{
    if (!cfg)
        return NULL;
    if (model && model->has_privacy)
        return &model->privacy;
    return &cfg->privacy;
}

/* ---- dump ---- */

/* A YAML double-quoted string. */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* A URL with any user:password@ and ?query replaced by "***" (either may carry a key). */
static void put_url(FILE *f, const char *url)
{
    char buf[GW_CONFIG_MAX_STRING + 16];
    const char *sep = strstr(url, "://");
    size_t o = 0;
    const char *host = sep ? sep + 3 : url;
    size_t auth = strcspn(host, "/?#");
    const char *at = memchr(host, '@', auth);
    size_t pre = (size_t)(host - url);
    if (pre > GW_CONFIG_MAX_STRING)
        pre = GW_CONFIG_MAX_STRING;
    memcpy(buf, url, pre);
    o = pre;
    const char *rest = host;
    if (at) {
        memcpy(buf + o, "***@", 4);
        o += 4;
        rest = at + 1;
    }
    size_t rl = strcspn(rest, "?");
    if (rl > GW_CONFIG_MAX_STRING)
        rl = GW_CONFIG_MAX_STRING;
    memcpy(buf + o, rest, rl);
    o += rl;
    if (rest[rl] == '?') {
        memcpy(buf + o, "?***", 4);
        o += 4;
    }
    buf[o] = 0;
    put_str(f, buf);
}

static void put_privacy(FILE *f, const char *indent, const struct gw_privacy *pr)
{
    fprintf(f, "%s  action: %s\n", indent, ACTION_NAMES[pr->action]);
    if (pr->local_model) {
        fprintf(f, "%s  local_model: ", indent);
        put_str(f, pr->local_model);
        fputc('\n', f);
    }
    fprintf(f, "%s  detect: [", indent);
    bool first = true;
    for (int k = 0; k < GW_PII_COUNT; k++)
        if (pr->detect & (1u << k)) {
            fprintf(f, "%s%s", first ? "" : ", ", PII_NAMES[k]);
            first = false;
        }
    fprintf(f, "]\n");
}

int gw_config_dump(const struct gw_config *cfg, FILE *f)
{
    if (!cfg || !f)
        return GW_CONFIG_E_ARG;
    fprintf(f, "# effective configuration of ");
    put_str(f, cfg->source);
    fprintf(f, " (defaults filled in, secrets shown as ***)\n");
    char listen[300];
    snprintf(listen, sizeof(listen), strchr(cfg->listen_host, ':') ? "[%s]:%d" : "%s:%d",
             cfg->listen_host, cfg->listen_port);
    fprintf(f, "listen: ");
    put_str(f, listen);
    fprintf(f,
            "\nlimits:\n  max_body_bytes: %zu\n  max_messages: %d\n  max_tokens: %d\n"
            "  queue: %d\n",
            cfg->limits.max_body_bytes, cfg->limits.max_messages, cfg->limits.max_tokens,
            cfg->limits.queue);
    const struct gw_governance *g = &cfg->gov;
    if (g->state_path) {
        fprintf(f, "state: ");
        put_str(f, g->state_path);
        fputc('\n', f);
    }
    if (g->admin_key)
        fprintf(f, "admin_key: \"***\"%s%s\n", g->admin_key_env ? "  # from env:" : "",
                g->admin_key_env ? g->admin_key_env : "");
    fprintf(f, "audit:\n  include_text: %s\n", g->audit_include_text ? "true" : "false");
    if (g->audit_signing_key) {
        fprintf(f, "  signing_key: ");
        put_str(f, g->audit_signing_key);
        fputc('\n', f);
    }
    fprintf(f,
            "local_cost:\n  watts: %.17g\n  usd_per_kwh: %.17g\n  hardware_usd_per_hour: %.17g\n"
            "  reference: { input_per_mtok: %.17g, output_per_mtok: %.17g }\n",
            g->local_cost.watts, g->local_cost.usd_per_kwh, g->local_cost.hardware_usd_per_hour,
            g->local_cost.reference.input_per_mtok, g->local_cost.reference.output_per_mtok);
    if (g->n_teams)
        fprintf(f, "teams:\n");
    for (size_t i = 0; i < g->n_teams; i++) {
        fprintf(f, "  - name: ");
        put_str(f, g->teams[i].name);
        fprintf(f, "\n    budget_usd_month: %.17g\n    rpm: %d\n    tpm: %d\n",
                g->teams[i].budget_usd_month, g->teams[i].rpm, g->teams[i].tpm);
    }
    fprintf(f, "models:\n");
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct gw_model *m = &cfg->models[i];
        fprintf(f, "  - name: ");
        put_str(f, m->name);
        fputc('\n', f);
        if (m->kind == GW_MODEL_LOCAL) {
            fprintf(f, "    local:\n      path: ");
            put_str(f, m->local.path);
            fprintf(f,
                    "\n      slots: %d\n      ctx_size: %d\n      threads: %d\n"
                    "      batch: %d\n",
                    m->local.slots, m->local.ctx_size, m->local.threads, m->local.batch);
        } else {
            const struct gw_upstream *u = &m->upstream;
            fprintf(f, "    provider: %s\n    base_url: ", PROVIDER_NAMES[u->provider]);
            put_url(f, u->base_url);
            fputc('\n', f);
            if (u->api_key)
                fprintf(f, "    api_key: \"***\"%s%s\n", u->api_key_env ? "  # from env:" : "",
                        u->api_key_env ? u->api_key_env : "");
            fprintf(f, "    model: ");
            put_str(f, u->model);
            fprintf(f, "\n    price: { input_per_mtok: %.15g, output_per_mtok: %.15g }\n",
                    u->price.input_per_mtok, u->price.output_per_mtok);
            fprintf(f, "    timeouts: { connect_ms: %d, first_byte_ms: %d, total_ms: %d }\n",
                    u->timeouts.connect_ms, u->timeouts.first_byte_ms, u->timeouts.total_ms);
            fprintf(f, "    retries: { max: %d, backoff_ms: %d }\n", u->retries.max,
                    u->retries.backoff_ms);
        }
        if (m->has_privacy) {
            fprintf(f, "    privacy:\n");
            put_privacy(f, "    ", &m->privacy);
        }
    }
    fprintf(f, "routes:%s\n", cfg->n_routes ? "" : " []");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct gw_route *r = &cfg->routes[i];
        fprintf(f, "  - name: ");
        put_str(f, r->name);
        fprintf(f, "\n    strategy: %s\n    targets:\n", STRATEGY_NAMES[r->strategy]);
        for (size_t j = 0; j < r->n_targets; j++) {
            fprintf(f, "      - { model: ");
            put_str(f, r->targets[j].model);
            fprintf(f, ", weight: %d }\n", r->targets[j].weight);
        }
        if (r->n_fallback) {
            fprintf(f, "    fallback:\n");
            for (size_t j = 0; j < r->n_fallback; j++) {
                fprintf(f, "      - ");
                put_str(f, r->fallback[j]);
                fputc('\n', f);
            }
        }
    }
    fprintf(f, "privacy:\n");
    put_privacy(f, "", &cfg->privacy);
    return ferror(f) ? GW_CONFIG_E_IO : 0;
}
