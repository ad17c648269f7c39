/* Model quantization: convert a GGUF file's weights to a type or a llama.cpp-style mix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/pool.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "tandem.h"

/* A target: the base type and the general.file_type id other GGUF tools use for it. */
struct ftype {
    const char *name;
    enum qtype base;
    int file_type;
};

static const struct ftype ftypes[] = {
    {"F32", QTYPE_F32, 0},        {"F16", QTYPE_F16, 1},       {"BF16", QTYPE_BF16, 32},
    {"Q4_0", QTYPE_Q4_0, 2},      {"Q4_1", QTYPE_Q4_1, 3},     {"Q8_0", QTYPE_Q8_0, 7},
    {"Q5_0", QTYPE_Q5_0, 8},      {"Q5_1", QTYPE_Q5_1, 9},     {"Q2_K", QTYPE_Q2_K, 10},
    {"Q3_K_S", QTYPE_Q3_K, 11},   {"Q3_K_M", QTYPE_Q3_K, 12},  {"Q3_K_L", QTYPE_Q3_K, 13},
    {"Q4_K_S", QTYPE_Q4_K, 14},   {"Q4_K_M", QTYPE_Q4_K, 15},  {"Q5_K_S", QTYPE_Q5_K, 16},
    {"Q5_K_M", QTYPE_Q5_K, 17},   {"Q6_K", QTYPE_Q6_K, 18},
};

const char *tandem_quantize_types(void)
{
    return "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M "
           "Q5_K_S Q5_K_M Q6_K (Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M)";
}

static const struct ftype *find_ftype(const char *name)
{
    static const char *aliases[][2] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcasecmp(name, aliases[i][0]))
            name = aliases[i][1];
    for (size_t i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++)
        if (!strcasecmp(name, ftypes[i].name))
            return &ftypes[i];
    return NULL;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Layer index of "blk.N.*", or -1. */
static int layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4))
        return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && v >= 0 && v < 1 << 20 ? (int)v : -1;
}

