/* Jinja subset: filters, tests, builtin functions and string/dict methods. */
#include "tokenizer/chat_jinja_eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arguments ---- */

/* Positional argument `pos` or keyword `name` (either may be absent), or NULL. */
static const struct jinja_value *arg(const struct args *a, size_t pos, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->names && a->names[i]) {
            if (name && strcmp(a->names[i], name) == 0)
                return &a->v[i];
        } else if (k++ == pos) {
            return &a->v[i];
        }
    }
    return NULL;
}

static bool arg_bool(const struct args *a, size_t pos, const char *name, bool def)
{
    const struct jinja_value *v = arg(a, pos, name);
    return v ? chat__jinja_truthy(*v) : def;
}

/* The arguments after the first k positional ones (for select('test', arg...)). */
static struct args args_from(const struct args *a, size_t k)
{
    struct args b = {0, NULL, NULL};
    size_t skip = k < a->n ? k : a->n;
    b.n = a->n - skip;
    b.v = a->v ? a->v + skip : NULL;
    b.names = a->names ? a->names + skip : NULL;
    return b;
}

/* ---- string helpers (ASCII case mapping; other bytes pass through) ---- */

static bool py_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* strip(chars): which = 1 left, 2 right, 3 both; chars NULL = whitespace. */
static struct jinja_value strip(struct jinja_value s, const struct jinja_value *chars, int which)
{
    const char *p = s.u.s.p;
    size_t a = 0, b = s.u.s.n;
    bool custom = chars && chars->type == JV_STR;
#define STRIPPABLE(c)                                                                       \
    (custom ? memchr(chars->u.s.p, (c), chars->u.s.n) != NULL : py_space((unsigned char)(c)))
    if (which & 1)
        while (a < b && STRIPPABLE(p[a]))
            a++;
    if (which & 2)
        while (b > a && STRIPPABLE(p[b - 1]))
            b--;
#undef STRIPPABLE
    return V_STR(p + a, b - a);
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE };

static int change_case(struct render *r, struct jinja_value s, int mode, struct jinja_value *out)
{
    char *d = chat__jinja_alloc(r, s.u.s.n + 1);
    if (!d)
        return r->rc;
    bool prev_cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        bool up;
        switch (mode) {
        case CASE_UPPER: up = true; break;
        case CASE_LOWER: up = false; break;
        case CASE_TITLE: up = !prev_cased; break;
        default: up = i == 0; break;
        }
        if (up && lower)
            c = (char)(c - 32);
        else if (!up && upper)
            c = (char)(c + 32);
        d[i] = c;
        prev_cased = lower || upper || (unsigned char)c >= 0x80;
    }
    d[s.u.s.n] = 0;
    *out = V_STR(d, s.u.s.n);
    return 0;
}

static int replace(struct render *r, struct jinja_value s, struct jinja_value from,
                   struct jinja_value to, int64_t count, struct jinja_value *out)
{
    struct sink k = {.max = r->in->max_output};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int rc = 0;
    int64_t done = 0;
    if (from.u.s.n == 0) { /* Python inserts `to` around every character */
        while (!rc && i <= n && (count < 0 || done < count)) {
            rc = chat__jinja_put(r, &k, to.u.s.p, to.u.s.n);
            done++;
            if (!rc && i < n) {
                size_t c = chat__jinja_cp_len_at(p, n, i);
                rc = chat__jinja_put(r, &k, p + i, c);
                i += c;
            } else {
                i++;
            }
        }
        if (!rc && i < n)
            rc = chat__jinja_put(r, &k, p + i, n - i);
    } else {
        while (!rc && i < n) {
            const char *hit = (count < 0 || done < count)
                                  ? memmem(p + i, n - i, from.u.s.p, from.u.s.n) : NULL;
            if (!hit) {
                rc = chat__jinja_put(r, &k, p + i, n - i);
                break;
            }
            size_t at = (size_t)(hit - p);
            if (!(rc = chat__jinja_put(r, &k, p + i, at - i)))
                rc = chat__jinja_put(r, &k, to.u.s.p, to.u.s.n);
            i = at + from.u.s.n;
            done++;
        }
    }
    if (!rc)
        rc = chat__jinja_str_new(r, k.p ? k.p : "", k.n, out);
    free(k.p);
    return rc;
}

static int split(struct render *r, struct jinja_value s, const struct jinja_value *sep,
                 int64_t maxsplit, struct jinja_value *out)
{
    struct jinja_list *l = chat__jinja_list_new(r, 0);
    if (!l)
        return r->rc;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int rc = 0;
    int64_t done = 0;
    if (!sep || sep->type == JV_NONE || sep->type == JV_UNDEF) { /* runs of whitespace */
        for (;;) {
            while (i < n && py_space((unsigned char)p[i]))
                i++;
            if (i >= n)
                break;
            size_t e = i;
            if (maxsplit >= 0 && done >= maxsplit) {
                e = n;
                while (e > i && py_space((unsigned char)p[e - 1]))
                    e--;
            } else {
                while (e < n && !py_space((unsigned char)p[e]))
                    e++;
            }
            if ((rc = chat__jinja_list_push(r, l, V_STR(p + i, e - i))))
                return rc;
            done++;
            i = e;
        }
    } else {
        if (sep->type != JV_STR || sep->u.s.n == 0)
            return FAIL(r, CHAT_E_RUNTIME, "split: empty or non-string separator");
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit)
                                  ? memmem(p + i, n - i, sep->u.s.p, sep->u.s.n) : NULL;
            size_t e = hit ? (size_t)(hit - p) : n;
            if ((rc = chat__jinja_list_push(r, l, V_STR(p + i, e - i))))
                return rc;
            if (!hit)
                break;
            i = e + sep->u.s.n;
            done++;
        }
    }
    *out = list_value(l);
    return 0;
}

