/* Metrics registry: lock-free updates on label children, rwlock-guarded lookup, text render. */
#include "server/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64
#define BUF_DEFAULT_MAX (16u << 20)

/* One label combination. Counters keep whole-number increments in ival (one fetch_add, exact)
 * and everything else as a double in bits; gauges and histogram sums are doubles in bits.
 * Children are cache-line aligned so that two hot children never share a line. */
struct metrics_child {
    _Atomic uint64_t ival;
    _Atomic uint64_t bits;     /* a double's bit pattern */
    _Atomic uint64_t *buckets; /* histogram: [n_bounds + 1] non-cumulative, last is +Inf */
    const double *bounds;      /* histogram: the family's [n_bounds] */
    unsigned n_bounds;
    unsigned n_labels;
    enum metrics_type type;
    uint32_t hash;
    const char *values[METRICS_MAX_LABELS]; /* sanitized, stored after the struct */
};

struct metrics_family {
    char *name, *help;
    enum metrics_type type;
    size_t n_labels;
    char *labels[METRICS_MAX_LABELS];
    double *bounds; /* histogram: [n_bounds] */
    size_t n_bounds;
    size_t max_children;
    pthread_rwlock_t lock;        /* guards slots, cap, n */
    struct metrics_child **slots; /* open addressing, cap a power of two, at most half full */
    size_t cap, n;
    struct metrics_child *single; /* the only child of a family without labels */
};

struct metrics_registry {
    pthread_mutex_t mu; /* guards fams, n, cap */
    struct metrics_family **fams;
    size_t n, cap;
    size_t max_children;
};

const char *metrics_strerror(int err)
{
    switch (err) {
    case METRICS_OK:
        return "ok";
    case METRICS_E_ARG:
        return "invalid argument";
    case METRICS_E_NOMEM:
        return "out of memory";
    case METRICS_E_EXISTS:
        return "metric already registered";
    case METRICS_E_TOOBIG:
        return "metrics output exceeds the buffer cap";
    }
    return "unknown metrics error";
}

/* ---- doubles stored in 64-bit atomics ---- */

static inline uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* ---- names and label values ---- */

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the byte at s starts none. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Copy v into out[METRICS_MAX_VALUE_LEN + 1]: cut at a character boundary, invalid bytes as
 * '?'. Returns the length. */
static size_t sanitize_value(const char *v, char *out)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)(v ? v : "");
    while (*s) {
        size_t n = utf8_seq(s);
        if (o + (n ? n : 1) > METRICS_MAX_VALUE_LEN)
            break;
        if (n == 0) {
            out[o++] = '?';
            s++;
        } else {
            memcpy(out + o, s, n);
            o += n;
            s += n;
        }
    }
    out[o] = '\0';
    return o;
}

/* FNV-1a over the values, each followed by 0xFF (a byte UTF-8 never contains). */
static uint32_t hash_values(const char *const *v, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0xFFu) * 16777619u;
    }
    return h;
}

/* ---- children ---- */

static struct metrics_child *child_new(const struct metrics_family *f, const char *const *v,
                                       uint32_t hash)
{
    size_t head = (sizeof(struct metrics_child) + 7) & ~(size_t)7;
    size_t nb = f->type == METRICS_HISTOGRAM ? f->n_bounds + 1 : 0;
    size_t len[METRICS_MAX_LABELS] = {0}, size = head + nb * sizeof(uint64_t);
    for (size_t i = 0; i < f->n_labels; i++) {
        len[i] = strlen(v[i]);
        size += len[i] + 1;
    }
    size = (size + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
    struct metrics_child *c = aligned_alloc(CACHE_LINE, size);
    if (!c)
        return NULL;
    memset(c, 0, size);
    atomic_init(&c->ival, 0);
    atomic_init(&c->bits, d2u(0.0));
    c->type = f->type;
    c->n_labels = (unsigned)f->n_labels;
    c->hash = hash;
    c->bounds = f->bounds;
    c->n_bounds = (unsigned)f->n_bounds;
    char *p = (char *)c + head;
    if (nb) {
        c->buckets = (_Atomic uint64_t *)p;
        for (size_t i = 0; i < nb; i++)
            atomic_init(&c->buckets[i], 0);
        p += nb * sizeof(uint64_t);
    }
    for (size_t i = 0; i < f->n_labels; i++) {
        memcpy(p, v[i], len[i] + 1);
        c->values[i] = p;
        p += len[i] + 1;
    }
    return c;
}

/* Caller holds f->lock (read or write). */
static struct metrics_child *family_find(const struct metrics_family *f, const char *const *v,
                                         uint32_t hash)
{
    if (!f->cap)
        return NULL;
    for (size_t i = hash & (f->cap - 1);; i = (i + 1) & (f->cap - 1)) {
        struct metrics_child *c = f->slots[i];
        if (!c)
            return NULL;
        if (c->hash != hash)
            continue;
        size_t k = 0;
        while (k < f->n_labels && !strcmp(c->values[k], v[k]))
            k++;
        if (k == f->n_labels)
            return c;
    }
}

/* Caller holds f->lock for writing. */
static struct metrics_child *family_insert(struct metrics_family *f, const char *const *v,
                                           uint32_t hash)
{
    if ((f->n + 1) * 2 > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct metrics_child **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < f->cap; i++) {
            struct metrics_child *c = f->slots[i];
            if (!c)
                continue;
            size_t j = c->hash & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = c;
        }
        free(f->slots);
        f->slots = slots;
        f->cap = cap;
    }
    struct metrics_child *c = child_new(f, v, hash);
    if (!c)
        return NULL;
    size_t j = hash & (f->cap - 1);
    while (f->slots[j])
        j = (j + 1) & (f->cap - 1);
    f->slots[j] = c;
    f->n++;
    return c;
}

