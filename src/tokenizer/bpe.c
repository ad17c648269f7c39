/* Byte-level BPE: GPT-2 byte-to-unicode mapping, merge ranks over token ids, per-word merging. */
#include <limits.h>
#include <stdlib.h>

#include "engine/gguf.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/unicode.h"

/* GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the other 68 are shifted to
 * U+0100 and up, so every byte has a visible character in the vocabulary. */
static uint32_t byte_to_cp(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++) {
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174))
            n++;
    }
    return 256 + n;
}

int tok__bpe_cp_to_byte(uint32_t cp)
{
    static int16_t inv[324];
    static _Atomic int ready;
    if (!atomic_load_explicit(&ready, memory_order_acquire)) {
        int16_t t[324];
        for (int i = 0; i < 324; i++)
            t[i] = -1;
        for (unsigned b = 0; b < 256; b++)
            t[byte_to_cp(b)] = (int16_t)b;
        memcpy(inv, t, sizeof(t));   /* racing initialisers write the same values */
        atomic_store_explicit(&ready, 1, memory_order_release);
    }
    return cp < 324 ? inv[cp] : -1;
}

static int add_merge(struct tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & tok->merge_mask;
    while (tok->merges[i].key != UINT64_MAX) {
        if (tok->merges[i].key == key)
            return 0;   /* a repeated merge keeps its first (best) rank */
        i = (i + 1) & tok->merge_mask;
    }
    tok->merges[i] = (struct tok__merge){key, rank, id};
    return 0;
}

int tok__bpe_build(struct tokenizer *tok, const struct gguf *g, char *err, size_t errlen)
{
    for (unsigned b = 0; b < 256; b++) {
        unsigned char u[4];
        size_t n = tok__utf8_encode(byte_to_cp(b), u);
        tok->byte_tok[b] = tok__lookup(tok, (const char *)u, n);
        for (size_t k = 0; k < 2; k++)
            tok->byte_fallback[b][k] = k < n ? tok__lookup(tok, (const char *)&u[k], 1) : -1;
    }
    const struct gguf_value *v = gguf_get(g, "tokenizer.ggml.merges");
    if (!v) {
        tok__errf(err, errlen, "tokenizer.ggml.merges: missing");
        return TOKENIZER_E_MISSING;
    }
    if (v->type != GGUF_VTYPE_ARRAY || v->v.arr.type != GGUF_VTYPE_STRING) {
        tok__errf(err, errlen, "tokenizer.ggml.merges: expected an array of strings");
        return TOKENIZER_E_TYPE;
    }
    uint64_t n = v->v.arr.n;
    if (n > INT32_MAX / 4) {
        tok__errf(err, errlen, "tokenizer.ggml.merges: %llu merges", (unsigned long long)n);
        return TOKENIZER_E_INVALID;
    }
    uint32_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    tok->merges = malloc((size_t)cap * sizeof(*tok->merges));
    if (!tok->merges)
        return TOKENIZER_E_NOMEM;
    for (uint32_t i = 0; i < cap; i++)
        tok->merges[i].key = UINT64_MAX;
    tok->merge_mask = cap - 1;
    tok->n_merges = (int32_t)n;
    char *buf = malloc(tok->max_token_len * 2 + 2);
    if (!buf)
        return TOKENIZER_E_NOMEM;
    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct gguf_str *s = &v->v.arr.strs[i];
        const char *sp = s->len > 1 ? memchr(s->ptr + 1, ' ', s->len - 1) : NULL;
        if (!sp) {
            tok__errf(err, errlen, "tokenizer.ggml.merges[%llu]: \"%.*s\" is not two tokens",
                      (unsigned long long)i, (int)(s->len > 40 ? 40 : s->len), s->ptr);
            rc = TOKENIZER_E_INVALID;
            break;
        }
        size_t la = (size_t)(sp - s->ptr), lb = s->len - la - 1;
        int32_t a = tok__lookup(tok, s->ptr, la), b = tok__lookup(tok, sp + 1, lb), m = -1;
        if (a >= 0 && b >= 0 && la + lb <= tok->max_token_len) {
            memcpy(buf, s->ptr, la);
            memcpy(buf + la, sp + 1, lb);
            m = tok__lookup(tok, buf, la + lb);
        }
        if (a < 0 || b < 0 || m < 0) {
            const char *what = a < 0 ? "first part" : b < 0 ? "second part" : "result";
            tok__errf(err, errlen,
                      "tokenizer.ggml.merges[%llu]: \"%.*s\": the %s is not a token",
                      (unsigned long long)i, (int)(s->len > 40 ? 40 : s->len), s->ptr, what);
            rc = TOKENIZER_E_INVALID;
            break;
        }
        add_merge(tok, a, b, (int32_t)i, m);
    }
    free(buf);
    return rc;
}

struct bsym {
    int32_t id;     /* token, or -1 for a byte whose character is not in the vocabulary */
    int32_t prev, next;
    uint8_t byte;   /* the byte of an unmerged symbol (for the fallback) */
    uint8_t alive;
};

struct bpair {
    int32_t rank;
    int32_t left, right;
    int32_t a, b, merged;
};