static int join(struct render *r, struct jinja_value seq, struct jinja_value sep,
                const struct jinja_value *attr, struct jinja_value *out)
{
    struct jinja_list *items;
    int rc = chat__jinja_iterate(r, seq, &items);
    if (rc)
        return rc;
    struct sink k = {.max = r->in->max_output};
    for (size_t i = 0; i < items->n; i++) {
        struct jinja_value v = items->v[i], sv;
        if (attr && attr->type == JV_STR && (rc = chat__jinja_attr_path(r, v, attr->u.s.p, attr->u.s.n, &v)))
            break;
        if ((i && (rc = chat__jinja_put(r, &k, sep.u.s.p, sep.u.s.n))) ||
            (rc = chat__jinja_to_str(r, v, &sv)) || (rc = chat__jinja_put(r, &k, sv.u.s.p, sv.u.s.n)))
            break;
    }
    if (!rc)
        rc = chat__jinja_str_new(r, k.p ? k.p : "", k.n, out);
    free(k.p);
    return rc;
}

static bool starts_ends(struct jinja_value s, struct jinja_value x, bool end)
{
    if (x.type != JV_STR || x.u.s.n > s.u.s.n)
        return false;
    const char *at = end ? s.u.s.p + s.u.s.n - x.u.s.n : s.u.s.p;
    return x.u.s.n == 0 || memcmp(at, x.u.s.p, x.u.s.n) == 0;
}

/* ---- builtin functions and methods ---- */

static int need_str(struct render *r, const struct jinja_value *v, const char *what)
{
    if (!v || v->type != JV_STR)
        return FAIL(r, CHAT_E_RUNTIME, "%s expects a string argument", what);
    return 0;
}

static int fn_range(struct render *r, const struct args *a, struct jinja_value *out)
{
    int64_t v[3] = {0, 0, 1};
    size_t np = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->names && a->names[i])
            continue;
        if (np == 3 || !is_int(a->v[i]))
            return FAIL(r, CHAT_E_RUNTIME, "range() takes one to three integers");
        v[np++] = as_int(a->v[i]);
    }
    if (np == 0)
        return FAIL(r, CHAT_E_RUNTIME, "range() takes one to three integers");
    int64_t start = np == 1 ? 0 : v[0], stop = np == 1 ? v[0] : v[1], step = np == 3 ? v[2] : 1;
    if (step == 0)
        return FAIL(r, CHAT_E_RUNTIME, "range() step must not be zero");
    /* exact element count, in unsigned arithmetic (the differences fit in 64 bits) */
    uint64_t count = 0;
    if (step > 0 && stop > start)
        count = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > stop)
        count = ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    if (count > JINJA_MAX_RANGE)
        return FAIL(r, CHAT_E_LIMIT, "range() of more than %d items", JINJA_MAX_RANGE);
    struct jinja_list *l = chat__jinja_list_new(r, (size_t)count);
    if (!l)
        return r->rc;
    /* start + i*step lies between start and stop, so the wrapping unsigned sum is exact */
    for (size_t i = 0; i < (size_t)count; i++) {
        uint64_t u = (uint64_t)start + (uint64_t)i * (uint64_t)step;
        int64_t x;
        memcpy(&x, &u, sizeof(x));
        l->v[l->n++] = V_INT(x);
    }
    *out = list_value(l);
    return 0;
}

static int fn_dict(struct render *r, const struct args *a, bool ns, struct jinja_value *out)
{
    struct jinja_dict *d = chat__jinja_dict_new(r, ns);
    if (!d)
        return r->rc;
    int rc;
    for (size_t i = 0; i < a->n; i++) {
        if (a->names && a->names[i]) {
            if ((rc = chat__jinja_dict_set(r, d, V_STR(a->names[i], strlen(a->names[i])),
                                           a->v[i])))
                return rc;
        } else if (a->v[i].type == JV_DICT) {
            const struct jinja_dict *src = a->v[i].u.dict;
            for (size_t k = 0; k < src->n; k++)
                if ((rc = chat__jinja_dict_set(r, d, src->k[k], src->v[k])))
                    return rc;
        } else {
            return FAIL(r, CHAT_E_RUNTIME, "%s() takes keyword arguments or a dict",
                        ns ? "namespace" : "dict");
        }
    }
    *out = dict_value(d);
    return 0;
}