struct metrics_child *metrics_family_child(struct metrics_family *f, const char *const *values)
{
    if (!f)
        return NULL;
    if (f->n_labels == 0)
        return f->single;
    if (!values)
        return NULL;
    char buf[METRICS_MAX_LABELS][METRICS_MAX_VALUE_LEN + 1];
    const char *v[METRICS_MAX_LABELS];
    for (size_t i = 0; i < f->n_labels; i++) {
        sanitize_value(values[i], buf[i]);
        v[i] = buf[i];
    }
    uint32_t hash = hash_values(v, f->n_labels);

    pthread_rwlock_rdlock(&f->lock);
    struct metrics_child *c = family_find(f, v, hash);
    pthread_rwlock_unlock(&f->lock);
    if (c)
        return c;

    pthread_rwlock_wrlock(&f->lock);
    c = family_find(f, v, hash);
    if (!c && f->n >= f->max_children) {
        /* Full: the overflow child, created once beyond the limit. */
        for (size_t i = 0; i < f->n_labels; i++)
            v[i] = METRICS_OTHER;
        hash = hash_values(v, f->n_labels);
        c = family_find(f, v, hash);
    }
    if (!c)
        c = family_insert(f, v, hash);
    pthread_rwlock_unlock(&f->lock);
    return c;
}

/* ---- updates ---- */

void metrics_child_inc(struct metrics_child *c)
{
    if (!c)
        return;
    if (c->type == METRICS_COUNTER)
        atomic_fetch_add_explicit(&c->ival, 1, memory_order_relaxed);
    else if (c->type == METRICS_GAUGE)
        atomic_add_double(&c->bits, 1.0);
}

void metrics_child_add(struct metrics_child *c, double v)
{
    if (!c || isnan(v))
        return;
    if (c->type == METRICS_COUNTER) {
        if (!(v >= 0))
            return;
        /* Whole numbers (tokens, requests) stay exact and take one fetch_add. */
        if (v < 9007199254740992.0 && v == (double)(uint64_t)v)
            atomic_fetch_add_explicit(&c->ival, (uint64_t)v, memory_order_relaxed);
        else
            atomic_add_double(&c->bits, v);
    } else if (c->type == METRICS_GAUGE)
        atomic_add_double(&c->bits, v);
}

void metrics_child_set(struct metrics_child *c, double v)
{
    if (c && c->type == METRICS_GAUGE)
        atomic_store_explicit(&c->bits, d2u(v), memory_order_relaxed);
}

void metrics_child_observe(struct metrics_child *c, double v)
{
    if (!c || c->type != METRICS_HISTOGRAM || isnan(v))
        return;
    /* First bound >= v (le is inclusive); n_bounds is the +Inf bucket. */
    unsigned lo = 0, hi = c->n_bounds;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (v <= c->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&c->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&c->bits, v);
}

void metrics_add(struct metrics_family *f, const char *const *values, double v)
{
    metrics_child_add(metrics_family_child(f, values), v);
}

