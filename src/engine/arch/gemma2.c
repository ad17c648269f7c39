/* gemma2: scaled embeddings, pre- and post-norms around attention and FFN, GELU-gated FFN,
 * attention and final logit soft-capping, sliding-window attention on even layers. */
#include <math.h>

#include "engine/ops.h"

static int gemma2_load(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    int rc;
    hp->rope_type = ROPE_NEOX;
    uint32_t window = 0;
    if ((rc = model__get_u32(m, "attention.sliding_window", true, &window, err, errlen)) ||
        (rc = model__get_f32(m, "attn_logit_softcapping", false, &hp->attn_softcap, err, errlen)) ||
        (rc = model__get_f32(m, "final_logit_softcapping", false, &hp->final_softcap, err, errlen)))
        return rc;
    hp->sliding_window = (int)window;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    if ((rc = model__bind_io(m, false, err, errlen)))
        return rc;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        MODEL_W(&l->attn_norm, true, il, "blk.%d.attn_norm.weight", 1, E);
        MODEL_W(&l->wq, true, il, "blk.%d.attn_q.weight", 2, E, q_dim);
        MODEL_W(&l->wk, true, il, "blk.%d.attn_k.weight", 2, E, kv_dim);
        MODEL_W(&l->wv, true, il, "blk.%d.attn_v.weight", 2, E, kv_dim);
        MODEL_W(&l->wo, true, il, "blk.%d.attn_output.weight", 2, q_dim, E);
        MODEL_W(&l->post_attn_norm, true, il, "blk.%d.post_attention_norm.weight", 1, E);
        MODEL_W(&l->ffn_norm, true, il, "blk.%d.ffn_norm.weight", 1, E);
        MODEL_W(&l->ffn_gate, true, il, "blk.%d.ffn_gate.weight", 2, E, F);
        MODEL_W(&l->ffn_up, true, il, "blk.%d.ffn_up.weight", 2, E, F);
        MODEL_W(&l->ffn_down, true, il, "blk.%d.ffn_down.weight", 2, F, E);
        MODEL_W(&l->post_ffn_norm, true, il, "blk.%d.post_ffw_norm.weight", 1, E);
    }
    return 0;
}

static void gemma2_forward(struct tandem_ctx *c)
{
    const struct tandem_model *m = c->model;
    const struct hparams *hp = &m->hp;
    struct scratch *s = &c->s;
    const int T = c->batch.n, E = hp->n_embd, F = hp->n_ff;
    const int64_t n = (int64_t)T * E;
    op_embed(c, &m->tok_embd, c->batch.tokens, T, s->x);
    const float emb_scale = sqrtf((float)E);
    for (int64_t i = 0; i < n; i++)
        s->x[i] *= emb_scale;
    op_rope_prepare(c, T);
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer *l = &m->layers[il];
        op_rmsnorm(s->xb, s->x, &l->attn_norm, T, E, hp->norm_eps);
        const struct weight *qkv[3] = {&l->wq, &l->wk, &l->wv};
        float *outs[3] = {s->q, s->k, s->v};
        op_matmul_n(c, 3, qkv, s->xb, T, outs);
        op_rope(c, s->q, T, hp->n_head);
        op_rope(c, s->k, T, hp->n_head_kv);
        /* The query is scaled before attention (not the scores after it), as the reference
         * engine does: the scaled query is what gets rounded to f16. */
        const float q_scale = 1.0f / sqrtf((float)hp->head_dim);
        for (int64_t i = 0; i < (int64_t)T * hp->n_head * hp->head_dim; i++)
            s->q[i] *= q_scale;
        op_attention(c, il, T, 1.0f, hp->attn_softcap,
                     il % 2 == 0 ? hp->sliding_window : 0);
        op_matmul(c, &l->wo, s->xb2, T, s->xb);
        op_rmsnorm(s->xb, s->xb, &l->post_attn_norm, T, E, hp->norm_eps);
        op_add(s->x, s->xb, n);
        op_rmsnorm(s->xb, s->x, &l->ffn_norm, T, E, hp->norm_eps);
        const struct weight *gu[2] = {&l->ffn_gate, &l->ffn_up};
        float *gu_out[2] = {s->hb, s->hb2};
        op_matmul_n(c, 2, gu, s->xb, T, gu_out);
        op_gelu(s->hb, (int64_t)T * F);
        for (int64_t i = 0; i < (int64_t)T * F; i++)
            s->hb[i] *= s->hb2[i];
        op_matmul(c, &l->ffn_down, s->hb, T, s->xb2);
        op_rmsnorm(s->xb2, s->xb2, &l->post_ffn_norm, T, E, hp->norm_eps);
        op_add(s->x, s->xb2, n);
    }
    op_output(c, T, false);
    if (hp->final_softcap > 0) {
        const float cap = hp->final_softcap, inv = 1.0f / cap;
        const int64_t nl = (int64_t)c->n_logits * hp->n_vocab;
        for (int64_t i = 0; i < nl; i++)
            c->s.logits[i] = tanhf(c->s.logits[i] * inv) * cap;
    }
}

const struct arch_ops arch_gemma2 = {.name = "gemma2", .load = gemma2_load, .forward = gemma2_forward};