static int fn_strftime(struct render *r, const struct args *a, struct jinja_value *out)
{
    const struct jinja_value *f = arg(a, 0, NULL);
    int rc = need_str(r, f, "strftime_now");
    if (rc)
        return rc;
    char fmt[128], buf[256];
    if (f->u.s.n >= sizeof(fmt))
        return FAIL(r, CHAT_E_RUNTIME, "strftime_now: format too long");
    memcpy(fmt, f->u.s.p, f->u.s.n);
    fmt[f->u.s.n] = 0;
    time_t t = r->in->now ? (time_t)r->in->now : time(NULL);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return FAIL(r, CHAT_E_RUNTIME, "strftime_now: bad time");
    size_t n = strftime(buf, sizeof(buf), fmt, &tm);
    return chat__jinja_str_new(r, buf, n, out);
}

static int dict_items(struct render *r, const struct jinja_dict *d, int which,
                      struct jinja_value *out)
{
    struct jinja_list *l = chat__jinja_list_new(r, d->n);
    if (!l)
        return r->rc;
    for (size_t i = 0; i < d->n; i++) {
        if (which == M_KEYS) {
            l->v[l->n++] = d->k[i];
        } else if (which == M_VALUES) {
            l->v[l->n++] = d->v[i];
        } else {
            struct jinja_list *pair = chat__jinja_list_new(r, 2);
            if (!pair)
                return r->rc;
            pair->v[0] = d->k[i];
            pair->v[1] = d->v[i];
            pair->n = 2;
            pair->tuple = true;
            l->v[l->n++] = list_value(pair);
        }
    }
    *out = list_value(l);
    return 0;
}

int chat__jinja_call_builtin(struct render *r, const struct jinja_func *fn, const struct args *a,
                             struct jinja_value *out)
{
    struct jinja_value self = fn->self, sv;
    const struct jinja_value *a0 = arg(a, 0, NULL), *a1 = arg(a, 1, NULL);
    int rc;
    switch (fn->id) {
    case FN_RAISE:
        if ((rc = chat__jinja_to_str(r, a0 ? *a0 : V_STR("error", 5), &sv)))
            return rc;
        return FAIL(r, CHAT_E_RAISED, "raise_exception: %.*s", (int)(sv.u.s.n > 300 ? 300 : sv.u.s.n),
                    sv.u.s.p);
    case FN_RANGE: return fn_range(r, a, out);
    case FN_NAMESPACE: return fn_dict(r, a, true, out);
    case FN_DICT: return fn_dict(r, a, false, out);
    case FN_STRFTIME: return fn_strftime(r, a, out);
    case M_STRIP: *out = strip(self, a0, 3); return 0;
    case M_LSTRIP: *out = strip(self, a0, 1); return 0;
    case M_RSTRIP: *out = strip(self, a0, 2); return 0;
    case M_UPPER: return change_case(r, self, CASE_UPPER, out);
    case M_LOWER: return change_case(r, self, CASE_LOWER, out);
    case M_TITLE: return change_case(r, self, CASE_TITLE, out);
    case M_CAPITALIZE: return change_case(r, self, CASE_CAPITALIZE, out);
    case M_STARTSWITH:
    case M_ENDSWITH: {
        bool end = fn->id == M_ENDSWITH, hit = false;
        if (a0 && a0->type == JV_LIST) {
            for (size_t i = 0; i < a0->u.list->n; i++)
                hit = hit || starts_ends(self, a0->u.list->v[i], end);
        } else if ((rc = need_str(r, a0, end ? "endswith" : "startswith"))) {
            return rc;
        } else {
            hit = starts_ends(self, *a0, end);
        }
        *out = V_BOOL(hit);
        return 0;
    }
    case M_SPLIT: {
        const struct jinja_value *ms = arg(a, 1, "maxsplit");
        return split(r, self, arg(a, 0, "sep"), ms && is_int(*ms) ? as_int(*ms) : -1, out);
    }
    case M_REPLACE: {
        const struct jinja_value *cnt = arg(a, 2, "count");
        if ((rc = need_str(r, a0, "replace")) || (rc = need_str(r, a1, "replace")))
            return rc;
        return replace(r, self, *a0, *a1, cnt && is_int(*cnt) ? as_int(*cnt) : -1, out);
    }
    case M_FIND: {
        if ((rc = need_str(r, a0, "find")))
            return rc;
        const char *hit = a0->u.s.n == 0 ? self.u.s.p
                          : memmem(self.u.s.p, self.u.s.n, a0->u.s.p, a0->u.s.n);
        *out = V_INT(hit ? (int64_t)chat__jinja_cp_count(self.u.s.p, (size_t)(hit - self.u.s.p)) : -1);
        return 0;
    }
    case M_JOIN:
        if (!a0)
            return FAIL(r, CHAT_E_RUNTIME, "join() takes an iterable");
        return join(r, *a0, self, NULL, out);
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES:
        return dict_items(r, self.u.dict, fn->id, out);
    case M_GET: {
        if (!a0)
            return FAIL(r, CHAT_E_RUNTIME, "get() takes a key");
        int eq;
        for (size_t i = 0; i < self.u.dict->n; i++) {
            if ((rc = chat__jinja_equal(r, self.u.dict->k[i], *a0, &eq)))
                return rc;
            if (eq) {
                *out = self.u.dict->v[i];
                return 0;
            }
        }
        *out = a1 ? *a1 : V_NONE;
        return 0;
    }
    case M_CYCLE: {
        size_t np = 0;
        for (size_t i = 0; i < a->n; i++)
            np += !(a->names && a->names[i]);
        if (!np)
            return FAIL(r, CHAT_E_RUNTIME, "loop.cycle() takes at least one argument");
        *out = *arg(a, self.u.loop->index0 % np, NULL);
        return 0;
    }
    }
    return FAIL(r, CHAT_E_RUNTIME, "unknown function");
}

