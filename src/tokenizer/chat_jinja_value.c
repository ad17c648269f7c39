/* Jinja subset: Python value semantics: truth, equality, order, str/repr, JSON, operators, items. */
#include "tokenizer/chat_jinja_eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- basics ---- */

const char *chat__jinja_type_name(struct jinja_value v)
{
    switch (v.type) {
    case JV_UNDEF: return "undefined";
    case JV_NONE: return "none";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "string";
    case JV_LIST: return "list";
    case JV_DICT: return v.u.dict->ns ? "namespace" : "dict";
    case JV_FUNC: return "function";
    case JV_MACRO: return "macro";
    case JV_LOOP: return "loop";
    }
    return "?";
}

bool chat__jinja_truthy(struct jinja_value v)
{
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.list->n != 0;
    case JV_DICT: return v.u.dict->n != 0 || v.u.dict->ns;
    default: return true;
    }
}

/* ---- UTF-8: Python strings index code points ---- */

/* A character starts at byte 0 and at every byte that is not a UTF-8 continuation byte, so
 * that invalid text (a string starting with continuation bytes) is counted exactly as
 * chat__jinja_cp_offset and chat__jinja_cp_len_at walk it. */
size_t chat__jinja_cp_count(const char *p, size_t n)
{
    size_t c = n ? 1 : 0;
    for (size_t i = 1; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset of code point idx (n if past the end). */
size_t chat__jinja_cp_offset(const char *p, size_t n, size_t idx)
{
    size_t i = 0;
    while (i < n && idx) {
        i++;
        while (i < n && ((unsigned char)p[i] & 0xC0) == 0x80)
            i++;
        idx--;
    }
    return i;
}

size_t chat__jinja_cp_len_at(const char *p, size_t n, size_t off)
{
    size_t e = off + 1;
    while (e < n && ((unsigned char)p[e] & 0xC0) == 0x80)
        e++;
    return e - off;
}

/* ---- conversions ---- */

/* Python's str(v) as an arena string (strings themselves are returned as they are). */
int chat__jinja_to_str(struct render *r, struct jinja_value v, struct jinja_value *out)
{
    if (v.type == JV_STR) {
        *out = v;
        return 0;
    }
    if (v.type == JV_UNDEF) {
        *out = V_STR("", 0);
        return 0;
    }
    struct sink s = {.max = r->in->max_output};
    int rc = chat__jinja_write(r, &s, v, false);
    if (!rc)
        rc = chat__jinja_str_new(r, s.p ? s.p : "", s.n, out);
    free(s.p);
    return rc;
}

static int concat(struct render *r, const char *a, size_t an, const char *b, size_t bn,
                  struct jinja_value *out)
{
    if (an + bn < an)
        return FAIL(r, CHAT_E_LIMIT, "string too long");
    char *d = chat__jinja_alloc(r, an + bn + 1);
    if (!d)
        return r->rc;
    if (an)
        memcpy(d, a, an);
    if (bn)
        memcpy(d + an, b, bn);
    d[an + bn] = 0;
    *out = V_STR(d, an + bn);
    return 0;
}

/* ---- equality and order ---- */

int chat__jinja_equal(struct render *r, struct jinja_value a, struct jinja_value b, int *eq)
{
    *eq = 0;
    if (is_num(a) && is_num(b)) {
        *eq = is_int(a) && is_int(b) ? as_int(a) == as_int(b) : as_f(a) == as_f(b);
        return 0;
    }
    if (a.type != b.type)
        return 0;
    int rc = 0;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE: *eq = 1; return 0;
    case JV_STR:
        *eq = a.u.s.n == b.u.s.n && (a.u.s.n == 0 || memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0);
        return 0;
    case JV_FUNC: *eq = a.u.func == b.u.func; return 0;
    case JV_MACRO: *eq = a.u.macro == b.u.macro; return 0;
    case JV_LOOP: *eq = a.u.loop == b.u.loop; return 0;
    case JV_LIST:
    case JV_DICT:
        break;
    default: return 0;
    }
    if ((rc = chat__jinja_enter(r)))
        goto out;
    if (a.type == JV_LIST) {
        if (a.u.list->n != b.u.list->n)
            goto out;
        for (size_t i = 0; i < a.u.list->n; i++) {
            int e = 0;
            if ((rc = chat__jinja_equal(r, a.u.list->v[i], b.u.list->v[i], &e)) || !e)
                goto out;
        }
        *eq = 1;
    } else {
        const struct jinja_dict *x = a.u.dict, *y = b.u.dict;
        if (x->ns || y->ns) { /* mutable: identity, which also keeps cycles finite */
            *eq = x == y;
            goto out;
        }
        if (x->n != y->n)
            goto out;
        for (size_t i = 0; i < x->n; i++) {
            size_t j;
            int e = 0;
            for (j = 0; j < y->n; j++) {
                if ((rc = chat__jinja_equal(r, x->k[i], y->k[j], &e)))
                    goto out;
                if (e)
                    break;
            }
            if (j == y->n || (rc = chat__jinja_equal(r, x->v[i], y->v[j], &e)) || !e)
                goto out;
        }
        *eq = 1;
    }
out:
    r->depth--;
    return rc;
}

static int fold(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Sets *c to <0, 0, >0. Numbers with numbers, strings with strings (optionally ASCII
 * case-insensitive), lists lexicographically. */
int chat__jinja_compare(struct render *r, struct jinja_value a, struct jinja_value b, bool ci, int *c)
{
    *c = 0;
    if (is_num(a) && is_num(b)) {
        if (is_int(a) && is_int(b)) {
            int64_t x = as_int(a), y = as_int(b);
            *c = (x > y) - (x < y);
        } else {
            double x = as_f(a), y = as_f(b);
            *c = (x > y) - (x < y);
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        for (size_t i = 0; i < n; i++) {
            int x = (unsigned char)a.u.s.p[i], y = (unsigned char)b.u.s.p[i];
            if (ci) {
                x = fold(x);
                y = fold(y);
            }
            if (x != y) {
                *c = x < y ? -1 : 1;
                return 0;
            }
        }
        *c = (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST) {
        int rc = chat__jinja_enter(r);
        for (size_t i = 0; !rc && i < a.u.list->n && i < b.u.list->n; i++)
            if ((rc = chat__jinja_compare(r, a.u.list->v[i], b.u.list->v[i], ci, c)) || *c)
                break;
        if (!rc && *c == 0)
            *c = (a.u.list->n > b.u.list->n) - (a.u.list->n < b.u.list->n);
        r->depth--;
        return rc;
    }
    return FAIL(r, CHAT_E_RUNTIME, "cannot compare a %s with a %s", chat__jinja_type_name(a),
                chat__jinja_type_name(b));
}

/* ---- printing ---- */

/* Python's repr of a float: the shortest digits that read back exactly, fixed notation for
 * exponents in [-4, 16), scientific otherwise; always with a '.' or an exponent. */
static void format_float(double f, bool json, char *out, size_t outlen)
{
    if (f != f) {
        snprintf(out, outlen, "%s", json ? "NaN" : "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, outlen, "%s%s", f < 0 ? "-" : "", json ? "Infinity" : "inf");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
    /* tmp: [-]d[.ddd]e[+-]xx */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    while (*p && *p != 'e') {
        if (*p != '.' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
        p++;
    }
    digits[nd] = 0;
    int exp10 = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    size_t o = 0;
    char buf[64];
    if (neg)
        buf[o++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++)
                buf[o++] = (size_t)i < nd ? digits[i] : '0';
            buf[o++] = '.';
            if ((size_t)exp10 + 1 < nd)
                for (size_t i = (size_t)exp10 + 1; i < nd; i++)
                    buf[o++] = digits[i];
            else
                buf[o++] = '0';
        } else {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int i = 0; i < -exp10 - 1; i++)
                buf[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                buf[o++] = digits[i];
        }
        buf[o] = 0;
    } else {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                buf[o++] = digits[i];
        }
        snprintf(buf + o, sizeof(buf) - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(out, outlen, "%s", buf);
}

int chat__jinja_put_str(struct render *r, struct sink *s, const char *z)
{
    return chat__jinja_put(r, s, z, strlen(z));
}

static int write_repr_str(struct render *r, struct sink *s, const char *p, size_t n)
{
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    int rc = chat__jinja_put(r, s, &q, 1);
    size_t run = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[8] = {0};
        if (c == (unsigned char)q || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof(esc), "\\n");
        else if (c == '\r')
            snprintf(esc, sizeof(esc), "\\r");
        else if (c == '\t')
            snprintf(esc, sizeof(esc), "\\t");
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof(esc), "\\x%02x", c);
        if (!esc[0]) {
            run++;
            continue;
        }
        if ((rc = chat__jinja_put(r, s, p + i - run, run)) || (rc = chat__jinja_put_str(r, s, esc)))
            break;
        run = 0;
    }
    if (!rc)
        rc = chat__jinja_put(r, s, p + n - run, run);
    return rc ? rc : chat__jinja_put(r, s, &q, 1);
}

int chat__jinja_write(struct render *r, struct sink *s, struct jinja_value v, bool repr)
{
    char buf[64];
    int rc = 0;
    switch (v.type) {
    case JV_UNDEF: return 0;
    case JV_NONE: return chat__jinja_put_str(r, s, "None");
    case JV_BOOL: return chat__jinja_put_str(r, s, v.u.b ? "True" : "False");
    case JV_INT:
        snprintf(buf, sizeof(buf), "%lld", (long long)v.u.i);
        return chat__jinja_put_str(r, s, buf);
    case JV_FLOAT:
        format_float(v.u.f, false, buf, sizeof(buf));
        return chat__jinja_put_str(r, s, buf);
    case JV_STR:
        return repr ? write_repr_str(r, s, v.u.s.p, v.u.s.n) : chat__jinja_put(r, s, v.u.s.p, v.u.s.n);
    case JV_FUNC: return chat__jinja_put_str(r, s, "<built-in function>");
    case JV_MACRO: return chat__jinja_put_str(r, s, "<macro>");
    case JV_LOOP: return chat__jinja_put_str(r, s, "<LoopContext>");
    case JV_LIST:
    case JV_DICT: break;
    }
    if ((rc = chat__jinja_enter(r)))
        goto out;
    if (v.type == JV_LIST) {
        bool tuple = v.u.list->tuple;
        if ((rc = chat__jinja_put_str(r, s, tuple ? "(" : "[")))
            goto out;
        for (size_t i = 0; i < v.u.list->n; i++)
            if ((i && (rc = chat__jinja_put_str(r, s, ", "))) ||
                (rc = chat__jinja_write(r, s, v.u.list->v[i], true)))
                goto out;
        rc = chat__jinja_put_str(r, s, tuple ? (v.u.list->n == 1 ? ",)" : ")") : "]");
    } else {
        const struct jinja_dict *d = v.u.dict;
        if ((rc = chat__jinja_put_str(r, s, d->ns ? "<Namespace {" : "{")))
            goto out;
        for (size_t i = 0; i < d->n; i++)
            if ((i && (rc = chat__jinja_put_str(r, s, ", "))) ||
                (rc = chat__jinja_write(r, s, d->k[i], true)) || (rc = chat__jinja_put_str(r, s, ": ")) ||
                (rc = chat__jinja_write(r, s, d->v[i], true)))
                goto out;
        rc = chat__jinja_put_str(r, s, d->ns ? "}>" : "}");
    }
out:
    r->depth--;
    return rc;
}

/* ---- JSON (as Hugging Face's tojson: json.dumps with ensure_ascii=False) ---- */

static int json_string(struct render *r, struct sink *s, const char *p, size_t n)
{
    int rc = chat__jinja_put_str(r, s, "\"");
    size_t run = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[8] = {0};
        switch (c) {
        case '"': snprintf(esc, sizeof(esc), "\\\""); break;
        case '\\': snprintf(esc, sizeof(esc), "\\\\"); break;
        case '\n': snprintf(esc, sizeof(esc), "\\n"); break;
        case '\r': snprintf(esc, sizeof(esc), "\\r"); break;
        case '\t': snprintf(esc, sizeof(esc), "\\t"); break;
        case '\b': snprintf(esc, sizeof(esc), "\\b"); break;
        case '\f': snprintf(esc, sizeof(esc), "\\f"); break;
        default:
            if (c < 0x20)
                snprintf(esc, sizeof(esc), "\\u%04x", c);
        }
        if (!esc[0]) {
            run++;
            continue;
        }
        if ((rc = chat__jinja_put(r, s, p + i - run, run)) || (rc = chat__jinja_put_str(r, s, esc)))
            break;
        run = 0;
    }
    if (!rc)
        rc = chat__jinja_put(r, s, p + n - run, run);
    return rc ? rc : chat__jinja_put_str(r, s, "\"");
}

static int json_newline(struct render *r, struct sink *s, int indent, int level)
{
    int rc = chat__jinja_put_str(r, s, "\n");
    for (int i = 0; !rc && i < indent * level; i++)
        rc = chat__jinja_put_str(r, s, " ");
    return rc;
}

static int json_write(struct render *r, struct sink *s, struct jinja_value v, int indent,
                      int level)
{
    char buf[64];
    int rc = 0;
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE: return chat__jinja_put_str(r, s, "null");
    case JV_BOOL: return chat__jinja_put_str(r, s, v.u.b ? "true" : "false");
    case JV_INT:
        snprintf(buf, sizeof(buf), "%lld", (long long)v.u.i);
        return chat__jinja_put_str(r, s, buf);
    case JV_FLOAT:
        format_float(v.u.f, true, buf, sizeof(buf));
        return chat__jinja_put_str(r, s, buf);
    case JV_STR: return json_string(r, s, v.u.s.p, v.u.s.n);
    case JV_LIST:
    case JV_DICT: break;
    default: return chat__jinja_put_str(r, s, "null");
    }
    if ((rc = chat__jinja_enter(r)))
        goto out;
    bool is_list = v.type == JV_LIST;
    size_t n = is_list ? v.u.list->n : v.u.dict->n;
    if ((rc = chat__jinja_put_str(r, s, is_list ? "[" : "{")))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (i && (rc = chat__jinja_put_str(r, s, indent >= 0 ? "," : ", ")))
            goto out;
        if (indent >= 0 && (rc = json_newline(r, s, indent, level + 1)))
            goto out;
        if (is_list) {
            rc = json_write(r, s, v.u.list->v[i], indent, level + 1);
        } else {
            struct jinja_value k = v.u.dict->k[i];
            if (k.type == JV_STR)
                rc = json_string(r, s, k.u.s.p, k.u.s.n);
            else if (k.type == JV_BOOL || k.type == JV_NONE || k.type == JV_UNDEF) {
                rc = chat__jinja_put_str(r, s, "\"");
                if (!rc)
                    rc = json_write(r, s, k, -1, 0);
                if (!rc)
                    rc = chat__jinja_put_str(r, s, "\"");
            } else {
                struct jinja_value ks;
                if (!(rc = chat__jinja_to_str(r, k, &ks)))
                    rc = json_string(r, s, ks.u.s.p, ks.u.s.n);
            }
            if (!rc)
                rc = chat__jinja_put_str(r, s, ": ");
            if (!rc)
                rc = json_write(r, s, v.u.dict->v[i], indent, level + 1);
        }
        if (rc)
            goto out;
    }
    if (n && indent >= 0 && (rc = json_newline(r, s, indent, level)))
        goto out;
    rc = chat__jinja_put_str(r, s, is_list ? "]" : "}");
out:
    r->depth--;
    return rc;
}

int chat__jinja_to_json(struct render *r, struct jinja_value v, int indent, struct jinja_value *out)
{
    struct sink s = {.max = r->in->max_output};
    int rc = json_write(r, &s, v, indent, 0);
    if (!rc)
        rc = chat__jinja_str_new(r, s.p ? s.p : "", s.n, out);
    free(s.p);
    return rc;
}

/* ---- operators ---- */

int chat__jinja_contains(struct render *r, struct jinja_value needle, struct jinja_value hay, bool *res)
{
    *res = false;
    int eq = 0, rc;
    switch (hay.type) {
    case JV_STR:
        if (needle.type != JV_STR)
            return FAIL(r, CHAT_E_RUNTIME, "'in <string>' needs a string on the left, not a %s",
                        chat__jinja_type_name(needle));
        *res = needle.u.s.n == 0 ||
               (needle.u.s.n <= hay.u.s.n &&
                memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL);
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.list->n; i++) {
            if ((rc = chat__jinja_equal(r, needle, hay.u.list->v[i], &eq)))
                return rc;
            if (eq) {
                *res = true;
                return 0;
            }
        }
        return 0;
    case JV_DICT:
        for (size_t i = 0; i < hay.u.dict->n; i++) {
            if ((rc = chat__jinja_equal(r, needle, hay.u.dict->k[i], &eq)))
                return rc;
            if (eq) {
                *res = true;
                return 0;
            }
        }
        return 0;
    case JV_UNDEF:
        return 0;
    default:
        return FAIL(r, CHAT_E_RUNTIME, "'in' needs a container on the right, not a %s",
                    chat__jinja_type_name(hay));
    }
}

