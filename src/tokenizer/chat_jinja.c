/* Jinja subset: the evaluator (scopes, statements, expressions, calls) over the syntax tree. */
#include "tokenizer/chat_jinja_eval.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors, limits, memory ---- */

int chat__jinja_fail(struct render *r, int rc, const char *fmt, ...)
{
    if (!r->rc) {
        r->rc = rc;
        if (r->err && r->errlen) {
            int k = snprintf(r->err, r->errlen, "line %d: ", r->line);
            if (k > 0 && (size_t)k < r->errlen) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
                va_end(ap);
            }
        }
    }
    return rc;
}

void *chat__jinja_alloc(struct render *r, size_t n)
{
    void *p = chat__arena_alloc(&r->arena, n ? n : 1);
    if (!p) {
        if (r->arena.hit_cap)
            chat__jinja_fail(r, CHAT_E_LIMIT, "the template used more than %zu bytes of memory",
                             r->arena.cap);
        else
            chat__jinja_fail(r, CHAT_E_NOMEM, "out of memory");
    }
    return p;
}

int chat__jinja_enter(struct render *r)
{
    if (++r->depth > JINJA_MAX_EVAL_DEPTH)
        return FAIL(r, CHAT_E_LIMIT, "template nested too deeply (recursion?)");
    if (++r->steps > r->in->max_steps)
        return FAIL(r, CHAT_E_LIMIT, "the template ran for more than %llu steps",
                    (unsigned long long)r->in->max_steps);
    return 0;
}

/* ---- output sinks ---- */

int chat__jinja_put(struct render *r, struct sink *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > s->max || s->n > s->max - n)
        return FAIL(r, CHAT_E_LIMIT, "output longer than %zu bytes", s->max);
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1)
            cap *= 2;
        if (cap > s->max + 1)
            cap = s->max + 1;
        char *np = realloc(s->p, cap);
        if (!np)
            return FAIL(r, CHAT_E_NOMEM, "out of memory");
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = 0;
    return 0;
}

/* Moves a sink's text into an arena string and frees the sink. */
static int sink_take(struct render *r, struct sink *s, struct jinja_value *out)
{
    int rc = chat__jinja_str_new(r, s->p ? s->p : "", s->n, out);
    free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
    return rc;
}

/* ---- values ---- */

int chat__jinja_str_new(struct render *r, const char *p, size_t n, struct jinja_value *out)
{
    char *d = chat__jinja_alloc(r, n + 1);
    if (!d)
        return r->rc;
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    *out = V_STR(d, n);
    return 0;
}

struct jinja_list *chat__jinja_list_new(struct render *r, size_t cap)
{
    struct jinja_list *l = chat__jinja_alloc(r, sizeof(*l));
    if (!l)
        return NULL;
    l->n = 0;
    l->cap = cap;
    l->tuple = false;
    l->v = cap ? chat__jinja_alloc(r, cap * sizeof(*l->v)) : NULL;
    if (cap && !l->v)
        return NULL;
    return l;
}

int chat__jinja_list_push(struct render *r, struct jinja_list *l, struct jinja_value v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct jinja_value *nv = chat__jinja_alloc(r, cap * sizeof(*nv));
        if (!nv)
            return r->rc;
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

struct jinja_dict *chat__jinja_dict_new(struct render *r, bool ns)
{
    struct jinja_dict *d = chat__jinja_alloc(r, sizeof(*d));
    if (!d)
        return NULL;
    memset(d, 0, sizeof(*d));
    d->ns = ns;
    return d;
}

static int key_match(struct jinja_value k, const char *p, size_t n)
{
    return k.type == JV_STR && k.u.s.n == n && memcmp(k.u.s.p, p, n) == 0;
}

struct jinja_value *chat__jinja_dict_find(const struct jinja_dict *d, const char *p, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_match(d->k[i], p, n))
            return &d->v[i];
    return NULL;
}

