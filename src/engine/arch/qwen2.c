/* qwen2: the llama pass with q/k/v biases and NEOX-style rotary pairing. */
#include "engine/ops.h"

static int qwen2_load(struct tandem_model *m, char *err, size_t errlen)
{
    int rc = llama__load(m, err, errlen);
    if (rc)
        return rc;
    const struct hparams *hp = &m->hp;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    for (int il = 0; il < hp->n_layer; il++) {
        struct layer *l = &m->layers[il];
        if ((rc = model__weight(m, &l->bq, true, il, "blk.%d.attn_q.bias", 1, &q_dim, err, errlen)) ||
            (rc = model__weight(m, &l->bk, true, il, "blk.%d.attn_k.bias", 1, &kv_dim, err, errlen)) ||
            (rc = model__weight(m, &l->bv, true, il, "blk.%d.attn_v.bias", 1, &kv_dim, err, errlen)))
            return rc;
    }
    m->hp.rope_type = ROPE_NEOX;
    return 0;
}

const struct arch_ops arch_qwen2 = {.name = "qwen2", .load = qwen2_load, .forward = llama__forward};
