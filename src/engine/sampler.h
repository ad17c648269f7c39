/* Token sampling: a chain of stages over a candidate array, log-probabilities, stop conditions. */
#ifndef TANDEM_ENGINE_SAMPLER_H
#define TANDEM_ENGINE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Negative error codes; sampler_strerror names them. */
enum sampler_error {
    SAMPLER_OK = 0,
    SAMPLER_E_INVALID = -1,  /* parameter out of range: token id, penalty, top_p, n_vocab ... */
    SAMPLER_E_NOMEM = -2,
    SAMPLER_E_STATE = -3,    /* no pick stage in the chain, logprobs not enabled, nothing sampled */
    SAMPLER_E_LIMIT = -4,    /* too many stages, stop strings or stop tokens; a string too long */
};

const char *sampler_strerror(int err);

/* ---- candidates: what stages work on ---- */

struct sampler_candidate {
    int32_t id;    /* token id */
    float logit;   /* current (possibly biased, penalised, scaled) logit */
    float p;       /* softmax weight relative to the best candidate (unnormalised), set by
                    * top-p and dist; meaningless before */
};

/* The candidate array, owned by the chain (allocated once for n_vocab entries). Stages shrink
 * `size` (truncation) and reorder entries, never grow it. The order used everywhere is total:
 * higher logit first, ties broken by the lower token id, so every algorithm agrees. */
struct sampler_candidates {
    struct sampler_candidate *data;  /* [size] */
    size_t size;
    bool sorted;     /* data is in that total order */
    bool identity;   /* data[i].id == i for all i < size == n_vocab (nothing moved or cut yet) */
    int64_t selected;  /* index into data chosen by the pick stage; -1 before */
};

/* ---- stages ---- */

struct sampler_stage;

/* A pluggable stage (like llama.h's llama_sampler_i). A stage must not allocate in apply or
 * accept: everything it needs is allocated by its constructor. */
struct sampler_stage_i {
    /* Required. A static string such as "top-k". */
    const char *(*name)(const struct sampler_stage *st);
    /* Required. Transforms the candidates in place; a pick stage sets c->selected. */
    void (*apply)(struct sampler_stage *st, struct sampler_candidates *c);
    /* May be NULL. Told each token that joins the sequence (penalty history). */
    void (*accept)(struct sampler_stage *st, int32_t token);
    /* May be NULL. Back to the state right after construction (history, PRNG). */
    void (*reset)(struct sampler_stage *st);
    /* May be NULL. Frees ctx; the struct sampler_stage itself is freed by the caller. */
    void (*free)(struct sampler_stage *st);
};

struct sampler_stage {
    const struct sampler_stage_i *iface;
    void *ctx;
};

struct sampler_logit_bias {
    int32_t token;
    float bias;    /* added to the logit; -INFINITY bans the token. Finite or -inf. */
};

/* Constructors: *out is a malloc'd stage owned by the caller until it is given to
 * sampler_chain_add. Return 0 or a negative sampler_error (out of range parameters). */

/* Adds each bias to its token's logit. Tokens must be in [0, n_vocab); a token listed twice
 * gets the sum. The list is copied. */
int sampler_stage_logit_bias_new(struct sampler_stage **out, int32_t n_vocab, size_t n,
                                 const struct sampler_logit_bias *bias);
/* Penalties over the last `last_n` accepted tokens (0 disables): llama-style repetition
 * penalty (a positive logit is divided by `repeat`, a negative one multiplied; 1 = off), then
 * OpenAI frequency and presence penalties: logit -= count * freq + (count > 0) * presence. */
int sampler_stage_penalties_new(struct sampler_stage **out, int32_t n_vocab, int32_t last_n,
                                float repeat, float freq, float presence);
/* Keeps the k best candidates, sorted (k <= 0: no-op). */
int sampler_stage_top_k_new(struct sampler_stage **out, int32_t k);
/* Keeps the fewest best candidates whose probability mass reaches p (at least min_keep).
 * p >= 1: no-op. Sorted input is walked; otherwise one pass buckets the mass by logit and
 * only the boundary bucket is sorted, and the kept candidates stay in an unspecified (but
 * deterministic) order. */
int sampler_stage_top_p_new(struct sampler_stage **out, float p, size_t min_keep);
/* Keeps candidates whose probability is >= p times the best one's (at least min_keep).
 * p <= 0: no-op. */
