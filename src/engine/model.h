/* Internal engine structures: weights as views into the mapping, hyperparameters, contexts. */
#ifndef TANDEM_ENGINE_MODEL_H
#define TANDEM_ENGINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "tandem.h"

/* A weight tensor: a view into the mmapped file. data == NULL means absent (optional). */
struct weight {
    enum qtype type;
    int64_t ne[4];      /* ne[0] = row length (fastest varying) */
    size_t nb1;         /* bytes per row */
    const void *data;
};

enum rope_type { ROPE_NORMAL = 0, ROPE_NEOX = 1 };

struct hparams {
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int head_dim;        /* per-head size of q and k (and v) */
    int n_rot;           /* rotary dimensions per head (<= head_dim) */
    float norm_eps;
    float rope_freq_base;
    float rope_freq_scale;  /* 1 / linear scaling factor */
    enum rope_type rope_type;
    int n_expert;
    int n_expert_used;
    int sliding_window;  /* attention to the last N positions only (0 = all) */
    float attn_softcap;  /* cap * tanh(score / cap) on attention scores (0 = off) */
    float final_softcap; /* the same on the output logits (0 = off) */
    int n_pos_max;       /* learned position embeddings: most positions a context may hold (0 = any) */
    int rope_orig_ctx;       /* LongRoPE: the pre-extension context (long factors beyond it) */
    float rope_attn_factor;  /* LongRoPE: cos/sin scale from the file (0: derived) */
};

#define MAX_LAYERS 512
#define MAX_EXPERTS 256

struct layer {
    struct weight attn_norm, attn_norm_b;
    struct weight wq, wk, wv, wo, wqkv;   /* wq [n_embd, n_head*hd], wk/wv [n_embd, n_kv*hd] */
    struct weight bq, bk, bv, bo, bqkv;   /* wqkv [n_embd, n_embd + 2*n_kv*hd] */
    struct weight post_attn_norm, post_ffn_norm;   /* gemma2: norms after attention/FFN */
    struct weight q_norm, k_norm;         /* per-head LayerNorm weights [hd, n_head(_kv)] */
    struct weight ffn_norm, ffn_norm_b;
    struct weight ffn_gate, ffn_up, ffn_down;              /* dense FFN */
    struct weight ffn_gate_b, ffn_up_b, ffn_down_b;
    struct weight ffn_gate_inp;                            /* router [n_embd, n_expert] */
    struct weight ffn_gate_exps, ffn_up_exps, ffn_down_exps;  /* [.., .., n_expert] */
};

struct tandem_ctx;

/* An architecture: reads its hyperparameters and binds its tensors, then runs the forward pass.
 * All slots required. */
struct arch_ops {
    const char *name;  /* general.architecture value */
    int (*load)(struct tandem_model *m, char *err, size_t errlen);
    /* Evaluate c->batch.n tokens at positions n_past.. ; write logits of the rows flagged in
     * c->batch (see struct batch). */
    void (*forward)(struct tandem_ctx *c);
};

struct tandem_model {
    struct gguf *gguf;
    const struct arch_ops *arch;
    struct hparams hp;
    struct weight tok_embd;     /* [n_embd, n_vocab] */
    struct weight pos_embd;     /* [n_embd, n_pos_max], learned positions (gpt2) */
    struct weight output_norm, output_norm_b;
    struct weight output;       /* [n_embd, n_vocab]; = tok_embd when tied */
    struct weight rope_long, rope_short;  /* [n_rot/2] LongRoPE frequency divisors (phi3) */
    struct layer *layers;       /* n_layer */
    struct tokenizer *tok;      /* NULL when the metadata has none usable; see tok_err */
    char tok_err[256];
    uint64_t n_params;
    uint64_t n_bytes;
    char desc[128];
};

/* ---- model loading helpers for arch files (model.c) ---- */
/* Read "<arch>.<suffix>" as u32/f32. Missing + required -> TANDEM_E_MISSING with the key named. */
int model__get_u32(struct tandem_model *m, const char *suffix, bool required, uint32_t *out,
                   char *err, size_t errlen);
int model__get_f32(struct tandem_model *m, const char *suffix, bool required, float *out,
                   char *err, size_t errlen);
/* Bind tensor `name` (printf-style with one optional %d for the layer) checking its shape:
 * ne[i] must equal want[i] for i < n_dims (want[i] < 0: any). Missing + required -> error. */
int model__weight(struct tandem_model *m, struct weight *w, bool required, int layer,
                  const char *name, int n_dims, const int64_t *want, char *err, size_t errlen);
/* Bind a tensor inside an arch `load` function (which has `m`, `rc`, `err`, `errlen` in scope)
 * and return its error: MODEL_W(&l->wq, true, il, "blk.%d.attn_q.weight", 2, E, q_dim). */