static bool pair_before(const struct bpair *x, const struct bpair *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void pair_push(struct bpair *h, size_t *n, struct bpair v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_before(&v, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static struct bpair pair_pop(struct bpair *h, size_t *n)
{
    struct bpair top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && pair_before(&h[c + 1], &h[c]))
            c++;
        if (!pair_before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = last;
    return top;
}

static void try_pair(const struct tokenizer *tok, const struct bsym *sy, int32_t l, int32_t r,
                     struct bpair *h, size_t *n)
{
    if (l < 0 || r < 0 || sy[l].id < 0 || sy[r].id < 0)
        return;
    int32_t merged;
    int32_t rank = tok__merge_find(tok, sy[l].id, sy[r].id, &merged);
    if (rank >= 0)
        pair_push(h, n, (struct bpair){rank, l, r, sy[l].id, sy[r].id, merged});
}

/* Lowest rank first, leftmost among equals: the order the reference (and HF) merge in. */
static int merge_word(const struct tokenizer *tok, struct tok__scratch *s,
                      const unsigned char *w, size_t n, struct tok__out *out)
{
    if (tok__reserve(&s->sym, n * sizeof(struct bsym)) ||
        tok__reserve(&s->heap, n * 2 * sizeof(struct bpair)))
        return TOKENIZER_E_NOMEM;
    struct bsym *sy = s->sym.p;
    struct bpair *h = s->heap.p;
    for (size_t i = 0; i < n; i++)
        sy[i] = (struct bsym){tok->byte_tok[w[i]], (int32_t)i - 1,
                              i + 1 == n ? -1 : (int32_t)i + 1, w[i], 1};
    size_t nh = 0;
    for (size_t i = 1; i < n; i++)
        try_pair(tok, sy, (int32_t)i - 1, (int32_t)i, h, &nh);
    while (nh) {
        struct bpair p = pair_pop(h, &nh);
        struct bsym *l = &sy[p.left], *r = &sy[p.right];
        if (!l->alive || !r->alive || l->id != p.a || r->id != p.b)
            continue;
        l->id = p.merged;
        r->alive = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = p.left;
        try_pair(tok, sy, l->prev, p.left, h, &nh);
        try_pair(tok, sy, p.left, l->next, h, &nh);
    }
    for (int32_t i = 0; i != -1; i = sy[i].next) {
        if (sy[i].id >= 0) {
            tok__emit(out, sy[i].id);
        } else {
            for (int k = 0; k < 2; k++) {
                if (tok->byte_fallback[sy[i].byte][k] >= 0)
                    tok__emit(out, tok->byte_fallback[sy[i].byte][k]);
            }
        }
    }
    return 0;
}

/* ignore_merges vocabularies take a word that is itself a token whole. */
static int32_t whole_word(const struct tokenizer *tok, struct tok__scratch *s,
                          const unsigned char *w, size_t n)
{
    if (n > tok->max_token_len || tok__reserve(&s->text, n * 2))
        return -1;
    unsigned char *m = s->text.p;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += tok__utf8_encode(byte_to_cp(w[i]), m + k);
    return k <= tok->max_token_len ? tok__lookup(tok, (const char *)m, k) : -1;
}

static int encode_word(const struct tokenizer *tok, struct tok__scratch *s,
                       const unsigned char *w, size_t n, struct tok__out *out)
{
    if (n == 1 && tok->byte_tok[w[0]] >= 0) {
        tok__emit(out, tok->byte_tok[w[0]]);
        return 0;
    }
    int32_t ids[TOK_CACHE_MAX_WORD * 2];
    uint64_t h = 0;
    bool cacheable = n <= TOK_CACHE_MAX_WORD;
    if (cacheable) {
        h = tok__hash(w, n);
        int k = tok__cache_get(tok->cache, (const char *)w, n, h, ids);
        if (k >= 0) {
            for (int i = 0; i < k; i++)
                tok__emit(out, ids[i]);
            return 0;
        }
    }
    struct tok__out local = {ids, cacheable ? sizeof(ids) / sizeof(ids[0]) : 0, 0};
    struct tok__out *dst = cacheable ? &local : out;
    int32_t whole = tok->ignore_merges ? whole_word(tok, s, w, n) : -1;
    if (whole >= 0) {
        tok__emit(dst, whole);
    } else {
        int rc = merge_word(tok, s, w, n, dst);
        if (rc)
            return rc;
    }
    if (!cacheable)
        return 0;
    if (local.n > local.cap)   /* two fallback ids per byte at most: cannot happen */
        return merge_word(tok, s, w, n, out);
    for (size_t i = 0; i < local.n; i++)
        tok__emit(out, ids[i]);
    if (local.n <= TOK_CACHE_MAX_IDS)
        tok__cache_put(tok->cache, (const char *)w, n, h, ids, (int)local.n);
    return 0;
}

int tok__bpe_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, struct tok__out *out)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t pos = 0;
    while (pos < len) {
        /* The regexes see valid UTF-8 only; a byte that is not part of a valid sequence is a
         * word of its own (byte-level BPE can still spell it). */
        size_t valid = tok__utf8_valid_prefix(t + pos, len - pos);
        if (valid) {
            int64_t n = tok__pretok_split(tok->pretok, s, text + pos, valid);
            if (n < 0)
                return (int)n;
            for (int64_t i = 0; i < n; i++) {
                /* the spans buffer is not touched by encode_word */
                struct tok__span sp = ((const struct tok__span *)s->spans.p)[i];
                int rc = encode_word(tok, s, t + pos + sp.off, sp.len, out);
                if (rc)
                    return rc;
            }
            pos += valid;
        }
        if (pos < len) {
            int rc = encode_word(tok, s, t + pos, 1, out);
            if (rc)
                return rc;
            pos++;
        }
    }
    return 0;
}