static int repeat(struct render *r, struct jinja_value v, int64_t times, struct jinja_value *out)
{
    if (times < 0)
        times = 0;
    size_t n = v.type == JV_STR ? v.u.s.n : v.u.list->n;
    if (n && (uint64_t)times > r->in->max_output / n)
        return FAIL(r, CHAT_E_LIMIT, "repetition too long");
    size_t total = n * (size_t)times;
    if (v.type == JV_STR) {
        char *d = chat__jinja_alloc(r, total + 1);
        if (!d)
            return r->rc;
        for (int64_t i = 0; i < times; i++)
            memcpy(d + (size_t)i * n, v.u.s.p, n);
        d[total] = 0;
        *out = V_STR(d, total);
        return 0;
    }
    struct jinja_list *l = chat__jinja_list_new(r, total);
    if (!l)
        return r->rc;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < n; k++)
            l->v[l->n++] = v.u.list->v[k];
    *out = list_value(l);
    return 0;
}

static int arith_fail(struct render *r, const char *op, struct jinja_value a, struct jinja_value b)
{
    return FAIL(r, CHAT_E_RUNTIME, "unsupported operand types for %s: %s and %s", op,
                chat__jinja_type_name(a), chat__jinja_type_name(b));
}

int chat__jinja_binop(struct render *r, int op, struct jinja_value a, struct jinja_value b,
                      struct jinja_value *out)
{
    int rc, c, eq;
    bool in;
    int64_t x, y, z;
    switch (op) {
    case JB_ADD:
        if (is_int(a) && is_int(b)) {
            if (__builtin_add_overflow(as_int(a), as_int(b), &z))
                return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            *out = V_INT(z);
            return 0;
        }
        if (is_num(a) && is_num(b)) {
            *out = V_FLOAT(as_f(a) + as_f(b));
            return 0;
        }
        if (a.type == JV_STR && b.type == JV_STR)
            return concat(r, a.u.s.p, a.u.s.n, b.u.s.p, b.u.s.n, out);
        if (a.type == JV_LIST && b.type == JV_LIST) {
            struct jinja_list *l = chat__jinja_list_new(r, a.u.list->n + b.u.list->n);
            if (!l)
                return r->rc;
            for (size_t i = 0; i < a.u.list->n; i++)
                l->v[l->n++] = a.u.list->v[i];
            for (size_t i = 0; i < b.u.list->n; i++)
                l->v[l->n++] = b.u.list->v[i];
            *out = list_value(l);
            return 0;
        }
        return arith_fail(r, "+", a, b);
    case JB_SUB:
    case JB_MUL:
        if (op == JB_MUL && (a.type == JV_STR || a.type == JV_LIST) && is_int(b))
            return repeat(r, a, as_int(b), out);
        if (op == JB_MUL && (b.type == JV_STR || b.type == JV_LIST) && is_int(a))
            return repeat(r, b, as_int(a), out);
        if (!is_num(a) || !is_num(b))
            return arith_fail(r, op == JB_SUB ? "-" : "*", a, b);
        if (is_int(a) && is_int(b)) {
            bool ovf = op == JB_SUB ? __builtin_sub_overflow(as_int(a), as_int(b), &z)
                                    : __builtin_mul_overflow(as_int(a), as_int(b), &z);
            if (ovf)
                return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            *out = V_INT(z);
        } else {
            *out = V_FLOAT(op == JB_SUB ? as_f(a) - as_f(b) : as_f(a) * as_f(b));
        }
        return 0;
    case JB_DIV:
    case JB_FLOORDIV:
    case JB_MOD:
        if (!is_num(a) || !is_num(b))
            return arith_fail(r, op == JB_DIV ? "/" : op == JB_MOD ? "%" : "//", a, b);
        if (as_f(b) == 0.0)
            return FAIL(r, CHAT_E_RUNTIME, "division by zero");
        if (op == JB_DIV) {
            *out = V_FLOAT(as_f(a) / as_f(b));
            return 0;
        }
        if (is_int(a) && is_int(b)) { /* Python: the quotient floors, the remainder follows b */
            x = as_int(a);
            y = as_int(b);
            if (x == INT64_MIN && y == -1)
                return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q--;
                m += y;
            }
            *out = V_INT(op == JB_FLOORDIV ? q : m);
        } else {
            double fx = as_f(a), fy = as_f(b);
            double m = fmod(fx, fy);
            if (m != 0 && ((m < 0) != (fy < 0)))
                m += fy;
            *out = V_FLOAT(op == JB_FLOORDIV ? floor(fx / fy) : m);
        }
        return 0;
    case JB_POW:
        if (!is_num(a) || !is_num(b))
            return arith_fail(r, "**", a, b);
        if (is_int(a) && is_int(b) && as_int(b) >= 0) {
            /* by squaring: O(log exponent) */
            x = as_int(a);
            y = as_int(b);
            z = 1;
            while (y > 0) {
                if ((y & 1) && __builtin_mul_overflow(z, x, &z))
                    return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
                y >>= 1;
                if (y && __builtin_mul_overflow(x, x, &x))
                    return FAIL(r, CHAT_E_RUNTIME, "integer overflow");
            }
            *out = V_INT(z);
        } else {
            *out = V_FLOAT(pow(as_f(a), as_f(b)));
        }
        return 0;
    case JB_CONCAT: {
        struct jinja_value sa, sb;
        if ((rc = chat__jinja_to_str(r, a, &sa)) || (rc = chat__jinja_to_str(r, b, &sb)))
            return rc;
        return concat(r, sa.u.s.p, sa.u.s.n, sb.u.s.p, sb.u.s.n, out);
    }
    case JB_EQ:
    case JB_NE:
        if ((rc = chat__jinja_equal(r, a, b, &eq)))
            return rc;
        *out = V_BOOL(op == JB_EQ ? eq : !eq);
        return 0;
    case JB_LT:
    case JB_LE:
    case JB_GT:
    case JB_GE:
        if ((rc = chat__jinja_compare(r, a, b, false, &c)))
            return rc;
        *out = V_BOOL(op == JB_LT ? c < 0 : op == JB_LE ? c <= 0 : op == JB_GT ? c > 0 : c >= 0);
        return 0;
    case JB_IN:
    case JB_NOTIN:
        if ((rc = chat__jinja_contains(r, a, b, &in)))
            return rc;
        *out = V_BOOL(op == JB_IN ? in : !in);
        return 0;
    }
    return FAIL(r, CHAT_E_RUNTIME, "unknown operator");
}

