/* Stop conditions: stop tokens, max tokens, and stop strings with streaming hold-back. */
#include "engine/sampler.h"

#include <stdlib.h>
#include <string.h>

struct sampler_stop {
    size_t n_strings;
    const char **str; /* [n_strings], into the same allocation */
    size_t *len;      /* [n_strings] */
    int *index;       /* [n_strings] position in the caller's list (empty strings skipped) */
    size_t n_tokens;
    int32_t tokens[SAMPLER_STOP_MAX_TOKENS];
    int64_t max_tokens;
    int64_t n_generated;
    /* Every position below `scanned` is known not to start a stop string. */
    size_t scanned;
    int matched;
};

int sampler_stop_new(struct sampler_stop **out, const struct sampler_stop_config *cfg)
{
    *out = NULL;
    if (!cfg || (cfg->n_strings && !cfg->strings) || (cfg->n_tokens && !cfg->tokens))
        return SAMPLER_E_INVALID;
    if (cfg->n_strings > SAMPLER_STOP_MAX_STRINGS || cfg->n_tokens > SAMPLER_STOP_MAX_TOKENS)
        return SAMPLER_E_LIMIT;
    size_t bytes = 0;
    for (size_t i = 0; i < cfg->n_strings; i++) {
        if (!cfg->strings[i])
            return SAMPLER_E_INVALID;
        size_t n = strnlen(cfg->strings[i], SAMPLER_STOP_MAX_STRING_LEN + 1);
        if (n > SAMPLER_STOP_MAX_STRING_LEN)
            return SAMPLER_E_LIMIT;
        bytes += n + 1;
    }
    size_t ns = cfg->n_strings;
    size_t head = sizeof(struct sampler_stop);
    size_t total = head + ns * (sizeof(char *) + sizeof(size_t) + sizeof(int)) + bytes;
    struct sampler_stop *s = calloc(1, total);
    if (!s)
        return SAMPLER_E_NOMEM;
    char *p = (char *)s + head;
    s->str = (const char **)(void *)p;
    p += ns * sizeof(char *);
    s->len = (size_t *)(void *)p;
    p += ns * sizeof(size_t);
    s->index = (int *)(void *)p;
    p += ns * sizeof(int);
    for (size_t i = 0; i < ns; i++) {
        size_t n = strlen(cfg->strings[i]);
        if (n == 0)
            continue;
        memcpy(p, cfg->strings[i], n + 1);
        s->str[s->n_strings] = p;
        s->len[s->n_strings] = n;
        s->index[s->n_strings] = (int)i;
        s->n_strings++;
        p += n + 1;
    }
    s->n_tokens = cfg->n_tokens;
    if (cfg->n_tokens)
        memcpy(s->tokens, cfg->tokens, cfg->n_tokens * sizeof(int32_t));
    s->max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : 0;
    s->matched = -1;
    *out = s;
    return SAMPLER_OK;
}

void sampler_stop_free(struct sampler_stop *s)
{
    free(s);
}

void sampler_stop_reset(struct sampler_stop *s)
{
    if (!s)
        return;
    s->n_generated = 0;
    s->scanned = 0;
    s->matched = -1;
}

enum sampler_stop_reason sampler_stop_token(struct sampler_stop *s, int32_t token)
{
    for (size_t i = 0; i < s->n_tokens; i++)
        if (s->tokens[i] == token)
            return SAMPLER_STOP_TOKEN;
    s->n_generated++;
    return SAMPLER_STOP_NONE;
}

enum sampler_stop_reason sampler_stop_text(struct sampler_stop *s, const char *text, size_t len,
                                           size_t *emit_len)
{
    if (s->scanned > len) /* the caller's text shrank: start over from what is left */
        s->scanned = len;
    size_t hold = len;
    /* Earliest position first, so the output is cut before the first stop string to appear;
     * at one position the first string in the caller's list wins. */
    for (size_t i = s->scanned; i < len; i++) {
        size_t avail = len - i;
        for (size_t j = 0; j < s->n_strings; j++) {
            size_t n = s->len[j];
            if (text[i] != s->str[j][0])
                continue;
            if (avail >= n) {
                if (memcmp(text + i, s->str[j], n) == 0) {
                    s->matched = s->index[j];
                    s->scanned = i;
                    *emit_len = i;
                    return SAMPLER_STOP_STRING;
                }
            } else if (hold == len && memcmp(text + i, s->str[j], avail) == 0) {
                hold = i; /* the tail text[i..) may grow into this stop string */
            }
        }
    }
    s->scanned = hold;
    if (s->max_tokens && s->n_generated >= s->max_tokens) {
        *emit_len = len;
        return SAMPLER_STOP_LENGTH;
    }
    *emit_len = hold;
    return SAMPLER_STOP_NONE;
}

int sampler_stop_matched(const struct sampler_stop *s)
{
    return s ? s->matched : -1;
}

int64_t sampler_stop_n_tokens(const struct sampler_stop *s)
{
    return s ? s->n_generated : 0;
}
