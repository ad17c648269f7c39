/* Forward-pass building blocks: norms, rotary embeddings, attention over the KV cache, FFNs. */
#include "engine/ops.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/fp16.h"
#include "engine/attn_kernels.h"

void op_rmsnorm(float *out, const float *x, const struct weight *w, int T, int n, float eps)
{
    const float *g = w->data;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (int64_t)t * n;
        float *o = out + (int64_t)t * n;
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += (double)xr[i] * xr[i];
        const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
        for (int i = 0; i < n; i++)
            o[i] = xr[i] * scale * g[i];
    }
}

void op_layernorm(float *out, const float *x, const struct weight *w, const struct weight *b,
                  int T, int n, float eps)
{
    const float *g = w->data, *bias = b ? b->data : NULL;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (int64_t)t * n;
        float *o = out + (int64_t)t * n;
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += xr[i];
        const float mean = (float)(sum / n);
        double ss = 0;
        for (int i = 0; i < n; i++) {
            const float d = xr[i] - mean;
            ss += (double)d * d;
        }
        const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
        for (int i = 0; i < n; i++)
            o[i] = (xr[i] - mean) * scale * g[i] + (bias ? bias[i] : 0.0f);
    }
}

void op_head_norm(float *x, const struct weight *w, int T, int n_heads, int hd, float eps)
{
    for (int h = 0; h < n_heads; h++) {
        const struct weight row = op_rows_view(w, h, 1);
        for (int t = 0; t < T; t++) {
            float *v = x + ((int64_t)t * n_heads + h) * hd;
            op_layernorm(v, v, &row, NULL, 1, hd, eps);
        }
    }
}

void op_add_bias(float *x, const struct weight *b, int T, int n)
{
    const float *bias = b->data;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            x[(int64_t)t * n + i] += bias[i];
}

int op_embed(struct tandem_ctx *c, const struct weight *tok_embd, const int32_t *tokens, int T,
             float *x)
{
    const struct qtype_traits *tr = quant_traits(tok_embd->type);
    const int n = (int)tok_embd->ne[0];
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= tok_embd->ne[1])
            return TANDEM_E_ARG;
        tr->to_float((const char *)tok_embd->data + (size_t)tokens[t] * tok_embd->nb1,
                     x + (int64_t)t * n, n);
    }
    (void)c;
    return 0;
}

void op_rope_prepare(struct tandem_ctx *c, int T)
{
    const struct hparams *hp = &c->model->hp;
    const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    const float *ff = c->rope_factors, ms = c->rope_mscale;
    for (int t = 0; t < T; t++) {
        float *cs = c->s.rope_cs + (int64_t)t * hp->n_rot;
        float theta = (float)c->batch.pos[t] * hp->rope_freq_scale;
        for (int i = 0; i < hp->n_rot; i += 2) {
            const float th = ff ? theta / ff[i / 2] : theta;
            cs[i] = cosf(th) * ms;
            cs[i + 1] = sinf(th) * ms;
            theta *= theta_scale;
        }
    }
}

void op_rope(struct tandem_ctx *c, float *x, int T, int n_heads)
{
    const struct hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_rot = hp->n_rot, half = n_rot / 2;
    for (int t = 0; t < T; t++) {
        const float *cs = c->s.rope_cs + (int64_t)t * n_rot;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((int64_t)t * n_heads + h) * hd;
            if (hp->rope_type == ROPE_NEOX) {
                for (int i = 0; i < half; i++) {
                    const float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
                    v[i + half] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
                }
            } else {
                for (int i = 0; i < n_rot; i += 2) {
                    const float x0 = v[i], x1 = v[i + 1];
                    v[i] = x0 * cs[i] - x1 * cs[i + 1];
                    v[i + 1] = x0 * cs[i + 1] + x1 * cs[i];
                }
            }
        }
    }
}

struct attn_job {
    struct tandem_ctx *c;
    int il, T;
    float scale, softcap;
    int window;
    quant_vec_dot_fn dot_f16;
    attn_qk_fn qk;
    quant_from_float_fn to_f16;
};

