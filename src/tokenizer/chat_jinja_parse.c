/* Jinja subset: the parser, from tokens to the syntax tree (statements and expressions). */
#include "tokenizer/chat_jinja.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser ---- */

struct parser {
    const struct jinja_token *t;
    size_t n, i;
    struct jinja_arena *arena;
    char *err;
    size_t errlen;
    int depth;
    int loop_depth;
    int macro_depth;
};

static int perr(struct parser *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, int rc, const char *fmt, ...)
{
    if (p->err && p->errlen && rc != CHAT_E_NOMEM) {
        int k = snprintf(p->err, p->errlen, "line %d: ", p->t[p->i].line);
        if (k > 0 && (size_t)k < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    } else if (p->err && p->errlen) {
        snprintf(p->err, p->errlen, "out of memory while parsing the template");
    }
    return rc;
}

static const struct jinja_token *peek(const struct parser *p)
{
    return &p->t[p->i];
}

static const struct jinja_token *peek2(const struct parser *p)
{
    return p->i + 1 < p->n ? &p->t[p->i + 1] : &p->t[p->n - 1];
}

static void advance(struct parser *p)
{
    if (p->t[p->i].kind != TK_EOF)
        p->i++;
}

static int tok_is_name(const struct jinja_token *t, const char *kw)
{
    return t->kind == TK_NAME && t->n == strlen(kw) && memcmp(t->s, kw, t->n) == 0;
}

static int tok_is_op(const struct jinja_token *t, int op)
{
    return t->kind == TK_OP && t->op == op;
}

static int accept_op(struct parser *p, int op)
{
    if (tok_is_op(peek(p), op)) {
        advance(p);
        return 1;
    }
    return 0;
}

static int accept_name(struct parser *p, const char *kw)
{
    if (tok_is_name(peek(p), kw)) {
        advance(p);
        return 1;
    }
    return 0;
}

static const char *tok_desc(const struct jinja_token *t, char *buf, size_t n)
{
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s); return buf;
    case TK_STRING: return "a string";
    case TK_INT:
    case TK_FLOAT: return "a number";
    case TK_OP:
        if (t->op < 256)
            snprintf(buf, n, "'%c'", (char)t->op);
        else
            snprintf(buf, n, "an operator");
        return buf;
    }
    return "?";
}

static int expect_op(struct parser *p, int op, const char *what)
{
    if (accept_op(p, op))
        return 0;
    char b[64];
    return perr(p, CHAT_E_SYNTAX, "expected %s, got %s", what, tok_desc(peek(p), b, sizeof(b)));
}

static int expect_kind(struct parser *p, enum jinja_tok_kind k, const char *what)
{
    if (peek(p)->kind == k) {
        advance(p);
        return 0;
    }
    char b[64];
    return perr(p, CHAT_E_SYNTAX, "expected %s, got %s", what, tok_desc(peek(p), b, sizeof(b)));
}

static struct jinja_node *mk(struct parser *p, enum jinja_node_kind kind, int line)
{
    struct jinja_node *nd = chat__arena_alloc(p->arena, sizeof(*nd));
    if (!nd)
        return NULL;
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    nd->line = line;
    return nd;
}

