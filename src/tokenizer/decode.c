/* Detokenization: per-token pieces (built once at load), whole-sequence decode, streaming decoder. */
#include <stdlib.h>

#include "tokenizer/tok_impl.h"
#include "tokenizer/unicode.h"

#define A_HIDDEN (TOK_A_UNKNOWN | TOK_A_CONTROL)

/* Piece of one token into dst (room for the token's text length); returns its length. */
static size_t make_piece(const struct tokenizer *tok, int32_t id, char *dst)
{
    const struct tok__entry *e = &tok->tokens[id];
    const unsigned char *t = (const unsigned char *)tok->text + e->off;
    size_t n = e->len, k = 0;
    if (e->attr & (A_HIDDEN | TOK_A_USER)) {
        memcpy(dst, t, n);
        return n;
    }
    if (e->attr & TOK_A_NORMAL) {
        if (tok->kind != TOKENIZER_KIND_BPE) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81) {
                    dst[k++] = ' ';
                    i += 3;
                } else {
                    dst[k++] = (char)t[i++];
                }
            }
            return k;
        }
        /* byte-level: every character stands for one byte; anything else is kept as it is */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = tok__utf8_decode(t + i, n - i, &cp);
            int b = l ? tok__bpe_cp_to_byte(cp) : -1;
            if (b >= 0) {
                dst[k++] = (char)b;
                i += l;
            } else {
                l = l ? l : 1;
                memcpy(dst + k, t + i, l);
                k += l;
                i += l;
            }
        }
        return k;
    }
    if (e->attr & TOK_A_BYTE) {
        int b = tok__byte_of_token(tok, id);
        if (b >= 0)
            dst[k++] = (char)b;
        return k;
    }
    return 0;   /* undefined / unused tokens print nothing */
}

int tok__pieces_build(struct tokenizer *tok)
{
    size_t total = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++)
        total += tok->tokens[id].len;
    tok->pieces = malloc(total + 1);
    if (!tok->pieces)
        return TOKENIZER_E_NOMEM;
    size_t off = 0;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        size_t n = make_piece(tok, id, tok->pieces + off);
        tok->tokens[id].piece_off = (uint32_t)off;
        tok->tokens[id].piece_len = (uint32_t)n;
        if (n > tok->max_piece)
            tok->max_piece = n;
        off += n;
    }
    return 0;
}

const char *tokenizer_piece_ref(const struct tokenizer *tok, int32_t id, size_t *len,
                                unsigned flags)
{
    if (!tok || id < 0 || id >= tok->n_vocab)
        return NULL;
    const struct tok__entry *e = &tok->tokens[id];
    if ((e->attr & A_HIDDEN) && !(flags & TOKENIZER_DECODE_SPECIAL)) {
        *len = 0;
        return tok->pieces + e->piece_off;
    }
    *len = e->piece_len;
    return tok->pieces + e->piece_off;
}

int tokenizer_piece(const struct tokenizer *tok, int32_t id, char *buf, size_t cap, unsigned flags)
{
    size_t n;
    const char *p = tokenizer_piece_ref(tok, id, &n, flags);
    if (!p)
        return TOKENIZER_E_ARG;
    if (n <= cap && n)
        memcpy(buf, p, n);
    return (int)n;
}

/* The reference's clean_up_tokenization_spaces: " ?" " !" " ." " ," lose the space, " ' "
 * becomes "'", and " 's" " 'm" " 're" " 've" lose the space. In place; returns the new length. */
static size_t clean_spaces(char *t, size_t n)
{
    size_t k = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            k--;
        t[k++] = x;
    }
    n = k;
    k = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            k--;
            t[++i] = 0;
        }
        t[k++] = x;
    }
    n = k;
    k = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                k--;
            else if (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
                k--;
        }
        t[k++] = x;
    }
    return k;
}

int64_t tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, char *out,
                         size_t cap, unsigned flags)
{
    if (!tok || (!ids && n) || (!out && cap))
        return TOKENIZER_E_ARG;
    bool strip = tok->add_space_prefix;
    if ((flags & TOKENIZER_DECODE_REMOVE_SPECIAL) && tok->add_bos && n && ids[0] == tok->bos) {
        strip = false;
        ids++;
        n--;
    }
    if ((flags & TOKENIZER_DECODE_REMOVE_SPECIAL) && tok->add_eos && n && ids[n - 1] == tok->eos)
        n--;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = tokenizer_piece_ref(tok, ids[i], &len, flags);
        if (!p)
            return TOKENIZER_E_ARG;
        if (strip && len && p[0] == ' ') {
            p++;
            len--;
        }
        strip = false;
        if (len && total + len <= cap)
            memcpy(out + total, p, len);
        total += len;
    }
    if (total <= cap && (flags & TOKENIZER_DECODE_CLEAN_SPACES) && tok->clean_spaces)
        total = clean_spaces(out, total);
    return (int64_t)total;
}