static void attn_heads(void *arg, int ith, int nth)
{
    const struct attn_job *j = arg;
    struct tandem_ctx *c = j->c;
    const struct hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_head = hp->n_head, group = hp->n_head / hp->n_head_kv;
    const int kv_dim = hp->n_head_kv * hd;
    float *att = c->s.att + (size_t)ith * c->n_ctx;
    uint16_t *qh = c->s.qh + (size_t)ith * hd;
    uint16_t *ph = c->s.ph + (size_t)ith * c->n_ctx;
    (void)nth;
    int task;
    while ((task = pool_next(c->pool, j->T * n_head)) >= 0) {
        const int t = task / n_head, h = task % n_head, kvh = h / group;
        const int qpos = c->batch.pos[t];
        const size_t layer_off = ctx__kv_off(c, c->batch.seq[t], j->il);
        const int lo = j->window > 0 && qpos - j->window + 1 > 0 ? qpos - j->window + 1 : 0;
        const float *q = c->s.q + ((int64_t)t * n_head + h) * hd;
        /* The query is rounded to f16 to meet the f16 cache in an f16 dot product. */
        j->to_f16(q, qh, hd);
        const uint16_t *kb = c->k_cache + layer_off + (size_t)kvh * hd;
        float mx = -INFINITY;
        const float cap_inv = j->softcap > 0 ? 1.0f / j->softcap : 0.0f;
        j->qk(hd, qpos - lo + 1, kb + (size_t)lo * kv_dim, kv_dim, qh, att + lo);
        for (int p = lo; p <= qpos; p++) {
            float sc = att[p] * j->scale;
            if (j->softcap > 0)
                sc = tanhf(sc * cap_inv) * j->softcap;
            att[p] = sc;
            if (sc > mx)
                mx = sc;
        }
        double sum = 0;
        for (int p = lo; p <= qpos; p++) {
            att[p] = expf(att[p] - mx);
            sum += att[p];
        }
        /* Probabilities in f16 meet the transposed f16 V cache in one dot product per
         * output dimension. */
        const float inv = (float)(1.0 / sum);
        for (int p = lo; p <= qpos; p++)
            att[p] *= inv;
        j->to_f16(att + lo, ph + lo, qpos - lo + 1);
        float *out = c->s.xb2 + ((int64_t)t * n_head + h) * hd;
        const uint16_t *vt = c->v_cache + layer_off + (size_t)kvh * hd * c->n_ctx;
        for (int d = 0; d < hd; d++)
            j->dot_f16(qpos - lo + 1, &out[d], vt + (size_t)d * c->n_ctx + lo, ph + lo);
    }
}

void op_attention(struct tandem_ctx *c, int il, int T, float scale, float softcap, int window)
{
    const struct hparams *hp = &c->model->hp;
    const int kv_dim = hp->n_head_kv * hp->head_dim;
    for (int t = 0; t < T; t++) {
        const size_t layer_off = ctx__kv_off(c, c->batch.seq[t], il);
        uint16_t *kd = c->k_cache + layer_off + (size_t)c->batch.pos[t] * kv_dim;
        uint16_t *vd = c->v_cache + layer_off + (size_t)c->batch.pos[t];
        const float *ks = c->s.k + (int64_t)t * kv_dim, *vs = c->s.v + (int64_t)t * kv_dim;
        for (int i = 0; i < kv_dim; i++) {
            kd[i] = fp16_from_fp32(ks[i]);
            vd[(size_t)i * c->n_ctx] = fp16_from_fp32(vs[i]);
        }
    }
    struct attn_job job = {.c = c, .il = il, .T = T, .scale = scale, .softcap = softcap,
                           .window = window,
                           .dot_f16 = quant_vec_dot_at(QTYPE_F16, quant_level_best()),
                           .qk = attn_qk_at(quant_level_best()),
                           .to_f16 = quant_from_float_at(QTYPE_F16, quant_level_best())};
    pool_run(c->pool, attn_heads, &job);
}

void op_swiglu(float *gate, const float *up, int T, int n)
{
    const int64_t total = (int64_t)T * n;
    for (int64_t i = 0; i < total; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* GELU (tanh approximation) through a table over every half-precision input, as the
 * reference engine evaluates it: the input is rounded to f16 and the result is the f16 of
 * gelu at that point. Matching it matters over many layers (gemma2 has 26). */
static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_exact(float v)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * v * (1.0f + tanhf(k * v * (1.0f + 0.044715f * v * v)));
}

static void gelu_table_init(void)
{
    for (uint32_t h = 0; h < (1u << 16); h++)
        gelu_table[h] = fp16_from_fp32(gelu_exact(fp16_to_fp32((uint16_t)h)));
}

void op_gelu(float *x, int64_t n)
{
    pthread_once(&gelu_once, gelu_table_init);
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v <= -10.0f)
            x[i] = 0.0f;
        else if (v < 10.0f)
            x[i] = fp16_to_fp32(gelu_table[fp16_from_fp32(v)]);
    }
}

void op_add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

void op_swiglu_ffn(struct tandem_ctx *c, const struct layer *l, int T)
{
    const struct hparams *hp = &c->model->hp;
    const struct weight *gu[2] = {&l->ffn_gate, &l->ffn_up};
    float *outs[2] = {c->s.hb, c->s.hb2};
    op_matmul_n(c, 2, gu, c->s.xb, T, outs);
    op_swiglu(c->s.hb, c->s.hb2, T, hp->n_ff);
    op_matmul(c, &l->ffn_down, c->s.hb, T, c->s.xb2);
    op_add(c->s.x, c->s.xb2, (int64_t)T * hp->n_embd);
}