/* ---- attributes, items, slices ---- */

static const struct {
    const char *name;
    int id;
} str_methods[] = {
    {"strip", M_STRIP}, {"lstrip", M_LSTRIP}, {"rstrip", M_RSTRIP}, {"upper", M_UPPER},
    {"lower", M_LOWER}, {"title", M_TITLE}, {"capitalize", M_CAPITALIZE},
    {"startswith", M_STARTSWITH}, {"endswith", M_ENDSWITH}, {"split", M_SPLIT},
    {"replace", M_REPLACE}, {"find", M_FIND}, {"join", M_JOIN},
}, dict_methods[] = {
    {"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET},
};

#define NAME_IS(name, n, lit) ((n) == sizeof(lit) - 1 && memcmp((name), (lit), (n)) == 0)

static int loop_attr(struct render *r, struct jinja_value obj, const char *name, size_t n,
                     struct jinja_value *out)
{
    const struct jinja_loop *l = obj.u.loop;
    int64_t i0 = (int64_t)l->index0, len = (int64_t)l->seq->n;
    if (NAME_IS(name, n, "index"))
        *out = V_INT(i0 + 1);
    else if (NAME_IS(name, n, "index0"))
        *out = V_INT(i0);
    else if (NAME_IS(name, n, "revindex"))
        *out = V_INT(len - i0);
    else if (NAME_IS(name, n, "revindex0"))
        *out = V_INT(len - i0 - 1);
    else if (NAME_IS(name, n, "first"))
        *out = V_BOOL(i0 == 0);
    else if (NAME_IS(name, n, "last"))
        *out = V_BOOL(i0 == len - 1);
    else if (NAME_IS(name, n, "length"))
        *out = V_INT(len);
    else if (NAME_IS(name, n, "previtem"))
        *out = i0 > 0 ? l->seq->v[i0 - 1] : V_UNDEF;
    else if (NAME_IS(name, n, "nextitem"))
        *out = i0 + 1 < len ? l->seq->v[i0 + 1] : V_UNDEF;
    else if (NAME_IS(name, n, "depth"))
        *out = V_INT(1);
    else if (NAME_IS(name, n, "depth0"))
        *out = V_INT(0);
    else if (NAME_IS(name, n, "cycle"))
        return chat__jinja_func(r, M_CYCLE, obj, out);
    else
        *out = V_UNDEF;
    return 0;
}

/* Lenient like Jinja's default Undefined: a missing attribute is undefined, and so is any
 * attribute of undefined or none (Jinja would raise only when it is used). */
int chat__jinja_getattr(struct render *r, struct jinja_value obj, const char *name, size_t n,
                        struct jinja_value *out)
{
    *out = V_UNDEF;
    switch (obj.type) {
    case JV_DICT:
        if (!obj.u.dict->ns)
            for (size_t i = 0; i < sizeof(dict_methods) / sizeof(dict_methods[0]); i++)
                if (strlen(dict_methods[i].name) == n && memcmp(dict_methods[i].name, name, n) == 0)
                    return chat__jinja_func(r, dict_methods[i].id, obj, out);
        {
            struct jinja_value *v = chat__jinja_dict_find(obj.u.dict, name, n);
            if (v)
                *out = *v;
        }
        return 0;
    case JV_STR:
        for (size_t i = 0; i < sizeof(str_methods) / sizeof(str_methods[0]); i++)
            if (strlen(str_methods[i].name) == n && memcmp(str_methods[i].name, name, n) == 0)
                return chat__jinja_func(r, str_methods[i].id, obj, out);
        return 0;
    case JV_LOOP:
        return loop_attr(r, obj, name, n, out);
    default:
        return 0;
    }
}

int chat__jinja_getitem(struct render *r, struct jinja_value obj, struct jinja_value key,
                        struct jinja_value *out)
{
    *out = V_UNDEF;
    int rc, eq;
    switch (obj.type) {
    case JV_LIST:
        if (is_int(key)) {
            int64_t i = as_int(key), n = (int64_t)obj.u.list->n;
            if (i < 0)
                i += n;
            if (i >= 0 && i < n)
                *out = obj.u.list->v[i];
        }
        return 0;
    case JV_STR:
        if (is_int(key)) {
            int64_t i = as_int(key), n = (int64_t)chat__jinja_cp_count(obj.u.s.p, obj.u.s.n);
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                size_t off = chat__jinja_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
                *out = V_STR(obj.u.s.p + off, chat__jinja_cp_len_at(obj.u.s.p, obj.u.s.n, off));
            }
        }
        return 0;
    case JV_DICT:
        for (size_t i = 0; i < obj.u.dict->n; i++) {
            if ((rc = chat__jinja_equal(r, obj.u.dict->k[i], key, &eq)))
                return rc;
            if (eq) {
                *out = obj.u.dict->v[i];
                return 0;
            }
        }
        if (key.type == JV_STR) /* Jinja falls back to the attribute: d['items'] */
            return chat__jinja_getattr(r, obj, key.u.s.p, key.u.s.n, out);
        return 0;
    case JV_LOOP:
        if (key.type == JV_STR)
            return loop_attr(r, obj, key.u.s.p, key.u.s.n, out);
        return 0;
    default:
        return 0;
    }
}