/* ---- tests ---- */

int chat__jinja_test(struct render *r, int id, struct jinja_value v, const struct args *a,
                     bool *out)
{
    const struct jinja_value *x = arg(a, 0, NULL);
    int rc, c = 0, eq = 0;
    bool in = false;
    switch (id) {
    case JT_DEFINED: *out = v.type != JV_UNDEF; return 0;
    case JT_UNDEFINED: *out = v.type == JV_UNDEF; return 0;
    case JT_NONE: *out = v.type == JV_NONE; return 0;
    case JT_STRING: *out = v.type == JV_STR; return 0;
    case JT_NUMBER: *out = is_num(v); return 0;
    case JT_INTEGER: *out = v.type == JV_INT; return 0;
    case JT_FLOAT: *out = v.type == JV_FLOAT; return 0;
    case JT_BOOLEAN: *out = v.type == JV_BOOL; return 0;
    case JT_TRUE: *out = v.type == JV_BOOL && v.u.b; return 0;
    case JT_FALSE: *out = v.type == JV_BOOL && !v.u.b; return 0;
    case JT_MAPPING: *out = v.type == JV_DICT; return 0;
    /* Jinja's Undefined is iterable (empty) */
    case JT_ITERABLE:
        *out = v.type == JV_LIST || v.type == JV_DICT || v.type == JV_STR || v.type == JV_UNDEF;
        return 0;
    case JT_SEQUENCE: *out = v.type == JV_LIST || v.type == JV_DICT || v.type == JV_STR; return 0;
    case JT_CALLABLE: *out = v.type == JV_FUNC || v.type == JV_MACRO; return 0;
    case JT_ODD:
    case JT_EVEN:
        if (!is_int(v))
            return FAIL(r, CHAT_E_RUNTIME, "odd/even need an integer, not a %s",
                        chat__jinja_type_name(v));
        *out = ((as_int(v) % 2) != 0) == (id == JT_ODD);
        return 0;
    case JT_DIVISIBLEBY:
        if (!is_int(v) || !x || !is_int(*x) || as_int(*x) == 0)
            return FAIL(r, CHAT_E_RUNTIME, "divisibleby needs non-zero integers");
        *out = as_int(*x) == -1 || as_int(v) % as_int(*x) == 0;
        return 0;
    case JT_LOWER:
    case JT_UPPER: {
        if (v.type != JV_STR) {
            *out = false;
            return 0;
        }
        bool ok = true;
        for (size_t i = 0; i < v.u.s.n && ok; i++) {
            char ch = v.u.s.p[i];
            ok = id == JT_LOWER ? !(ch >= 'A' && ch <= 'Z') : !(ch >= 'a' && ch <= 'z');
        }
        *out = ok;
        return 0;
    }
    case JT_SAMEAS:
        if (!x)
            return FAIL(r, CHAT_E_RUNTIME, "sameas needs an argument");
        if (v.type != x->type || v.type == JV_STR || v.type == JV_LIST || v.type == JV_DICT)
            *out = v.type == x->type &&
                   ((v.type == JV_STR && v.u.s.p == x->u.s.p && v.u.s.n == x->u.s.n) ||
                    (v.type == JV_LIST && v.u.list == x->u.list) ||
                    (v.type == JV_DICT && v.u.dict == x->u.dict));
        else if ((rc = chat__jinja_equal(r, v, *x, &eq)))
            return rc;
        else
            *out = eq;
        return 0;
    }
    if (!x)
        return FAIL(r, CHAT_E_RUNTIME, "this test needs an argument");
    switch (id) {
    case JT_EQ:
    case JT_NE:
        if ((rc = chat__jinja_equal(r, v, *x, &eq)))
            return rc;
        *out = id == JT_EQ ? eq : !eq;
        return 0;
    case JT_LT:
    case JT_LE:
    case JT_GT:
    case JT_GE:
        if ((rc = chat__jinja_compare(r, v, *x, false, &c)))
            return rc;
        *out = id == JT_LT ? c < 0 : id == JT_LE ? c <= 0 : id == JT_GT ? c > 0 : c >= 0;
        return 0;
    case JT_IN:
        if ((rc = chat__jinja_contains(r, v, *x, &in)))
            return rc;
        *out = in;
        return 0;
    }
    return FAIL(r, CHAT_E_RUNTIME, "unknown test");
}

/* ---- filters ---- */