void op_moe_ffn(struct tandem_ctx *c, const struct layer *l, int T)
{
    const struct hparams *hp = &c->model->hp;
    const int n_exp = hp->n_expert, k = hp->n_expert_used, n_embd = hp->n_embd;
    struct scratch *s = &c->s;
    op_matmul(c, &l->ffn_gate_inp, s->xb, T, s->router);
    for (int t = 0; t < T; t++) {
        float *r = s->router + (int64_t)t * n_exp;
        float mx = -INFINITY;
        for (int e = 0; e < n_exp; e++)
            mx = r[e] > mx ? r[e] : mx;
        double sum = 0;
        for (int e = 0; e < n_exp; e++) {
            r[e] = expf(r[e] - mx);
            sum += r[e];
        }
        for (int e = 0; e < n_exp; e++)
            r[e] = (float)(r[e] / sum);
        /* top-k by repeated selection (k is small); ties go to the lower expert id. */
        float wsum = 0;
        for (int i = 0; i < k; i++) {
            int best = -1;
            for (int e = 0; e < n_exp; e++) {
                int taken = 0;
                for (int q = 0; q < i; q++)
                    taken |= s->moe_sel[t * k + q] == e;
                if (!taken && (best < 0 || r[e] > r[best]))
                    best = e;
            }
            s->moe_sel[t * k + i] = best;
            s->moe_w[t * k + i] = r[best];
            wsum += r[best];
        }
        for (int i = 0; i < k; i++)
            s->moe_w[t * k + i] /= wsum;
    }
    memset(s->moe_out, 0, sizeof(float) * (size_t)T * n_embd);
    for (int e = 0; e < n_exp; e++) {
        int n_rows = 0;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < k; i++)
                if (s->moe_sel[t * k + i] == e) {
                    s->moe_rows[n_rows] = t * k + i;
                    memcpy(s->moe_in + (int64_t)n_rows * n_embd, s->xb + (int64_t)t * n_embd,
                           sizeof(float) * n_embd);
                    n_rows++;
                }
        if (!n_rows)
            continue;
        const struct weight gate = op_expert_view(&l->ffn_gate_exps, e);
        const struct weight up = op_expert_view(&l->ffn_up_exps, e);
        const struct weight down = op_expert_view(&l->ffn_down_exps, e);
        const struct weight *gu[2] = {&gate, &up};
        float *outs[2] = {s->hb, s->hb2};
        op_matmul_n(c, 2, gu, s->moe_in, n_rows, outs);
        op_swiglu(s->hb, s->hb2, n_rows, hp->n_ff);
        op_matmul(c, &down, s->hb, n_rows, s->xb2);
        for (int r = 0; r < n_rows; r++) {
            const int t = s->moe_rows[r] / k;
            const float w = s->moe_w[s->moe_rows[r]];
            float *o = s->moe_out + (int64_t)t * n_embd;
            const float *y = s->xb2 + (int64_t)r * n_embd;
            for (int i = 0; i < n_embd; i++)
                o[i] += w * y[i];
        }
    }
    op_add(s->x, s->moe_out, (int64_t)T * n_embd);
}

void op_output(struct tandem_ctx *c, int T, bool layernorm)
{
    const struct tandem_model *m = c->model;
    const struct batch *b = &c->batch;
    const int n_embd = m->hp.n_embd;
    const struct weight *nb = m->output_norm_b.data ? &m->output_norm_b : NULL;
    if (b->embd) {
        /* Hidden states for pooling: every row normed, no output matrix. */
        if (layernorm)
            op_layernorm(c->s.xb, c->s.x, &m->output_norm, nb, T, n_embd, m->hp.norm_eps);
        else
            op_rmsnorm(c->s.xb, c->s.x, &m->output_norm, T, n_embd, m->hp.norm_eps);
        c->n_logits = 0;
        return;
    }
    /* The kept rows are ascending: gather them to the front of x (in place is safe). */
    const int rows = b->n_out;
    for (int j = 0; j < rows; j++)
        if (b->out[j] != j)
            memmove(c->s.x + (int64_t)j * n_embd, c->s.x + (int64_t)b->out[j] * n_embd,
                    (size_t)n_embd * sizeof(float));
    if (layernorm)
        op_layernorm(c->s.xb, c->s.x, &m->output_norm, nb, rows, n_embd, m->hp.norm_eps);
    else
        op_rmsnorm(c->s.xb, c->s.x, &m->output_norm, rows, n_embd, m->hp.norm_eps);
    if (rows > 0)
        op_matmul(c, &m->output, c->s.xb, rows, c->s.logits);
    c->n_logits = rows;
}