static const char *dup_name(struct parser *p, const char *s, size_t n)
{
    char *d = chat__arena_alloc(p->arena, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* A growable array of pointers in the arena (old storage is abandoned on growth). */
struct vec {
    void **v;
    size_t n, cap;
};

static int vec_push(struct parser *p, struct vec *v, void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **nv = chat__arena_alloc(p->arena, cap * sizeof(void *));
        if (!nv)
            return CHAT_E_NOMEM;
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof(void *));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

#define NOMEM(p) perr((p), CHAT_E_NOMEM, "out of memory")

static int parse_expr(struct parser *p, struct jinja_node **out);
static int parse_or(struct parser *p, struct jinja_node **out);
static int parse_unary(struct parser *p, struct jinja_node **out, int with_filter);

static int enter(struct parser *p)
{
    if (++p->depth > JINJA_MAX_PARSE_DEPTH)
        return perr(p, CHAT_E_LIMIT, "template nested too deeply");
    return 0;
}

/* Call arguments after '(' up to ')': positional and name=value. */
static int parse_args(struct parser *p, struct jinja_node *call)
{
    struct vec args = {0}, names = {0};
    int rc, seen_kw = 0;
    while (!accept_op(p, ')')) {
        if (args.n && (rc = expect_op(p, ',', "',' or ')'")))
            return rc;
        if (accept_op(p, ')'))
            break; /* trailing comma */
        const char *name = NULL;
        if (peek(p)->kind == TK_NAME && tok_is_op(peek2(p), '=')) {
            if (!(name = dup_name(p, peek(p)->s, peek(p)->n)))
                return NOMEM(p);
            advance(p);
            advance(p);
            seen_kw = 1;
        } else if (seen_kw) {
            return perr(p, CHAT_E_SYNTAX, "positional argument after keyword argument");
        }
        struct jinja_node *e;
        if ((rc = parse_expr(p, &e)))
            return rc;
        if (vec_push(p, &args, e) || vec_push(p, &names, (void *)name))
            return NOMEM(p);
    }
    call->kids = (struct jinja_node **)args.v;
    call->n_kids = args.n;
    call->names = (const char **)names.v;
    call->n_names = names.n;
    return 0;
}

/* `name` or `name(args)` after '|' (the operand is set by the caller). */
static int parse_filter_call(struct parser *p, struct jinja_node **out)
{
    const struct jinja_token *t = peek(p);
    if (t->kind != TK_NAME)
        return perr(p, CHAT_E_SYNTAX, "expected a filter name after '|'");
    int id = chat__jinja_filter_id(t->s, t->n);
    if (!id)
        return perr(p, CHAT_E_SYNTAX, "unknown filter '%.*s'", (int)(t->n > 40 ? 40 : t->n),
                    t->s);
    struct jinja_node *f = mk(p, JN_FILTER, t->line);
    if (!f)
        return NOMEM(p);
    f->op = id;
    advance(p);
    if (accept_op(p, '(')) {
        int rc = parse_args(p, f);
        if (rc)
            return rc;
    }
    *out = f;
    return 0;
}

static int parse_test(struct parser *p, struct jinja_node *operand, struct jinja_node **out)
{
    int line = peek(p)->line;
    int negated = accept_name(p, "not");
    const struct jinja_token *t = peek(p);
    if (t->kind != TK_NAME)
        return perr(p, CHAT_E_SYNTAX, "expected a test name after 'is'");
    int id = chat__jinja_test_id(t->s, t->n);
    if (!id)
        return perr(p, CHAT_E_SYNTAX, "unknown test '%.*s'", (int)(t->n > 40 ? 40 : t->n),
                    t->s);
    advance(p);
    struct jinja_node *x = mk(p, JN_TEST, line);
    if (!x)
        return NOMEM(p);
    x->op = id;
    x->flags = negated;
    x->a = operand;
    const struct jinja_token *n = peek(p);
    int rc;
    if (accept_op(p, '(')) {
        if ((rc = parse_args(p, x)))
            return rc;
    } else if (n->kind == TK_STRING || n->kind == TK_INT || n->kind == TK_FLOAT ||
               (n->kind == TK_NAME && !tok_is_name(n, "and") && !tok_is_name(n, "or") &&
                !tok_is_name(n, "else") && !tok_is_name(n, "if") && !tok_is_name(n, "not") &&
                !tok_is_name(n, "in") && !tok_is_name(n, "is"))) {
        /* `x is divisibleby 3`: one argument without parentheses */
        struct jinja_node *arg;
        if ((rc = parse_unary(p, &arg, 0)))
            return rc;
        x->kids = chat__arena_alloc(p->arena, sizeof(*x->kids));
        x->names = chat__arena_alloc(p->arena, sizeof(*x->names));
        if (!x->kids || !x->names)
            return NOMEM(p);
        x->kids[0] = arg;
        x->names[0] = NULL;
        x->n_kids = x->n_names = 1;
    }
    *out = x;
    return 0;
}

static int parse_primary(struct parser *p, struct jinja_node **out)
{
    const struct jinja_token *t = peek(p);
    struct jinja_node *nd;
    int rc;
    switch (t->kind) {
    case TK_NAME:
        if (!(nd = mk(p, JN_LITERAL, t->line)))
            return NOMEM(p);
        if (tok_is_name(t, "true") || tok_is_name(t, "True")) {
            nd->lit = (struct jinja_value){.type = JV_BOOL, .u.b = true};
        } else if (tok_is_name(t, "false") || tok_is_name(t, "False")) {
            nd->lit = (struct jinja_value){.type = JV_BOOL, .u.b = false};
        } else if (tok_is_name(t, "none") || tok_is_name(t, "None")) {
            nd->lit = (struct jinja_value){.type = JV_NONE};
        } else {
            nd->kind = JN_NAME;
            nd->s = t->s;
            nd->n = t->n;
        }
        advance(p);
        *out = nd;
        return 0;
    case TK_STRING: {
        if (!(nd = mk(p, JN_LITERAL, t->line)))
            return NOMEM(p);
        /* adjacent literals concatenate: 'a' "b" */
        size_t total = 0, k = p->i;
        while (p->t[k].kind == TK_STRING)
            total += p->t[k++].n;
        char *s = chat__arena_alloc(p->arena, total + 1);
        if (!s)
            return NOMEM(p);
        size_t o = 0;
        while (peek(p)->kind == TK_STRING) {
            memcpy(s + o, peek(p)->s, peek(p)->n);
            o += peek(p)->n;
            advance(p);
        }
        s[o] = 0;
        nd->lit.type = JV_STR;
        nd->lit.u.s.p = s;
        nd->lit.u.s.n = o;
        *out = nd;
        return 0;
    }
    case TK_INT:
    case TK_FLOAT:
        if (!(nd = mk(p, JN_LITERAL, t->line)))
            return NOMEM(p);
        if (t->kind == TK_INT)
            nd->lit = (struct jinja_value){.type = JV_INT, .u.i = t->i};
        else
            nd->lit = (struct jinja_value){.type = JV_FLOAT, .u.f = t->f};
        advance(p);
        *out = nd;
        return 0;
    case TK_OP:
        if (t->op == '(') {
            int line = t->line;
            advance(p);
            if (accept_op(p, ')')) { /* empty tuple */
                if (!(nd = mk(p, JN_LIST, line)))
                    return NOMEM(p);
                nd->flags = 1;
                *out = nd;
                return 0;
            }
            struct jinja_node *e;
            if ((rc = parse_expr(p, &e)))
                return rc;
            if (tok_is_op(peek(p), ',')) { /* a tuple: a list here */
                struct vec items = {0};
                if (vec_push(p, &items, e))
                    return NOMEM(p);
                while (accept_op(p, ',')) {
                    if (tok_is_op(peek(p), ')'))
                        break;
                    if ((rc = parse_expr(p, &e)))
                        return rc;
                    if (vec_push(p, &items, e))
                        return NOMEM(p);
                }
                if (!(nd = mk(p, JN_LIST, line)))
                    return NOMEM(p);
                nd->kids = (struct jinja_node **)items.v;
                nd->n_kids = items.n;
                nd->flags = 1;
                e = nd;
            }
            if ((rc = expect_op(p, ')', "')'")))
                return rc;
            *out = e;
            return 0;
        }
        if (t->op == '[') {
            if (!(nd = mk(p, JN_LIST, t->line)))
                return NOMEM(p);
            advance(p);
            struct vec items = {0};
            while (!accept_op(p, ']')) {
                if (items.n && (rc = expect_op(p, ',', "',' or ']'")))
                    return rc;
                if (accept_op(p, ']'))
                    break;
                struct jinja_node *e;
                if ((rc = parse_expr(p, &e)))
                    return rc;
                if (vec_push(p, &items, e))
                    return NOMEM(p);
            }
            nd->kids = (struct jinja_node **)items.v;
            nd->n_kids = items.n;
            *out = nd;
            return 0;
        }
        if (t->op == '{') {
            if (!(nd = mk(p, JN_DICT, t->line)))
                return NOMEM(p);
            advance(p);
            struct vec keys = {0}, vals = {0};
            while (!accept_op(p, '}')) {
                if (keys.n && (rc = expect_op(p, ',', "',' or '}'")))
                    return rc;
                if (accept_op(p, '}'))
                    break;
                struct jinja_node *k, *v;
                if ((rc = parse_expr(p, &k)) || (rc = expect_op(p, ':', "':'")) ||
                    (rc = parse_expr(p, &v)))
                    return rc;
                if (vec_push(p, &keys, k) || vec_push(p, &vals, v))
                    return NOMEM(p);
            }
            nd->kids = (struct jinja_node **)keys.v;
            nd->n_kids = keys.n;
            nd->kids2 = (struct jinja_node **)vals.v;
            nd->n_kids2 = vals.n;
            *out = nd;
            return 0;
        }
        break;
    default:
        break;
    }
    char b[64];
    return perr(p, CHAT_E_SYNTAX, "expected an expression, got %s", tok_desc(t, b, sizeof(b)));
}

/* .name, [key], [a:b:c], (args) */
static int parse_postfix(struct parser *p, struct jinja_node **io)
{
    int rc;
    for (;;) {
        const struct jinja_token *t = peek(p);
        int line = t->line;
        if (tok_is_op(t, '.')) {
            advance(p);
            const struct jinja_token *n = peek(p);
            struct jinja_node *nd;
            if (n->kind == TK_NAME) {
                if (!(nd = mk(p, JN_GETATTR, line)))
                    return NOMEM(p);
                nd->s = n->s;
                nd->n = n->n;
            } else if (n->kind == TK_INT) { /* x.0 */
                struct jinja_node *k = mk(p, JN_LITERAL, line);
                if (!k || !(nd = mk(p, JN_GETITEM, line)))
                    return NOMEM(p);
                k->lit = (struct jinja_value){.type = JV_INT, .u.i = n->i};
                nd->b = k;
            } else {
                return perr(p, CHAT_E_SYNTAX, "expected a name after '.'");
            }
            advance(p);
            nd->a = *io;
            *io = nd;
        } else if (tok_is_op(t, '[')) {
            advance(p);
            struct jinja_node *parts[3] = {NULL, NULL, NULL};
            int colons = 0;
            for (;;) {
                if (tok_is_op(peek(p), ']'))
                    break;
                if (tok_is_op(peek(p), ':')) {
                    if (++colons > 2)
                        return perr(p, CHAT_E_SYNTAX, "bad slice");
                    advance(p);
                    continue;
                }
                if (parts[colons])
                    return perr(p, CHAT_E_SYNTAX, "expected ']'");
                if ((rc = parse_expr(p, &parts[colons])))
                    return rc;
            }
            advance(p);
            struct jinja_node *nd;
            if (colons == 0) {
                if (!parts[0])
                    return perr(p, CHAT_E_SYNTAX, "empty subscript");
                if (!(nd = mk(p, JN_GETITEM, line)))
                    return NOMEM(p);
                nd->b = parts[0];
            } else {
                if (!(nd = mk(p, JN_SLICE, line)))
                    return NOMEM(p);
                nd->b = parts[0];
                nd->c = parts[1];
                nd->d = parts[2];
            }
            nd->a = *io;
            *io = nd;
        } else if (tok_is_op(t, '(')) {
            advance(p);
            struct jinja_node *nd = mk(p, JN_CALL, line);
            if (!nd)
                return NOMEM(p);
            nd->a = *io;
            if ((rc = parse_args(p, nd)))
                return rc;
            *io = nd;
        } else {
            return 0;
        }
    }
}

static int parse_unary(struct parser *p, struct jinja_node **out, int with_filter)
{
    int rc = enter(p);
    if (rc)
        return rc;
    const struct jinja_token *t = peek(p);
    struct jinja_node *nd;
    if (tok_is_op(t, '-') || tok_is_op(t, '+')) {
        if (!(nd = mk(p, JN_UNARY, t->line)))
            return NOMEM(p);
        nd->op = t->op;
        advance(p);
        if ((rc = parse_unary(p, &nd->a, 0)))
            return rc;
    } else if ((rc = parse_primary(p, &nd))) {
        return rc;
    }
    if ((rc = parse_postfix(p, &nd)))
        return rc;
    while (with_filter) {
        if (accept_op(p, '|')) {
            struct jinja_node *f;
            if ((rc = parse_filter_call(p, &f)))
                return rc;
            f->a = nd;
            nd = f;
            /* a call or subscript may follow a filter: x|items|list ... */
            if ((rc = parse_postfix(p, &nd)))
                return rc;
        } else if (accept_name(p, "is")) {
            if ((rc = parse_test(p, nd, &nd)))
                return rc;
        } else {
            break;
        }
    }
    p->depth--;
    *out = nd;
    return 0;
}

static int binary(struct parser *p, int op, int line, struct jinja_node *a, struct jinja_node *b,
                  struct jinja_node **out)
{
    struct jinja_node *nd = mk(p, JN_BINARY, line);
    if (!nd)
        return NOMEM(p);
    nd->op = op;
    nd->a = a;
    nd->b = b;
    *out = nd;
    return 0;
}

static int parse_pow(struct parser *p, struct jinja_node **out)
{
    int rc = parse_unary(p, out, 1);
    while (!rc && tok_is_op(peek(p), OP_POW)) {
        int line = peek(p)->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_unary(p, &r, 1)))
            return rc;
        rc = binary(p, JB_POW, line, *out, r, out);
    }
    return rc;
}

