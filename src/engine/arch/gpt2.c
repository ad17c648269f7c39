/* gpt2: learned position embeddings, LayerNorm, fused QKV, biases everywhere, GELU, no rotary. */
#include <math.h>
#include <stdio.h>

#include "engine/ops.h"

static int gpt2_load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    int rc;
    if ((rc = model__get_f32(m, "attention.layer_norm_epsilon", true, &hp->norm_eps, err, errlen)))
        return rc;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, qkv = E + 2 * kv_dim;
    if ((rc = model__bind_io(m, true, err, errlen)))
        return rc;
    MODEL_W(&m->pos_embd, true, 0, "position_embd.weight", 2, E, -1);
    hp->n_pos_max = (int)m->pos_embd.ne[1];
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->attn_norm_b, true, il, "blk.%d.attn_norm.bias", 1, E);
        MODEL_W(&l->wqkv, true, il, "blk.%d.attn_qkv.weight", 2, E, qkv);
        MODEL_W(&l->bqkv, true, il, "blk.%d.attn_qkv.bias", 1, qkv);
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, E, E);
        MODEL_W(&l->bo, true, il, "blk.%d.attn_output.bias", 1, E);
        MODEL_W(&l->ffn_norm, true, il, "blk.%d.ffn_norm.weight", 1, E);
        MODEL_W(&l->ffn_norm_b, true, il, "blk.%d.ffn_norm.bias", 1, E);
        MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, F);
        MODEL_W(&l->ffn_up_b, true, il, "blk.%d.ffn_up.bias", 1, F);
        MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
        MODEL_W(&l->ffn_down_b, true, il, "blk.%d.ffn_down.bias", 1, E);
    }
    return 0;
}

static void gpt2_forward(struct tandem_ctx *c)
{
    const struct tandem_model *m = c->model;
    const struct hparams *hp = &m->hp;
    struct scratch *s = &c->s;
    const int T = c->batch.n, E = hp->n_embd;
    const int kv_dim = hp->n_head_kv * hp->head_dim;
    const int64_t n = (int64_t)T * E;
    op_embed(c, &m->tok_embd, c->batch.tokens, T, s->x);
    /* Positions are < n_ctx <= n_pos_max: tandem_ctx_new caps the context to it. */
    const struct qtype_traits *pt = quant_traits(m->pos_embd.type);
    for (int t = 0; t < T; t++) {
        pt->to_float((const char *)m->pos_embd.data + (size_t)c->batch.pos[t] * m->pos_embd.nb1,
                     s->xb, E);
        op_add(s->x + (int64_t)t * E, s->xb, E);
    }
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *l = &m->layers[il];
        op_layernorm(s->xb, s->x, &l->attn_norm, &l->attn_norm_b, T, E, hp->norm_eps);
        /* The fused QKV matrix as three row ranges, straight into q, k and v. */
        struct weight wq = op_rows_view(&l->wqkv, 0, E), wk = op_rows_view(&l->wqkv, E, kv_dim),
                      wv = op_rows_view(&l->wqkv, E + kv_dim, kv_dim);
        struct weight bq = op_rows_view(&l->bqkv, 0, E), bk = op_rows_view(&l->bqkv, E, kv_dim),
                      bv = op_rows_view(&l->bqkv, E + kv_dim, kv_dim);
        const struct weight *ws[3] = {&wq, &wk, &wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, ws, s->xb, T, outs);
        op_add_bias(s->q, &bq, T, E);
        op_add_bias(s->k, &bk, T, kv_dim);
        op_add_bias(s->v, &bv, T, kv_dim);
        op_attention(c, il, T, 1.0f / sqrtf((float)hp->head_dim), 0.0f, 0);
        op_matmul(c, &l->wo, s->xb2, T, s->xb);
        op_add_bias(s->xb, &l->bo, T, E);
        op_add(s->x, s->xb, n);
        op_layernorm(s->xb, s->x, &l->ffn_norm, &l->ffn_norm_b, T, E, hp->norm_eps);
        op_matmul(c, &l->ffn_up, s->xb, T, s->hb);
        op_add_bias(s->hb, &l->ffn_up_b, T, hp->n_ff);
        op_gelu(s->hb, (int64_t)T * hp->n_ff);
        op_matmul(c, &l->ffn_down, s->hb, T, s->xb2);
        op_add_bias(s->xb2, &l->ffn_down_b, T, E);
        op_add(s->x, s->xb2, n);
    }
    op_output(c, T, true);
}

const struct arch_ops arch_gpt2 = {.name = "gpt2", .load = gpt2_load, .forward = gpt2_forward};