#define MODEL_W(w, req, il, name, nd, ...)                                                  \
    do {                                                                                  \
        const int64_t want_[] = {__VA_ARGS__};                                            \
        if ((rc = model__weight(m, w, req, il, name, nd, want_, err, errlen)))            \
            return rc;                                                                    \
    } while (0)
/* token_embd (sets n_vocab), output_norm (+ .bias when norm_bias) and output (tied to
 * token_embd when absent): the tensors every architecture has. */
int model__bind_io(struct tandem_model *m, bool norm_bias, char *err, size_t errlen);
/* The common llama-style hyperparameters (embedding, layers, heads, ff, ctx, rope). */
int model__load_common_hparams(struct tandem_model *m, char *err, size_t errlen);
/* Rotary scaling of a context of n_ctx positions: LongRoPE factors (NULL when the model has
 * none) and the cos/sin multiplier (1 when none). */
void model__rope_scaling(const struct tandem_model *m, int n_ctx, const float **factors,
                         float *mscale);

/* ---- contexts ---- */
struct batch {
    int n;              /* tokens in this decode */
    const int32_t *tokens;  /* [n] */
    const int32_t *pos;     /* [n] position of each token in its sequence */
    const int32_t *seq;     /* [n] sequence of each token */
    int n_out;              /* rows whose logits are kept ... */
    const int32_t *out;     /* [n_out] ... in this order (ascending) */
    bool embd;              /* keep final-norm hidden states (s.embd) instead of logits */
};

/* Scratch memory sized once at context creation for n_batch tokens. */
struct scratch {
    float *x;      /* [n_batch, n_embd] residual stream */
    float *xb;     /* [n_batch, n_embd] normed input */
    float *xb2;    /* [n_batch, max(n_embd, n_head*hd)] attention output */
    float *q;      /* [n_batch, n_head*hd] */
    float *k;      /* [n_batch, n_kv*hd] */
    float *v;      /* [n_batch, n_kv*hd] */
    float *hb;     /* [n_batch, n_ff] */
    float *hb2;    /* [n_batch, n_ff] */
    float *moe_out;   /* [n_batch, n_embd] */
    float *moe_in;    /* [n_batch, n_embd] gathered rows routed to one expert */
    float *router;    /* [n_batch, n_expert] */
    int32_t *moe_sel; /* [n_batch, n_expert_used] */
    float *moe_w;     /* [n_batch, n_expert_used] */
    int32_t *moe_rows;/* [n_batch] */
    float *rope_cs;   /* [n_batch, n_rot] cos/sin pairs */
    float *att;       /* [n_threads, n_ctx] attention scores */
    uint16_t *qh;     /* [n_threads, head_dim] query in f16 */
    uint16_t *ph;     /* [n_threads, n_ctx] attention probabilities in f16 */
    void *act;        /* quantized activations: n_batch rows of the widest row size */
    size_t act_size;
    float *logits;    /* [n_batch, n_vocab] rows of batch.out */
    int32_t *pos;     /* [n_batch] */
    int32_t *seq;     /* [n_batch] */
    int32_t *out;     /* [n_batch] */
    int32_t *tok;     /* [n_batch] tokens of a multi-span batch, gathered */
};

struct tandem_ctx {
    struct tandem_model *model;
    struct pool *pool;
    int n_ctx;
    int n_batch;
    int n_threads;
    int n_seq;
    int *seq_past;       /* [n_seq] positions held per sequence */
    uint16_t *k_cache;   /* [n_seq, n_layer, n_ctx, n_kv*hd] f16 */
    uint16_t *v_cache;   /* [n_seq, n_layer, n_kv*hd, n_ctx] f16, transposed: one row per dimension */
    const float *rope_factors;  /* [n_rot/2] per-dimension frequency divisors (LongRoPE) or NULL */
    float rope_mscale;          /* multiplies cos/sin (LongRoPE attention factor); 1 = off */
    struct scratch s;
    struct batch batch;
    size_t kv_bytes;
    size_t scratch_bytes;
    int n_logits;        /* rows of logits of the last decode */
    int logits_first;    /* batch index of logits row 0 (tandem_decode) */
    int n_spans;         /* spans of the last tandem_decode_spans ... */
    int *span_row;       /* [n_seq] ... and each one's logits row (-1: none) */
};
/* Offset of (seq, layer) in the K cache (and V cache) in elements. */
static inline size_t ctx__kv_off(const struct tandem_ctx *c, int seq, int il)
{
    const size_t kv_dim = (size_t)c->model->hp.n_head_kv * c->model->hp.head_dim;
    return ((size_t)seq * c->model->hp.n_layer + (size_t)il) * (size_t)c->n_ctx * kv_dim;
}

/* The llama pass, shared by architectures that differ from it only in details (arch/llama.c). */
int llama__load(struct tandem_model *m, char *err, size_t errlen);
void llama__forward(struct tandem_ctx *c);

/* The architectures compiled in (the files in arch/), NULL-terminated; used by the loader and to list
 * supported names in errors. */
extern const struct arch_ops *const engine_archs[];

#endif
