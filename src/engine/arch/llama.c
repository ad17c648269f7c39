/* llama (and Mistral, and Mixtral-style experts): RMSNorm, RoPE, GQA attention, SwiGLU/MoE.
 * Optional q/k/v biases make the same pass serve qwen2 (arch/qwen2.c). */
#include <math.h>
#include <stdio.h>

#include "engine/ops.h"

int llama__load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    uint32_t v = 0;
    int rc;
    if ((rc = model__get_u32(m, "expert_count", false, &v, err, errlen)))
        return rc;
    hp->n_expert = (int)v;
    v = 0;
    if ((rc = model__get_u32(m, "expert_used_count", false, &v, err, errlen)))
        return rc;
    hp->n_expert_used = (int)v;
    if (hp->n_expert > MAX_EXPERTS || (hp->n_expert > 0 && (hp->n_expert_used < 1 ||
                                                            hp->n_expert_used > hp->n_expert))) {
        if (err)
            snprintf(err, errlen, "%s: expert_count %d / expert_used_count %d are not usable",
                     gguf_path(m->gguf), hp->n_expert, hp->n_expert_used);
        return TANDEM_E_FORMAT;
    }
    hp->rope_type = ROPE_NORMAL;
    const int64_t E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim;
    const int64_t q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd, X = hp->n_expert;
    if ((rc = model__bind_io(m, false, err, errlen)))
        return rc;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->wq, true, il, "blk.%d.attn_q.weight", 2, E, q_dim);
        MODEL_W(&l->wk, true, il, "blk.%d.attn_k.weight", 2, E, kv_dim);
        MODEL_W(&l->wv, true, il, "blk.%d.attn_v.weight", 2, E, kv_dim);
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, q_dim, E);
        MODEL_W(&l->ffn_norm, true, il, "blk.%d.ffn_norm.weight", 1, E);
        if (X) {
            MODEL_W(&l->ffn_gate_inp, true, il, "blk.%d.ffn_gate_inp.weight", 2, E, X);
            MODEL_W(&l->ffn_gate_exps, true, il, "blk.%d.ffn_gate_exps.weight", 3, E, F, X);
            MODEL_W(&l->ffn_up_exps, true, il, "blk.%d.ffn_up_exps.weight", 3, E, F, X);
            MODEL_W(&l->ffn_down_exps, true, il, "blk.%d.ffn_down_exps.weight", 3, F, E, X);
        } else {
            MODEL_W(&l->ffn_gate, true, il, "blk.%d.ffn_gate.weight", 2, E, F);
            MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, F);
            MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
        }
    }
    return 0;
}

void llama__forward(struct tandem_ctx *c)
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
        op_rmsnorm(s->xb, s->x, &l->attn_norm, T, hp->n_embd, hp->norm_eps);
        const struct weight *qkv[3] = {&l->wq, &l->wk, &l->wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, qkv, s->xb, T, outs);
        if (l->bq.data) {
            op_add_bias(s->q, &l->bq, T, hp->n_head * hp->head_dim);
            op_add_bias(s->k, &l->bk, T, hp->n_head_kv * hp->head_dim);
            op_add_bias(s->v, &l->bv, T, hp->n_head_kv * hp->head_dim);
        }
        op_rope(c, s->q, T, hp->n_head);
        op_rope(c, s->k, T, hp->n_head_kv);
        op_attention(c, il, T, 1.0f / sqrtf((float)hp->head_dim), 0.0f, 0);
        op_matmul(c, &l->wo, s->xb2, T, s->xb);
        op_add(s->x, s->xb, n);
        op_rmsnorm(s->xb, s->x, &l->ffn_norm, T, hp->n_embd, hp->norm_eps);
        if (hp->n_expert)
            op_moe_ffn(c, l, T);
        else
            op_swiglu_ffn(c, l, T);
    }
    op_output(c, T, false);
}

const struct arch_ops arch_llama = {.name = "llama", .load = llama__load, .forward = llama__forward};
