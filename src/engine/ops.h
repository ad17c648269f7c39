/* Building blocks of forward passes, shared by every architecture file in arch/. */
#ifndef TANDEM_ENGINE_OPS_H
#define TANDEM_ENGINE_OPS_H

#include "engine/model.h"

#define OPS_MAX_MATMULS 4

/* ys[i][T, M_i] = x[T, K] · ws[i]^T for up to OPS_MAX_MATMULS weights sharing the input x:
 * x is quantized once per distinct activation type, and all products run as one parallel
 * job. Each ws[i] is [K, M_i] (ne[0] = K). */
void op_matmul_n(struct tandem_ctx *c, int n, const struct weight *const *ws, const float *x,
                 int T, float *const *ys);
static inline void op_matmul(struct tandem_ctx *c, const struct weight *w, const float *x, int T,
                             float *y)
{
    op_matmul_n(c, 1, &w, x, T, &y);
}
/* Rows [first, first + n) of a 2-D weight (or elements of a 1-D F32 bias) as a weight of its
 * own: fused QKV matrices split without copying. */
struct weight op_rows_view(const struct weight *w, int64_t first, int64_t n);
/* View of expert e of a 3-D expert tensor [K, M, n_expert] as a 2-D weight [K, M]. */
struct weight op_expert_view(const struct weight *w, int e);

/* out[T, n] = rmsnorm(x) * w (w: F32 [n]); out may alias x. */
void op_rmsnorm(float *out, const float *x, const struct weight *w, int T, int n, float eps);
/* out[T, n] = layernorm(x) * w + b (b may be absent); out may alias x. */
void op_layernorm(float *out, const float *x, const struct weight *w, const struct weight *b,
                  int T, int n, float eps);
/* Per-head LayerNorm without bias: each head's hd values of x[T, n_heads*hd] are normalized
 * and multiplied by that head's row of w (F32 [hd, n_heads]). */
void op_head_norm(float *x, const struct weight *w, int T, int n_heads, int hd, float eps);
/* x[T, n] += b[n] (F32 bias) */
void op_add_bias(float *x, const struct weight *b, int T, int n);

/* Token embeddings: x[T, n_embd] = rows of tok_embd (any type, dequantized). */
int op_embed(struct tandem_ctx *c, const struct weight *tok_embd, const int32_t *tokens, int T,
             float *x);

/* Fill c->s.rope_cs for the positions of the batch's T tokens (c->batch.pos). */
void op_rope_prepare(struct tandem_ctx *c, int T);
/* Rotate the first n_rot dims of each of n_heads heads (size head_dim) in x[T, n_heads*hd]. */
void op_rope(struct tandem_ctx *c, float *x, int T, int n_heads);

/* Causal attention of layer il: stores c->s.k / c->s.v (rotated) into the KV cache at the
 * batch's positions, then writes c->s.xb2[T, n_head*hd] from c->s.q. `scale` multiplies
 * q·k; softcap > 0 applies cap*tanh(s/cap); window > 0 limits each query to the last
 * `window` positions. */
void op_attention(struct tandem_ctx *c, int il, int T, float scale, float softcap, int window);

/* gate[T, n] = silu(gate) * up */
void op_swiglu(float *gate, const float *up, int T, int n);
/* x[i] = gelu(x[i]) (tanh approximation) */
void op_gelu(float *x, int64_t n);
/* y[i] += x[i] */
void op_add(float *y, const float *x, int64_t n);

/* Mixtral-style sparse FFN: router softmax, top-k experts, renormalized weights, SwiGLU
 * experts; reads c->s.xb[T, n_embd], adds the result into c->s.x. */
void op_moe_ffn(struct tandem_ctx *c, const struct layer *l, int T);
/* Dense SwiGLU FFN from c->s.xb into c->s.x (residual add). */
void op_swiglu_ffn(struct tandem_ctx *c, const struct layer *l, int T);

/* Final norm + output matrix for the rows whose logits the batch keeps (c->batch.out), into
 * c->s.logits; with c->batch.embd, the final norm of every row into c->s.xb instead. Moves
 * the kept rows of c->s.x to its front. */
void op_output(struct tandem_ctx *c, int T, bool layernorm);

#endif