int sampler_stage_min_p_new(struct sampler_stage **out, float p, size_t min_keep);
/* Divides logits by t (t > 0). */
int sampler_stage_temperature_new(struct sampler_stage **out, float t);
/* Pick: the best candidate (argmax, ties to the lowest id). */
int sampler_stage_greedy_new(struct sampler_stage **out);
/* Pick: a random draw from the softmax of the candidates, from a xoshiro256** generator
 * seeded with `seed` through splitmix64. Same seed and logits give the same tokens on every
 * platform: every decision uses integer and IEEE + - * / arithmetic only, no libm (build
 * without -ffast-math; sampler_stages.c turns FMA contraction off where the compiler would
 * otherwise fuse). */
int sampler_stage_dist_new(struct sampler_stage **out, uint64_t seed);
/* Frees a stage not given to a chain. Accepts NULL. */
void sampler_stage_free(struct sampler_stage *st);

/* ---- the chain ---- */

#define SAMPLER_MAX_STAGES 16
#define SAMPLER_MAX_TOP_LOGPROBS 20
#define SAMPLER_MAX_LAST_N (1 << 20)
/* Seed value asking for a seed from the clock; sampler_chain_seed reports the one used. */
#define SAMPLER_SEED_RANDOM UINT64_MAX

struct sampler_config {
    float temperature;        /* <= 0: greedy */
    int32_t top_k;            /* <= 0: off */
    float top_p;              /* [0, 1]; 1: off */
    float min_p;              /* [0, 1]; 0: off */
    float repeat_penalty;     /* > 0; 1: off */
    int32_t repeat_last_n;    /* history for all three penalties, 0..SAMPLER_MAX_LAST_N */
    float frequency_penalty;  /* 0: off */
    float presence_penalty;   /* 0: off */
    uint64_t seed;            /* SAMPLER_SEED_RANDOM: from the clock */
    size_t n_logit_bias;
    const struct sampler_logit_bias *logit_bias;  /* copied by sampler_chain_new */
    bool logprobs;            /* compute the sampled token's log-probability */
    int32_t n_probs;          /* also the top n alternatives, 0..SAMPLER_MAX_TOP_LOGPROBS */
};

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1,
 * repeat_last_n 64, no frequency/presence penalty, random seed, no logprobs. */
void sampler_config_default(struct sampler_config *cfg);

struct sampler_chain;

/* The standard chain for cfg over a vocabulary of n_vocab tokens:
 *   logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> random pick
 * (stages that are off are left out). Truncation runs before temperature, as in llama.cpp,
 * so which tokens survive top-p/min-p does not depend on the temperature; temperature only
 * reshapes the final draw. temperature <= 0 gives  bias -> penalties -> greedy  (truncation
 * cannot change the argmax).
 * Log-probabilities (cfg->logprobs or n_probs > 0) are those of the distribution the model
 * offers the sampler: log-softmax over the whole vocabulary of the logits after bias and
 * penalties, divided by the temperature (1 when greedy), before any truncation. This is
 * OpenAI's meaning (a token cut by top-p still has a log-probability).
 * Everything is allocated here; sampling allocates nothing. */
int sampler_chain_new(struct sampler_chain **out, const struct sampler_config *cfg,
                      int32_t n_vocab);
/* The standard chain with `first` (may be NULL; the chain owns it, also on failure) in front
 * of it, e.g. a constraint that must see the raw candidates. Log-probabilities are then taken
 * after `first`, bias and penalties. */
int sampler_chain_new_front(struct sampler_chain **out, const struct sampler_config *cfg,
                            int32_t n_vocab, struct sampler_stage *first);
/* An empty chain, to assemble from stages. */
int sampler_chain_new_empty(struct sampler_chain **out, int32_t n_vocab);
/* Appends a stage; the chain owns it from then on, even when this fails (it is freed). */
int sampler_chain_add(struct sampler_chain *c, struct sampler_stage *st);
/* Log-probabilities for a custom chain: a snapshot of the candidates taken after the first
 * `after_stage` stages (0 = the raw logits), scaled by 1/temperature (temperature <= 0: 1).
 * n_top in 0..SAMPLER_MAX_TOP_LOGPROBS. */
int sampler_chain_set_logprobs(struct sampler_chain *c, size_t after_stage, float temperature,
                               int32_t n_top);
size_t sampler_chain_n_stages(const struct sampler_chain *c);
const struct sampler_stage *sampler_chain_stage(const struct sampler_chain *c, size_t i);
uint64_t sampler_chain_seed(const struct sampler_chain *c);
/* Accepts NULL. Frees every stage. */
void sampler_free(struct sampler_chain *c);