/* ---- streaming ---- */

struct tokenizer_stream {
    const struct tokenizer *tok;
    unsigned flags;
    unsigned char pend[4];   /* start of a character still missing bytes */
    size_t n_pend;
};

struct tokenizer_stream *tokenizer_stream_new(const struct tokenizer *tok, unsigned flags)
{
    if (!tok)
        return NULL;
    struct tokenizer_stream *s = calloc(1, sizeof(*s));
    if (s) {
        s->tok = tok;
        s->flags = flags;
    }
    return s;
}

void tokenizer_stream_free(struct tokenizer_stream *s)
{
    free(s);
}

/* Bytes needed by a UTF-8 lead byte, 0 if it cannot start a character. */
static size_t lead_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Whether b can follow lead byte c at position 1 (the ranges that exclude overlongs and
 * surrogates), or at later positions (any continuation byte). */
static bool cont_ok(unsigned char c, size_t pos, unsigned char b)
{
    if ((b & 0xC0) != 0x80)
        return false;
    if (pos != 1)
        return true;
    if (c == 0xE0)
        return b >= 0xA0;
    if (c == 0xED)
        return b <= 0x9F;
    if (c == 0xF0)
        return b >= 0x90;
    if (c == 0xF4)
        return b <= 0x8F;
    return true;
}

#define V(i) ((i) < np ? pend[i] : p[(i) - np])

/* Emit the complete characters of pend ‖ p (U+FFFD for bytes that cannot form one) to out (NULL:
 * count only) and return the length; the incomplete tail goes to tail/n_tail. */
static size_t run(const unsigned char *pend, size_t np, const unsigned char *p, size_t n,
                  char *out, unsigned char tail[4], size_t *n_tail)
{
    size_t L = np + n, i = 0, k = 0;
    *n_tail = 0;
    while (i < L) {
        unsigned char c = V(i);
        size_t need = lead_len(c);
        size_t j = 1;
        while (j < need && i + j < L && cont_ok(c, j, V(i + j)))
            j++;
        if (need && j == need) {
            if (out)
                for (size_t q = 0; q < need; q++)
                    out[k + q] = (char)V(i + q);
            k += need;
            i += need;
        } else if (need && i + j == L) {
            for (size_t q = 0; q < j; q++)   /* valid so far, cut by the end: hold it */
                tail[q] = V(i + q);
            *n_tail = j;
            break;
        } else {
            if (out)
                memcpy(out + k, "\xef\xbf\xbd", 3);
            k += 3;
            i += need ? j : 1;   /* the maximal invalid subpart becomes one U+FFFD */
        }
    }
    return k;
}

#undef V

int tokenizer_stream_feed(struct tokenizer_stream *s, int32_t id, char *out, size_t cap)
{
    if (!s || (!out && cap))
        return TOKENIZER_E_ARG;
    size_t n;
    const char *p = tokenizer_piece_ref(s->tok, id, &n, s->flags);
    if (!p)
        return TOKENIZER_E_ARG;
    unsigned char tail[4];
    size_t n_tail;
    size_t need = run(s->pend, s->n_pend, (const unsigned char *)p, n, NULL, tail, &n_tail);
    if (need > cap || need > INT32_MAX)
        return TOKENIZER_E_LIMIT;
    run(s->pend, s->n_pend, (const unsigned char *)p, n, out, tail, &n_tail);
    memcpy(s->pend, tail, n_tail);
    s->n_pend = n_tail;
    return (int)need;
}

int tokenizer_stream_flush(struct tokenizer_stream *s, char *out, size_t cap)
{
    if (!s || (!out && cap))
        return TOKENIZER_E_ARG;
    if (!s->n_pend)
        return 0;
    if (cap < 3)
        return TOKENIZER_E_LIMIT;
    memcpy(out, "\xef\xbf\xbd", 3);
    s->n_pend = 0;
    return 3;
}
