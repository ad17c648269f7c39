/* WordPiece (BERT): normalization, whitespace/punctuation split, greedy longest-match pieces. */
#include "tokenizer/tok_impl.h"
#include "tokenizer/unicode.h"

#define MAX_WORD_CHARS 100   /* longer words are [UNK], as in the reference WordPiece */

static bool is_chinese(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_punct(uint32_t cp, unsigned f)
{
    return (f & TOK_UNI_P) || (cp < 0x80 && (f & TOK_UNI_S));
}

struct norm {
    struct tok__scratch *s;
    size_t k;           /* bytes written to s->text */
    size_t n_words;
    size_t word_start;  /* of the open word */
    bool open;
};

static int end_word(struct norm *nm)
{
    if (!nm->open)
        return 0;
    nm->open = false;
    if (tok__reserve(&nm->s->words, (nm->n_words + 1) * sizeof(struct tok__span)))
        return TOKENIZER_E_NOMEM;
    ((struct tok__span *)nm->s->words.p)[nm->n_words++] =
        (struct tok__span){nm->word_start, nm->k - nm->word_start};
    return 0;
}

static int put_cp(struct norm *nm, uint32_t cp)
{
    if (tok__reserve(&nm->s->text, nm->k + 4))
        return TOKENIZER_E_NOMEM;
    if (!nm->open) {
        nm->open = true;
        nm->word_start = nm->k;
    }
    nm->k += tok__utf8_encode(cp, (unsigned char *)nm->s->text.p + nm->k);
    return 0;
}

/* Normalize (clean control characters, isolate CJK, strip accents, lowercase) and split at
 * whitespace and punctuation, as BertNormalizer + BertPreTokenizer do. */
static int64_t normalize(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                         size_t len)
{
    struct norm nm = {s, 0, 0, 0, false};
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = tok__utf8_decode(t + i, len - i, &cp);
        if (!l) {
            i++;
            continue;   /* invalid UTF-8 reads as U+FFFD, which is dropped */
        }
        i += l;
        unsigned f = tok__uni_flags(cp);
        int rc = 0;
        if (f & TOK_UNI_WS) {
            rc = end_word(&nm);
        } else if (cp == 0 || cp == 0xFFFD || (f & TOK_UNI_C)) {
            continue;
        } else {
            uint32_t a[3], b[3];
            size_t na = 1;
            a[0] = cp;
            if (tok->strip_accents)
                na = tok__uni_strip_accents(cp, a);
            bool cjk = is_chinese(cp);
            if (cjk)
                rc = end_word(&nm);
            for (size_t j = 0; j < na && !rc; j++) {
                size_t nb = 1;
                b[0] = a[j];
                if (tok->lowercase)
                    nb = tok__uni_lower(a[j], b);
                for (size_t q = 0; q < nb && !rc; q++) {
                    if (is_punct(b[q], tok__uni_flags(b[q]))) {
                        if (!(rc = end_word(&nm)) && !(rc = put_cp(&nm, b[q])))
                            rc = end_word(&nm);
                    } else {
                        rc = put_cp(&nm, b[q]);
                    }
                }
            }
            if (cjk && !rc)
                rc = end_word(&nm);
        }
        if (rc)
            return rc;
    }
    int rc = end_word(&nm);
    return rc ? rc : (int64_t)nm.n_words;
}

static size_t next_char(const char *w, size_t n, size_t i)
{
    i++;
    while (i < n && ((unsigned char)w[i] & 0xC0) == 0x80)
        i++;
    return i;
}

static size_t prev_char(const char *w, size_t i)
{
    i--;
    while (i > 0 && ((unsigned char)w[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static void emit_unk(const struct tokenizer *tok, struct tok__out *out)
{
    if (tok->unk >= 0)
        tok__emit(out, tok->unk);
}

static void encode_word(const struct tokenizer *tok, const char *w, size_t n, struct tok__out *out)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i = next_char(w, n, i))
        chars++;
    if (chars > MAX_WORD_CHARS) {
        emit_unk(tok, out);
        return;
    }
    int32_t ids[MAX_WORD_CHARS];
    size_t n_ids = 0;
    char buf[3 + MAX_WORD_CHARS * 4 * 3];
    for (size_t start = 0; start < n;) {
        /* the first piece carries the word-start mark, the others the continuation mark */
        const char *mark = tok->wpm_hashes ? (start ? "##" : "") : (start ? "" : "\xe2\x96\x81");
        size_t ml = strlen(mark);
        memcpy(buf, mark, ml);
        int32_t id = -1;
        size_t end = n;
        while (end > start) {
            size_t l = end - start;
            if (ml + l <= tok->max_token_len) {
                memcpy(buf + ml, w + start, l);
                id = tok__lookup(tok, buf, ml + l);
                if (id >= 0)
                    break;
            }
            end = prev_char(w, end);
        }
        if (id < 0) {
            n_ids = 0;
            break;
        }
        ids[n_ids++] = id;
        start = end;
    }
    if (!n_ids) {
        emit_unk(tok, out);
        return;
    }
    for (size_t i = 0; i < n_ids; i++)
        tok__emit(out, ids[i]);
}

int tok__wpm_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, struct tok__out *out)
{
    int64_t n = normalize(tok, s, text, len);
    if (n < 0)
        return (int)n;
    const struct tok__span *words = s->words.p;
    for (int64_t i = 0; i < n; i++) {
        if (words[i].len > MAX_WORD_CHARS * 4 * 3) {
            emit_unk(tok, out);
            continue;
        }
        encode_word(tok, (const char *)s->text.p + words[i].off, words[i].len, out);
    }
    return 0;
}
