/* phi3: RMSNorm, fused QKV and fused gate/up (as row views), NEOX rotary, optional sliding
 * window. */
#include <math.h>
#include <stdio.h>

#include "engine/ops.h"

static int phi3_load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    int rc;
    hp->rope_type = ROPE_NEOX;
    uint32_t window = 0;
    if ((rc = model__get_u32(m, "attention.sliding_window", false, &window, err, errlen)))
        return rc;
    hp->sliding_window = (int)window;
    /* LongRoPE (the 128k-context variants): per-dimension frequency divisors, long ones past
     * the original context, and a cos/sin scale. */
    const int64_t half = hp->n_rot / 2;
    MODEL_W(&m->rope_long, false, -1, "rope_factors_long.weight", 1, half);
    MODEL_W(&m->rope_short, false, -1, "rope_factors_short.weight", 1, half);
    if (m->rope_long.data || m->rope_short.data) {
        uint32_t orig = (uint32_t)hp->n_ctx_train;
        if ((rc = model__get_u32(m, "rope.scaling.original_context_length", false, &orig, err,
                                 errlen)) ||
            (rc = model__get_f32(m, "rope.scaling.attn_factor", false, &hp->rope_attn_factor, err,
                                 errlen)))
            return rc;
        hp->rope_orig_ctx = (int)orig;
    }
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, qkv = E + 2 * kv_dim;
    if ((rc = model__bind_io(m, false, err, errlen)))
        return rc;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->wqkv, true, il, "blk.%d.attn_qkv.weight", 2, E, qkv);
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, E, E);
        MODEL_W(&l->ffn_norm, true, il, "blk.%d.ffn_norm.weight", 1, E);
        MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, 2 * F);   /* [gate; up] */
        MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
    }
    return 0;
}

static void phi3_forward(struct tandem_ctx *c)
{
    const struct tandem_model *m = c->model;
    const struct hparams *hp = &m->hp;
    struct scratch *s = &c->s;
    const int T = c->batch.n, E = hp->n_embd, F = hp->n_ff;
    const int kv_dim = hp->n_head_kv * hp->head_dim;
    const int64_t n = (int64_t)T * E;
    op_embed(c, &m->tok_embd, c->batch.tokens, T, s->x);
    op_rope_prepare(c, T);
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *l = &m->layers[il];
        op_rmsnorm(s->xb, s->x, &l->attn_norm, T, E, hp->norm_eps);
        struct weight wq = op_rows_view(&l->wqkv, 0, E), wk = op_rows_view(&l->wqkv, E, kv_dim),
                      wv = op_rows_view(&l->wqkv, E + kv_dim, kv_dim);
        const struct weight *ws[3] = {&wq, &wk, &wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, ws, s->xb, T, outs);
        op_rope(c, s->q, T, hp->n_head);
        op_rope(c, s->k, T, hp->n_head_kv);
        op_attention(c, il, T, 1.0f / sqrtf((float)hp->head_dim), 0.0f, hp->sliding_window);
        op_matmul(c, &l->wo, s->xb2, T, s->xb);
        op_add(s->x, s->xb, n);
        op_rmsnorm(s->xb, s->x, &l->ffn_norm, T, E, hp->norm_eps);
        struct weight gate = op_rows_view(&l->ffn_up, 0, F), up = op_rows_view(&l->ffn_up, F, F);
        const struct weight *gu[2] = {&gate, &up};
        float *gu_out[2] = {s->hb, s->hb2};
        op_matmul_n(c, 2, gu, s->xb, T, gu_out);
        op_swiglu(s->hb, s->hb2, T, F);
        op_matmul(c, &l->ffn_down, s->hb, T, s->xb2);
        op_add(s->x, s->xb2, n);
    }
    op_output(c, T, false);
}

const struct arch_ops arch_phi3 = {.name = "phi3", .load = phi3_load, .forward = phi3_forward};
