/* Pseudonymisation: the per-request vault of value <-> placeholder pairs and the streaming
 * restorer that puts the values back into a model's answer. */
#include <stdlib.h>
#include <string.h>

#include "gateway/pii.h"

/* A growable byte buffer with a hard cap. */
struct buf {
    char *p;
    size_t n, cap;
};

#define BUF_MAX (PII_TEXT_MAX + ((size_t)64 << 20))

static int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > BUF_MAX - b->n)
        return PII_E_TOO_BIG;
    size_t need = b->n + extra + 1; /* room for a NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > BUF_MAX / 2 ? BUF_MAX + 1 : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return PII_E_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(struct buf *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* ---- the vault ---- */

struct vault_entry {
    char *value; /* owned copy, wiped on free */
    size_t len;
    uint32_t hash;
    uint32_t number; /* placeholder number within its kind, from 1 */
    enum pii_kind kind;
};

struct pii_vault {
    struct vault_entry *e; /* [n] in insertion order */
    size_t n, cap;
    uint32_t *slots;       /* [nslots] open addressing: entry index + 1, 0 = empty */
    size_t nslots;
    uint32_t *by_kind[PII_KIND_COUNT]; /* entry index of placeholder number k + 1 */
    size_t kind_n[PII_KIND_COUNT], kind_cap[PII_KIND_COUNT];
    size_t bytes;
};

static uint32_t hash_value(enum pii_kind kind, const char *s, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t k = 0; k < n; k++) {
        h ^= (unsigned char)s[k];
        h *= 16777619u;
    }
    return h;
}

struct pii_vault *pii_vault_new(void)
{
    return calloc(1, sizeof(struct pii_vault));
}

void pii_vault_free(struct pii_vault *v)
{
    if (!v)
        return;
    for (size_t k = 0; k < v->n; k++) {
        explicit_bzero(v->e[k].value, v->e[k].len);
        free(v->e[k].value);
    }
    free(v->e);
    free(v->slots);
    for (int k = 0; k < PII_KIND_COUNT; k++)
        free(v->by_kind[k]);
    free(v);
}

size_t pii_vault_size(const struct pii_vault *v)
{
    return v ? v->n : 0;
}

static int vault_rehash(struct pii_vault *v)
{
    size_t ns = v->nslots ? v->nslots * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof(*slots));
    if (!slots)
        return PII_E_NOMEM;
    for (size_t k = 0; k < v->n; k++) {
        size_t at = v->e[k].hash & (ns - 1);
        while (slots[at])
            at = (at + 1) & (ns - 1);
        slots[at] = (uint32_t)(k + 1);
    }
    free(v->slots);
    v->slots = slots;
    v->nslots = ns;
    return 0;
}

/* Finds or adds (kind, value); *number gets its 1-based placeholder number. */
static int vault_intern(struct pii_vault *v, enum pii_kind kind, const char *s, size_t n,
                        size_t *number)
{
    uint32_t h = hash_value(kind, s, n);
    if (v->nslots) {
        for (size_t at = h & (v->nslots - 1); v->slots[at]; at = (at + 1) & (v->nslots - 1)) {
            const struct vault_entry *e = &v->e[v->slots[at] - 1];
            if (e->hash == h && e->kind == kind && e->len == n && memcmp(e->value, s, n) == 0) {
                *number = e->number;
                return 0;
            }
        }
    }
    if (v->n >= PII_VAULT_MAX_ENTRIES || n > PII_VAULT_MAX_BYTES - v->bytes)
        return PII_E_FULL;
    if ((v->n + 1) * 2 > v->nslots && vault_rehash(v) < 0)
        return PII_E_NOMEM;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct vault_entry *e = realloc(v->e, cap * sizeof(*e));
        if (!e)
            return PII_E_NOMEM;
        v->e = e;
        v->cap = cap;
    }
    if (v->kind_n[kind] == v->kind_cap[kind]) {
        size_t cap = v->kind_cap[kind] ? v->kind_cap[kind] * 2 : 8;
        uint32_t *b = realloc(v->by_kind[kind], cap * sizeof(*b));
        if (!b)
            return PII_E_NOMEM;
        v->by_kind[kind] = b;
        v->kind_cap[kind] = cap;
    }
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return PII_E_NOMEM;
    memcpy(copy, s, n);
    size_t idx = v->n++;
    v->e[idx] = (struct vault_entry){copy, n, h, (uint32_t)(v->kind_n[kind] + 1), kind};
    v->bytes += n;
    size_t at = h & (v->nslots - 1);
    while (v->slots[at])
        at = (at + 1) & (v->nslots - 1);
    v->slots[at] = (uint32_t)(idx + 1);
    v->by_kind[kind][v->kind_n[kind]++] = (uint32_t)idx;
    *number = v->kind_n[kind];
    return 0;
}