int chat__jinja_dict_set(struct render *r, struct jinja_dict *d, struct jinja_value key,
                         struct jinja_value v)
{
    for (size_t i = 0; i < d->n; i++) {
        int eq = 0;
        int rc = chat__jinja_equal(r, d->k[i], key, &eq);
        if (rc)
            return rc;
        if (eq) {
            d->v[i] = v;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        struct jinja_value *nk = chat__jinja_alloc(r, cap * sizeof(*nk));
        struct jinja_value *nv = chat__jinja_alloc(r, cap * sizeof(*nv));
        if (!nk || !nv)
            return r->rc;
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(*nk));
            memcpy(nv, d->v, d->n * sizeof(*nv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n] = v;
    d->n++;
    return 0;
}

int chat__jinja_func(struct render *r, int id, struct jinja_value self, struct jinja_value *out)
{
    struct jinja_func *fn = chat__jinja_alloc(r, sizeof(*fn));
    if (!fn)
        return r->rc;
    fn->id = id;
    fn->self = self;
    *out = (struct jinja_value){.type = JV_FUNC, .u.func = fn};
    return 0;
}

/* ---- scopes ---- */

static int frame_set(struct render *r, struct frame *f, const char *p, size_t n,
                     struct jinja_value v)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].n == n && memcmp(f->vars[i].p, p, n) == 0) {
            f->vars[i].v = v;
            return 0;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct var *nv = chat__jinja_alloc(r, cap * sizeof(*nv));
        if (!nv)
            return r->rc;
        if (f->n)
            memcpy(nv, f->vars, f->n * sizeof(*nv));
        f->vars = nv;
        f->cap = cap;
    }
    f->vars[f->n++] = (struct var){p, n, v};
    return 0;
}

static const struct {
    const char *name;
    int id;
} global_funcs[] = {
    {"raise_exception", FN_RAISE}, {"range", FN_RANGE}, {"namespace", FN_NAMESPACE},
    {"strftime_now", FN_STRFTIME}, {"dict", FN_DICT},
};

static int lookup(struct render *r, struct frame *f, const char *p, size_t n,
                  struct jinja_value *out)
{
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->vars[i].n == n && memcmp(f->vars[i].p, p, n) == 0) {
                *out = f->vars[i].v;
                return 0;
            }
    for (size_t i = 0; i < sizeof(global_funcs) / sizeof(global_funcs[0]); i++)
        if (strlen(global_funcs[i].name) == n && memcmp(global_funcs[i].name, p, n) == 0)
            return chat__jinja_func(r, global_funcs[i].id, V_UNDEF, out);
    *out = V_UNDEF;
    return 0;
}

/* ---- expressions ---- */

