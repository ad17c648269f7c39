/* stablelm: LayerNorm with bias, partial NEOX rotary, optional q/k/v biases and per-head q/k
 * norms, SwiGLU FFN. */
#include <math.h>
#include <stdio.h>

#include "engine/ops.h"

static int stablelm_load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    int rc;
    if ((rc = model__get_f32(m, "attention.layer_norm_epsilon", true, &hp->norm_eps, err, errlen)))
        return rc;
    hp->rope_type = ROPE_NEOX;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    if ((rc = model__bind_io(m, true, err, errlen)))
        return rc;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->attn_norm_b, true, il, "blk.%d.attn_norm.bias", 1, E);
        MODEL_W(&l->wq, true, il, "blk.%d.attn_q.weight", 2, E, q_dim);
        MODEL_W(&l->wk, true, il, "blk.%d.attn_k.weight", 2, E, kv_dim);
        MODEL_W(&l->wv, true, il, "blk.%d.attn_v.weight", 2, E, kv_dim);
        MODEL_W(&l->bq, false, il, "blk.%d.attn_q.bias", 1, q_dim);
        MODEL_W(&l->bk, false, il, "blk.%d.attn_k.bias", 1, kv_dim);
        MODEL_W(&l->bv, false, il, "blk.%d.attn_v.bias", 1, kv_dim);
        MODEL_W(&l->q_norm, false, il, "blk.%d.attn_q_norm.weight", 2, hp->head_dim, hp->n_head);
        MODEL_W(&l->k_norm, false, il, "blk.%d.attn_k_norm.weight", 2, hp->head_dim, hp->n_head_kv);
        if ((l->q_norm.data && l->q_norm.type != QTYPE_F32) ||
            (l->k_norm.data && l->k_norm.type != QTYPE_F32)) {
            if (err)
                snprintf(err, errlen, "%s: blk.%d q/k norm weights must be F32", gguf_path(m->gguf), il);
            return TANDEM_E_FORMAT;
        }
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, q_dim, E);
        MODEL_W(&l->ffn_norm, true, il, "blk.%d.ffn_norm.weight", 1, E);
        MODEL_W(&l->ffn_norm_b, true, il, "blk.%d.ffn_norm.bias", 1, E);
        MODEL_W(&l->ffn_gate, true, il, "blk.%d.ffn_gate.weight", 2, E, F);
        MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, F);
        MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
    }
    return 0;
}

static void stablelm_forward(struct tandem_ctx *c)
{
    const struct tandem_model *m = c->model;
    const struct hparams *hp = &m->hp;
    struct scratch *s = &c->s;
    const int T = c->batch.n;
    const int64_t n = (int64_t)T * hp->n_embd;
    op_embed(c, &m->tok_embd, c->batch.tokens, T, s->x);
    op_rope_prepare(c, T);
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *l = &m->layers[il];
        op_layernorm(s->xb, s->x, &l->attn_norm, &l->attn_norm_b, T, hp->n_embd, hp->norm_eps);
        const struct weight *qkv[3] = {&l->wq, &l->wk, &l->wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, qkv, s->xb, T, outs);
        if (l->bq.data)
            op_add_bias(s->q, &l->bq, T, hp->n_head * hp->head_dim);
        if (l->bk.data)
            op_add_bias(s->k, &l->bk, T, hp->n_head_kv * hp->head_dim);
        if (l->bv.data)
            op_add_bias(s->v, &l->bv, T, hp->n_head_kv * hp->head_dim);
        /* StableLM 2 (12B): LayerNorm over each head of q and k before the rotation. */
        if (l->q_norm.data)
            op_head_norm(s->q, &l->q_norm, T, hp->n_head, hp->head_dim, hp->norm_eps);
        if (l->k_norm.data)
            op_head_norm(s->k, &l->k_norm, T, hp->n_head_kv, hp->head_dim, hp->norm_eps);
        op_rope(c, s->q, T, hp->n_head);
        op_rope(c, s->k, T, hp->n_head_kv);
        op_attention(c, il, T, 1.0f / sqrtf((float)hp->head_dim), 0.0f, 0);
        op_matmul(c, &l->wo, s->xb2, T, s->xb);
        op_add(s->x, s->xb, n);
        op_layernorm(s->xb, s->x, &l->ffn_norm, &l->ffn_norm_b, T, hp->n_embd, hp->norm_eps);
        op_swiglu_ffn(c, l, T);
    }
    op_output(c, T, true);
}

const struct arch_ops arch_stablelm = {.name = "stablelm", .load = stablelm_load,
                                       .forward = stablelm_forward};
