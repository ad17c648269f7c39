/* Model loading: open the GGUF, pick the architecture, bind weights as views into the mapping. */
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tokenizer/tokenizer.h"

const char *tandem_strerror(int err)
{
    switch (err) {
    case TANDEM_OK: return "ok";
    case TANDEM_E_IO: return "I/O error";
    case TANDEM_E_FORMAT: return "malformed GGUF file";
    case TANDEM_E_UNSUPPORTED: return "unsupported";
    case TANDEM_E_MISSING: return "missing metadata or tensor";
    case TANDEM_E_SHAPE: return "tensor shape or type mismatch";
    case TANDEM_E_NOMEM: return "out of memory";
    case TANDEM_E_ARG: return "invalid argument";
    case TANDEM_E_CONTEXT_FULL: return "context full";
    default: return "unknown error";
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int arch_key(const struct tandem_model *m, const char *suffix, char *key, size_t n)
{
    int w = snprintf(key, n, "%s.%s", m->arch->name, suffix);
    return w > 0 && (size_t)w < n ? 0 : TANDEM_E_ARG;
}

int model__get_u32(struct tandem_model *m, const char *suffix, bool required, uint32_t *out,
                   char *err, size_t errlen)
{
    char key[256];
    if (arch_key(m, suffix, key, sizeof(key)))
        return TANDEM_E_ARG;
    int rc = gguf_get_u32(m->gguf, key, out);
    if (rc == GGUF_E_NOTFOUND) {
        if (!required)
            return 0;
        set_err(err, errlen, "%s: required metadata key '%s' is missing", gguf_path(m->gguf), key);
        return TANDEM_E_MISSING;
    }
    if (rc) {
        set_err(err, errlen, "%s: metadata key '%s' is not a 32-bit unsigned integer",
                gguf_path(m->gguf), key);
        return TANDEM_E_FORMAT;
    }
    return 0;
}

int model__get_f32(struct tandem_model *m, const char *suffix, bool required, float *out,
                   char *err, size_t errlen)
{
    char key[256];
    if (arch_key(m, suffix, key, sizeof(key)))
        return TANDEM_E_ARG;
    int rc = gguf_get_f32(m->gguf, key, out);
    if (rc == GGUF_E_NOTFOUND) {
        if (!required)
            return 0;
        set_err(err, errlen, "%s: required metadata key '%s' is missing", gguf_path(m->gguf), key);
        return TANDEM_E_MISSING;
    }
    if (rc) {
        set_err(err, errlen, "%s: metadata key '%s' is not a float", gguf_path(m->gguf), key);
        return TANDEM_E_FORMAT;
    }
    return 0;
}

int model__weight(struct tandem_model *m, struct weight *w, bool required, int layer,
                  const char *name, int n_dims, const int64_t *want, char *err, size_t errlen)
{
    char full[GGUF_MAX_NAME + 1];
    int n = snprintf(full, sizeof(full), name, layer);
    if (n < 0 || (size_t)n >= sizeof(full))
        return TANDEM_E_ARG;
    memset(w, 0, sizeof(*w));
    const struct gguf_tensor *t = gguf_find_tensor(m->gguf, full);
    if (!t) {
        if (!required)
            return 0;
        set_err(err, errlen, "%s: required tensor '%s' is missing", gguf_path(m->gguf), full);
        return TANDEM_E_MISSING;
    }
    bool ok = (int)t->n_dims <= n_dims || (n_dims == 2 && t->n_dims == 3 && t->ne[2] == 1);
    for (int i = 0; ok && i < n_dims; i++)
        ok = want[i] < 0 || t->ne[i] == want[i];
    if (!ok) {
        char got[96], exp[96];
        int g = 0, e = 0;
        for (uint32_t i = 0; i < t->n_dims; i++)
            g += snprintf(got + g, sizeof(got) - g, "%s%lld", i ? " x " : "", (long long)t->ne[i]);
        for (int i = 0; i < n_dims; i++) {
            if (want[i] < 0)
                e += snprintf(exp + e, sizeof(exp) - e, "%s*", i ? " x " : "");
            else
                e += snprintf(exp + e, sizeof(exp) - e, "%s%lld", i ? " x " : "", (long long)want[i]);
        }
        set_err(err, errlen, "%s: tensor '%s' has shape [%s], expected [%s]", gguf_path(m->gguf),
                full, got, exp);
        return TANDEM_E_SHAPE;
    }
    const struct qtype_traits *tr = quant_traits(t->type);
    if (!tr || !tr->vec_dot) {
        set_err(err, errlen, "%s: tensor '%s' has type %d, which cannot be used as a weight",
                gguf_path(m->gguf), full, (int)t->type);
        return TANDEM_E_UNSUPPORTED;
    }
    /* Norms and biases are read as plain floats by the kernels. */
    if (t->n_dims == 1 && t->type != QTYPE_F32) {
        set_err(err, errlen, "%s: 1-D tensor '%s' must be F32, it is %s", gguf_path(m->gguf),
                full, tr->name);
        return TANDEM_E_UNSUPPORTED;
    }
    w->type = t->type;
    for (int i = 0; i < GGUF_MAX_DIMS; i++)
        w->ne[i] = t->ne[i];
    w->nb1 = quant_row_size(t->type, t->ne[0]);
    w->data = t->data;
    return 0;
}

int model__bind_io(struct tandem_model *m, bool norm_bias, char *err, size_t errlen)
{
    const int64_t E = m->hp.n_embd;
    int rc;
    MODEL_W(&m->tok_embd, true, 0, "token_embd.weight", 2, E, -1);
    m->hp.n_vocab = (int)m->tok_embd.ne[1];
    MODEL_W(&m->output_norm, true, 0, "output_norm.weight", 1, E);
    if (norm_bias)
        MODEL_W(&m->output_norm_b, true, 0, "output_norm.bias", 1, E);
    MODEL_W(&m->output, false, 0, "output.weight", 2, E, m->hp.n_vocab);
    if (!m->output.data)
        m->output = m->tok_embd;
    return 0;
}

int model__load_common_hparams(struct tandem_model *m, char *err, size_t errlen)
{
    struct hparams *hp = &m->hp;
    uint32_t v = 0;
    int rc;
#define REQ(suffix, field)                                                           \
    do {                                                                            \
        if ((rc = model__get_u32(m, suffix, true, &v, err, errlen)))                \
            return rc;                                                              \
        hp->field = (int)v;                                                         \
    } while (0)
    REQ("context_length", n_ctx_train);
    REQ("embedding_length", n_embd);
    REQ("block_count", n_layer);
    REQ("feed_forward_length", n_ff);
    REQ("attention.head_count", n_head);
#undef REQ
    v = (uint32_t)hp->n_head;
    if ((rc = model__get_u32(m, "attention.head_count_kv", false, &v, err, errlen)))
        return rc;
    hp->n_head_kv = (int)v;
    const char *bad = NULL;
    long long badv = 0;
    if (hp->n_embd <= 0 || hp->n_embd > 1 << 16)
        bad = "embedding_length", badv = hp->n_embd;
    else if (hp->n_layer <= 0 || hp->n_layer > MAX_LAYERS)
        bad = "block_count", badv = hp->n_layer;
    else if (hp->n_head <= 0 || hp->n_embd % hp->n_head)
        bad = "attention.head_count", badv = hp->n_head;
    else if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv)
        bad = "attention.head_count_kv", badv = hp->n_head_kv;
    else if (hp->n_ff <= 0 || hp->n_ff > 1 << 20)
        bad = "feed_forward_length", badv = hp->n_ff;
    else if (hp->n_ctx_train <= 0)
        bad = "context_length", badv = hp->n_ctx_train;
    if (bad) {
        set_err(err, errlen, "%s: metadata key '%s.%s' has an unusable value (%lld)",
                gguf_path(m->gguf), m->arch->name, bad, badv);
        return TANDEM_E_FORMAT;
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    v = (uint32_t)hp->head_dim;
    if ((rc = model__get_u32(m, "attention.key_length", false, &v, err, errlen)))
        return rc;
    if ((int)v != hp->head_dim) {
        set_err(err, errlen, "%s: %s.attention.key_length %u differs from n_embd/n_head (%d): not supported",
                gguf_path(m->gguf), m->arch->name, v, hp->head_dim);
        return TANDEM_E_UNSUPPORTED;
    }
    v = (uint32_t)hp->head_dim;
    if ((rc = model__get_u32(m, "rope.dimension_count", false, &v, err, errlen)))
        return rc;
    if (v == 0 || (int)v > hp->head_dim || v % 2) {
        set_err(err, errlen, "%s: metadata key '%s.rope.dimension_count' has an unusable value (%u)",
                gguf_path(m->gguf), m->arch->name, v);
        return TANDEM_E_FORMAT;
    }
    hp->n_rot = (int)v;
    hp->norm_eps = 1e-5f;
    if ((rc = model__get_f32(m, "attention.layer_norm_rms_epsilon", false, &hp->norm_eps, err, errlen)))
        return rc;
    hp->rope_freq_base = 10000.0f;
    if ((rc = model__get_f32(m, "rope.freq_base", false, &hp->rope_freq_base, err, errlen)))
        return rc;
    hp->rope_freq_scale = 1.0f;
    char key[256];
    struct gguf_str stype;
    snprintf(key, sizeof(key), "%s.rope.scaling.type", m->arch->name);
    float factor = 0;
    if ((rc = model__get_f32(m, "rope.scaling.factor", false, &factor, err, errlen)))
        return rc;
    if (gguf_get_str(m->gguf, key, &stype) == 0) {
        if (stype.len == 6 && !memcmp(stype.ptr, "linear", 6)) {
            if (factor > 0)
                hp->rope_freq_scale = 1.0f / factor;
        } else if (!(stype.len == 4 && !memcmp(stype.ptr, "none", 4)) &&
                   !(stype.len == 8 && !memcmp(stype.ptr, "longrope", 8))) {
            /* longrope is applied by the architectures that carry its factor tensors. */
            set_err(err, errlen, "%s: rope scaling type '%.*s' is not supported (linear, longrope, none)",
                    gguf_path(m->gguf), (int)(stype.len > 32 ? 32 : stype.len), stype.ptr);
            return TANDEM_E_UNSUPPORTED;
        }
    } else if (factor > 0) {
        hp->rope_freq_scale = 1.0f / factor;
    }
    if (!(hp->rope_freq_base > 0)) {
        set_err(err, errlen, "%s: rope.freq_base must be positive", gguf_path(m->gguf));
        return TANDEM_E_FORMAT;
    }
    return 0;
}

void model__rope_scaling(const struct tandem_model *m, int n_ctx, const float **factors,
                         float *mscale)
{
    const struct hparams *hp = &m->hp;
    *factors = NULL;
    *mscale = 1.0f;
    if (!m->rope_long.data && !m->rope_short.data)
        return;
    /* Long factors once the context goes past the original one, short ones within it. */
    const struct weight *w = n_ctx > hp->rope_orig_ctx ? &m->rope_long : &m->rope_short;
    if (!w->data)
        w = m->rope_long.data ? &m->rope_long : &m->rope_short;
    *factors = w->data;
    if (hp->rope_attn_factor > 0)
        *mscale = hp->rope_attn_factor;
    else if (hp->n_ctx_train > hp->rope_orig_ctx && hp->rope_orig_ctx > 1)
        *mscale = sqrtf(1.0f + logf((float)hp->n_ctx_train / (float)hp->rope_orig_ctx) /
                                   logf((float)hp->rope_orig_ctx));
}

static int find_arch(struct tandem_model *m, char *err, size_t errlen)
{
    struct gguf_str a;
    if (gguf_get_str(m->gguf, "general.architecture", &a)) {
        set_err(err, errlen, "%s: required metadata key 'general.architecture' is missing",
                gguf_path(m->gguf));
        return TANDEM_E_MISSING;
    }
    for (int i = 0; engine_archs[i]; i++)
        if (strlen(engine_archs[i]->name) == a.len && !memcmp(engine_archs[i]->name, a.ptr, a.len)) {
            m->arch = engine_archs[i];
            return 0;
        }
    set_err(err, errlen, "%s: architecture '%.*s' is not supported (supported: %s)",
            gguf_path(m->gguf), (int)(a.len > 64 ? 64 : a.len), a.ptr, tandem_supported_archs());
    return TANDEM_E_UNSUPPORTED;
}


int tandem_model_load(struct tandem_model **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    struct tandem_model *m = calloc(1, sizeof(*m));
    if (!m)
        return TANDEM_E_NOMEM;
    int rc = gguf_open(&m->gguf, path, err, errlen);
    if (rc) {
        rc = rc == GGUF_E_IO ? TANDEM_E_IO : rc == GGUF_E_NOMEM ? TANDEM_E_NOMEM : TANDEM_E_FORMAT;
        goto fail;
    }
    if ((rc = find_arch(m, err, errlen)))
        goto fail;
    if ((rc = model__load_common_hparams(m, err, errlen)))
        goto fail;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof(*m->layers));
    if (!m->layers) {
        rc = TANDEM_E_NOMEM;
        goto fail;
    }
    if ((rc = m->arch->load(m, err, errlen)))
        goto fail;
    /* A model whose tokenizer cannot be built still evaluates token ids (tandem logits); the
     * text functions report why. */
    if (tokenizer_from_gguf(&m->tok, m->gguf, m->tok_err, sizeof(m->tok_err)))
        m->tok = NULL;
    else
        m->tok_err[0] = 0;
    if (m->tok && tokenizer_n_vocab(m->tok) != m->hp.n_vocab) {
        snprintf(m->tok_err, sizeof(m->tok_err), "%s: the vocabulary has %d tokens, the model %d",
                 gguf_path(m->gguf), tokenizer_n_vocab(m->tok), m->hp.n_vocab);
        tokenizer_free(m->tok);
        m->tok = NULL;
    }
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        m->n_params += (uint64_t)gguf_tensor_nelements(t);
        m->n_bytes += t->size;
    }
    const double p = (double)m->n_params;
    char size[32];
    if (p >= 1e9)
        snprintf(size, sizeof(size), "%.1fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(size, sizeof(size), "%.0fM", p / 1e6);
    else
        snprintf(size, sizeof(size), "%.0fK", p / 1e3);
    snprintf(m->desc, sizeof(m->desc), "%s %s %s", m->arch->name, size, gguf_file_type_name(m->gguf));
    *out = m;
    return 0;
fail:
    tandem_model_free(m);
    return rc;
}

void tandem_model_free(struct tandem_model *m)
{
    if (!m)
        return;
    free(m->layers);
    tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m);
}