static int eval_args(struct render *r, struct frame *f, const struct jinja_node *nd,
                     struct args *a)
{
    a->n = nd->n_kids;
    a->names = nd->names;
    a->v = NULL;
    if (!a->n)
        return 0;
    a->v = chat__jinja_alloc(r, a->n * sizeof(*a->v));
    if (!a->v)
        return r->rc;
    for (size_t i = 0; i < a->n; i++) {
        int rc = chat__jinja_eval(r, f, nd->kids[i], &a->v[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int exec_body(struct render *r, struct frame *f, const struct jinja_node *body,
                     struct sink *s);

static int call_macro(struct render *r, const struct jinja_node *m, const struct args *a,
                      struct jinja_value *out)
{
    struct frame mf = {.parent = r->root};
    size_t n_params = m->n_names - 1, pos = 0;
    int rc;
    for (size_t i = 0; i < a->n; i++) {
        if (a->names && a->names[i]) {
            size_t k;
            for (k = 0; k < n_params; k++)
                if (strcmp(m->names[k + 1], a->names[i]) == 0)
                    break;
            if (k == n_params)
                return FAIL(r, CHAT_E_RUNTIME, "macro '%s' has no parameter '%s'", m->names[0],
                            a->names[i]);
            if ((rc = frame_set(r, &mf, m->names[k + 1], strlen(m->names[k + 1]), a->v[i])))
                return rc;
        } else {
            if (pos >= n_params)
                return FAIL(r, CHAT_E_RUNTIME, "too many arguments for macro '%s'",
                            m->names[0]);
            if ((rc = frame_set(r, &mf, m->names[pos + 1], strlen(m->names[pos + 1]), a->v[i])))
                return rc;
            pos++;
        }
    }
    /* parameters not passed: their default, evaluated in the macro's scope, or undefined */
    for (size_t k = 0; k < n_params; k++) {
        const char *pn = m->names[k + 1];
        size_t pl = strlen(pn), i;
        for (i = 0; i < mf.n; i++)
            if (mf.vars[i].n == pl && memcmp(mf.vars[i].p, pn, pl) == 0)
                break;
        if (i < mf.n)
            continue;
        struct jinja_value v = V_UNDEF;
        if (m->kids2[k] && (rc = chat__jinja_eval(r, &mf, m->kids2[k], &v)))
            return rc;
        if ((rc = frame_set(r, &mf, pn, pl, v)))
            return rc;
    }
    struct sink cap = {.max = r->in->max_output};
    rc = exec_body(r, &mf, m->c, &cap);
    if (rc > 0)
        rc = 0;
    if (!rc)
        rc = sink_take(r, &cap, out);
    free(cap.p);
    return rc;
}

static int eval_call(struct render *r, struct frame *f, const struct jinja_node *nd,
                     struct jinja_value *out)
{
    struct jinja_value callee, obj = V_UNDEF;
    struct args a;
    int rc;
    if (nd->a->kind == JN_GETATTR) { /* a method: keep the object for the error message */
        if ((rc = chat__jinja_eval(r, f, nd->a->a, &obj)) ||
            (rc = chat__jinja_getattr(r, obj, nd->a->s, nd->a->n, &callee)))
            return rc;
    } else if ((rc = chat__jinja_eval(r, f, nd->a, &callee))) {
        return rc;
    }
    if ((rc = eval_args(r, f, nd, &a)))
        return rc;
    r->line = nd->line;
    if (callee.type == JV_FUNC)
        return chat__jinja_call_builtin(r, callee.u.func, &a, out);
    if (callee.type == JV_MACRO)
        return call_macro(r, callee.u.macro, &a, out);
    if (nd->a->kind == JN_NAME)
        return FAIL(r, CHAT_E_RUNTIME, "'%.*s' is not a function", (int)nd->a->n, nd->a->s);
    if (nd->a->kind == JN_GETATTR)
        return FAIL(r, CHAT_E_RUNTIME, "unsupported method '%.*s' of a %s", (int)nd->a->n,
                    nd->a->s, chat__jinja_type_name(obj));
    return FAIL(r, CHAT_E_RUNTIME, "a %s is not callable", chat__jinja_type_name(callee));
}

static int eval_binary(struct render *r, struct frame *f, const struct jinja_node *nd,
                       struct jinja_value *out)
{
    struct jinja_value a, b;
    int rc = chat__jinja_eval(r, f, nd->a, &a);
    if (rc)
        return rc;
    if (nd->op == JB_AND || nd->op == JB_OR) { /* short-circuit, returning an operand */
        bool t = chat__jinja_truthy(a);
        if ((nd->op == JB_AND && !t) || (nd->op == JB_OR && t)) {
            *out = a;
            return 0;
        }
        return chat__jinja_eval(r, f, nd->b, out);
    }
    if ((rc = chat__jinja_eval(r, f, nd->b, &b)))
        return rc;
    r->line = nd->line;
    return chat__jinja_binop(r, nd->op, a, b, out);
}

static int eval_inner(struct render *r, struct frame *f, const struct jinja_node *nd,
                      struct jinja_value *out)
{
    struct jinja_value a, b, c, d;
    struct args args;
    int rc;
    switch (nd->kind) {
    case JN_LITERAL:
        *out = nd->lit;
        return 0;
    case JN_NAME:
        return lookup(r, f, nd->s, nd->n, out);
    case JN_GETATTR:
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)))
            return rc;
        r->line = nd->line;
        return chat__jinja_getattr(r, a, nd->s, nd->n, out);
    case JN_GETITEM:
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)) || (rc = chat__jinja_eval(r, f, nd->b, &b)))
            return rc;
        r->line = nd->line;
        return chat__jinja_getitem(r, a, b, out);
    case JN_SLICE:
        b = c = d = V_NONE;
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)) ||
            (nd->b && (rc = chat__jinja_eval(r, f, nd->b, &b))) ||
            (nd->c && (rc = chat__jinja_eval(r, f, nd->c, &c))) ||
            (nd->d && (rc = chat__jinja_eval(r, f, nd->d, &d))))
            return rc;
        r->line = nd->line;
        return chat__jinja_slice(r, a, b, c, d, out);
    case JN_CALL:
        return eval_call(r, f, nd, out);
    case JN_FILTER:
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)) || (rc = eval_args(r, f, nd, &args)))
            return rc;
        r->line = nd->line;
        return chat__jinja_filter(r, nd->op, a, &args, out);
    case JN_TEST: {
        bool t;
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)) || (rc = eval_args(r, f, nd, &args)))
            return rc;
        r->line = nd->line;
        if ((rc = chat__jinja_test(r, nd->op, a, &args, &t)))
            return rc;
        *out = V_BOOL(nd->flags ? !t : t);
        return 0;
    }
    case JN_UNARY:
        if ((rc = chat__jinja_eval(r, f, nd->a, &a)))
            return rc;
        r->line = nd->line;
        if (nd->op == '!') {
            *out = V_BOOL(!chat__jinja_truthy(a));
            return 0;
        }
        if (a.type == JV_INT || a.type == JV_BOOL) {
            int64_t i = a.type == JV_BOOL ? a.u.b : a.u.i;
            if (nd->op == '-' && i == INT64_MIN)
                return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            *out = V_INT(nd->op == '-' ? -i : i);
            return 0;
        }
        if (a.type == JV_FLOAT) {
            *out = V_FLOAT(nd->op == '-' ? -a.u.f : a.u.f);
            return 0;
        }
        return FAIL(r, CHAT_E_RUNTIME, "bad operand for unary %c: %s", nd->op,
                    chat__jinja_type_name(a));
    case JN_BINARY:
        return eval_binary(r, f, nd, out);
    case JN_COND:
        if ((rc = chat__jinja_eval(r, f, nd->b, &b)))
            return rc;
        if (chat__jinja_truthy(b))
            return chat__jinja_eval(r, f, nd->a, out);
        if (nd->c)
            return chat__jinja_eval(r, f, nd->c, out);
        *out = V_UNDEF;
        return 0;
    case JN_LIST: {
        struct jinja_list *l = chat__jinja_list_new(r, nd->n_kids);
        if (!l)
            return r->rc;
        for (size_t i = 0; i < nd->n_kids; i++) {
            if ((rc = chat__jinja_eval(r, f, nd->kids[i], &l->v[i])))
                return rc;
            l->n++;
        }
        l->tuple = nd->flags != 0;
        *out = (struct jinja_value){.type = JV_LIST, .u.list = l};
        return 0;
    }
    case JN_DICT: {
        struct jinja_dict *dict = chat__jinja_dict_new(r, false);
        if (!dict)
            return r->rc;
        for (size_t i = 0; i < nd->n_kids; i++) {
            if ((rc = chat__jinja_eval(r, f, nd->kids[i], &a)) ||
                (rc = chat__jinja_eval(r, f, nd->kids2[i], &b)) ||
                (rc = chat__jinja_dict_set(r, dict, a, b)))
                return rc;
        }
        *out = (struct jinja_value){.type = JV_DICT, .u.dict = dict};
        return 0;
    }
    default:
        return FAIL(r, CHAT_E_RUNTIME, "not an expression");
    }
}

