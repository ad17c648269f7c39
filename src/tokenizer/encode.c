/* tokenizer_encode: special-token split, BOS/EOS, dispatch per tokenizer kind; per-thread scratch. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tok_impl.h"

/* Hard cap of one scratch buffer: symbol arrays for the largest accepted text. */
#define SCRATCH_MAX ((size_t)TOKENIZER_MAX_TEXT * 32)
/* Buffers larger than this are given back after the call that grew them. */
#define SCRATCH_KEEP ((size_t)4 << 20)

int tok__reserve(struct tok__buf *b, size_t bytes)
{
    if (bytes <= b->cap)
        return 0;
    if (bytes > SCRATCH_MAX)
        return TOKENIZER_E_LIMIT;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < bytes)
        cap *= 2;
    if (cap > SCRATCH_MAX)
        cap = SCRATCH_MAX;
    void *p = realloc(b->p, cap);
    if (!p)
        return TOKENIZER_E_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;
static _Thread_local struct tok__scratch *tls_scratch;

#define N_BUFS 10

static void bufs(struct tok__scratch *s, struct tok__buf *b[N_BUFS])
{
    struct tok__buf *all[N_BUFS] = {&s->text, &s->sym, &s->heap, &s->spans, &s->spans2,
                                    &s->frags, &s->cand, &s->marks, &s->words, &s->ids};
    memcpy(b, all, sizeof(all));
}

static void scratch_free(void *p)
{
    struct tok__scratch *s = p;
    if (!s)
        return;
    struct tok__buf *b[N_BUFS];
    bufs(s, b);
    for (size_t i = 0; i < N_BUFS; i++)
        free(b[i]->p);
    if (s->match_data)
        pcre2_match_data_free(s->match_data);
    free(s);
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

struct tok__scratch *tok__scratch_get(void)
{
    if (tls_scratch)
        return tls_scratch;
    pthread_once(&scratch_once, scratch_key_init);
    struct tok__scratch *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->match_data = pcre2_match_data_create(4, NULL);
    if (!s->match_data || !scratch_key_ok || pthread_setspecific(scratch_key, s)) {
        scratch_free(s);
        return NULL;
    }
    tls_scratch = s;
    return s;
}

void tok__scratch_trim(struct tok__scratch *s)
{
    struct tok__buf *b[N_BUFS];
    bufs(s, b);
    for (size_t i = 0; i < N_BUFS; i++) {
        if (b[i]->cap > SCRATCH_KEEP) {
            free(b[i]->p);
            b[i]->p = NULL;
            b[i]->cap = 0;
        }
    }
}

int tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len, int32_t *ids,
                     size_t max_ids, unsigned flags)
{
    if (!tok || (!text && len) || (!ids && max_ids))
        return TOKENIZER_E_ARG;
    if (len > TOKENIZER_MAX_TEXT)
        return TOKENIZER_E_LIMIT;
    struct tok__scratch *s = tok__scratch_get();
    if (!s)
        return TOKENIZER_E_NOMEM;
    struct tok__out out = {ids, max_ids, 0};
    bool add_special = flags & TOKENIZER_ADD_SPECIAL;
    int rc = 0;
    int64_t n_frag = tok__special_split(tok, s, text, len, flags & TOKENIZER_PARSE_SPECIAL);
    if (n_frag < 0) {
        rc = (int)n_frag;
        goto out;
    }
    if (add_special && tok->add_bos)
        tok__emit(&out, tok->bos);
    bool prev_special = true;   /* SPM: a space prefix at the start and after special tokens */
    for (int64_t i = 0; i < n_frag && !rc; i++) {
        /* the sub-encoders use other scratch buffers: frags stays valid */
        const struct tok__frag f = ((const struct tok__frag *)s->frags.p)[i];
        if (f.id >= 0) {
            tok__emit(&out, f.id);
            prev_special = true;
            continue;
        }
        switch (tok->kind) {
        case TOKENIZER_KIND_SPM:
            rc = tok__spm_encode(tok, s, text + f.off, f.len,
                                 tok->add_space_prefix && prev_special, &out);
            break;
        case TOKENIZER_KIND_BPE:
            rc = tok__bpe_encode(tok, s, text + f.off, f.len, &out);
            break;
        case TOKENIZER_KIND_WPM:
            rc = tok__wpm_encode(tok, s, text + f.off, f.len, &out);
            break;
        }
        prev_special = false;
    }
    if (rc)
        goto out;
    if (add_special && tok->add_eos)
        tok__emit(&out, tok->eos);
    if (add_special && tok->kind == TOKENIZER_KIND_WPM && tok->add_sep)
        tok__emit(&out, tok->sep);
    if (out.n > INT_MAX)
        rc = TOKENIZER_E_LIMIT;
out:
    tok__scratch_trim(s);
    return rc ? rc : (int)out.n;
}
