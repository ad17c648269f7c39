/* Text generation loop shared by `tandem run` and `tandem chat`. */
#ifndef TANDEM_CLI_GENERATE_H
#define TANDEM_CLI_GENERATE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/sampler.h"
#include "tandem.h"

struct gen_stats {
    int n_prompt;        /* tokens evaluated for the prompt (after any cached prefix) */
    int n_gen;           /* tokens generated */
    double t_prompt;     /* seconds */
    double t_gen;
    enum sampler_stop_reason reason;
    int interrupted;
    /* Optional outputs, set by the caller before gen_run: the generated ids (up to ids_cap)
     * and the final text (malloc'd, NUL-terminated; the caller frees it). */
    int32_t *ids;
    int ids_cap;
    char *text;
};

/* Evaluates prompt[0..n_prompt) after what the context already holds, then samples up to
 * max_tokens tokens (<= 0: until the context is full), writing their text to out as it
 * becomes final. Stops at an end-of-generation token, a stop string, max_tokens, a full
 * context, or when *interrupt becomes non-zero. Generated tokens stay in the context (a chat
 * continues from them). Returns 0 or a negative tandem_error. stats is required. */
int gen_run(struct tandem_ctx *c, const struct tandem_model *m, struct sampler_chain *smp,
            const char *const *stop_strings, int n_stop, const int32_t *prompt, int n_prompt,
            int max_tokens, FILE *out, volatile sig_atomic_t *interrupt, struct gen_stats *stats);

#endif