static int parse_math2(struct parser *p, struct jinja_node **out)
{
    int rc = parse_pow(p, out);
    for (;;) {
        if (rc)
            return rc;
        const struct jinja_token *t = peek(p);
        int op = tok_is_op(t, '*') ? JB_MUL : tok_is_op(t, '/') ? JB_DIV
                 : tok_is_op(t, OP_FLOORDIV) ? JB_FLOORDIV : tok_is_op(t, '%') ? JB_MOD : 0;
        if (!op)
            return 0;
        int line = t->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_pow(p, &r)))
            return rc;
        rc = binary(p, op, line, *out, r, out);
    }
}

static int parse_concat(struct parser *p, struct jinja_node **out)
{
    int rc = parse_math2(p, out);
    while (!rc && tok_is_op(peek(p), '~')) {
        int line = peek(p)->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_math2(p, &r)))
            return rc;
        rc = binary(p, JB_CONCAT, line, *out, r, out);
    }
    return rc;
}

static int parse_math1(struct parser *p, struct jinja_node **out)
{
    int rc = parse_concat(p, out);
    for (;;) {
        if (rc)
            return rc;
        const struct jinja_token *t = peek(p);
        int op = tok_is_op(t, '+') ? JB_ADD : tok_is_op(t, '-') ? JB_SUB : 0;
        if (!op)
            return 0;
        int line = t->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_concat(p, &r)))
            return rc;
        rc = binary(p, op, line, *out, r, out);
    }
}

