/* tandem engine: load a GGUF model and evaluate tokens on the CPU. The public C API. */
#ifndef TANDEM_H
#define TANDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors are negative values; tandem_strerror names them. Functions that can fail also fill a
 * caller's error buffer with one line saying what and where. */
enum tandem_error {
    TANDEM_OK = 0,
    TANDEM_E_IO = -1,            /* file cannot be opened or mapped */
    TANDEM_E_FORMAT = -2,        /* malformed GGUF */
    TANDEM_E_UNSUPPORTED = -3,   /* architecture, tensor type or feature not supported */
    TANDEM_E_MISSING = -4,       /* required metadata key or tensor absent */
    TANDEM_E_SHAPE = -5,         /* a tensor's shape or type does not fit the architecture */
    TANDEM_E_NOMEM = -6,
    TANDEM_E_ARG = -7,           /* bad argument: token id out of range, batch too large... */
    TANDEM_E_CONTEXT_FULL = -8,  /* the KV cache has no room for the tokens */
};

const char *tandem_strerror(int err);

/* Whether general.architecture `name` (len bytes) can be run, and the supported names
 * ("llama, qwen2, ..."; static). */
bool tandem_arch_supported(const char *name, size_t len);
const char *tandem_supported_archs(void);

struct tandem_model;  /* weights (mmapped, shared, read-only) and hyperparameters */
struct tandem_ctx;    /* sequences (KV caches), scratch buffers, threads */

/* Load a model. *out owns the mapping of the file; free it with tandem_model_free after
 * every context made from it. On error *out is NULL and errbuf holds one line. */
int tandem_model_load(struct tandem_model **out, const char *path, char *errbuf, size_t errlen);
void tandem_model_free(struct tandem_model *m);  /* accepts NULL */

int tandem_model_n_vocab(const struct tandem_model *m);
int tandem_model_n_ctx_train(const struct tandem_model *m);
int tandem_model_n_embd(const struct tandem_model *m);
int tandem_model_n_layer(const struct tandem_model *m);
const char *tandem_model_arch(const struct tandem_model *m);  /* "llama", ... */
/* Parameter count (elements of all tensors) and bytes of weights. */
uint64_t tandem_model_n_params(const struct tandem_model *m);
uint64_t tandem_model_size(const struct tandem_model *m);
/* A short description, e.g. "llama 1.1B Q4_K_M". Static per model; valid until free. */
const char *tandem_model_desc(const struct tandem_model *m);

/* ---- text: the model's own tokenizer (from its tokenizer.ggml.* metadata) ---- */

/* Tokenize len bytes of text. add_special adds BOS/EOS as the model's metadata says;
 * parse_special turns control-token text ("<|im_end|>") into those tokens. Writes at most
 * max_ids ids and returns how many the text has (retry with more room when that is larger),
 * or a negative tandem_error (TANDEM_E_UNSUPPORTED: the model has no usable tokenizer, see
 * tandem_model_tokenizer_error). Thread-safe. */
int tandem_tokenize(const struct tandem_model *m, const char *text, size_t len, int32_t *ids,
                    size_t max_ids, bool add_special, bool parse_special);
/* The text of one token (control tokens render only with special). Returns the length
 * (copied when <= cap) or a negative error. */
int tandem_token_to_piece(const struct tandem_model *m, int32_t id, char *buf, size_t cap,
                          bool special);
/* Special tokens (-1 when absent); end-of-generation test (EOS, end-of-turn...). */
int32_t tandem_token_bos(const struct tandem_model *m);
int32_t tandem_token_eos(const struct tandem_model *m);
bool tandem_token_is_eog(const struct tandem_model *m, int32_t id);
/* Why the model has no tokenizer ("" when it has one). */
const char *tandem_model_tokenizer_error(const struct tandem_model *m);

struct tandem_ctx_params {
    int n_ctx;      /* KV cache positions; 0 = the model's training context */
    int n_batch;    /* most tokens per tandem_decode call; 0 = 256 */
    int n_threads;  /* 0 = the number of online CPUs */
    int n_seq;      /* independent sequences (server slots), each with n_ctx positions of KV
                     * cache; 0 = 1. The single-sequence calls below work on sequence 0. */
};

