/* Tokenizer internals shared by the vocab, special-token, SPM, BPE, WordPiece and decode files. */
#ifndef TANDEM_TOKENIZER_TOK_IMPL_H
#define TANDEM_TOKENIZER_TOK_IMPL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

/* Token attributes (the reference engine's llama_token_attr, by bit). */
enum tok__attr {
    TOK_A_UNDEFINED = 0,
    TOK_A_UNKNOWN = 1 << 0,
    TOK_A_UNUSED = 1 << 1,
    TOK_A_NORMAL = 1 << 2,
    TOK_A_CONTROL = 1 << 3,
    TOK_A_USER = 1 << 4,
    TOK_A_BYTE = 1 << 5,
    TOK_A_LSTRIP = 1 << 6,   /* when matched as special text, eat whitespace to its left */
    TOK_A_RSTRIP = 1 << 7,   /* ... and to its right */
    TOK_A_EOG = 1 << 8,      /* ends generation */
};

struct tok__entry {
    uint32_t off, len;          /* vocabulary text in tok->text */
    uint32_t piece_off, piece_len;  /* decoded piece in tok->pieces */
    float score;
    uint16_t attr;              /* enum tok__attr */
    uint8_t type;               /* enum tokenizer_token_type as given */
    uint8_t pad_;
};

/* Open-addressing slot of the text -> id table. */
struct tok__slot {
    uint32_t tag;   /* high bits of the hash; 0 = empty */
    int32_t id;
};

/* BPE merge (a, b) -> rank, merged token. */
struct tok__merge {
    uint64_t key;   /* (uint64)a << 32 | b; UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
};

/* Pre-tokenizer regex pipeline (pretokenize.c). */
struct tok__pretok;
/* Special-token matcher (special.c). */
struct tok__special;
/* Word -> ids cache (cache.c). */
struct tok__cache;

struct tokenizer {
    enum tokenizer_kind kind;
    char pre_name[64];
    int32_t n_vocab;
    struct tok__entry *tokens;      /* [n_vocab] */
    char *text;                     /* all vocabulary texts */
    char *pieces;                   /* all decoded pieces */
    struct tok__slot *slots;        /* [slot_mask + 1] */
    uint32_t slot_mask;
    size_t max_token_len, max_piece;

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    bool add_bos, add_eos, add_sep;
    bool add_space_prefix;          /* SPM: " " before the first text fragment */
    bool ignore_merges;             /* BPE (llama3): a word that is a token is taken whole */
    bool clean_spaces;              /* decode clean-up the reference applies */
    bool lowercase, strip_accents;  /* WordPiece normalizer */
    bool has_byte_tokens;
    bool wpm_hashes;                /* WordPiece vocab spells continuations "##x" (HF style) rather
                                       than the GGUF convention ("\u2581word", "x") */

    int32_t byte_tok[256];          /* SPM: <0xNN>; BPE: the token of the byte's mapped char */
    int32_t byte_fallback[256][2];  /* BPE: ids of the mapped char's single UTF-8 bytes, or -1 */
    uint8_t spm_glue[32];           /* SPM: bitmap of bytes that precede U+2581 inside a token */

    struct tok__merge *merges;      /* [merge_mask + 1] */
    uint32_t merge_mask;
    int32_t n_merges;

    struct tok__pretok *pretok;
    struct tok__special *special;
    struct tok__cache *cache;
};

/* ---- helpers ---- */

static inline uint64_t tok__hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

/* Token id of text[0..n) or -1 (hash lookup). */
static inline int32_t tok__lookup_h(const struct tokenizer *tok, const char *s, size_t n,
                                    uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32) | 1u;
    uint32_t i = (uint32_t)h & tok->slot_mask;
    for (;;) {
        const struct tok__slot *sl = &tok->slots[i];
        if (!sl->tag)
            return -1;
        if (sl->tag == tag) {
            const struct tok__entry *e = &tok->tokens[sl->id];
            if (e->len == n && !memcmp(tok->text + e->off, s, n))
                return sl->id;
        }
        i = (i + 1) & tok->slot_mask;
    }
}

static inline int32_t tok__lookup(const struct tokenizer *tok, const char *s, size_t n)
{
    return tok__lookup_h(tok, s, n, tok__hash(s, n));
}

