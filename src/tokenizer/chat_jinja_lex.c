/* Jinja subset: arena, filter/test names, and the lexer (whitespace control, trim_blocks,
 * lstrip_blocks). */
#include "tokenizer/chat_jinja.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct jinja_chunk {
    struct jinja_chunk *next;
    size_t size, used;
};

#define CHUNK_HEAD ((sizeof(struct jinja_chunk) + 15) & ~(size_t)15)

/* Under AddressSanitizer every request gets its own malloc, so that an overrun of one
 * allocation hits a redzone instead of its neighbour in a chunk. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_PRECISE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_PRECISE 1
#endif
#endif

void *chat__arena_alloc(struct jinja_arena *a, size_t n)
{
    if (n > ((size_t)1 << 40)) {
        a->hit_cap = true;
        return NULL;
    }
#ifdef ARENA_PRECISE
    if (a->cap && a->total + n + CHUNK_HEAD > a->cap) {
        a->hit_cap = true;
        return NULL;
    }
    struct jinja_chunk *own = malloc(CHUNK_HEAD + n);
    if (!own)
        return NULL;
    own->size = own->used = n;
    own->next = a->head;
    a->head = own;
    a->total += CHUNK_HEAD + n;
    return (char *)own + CHUNK_HEAD;
#endif
    n = (n + 15) & ~(size_t)15;
    struct jinja_chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = (char *)c + CHUNK_HEAD + c->used;
        c->used += n;
        return p;
    }
    /* chunks double from 4 KiB up to 1 MiB; bigger requests get a chunk of their own */
    size_t size = c ? c->size * 2 : 4096;
    if (size > ((size_t)1 << 20))
        size = (size_t)1 << 20;
    if (size < n)
        size = n;
    if (a->cap && a->total + size + CHUNK_HEAD > a->cap) {
        size = n; /* a last chunk just big enough, if that still fits */
        if (a->total + size + CHUNK_HEAD > a->cap) {
            a->hit_cap = true;
            return NULL;
        }
    }
    struct jinja_chunk *nc = malloc(CHUNK_HEAD + size);
    if (!nc)
        return NULL;
    nc->size = size;
    nc->used = n;
    a->total += CHUNK_HEAD + size;
    if (c && size == n && c->size - c->used >= 256) {
        /* a dedicated chunk for a big request goes behind the current one, which keeps
         * serving small requests */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return (char *)nc + CHUNK_HEAD;
}

void chat__arena_free(struct jinja_arena *a)
{
    struct jinja_chunk *c = a->head;
    while (c) {
        struct jinja_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- filter and test names ---- */

struct name_id {
    const char *name;
    int id;
};

static const struct name_id filter_names[] = {
    {"abs", JF_ABS}, {"attr", JF_ATTR}, {"capitalize", JF_CAPITALIZE}, {"count", JF_LENGTH},
    {"d", JF_DEFAULT}, {"default", JF_DEFAULT}, {"dictsort", JF_DICTSORT}, {"e", JF_ESCAPE},
    {"escape", JF_ESCAPE}, {"first", JF_FIRST}, {"float", JF_FLOAT}, {"indent", JF_INDENT},
    {"int", JF_INT}, {"items", JF_ITEMS}, {"join", JF_JOIN}, {"last", JF_LAST},
    {"length", JF_LENGTH}, {"list", JF_LIST}, {"lower", JF_LOWER}, {"map", JF_MAP},
    {"max", JF_MAX}, {"min", JF_MIN}, {"reject", JF_REJECT}, {"rejectattr", JF_REJECTATTR},
    {"replace", JF_REPLACE}, {"reverse", JF_REVERSE}, {"round", JF_ROUND}, {"safe", JF_SAFE},
    {"select", JF_SELECT}, {"selectattr", JF_SELECTATTR}, {"sort", JF_SORT},
    {"string", JF_STRING}, {"sum", JF_SUM}, {"title", JF_TITLE}, {"tojson", JF_TOJSON},
    {"trim", JF_TRIM}, {"unique", JF_UNIQUE}, {"upper", JF_UPPER}, {"wordcount", JF_WORDCOUNT},
};

static const struct name_id test_names[] = {
    {"boolean", JT_BOOLEAN}, {"callable", JT_CALLABLE}, {"defined", JT_DEFINED},
    {"divisibleby", JT_DIVISIBLEBY}, {"eq", JT_EQ}, {"equalto", JT_EQ}, {"even", JT_EVEN},
    {"false", JT_FALSE}, {"float", JT_FLOAT}, {"ge", JT_GE}, {"gt", JT_GT},
    {"greaterthan", JT_GT}, {"in", JT_IN}, {"integer", JT_INTEGER}, {"iterable", JT_ITERABLE},
    {"le", JT_LE}, {"lessthan", JT_LT}, {"lower", JT_LOWER}, {"lt", JT_LT},
    {"mapping", JT_MAPPING}, {"ne", JT_NE}, {"none", JT_NONE}, {"number", JT_NUMBER},
    {"odd", JT_ODD}, {"sameas", JT_SAMEAS}, {"sequence", JT_SEQUENCE}, {"string", JT_STRING},
    {"true", JT_TRUE}, {"undefined", JT_UNDEFINED}, {"upper", JT_UPPER},
};

static int lookup_name(const struct name_id *t, size_t count, const char *name, size_t n)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(t[i].name) == n && memcmp(t[i].name, name, n) == 0)
            return t[i].id;
    return 0;
}