void metrics_set(struct metrics_family *f, const char *const *values, double v)
{
    metrics_child_set(metrics_family_child(f, values), v);
}

void metrics_observe(struct metrics_family *f, const char *const *values, double v)
{
    metrics_child_observe(metrics_family_child(f, values), v);
}

double metrics_child_value(const struct metrics_child *c)
{
    if (!c)
        return 0;
    double d = u2d(atomic_load_explicit(&c->bits, memory_order_relaxed));
    if (c->type == METRICS_COUNTER)
        d += (double)atomic_load_explicit(&c->ival, memory_order_relaxed);
    return d;
}

uint64_t metrics_child_count(const struct metrics_child *c)
{
    if (!c || c->type != METRICS_HISTOGRAM)
        return 0;
    uint64_t n = 0;
    for (unsigned i = 0; i <= c->n_bounds; i++)
        n += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
    return n;
}

/* ---- registry ---- */

struct metrics_registry *metrics_registry_new(size_t max_children)
{
    struct metrics_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL)) {
        free(r);
        return NULL;
    }
    r->max_children = max_children ? max_children : METRICS_DEFAULT_MAX_CHILDREN;
    return r;
}

static void family_free(struct metrics_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->cap; i++)
        free(f->slots[i]);
    free(f->slots);
    free(f->single);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_rwlock_destroy(&f->lock);
    free(f);
}

void metrics_registry_free(struct metrics_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        family_free(r->fams[i]);
    free(r->fams);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int family_new(struct metrics_registry *r, struct metrics_family **out,
                      enum metrics_type type, const char *name, const char *help,
                      const char *const *labels, size_t n_labels, const double *bounds,
                      size_t n_bounds)
{
    if (out)
        *out = NULL;
    if (!r || !out || !valid_name(name, true) || n_labels > METRICS_MAX_LABELS ||
        (n_labels && !labels))
        return METRICS_E_ARG;
    for (size_t i = 0; i < n_labels; i++) {
        if (!valid_name(labels[i], false) || !strncmp(labels[i], "__", 2) ||
            (type == METRICS_HISTOGRAM && !strcmp(labels[i], "le")))
            return METRICS_E_ARG;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(labels[i], labels[j]))
                return METRICS_E_ARG;
    }
    if (type == METRICS_HISTOGRAM) {
        if (!bounds || n_bounds == 0 || n_bounds > METRICS_MAX_BUCKETS)
            return METRICS_E_ARG;
        for (size_t i = 0; i < n_bounds; i++)
            if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
                return METRICS_E_ARG;
    }

    int rc = METRICS_E_NOMEM;
    struct metrics_family *f = calloc(1, sizeof *f);
    if (!f)
        return METRICS_E_NOMEM;
    if (pthread_rwlock_init(&f->lock, NULL)) {
        free(f);
        return METRICS_E_NOMEM;
    }
    f->type = type;
    f->max_children = r->max_children;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto out;
    for (; f->n_labels < n_labels; f->n_labels++)
        if (!(f->labels[f->n_labels] = strdup(labels[f->n_labels])))
            goto out;
    if (type == METRICS_HISTOGRAM) {
        if (!(f->bounds = malloc(n_bounds * sizeof *bounds)))
            goto out;
        memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        f->n_bounds = n_bounds;
    }
    if (n_labels == 0 && !(f->single = child_new(f, NULL, 0)))
        goto out;

    pthread_mutex_lock(&r->mu);
    rc = METRICS_OK;
    for (size_t i = 0; i < r->n && rc == METRICS_OK; i++)
        if (!strcmp(r->fams[i]->name, name))
            rc = METRICS_E_EXISTS;
    if (rc == METRICS_OK && r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct metrics_family **fams = realloc(r->fams, cap * sizeof *fams);
        if (fams) {
            r->fams = fams;
            r->cap = cap;
        } else
            rc = METRICS_E_NOMEM;
    }
    if (rc == METRICS_OK)
        r->fams[r->n++] = f;
    pthread_mutex_unlock(&r->mu);
out:
    if (rc != METRICS_OK) {
        family_free(f);
        return rc;
    }
    *out = f;
    return METRICS_OK;
}

int metrics_counter_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                        const char *help, const char *const *labels, size_t n_labels)
{
    return family_new(r, out, METRICS_COUNTER, name, help, labels, n_labels, NULL, 0);
}