int chat__jinja_eval(struct render *r, struct frame *f, const struct jinja_node *nd,
                     struct jinja_value *out)
{
    r->line = nd->line;
    int rc = chat__jinja_enter(r);
    if (!rc)
        rc = eval_inner(r, f, nd, out);
    r->depth--;
    return rc;
}

/* ---- statements ---- */

/* The body's output as a string, for set blocks and filter blocks. */
static int capture(struct render *r, struct frame *f, const struct jinja_node *body,
                   struct jinja_value *out)
{
    struct sink cap = {.max = r->in->max_output};
    int rc = exec_body(r, f, body, &cap);
    if (!rc)
        rc = sink_take(r, &cap, out);
    free(cap.p);
    return rc;
}

static int apply_filters(struct render *r, struct frame *f, const struct jinja_node *nd,
                         struct jinja_value *v)
{
    for (size_t i = 0; i < nd->n_kids; i++) {
        struct args a;
        int rc = eval_args(r, f, nd->kids[i], &a);
        if (rc || (rc = chat__jinja_filter(r, nd->kids[i]->op, *v, &a, v)))
            return rc;
    }
    return 0;
}

/* Binds a loop item to one name, or unpacks a pair into two. */
static int unpack(struct render *r, struct frame *f, const struct jinja_node *nd,
                  struct jinja_value item)
{
    const char *n0 = nd->names[0];
    if (nd->n_names == 1)
        return frame_set(r, f, n0, strlen(n0), item);
    const char *n1 = nd->names[1];
    if (item.type != JV_LIST || item.u.list->n != 2)
        return FAIL(r, CHAT_E_RUNTIME, "cannot unpack a %s into two loop variables",
                    chat__jinja_type_name(item));
    int rc = frame_set(r, f, n0, strlen(n0), item.u.list->v[0]);
    return rc ? rc : frame_set(r, f, n1, strlen(n1), item.u.list->v[1]);
}