/* Stable merge sort of items by key (an attribute path or the item), Python's sorted(). */
/* pair_key: for lists of [key, value] pairs, sort by the key (0) or the value (1); -1: off */
static int sort_items(struct render *r, const struct jinja_list *in, bool reverse, bool ci,
                      const struct jinja_value *attr, int pair_key, struct jinja_value *out)
{
    size_t n = in->n;
    struct jinja_value *keys = chat__jinja_alloc(r, (n ? n : 1) * sizeof(*keys));
    size_t *idx = chat__jinja_alloc(r, (n ? n : 1) * sizeof(*idx) * 2);
    struct jinja_list *l = chat__jinja_list_new(r, n);
    if (!keys || !idx || !l)
        return r->rc;
    int rc;
    for (size_t i = 0; i < n; i++) {
        keys[i] = in->v[i];
        if (attr && attr->type == JV_STR &&
            (rc = chat__jinja_attr_path(r, in->v[i], attr->u.s.p, attr->u.s.n, &keys[i])))
            return rc;
        if (pair_key >= 0 && keys[i].type == JV_LIST && keys[i].u.list->n == 2 && !attr)
            keys[i] = keys[i].u.list->v[pair_key];
        idx[i] = i;
    }
    size_t *tmp = idx + n;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c;
                if (++r->steps > r->in->max_steps)
                    return FAIL(r, CHAT_E_LIMIT, "the template ran for more than %llu steps",
                                (unsigned long long)r->in->max_steps);
                if ((rc = chat__jinja_compare(r, keys[idx[j]], keys[idx[i]], ci, &c)))
                    return rc;
                if (reverse)
                    c = -c;
                tmp[k++] = c < 0 ? idx[j++] : idx[i++];
            }
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(*idx));
    }
    for (size_t i = 0; i < n; i++)
        l->v[l->n++] = in->v[idx[i]];
    *out = list_value(l);
    return 0;
}

static int to_int(struct jinja_value v, int64_t def, int64_t *out)
{
    *out = def;
    if (is_int(v)) {
        *out = as_int(v);
    } else if (v.type == JV_FLOAT) {
        if (v.u.f == v.u.f && fabs(v.u.f) < 9.2e18)
            *out = (int64_t)v.u.f;
    } else if (v.type == JV_STR && v.u.s.n < 64) {
        char buf[64];
        memcpy(buf, v.u.s.p, v.u.s.n);
        buf[v.u.s.n] = 0;
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        while (*end && py_space((unsigned char)*end))
            end++;
        if (end != buf && !*end && errno != ERANGE) {
            *out = x;
        } else {
            double d = strtod(buf, &end);
            while (*end && py_space((unsigned char)*end))
                end++;
            if (end != buf && !*end && d == d && fabs(d) < 9.2e18)
                *out = (int64_t)d;
        }
    }
    return 0;
}

static double to_float(struct jinja_value v, double def)
{
    if (is_num(v))
        return as_f(v);
    if (v.type == JV_STR && v.u.s.n < 64) {
        char buf[64], *end;
        memcpy(buf, v.u.s.p, v.u.s.n);
        buf[v.u.s.n] = 0;
        double d = strtod(buf, &end);
        while (*end && py_space((unsigned char)*end))
            end++;
        if (end != buf && !*end)
            return d;
    }
    return def;
}

static int indent(struct render *r, struct jinja_value s, const struct args *a,
                  struct jinja_value *out)
{
    const struct jinja_value *w = arg(a, 0, "width");
    struct jinja_value pad = V_STR("    ", 4);
    int rc;
    if (w && is_int(*w)) {
        int64_t k = as_int(*w);
        if (k < 0 || k > 256)
            return FAIL(r, CHAT_E_RUNTIME, "indent width out of range");
        char *sp = chat__jinja_alloc(r, (size_t)k + 1);
        if (!sp)
            return r->rc;
        memset(sp, ' ', (size_t)k);
        pad = V_STR(sp, (size_t)k);
    } else if (w && w->type == JV_STR) {
        pad = *w;
    }
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    struct sink k = {.max = r->in->max_output};
    size_t i = 0, line = 0;
    rc = 0;
    while (!rc && i <= s.u.s.n) {
        const char *nl = i < s.u.s.n ? memchr(s.u.s.p + i, '\n', s.u.s.n - i) : NULL;
        size_t e = nl ? (size_t)(nl - s.u.s.p) : s.u.s.n;
        bool empty = e == i;
        if ((line > 0 || first) && (!empty || blank))
            rc = chat__jinja_put(r, &k, pad.u.s.p, pad.u.s.n);
        if (!rc)
            rc = chat__jinja_put(r, &k, s.u.s.p + i, e - i + (nl ? 1 : 0));
        line++;
        if (!nl)
            break;
        i = e + 1;
    }
    if (!rc)
        rc = chat__jinja_str_new(r, k.p ? k.p : "", k.n, out);
    free(k.p);
    return rc;
}

static int escape_html(struct render *r, struct jinja_value s, struct jinja_value *out)
{
    struct sink k = {.max = r->in->max_output};
    int rc = 0;
    for (size_t i = 0; !rc && i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                        : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
        rc = e ? chat__jinja_put_str(r, &k, e) : chat__jinja_put(r, &k, &c, 1);
    }
    if (!rc)
        rc = chat__jinja_str_new(r, k.p ? k.p : "", k.n, out);
    free(k.p);
    return rc;
}