int metrics_gauge_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                      const char *help, const char *const *labels, size_t n_labels)
{
    return family_new(r, out, METRICS_GAUGE, name, help, labels, n_labels, NULL, 0);
}

int metrics_histogram_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                          const char *help, const char *const *labels, size_t n_labels,
                          const double *bounds, size_t n_bounds)
{
    return family_new(r, out, METRICS_HISTOGRAM, name, help, labels, n_labels, bounds, n_bounds);
}

/* ---- output buffer ---- */

void metrics_buf_init(struct metrics_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : BUF_DEFAULT_MAX;
}

void metrics_buf_free(struct metrics_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_put(struct metrics_buf *b, const char *s, size_t n)
{
    if (n >= b->max || b->len + n + 1 > b->max)
        return METRICS_E_TOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *d = realloc(b->data, cap);
        if (!d)
            return METRICS_E_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return METRICS_OK;
}

static int buf_str(struct metrics_buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

/* s with '\\' -> "\\\\", '\n' -> "\\n", and (in label values) '"' -> "\\\"". */
static int buf_escaped(struct metrics_buf *b, const char *s, bool quote)
{
    int rc = METRICS_OK;
    const char *run = s;
    for (; *s && rc == METRICS_OK; s++) {
        const char *esc = *s == '\\'             ? "\\\\"
                          : *s == '\n'           ? "\\n"
                          : (quote && *s == '"') ? "\\\""
                                                 : NULL;
        if (!esc)
            continue;
        rc = buf_put(b, run, (size_t)(s - run));
        if (rc == METRICS_OK)
            rc = buf_put(b, esc, 2);
        run = s + 1;
    }
    return rc != METRICS_OK ? rc : buf_put(b, run, (size_t)(s - run));
}

/* Shortest of %.15g / %.17g that reads back as v; whole numbers without exponent. */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        snprintf(out, n, "0");
    else if (fabs(v) < 1e15 && v == trunc(v))
        snprintf(out, n, "%.0f", v);
    else {
        snprintf(out, n, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, n, "%.17g", v);
    }
}

/* ---- render ---- */

static int cmp_child(const void *a, const void *b)
{
    const struct metrics_child *x = *(struct metrics_child *const *)a;
    const struct metrics_child *y = *(struct metrics_child *const *)b;
    for (unsigned i = 0; i < x->n_labels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

static int cmp_family(const void *a, const void *b)
{
    const struct metrics_family *x = *(struct metrics_family *const *)a;
    const struct metrics_family *y = *(struct metrics_family *const *)b;
    return strcmp(x->name, y->name);
}

/* name+suffix{labels[,le="..."]} value\n */
static int emit_sample(struct metrics_buf *b, const struct metrics_family *f,
                       const struct metrics_child *c, const char *suffix, const char *le,
                       const char *value)
{
    int rc = buf_str(b, f->name);
    if (rc == METRICS_OK)
        rc = buf_str(b, suffix);
    if (rc == METRICS_OK && (f->n_labels || le))
        rc = buf_put(b, "{", 1);
    for (size_t i = 0; i < f->n_labels && rc == METRICS_OK; i++) {
        if (i)
            rc = buf_put(b, ",", 1);
        if (rc == METRICS_OK)
            rc = buf_str(b, f->labels[i]);
        if (rc == METRICS_OK)
            rc = buf_put(b, "=\"", 2);
        if (rc == METRICS_OK)
            rc = buf_escaped(b, c->values[i], true);
        if (rc == METRICS_OK)
            rc = buf_put(b, "\"", 1);
    }
    if (rc == METRICS_OK && le) {
        rc = buf_str(b, f->n_labels ? ",le=\"" : "le=\"");
        if (rc == METRICS_OK)
            rc = buf_str(b, le);
        if (rc == METRICS_OK)
            rc = buf_put(b, "\"", 1);
    }
    if (rc == METRICS_OK && (f->n_labels || le))
        rc = buf_put(b, "}", 1);
    if (rc == METRICS_OK)
        rc = buf_put(b, " ", 1);
    if (rc == METRICS_OK)
        rc = buf_str(b, value);
    if (rc == METRICS_OK)
        rc = buf_put(b, "\n", 1);
    return rc;
}

static int emit_child(struct metrics_buf *b, const struct metrics_family *f,
                      const struct metrics_child *c)
{
    char num[64];
    if (f->type == METRICS_COUNTER) {
        uint64_t iv = atomic_load_explicit(&c->ival, memory_order_relaxed);
        double dv = u2d(atomic_load_explicit(&c->bits, memory_order_relaxed));
        if (dv == 0)
            snprintf(num, sizeof num, "%llu", (unsigned long long)iv);
        else
            fmt_double(num, sizeof num, dv + (double)iv);
        return emit_sample(b, f, c, "", NULL, num);
    }
    if (f->type == METRICS_GAUGE) {
        fmt_double(num, sizeof num, u2d(atomic_load_explicit(&c->bits, memory_order_relaxed)));
        return emit_sample(b, f, c, "", NULL, num);
    }
    /* Histogram: read the sum first; count is the total of the cumulative buckets. */
    double sum = u2d(atomic_load_explicit(&c->bits, memory_order_relaxed));
    uint64_t cum = 0;
    int rc = METRICS_OK;
    char le[64];
    for (size_t i = 0; i <= f->n_bounds && rc == METRICS_OK; i++) {
        cum += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
        if (i < f->n_bounds)
            fmt_double(le, sizeof le, f->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
        rc = emit_sample(b, f, c, "_bucket", le, num);
    }
    if (rc == METRICS_OK) {
        fmt_double(num, sizeof num, sum);
        rc = emit_sample(b, f, c, "_sum", NULL, num);
    }
    if (rc == METRICS_OK) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
        rc = emit_sample(b, f, c, "_count", NULL, num);
    }
    return rc;
}

static const char *const type_names[] = {
    [METRICS_COUNTER] = "counter",
    [METRICS_GAUGE] = "gauge",
    [METRICS_HISTOGRAM] = "histogram",
};

static int render_family(struct metrics_buf *b, struct metrics_family *f)
{
    struct metrics_child **list = NULL;
    size_t n = 0;
    if (f->n_labels == 0) {
        list = malloc(sizeof *list);
        if (!list)
            return METRICS_E_NOMEM;
        list[n++] = f->single;
    } else {
        pthread_rwlock_rdlock(&f->lock);
        if (f->n && (list = malloc(f->n * sizeof *list)))
            for (size_t i = 0; i < f->cap; i++)
                if (f->slots[i])
                    list[n++] = f->slots[i];
        size_t want = f->n;
        pthread_rwlock_unlock(&f->lock);
        if (want && !list)
            return METRICS_E_NOMEM;
        if (!n)
            return METRICS_OK;
        qsort(list, n, sizeof *list, cmp_child);
    }
    int rc = buf_str(b, "# HELP ");
    if (rc == METRICS_OK)
        rc = buf_str(b, f->name);
    if (rc == METRICS_OK)
        rc = buf_put(b, " ", 1);
    if (rc == METRICS_OK)
        rc = buf_escaped(b, f->help, false);
    if (rc == METRICS_OK)
        rc = buf_str(b, "\n# TYPE ");
    if (rc == METRICS_OK)
        rc = buf_str(b, f->name);
    if (rc == METRICS_OK)
        rc = buf_put(b, " ", 1);
    if (rc == METRICS_OK)
        rc = buf_str(b, type_names[f->type]);
    if (rc == METRICS_OK)
        rc = buf_put(b, "\n", 1);
    for (size_t i = 0; i < n && rc == METRICS_OK; i++)
        rc = emit_child(b, f, list[i]);
    free(list);
    return rc;
}

int metrics_render(struct metrics_registry *r, struct metrics_buf *b)
{
    if (!r || !b || !b->max)
        return METRICS_E_ARG;
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    struct metrics_family **fams = n ? malloc(n * sizeof *fams) : NULL;
    if (fams)
        memcpy(fams, r->fams, n * sizeof *fams);
    pthread_mutex_unlock(&r->mu);
    if (n && !fams)
        return METRICS_E_NOMEM;
    int rc = buf_put(b, "", 0); /* NUL-terminated even when empty */
    if (n)
        qsort(fams, n, sizeof *fams, cmp_family);
    for (size_t i = 0; i < n && rc == METRICS_OK; i++)
        rc = render_family(b, fams[i]);
    free(fams);
    return rc;
}

/* ---- tandem's metrics ---- */

const double metrics_duration_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1,     2.5,  5,     10,   30,  60};
const size_t metrics_duration_buckets_n =
    sizeof metrics_duration_buckets / sizeof metrics_duration_buckets[0];
const double metrics_ttft_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5,
                                       0.75, 1,     2,    5,   10,  30};
const size_t metrics_ttft_buckets_n = sizeof metrics_ttft_buckets / sizeof metrics_ttft_buckets[0];

int metrics_tandem_new(struct metrics_tandem **out, const char *version, size_t max_children)
{
    static const char *const l_mto[] = {"model", "target", "outcome"};
    static const char *const l_mts[] = {"model", "target", "status"};
    static const char *const l_mt[] = {"model", "target"};
    static const char *const l_mtk[] = {"model", "target", "kind"};
    static const char *const l_m[] = {"model"};
    static const char *const l_t[] = {"target"};
    static const char *const l_k[] = {"kind"};
    static const char *const l_a[] = {"action"};
    static const char *const l_v[] = {"version"};
    if (!out)
        return METRICS_E_ARG;
    *out = NULL;
    struct metrics_tandem *m = calloc(1, sizeof *m);
    if (!m)
        return METRICS_E_NOMEM;
    int rc = METRICS_E_NOMEM;
    if (!(m->reg = metrics_registry_new(max_children)))
        goto out;
    struct metrics_registry *r = m->reg;
    if ((rc = metrics_counter_new(r, &m->requests, "tandem_requests_total",
                                  "Requests answered, by model, target and outcome.", l_mto, 3)) ||
        (rc =
             metrics_counter_new(r, &m->request_errors, "tandem_request_errors_total",
                                 "Failed requests, by model, target and HTTP status.", l_mts, 3)) ||
        (rc = metrics_histogram_new(r, &m->request_duration, "tandem_request_duration_seconds",
                                    "Request duration from arrival to the last byte.", l_mt, 2,
                                    metrics_duration_buckets, metrics_duration_buckets_n)) ||
        (rc = metrics_histogram_new(r, &m->ttft, "tandem_time_to_first_token_seconds",
                                    "Time from request arrival to the first generated token.", l_mt,
                                    2, metrics_ttft_buckets, metrics_ttft_buckets_n)) ||
        (rc = metrics_counter_new(r, &m->tokens, "tandem_tokens_total",
                                  "Tokens processed, by kind (prompt, completion, cached).", l_mtk,
                                  3)) ||
        (rc = metrics_counter_new(r, &m->cost_usd, "tandem_cost_usd_total",
                                  "Cost in US dollars, by kind (cloud spent, local, saved).", l_mtk,
                                  3)) ||
        (rc = metrics_counter_new(r, &m->prefix_cache_hits, "tandem_prefix_cache_hits_total",
                                  "Requests that reused a cached prompt prefix.", l_m, 1)) ||
        (rc = metrics_gauge_new(r, &m->slots_busy, "tandem_slots_busy",
                                "Inference slots currently generating.", l_m, 1)) ||
        (rc = metrics_gauge_new(r, &m->slots, "tandem_slots", "Inference slots configured.", l_m,
                                1)) ||
        (rc = metrics_gauge_new(r, &m->queue_depth, "tandem_queue_depth",
                                "Requests waiting for a free slot.", l_m, 1)) ||
        (rc = metrics_gauge_new(r, &m->upstream_up, "tandem_upstream_up",
                                "1 when the upstream's circuit breaker is closed, 0 when open.",
                                l_t, 1)) ||
        (rc = metrics_counter_new(r, &m->privacy_detections, "tandem_privacy_detections_total",
                                  "Sensitive items detected in requests, by kind.", l_k, 1)) ||
        (rc = metrics_counter_new(r, &m->privacy_actions, "tandem_privacy_actions_total",
                                  "Privacy actions taken on requests, by action.", l_a, 1)) ||
        (rc = metrics_gauge_new(r, &m->build_info, "tandem_build_info",
                                "Always 1; the label carries the tandem version.", l_v, 1)))
        goto out;
    const char *ver[] = {version ? version : "unknown"};
    struct metrics_child *bi = metrics_family_child(m->build_info, ver);
    if (!bi) {
        rc = METRICS_E_NOMEM;
        goto out;
    }
    metrics_child_set(bi, 1);
    rc = METRICS_OK;
out:
    if (rc != METRICS_OK) {
        metrics_tandem_free(m);
        return rc;
    }
    *out = m;
    return METRICS_OK;
}

void metrics_tandem_free(struct metrics_tandem *m)
{
    if (!m)
        return;
    metrics_registry_free(m->reg);
    free(m);
}