/* Python's slice index adjustment. */
static int slice_bound(struct render *r, struct jinja_value v, int64_t len, int64_t step,
                       bool is_start, int64_t *out)
{
    if (v.type == JV_NONE || v.type == JV_UNDEF) {
        *out = step > 0 ? (is_start ? 0 : len) : (is_start ? len - 1 : -1);
        return 0;
    }
    if (!is_int(v))
        return FAIL(r, CHAT_E_RUNTIME, "slice indices must be integers, not %s",
                    chat__jinja_type_name(v));
    int64_t i = as_int(v);
    if (i < 0) {
        i += len;
        if (i < 0)
            i = step > 0 ? 0 : -1;
    } else if (i >= len) {
        i = step > 0 ? len : len - 1;
    }
    *out = i;
    return 0;
}

int chat__jinja_slice(struct render *r, struct jinja_value obj, struct jinja_value start,
                      struct jinja_value stop, struct jinja_value step, struct jinja_value *out)
{
    if (obj.type == JV_UNDEF || obj.type == JV_NONE) {
        *out = V_UNDEF;
        return 0;
    }
    if (obj.type != JV_LIST && obj.type != JV_STR)
        return FAIL(r, CHAT_E_RUNTIME, "cannot slice a %s", chat__jinja_type_name(obj));
    int64_t st = 1, b, e;
    if (step.type != JV_NONE && step.type != JV_UNDEF) {
        if (!is_int(step) || as_int(step) == 0)
            return FAIL(r, CHAT_E_RUNTIME, "slice step must be a non-zero integer");
        st = as_int(step);
    }
    bool is_str = obj.type == JV_STR;
    int64_t len = is_str ? (int64_t)chat__jinja_cp_count(obj.u.s.p, obj.u.s.n) : (int64_t)obj.u.list->n;
    int rc;
    if ((rc = slice_bound(r, start, len, st, true, &b)) ||
        (rc = slice_bound(r, stop, len, st, false, &e)))
        return rc;
    if (is_str && st == 1) {
        size_t ob = chat__jinja_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)b);
        size_t oe = e > b ? chat__jinja_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)e) : ob;
        *out = V_STR(obj.u.s.p + ob, oe - ob);
        return 0;
    }
    /* b and e lie in [-1, len]: the element count and every index b + j*st stay small */
    size_t count = 0;
    if (st > 0 && e > b)
        count = (size_t)((e - b - 1) / st) + 1;
    else if (st < 0 && b > e)
        count = st == INT64_MIN ? 1 : (size_t)((b - e - 1) / -st) + 1;
    if (!is_str) {
        struct jinja_list *l = chat__jinja_list_new(r, count);
        if (!l)
            return r->rc;
        for (size_t j = 0; j < count; j++)
            l->v[l->n++] = obj.u.list->v[b + (int64_t)j * (st == INT64_MIN ? 0 : st)];
        *out = list_value(l);
        return 0;
    }
    struct sink s = {.max = r->in->max_output};
    for (size_t j = 0; !rc && j < count; j++) {
        int64_t i = b + (int64_t)j * (st == INT64_MIN ? 0 : st);
        size_t off = chat__jinja_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
        rc = chat__jinja_put(r, &s, obj.u.s.p + off, chat__jinja_cp_len_at(obj.u.s.p, obj.u.s.n, off));
    }
    if (!rc)
        rc = chat__jinja_str_new(r, s.p ? s.p : "", s.n, out);
    free(s.p);
    return rc;
}

