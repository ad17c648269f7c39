/* Where a generation's output goes, whichever target produces it (the local engine or an
 * upstream provider): text deltas as they become final, then one done() call. */
#ifndef TANDEM_GATEWAY_SINK_H
#define TANDEM_GATEWAY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampler.h"

/* One token's log-probabilities as the API reports them. */
struct gen_logprob {
    int32_t token;
    float logprob;
    int n_top;
    struct sampler_token_logprob top[SAMPLER_MAX_TOP_LOGPROBS];
};

/* Where a job's output goes. Callbacks run on the producer's thread (the local scheduler, or the
 * request's own thread for upstreams) and must not block for long (write to a buffer or a
 * non-blocking stream). */
struct gen_sink {
    /* Required. Final text (valid UTF-8, never split inside a character), with the
     * log-probabilities of the tokens that completed it (n_lp may be 0). */
    void (*text)(void *ud, const char *text, size_t len, const struct gen_logprob *lp,
                 int n_lp);
    /* Required. Called exactly once, last: reason "stop", "length" or "cancelled"; counts. */
    void (*done)(void *ud, const char *reason, int prompt_tokens, int cached_tokens,
                 int completion_tokens);
    /* May be NULL. Polled each step: true ends the job at once (client gone). */
    bool (*gone)(void *ud);
    void *ud;
};

#endif
