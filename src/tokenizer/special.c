/* Special-token matching: splits text at user-defined (and, when asked, control) token text. */
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

/* A byte trie over the special tokens' texts. Edges live in one open-addressing table keyed by
 * (node, byte); the root's edges in a direct table. */
struct tok__special {
    int32_t root[256];      /* child node of the root per byte, 0 = none */
    int32_t *term;          /* [n_nodes]: token ending at this node, or -1 */
    uint64_t *edge_key;     /* node << 8 | byte, 0 = empty */
    int32_t *edge_child;
    uint32_t edge_mask;
    int32_t n_nodes;
    int32_t n_user;         /* matched without PARSE_SPECIAL */
    int32_t n_all;
    uint32_t *rank;         /* [n_vocab]: order in which the reference engine tries tokens */
};

static bool is_special_attr(uint16_t attr)
{
    return attr & (TOK_A_CONTROL | TOK_A_USER | TOK_A_UNKNOWN);
}

static int32_t edge_get(const struct tok__special *sp, int32_t node, unsigned char c)
{
    if (node == 0)
        return sp->root[c];
    uint64_t key = ((uint64_t)node << 8) | c;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & sp->edge_mask;
    for (;;) {
        if (sp->edge_key[i] == key)
            return sp->edge_child[i];
        if (!sp->edge_key[i])
            return 0;
        i = (i + 1) & sp->edge_mask;
    }
}

static void edge_put(struct tok__special *sp, int32_t node, unsigned char c, int32_t child)
{
    if (node == 0) {
        sp->root[c] = child;
        return;
    }
    uint64_t key = ((uint64_t)node << 8) | c;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & sp->edge_mask;
    while (sp->edge_key[i])
        i = (i + 1) & sp->edge_mask;
    sp->edge_key[i] = key;
    sp->edge_child[i] = child;
}

struct rank_item {
    uint32_t len;
    int32_t id;
};

static int cmp_rank(const void *a, const void *b)
{
    const struct rank_item *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int tok__special_build(struct tokenizer *tok)
{
    struct tok__special *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return TOKENIZER_E_NOMEM;
    tok->special = sp;
    uint64_t total = 0;
    int32_t n = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const struct tok__entry *e = &tok->tokens[id];
        if (is_special_attr(e->attr) && e->len) {
            total += e->len;
            n++;
        }
    }
    sp->n_all = n;
    if (!n)
        return 0;
    uint64_t cap = 16;
    while (cap < total * 2)
        cap <<= 1;
    if (cap > (1u << 30))
        return TOKENIZER_E_LIMIT;
    sp->edge_mask = (uint32_t)cap - 1;
    sp->edge_key = calloc(cap, sizeof(*sp->edge_key));
    sp->edge_child = calloc(cap, sizeof(*sp->edge_child));
    sp->term = malloc((total + 1) * sizeof(*sp->term));
    sp->rank = calloc((size_t)tok->n_vocab, sizeof(*sp->rank));
    struct rank_item *items = malloc((size_t)n * sizeof(*items));
    if (!sp->edge_key || !sp->edge_child || !sp->term || !sp->rank || !items) {
        free(items);
        return TOKENIZER_E_NOMEM;
    }
    sp->term[0] = -1;
    sp->n_nodes = 1;
    int32_t k = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const struct tok__entry *e = &tok->tokens[id];
        if (!is_special_attr(e->attr) || !e->len)
            continue;
        items[k++] = (struct rank_item){e->len, id};
        if (!(e->attr & (TOK_A_CONTROL | TOK_A_UNKNOWN)))
            sp->n_user++;
        const unsigned char *s = (const unsigned char *)tok->text + e->off;
        int32_t node = 0;
        for (uint32_t i = 0; i < e->len; i++) {
            int32_t child = edge_get(sp, node, s[i]);
            if (!child) {
                child = sp->n_nodes++;
                sp->term[child] = -1;
                edge_put(sp, node, s[i], child);
            }
            node = child;
        }
        if (sp->term[node] < 0)
            sp->term[node] = id;
    }
    /* The reference engine tries the longest special token first over the whole text. */
    qsort(items, (size_t)n, sizeof(*items), cmp_rank);
    for (int32_t i = 0; i < n; i++)
        sp->rank[items[i].id] = (uint32_t)i;
    free(items);
    return 0;
}