int chat__jinja_iterate(struct render *r, struct jinja_value v, struct jinja_list **out)
{
    struct jinja_list *l;
    switch (v.type) {
    case JV_LIST:
        *out = v.u.list;
        return 0;
    case JV_DICT:
        if (!(l = chat__jinja_list_new(r, v.u.dict->n)))
            return r->rc;
        for (size_t i = 0; i < v.u.dict->n; i++)
            l->v[l->n++] = v.u.dict->k[i];
        *out = l;
        return 0;
    case JV_STR: {
        size_t n = chat__jinja_cp_count(v.u.s.p, v.u.s.n);
        if (!(l = chat__jinja_list_new(r, n)))
            return r->rc;
        for (size_t off = 0; off < v.u.s.n && l->n < n;) {
            size_t k = chat__jinja_cp_len_at(v.u.s.p, v.u.s.n, off);
            l->v[l->n++] = V_STR(v.u.s.p + off, k);
            off += k;
        }
        *out = l;
        return 0;
    }
    case JV_UNDEF:
        if (!(l = chat__jinja_list_new(r, 0)))
            return r->rc;
        *out = l;
        return 0;
    default:
        return FAIL(r, CHAT_E_RUNTIME, "a %s is not iterable", chat__jinja_type_name(v));
    }
}

/* Follows a dotted attribute path ("function.name"; numeric parts index lists). */
int chat__jinja_attr_path(struct render *r, struct jinja_value v, const char *path, size_t n,
                     struct jinja_value *out)
{
    size_t i = 0;
    int rc;
    while (i <= n) {
        size_t e = i;
        while (e < n && path[e] != '.')
            e++;
        bool numeric = e > i;
        for (size_t k = i; k < e; k++)
            numeric = numeric && path[k] >= '0' && path[k] <= '9';
        if (numeric) {
            int64_t idx = 0;
            for (size_t k = i; k < e && idx < INT32_MAX; k++)
                idx = idx * 10 + (path[k] - '0');
            rc = chat__jinja_getitem(r, v, V_INT(idx), &v);
        } else {
            rc = chat__jinja_getattr(r, v, path + i, e - i, &v);
        }
        if (rc)
            return rc;
        i = e + 1;
    }
    *out = v;
    return 0;
}

