/* SentencePiece-style tokenizer: highest-score adjacent merges, byte fallback, U+2581 for spaces. */
#include "tokenizer/tok_impl.h"
#include "tokenizer/unicode.h"

struct sym {
    int32_t prev, next;
    uint32_t off, n;    /* bytes of the segment; n == 0 once merged into its left neighbour */
};

struct bigram {
    float score;
    int32_t left, right;
    uint32_t size;
};

/* Max-heap order: higher score first, then the leftmost pair. */
static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct bigram *h, size_t *n, struct bigram v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&v, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static struct bigram heap_pop(struct bigram *h, size_t *n)
{
    struct bigram top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && before(&h[c + 1], &h[c]))
            c++;
        if (!before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = last;
    return top;
}

static void try_bigram(const struct tokenizer *tok, const char *seg, const struct sym *sy,
                       int32_t left, int32_t right, struct bigram *heap, size_t *n_heap)
{
    if (left < 0 || right < 0)
        return;
    uint32_t size = sy[left].n + sy[right].n;
    int32_t id = tok__lookup(tok, seg + sy[left].off, size);
    if (id < 0)
        return;
    heap_push(heap, n_heap, (struct bigram){tok->tokens[id].score, left, right, size});
}

static void emit_symbol(const struct tokenizer *tok, const char *s, size_t n, struct tok__out *o)
{
    int32_t id = tok__lookup(tok, s, n);
    if (id >= 0) {
        tok__emit(o, id);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        id = tok->byte_tok[(unsigned char)s[j]];
        if (id < 0)
            id = tok->unk;
        if (id >= 0)
            tok__emit(o, id);
    }
}

/* One independent segment (see tok__spm_encode). */
static int encode_segment(const struct tokenizer *tok, struct tok__scratch *s, const char *seg,
                          size_t len, struct tok__out *out)
{
    if (tok__reserve(&s->sym, len * sizeof(struct sym)) ||
        tok__reserve(&s->heap, len * 2 * sizeof(struct bigram)))
        return TOKENIZER_E_NOMEM;
    struct sym *sy = s->sym.p;
    struct bigram *heap = s->heap.p;
    int32_t n_sym = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok__utf8_len((unsigned char)seg[off]);
        if (l > len - off)
            l = len - off;
        sy[n_sym] = (struct sym){n_sym - 1, off + l == len ? -1 : n_sym + 1, (uint32_t)off,
                                 (uint32_t)l};
        n_sym++;
        off += l;
    }
    size_t n_heap = 0;
    for (int32_t i = 1; i < n_sym; i++)
        try_bigram(tok, seg, sy, i - 1, i, heap, &n_heap);
    /* Each merge removes a symbol and adds at most two candidates: the heap never holds more
     * than 2 * n_sym entries. */
    while (n_heap) {
        struct bigram b = heap_pop(heap, &n_heap);
        struct sym *l = &sy[b.left], *r = &sy[b.right];
        if (!l->n || !r->n || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = b.left;
        try_bigram(tok, seg, sy, l->prev, b.left, heap, &n_heap);
        try_bigram(tok, seg, sy, b.left, l->next, heap, &n_heap);
    }
    for (int32_t i = 0; i != -1 && n_sym; i = sy[i].next)
        emit_symbol(tok, seg + sy[i].off, sy[i].n, out);
    return 0;
}

static bool glues(const struct tokenizer *tok, unsigned char c)
{
    return tok->spm_glue[c >> 3] & (1u << (c & 7));
}

/* Escape raw[0..n) (optionally after a space prefix) into s->text: ' ' -> U+2581. */
static char *escape(struct tok__scratch *s, const char *raw, size_t n, bool prefix, size_t *out_len)
{
    if (tok__reserve(&s->text, 3 * (n + 1)))
        return NULL;
    char *e = s->text.p;
    size_t k = 0;
    if (prefix) {
        memcpy(e, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == ' ') {
            memcpy(e + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            e[k++] = raw[i];
        }
    }
    *out_len = k;
    return e;
}

/* One segment of raw text (spaces not yet escaped), with the word cache in front. The cache key
 * is the raw segment, with a leading ' ' standing for the space prefix. */
static int encode_cached(const struct tokenizer *tok, struct tok__scratch *s, const char *raw,
                         size_t n, bool prefix, struct tok__out *out)
{
    char key[TOK_CACHE_MAX_WORD];
    size_t kn = n + prefix;
    int32_t ids[TOK_CACHE_MAX_WORD * 4];
    uint64_t h = 0;
    bool cacheable = kn <= TOK_CACHE_MAX_WORD;
    if (cacheable) {
        key[0] = ' ';
        memcpy(key + prefix, raw, n);
        h = tok__hash(key, kn);
        int k = tok__cache_get(tok->cache, key, kn, h, ids);
        if (k >= 0) {
            for (int i = 0; i < k; i++)
                tok__emit(out, ids[i]);
            return 0;
        }
    }
    size_t el;
    const char *e = escape(s, raw, n, prefix, &el);
    if (!e)
        return TOKENIZER_E_NOMEM;
    if (!cacheable)
        return encode_segment(tok, s, e, el, out);
    /* at most one id per escaped byte: 3 * 24 fits */
    struct tok__out local = {ids, sizeof(ids) / sizeof(ids[0]), 0};
    int rc = encode_segment(tok, s, e, el, &local);
    if (rc)
        return rc;
    for (size_t i = 0; i < local.n; i++)
        tok__emit(out, ids[i]);
    if (local.n <= TOK_CACHE_MAX_IDS)
        tok__cache_put(tok->cache, key, kn, h, ids, (int)local.n);
    return 0;
}

int tok__spm_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, bool space_prefix, struct tok__out *out)
{
    /* Merges only ever form vocabulary tokens, so no merge can cross a point where the byte
     * before a U+2581 never precedes one inside any token: the text splits into segments that
     * tokenize independently (and the reference's merge order within each is unchanged). In raw
     * text a U+2581 is a space, and a space before it ends in byte 0x81. */
    bool space_glues = glues(tok, 0x81);
    size_t start = 0;
    bool prefix = space_prefix;
    for (size_t i = 1; i < len; i++) {
        if (text[i] != ' ')
            continue;
        unsigned char prev = (unsigned char)text[i - 1];
        if (prev == ' ' ? space_glues : glues(tok, prev))
            continue;
        int rc = encode_cached(tok, s, text + start, i - start, prefix, out);
        if (rc)
            return rc;
        start = i;
        prefix = false;
    }
    return len > start ? encode_cached(tok, s, text + start, len - start, prefix, out) : 0;
}