static int parse_compare(struct parser *p, struct jinja_node **out)
{
    struct jinja_node *left;
    int rc = parse_math1(p, &left);
    if (rc)
        return rc;
    struct jinja_node *result = NULL;
    for (;;) {
        const struct jinja_token *t = peek(p);
        int line = t->line, op = 0;
        if (t->kind == TK_OP) {
            op = t->op == OP_EQ ? JB_EQ : t->op == OP_NE ? JB_NE : t->op == '<' ? JB_LT
                 : t->op == OP_LE ? JB_LE : t->op == '>' ? JB_GT : t->op == OP_GE ? JB_GE : 0;
            if (op)
                advance(p);
        } else if (tok_is_name(t, "in")) {
            op = JB_IN;
            advance(p);
        } else if (tok_is_name(t, "not") && tok_is_name(peek2(p), "in")) {
            op = JB_NOTIN;
            advance(p);
            advance(p);
        }
        if (!op)
            break;
        struct jinja_node *right = NULL, *cmp = NULL;
        if ((rc = parse_math1(p, &right)) || (rc = binary(p, op, line, left, right, &cmp)))
            return rc;
        /* a < b < c means a < b and b < c */
        if (result) {
            if ((rc = binary(p, JB_AND, line, result, cmp, &result)))
                return rc;
        } else {
            result = cmp;
        }
        left = right;
    }
    *out = result ? result : left;
    return 0;
}