int tandem_model_n_vocab(const struct tandem_model *m) { return m->hp.n_vocab; }
int tandem_model_n_ctx_train(const struct tandem_model *m) { return m->hp.n_ctx_train; }
int tandem_model_n_embd(const struct tandem_model *m) { return m->hp.n_embd; }
int tandem_model_n_layer(const struct tandem_model *m) { return m->hp.n_layer; }
const char *tandem_model_arch(const struct tandem_model *m) { return m->arch->name; }
uint64_t tandem_model_n_params(const struct tandem_model *m) { return m->n_params; }
uint64_t tandem_model_size(const struct tandem_model *m) { return m->n_bytes; }
const char *tandem_model_desc(const struct tandem_model *m) { return m->desc; }

int tandem_tokenize(const struct tandem_model *m, const char *text, size_t len, int32_t *ids,
                    size_t max_ids, bool add_special, bool parse_special)
{
    if (!m->tok)
        return TANDEM_E_UNSUPPORTED;
    int n = tokenizer_encode(m->tok, text, len, ids, max_ids,
                             (add_special ? TOKENIZER_ADD_SPECIAL : 0) |
                                 (parse_special ? TOKENIZER_PARSE_SPECIAL : 0));
    if (n >= 0)
        return n;
    return n == TOKENIZER_E_NOMEM ? TANDEM_E_NOMEM : TANDEM_E_ARG;
}

int tandem_token_to_piece(const struct tandem_model *m, int32_t id, char *buf, size_t cap,
                          bool special)
{
    if (!m->tok)
        return TANDEM_E_UNSUPPORTED;
    int n = tokenizer_piece(m->tok, id, buf, cap, special ? TOKENIZER_DECODE_SPECIAL : 0);
    return n >= 0 ? n : TANDEM_E_ARG;
}

int32_t tandem_token_bos(const struct tandem_model *m) { return m->tok ? tokenizer_bos(m->tok) : -1; }
int32_t tandem_token_eos(const struct tandem_model *m) { return m->tok ? tokenizer_eos(m->tok) : -1; }

bool tandem_token_is_eog(const struct tandem_model *m, int32_t id)
{
    return m->tok && tokenizer_is_eog(m->tok, id);
}

const char *tandem_model_tokenizer_error(const struct tandem_model *m) { return m->tok_err; }
