/* A local model behind the API: one engine context with N sequence slots, a scheduler thread
 * that runs continuous batching (new requests join between decode steps, prompts are
 * processed in chunks so running streams keep flowing) and a KV prefix cache across slots. */
#ifndef TANDEM_GATEWAY_LOCAL_H
#define TANDEM_GATEWAY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampler.h"
#include "gateway/sink.h"

struct tandem_model;
struct json_schema;

enum local_error {
    LOCAL_OK = 0,
    LOCAL_E_ARG = -1,
    LOCAL_E_NOMEM = -2,
    LOCAL_E_BUSY = -3,       /* the queue is full: answer 503 with Retry-After */
    LOCAL_E_TOO_LONG = -4,   /* the prompt does not fit a slot's context */
    LOCAL_E_LOAD = -5,       /* the model could not be loaded */
    LOCAL_E_STOPPED = -6,    /* shutting down */
};
const char *local_strerror(int err);

struct local_config {
    const char *name;     /* public model name */
    const char *path;     /* GGUF file */
    int n_slots;          /* parallel sequences (default 4) */
    int n_ctx;            /* positions per slot (default min(training context, 4096)) */
    int n_threads;        /* 0: all CPUs */
    int n_batch;          /* tokens per decode step (default 512) */
    int prompt_chunk;     /* most prompt tokens of one request per step (default 128) */
    int queue_max;        /* requests waiting for a slot beyond which LOCAL_E_BUSY (default 64) */
};
void local_config_default(struct local_config *cfg);

struct local_model;

/* Loads the model and starts the scheduler thread. */
int local_model_new(struct local_model **out, const struct local_config *cfg, char *err,
                    size_t errlen);
/* Ends every job (their sinks get done with reason "cancelled"), stops the thread, frees.
 * Accepts NULL. */
void local_model_free(struct local_model *lm);
/* Ends every running and queued job (done() with "cancelled"); the model keeps serving new
 * ones. */
void local_model_cancel_all(struct local_model *lm);
const char *local_model_name(const struct local_model *lm);
const struct tandem_model *local_model_engine(const struct local_model *lm);
int local_model_n_ctx(const struct local_model *lm);
int local_model_n_embd(const struct local_model *lm);

/* Statistics since start (for /health and metrics). */
struct local_stats {
    int slots_busy, n_slots, queued;
    uint64_t requests, prompt_tokens, cached_tokens, gen_tokens;
};
void local_model_stats(struct local_model *lm, struct local_stats *out);
int local_model_stats_slots(const struct local_model *lm);  /* the number of slots */

struct local_job_params {
    const int32_t *prompt;      /* [n_prompt], copied */
    int n_prompt;
    struct sampler_config sampling;  /* logit_bias copied */
    int max_tokens;             /* <= 0: until the context is full */
    const char *const *stop;    /* stop strings, copied */
    int n_stop;
    struct json_schema *schema; /* constrained output, or NULL; the job takes ownership (it is
                                 * freed when the job ends, also when local_submit fails) */
    bool json_object;           /* any JSON object (schema NULL) */
};

struct local_job;

/* Queues a job; output goes to sink until its done() call. *out (may be NULL) is a reference
 * for local_job_cancel / local_job_release. */
int local_submit(struct local_model *lm, const struct local_job_params *p,
                 const struct gen_sink *sink, struct local_job **out);
/* Asks the scheduler to end the job (done() still comes, reason "cancelled"). */
void local_job_cancel(struct local_job *j);
void local_job_release(struct local_job *j);  /* accepts NULL */

/* Mean-pooled, L2-normalized embedding of n tokens into out[n_embd] (a separate context,
 * serialized; does not stall generation beyond CPU sharing). */
int local_embed(struct local_model *lm, const int32_t *tokens, int n, float *out);

#endif