static int parse_not(struct parser *p, struct jinja_node **out)
{
    if (tok_is_name(peek(p), "not")) {
        struct jinja_node *nd = mk(p, JN_UNARY, peek(p)->line);
        if (!nd)
            return NOMEM(p);
        nd->op = '!';
        advance(p);
        int rc = enter(p);
        if (rc || (rc = parse_not(p, &nd->a)))
            return rc;
        p->depth--;
        *out = nd;
        return 0;
    }
    return parse_compare(p, out);
}

static int parse_and(struct parser *p, struct jinja_node **out)
{
    int rc = parse_not(p, out);
    while (!rc && tok_is_name(peek(p), "and")) {
        int line = peek(p)->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_not(p, &r)))
            return rc;
        rc = binary(p, JB_AND, line, *out, r, out);
    }
    return rc;
}

static int parse_or(struct parser *p, struct jinja_node **out)
{
    int rc = parse_and(p, out);
    while (!rc && tok_is_name(peek(p), "or")) {
        int line = peek(p)->line;
        advance(p);
        struct jinja_node *r;
        if ((rc = parse_and(p, &r)))
            return rc;
        rc = binary(p, JB_OR, line, *out, r, out);
    }
    return rc;
}

/* `a if cond else b`; the else part is optional (undefined). */
static int parse_expr(struct parser *p, struct jinja_node **out)
{
    int rc = enter(p);
    if (rc || (rc = parse_or(p, out)))
        return rc;
    while (tok_is_name(peek(p), "if")) {
        struct jinja_node *nd = mk(p, JN_COND, peek(p)->line);
        if (!nd)
            return NOMEM(p);
        advance(p);
        nd->a = *out;
        if ((rc = parse_or(p, &nd->b)))
            return rc;
        if (accept_name(p, "else") && (rc = parse_expr(p, &nd->c)))
            return rc;
        *out = nd;
    }
    p->depth--;
    return 0;
}

