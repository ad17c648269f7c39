/* Generation loop: batched prompt, then sample, detokenize (UTF-8 safe), stop, decode. */
#include "cli/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/model.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Text of this generation, grown as tokens arrive; capped so a runaway generation cannot eat
 * memory (the cap only limits stop-string matching, which needs the text). */
#define GEN_TEXT_CAP (64u << 20)

int gen_run(struct tandem_ctx *c, const struct tandem_model *m, struct sampler_chain *smp,
            const char *const *stop_strings, int n_stop, const int32_t *prompt, int n_prompt,
            int max_tokens, FILE *out, volatile sig_atomic_t *interrupt, struct gen_stats *stats)
{
    struct gen_stats st = {.ids = stats->ids, .ids_cap = stats->ids_cap};
    struct tokenizer_stream *stream = NULL;
    struct sampler_stop *stop = NULL;
    char *text = NULL, *piece = NULL;
    size_t text_len = 0, text_cap = 0, emitted = 0;
    int rc = TANDEM_E_NOMEM;
    if (!m->tok) {
        rc = TANDEM_E_UNSUPPORTED;
        goto out;
    }
    const size_t piece_cap = TOKENIZER_STREAM_CAP(m->tok);
    struct sampler_stop_config sc = {.strings = stop_strings, .n_strings = (size_t)n_stop,
                                     .max_tokens = max_tokens};
    if (!(stream = tokenizer_stream_new(m->tok, 0)) || !(piece = malloc(piece_cap + 3)) ||
        sampler_stop_new(&stop, &sc))
        goto out;
    const int n_batch = 256;
    double t0 = now();
    for (int i = 0; i < n_prompt; i += n_batch) {
        int n = n_prompt - i < n_batch ? n_prompt - i : n_batch;
        if ((rc = tandem_decode(c, prompt + i, n, false)))
            goto out;
    }
    for (int i = 0; i < n_prompt; i++)
        sampler_accept(smp, prompt[i]);
    st.n_prompt = n_prompt;
    st.t_prompt = now() - t0;
    t0 = now();
    st.reason = SAMPLER_STOP_NONE;
    while (!(interrupt && *interrupt)) {
        int32_t tok = sampler_sample(smp, tandem_logits(c, -1));
        if (tok < 0) {
            rc = TANDEM_E_ARG;
            goto out;
        }
        sampler_accept(smp, tok);
        if (tokenizer_is_eog(m->tok, tok) || sampler_stop_token(stop, tok) == SAMPLER_STOP_TOKEN) {
            st.reason = SAMPLER_STOP_TOKEN;
            break;
        }
        if (st.ids && st.n_gen < st.ids_cap)
            st.ids[st.n_gen] = tok;
        st.n_gen++;
        int n = tokenizer_stream_feed(stream, tok, piece, piece_cap);
        if (n < 0) {
            rc = TANDEM_E_ARG;
            goto out;
        }
        if (text_len + (size_t)n > text_cap) {
            size_t cap = text_cap ? text_cap * 2 : 4096;
            while (cap < text_len + (size_t)n)
                cap *= 2;
            if (cap > GEN_TEXT_CAP) {
                /* Stop-string matching needs the text; beyond the cap, emit what we have. */
                fwrite(text + emitted, 1, text_len - emitted, out);
                emitted = text_len = 0;
                cap = text_cap;
                sampler_stop_reset(stop);
            } else {
                char *p = realloc(text, cap);
                if (!p)
                    goto out;
                text = p;
                text_cap = cap;
            }
        }
        memcpy(text + text_len, piece, (size_t)n);
        text_len += (size_t)n;
        size_t emit = emitted;
        enum sampler_stop_reason why = sampler_stop_text(stop, text, text_len, &emit);
        if (emit > emitted) {
            fwrite(text + emitted, 1, emit - emitted, out);
            fflush(out);
            emitted = emit;
        }
        if (why != SAMPLER_STOP_NONE) {
            st.reason = why;
            break;
        }
        if (tandem_ctx_n_past(c) >= tandem_ctx_n_ctx(c)) {
            st.reason = SAMPLER_STOP_LENGTH;
            break;
        }
        if ((rc = tandem_decode(c, &tok, 1, false)))
            goto out;
    }
    st.interrupted = interrupt && *interrupt;
    /* What was held back for a possible stop string is final now (unless one matched). */
    if (st.reason != SAMPLER_STOP_STRING && text_len > emitted) {
        fwrite(text + emitted, 1, text_len - emitted, out);
        emitted = text_len;
    }
    int n = tokenizer_stream_flush(stream, piece, piece_cap);
    if (n > 0 && st.reason != SAMPLER_STOP_STRING)
        fwrite(piece, 1, (size_t)n, out);
    fflush(out);
    if ((st.text = malloc(emitted + 1))) {
        memcpy(st.text, text ? text : "", emitted);
        st.text[emitted] = 0;
    }
    st.t_gen = now() - t0;
    rc = 0;
out:
    *stats = st;
    free(text);
    free(piece);
    tokenizer_stream_free(stream);
    sampler_stop_free(stop);
    return rc;
}
