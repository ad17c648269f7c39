/* libFuzzer target for the GGUF reader: parse arbitrary bytes, touch all it returns, copy it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

static volatile uint64_t sink;

/* Reads every byte a value points to, so ASan sees any pointer outside the input. */
static void walk_value(const struct gguf_value *v, unsigned depth)
{
    if (depth > GGUF_MAX_ARRAY_DEPTH + 1)
        abort();
    switch (v->type) {
    case GGUF_VTYPE_STRING:
        for (uint64_t i = 0; i < v->v.str.len; i++)
            sink += (uint8_t)v->v.str.ptr[i];
        break;
    case GGUF_VTYPE_ARRAY:
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.type == GGUF_VTYPE_STRING) {
                const struct gguf_str *s = &v->v.arr.strs[i];
                for (uint64_t k = 0; k < s->len; k++)
                    sink += (uint8_t)s->ptr[k];
            } else if (v->v.arr.type == GGUF_VTYPE_ARRAY) {
                walk_value(&v->v.arr.arrs[i], depth + 1);
            } else {
                sink += (uint64_t)gguf_arr_i64(v, i);
                float f = gguf_arr_f32(v, i);
                uint32_t bits;
                memcpy(&bits, &f, 4);
                sink += bits;
            }
        }
        break;
    case GGUF_VTYPE_BOOL:
        if (v->v.u64 > 1)
            abort();
        sink += v->v.u64;
        break;
    default:
        sink += v->v.u64;
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf *g = NULL;
    char err[512];
    int rc = gguf_open_buffer(&g, data, size, "fuzz.gguf", err, sizeof(err));
    if (rc) {
        /* Contract: a negative code, no handle, and exactly one line naming the input. */
        if (rc >= 0 || g || strncmp(err, "fuzz.gguf: ", 11) || strchr(err, '\n'))
            abort();
        return 0;
    }
    const uint64_t n_kv = gguf_kv_count(g), n_t = gguf_tensor_count(g);
    for (uint64_t i = 0; i < n_kv; i++) {
        struct gguf_str key = gguf_kv_key(g, i);
        const struct gguf_value *v = gguf_kv_value(g, i);
        walk_value(v, 0);
        /* Keys are NUL-free, so the hash lookup must find this very entry. */
        char *k = malloc(key.len + 1);
        if (!k)
            abort();
        memcpy(k, key.ptr, key.len);
        k[key.len] = 0;
        if (gguf_get(g, k) != v)
            abort();
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        float f;
        bool b;
        struct gguf_str s;
        sink += (uint64_t)gguf_get_u32(g, k, &u32) + (uint64_t)gguf_get_u64(g, k, &u64) +
                (uint64_t)gguf_get_i64(g, k, &i64) + (uint64_t)gguf_get_f32(g, k, &f) +
                (uint64_t)gguf_get_bool(g, k, &b) + (uint64_t)gguf_get_str(g, k, &s);
        free(k);
    }
    const uint64_t data_off = gguf_data_offset(g), file_size = gguf_file_size(g);
    for (uint64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_find_tensor(g, t->name) != t)
            abort();
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS || t->size == 0 ||
            gguf_tensor_nelements(t) < 1 || !quant_traits(t->type))
            abort();
        if (t->offset % gguf_alignment(g) || data_off + t->offset + t->size > file_size ||
            (const uint8_t *)t->data != data + data_off + t->offset)
            abort();
        const uint8_t *p = t->data;
        sink += p[0] + p[t->size - 1];
    }
    /* Whatever the reader accepts, the writer must accept too (deep copies, no I/O here). */
    struct gguf_writer *w = gguf_writer_new();
    if (!w || gguf_writer_copy_kv(w, g))
        abort();
    for (uint64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size))
            abort();
    }
    gguf_writer_free(w);
    gguf_close(g);
    return 0;
}