/* Writes "[TAG_N]" into out (PII_PLACEHOLDER_MAX bytes); returns its length. */
static size_t placeholder(enum pii_kind kind, size_t number, char *out)
{
    const char *tag = pii_kind_tag(kind);
    size_t n = 0, tl = strlen(tag);
    out[n++] = '[';
    memcpy(out + n, tag, tl);
    n += tl;
    out[n++] = '_';
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + number % 10);
        number /= 10;
    } while (number && nd < sizeof(digits));
    while (nd)
        out[n++] = digits[--nd];
    out[n++] = ']';
    return n;
}

struct pseudo_ctx {
    struct pii_vault *v;
    const char *text;
    size_t last; /* end of the previous match */
    struct buf out;
    unsigned counts[PII_KIND_COUNT];
};

static int pseudo_emit(void *ctx, const struct pii_match *m)
{
    struct pseudo_ctx *c = ctx;
    size_t number;
    int rc = buf_put(&c->out, c->text + c->last, m->start - c->last);
    if (rc < 0)
        return rc;
    rc = vault_intern(c->v, m->kind, c->text + m->start, m->len, &number);
    if (rc < 0)
        return rc;
    char ph[PII_PLACEHOLDER_MAX];
    rc = buf_put(&c->out, ph, placeholder(m->kind, number, ph));
    if (rc < 0)
        return rc;
    c->counts[m->kind]++;
    c->last = m->start + m->len;
    return 0;
}

int pii_vault_pseudonymize(struct pii_vault *v, const char *text, size_t len, unsigned mask,
                           char **out, size_t *out_len, unsigned counts[PII_KIND_COUNT])
{
    if (!v || !out || !out_len || (!text && len))
        return PII_E_ARG;
    *out = NULL;
    *out_len = 0;
    struct pseudo_ctx c = {.v = v, .text = text, .last = 0};
    int rc = buf_reserve(&c.out, len);
    if (rc < 0)
        goto out;
    rc = pii__scan_run(text, len, mask & PII_MASK_ALL, pseudo_emit, &c);
    if (rc < 0)
        goto out;
    rc = buf_put(&c.out, text ? text + c.last : "", len - c.last);
    if (rc < 0)
        goto out;
    *out = c.out.p;
    *out_len = c.out.n;
    c.out.p = NULL;
    if (counts)
        memcpy(counts, c.counts, sizeof(c.counts));
out:
    free(c.out.p);
    return rc;
}

const char *pii_vault_lookup(const struct pii_vault *v, const char *p, size_t plen,
                             size_t *value_len)
{
    if (!v || !p || plen < 5 || plen > PII_PLACEHOLDER_MAX || p[0] != '[' || p[plen - 1] != ']')
        return NULL;
    size_t us = plen - 2;
    while (us > 1 && p[us] >= '0' && p[us] <= '9')
        us--;
    if (p[us] != '_' || us == plen - 2 || p[us + 1] == '0')
        return NULL;
    size_t number = 0;
    for (size_t k = us + 1; k < plen - 1; k++)
        number = number * 10 + (size_t)(p[k] - '0');
    for (int kind = 0; kind < PII_KIND_COUNT; kind++) {
        const char *tag = pii_kind_tag((enum pii_kind)kind);
        if (strlen(tag) == us - 1 && memcmp(tag, p + 1, us - 1) == 0) {
            if (number == 0 || number > v->kind_n[kind])
                return NULL;
            const struct vault_entry *e = &v->e[v->by_kind[kind][number - 1]];
            if (value_len)
                *value_len = e->len;
            return e->value;
        }
    }
    return NULL;
}

