/* Byte-level JSON(-Schema) matcher, token texts of a vocabulary, and the sampler stage. */
#include "engine/json_schema_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

/* ---- matcher state: a stack of fixed-size frames ---- */

enum frame_kind { F_OBJ, F_ARR, F_STR, F_KEY, F_NUM, F_LIT };

/* Object phases: after '{', after ',', after a key, after ':' (value pending or in a child
 * frame), after a value. */
enum { O_OPEN, O_NEXT, O_COLON, O_VALUE, O_AFTER };
/* Array phases: after '[', after ',', value in a child frame, after a value. */
enum { A_OPEN, A_NEXT, A_VALUE, A_AFTER };
/* Number phases (the JSON number grammar). */
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
/* String escape phases: plain, after '\', \u digits 0-3, expecting the low surrogate's '\'
 * and 'u', low surrogate digits 0-3. */
enum { P_PLAIN, P_BS, P_U0, P_U3 = P_U0 + 3, P_LBS, P_LU, P_L0, P_L3 = P_L0 + 3 };

#define PROP_ADDITIONAL 0xFFFF
#define JM_FRAMES (JSON__MAX_DEPTH + 1) /* containers, plus one string/number/literal on top */

struct jm_frame {
    uint8_t kind;  /* enum frame_kind */
    uint8_t phase; /* container, number or string-escape phase */
    uint8_t u8;    /* UTF-8 continuation bytes still due (bits 0-1), their range (bits 2-4) */
    uint8_t free;  /* F_KEY: names outside the listed properties are allowed */
    uint32_t node;
    uint32_t a;      /* F_ARR: items; F_STR: code points; F_KEY/F_LIT: bytes; F_NUM: digit counts */
    uint16_t hex;    /* \u value being read */
    uint16_t prop;   /* F_OBJ: property whose value is pending (PROP_ADDITIONAL: another key) */
    uint32_t lo, hi; /* F_KEY/F_LIT: candidate names/literals still matching, [lo, hi) */
    uint64_t seen;   /* F_OBJ: properties present */
};

struct jm_state {
    uint16_t depth;
    uint8_t done;   /* the top-level value is complete */
    uint8_t ws_run; /* whitespace bytes in the current gap */
    uint8_t ws_nl;  /* newlines in the current gap */
    struct jm_frame fr[JM_FRAMES];
};

struct json_match {
    const struct json_schema *s;
    struct jm_state st;
};

/* Copies only the live frames: typical states are a few hundred bytes, not the whole stack. */
static void jm_copy(struct jm_state *dst, const struct jm_state *src)
{
    memcpy(dst, src, offsetof(struct jm_state, fr) + src->depth * sizeof(src->fr[0]));
}

enum { R_REJ = -1, R_OK = 0, R_WS = 1, R_POP = 2 };

static int gap(struct jm_state *st, uint8_t c)
{
    if (st->ws_run >= JSON__WS_MAX)
        return R_REJ;
    if (c == '\n') {
        if (st->ws_nl)
            return R_REJ;
        st->ws_nl = 1;
    }
    st->ws_run++;
    return R_WS;
}

static inline bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\t';
}

static struct jm_frame *push(struct jm_state *st, uint8_t kind, uint32_t node)
{
    struct jm_frame *f = &st->fr[st->depth++];
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->node = node;
    return f;
}

/* The top frame's value is complete: pop it and tell the container below. */
static void pop_done(struct jm_state *st)
{
    if (--st->depth == 0) {
        st->done = 1;
        return;
    }
    struct jm_frame *p = &st->fr[st->depth - 1];
    if (p->kind == F_OBJ) {
        if (p->prop != PROP_ADDITIONAL)
            p->seen |= (uint64_t)1 << p->prop;
        p->phase = O_AFTER;
    } else {
        p->a++;
        p->phase = A_AFTER;
    }
}

/* Narrows the candidate range [*lo, *hi) of strs[first..] (sorted, sharing their first pos
 * bytes) to those whose byte at pos is c. */