static int exec_for(struct render *r, struct frame *f, const struct jinja_node *nd,
                    struct sink *s)
{
    struct jinja_value it;
    struct jinja_list *items;
    int rc = chat__jinja_eval(r, f, nd->a, &it);
    if (rc || (rc = chat__jinja_iterate(r, it, &items)))
        return rc;
    struct frame lf = {.parent = f};
    if (nd->b) { /* `for x in xs if cond`: the loop runs over the filtered items */
        struct jinja_list *kept = chat__jinja_list_new(r, items->n);
        if (!kept)
            return r->rc;
        for (size_t i = 0; i < items->n; i++) {
            struct jinja_value cond;
            lf.n = 0;
            if ((rc = unpack(r, &lf, nd, items->v[i])) ||
                (rc = chat__jinja_eval(r, &lf, nd->b, &cond)))
                return rc;
            if (chat__jinja_truthy(cond))
                kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    struct jinja_loop *loop = chat__jinja_alloc(r, sizeof(*loop));
    if (!loop)
        return r->rc;
    loop->seq = items;
    struct jinja_value loopv = {.type = JV_LOOP, .u.loop = loop};
    for (size_t i = 0; i < items->n; i++) {
        r->line = nd->line;
        if (++r->steps > r->in->max_steps)
            return FAIL(r, CHAT_E_LIMIT, "the template ran for more than %llu steps",
                        (unsigned long long)r->in->max_steps);
        loop->index0 = i;
        lf.n = 0; /* assignments in the body do not outlive an iteration (Jinja scoping) */
        if ((rc = unpack(r, &lf, nd, items->v[i])) ||
            (rc = frame_set(r, &lf, "loop", 4, loopv)))
            return rc;
        rc = exec_body(r, &lf, nd->c, s);
        if (rc == CTRL_BREAK)
            break;
        if (rc < 0)
            return rc;
    }
    if (items->n == 0 && nd->d)
        return exec_body(r, f, nd->d, s);
    return 0;
}

static int exec_set(struct render *r, struct frame *f, const struct jinja_node *nd)
{
    struct jinja_value v;
    int rc;
    if (nd->kind == JN_SET_BLOCK) {
        if ((rc = capture(r, f, nd->c, &v)) || (rc = apply_filters(r, f, nd, &v)))
            return rc;
    } else if ((rc = chat__jinja_eval(r, f, nd->a, &v))) {
        return rc;
    }
    r->line = nd->line;
    const char *name = nd->names[0];
    if (!nd->s)
        return frame_set(r, f, name, strlen(name), v);
    struct jinja_value ns;
    if ((rc = lookup(r, f, name, strlen(name), &ns)))
        return rc;
    if (ns.type != JV_DICT || !ns.u.dict->ns)
        return FAIL(r, CHAT_E_RUNTIME, "cannot set an attribute of '%s': not a namespace", name);
    return chat__jinja_dict_set(r, ns.u.dict, V_STR(nd->s, nd->n), v);
}

static int exec(struct render *r, struct frame *f, const struct jinja_node *nd, struct sink *s)
{
    struct jinja_value v;
    int rc;
    switch (nd->kind) {
    case JN_TEXT:
        return chat__jinja_put(r, s, nd->s, nd->n);
    case JN_OUTPUT:
        if ((rc = chat__jinja_eval(r, f, nd->a, &v)))
            return rc;
        return chat__jinja_write(r, s, v, false);
    case JN_IF:
        for (size_t i = 0; i < nd->n_kids; i++) {
            if ((rc = chat__jinja_eval(r, f, nd->kids[i], &v)))
                return rc;
            if (chat__jinja_truthy(v))
                return exec_body(r, f, nd->kids2[i], s);
        }
        return nd->c ? exec_body(r, f, nd->c, s) : 0;
    case JN_FOR:
        return exec_for(r, f, nd, s);
    case JN_SET:
    case JN_SET_BLOCK:
        return exec_set(r, f, nd);
    case JN_MACRO:
        return frame_set(r, f, nd->names[0], strlen(nd->names[0]),
                         (struct jinja_value){.type = JV_MACRO, .u.macro = nd});
    case JN_FILTER_BLOCK:
        if ((rc = capture(r, f, nd->c, &v)) || (rc = apply_filters(r, f, nd, &v)))
            return rc;
        return chat__jinja_write(r, s, v, false);
    case JN_BREAK:
        return CTRL_BREAK;
    case JN_CONTINUE:
        return CTRL_CONTINUE;
    case JN_BODY:
        return exec_body(r, f, nd, s);
    default:
        return FAIL(r, CHAT_E_RUNTIME, "not a statement");
    }
}

static int exec_body(struct render *r, struct frame *f, const struct jinja_node *body,
                     struct sink *s)
{
    for (size_t i = 0; i < body->n_kids; i++) {
        const struct jinja_node *nd = body->kids[i];
        r->line = nd->line;
        int rc = chat__jinja_enter(r);
        if (!rc)
            rc = exec(r, f, nd, s);
        r->depth--;
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- entry ---- */

int chat__jinja_render(const struct jinja_program *p, const struct jinja_input *in, char **out,
                       size_t *out_len, char *errbuf, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (errbuf && errlen)
        errbuf[0] = 0;
    struct render r = {.in = in, .err = errbuf, .errlen = errlen, .line = 1};
    r.arena.cap = in->max_memory;
    struct frame globals = {0}, root = {.parent = &globals};
    r.root = &root;
    struct sink s = {.max = in->max_output};
    int rc;
    struct jinja_list *msgs = chat__jinja_list_new(&r, in->n_messages);
    if (!msgs) {
        rc = r.rc;
        goto out;
    }
    for (size_t i = 0; i < in->n_messages; i++) {
        struct jinja_dict *m = chat__jinja_dict_new(&r, false);
        const struct chat_message *cm = &in->messages[i];
        if (!m) {
            rc = r.rc;
            goto out;
        }
        if ((rc = chat__jinja_dict_set(&r, m, V_STR("role", 4),
                                       V_STR(cm->role, strlen(cm->role)))) ||
            (rc = chat__jinja_dict_set(&r, m, V_STR("content", 7),
                                       V_STR(cm->content, strlen(cm->content)))))
            goto out;
        msgs->v[msgs->n++] = (struct jinja_value){.type = JV_DICT, .u.dict = m};
    }
    const char *bos = in->bos_token ? in->bos_token : "";
    const char *eos = in->eos_token ? in->eos_token : "";
    if ((rc = frame_set(&r, &globals, "messages", 8,
                        (struct jinja_value){.type = JV_LIST, .u.list = msgs})) ||
        (rc = frame_set(&r, &globals, "bos_token", 9, V_STR(bos, strlen(bos)))) ||
        (rc = frame_set(&r, &globals, "eos_token", 9, V_STR(eos, strlen(eos)))) ||
        (rc = frame_set(&r, &globals, "add_generation_prompt", 21,
                        V_BOOL(in->add_generation_prompt))))
        goto out;
    rc = exec_body(&r, &root, p->root, &s);
    if (rc > 0)
        rc = FAIL(&r, CHAT_E_RUNTIME, "break or continue outside a loop");
    if (!rc && !s.p)
        rc = chat__jinja_put(&r, &s, "", 0) ? r.rc : 0;
    if (!rc && !s.p) {
        s.p = malloc(1);
        if (!s.p)
            rc = FAIL(&r, CHAT_E_NOMEM, "out of memory");
        else
            s.p[0] = 0;
    }
out:
    if (rc) {
        if (errbuf && errlen && !errbuf[0])
            snprintf(errbuf, errlen, "%s", chat_strerror(rc));
        free(s.p);
    } else {
        *out = s.p;
        *out_len = s.n;
    }
    chat__arena_free(&r.arena);
    return rc;
}