/* The layers of a mix that get more bits: the first and last eighth, and every third between. */
static bool more_bits(int il, int n_layer)
{
    return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

/* Type for one tensor under a mix; the rules follow the widely used llama.cpp mixes. */
static enum qtype choose_type(const struct ftype *ft, const char *name, int n_layer, int n_gqa,
                              bool falcon)
{
    const enum qtype base = ft->base;
    const int il = layer_of(name);
    const bool kq = base >= QTYPE_Q2_K && base <= QTYPE_Q6_K;
    const char *f = ft->name;
    const bool is_float = base == QTYPE_F32 || base == QTYPE_F16 || base == QTYPE_BF16;
    if (!strcmp(name, "output.weight") && !is_float)
        return base == QTYPE_Q8_0 || falcon ? QTYPE_Q8_0 : QTYPE_Q6_K;
    if (!kq)
        return base;
    const bool attn_v = strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight");
    const bool ffn_down = strstr(name, "ffn_down") != NULL;
    const bool attn_out = strstr(name, "attn_output.weight") != NULL;
    if (attn_v) {
        if (!strcmp(f, "Q2_K")) return n_gqa >= 4 ? QTYPE_Q4_K : QTYPE_Q3_K;
        if (!strcmp(f, "Q3_K_M")) return il >= 0 && il < 2 ? QTYPE_Q5_K : QTYPE_Q4_K;
        if (!strcmp(f, "Q3_K_L")) return QTYPE_Q5_K;
        if (!strcmp(f, "Q4_K_M") || !strcmp(f, "Q5_K_M"))
            return il >= 0 && more_bits(il, n_layer) ? QTYPE_Q6_K : base;
        if (!strcmp(f, "Q4_K_S")) return il >= 0 && il < 4 ? QTYPE_Q5_K : base;
        return base;
    }
    if (ffn_down) {
        if (!strcmp(f, "Q2_K")) return QTYPE_Q3_K;
        if (!strcmp(f, "Q3_K_M"))
            return il >= 0 && il < n_layer / 16 ? QTYPE_Q5_K
                   : !falcon || (il >= 0 && more_bits(il, n_layer)) ? QTYPE_Q4_K : QTYPE_Q3_K;
        if (!strcmp(f, "Q3_K_L")) return QTYPE_Q5_K;
        if (!strcmp(f, "Q4_K_M") || !strcmp(f, "Q5_K_M"))
            return il >= 0 && more_bits(il, n_layer) ? QTYPE_Q6_K : base;
        if (!strcmp(f, "Q4_K_S")) return il >= 0 && il < n_layer / 8 ? QTYPE_Q5_K : base;
        return base;
    }
    if (attn_out && !falcon) {
        if (!strcmp(f, "Q2_K")) return QTYPE_Q3_K;
        if (!strcmp(f, "Q3_K_M")) return QTYPE_Q4_K;
        if (!strcmp(f, "Q3_K_L")) return QTYPE_Q5_K;
    }
    return base;
}

/* K-quant rows must be multiples of 256; such tensors fall back to a 32-block type of similar
 * size, as other tools do. */
static enum qtype fallback(enum qtype t, int64_t ne0)
{
    if (ne0 % quant_traits(t)->block_size == 0)
        return t;
    switch (t) {
    case QTYPE_Q2_K:
    case QTYPE_Q3_K: t = QTYPE_Q4_0; break;
    case QTYPE_Q4_K: t = QTYPE_Q5_0; break;
    case QTYPE_Q5_K: t = QTYPE_Q5_1; break;
    case QTYPE_Q6_K: t = QTYPE_Q8_0; break;
    default: break;
    }
    return ne0 % quant_traits(t)->block_size == 0 ? t : QTYPE_F16;
}

struct convert_job {
    struct pool *pool;
    const struct gguf_tensor *src;
    enum qtype dst_type;
    void *dst;
    int64_t n_rows;
    float **bufs;   /* per thread, one row */
};

static void convert_rows(void *arg, int ith, int nth)
{
    struct convert_job *j = arg;
    const struct qtype_traits *st = quant_traits(j->src->type), *dt = quant_traits(j->dst_type);
    const int64_t ne0 = j->src->ne[0];
    const size_t src_row = quant_row_size(j->src->type, ne0), dst_row = quant_row_size(j->dst_type, ne0);
    (void)nth;
    const int chunk = 16;
    const int n_chunks = (int)((j->n_rows + chunk - 1) / chunk);
    int c;
    while ((c = pool_next(j->pool, n_chunks)) >= 0)
        for (int64_t r = (int64_t)c * chunk; r < j->n_rows && r < (int64_t)(c + 1) * chunk; r++) {
            st->to_float((const char *)j->src->data + r * src_row, j->bufs[ith], ne0);
            dt->from_float(j->bufs[ith], (char *)j->dst + r * dst_row, ne0);
        }
}

int tandem_model_quantize(const char *in, const char *out, const char *type, int n_threads,
                          bool verbose, char *err, size_t errlen)
{
    const struct ftype *ft = find_ftype(type);
    if (!ft) {
        snprintf(err, errlen, "unknown type '%s' (known: %s)", type, tandem_quantize_types());
        return TANDEM_E_ARG;
    }
    struct gguf *g = NULL;
    struct gguf_writer *w = NULL;
    struct pool *pool = NULL;
    void **outs = NULL;
    float **bufs = NULL;
    int rc = gguf_open(&g, in, err, errlen);
    if (rc) {
        rc = rc == GGUF_E_IO ? TANDEM_E_IO : TANDEM_E_FORMAT;
        goto out;
    }
    const uint64_t n_t = gguf_tensor_count(g);
    int n_layer = 0, n_gqa = 1;
    bool falcon = false;
    struct gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) == 0 && arch.len < 64) {
        char key[96];
        uint32_t v, heads = 0, heads_kv = 0;
        snprintf(key, sizeof(key), "%.*s.block_count", (int)arch.len, arch.ptr);
        if (gguf_get_u32(g, key, &v) == 0)
            n_layer = (int)v;
        snprintf(key, sizeof(key), "%.*s.attention.head_count", (int)arch.len, arch.ptr);
        gguf_get_u32(g, key, &heads);
        snprintf(key, sizeof(key), "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
        if (gguf_get_u32(g, key, &heads_kv) || heads_kv == 0)
            heads_kv = heads;
        if (heads_kv)
            n_gqa = (int)(heads / heads_kv);
        falcon = arch.len == 6 && !memcmp(arch.ptr, "falcon", 6);
    }
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    rc = TANDEM_E_NOMEM;
    if (!(w = gguf_writer_new()) || !(pool = pool_new(n_threads)) ||
        !(outs = calloc(n_t ? n_t : 1, sizeof(void *))) ||
        !(bufs = calloc((size_t)pool_size(pool), sizeof(float *))))
        goto out;
    int64_t max_ne0 = 1;
    for (uint64_t i = 0; i < n_t; i++)
        if (gguf_tensor_at(g, i)->ne[0] > max_ne0)
            max_ne0 = gguf_tensor_at(g, i)->ne[0];
    for (int i = 0; i < pool_size(pool); i++)
        if (!(bufs[i] = malloc(sizeof(float) * (size_t)max_ne0)))
            goto out;
    if ((rc = gguf_writer_copy_kv(w, g)) || (rc = gguf_writer_set_u32(w, "general.file_type", (uint32_t)ft->file_type)) ||
        (rc = gguf_writer_set_u32(w, "general.quantization_version", 2))) {
        snprintf(err, errlen, "cannot build the output metadata: %s", gguf_strerror(rc));
        rc = TANDEM_E_NOMEM;
        goto out;
    }
    uint64_t bytes_in = 0, bytes_out = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        enum qtype dst = t->type;
        /* Weights of two or more dimensions are converted; norms, biases and the MoE router
         * (small, and sensitive) keep their type. */
        const bool convert = t->n_dims >= 2 && has_suffix(t->name, ".weight") &&
                             !strstr(t->name, "ffn_gate_inp") && quant_traits(t->type)->to_float;
        if (convert)
            dst = fallback(choose_type(ft, t->name, n_layer, n_gqa, falcon), t->ne[0]);
        const void *data = t->data;
        uint64_t size = t->size;
        if (dst != t->type) {
            const int64_t n_rows = gguf_tensor_nelements(t) / t->ne[0];
            size = (uint64_t)quant_row_size(dst, t->ne[0]) * (uint64_t)n_rows;
            if (!(outs[i] = malloc(size ? size : 1))) {
                rc = TANDEM_E_NOMEM;
                goto out;
            }
            struct convert_job job = {.pool = pool, .src = t, .dst_type = dst, .dst = outs[i],
                                      .n_rows = n_rows, .bufs = bufs};
            pool_run(pool, convert_rows, &job);
            data = outs[i];
        }
        if (verbose)
            fprintf(stderr, "[%4llu/%4llu] %-32s %-6s -> %-6s %10.2f MiB -> %8.2f MiB\n",
                    (unsigned long long)i + 1, (unsigned long long)n_t, t->name,
                    quant_traits(t->type)->name, quant_traits(dst)->name, t->size / 1048576.0,
                    size / 1048576.0);
        bytes_in += t->size;
        bytes_out += size;
        if ((rc = gguf_writer_add_tensor(w, t->name, dst, t->n_dims, t->ne, data, size))) {
            snprintf(err, errlen, "cannot add tensor '%s': %s", t->name, gguf_strerror(rc));
            rc = TANDEM_E_ARG;
            goto out;
        }
    }
    if ((rc = gguf_writer_write(w, out, err, errlen))) {
        rc = TANDEM_E_IO;
        goto out;
    }
    if (verbose)
        fprintf(stderr, "%s: %.2f MiB -> %.2f MiB (%s)\n", out, bytes_in / 1048576.0,
                bytes_out / 1048576.0, ft->name);
    rc = 0;
out:
    if (outs)
        for (uint64_t i = 0; i < n_t; i++)
            free(outs[i]);
    free(outs);
    if (bufs)
        for (int i = 0; i < pool_size(pool); i++)
            free(bufs[i]);
    free(bufs);
    pool_free(pool);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}