static void narrow(const struct json_schema *s, uint32_t first, uint32_t *lo, uint32_t *hi,
                   uint32_t pos, uint8_t c)
{
    const struct json__str *v = s->strs + first;
    const uint8_t *b = (const uint8_t *)s->bytes;
#define KEY(i) (v[i].len > pos ? (int)b[v[i].off + pos] : -1)
    uint32_t l = *lo, h = *hi;
    while (l < h) { /* first with KEY >= c */
        uint32_t m = l + (h - l) / 2;
        if (KEY(m) < c)
            l = m + 1;
        else
            h = m;
    }
    uint32_t start = l;
    h = *hi;
    while (l < h) { /* first with KEY > c */
        uint32_t m = l + (h - l) / 2;
        if (KEY(m) <= c)
            l = m + 1;
        else
            h = m;
    }
#undef KEY
    *lo = start;
    *hi = l;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One byte inside a string: 1 content, 2 the closing quote, R_REJ. *cp: it starts a code
 * point. Rejects what strict parsers reject: control bytes, bad escapes, \u0000, unpaired
 * surrogates, malformed or overlong UTF-8. */
static int str_byte(struct jm_frame *f, uint8_t c, int *cp)
{
    static const uint8_t lo_of[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
    static const uint8_t hi_of[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    *cp = 0;
    if (f->u8 & 3) {
        int code = f->u8 >> 2;
        if (c < lo_of[code] || c > hi_of[code])
            return R_REJ;
        f->u8 = (uint8_t)((f->u8 & 3) - 1);
        return 1;
    }
    int h;
    switch (f->phase) {
    case P_PLAIN:
        if (c == '"')
            return 2;
        *cp = 1;
        if (c == '\\') {
            f->phase = P_BS;
            return 1;
        }
        if (c < 0x20)
            return R_REJ;
        if (c < 0x80)
            return 1;
        if (c >= 0xC2 && c <= 0xDF)
            f->u8 = 1;
        else if (c == 0xE0)
            f->u8 = 2 | 1 << 2;
        else if (c == 0xED)
            f->u8 = 2 | 2 << 2;
        else if (c >= 0xE1 && c <= 0xEF)
            f->u8 = 2;
        else if (c == 0xF0)
            f->u8 = 3 | 3 << 2;
        else if (c >= 0xF1 && c <= 0xF3)
            f->u8 = 3;
        else if (c == 0xF4)
            f->u8 = 3 | 4 << 2;
        else
            return R_REJ;
        return 1;
    case P_BS:
        if (c == 'u') {
            f->phase = P_U0;
            f->hex = 0;
            return 1;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return R_REJ;
        f->phase = P_PLAIN;
        return 1;
    case P_LBS:
        if (c != '\\')
            return R_REJ;
        f->phase = P_LU;
        return 1;
    case P_LU:
        if (c != 'u')
            return R_REJ;
        f->phase = P_L0;
        return 1;
    default:
        if ((h = hexval(c)) < 0)
            return R_REJ;
        if (f->phase >= P_L0) { /* low surrogate: DC00..DFFF */
            int i = f->phase - P_L0;
            if ((i == 0 && h != 0xD) || (i == 1 && h < 0xC))
                return R_REJ;
            f->phase = i == 3 ? P_PLAIN : f->phase + 1;
            return 1;
        }
        int i = f->phase - P_U0;
        if (i == 1 && f->hex == 0xD && h >= 0xC) /* a low surrogate with no high one */
            return R_REJ;
        f->hex = (uint16_t)(f->hex * 16 + h);
        if (i < 3) {
            f->phase++;
            return 1;
        }
        if (f->hex == 0)
            return R_REJ;
        f->phase = (f->hex >= 0xD800 && f->hex <= 0xDBFF) ? P_LBS : P_PLAIN;
        return 1;
    }
}

static int begin_value(const struct json_schema *s, struct jm_state *st, uint32_t node, uint8_t c);

/* Whitespace, or the first byte of a value of `node`. */
static int gap_or_value(const struct json_schema *s, struct jm_state *st, uint32_t node, uint8_t c)
{
    return is_ws(c) ? gap(st, c) : begin_value(s, st, node, c);
}

static int num_step(const struct json_schema *s, struct jm_frame *f, uint8_t c)
{
    const struct json__node *nd = &s->nodes[f->node];
    bool integer = nd->kind == JSON__INTEGER;
    bool digit = c >= '0' && c <= '9';
    uint32_t n_int = f->a & 0xFF, n_frac = (f->a >> 8) & 0xFF, n_exp = f->a >> 16;
    switch (f->phase) {
    case N_START:
        if (c == '-' && !nd->nonneg) {
            f->phase = N_MINUS;
            return R_OK;
        }
        /* fall through */
    case N_MINUS:
        if (!digit)
            return R_REJ;
        f->phase = c == '0' ? N_ZERO : N_INT;
        f->a = 1;
        return R_OK;
    case N_ZERO:
    case N_INT:
        if (digit && f->phase == N_INT && n_int < JSON__INT_DIGITS) {
            f->a++;
            return R_OK;
        }
        if (!integer && c == '.') {
            f->phase = N_DOT;
            return R_OK;
        }
        if (!integer && (c == 'e' || c == 'E')) {
            f->phase = N_E;
            return R_OK;
        }
        return R_POP;
    case N_DOT:
        if (!digit)
            return R_REJ;
        f->phase = N_FRAC;
        f->a += 1 << 8;
        return R_OK;
    case N_FRAC:
        if (digit && n_frac < JSON__FRAC_DIGITS) {
            f->a += 1 << 8;
            return R_OK;
        }
        if (c == 'e' || c == 'E') {
            f->phase = N_E;
            return R_OK;
        }
        return R_POP;
    case N_E:
        if (c == '+' || c == '-') {
            f->phase = N_ESIGN;
            return R_OK;
        }
        /* fall through */
    case N_ESIGN:
        if (!digit)
            return R_REJ;
        f->phase = N_EXP;
        f->a += 1 << 16;
        return R_OK;
    default: /* N_EXP */
        if (digit && n_exp < JSON__EXP_DIGITS) {
            f->a += 1 << 16;
            return R_OK;
        }
        return R_POP;
    }
}

static bool num_accepting(const struct jm_frame *f)
{
    return f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC || f->phase == N_EXP;
}

/* The literal at lo matches exactly what was read. */
static bool lit_exact(const struct json_schema *s, const struct jm_frame *f)
{
    const struct json__node *nd = &s->nodes[f->node];
    return f->lo < f->hi && s->strs[nd->u.lit.lits + f->lo].len == f->a;
}

static int lit_step(const struct json_schema *s, struct jm_state *st, struct jm_frame *f, uint8_t c)
{
    uint32_t lo = f->lo, hi = f->hi;
    narrow(s, s->nodes[f->node].u.lit.lits, &lo, &hi, f->a, c);
    if (lo == hi) /* a number literal may end where a longer one would go on */
        return lit_exact(s, f) ? R_POP : R_REJ;
    f->lo = lo;
    f->hi = hi;
    f->a++;
    if (hi - lo == 1 && lit_exact(s, f))
        pop_done(st);
    return R_OK;
}

static int str_step(const struct json_schema *s, struct jm_state *st, struct jm_frame *f, uint8_t c)
{
    const struct json__node *nd = &s->nodes[f->node];
    int cp;
    int r = str_byte(f, c, &cp);
    if (r == 2) {
        if (f->a < nd->u.str.min)
            return R_REJ;
        pop_done(st);
        return R_OK;
    }
    if (r < 0)
        return R_REJ;
    if (cp) {
        if (f->a >= nd->u.str.max)
            return R_REJ;
        f->a++;
    }
    return R_OK;
}

static uint64_t range_mask(uint32_t lo, uint32_t hi)
{
    uint64_t below_hi = hi >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << hi) - 1;
    uint64_t below_lo = lo >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << lo) - 1;
    return below_hi & ~below_lo;
}

static int key_step(const struct json_schema *s, struct jm_state *st, struct jm_frame *f, uint8_t c)
{
    struct jm_frame *p = f - 1; /* the object */
    const struct json__node *obj = &s->nodes[p->node];
    const struct json__str *names = s->strs + obj->u.obj.names;
    if (c == '"' && f->phase == P_PLAIN && !(f->u8 & 3)) { /* end of the key */
        if (f->lo < f->hi && names[f->lo].len == f->a) {
            if (p->seen & ((uint64_t)1 << f->lo))
                return R_REJ; /* keys do not repeat */
            p->prop = (uint16_t)f->lo;
        } else if (f->free) {
            p->prop = PROP_ADDITIONAL;
        } else {
            return R_REJ;
        }
        p->phase = O_COLON;
        st->depth--;
        return R_OK;
    }
    int cp;
    uint8_t prev_phase = f->phase;
    if (str_byte(f, c, &cp) != 1)
        return R_REJ;
    uint32_t lo = f->lo, hi = f->hi;
    if (lo < hi)
        narrow(s, obj->u.obj.names, &lo, &hi, f->a, c);
    bool listed = lo < hi && (range_mask(lo, hi) & ~p->seen);
    /* Listed names are matched in their canonical spelling. Another key may leave them only
     * on a plain character: leaving inside an escape could spell a listed (or already seen)
     * name another way, "\u0061" for "a". Once left, the key can equal no listed name. */
    bool leaves = f->lo < f->hi && lo == hi;
    if (!listed && (!f->free || (leaves && (c == '\\' || prev_phase != P_PLAIN))))
        return R_REJ;
    f->lo = lo;
    f->hi = hi;
    if (f->a < UINT32_MAX)
        f->a++;
    return R_OK;
}

static int obj_step(const struct json_schema *s, struct jm_state *st, struct jm_frame *f, uint8_t c)
{
    const struct json__node *nd = &s->nodes[f->node];
    uint64_t all = range_mask(0, nd->u.obj.n);
    bool free = nd->u.obj.additional != JSON__NONE;
    if (is_ws(c) && f->phase != O_VALUE)
        return gap(st, c);
    switch (f->phase) {
    case O_OPEN:
        if (c == '}' && !nd->u.obj.required)
            break;
        if (c != '"' || (!nd->u.obj.n && !free))
            return R_REJ;
        goto key;
    case O_NEXT:
        if (c != '"')
            return R_REJ;
    key : {
        struct jm_frame *k = push(st, F_KEY, 0);
        k->hi = nd->u.obj.n;
        k->free = free;
        return R_OK;
    }
    case O_COLON:
        if (c != ':')
            return R_REJ;
        f->phase = O_VALUE;
        return R_OK;
    case O_VALUE:
        return gap_or_value(s, st,
                            f->prop == PROP_ADDITIONAL ? nd->u.obj.additional
                                                       : s->list[nd->u.obj.nodes + f->prop],
                            c);
    default: /* O_AFTER */
        if (c == ',' && (free || (all & ~f->seen))) {
            f->phase = O_NEXT;
            return R_OK;
        }
        if (c == '}' && !(nd->u.obj.required & ~f->seen))
            break;
        return R_REJ;
    }
    pop_done(st); /* '}' */
    return R_OK;
}

static uint32_t item_node(const struct json_schema *s, const struct json__node *nd, uint32_t i)
{
    return i < nd->u.arr.n_prefix ? s->list[nd->u.arr.prefix + i] : nd->u.arr.items;
}

static int arr_step(const struct json_schema *s, struct jm_state *st, struct jm_frame *f, uint8_t c)
{
    const struct json__node *nd = &s->nodes[f->node];
    if (is_ws(c))
        return gap(st, c);
    switch (f->phase) {
    case A_OPEN:
        if (c == ']' && nd->u.arr.min == 0)
            break;
        if (nd->u.arr.max == 0)
            return R_REJ;
        /* fall through */
    case A_NEXT:
        f->phase = A_VALUE;
        return begin_value(s, st, item_node(s, nd, f->a), c);
    default: /* A_AFTER (A_VALUE never sees a byte: its child is on top) */
        if (c == ',' && f->a < nd->u.arr.max) {
            f->phase = A_NEXT;
            return R_OK;
        }
        if (c == ']' && f->a >= nd->u.arr.min)
            break;
        return R_REJ;
    }
    pop_done(st); /* ']' */
    return R_OK;
}

static int begin_value(const struct json_schema *s, struct jm_state *st, uint32_t node, uint8_t c)
{
    uint32_t n = json__resolve(s, node);
    if (s->nodes[n].kind == JSON__ANYOF) {
        n = s->dispatch[s->nodes[n].u.anyof.table + c];
        if (n == JSON__NONE)
            return R_REJ;
    }
    struct jm_frame *f;
    switch (s->nodes[n].kind) {
    case JSON__OBJECT:
    case JSON__ARRAY: {
        bool obj = s->nodes[n].kind == JSON__OBJECT;
        if (c != (obj ? '{' : '[') || st->depth >= JSON__MAX_DEPTH)
            return R_REJ;
        f = push(st, obj ? F_OBJ : F_ARR, n);
        return R_OK;
    }
    case JSON__STRING:
        if (c != '"')
            return R_REJ;
        push(st, F_STR, n);
        return R_OK;
    case JSON__NUMBER:
    case JSON__INTEGER:
        f = push(st, F_NUM, n);
        return num_step(s, f, c) == R_OK ? R_OK : R_REJ;
    case JSON__LITERAL:
        f = push(st, F_LIT, n);
        f->hi = s->nodes[n].u.lit.n;
        return lit_step(s, st, f, c) == R_OK ? R_OK : R_REJ;
    default:
        return R_REJ;
    }
}

/* Advances st over one byte; on R_REJ st is left half-updated (callers work on copies). */
static int jm_byte(const struct json_schema *s, struct jm_state *st, uint8_t c)
{
    for (;;) {
        if (st->done)
            return R_REJ;
        int r;
        if (st->depth == 0) {
            r = gap_or_value(s, st, s->root, c);
        } else {
            struct jm_frame *f = &st->fr[st->depth - 1];
            switch (f->kind) {
            case F_OBJ:
                r = obj_step(s, st, f, c);
                break;
            case F_ARR:
                r = arr_step(s, st, f, c);
                break;
            case F_STR:
                r = str_step(s, st, f, c);
                break;
            case F_KEY:
                r = key_step(s, st, f, c);
                break;
            case F_NUM:
                r = num_step(s, f, c);
                break;
            default:
                r = lit_step(s, st, f, c);
                break;
            }
        }
        if (r == R_POP) { /* a number ended: the byte belongs to the container */
            pop_done(st);
            continue;
        }
        if (r == R_REJ)
            return R_REJ;
        if (r == R_OK)
            st->ws_run = st->ws_nl = 0;
        return R_OK;
    }
}

static bool state_complete(const struct json_schema *s, const struct jm_state *st)
{
    if (st->done)
        return true;
    if (st->depth != 1)
        return false;
    const struct jm_frame *f = &st->fr[0];
    return (f->kind == F_NUM && num_accepting(f)) || (f->kind == F_LIT && lit_exact(s, f));
}

/* ---- public matcher API ---- */

int json_match_new(struct json_match **out, const struct json_schema *s)
{
    if (!out)
        return JSON_SCHEMA_E_INVALID;
    *out = NULL;
    if (!s)
        return JSON_SCHEMA_E_INVALID;
    struct json_match *m = calloc(1, sizeof(*m));
    if (!m)
        return JSON_SCHEMA_E_NOMEM;
    m->s = s;
    *out = m;
    return 0;
}

void json_match_free(struct json_match *m)
{
    free(m);
}

void json_match_reset(struct json_match *m)
{
    if (m)
        memset(&m->st, 0, offsetof(struct jm_state, fr));
}

int json_match_feed(struct json_match *m, const char *bytes, size_t n)
{
    if (!m || (!bytes && n))
        return JSON_SCHEMA_E_INVALID;
    struct jm_state tmp;
    jm_copy(&tmp, &m->st);
    for (size_t i = 0; i < n; i++)
        if (jm_byte(m->s, &tmp, (uint8_t)bytes[i]) != R_OK)
            return JSON_SCHEMA_E_REJECT;
    jm_copy(&m->st, &tmp);
    return 0;
}

bool json_match_accepts(const struct json_match *m, const char *bytes, size_t n)
{
    if (!m || (!bytes && n))
        return false;
    struct jm_state tmp;
    jm_copy(&tmp, &m->st);
    for (size_t i = 0; i < n; i++)
        if (jm_byte(m->s, &tmp, (uint8_t)bytes[i]) != R_OK)
            return false;
    return true;
}

bool json_match_complete(const struct json_match *m)
{
    return m && state_complete(m->s, &m->st);
}

const char *json_schema_strerror(int err)
{
    switch (err) {
    case JSON_SCHEMA_OK:
        return "ok";
    case JSON_SCHEMA_E_INVALID:
        return "invalid JSON schema";
    case JSON_SCHEMA_E_UNSUPPORTED:
        return "unsupported JSON schema keyword";
    case JSON_SCHEMA_E_NOMEM:
        return "out of memory";
    case JSON_SCHEMA_E_REJECT:
        return "text does not match the schema";
    }
    return "unknown JSON schema error";
}

/* ---- token texts ---- */

#define PIECE_MAX 256 /* longer token texts are never allowed (none occur in JSON in practice) */

struct json_vocab {
    int32_t n_vocab;
    char *bytes;    /* all texts */
    uint32_t *off;  /* [n_vocab] */
    uint16_t *len;  /* [n_vocab]; 0: never allowed by its text */
    uint8_t *eog;   /* [n_vocab] */
    int32_t *order; /* [n_order] ids with text, sorted by text bytes */
    uint16_t *lcp;  /* [n_order] common prefix with the previous entry of order */
    uint32_t n_order;
    uint32_t max_len;
};

static int cmp_ids(const void *x, const void *y, void *arg)
{
    const struct json_vocab *v = arg;
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    size_t na = v->len[a], nb = v->len[b], n = na < nb ? na : nb;
    int r = memcmp(v->bytes + v->off[a], v->bytes + v->off[b], n);
    if (r)
        return r;
    if (na != nb)
        return na < nb ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void sort_order(struct json_vocab *v)
{
    qsort_r(v->order, v->n_order, sizeof(*v->order), cmp_ids, v);
    for (uint32_t i = 0; i < v->n_order; i++) {
        uint16_t l = 0;
        if (i > 0) {
            int32_t a = v->order[i - 1], b = v->order[i];
            const char *pa = v->bytes + v->off[a], *pb = v->bytes + v->off[b];
            while (l < v->len[a] && l < v->len[b] && pa[l] == pb[l])
                l++;
        }
        v->lcp[i] = l;
    }
}

void json_vocab_free(struct json_vocab *v)
{
    if (!v)
        return;
    free(v->bytes);
    free(v->off);
    free(v->len);
    free(v->eog);
    free(v->order);
    free(v->lcp);
    free(v);
}

/* Where the texts come from: a model, or (for tests and benchmarks) a list. */
struct vocab_src {
    const struct tandem_model *m;
    const char *const *texts;
    const size_t *lens;
    const uint8_t *eog;
};

static int src_piece(const struct vocab_src *src, int32_t id, char *buf, size_t cap)
{
    if (src->m)
        return tandem_token_to_piece(src->m, id, buf, cap, false);
    size_t n = src->lens[id];
    if (n <= cap && n)
        memcpy(buf, src->texts[id], n);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static int vocab_build(struct json_vocab **out, const struct vocab_src *src, int32_t n)
{
    *out = NULL;
    if (n <= 0)
        return JSON_SCHEMA_E_INVALID;
    struct json_vocab *v = calloc(1, sizeof(*v));
    int rc = JSON_SCHEMA_E_NOMEM;
    if (!v)
        return rc;
    v->n_vocab = n;
    v->off = calloc((size_t)n, sizeof(*v->off));
    v->len = calloc((size_t)n, sizeof(*v->len));
    v->eog = calloc((size_t)n, 1);
    v->order = calloc((size_t)n, sizeof(*v->order));
    v->lcp = calloc((size_t)n, sizeof(*v->lcp));
    size_t cap = (size_t)n * 8 + PIECE_MAX, used = 0;
    v->bytes = malloc(cap);
    if (!v->off || !v->len || !v->eog || !v->order || !v->lcp || !v->bytes)
        goto out;
    for (int32_t id = 0; id < n; id++) {
        v->eog[id] = src->m ? tandem_token_is_eog(src->m, id) : src->eog[id];
        if (used + PIECE_MAX > cap) {
            if (cap > ((size_t)1 << 30))
                goto out;
            char *q = realloc(v->bytes, cap * 2);
            if (!q)
                goto out;
            v->bytes = q;
            cap *= 2;
        }
        int len = src_piece(src, id, v->bytes + used, PIECE_MAX);
        if (len < 0) {
            rc = JSON_SCHEMA_E_INVALID;
            goto out;
        }
        v->off[id] = (uint32_t)used;
        if (len == 0 || len > PIECE_MAX || v->eog[id])
            continue; /* control tokens render empty; too long ones are left out */
        v->len[id] = (uint16_t)len;
        used += (size_t)len;
        v->order[v->n_order++] = id;
        if ((uint32_t)len > v->max_len)
            v->max_len = (uint32_t)len;
    }
    sort_order(v);
    *out = v;
    return 0;
out:
    json_vocab_free(v);
    return rc;
}

int json_vocab_new(struct json_vocab **out, const struct tandem_model *m)
{
    if (!out)
        return JSON_SCHEMA_E_INVALID;
    *out = NULL;
    if (!m)
        return JSON_SCHEMA_E_INVALID;
    struct vocab_src src = {.m = m};
    return vocab_build(out, &src, tandem_model_n_vocab(m));
}

int json__vocab_new_texts(struct json_vocab **out, const char *const *texts, const size_t *lens,
                          const uint8_t *eog, int32_t n)
{
    if (!out)
        return JSON_SCHEMA_E_INVALID;
    *out = NULL;
    if (!texts || !lens || !eog)
        return JSON_SCHEMA_E_INVALID;
    struct vocab_src src = {.texts = texts, .lens = lens, .eog = eog};
    return vocab_build(out, &src, n);
}

int32_t json__vocab_n(const struct json_vocab *v)
{
    return v ? v->n_vocab : 0;
}

/* ---- the sampler stage ---- */

struct json_stage {
    const struct json_vocab *v;
    const struct json_schema *s;
    struct json_match *m;
    uint8_t *allowed;      /* [n_vocab] by the text alone */
    struct jm_state *snap; /* [max_len + 1]: state after each prefix of the current text */
    bool failed;
};

static const char *json_stage_name(const struct sampler_stage *st)
{
    (void)st;
    return "json";
}

/* Marks allowed[id] for every token whose whole text the state accepts. The texts are
 * walked in sorted order, so a shared prefix is matched once and a rejected prefix rules out
 * every text that starts with it. */
static size_t scan_vocab(struct json_stage *x)
{
    const struct json_vocab *v = x->v;
    const struct json_schema *s = x->s;
    size_t n_ok = 0;
    memset(x->allowed, 0, (size_t)v->n_vocab);
    if (x->m->st.done)
        return 0;
    jm_copy(&x->snap[0], &x->m->st);
    uint32_t valid = 0;         /* snap[0..valid] hold prefixes of the previous text */
    uint32_t dead = UINT32_MAX; /* the previous text's first `dead` bytes were rejected */
    for (uint32_t i = 0; i < v->n_order; i++) {
        int32_t id = v->order[i];
        uint32_t lcp = v->lcp[i];
        if (lcp >= dead)
            continue;
        dead = UINT32_MAX;
        const uint8_t *p = (const uint8_t *)v->bytes + v->off[id];
        uint32_t len = v->len[id];
        uint32_t k = lcp < valid ? lcp : valid;
        for (; k < len; k++) {
            jm_copy(&x->snap[k + 1], &x->snap[k]);
            if (jm_byte(s, &x->snap[k + 1], p[k]) != R_OK) {
                dead = k + 1;
                break;
            }
        }
        valid = k;
        if (k == len) {
            x->allowed[id] = 1;
            n_ok++;
        }
    }
    return n_ok;
}

static void json_stage_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    struct json_stage *x = st->ctx;
    const struct json_vocab *v = x->v;
    bool complete = json_match_complete(x->m);
    scan_vocab(x);
    size_t kept = 0;
    int64_t first_eog = -1;
    bool changed = false;
    for (size_t i = 0; i < c->size; i++) {
        int32_t id = c->data[i].id;
        bool ok = false;
        if (id >= 0 && id < v->n_vocab) {
            if (v->eog[id] && first_eog < 0)
                first_eog = (int64_t)i;
            ok = v->eog[id] ? complete : x->allowed[id];
        }
        if (ok && c->data[i].logit > -INFINITY)
            kept++;
        if (!ok && c->data[i].logit != -INFINITY) {
            c->data[i].logit = -INFINITY;
            changed = true;
        }
    }
    if (kept == 0) { /* a dead end (or every allowed token banned): end instead */
        x->failed = !complete;
        if (first_eog >= 0) {
            c->data[first_eog].logit = 0.0f;
            changed = true;
        }
    }
    if (changed)
        c->sorted = false;
}

static void json_stage_accept(struct sampler_stage *st, int32_t token)
{
    struct json_stage *x = st->ctx;
    const struct json_vocab *v = x->v;
    if (token < 0 || token >= v->n_vocab || v->eog[token])
        return;
    if (v->len[token] == 0 || json_match_feed(x->m, v->bytes + v->off[token], v->len[token]) != 0)
        x->failed = true;
}

static void json_stage_reset(struct sampler_stage *st)
{
    struct json_stage *x = st->ctx;
    json_match_reset(x->m);
    x->failed = false;
}

static void json_stage_free(struct sampler_stage *st)
{
    struct json_stage *x = st->ctx;
    if (!x)
        return;
    json_match_free(x->m);
    free(x->allowed);
    free(x->snap);
    free(x);
    st->ctx = NULL;
}

static const struct sampler_stage_i json_stage_iface = {
    .name = json_stage_name,
    .apply = json_stage_apply,
    .accept = json_stage_accept,
    .reset = json_stage_reset,
    .free = json_stage_free,
};

int sampler_stage_json_new(struct sampler_stage **out, const struct json_vocab *vocab,
                           const struct json_schema *schema, const struct tandem_model *m)
{
    if (!out)
        return JSON_SCHEMA_E_INVALID;
    *out = NULL;
    if (!vocab || !schema || (m && tandem_model_n_vocab(m) != vocab->n_vocab))
        return JSON_SCHEMA_E_INVALID;
    struct sampler_stage *st = calloc(1, sizeof(*st));
    struct json_stage *x = calloc(1, sizeof(*x));
    if (!st || !x)
        goto nomem;
    st->iface = &json_stage_iface;
    st->ctx = x;
    x->v = vocab;
    x->s = schema;
    x->allowed = malloc((size_t)vocab->n_vocab);
    x->snap = malloc(((size_t)vocab->max_len + 1) * sizeof(*x->snap));
    if (!x->allowed || !x->snap || json_match_new(&x->m, schema))
        goto nomem;
    *out = st;
    return 0;
nomem:
    if (st && st->ctx)
        json_stage_free(st);
    else
        free(x);
    free(st);
    return JSON_SCHEMA_E_NOMEM;
}

bool sampler_stage_json_failed(const struct sampler_stage *st)
{
    if (!st || st->iface != &json_stage_iface || !st->ctx)
        return false;
    return ((const struct json_stage *)st->ctx)->failed;
}

bool sampler_stage_json_complete(const struct sampler_stage *st)
{
    if (!st || st->iface != &json_stage_iface || !st->ctx)
        return false;
    return json_match_complete(((const struct json_stage *)st->ctx)->m);
}