/* Merge of adjacent tokens a, b: rank (>= 0) and *merged, or -1. */
static inline int32_t tok__merge_find(const struct tokenizer *tok, int32_t a, int32_t b,
                                      int32_t *merged)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & tok->merge_mask;
    for (;;) {
        const struct tok__merge *m = &tok->merges[i];
        if (m->key == key) {
            *merged = m->id;
            return m->rank;
        }
        if (m->key == UINT64_MAX)
            return -1;
        i = (i + 1) & tok->merge_mask;
    }
}

/* Output of an encode call: counts past cap so the caller learns the size it needs. */
struct tok__out {
    int32_t *ids;
    size_t cap;
    size_t n;
};

static inline void tok__emit(struct tok__out *o, int32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* A growable scratch buffer (per thread). */
struct tok__buf {
    void *p;
    size_t cap;   /* bytes */
};

/* Make room for `bytes`; contents are kept. 0 or TOKENIZER_E_NOMEM/E_LIMIT. */
int tok__reserve(struct tok__buf *b, size_t bytes);

/* Per-thread scratch, created on first use and freed at thread exit. */
struct tok__scratch {
    struct tok__buf text;    /* escaped / normalized text */
    struct tok__buf sym;     /* merge symbols */
    struct tok__buf heap;    /* merge candidates */
    struct tok__buf spans;   /* pre-tokenizer pieces */
    struct tok__buf spans2;
    struct tok__buf frags;   /* fragments after special-token matching */
    struct tok__buf cand;    /* special-token candidate matches */
    struct tok__buf marks;   /* bytes claimed by special tokens */
    struct tok__buf words;   /* WordPiece word boundaries */
    struct tok__buf ids;     /* ids of one word (for the cache) */
    void *match_data;        /* pcre2_match_data_8 */
};

struct tok__scratch *tok__scratch_get(void);
/* Give back buffers that grew large during the call that just ended. */
void tok__scratch_trim(struct tok__scratch *s);

/* Byte span of the input. */
struct tok__span {
    size_t off, len;
};

/* Fragment of the input after special-token matching: text, or one token (id >= 0). */
struct tok__frag {
    size_t off, len;
    int32_t id;
};

/* ---- module entry points ---- */

void tok__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* special.c: matcher over user-defined (and control/unknown) tokens. */
int tok__special_build(struct tokenizer *tok);
void tok__special_free(struct tok__special *sp);
/* Split text into fragments; returns the number (in s->frags) or a negative error. */
int64_t tok__special_split(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                           size_t len, bool parse_special);

/* spm.c / bpe.c / wordpiece.c: tokenize one text fragment. */
int tok__spm_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, bool space_prefix, struct tok__out *out);
int tok__bpe_build(struct tokenizer *tok, const struct gguf *g, char *err, size_t errlen);
int tok__bpe_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, struct tok__out *out);
int tok__wpm_encode(const struct tokenizer *tok, struct tok__scratch *s, const char *text,
                    size_t len, struct tok__out *out);

/* pretokenize.c */
/* Choose the regex set for tok->pre_name and set the flags that go with it (ignore_merges,
 * clean_spaces, add_bos); compiles the regexes into tok->pretok. */
int tok__pretok_new(struct tokenizer *tok, char *err, size_t errlen);
void tok__pretok_free(struct tok__pretok *p);
/* Split text into pieces (s->spans); returns the count or a negative error. */
int64_t tok__pretok_split(const struct tok__pretok *p, struct tok__scratch *s, const char *text,
                          size_t len);

/* cache.c: bounded, lock-free-read cache of short word -> ids. */
struct tok__cache *tok__cache_new(void);
void tok__cache_free(struct tok__cache *c);
/* Copies the ids of word into out (room for TOK_CACHE_MAX_IDS) and returns their count, or -1. */
int tok__cache_get(struct tok__cache *c, const char *word, size_t len, uint64_t h, int32_t *out);
void tok__cache_put(struct tok__cache *c, const char *word, size_t len, uint64_t h,
                    const int32_t *ids, int n);
#define TOK_CACHE_MAX_WORD 24
#define TOK_CACHE_MAX_IDS 8

/* bpe.c: the byte a GPT-2 byte-level character stands for, or -1. */
int tok__bpe_cp_to_byte(uint32_t cp);

/* vocab.c: the byte a <0xNN> token stands for, or -1. */
int tok__byte_of_token(const struct tokenizer *tok, int32_t id);

/* decode.c: build every token's piece at load. */
int tok__pieces_build(struct tokenizer *tok);

#endif