/* An expression, or several separated by commas (a tuple, as a list). */
static int parse_tuple(struct parser *p, struct jinja_node **out)
{
    int line = peek(p)->line;
    int rc = parse_expr(p, out);
    if (rc || !tok_is_op(peek(p), ','))
        return rc;
    struct vec items = {0};
    if (vec_push(p, &items, *out))
        return NOMEM(p);
    while (accept_op(p, ',')) {
        struct jinja_node *e;
        if ((rc = parse_expr(p, &e)))
            return rc;
        if (vec_push(p, &items, e))
            return NOMEM(p);
    }
    struct jinja_node *nd = mk(p, JN_LIST, line);
    if (!nd)
        return NOMEM(p);
    nd->kids = (struct jinja_node **)items.v;
    nd->n_kids = items.n;
    nd->flags = 1;
    *out = nd;
    return 0;
}

/* ---- statements ---- */

static int parse_body(struct parser *p, const char *const *stops, size_t n_stops, int *which,
                      struct jinja_node **out);

static int end_tag(struct parser *p)
{
    return expect_kind(p, TK_BLOCK_END, "'%}'");
}

static int parse_if(struct parser *p, int line, struct jinja_node **out)
{
    static const char *const stops[] = {"elif", "else", "endif"};
    struct jinja_node *nd = mk(p, JN_IF, line);
    if (!nd)
        return NOMEM(p);
    struct vec conds = {0}, bodies = {0};
    int rc, which;
    for (;;) {
        struct jinja_node *cond, *body;
        if ((rc = parse_tuple(p, &cond)) || (rc = end_tag(p)) ||
            (rc = parse_body(p, stops, 3, &which, &body)))
            return rc;
        if (vec_push(p, &conds, cond) || vec_push(p, &bodies, body))
            return NOMEM(p);
        if (which != 0)
            break;
    }
    if (which == 1) {
        static const char *const endif[] = {"endif"};
        if ((rc = end_tag(p)) || (rc = parse_body(p, endif, 1, &which, &nd->c)))
            return rc;
    }
    nd->kids = (struct jinja_node **)conds.v;
    nd->n_kids = conds.n;
    nd->kids2 = (struct jinja_node **)bodies.v;
    nd->n_kids2 = bodies.n;
    *out = nd;
    return end_tag(p);
}

static int parse_for(struct parser *p, int line, struct jinja_node **out)
{
    struct jinja_node *nd = mk(p, JN_FOR, line);
    if (!nd)
        return NOMEM(p);
    struct vec names = {0};
    int rc, which;
    do {
        const struct jinja_token *t = peek(p);
        if (t->kind != TK_NAME)
            return perr(p, CHAT_E_SYNTAX, "expected a loop variable name");
        const char *name = dup_name(p, t->s, t->n);
        if (!name || vec_push(p, &names, (void *)name))
            return NOMEM(p);
        advance(p);
    } while (accept_op(p, ','));
    if (names.n > 2)
        return perr(p, CHAT_E_SYNTAX, "at most two loop variables are supported");
    nd->names = (const char **)names.v;
    nd->n_names = names.n;
    if (!accept_name(p, "in"))
        return perr(p, CHAT_E_SYNTAX, "expected 'in' in a for tag");
    /* the iterable is parsed without a conditional: a trailing `if` filters the loop */
    if ((rc = parse_or(p, &nd->a)))
        return rc;
    if (accept_name(p, "if") && (rc = parse_expr(p, &nd->b)))
        return rc;
    if (tok_is_name(peek(p), "recursive"))
        return perr(p, CHAT_E_SYNTAX, "recursive loops are not supported");
    if ((rc = end_tag(p)))
        return rc;
    static const char *const stops[] = {"else", "endfor"};
    p->loop_depth++;
    rc = parse_body(p, stops, 2, &which, &nd->c);
    p->loop_depth--;
    if (rc)
        return rc;
    if (which == 0) {
        static const char *const endfor[] = {"endfor"};
        if ((rc = end_tag(p)) || (rc = parse_body(p, endfor, 1, &which, &nd->d)))
            return rc;
    }
    *out = nd;
    return end_tag(p);
}

static int parse_filter_chain(struct parser *p, struct jinja_node *nd)
{
    struct vec filters = {0};
    int rc;
    do {
        struct jinja_node *f;
        if ((rc = parse_filter_call(p, &f)))
            return rc;
        if (vec_push(p, &filters, f))
            return NOMEM(p);
    } while (accept_op(p, '|'));
    nd->kids = (struct jinja_node **)filters.v;
    nd->n_kids = filters.n;
    return 0;
}