/* Samples one token from logits[n_vocab] (not modified; NaN counts as -inf). Returns the token
 * id (>= 0) or a negative sampler_error. Does not accept the token: call sampler_accept. */
int32_t sampler_sample(struct sampler_chain *c, const float *logits);
/* Adds a token to the history the penalties look at. Feed the generated tokens; feed prompt
 * tokens too for llama.cpp's behaviour (penalising repeats of the prompt). */
int sampler_accept(struct sampler_chain *c, int32_t token);
/* Forgets the history and restarts the random generator from its seed. */
void sampler_reset(struct sampler_chain *c);

struct sampler_token_logprob {
    int32_t id;
    float logprob;
};

struct sampler_logprobs {
    int32_t token;    /* the sampled token */
    float logprob;    /* its log-probability (<= 0) */
    int32_t n_top;    /* entries in top, best first (ties: lower id first) */
    struct sampler_token_logprob top[SAMPLER_MAX_TOP_LOGPROBS];
};

/* Log-probabilities of the last sampler_sample. SAMPLER_E_STATE if logprobs are not enabled
 * or nothing has been sampled. */
int sampler_logprobs(const struct sampler_chain *c, struct sampler_logprobs *out);

/* ---- stop conditions ---- */

#define SAMPLER_STOP_MAX_STRINGS 64
#define SAMPLER_STOP_MAX_STRING_LEN 4096
#define SAMPLER_STOP_MAX_TOKENS 64

enum sampler_stop_reason {
    SAMPLER_STOP_NONE = 0,
    SAMPLER_STOP_TOKEN,    /* a stop token (EOS, end of turn): its text is not part of the output */
    SAMPLER_STOP_STRING,   /* a stop string appeared: the output ends right before it */
    SAMPLER_STOP_LENGTH,   /* max_tokens generated */
};

struct sampler_stop_config {
    const char *const *strings;  /* NUL-terminated; empty ones are ignored; copied */
    size_t n_strings;
    const int32_t *tokens;       /* copied */
    size_t n_tokens;
    int64_t max_tokens;          /* <= 0: unlimited */
};

struct sampler_stop;

int sampler_stop_new(struct sampler_stop **out, const struct sampler_stop_config *cfg);
void sampler_stop_free(struct sampler_stop *s);  /* accepts NULL */
/* Back to the start of a generation. */
void sampler_stop_reset(struct sampler_stop *s);
/* Call for each generated token before appending its text. SAMPLER_STOP_TOKEN for a stop token
 * (do not append its text); otherwise the token is counted and SAMPLER_STOP_NONE returned. */
enum sampler_stop_reason sampler_stop_token(struct sampler_stop *s, int32_t token);
/* Call after appending the token's text, with all text generated so far (text[0..len)); only
 * the part not yet examined is scanned, so a generation costs O(length), not O(length^2).
 * *emit_len: how much of the text is final.
 *   SAMPLER_STOP_NONE:   text[0..*emit_len) may be streamed; the rest is held back because it
 *                        could be the start of a stop string. *emit_len never decreases.
 *   SAMPLER_STOP_STRING: the output is text[0..*emit_len), cut before the earliest stop string.
 *   SAMPLER_STOP_LENGTH: the max_tokens-th token was counted: all of text is final.
 * When generation ends otherwise (stop token, client gone), the held-back text is final too.
 * `text` must start with the same bytes on every call of a generation. */
enum sampler_stop_reason sampler_stop_text(struct sampler_stop *s, const char *text, size_t len,
                                           size_t *emit_len);
/* Index (in the config's list) of the stop string that ended the text, or -1. */
int sampler_stop_matched(const struct sampler_stop *s);
int64_t sampler_stop_n_tokens(const struct sampler_stop *s);

/* ---- internals exposed for tests ---- */

/* xoshiro256** step and splitmix64 seeding, as used by the dist stage. */
uint64_t sampler__rng_next(uint64_t s[4]);
void sampler__rng_seed(uint64_t s[4], uint64_t seed);
/* exp(x) from + - * / only (bit-identical everywhere); x <= 0 is what sampling needs. */
double sampler__exp(double x);
/* Sorts candidates into the total order (best first). */
void sampler__sort(struct sampler_candidate *a, size_t n);
/* Moves the k best candidates to a[0..k) (in no particular order). */
void sampler__select(struct sampler_candidate *a, size_t n, size_t k);

#endif
