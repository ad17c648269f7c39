/* falcon: fused QKV, multi-query attention, attention and FFN in parallel off one LayerNorm
 * (or two, attn_norm_2, in the 40B layout), GELU, NEOX rotary. */
#include <math.h>
#include <stdio.h>

#include "engine/ops.h"

static int falcon_load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    int rc;
    if ((rc = model__get_f32(m, "attention.layer_norm_epsilon", true, &hp->norm_eps, err, errlen)))
        return rc;
    hp->rope_type = ROPE_NEOX;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, qkv = E + 2 * kv_dim;
    if (F < E) {
        /* The attention output is staged in the second FFN buffer. */
        if (err)
            snprintf(err, errlen, "%s: falcon with feed_forward_length %lld below embedding_length %lld is not supported",
                     gguf_path(m->gguf), (long long)F, (long long)E);
        return TANDEM_E_UNSUPPORTED;
    }
    if ((rc = model__bind_io(m, true, err, errlen)))
        return rc;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->attn_norm_b, true, il, "blk.%d.attn_norm.bias", 1, E);
        /* 40B layout: a second norm feeds the FFN (kept in the ffn_norm slots). */
        MODEL_W(&l->ffn_norm, false, il, "blk.%d.attn_norm_2.weight", 1, E);
        MODEL_W(&l->ffn_norm_b, false, il, "blk.%d.attn_norm_2.bias", 1, E);
        MODEL_W(&l->wqkv, true, il, "blk.%d.attn_qkv.weight", 2, E, qkv);
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, E, E);
        MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, F);
        MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
    }
    return 0;
}

static void falcon_forward(struct tandem_ctx *c)
{
    const struct tandem_model *m = c->model;
    const struct hparams *hp = &m->hp;
    struct scratch *s = &c->s;
    const int T = c->batch.n, E = hp->n_embd;
    const int kv_dim = hp->n_head_kv * hp->head_dim;
    const int64_t n = (int64_t)T * E;
    op_embed(c, &m->tok_embd, c->batch.tokens, T, s->x);
    op_rope_prepare(c, T);
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *l = &m->layers[il];
        op_layernorm(s->xb, s->x, &l->attn_norm, &l->attn_norm_b, T, E, hp->norm_eps);
        struct weight wq = op_rows_view(&l->wqkv, 0, E), wk = op_rows_view(&l->wqkv, E, kv_dim),
                      wv = op_rows_view(&l->wqkv, E + kv_dim, kv_dim);
        const struct weight *ws[3] = {&wq, &wk, &wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, ws, s->xb, T, outs);
        op_rope(c, s->q, T, hp->n_head);
        op_rope(c, s->k, T, hp->n_head_kv);
        op_attention(c, il, T, 1.0f / sqrtf((float)hp->head_dim), 0.0f, 0);
        op_matmul(c, &l->wo, s->xb2, T, s->hb2);       /* attention output, kept for the sum */
        const float *ffn_in = s->xb;
        if (l->ffn_norm.data) {
            op_layernorm(s->xb2, s->x, &l->ffn_norm, &l->ffn_norm_b, T, E, hp->norm_eps);
            ffn_in = s->xb2;
        }
        op_matmul(c, &l->ffn_up, ffn_in, T, s->hb);
        op_gelu(s->hb, (int64_t)T * hp->n_ff);
        op_matmul(c, &l->ffn_down, s->hb, T, s->xb);
        op_add(s->x, s->hb2, n);
        op_add(s->x, s->xb, n);
    }
    op_output(c, T, true);
}

const struct arch_ops arch_falcon = {.name = "falcon", .load = falcon_load, .forward = falcon_forward};