static int parse_set(struct parser *p, int line, struct jinja_node **out)
{
    const struct jinja_token *t = peek(p);
    if (t->kind != TK_NAME)
        return perr(p, CHAT_E_SYNTAX, "expected a variable name after 'set'");
    struct jinja_node *nd = mk(p, JN_SET, line);
    const char **names = chat__arena_alloc(p->arena, sizeof(*names));
    if (!nd || !names || !(names[0] = dup_name(p, t->s, t->n)))
        return NOMEM(p);
    nd->names = names;
    nd->n_names = 1;
    advance(p);
    int rc, which;
    if (accept_op(p, '.')) {
        const struct jinja_token *a = peek(p);
        if (a->kind != TK_NAME)
            return perr(p, CHAT_E_SYNTAX, "expected an attribute name");
        nd->s = a->s;
        nd->n = a->n;
        advance(p);
    }
    if (tok_is_op(peek(p), ','))
        return perr(p, CHAT_E_SYNTAX, "tuple assignment is not supported");
    if (accept_op(p, '=')) {
        if ((rc = parse_tuple(p, &nd->a)))
            return rc;
        *out = nd;
        return end_tag(p);
    }
    if (nd->s)
        return perr(p, CHAT_E_SYNTAX, "expected '=' after the attribute");
    /* block set: {% set x %}...{% endset %}, optionally filtered */
    nd->kind = JN_SET_BLOCK;
    if (accept_op(p, '|') && (rc = parse_filter_chain(p, nd)))
        return rc;
    static const char *const stops[] = {"endset"};
    if ((rc = end_tag(p)) || (rc = parse_body(p, stops, 1, &which, &nd->c)))
        return rc;
    *out = nd;
    return end_tag(p);
}

static int parse_macro(struct parser *p, int line, struct jinja_node **out)
{
    const struct jinja_token *t = peek(p);
    if (t->kind != TK_NAME)
        return perr(p, CHAT_E_SYNTAX, "expected a macro name");
    struct jinja_node *nd = mk(p, JN_MACRO, line);
    if (!nd)
        return NOMEM(p);
    struct vec names = {0}, defs = {0};
    const char *name = dup_name(p, t->s, t->n);
    if (!name || vec_push(p, &names, (void *)name))
        return NOMEM(p);
    advance(p);
    int rc, which;
    if ((rc = expect_op(p, '(', "'('")))
        return rc;
    while (!accept_op(p, ')')) {
        if (names.n > 1 && (rc = expect_op(p, ',', "',' or ')'")))
            return rc;
        const struct jinja_token *a = peek(p);
        if (a->kind != TK_NAME)
            return perr(p, CHAT_E_SYNTAX, "expected a parameter name");
        const char *pn = dup_name(p, a->s, a->n);
        if (!pn || vec_push(p, &names, (void *)pn))
            return NOMEM(p);
        advance(p);
        struct jinja_node *def = NULL;
        if (accept_op(p, '=') && (rc = parse_expr(p, &def)))
            return rc;
        if (vec_push(p, &defs, def))
            return NOMEM(p);
    }
    nd->names = (const char **)names.v;
    nd->n_names = names.n;
    nd->kids2 = (struct jinja_node **)defs.v;
    nd->n_kids2 = defs.n;
    static const char *const stops[] = {"endmacro"};
    int saved_loops = p->loop_depth;
    p->loop_depth = 0; /* break inside a macro does not reach an outer loop */
    p->macro_depth++;
    rc = end_tag(p);
    if (!rc)
        rc = parse_body(p, stops, 1, &which, &nd->c);
    p->macro_depth--;
    p->loop_depth = saved_loops;
    if (rc)
        return rc;
    *out = nd;
    return end_tag(p);
}

static int parse_block_tag(struct parser *p, struct jinja_node **out)
{
    const struct jinja_token *t = peek(p);
    int line = t->line;
    char b[64];
    if (t->kind != TK_NAME)
        return perr(p, CHAT_E_SYNTAX, "expected a tag name, got %s", tok_desc(t, b, sizeof(b)));
    int rc, which;
    if (accept_name(p, "if"))
        return parse_if(p, line, out);
    if (accept_name(p, "for"))
        return parse_for(p, line, out);
    if (accept_name(p, "set"))
        return parse_set(p, line, out);
    if (accept_name(p, "macro"))
        return parse_macro(p, line, out);
    if (accept_name(p, "filter")) {
        struct jinja_node *nd = mk(p, JN_FILTER_BLOCK, line);
        static const char *const stops[] = {"endfilter"};
        if (!nd)
            return NOMEM(p);
        if ((rc = parse_filter_chain(p, nd)) || (rc = end_tag(p)) ||
            (rc = parse_body(p, stops, 1, &which, &nd->c)))
            return rc;
        *out = nd;
        return end_tag(p);
    }
    if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        if (!p->loop_depth)
            return perr(p, CHAT_E_SYNTAX, "'%.*s' outside a loop", (int)t->n, t->s);
        struct jinja_node *nd = mk(p, tok_is_name(t, "break") ? JN_BREAK : JN_CONTINUE, line);
        if (!nd)
            return NOMEM(p);
        advance(p);
        *out = nd;
        return end_tag(p);
    }
    if (accept_name(p, "generation")) { /* Hugging Face's marker for assistant tokens */
        static const char *const stops[] = {"endgeneration"};
        if ((rc = end_tag(p)) || (rc = parse_body(p, stops, 1, &which, out)))
            return rc;
        return end_tag(p);
    }
    return perr(p, CHAT_E_SYNTAX, "unknown or unexpected tag %s", tok_desc(t, b, sizeof(b)));
}