void tok__special_free(struct tok__special *sp)
{
    if (!sp)
        return;
    free(sp->edge_key);
    free(sp->edge_child);
    free(sp->term);
    free(sp->rank);
    free(sp);
}

struct cand {
    size_t off;
    uint32_t len;
    uint32_t rank;
    int32_t id;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* Accepted match: the claimed bytes [start, end) include stripped whitespace. */
struct accepted {
    size_t start, end;
    int32_t id;
};

static int cmp_acc(const void *a, const void *b)
{
    const struct accepted *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static bool is_c_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int64_t single_fragment(struct tok__scratch *s, size_t len)
{
    if (len == 0)
        return 0;
    if (tok__reserve(&s->frags, sizeof(struct tok__frag)))
        return TOKENIZER_E_NOMEM;
    ((struct tok__frag *)s->frags.p)[0] = (struct tok__frag){0, len, -1};
    return 1;
}

int64_t tok__special_split(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                           size_t len, bool parse_special)
{
    const struct tok__special *sp = tok->special;
    if (!sp || (parse_special ? sp->n_all : sp->n_user) == 0)
        return single_fragment(s, len);
    const unsigned char *t = (const unsigned char *)text;
    const uint16_t skip = parse_special ? 0 : (TOK_A_CONTROL | TOK_A_UNKNOWN);

    /* 1. every occurrence of every eligible special token */
    size_t n_cand = 0;
    for (size_t p = 0; p < len; p++) {
        int32_t node = sp->root[t[p]];
        for (size_t q = p + 1; node; q++) {
            int32_t id = sp->term[node];
            if (id >= 0 && !(tok->tokens[id].attr & skip)) {
                if (tok__reserve(&s->cand, (n_cand + 1) * sizeof(struct cand)))
                    return TOKENIZER_E_NOMEM;
                ((struct cand *)s->cand.p)[n_cand++] =
                    (struct cand){p, (uint32_t)(q - p), sp->rank[id], id};
            }
            if (q >= len)
                break;
            node = edge_get(sp, node, t[q]);
        }
    }
    if (!n_cand)
        return single_fragment(s, len);

    /* 2. longest token first, left to right, never overlapping what is already claimed */
    struct cand *c = s->cand.p;
    qsort(c, n_cand, sizeof(*c), cmp_cand);
    if (tok__reserve(&s->marks, len))
        return TOKENIZER_E_NOMEM;
    unsigned char *mark = s->marks.p;
    memset(mark, 0, len);
    size_t n_acc = 0;
    for (size_t i = 0; i < n_cand; i++) {
        size_t p = c[i].off, e = p + c[i].len;
        bool free_run = true;
        for (size_t q = p; q < e; q++) {
            if (mark[q]) {
                free_run = false;
                break;
            }
        }
        if (!free_run)
            continue;
        uint16_t attr = tok->tokens[c[i].id].attr;
        size_t start = p, end = e;
        if (attr & TOK_A_LSTRIP) {
            while (start > 0 && !mark[start - 1] && is_c_space(t[start - 1]))
                start--;
        }
        if (attr & TOK_A_RSTRIP) {
            while (end < len && !mark[end] && is_c_space(t[end]))
                end++;
        }
        memset(mark + start, 1, end - start);
        /* reuse the candidate array's front for accepted matches (i >= n_acc always) */
        struct accepted a = {start, end, c[i].id};
        _Static_assert(sizeof(struct accepted) <= sizeof(struct cand), "accepted fits a cand");
        memcpy((char *)s->cand.p + n_acc * sizeof(struct accepted), &a, sizeof(a));
        n_acc++;
    }
    struct accepted *acc = s->cand.p;
    qsort(acc, n_acc, sizeof(*acc), cmp_acc);

    /* 3. fragments in text order */
    if (tok__reserve(&s->frags, (2 * n_acc + 1) * sizeof(struct tok__frag)))
        return TOKENIZER_E_NOMEM;
    struct tok__frag *f = s->frags.p;
    size_t n_frag = 0, cur = 0;
    for (size_t i = 0; i < n_acc; i++) {
        if (acc[i].start > cur)
            f[n_frag++] = (struct tok__frag){cur, acc[i].start - cur, -1};
        f[n_frag++] = (struct tok__frag){0, 0, acc[i].id};
        cur = acc[i].end;
    }
    if (cur < len)
        f[n_frag++] = (struct tok__frag){cur, len - cur, -1};
    return (int64_t)n_frag;
}