struct tandem_ctx_params tandem_ctx_default_params(void);

/* A context over a model (which must outlive it). All memory is allocated here; decoding
 * allocates nothing. */
int tandem_ctx_new(struct tandem_ctx **out, struct tandem_model *m,
                   const struct tandem_ctx_params *params, char *errbuf, size_t errlen);
void tandem_ctx_free(struct tandem_ctx *c);  /* accepts NULL */

/* Evaluate n tokens (1..n_batch) at the next positions of the sequence, appending to the KV
 * cache. With all_logits the logits of every token are kept, otherwise only the last's.
 * Returns 0 or a negative tandem_error (the cache is unchanged on error). */
int tandem_decode(struct tandem_ctx *c, const int32_t *tokens, int n, bool all_logits);
/* Logits (n_vocab floats) of token i of the last decode (i = -1: the last token). Valid until
 * the next decode; NULL if that token's logits were not kept. */
const float *tandem_logits(const struct tandem_ctx *c, int i);

/* Positions held in the KV cache. */
int tandem_ctx_n_past(const struct tandem_ctx *c);
int tandem_ctx_n_ctx(const struct tandem_ctx *c);
int tandem_ctx_n_threads(const struct tandem_ctx *c);
/* Bytes of the KV cache and of the scratch buffers, as allocated at creation. */
size_t tandem_ctx_kv_bytes(const struct tandem_ctx *c);
size_t tandem_ctx_scratch_bytes(const struct tandem_ctx *c);
/* Forget positions >= n_past (n_past <= current); 0 clears the sequence. */
int tandem_ctx_truncate(struct tandem_ctx *c, int n_past);

/* ---- several sequences in one forward pass (continuous batching) ---- */

/* Tokens to append to one sequence. */
struct tandem_span {
    int seq;                 /* 0..n_seq-1; at most one span per sequence in a call */
    const int32_t *tokens;   /* [n] */
    int n;                   /* >= 1 */
    bool logits;             /* keep the logits of the span's last token */
};
/* Evaluates every span in one forward pass: the weights are read once for all the tokens
 * (sum of n <= n_batch), attention stays within each sequence. Returns 0 or a negative
 * tandem_error; on error no sequence changes. */
int tandem_decode_spans(struct tandem_ctx *c, const struct tandem_span *spans, int n_spans);
/* Logits of span i of the last tandem_decode_spans (NULL if it did not ask for them). Valid
 * until the next decode. */
const float *tandem_span_logits(const struct tandem_ctx *c, int i);
int tandem_ctx_n_seq(const struct tandem_ctx *c);
int tandem_seq_n_past(const struct tandem_ctx *c, int seq);
/* Forget positions >= n_past of one sequence. */
int tandem_seq_truncate(struct tandem_ctx *c, int seq, int n_past);
/* Makes dst hold the first n positions of src (a shared prompt prefix computed once). */
int tandem_seq_copy(struct tandem_ctx *c, int src, int dst, int n);

/* Sentence embedding of n tokens (any n up to n_ctx): the final-norm hidden states of every
 * token, mean-pooled and L2-normalized, into out[n_embd]. Uses (and clears) sequence seq. */
int tandem_embed(struct tandem_ctx *c, int seq, const int32_t *tokens, int n, float *out);

/* Convert the GGUF model `in` to `out` with weights in `type`: a tensor type (F32, F16, BF16,
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q6_K) or a mix that keeps sensitive tensors at higher
 * precision (Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M). Metadata is copied; general.file_type is set.
 * The output is written atomically. verbose prints one line per tensor to stderr. */
int tandem_model_quantize(const char *in, const char *out, const char *type, int n_threads,
                          bool verbose, char *errbuf, size_t errlen);
/* The accepted `type` names, for messages. */
const char *tandem_quantize_types(void);

#ifdef __cplusplus
}
#endif
#endif