/* Statements up to a {% stop %} tag (consumed up to and including its name; *which says
 * which) or, with no stops, the end of the template. */
static int parse_body(struct parser *p, const char *const *stops, size_t n_stops, int *which,
                      struct jinja_node **out)
{
    int rc = enter(p);
    if (rc)
        return rc;
    struct jinja_node *body = mk(p, JN_BODY, peek(p)->line);
    if (!body)
        return NOMEM(p);
    struct vec stmts = {0};
    for (;;) {
        const struct jinja_token *t = peek(p);
        struct jinja_node *nd = NULL;
        if (t->kind == TK_EOF) {
            if (n_stops)
                return perr(p, CHAT_E_SYNTAX, "unexpected end of template: missing '%s'",
                            stops[n_stops - 1]);
            break;
        }
        if (t->kind == TK_TEXT) {
            if (!(nd = mk(p, JN_TEXT, t->line)))
                return NOMEM(p);
            nd->s = t->s;
            nd->n = t->n;
            advance(p);
        } else if (t->kind == TK_VAR_BEGIN) {
            if (!(nd = mk(p, JN_OUTPUT, t->line)))
                return NOMEM(p);
            advance(p);
            if ((rc = parse_tuple(p, &nd->a)) || (rc = expect_kind(p, TK_VAR_END, "'}}'")))
                return rc;
        } else if (t->kind == TK_BLOCK_BEGIN) {
            const struct jinja_token *kw = peek2(p);
            size_t k;
            for (k = 0; k < n_stops; k++)
                if (tok_is_name(kw, stops[k]))
                    break;
            if (k < n_stops) {
                advance(p);
                advance(p);
                *which = (int)k;
                break;
            }
            advance(p);
            if ((rc = parse_block_tag(p, &nd)))
                return rc;
        } else {
            char b[64];
            return perr(p, CHAT_E_SYNTAX, "unexpected %s", tok_desc(t, b, sizeof(b)));
        }
        if (vec_push(p, &stmts, nd))
            return NOMEM(p);
    }
    body->kids = (struct jinja_node **)stmts.v;
    body->n_kids = stmts.n;
    p->depth--;
    *out = body;
    return 0;
}

int chat__jinja_parse(struct jinja_program **out, const char *src, size_t len, char *errbuf,
                      size_t errlen)
{
    *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!src || len > JINJA_MAX_SOURCE) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "template missing or larger than %u bytes",
                     JINJA_MAX_SOURCE);
        return CHAT_E_INVALID;
    }
    struct jinja_program *prog = calloc(1, sizeof(*prog));
    if (!prog)
        return CHAT_E_NOMEM;
    /* the program keeps its own copy of the text: tokens and names point into it */
    prog->arena.cap = 64 * (size_t)JINJA_MAX_SOURCE;
    char *copy = chat__arena_alloc(&prog->arena, len + 1);
    int rc = CHAT_E_NOMEM;
    if (!copy)
        goto fail;
    memcpy(copy, src, len);
    copy[len] = 0;
    struct jinja_token *toks = NULL;
    size_t n_toks = 0;
    if ((rc = chat__jinja_lex(&prog->arena, copy, len, &toks, &n_toks, errbuf, errlen)))
        goto fail;
    struct parser p = {.t = toks, .n = n_toks, .arena = &prog->arena, .err = errbuf,
                       .errlen = errlen};
    int which = 0;
    if ((rc = parse_body(&p, NULL, 0, &which, &prog->root)))
        goto fail;
    *out = prog;
    return 0;
fail:
    if (rc == CHAT_E_NOMEM && errbuf && errlen && !errbuf[0])
        snprintf(errbuf, errlen, "out of memory while parsing the template");
    chat__jinja_free(prog);
    return rc;
}

void chat__jinja_free(struct jinja_program *p)
{
    if (!p)
        return;
    chat__arena_free(&p->arena);
    free(p);
}