/* select/reject/selectattr/rejectattr: keep items whose (attribute's) test result is `keep`. */
static int select_items(struct render *r, struct jinja_value seq, const struct args *a,
                        bool by_attr, bool keep, struct jinja_value *out)
{
    struct jinja_list *items, *l;
    int rc = chat__jinja_iterate(r, seq, &items);
    if (rc)
        return rc;
    const struct jinja_value *attr = by_attr ? arg(a, 0, NULL) : NULL;
    if (by_attr && (rc = need_str(r, attr, "selectattr/rejectattr")))
        return rc;
    size_t tpos = by_attr ? 1 : 0;
    const struct jinja_value *tname = arg(a, tpos, NULL);
    int test = 0;
    if (tname) {
        if (tname->type != JV_STR)
            return FAIL(r, CHAT_E_RUNTIME, "test name must be a string");
        test = tname->u.s.n == 2 && memcmp(tname->u.s.p, "==", 2) == 0
                   ? JT_EQ : chat__jinja_test_id(tname->u.s.p, tname->u.s.n);
        if (!test)
            return FAIL(r, CHAT_E_RUNTIME, "unknown test '%.*s'", (int)tname->u.s.n,
                        tname->u.s.p);
    }
    struct args targs = args_from(a, tpos + 1);
    if (!(l = chat__jinja_list_new(r, items->n)))
        return r->rc;
    for (size_t i = 0; i < items->n; i++) {
        struct jinja_value v = items->v[i];
        bool t;
        if (by_attr && (rc = chat__jinja_attr_path(r, v, attr->u.s.p, attr->u.s.n, &v)))
            return rc;
        if (test) {
            if ((rc = chat__jinja_test(r, test, v, &targs, &t)))
                return rc;
        } else {
            t = chat__jinja_truthy(v);
        }
        if (t == keep)
            l->v[l->n++] = items->v[i];
    }
    *out = list_value(l);
    return 0;
}

static int map_items(struct render *r, struct jinja_value seq, const struct args *a,
                     struct jinja_value *out)
{
    struct jinja_list *items, *l;
    int rc = chat__jinja_iterate(r, seq, &items);
    if (rc)
        return rc;
    const struct jinja_value *attr = arg(a, SIZE_MAX, "attribute");
    const struct jinja_value *def = arg(a, SIZE_MAX, "default");
    const struct jinja_value *fname = attr ? NULL : arg(a, 0, NULL);
    int filter = 0;
    if (!attr) {
        if (!fname || fname->type != JV_STR)
            return FAIL(r, CHAT_E_RUNTIME, "map() needs attribute= or a filter name");
        if (!(filter = chat__jinja_filter_id(fname->u.s.p, fname->u.s.n)))
            return FAIL(r, CHAT_E_RUNTIME, "unknown filter '%.*s'", (int)fname->u.s.n,
                        fname->u.s.p);
    } else if (attr->type != JV_STR) {
        return FAIL(r, CHAT_E_RUNTIME, "map(attribute=) needs a string");
    }
    struct args fargs = args_from(a, 1);
    if (!(l = chat__jinja_list_new(r, items->n)))
        return r->rc;
    for (size_t i = 0; i < items->n; i++) {
        struct jinja_value v = items->v[i];
        if (attr) {
            rc = chat__jinja_attr_path(r, v, attr->u.s.p, attr->u.s.n, &v);
            if (!rc && v.type == JV_UNDEF && def)
                v = *def;
        } else {
            rc = chat__jinja_filter(r, filter, v, &fargs, &v);
        }
        if (rc)
            return rc;
        l->v[l->n++] = v;
    }
    *out = list_value(l);
    return 0;
}

static int extreme(struct render *r, struct jinja_value seq, const struct args *a, bool max,
                   struct jinja_value *out)
{
    struct jinja_list *items;
    int rc = chat__jinja_iterate(r, seq, &items);
    if (rc)
        return rc;
    bool ci = !arg_bool(a, 0, "case_sensitive", false);
    const struct jinja_value *attr = arg(a, 1, "attribute");
    *out = V_UNDEF;
    struct jinja_value best = V_UNDEF;
    for (size_t i = 0; i < items->n; i++) {
        struct jinja_value k = items->v[i];
        int c;
        if (attr && attr->type == JV_STR && (rc = chat__jinja_attr_path(r, k, attr->u.s.p, attr->u.s.n, &k)))
            return rc;
        if (i == 0) {
            best = k;
            *out = items->v[i];
            continue;
        }
        if ((rc = chat__jinja_compare(r, k, best, ci, &c)))
            return rc;
        if (max ? c > 0 : c < 0) {
            best = k;
            *out = items->v[i];
        }
    }
    return 0;
}