/* ---- streaming restoration ---- */

struct pii_restorer {
    const struct pii_vault *v;
    char hold[PII_PLACEHOLDER_MAX]; /* a possible placeholder prefix, starting with '[' */
    size_t hn;
    struct buf out;
};

struct pii_restorer *pii_restore_new(const struct pii_vault *v)
{
    if (!v)
        return NULL;
    struct pii_restorer *r = calloc(1, sizeof(*r));
    if (r)
        r->v = v;
    return r;
}

void pii_restore_free(struct pii_restorer *r)
{
    if (!r)
        return;
    if (r->out.p)
        explicit_bzero(r->out.p, r->out.cap);
    free(r->out.p);
    free(r);
}

enum { HOLD_INVALID, HOLD_MORE, HOLD_DONE };

/* Appends c to the held prefix (not full) and says whether it can still become a
 * placeholder: '[', an upper-case letter, then upper-case letters, digits and '_' up to ']'
 * (tags contain digits: "[IPV6_1]"); pii_vault_lookup checks the rest. */
static int hold_push(struct pii_restorer *r, char c)
{
    r->hold[r->hn++] = c;
    bool upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
    if (r->hn == 2)
        return upper ? HOLD_MORE : HOLD_INVALID;
    if (upper || digit || c == '_')
        return HOLD_MORE;
    return c == ']' ? HOLD_DONE : HOLD_INVALID;
}

static int restore_bytes(struct pii_restorer *r, const char *s, size_t n)
{
    int rc = 0;
    size_t i = 0;
    while (i < n && rc == 0) {
        if (r->hn == 0) {
            const char *br = memchr(s + i, '[', n - i);
            size_t run = br ? (size_t)(br - (s + i)) : n - i;
            rc = buf_put(&r->out, s + i, run);
            i += run;
            if (br && rc == 0) {
                r->hold[0] = '[';
                r->hn = 1;
                i++;
            }
            continue;
        }
        char c = s[i];
        if (r->hn == PII_PLACEHOLDER_MAX) {
            /* longer than any placeholder: release it and look at c afresh */
            rc = buf_put(&r->out, r->hold, r->hn);
            r->hn = 0;
            continue;
        }
        int st = hold_push(r, c);
        if (st == HOLD_MORE) {
            i++;
            continue;
        }
        if (st == HOLD_DONE) {
            size_t vl = 0;
            const char *val = pii_vault_lookup(r->v, r->hold, r->hn, &vl);
            rc = val ? buf_put(&r->out, val, vl) : buf_put(&r->out, r->hold, r->hn);
            r->hn = 0;
            i++;
            continue;
        }
        /* not a placeholder: release what was held before c, then look at c afresh */
        rc = buf_put(&r->out, r->hold, r->hn - 1);
        r->hn = 0;
    }
    return rc;
}

int pii_restore_feed(struct pii_restorer *r, const char *chunk, size_t len, const char **out,
                     size_t *out_len)
{
    if (!r || !out || !out_len || (!chunk && len))
        return PII_E_ARG;
    r->out.n = 0;
    int rc = buf_reserve(&r->out, len);
    if (rc == 0)
        rc = restore_bytes(r, chunk, len);
    *out = r->out.p ? r->out.p : "";
    *out_len = r->out.n;
    return rc;
}

int pii_restore_flush(struct pii_restorer *r, const char **out, size_t *out_len)
{
    if (!r || !out || !out_len)
        return PII_E_ARG;
    r->out.n = 0;
    int rc = buf_put(&r->out, r->hold, r->hn);
    r->hn = 0;
    *out = r->out.p ? r->out.p : "";
    *out_len = r->out.n;
    return rc;
}