int chat__jinja_filter_id(const char *name, size_t n)
{
    return lookup_name(filter_names, sizeof(filter_names) / sizeof(filter_names[0]), name, n);
}

int chat__jinja_test_id(const char *name, size_t n)
{
    return lookup_name(test_names, sizeof(test_names) / sizeof(test_names[0]), name, n);
}

/* ---- lexer ---- */

struct lexer {
    const char *src;
    size_t len, pos;
    size_t line_pos; /* lines are counted up to here */
    int line;
    struct jinja_arena *arena;
    struct jinja_token *toks;
    size_t n, cap;
    char *err;
    size_t errlen;
};

static int lex_fail(struct lexer *lx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lex_fail(struct lexer *lx, int rc, const char *fmt, ...)
{
    if (lx->err && lx->errlen) {
        int k = snprintf(lx->err, lx->errlen, "line %d: ", lx->line);
        if (k > 0 && (size_t)k < lx->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(lx->err + k, lx->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

static void count_lines(struct lexer *lx, size_t upto)
{
    for (; lx->line_pos < upto; lx->line_pos++)
        if (lx->src[lx->line_pos] == '\n')
            lx->line++;
}

static struct jinja_token *push_tok(struct lexer *lx, enum jinja_tok_kind kind)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        struct jinja_token *t = chat__arena_alloc(lx->arena, cap * sizeof(*t));
        if (!t)
            return NULL;
        if (lx->n)
            memcpy(t, lx->toks, lx->n * sizeof(*t));
        lx->toks = t;
        lx->cap = cap;
    }
    struct jinja_token *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->line = lx->line;
    return t;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Appends the UTF-8 encoding of cp. */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A quoted string with Python escapes; lx->pos is at the opening quote. */
static int lex_string(struct lexer *lx)
{
    char q = lx->src[lx->pos];
    size_t start = lx->pos + 1, i = start;
    while (i < lx->len && lx->src[i] != q) {
        if (lx->src[i] == '\\' && i + 1 < lx->len)
            i++;
        i++;
    }
    if (i >= lx->len)
        return lex_fail(lx, CHAT_E_SYNTAX, "unterminated string literal");
    /* unescaped text is never longer than the source (\U escapes: 10 bytes -> 4) */
    char *o = chat__arena_alloc(lx->arena, i - start + 1);
    struct jinja_token *t = push_tok(lx, TK_STRING);
    if (!o || !t)
        return CHAT_E_NOMEM;
    size_t n = 0;
    for (size_t k = start; k < i; k++) {
        char c = lx->src[k];
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        char e = lx->src[++k];
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits) {
            uint32_t cp = 0;
            int ok = k + (size_t)digits < i;
            for (int d = 1; ok && d <= digits; d++) {
                int h = hex_val(lx->src[k + (size_t)d]);
                if (h < 0)
                    ok = 0;
                else
                    cp = cp * 16 + (uint32_t)h;
            }
            if (!ok || cp > 0x10FFFF)
                return lex_fail(lx, CHAT_E_SYNTAX, "bad \\%c escape in string literal", e);
            n += put_utf8(o + n, cp);
            k += (size_t)digits;
            continue;
        }
        switch (e) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'v': o[n++] = '\v'; break;
        case 'a': o[n++] = '\a'; break;
        case '0': o[n++] = '\0'; break;
        case '\\': o[n++] = '\\'; break;
        case '\'': o[n++] = '\''; break;
        case '"': o[n++] = '"'; break;
        case '\n': break; /* line continuation */
        default: /* unknown escapes stay as written, as in Python */
            o[n++] = '\\';
            o[n++] = e;
        }
    }
    o[n] = 0;
    t->s = o;
    t->n = n;
    lx->pos = i + 1;
    return 0;
}

static int lex_number(struct lexer *lx)
{
    size_t i = lx->pos;
    char buf[64];
    size_t bn = 0;
    int is_float = 0;
    while (i < lx->len && (is_digit(lx->src[i]) || lx->src[i] == '_' ||
                           (lx->src[i] == '.' && !is_float && i + 1 < lx->len &&
                            is_digit(lx->src[i + 1])) ||
                           ((lx->src[i] == 'e' || lx->src[i] == 'E') && bn > 0))) {
        char c = lx->src[i];
        if (c == '.')
            is_float = 1;
        if (c == 'e' || c == 'E') {
            is_float = 1;
            if (bn < sizeof(buf) - 1)
                buf[bn++] = c;
            i++;
            if (i < lx->len && (lx->src[i] == '+' || lx->src[i] == '-')) {
                if (bn < sizeof(buf) - 1)
                    buf[bn++] = lx->src[i];
                i++;
            }
            continue;
        }
        if (c != '_' && bn < sizeof(buf) - 1)
            buf[bn++] = c;
        i++;
    }
    buf[bn] = 0;
    struct jinja_token *t = push_tok(lx, is_float ? TK_FLOAT : TK_INT);
    if (!t)
        return CHAT_E_NOMEM;
    errno = 0;
    char *end = NULL;
    if (is_float) {
        t->f = strtod(buf, &end);
    } else {
        long long v = strtoll(buf, &end, 10);
        if (errno == ERANGE)
            return lex_fail(lx, CHAT_E_SYNTAX, "integer literal out of range");
        t->i = v;
    }
    if (!end || *end)
        return lex_fail(lx, CHAT_E_SYNTAX, "bad number '%s'", buf);
    lx->pos = i;
    return 0;
}

static int lex_operator(struct lexer *lx)
{
    const char *s = lx->src + lx->pos;
    size_t left = lx->len - lx->pos;
    static const struct {
        const char *text;
        int op;
    } two[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"//", OP_FLOORDIV},
               {"**", OP_POW}};
    for (size_t k = 0; k < sizeof(two) / sizeof(two[0]); k++)
        if (left >= 2 && s[0] == two[k].text[0] && s[1] == two[k].text[1]) {
            struct jinja_token *t = push_tok(lx, TK_OP);
            if (!t)
                return CHAT_E_NOMEM;
            t->op = two[k].op;
            lx->pos += 2;
            return 0;
        }
    if (strchr("+-*/%~<>=|.,:()[]{}", s[0]) && s[0]) {
        struct jinja_token *t = push_tok(lx, TK_OP);
        if (!t)
            return CHAT_E_NOMEM;
        t->op = (unsigned char)s[0];
        lx->pos++;
        return 0;
    }
    return lex_fail(lx, CHAT_E_SYNTAX, "unexpected character '%c' in tag", s[0]);
}

static int starts(const struct lexer *lx, size_t at, const char *s)
{
    size_t n = strlen(s);
    return at + n <= lx->len && memcmp(lx->src + at, s, n) == 0;
}

/* The end of {% raw %}: returns the offset of "{%" of the matching endraw tag, and its end. */
static int find_endraw(const struct lexer *lx, size_t from, size_t *tag_start, size_t *tag_end,
                       char *mod_before, char *mod_after)
{
    for (size_t i = from; i + 1 < lx->len; i++) {
        if (lx->src[i] != '{' || lx->src[i + 1] != '%')
            continue;
        size_t k = i + 2;
        char mb = 0;
        if (k < lx->len && (lx->src[k] == '-' || lx->src[k] == '+'))
            mb = lx->src[k++];
        while (k < lx->len && is_space(lx->src[k]))
            k++;
        if (!starts(lx, k, "endraw"))
            continue;
        k += 6;
        while (k < lx->len && is_space(lx->src[k]))
            k++;
        char ma = 0;
        if (k < lx->len && (lx->src[k] == '-' || lx->src[k] == '+'))
            ma = lx->src[k++];
        if (!starts(lx, k, "%}"))
            continue;
        *tag_start = i;
        *tag_end = k + 2;
        *mod_before = mb;
        *mod_after = ma;
        return 1;
    }
    return 0;
}

static int emit_text(struct lexer *lx, size_t a, size_t b)
{
    if (b <= a)
        return 0;
    struct jinja_token *t = push_tok(lx, TK_TEXT);
    if (!t)
        return CHAT_E_NOMEM;
    t->s = lx->src + a;
    t->n = b - a;
    return 0;
}

static int lex(struct lexer *lx)
{
    int strip_ws = 0, trim_nl = 0, rc;
    while (lx->pos <= lx->len) {
        /* next tag start */
        size_t q = lx->pos;
        while (q + 1 < lx->len &&
               !(lx->src[q] == '{' && (lx->src[q + 1] == '{' || lx->src[q + 1] == '%' ||
                                       lx->src[q + 1] == '#')))
            q++;
        if (q + 1 >= lx->len)
            q = lx->len;
        size_t a = lx->pos, b = q;
        if (strip_ws)
            while (a < b && is_space(lx->src[a]))
                a++;
        else if (trim_nl && a < b && lx->src[a] == '\n')
            a++;
        else if (trim_nl && a + 1 < b && lx->src[a] == '\r' && lx->src[a + 1] == '\n')
            a += 2;
        int line_starting = a == 0 || lx->src[a - 1] == '\n';
        char kind = 0, mod = 0;
        if (q < lx->len) {
            kind = lx->src[q + 1];
            if (q + 2 < lx->len && (lx->src[q + 2] == '-' || lx->src[q + 2] == '+'))
                mod = lx->src[q + 2];
            if (mod == '-') {
                while (b > a && is_space(lx->src[b - 1]))
                    b--;
            } else if ((kind == '%' || kind == '#') && mod != '+') {
                /* lstrip_blocks: spaces and tabs from the start of the line up to the tag */
                size_t l = b;
                while (l > a && lx->src[l - 1] != '\n')
                    l--;
                int has_nl = l > a;
                size_t k = l;
                while (k < b && (lx->src[k] == ' ' || lx->src[k] == '\t'))
                    k++;
                if (k == b && (has_nl || line_starting))
                    b = l;
            }
        }
        if ((rc = emit_text(lx, a, b)))
            return rc;
        if (q >= lx->len)
            break;
        count_lines(lx, q);
        strip_ws = trim_nl = 0;
        lx->pos = q + 2 + (mod ? 1 : 0);
        if (kind == '#') {
            size_t e = lx->pos;
            while (e + 1 < lx->len && !(lx->src[e] == '#' && lx->src[e + 1] == '}'))
                e++;
            if (e + 1 >= lx->len)
                return lex_fail(lx, CHAT_E_SYNTAX, "unterminated comment");
            char m = e > lx->pos ? lx->src[e - 1] : 0;
            strip_ws = m == '-';
            trim_nl = m != '-' && m != '+';
            lx->pos = e + 2;
            count_lines(lx, lx->pos);
            continue;
        }
        int is_block = kind == '%';
        int nesting = 0; /* brackets open in the tag: "}}" inside {{ {'a': {}} }} is not an end */
        int passed_end = 0;
        size_t first_tok = lx->n;
        struct jinja_token *bt = push_tok(lx, is_block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN);
        if (!bt)
            return CHAT_E_NOMEM;
        for (;;) {
            while (lx->pos < lx->len && is_space(lx->src[lx->pos]))
                lx->pos++;
            count_lines(lx, lx->pos);
            if (lx->pos >= lx->len)
                return lex_fail(lx, CHAT_E_SYNTAX, "unterminated %s tag%s",
                                is_block ? "{% %}" : "{{ }}",
                                passed_end ? " (unbalanced brackets)" : "");
            const char *end = is_block ? "%}" : "}}";
            char m = 0;
            size_t e = lx->pos;
            if ((lx->src[e] == '-' || lx->src[e] == '+') && starts(lx, e + 1, end))
                m = lx->src[e++];
            if (!is_block && nesting > 0 && starts(lx, e, end))
                passed_end = 1;
            if ((is_block || nesting == 0) && starts(lx, e, end)) {
                if (!push_tok(lx, is_block ? TK_BLOCK_END : TK_VAR_END))
                    return CHAT_E_NOMEM;
                lx->pos = e + 2;
                strip_ws = m == '-';
                trim_nl = is_block && m == 0;
                break;
            }
            char c = lx->src[lx->pos];
            if (is_name_start(c)) {
                size_t s = lx->pos;
                while (lx->pos < lx->len &&
                       (is_name_start(lx->src[lx->pos]) || is_digit(lx->src[lx->pos])))
                    lx->pos++;
                struct jinja_token *t = push_tok(lx, TK_NAME);
                if (!t)
                    return CHAT_E_NOMEM;
                t->s = lx->src + s;
                t->n = lx->pos - s;
            } else if (is_digit(c)) {
                if ((rc = lex_number(lx)))
                    return rc;
            } else if (c == '\'' || c == '"') {
                if ((rc = lex_string(lx)))
                    return rc;
            } else {
                if ((rc = lex_operator(lx)))
                    return rc;
                int op = lx->toks[lx->n - 1].op;
                if (op == '(' || op == '[' || op == '{')
                    nesting++;
                else if ((op == ')' || op == ']' || op == '}') && nesting > 0)
                    nesting--;
            }
        }
        /* {% raw %}...{% endraw %}: the content is text */
        if (is_block && lx->n == first_tok + 3 && lx->toks[first_tok + 1].kind == TK_NAME &&
            lx->toks[first_tok + 1].n == 3 && memcmp(lx->toks[first_tok + 1].s, "raw", 3) == 0) {
            lx->n = first_tok;
            size_t ts, te;
            char mb, ma;
            if (!find_endraw(lx, lx->pos, &ts, &te, &mb, &ma))
                return lex_fail(lx, CHAT_E_SYNTAX, "unterminated {%% raw %%} block");
            size_t ra = lx->pos, rb = ts;
            if (strip_ws)
                while (ra < rb && is_space(lx->src[ra]))
                    ra++;
            else if (trim_nl && ra < rb && lx->src[ra] == '\n')
                ra++;
            if (mb == '-')
                while (rb > ra && is_space(lx->src[rb - 1]))
                    rb--;
            if ((rc = emit_text(lx, ra, rb)))
                return rc;
            lx->pos = te;
            count_lines(lx, te);
            strip_ws = ma == '-';
            trim_nl = ma == 0;
        }
    }
    if (!push_tok(lx, TK_EOF))
        return CHAT_E_NOMEM;
    return 0;
}

int chat__jinja_lex(struct jinja_arena *arena, const char *src, size_t len,
                    struct jinja_token **toks, size_t *n, char *errbuf, size_t errlen)
{
    struct lexer lx = {.src = src, .len = len, .line = 1, .arena = arena, .err = errbuf,
                       .errlen = errlen};
    int rc = lex(&lx);
    *toks = lx.toks;
    *n = lx.n;
    return rc;
}