int chat__jinja_filter(struct render *r, int id, struct jinja_value v, const struct args *a,
                       struct jinja_value *out)
{
    const struct jinja_value *a0 = arg(a, 0, NULL);
    struct jinja_value s;
    struct jinja_list *items, *l;
    int rc;
    int64_t iv;
    switch (id) {
    case JF_SAFE:
        *out = v;
        return 0;
    case JF_STRING:
        return chat__jinja_to_str(r, v, out);
    case JF_ESCAPE:
        if ((rc = chat__jinja_to_str(r, v, &s)))
            return rc;
        return escape_html(r, s, out);
    case JF_TRIM:
        if ((rc = chat__jinja_to_str(r, v, &s)))
            return rc;
        *out = strip(s, arg(a, 0, "chars"), 3);
        return 0;
    case JF_UPPER:
    case JF_LOWER:
    case JF_TITLE:
    case JF_CAPITALIZE:
        if ((rc = chat__jinja_to_str(r, v, &s)))
            return rc;
        return change_case(r, s,
                           id == JF_UPPER ? CASE_UPPER : id == JF_LOWER ? CASE_LOWER
                           : id == JF_TITLE ? CASE_TITLE : CASE_CAPITALIZE, out);
    case JF_LENGTH:
        switch (v.type) {
        case JV_STR: *out = V_INT((int64_t)chat__jinja_cp_count(v.u.s.p, v.u.s.n)); return 0;
        case JV_LIST: *out = V_INT((int64_t)v.u.list->n); return 0;
        case JV_DICT: *out = V_INT((int64_t)v.u.dict->n); return 0;
        case JV_UNDEF: *out = V_INT(0); return 0;
        default:
            return FAIL(r, CHAT_E_RUNTIME, "a %s has no length", chat__jinja_type_name(v));
        }
    case JF_DEFAULT: {
        bool boolean = arg_bool(a, 1, "boolean", false);
        const struct jinja_value *d = arg(a, 0, "default_value");
        if (v.type == JV_UNDEF || (boolean && !chat__jinja_truthy(v)))
            *out = d ? *d : V_STR("", 0);
        else
            *out = v;
        return 0;
    }
    case JF_FIRST:
    case JF_LAST:
        if ((rc = chat__jinja_iterate(r, v, &items)))
            return rc;
        *out = items->n ? items->v[id == JF_FIRST ? 0 : items->n - 1] : V_UNDEF;
        return 0;
    case JF_LIST:
        if ((rc = chat__jinja_iterate(r, v, &items)) || !(l = chat__jinja_list_new(r, items->n)))
            return rc ? rc : r->rc;
        for (size_t i = 0; i < items->n; i++)
            l->v[l->n++] = items->v[i];
        *out = list_value(l);
        return 0;
    case JF_JOIN:
        s = V_STR("", 0);
        if ((a0 = arg(a, 0, "d")) && (rc = chat__jinja_to_str(r, *a0, &s)))
            return rc;
        return join(r, v, s, arg(a, 1, "attribute"), out);
    case JF_INT: {
        const struct jinja_value *d = arg(a, 0, "default");
        to_int(v, d && is_int(*d) ? as_int(*d) : 0, &iv);
        *out = V_INT(iv);
        return 0;
    }
    case JF_FLOAT: {
        const struct jinja_value *d = arg(a, 0, "default");
        *out = V_FLOAT(to_float(v, d && is_num(*d) ? as_f(*d) : 0.0));
        return 0;
    }
    case JF_ABS:
        if (is_int(v)) {
            if (as_int(v) == INT64_MIN)
                return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            *out = V_INT(as_int(v) < 0 ? -as_int(v) : as_int(v));
        } else if (v.type == JV_FLOAT) {
            *out = V_FLOAT(fabs(v.u.f));
        } else {
            return FAIL(r, CHAT_E_RUNTIME, "abs of a %s", chat__jinja_type_name(v));
        }
        return 0;
    case JF_ROUND: {
        if (!is_num(v))
            return FAIL(r, CHAT_E_RUNTIME, "round of a %s", chat__jinja_type_name(v));
        const struct jinja_value *pr = arg(a, 0, "precision"), *m = arg(a, 1, "method");
        int64_t prec = pr && is_int(*pr) ? as_int(*pr) : 0;
        if (prec < -20 || prec > 20)
            return FAIL(r, CHAT_E_RUNTIME, "round precision out of range");
        double scale = pow(10.0, (double)prec), x = as_f(v) * scale;
        if (m && m->type == JV_STR && m->u.s.n == 5 && memcmp(m->u.s.p, "floor", 5) == 0)
            x = floor(x);
        else if (m && m->type == JV_STR && m->u.s.n == 4 && memcmp(m->u.s.p, "ceil", 4) == 0)
            x = ceil(x);
        else
            x = round(x);
        *out = V_FLOAT(x / scale);
        return 0;
    }
    case JF_TOJSON: {
        const struct jinja_value *ind = arg(a, 0, "indent");
        int n = -1;
        if (ind && is_int(*ind)) {
            if (as_int(*ind) < 0 || as_int(*ind) > 32)
                return FAIL(r, CHAT_E_RUNTIME, "tojson indent out of range");
            n = (int)as_int(*ind);
        }
        return chat__jinja_to_json(r, v, n, out);
    }
    case JF_REPLACE: {
        const struct jinja_value *from = arg(a, 0, "old"), *to = arg(a, 1, "new");
        const struct jinja_value *cnt = arg(a, 2, "count");
        struct jinja_value fs, ts;
        if (!from || !to)
            return FAIL(r, CHAT_E_RUNTIME, "replace() takes two strings");
        if ((rc = chat__jinja_to_str(r, v, &s)) || (rc = chat__jinja_to_str(r, *from, &fs)) || (rc = chat__jinja_to_str(r, *to, &ts)))
            return rc;
        return replace(r, s, fs, ts, cnt && is_int(*cnt) ? as_int(*cnt) : -1, out);
    }
    case JF_ITEMS:
        if (v.type == JV_UNDEF) {
            if (!(l = chat__jinja_list_new(r, 0)))
                return r->rc;
            *out = list_value(l);
            return 0;
        }
        if (v.type != JV_DICT)
            return FAIL(r, CHAT_E_RUNTIME, "items of a %s", chat__jinja_type_name(v));
        return dict_items(r, v.u.dict, M_ITEMS, out);
    case JF_DICTSORT: {
        if (v.type != JV_DICT)
            return FAIL(r, CHAT_E_RUNTIME, "dictsort of a %s", chat__jinja_type_name(v));
        struct jinja_value pairs;
        const struct jinja_value *by = arg(a, 1, "by");
        bool by_value = by && by->type == JV_STR && by->u.s.n == 5 && memcmp(by->u.s.p, "value", 5) == 0;
        if ((rc = dict_items(r, v.u.dict, M_ITEMS, &pairs)))
            return rc;
        return sort_items(r, pairs.u.list, arg_bool(a, 2, "reverse", false),
                          !arg_bool(a, 0, "case_sensitive", false), NULL, by_value ? 1 : 0, out);
    }
    case JF_SORT:
        if ((rc = chat__jinja_iterate(r, v, &items)))
            return rc;
        return sort_items(r, items, arg_bool(a, 0, "reverse", false),
                          !arg_bool(a, 1, "case_sensitive", false), arg(a, 2, "attribute"), -1,
                          out);
    case JF_REVERSE:
        if (v.type == JV_STR) {
            struct jinja_value step = V_INT(-1);
            return chat__jinja_slice(r, v, V_NONE, V_NONE, step, out);
        }
        if ((rc = chat__jinja_iterate(r, v, &items)) || !(l = chat__jinja_list_new(r, items->n)))
            return rc ? rc : r->rc;
        for (size_t i = items->n; i-- > 0;)
            l->v[l->n++] = items->v[i];
        *out = list_value(l);
        return 0;
    case JF_UNIQUE: {
        bool ci = !arg_bool(a, 0, "case_sensitive", false);
        if ((rc = chat__jinja_iterate(r, v, &items)) || !(l = chat__jinja_list_new(r, items->n)))
            return rc ? rc : r->rc;
        for (size_t i = 0; i < items->n; i++) {
            bool seen = false;
            for (size_t k = 0; k < l->n && !seen; k++) {
                int eq = 0, c = 1;
                if (ci && items->v[i].type == JV_STR && l->v[k].type == JV_STR) {
                    if ((rc = chat__jinja_compare(r, items->v[i], l->v[k], true, &c)))
                        return rc;
                    seen = c == 0;
                } else {
                    if ((rc = chat__jinja_equal(r, items->v[i], l->v[k], &eq)))
                        return rc;
                    seen = eq;
                }
            }
            if (!seen)
                l->v[l->n++] = items->v[i];
        }
        *out = list_value(l);
        return 0;
    }
    case JF_MAX:
    case JF_MIN:
        return extreme(r, v, a, id == JF_MAX, out);
    case JF_SUM: {
        const struct jinja_value *attr = arg(a, 0, "attribute"), *start = arg(a, 1, "start");
        struct jinja_value acc = start ? *start : V_INT(0);
        if ((rc = chat__jinja_iterate(r, v, &items)))
            return rc;
        for (size_t i = 0; i < items->n; i++) {
            struct jinja_value x = items->v[i];
            if (attr && attr->type == JV_STR &&
                (rc = chat__jinja_attr_path(r, x, attr->u.s.p, attr->u.s.n, &x)))
                return rc;
            if ((rc = chat__jinja_binop(r, JB_ADD, acc, x, &acc)))
                return rc;
        }
        *out = acc;
        return 0;
    }
    case JF_ATTR:
        if ((rc = need_str(r, a0, "attr")))
            return rc;
        return chat__jinja_getattr(r, v, a0->u.s.p, a0->u.s.n, out);
    case JF_SELECT:
    case JF_REJECT:
        return select_items(r, v, a, false, id == JF_SELECT, out);
    case JF_SELECTATTR:
    case JF_REJECTATTR:
        return select_items(r, v, a, true, id == JF_SELECTATTR, out);
    case JF_MAP:
        return map_items(r, v, a, out);
    case JF_INDENT:
        if ((rc = chat__jinja_to_str(r, v, &s)))
            return rc;
        return indent(r, s, a, out);
    case JF_WORDCOUNT: {
        if ((rc = chat__jinja_to_str(r, v, &s)))
            return rc;
        int64_t words = 0;
        bool in_word = false;
        for (size_t i = 0; i < s.u.s.n; i++) {
            unsigned char c = (unsigned char)s.u.s.p[i];
            bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || c >= 0x80;
            words += w && !in_word;
            in_word = w;
        }
        *out = V_INT(words);
        return 0;
    }
    }
    return FAIL(r, CHAT_E_RUNTIME, "unknown filter");
}
