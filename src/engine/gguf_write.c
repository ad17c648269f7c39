/* GGUF v3 writer: metadata and tensor infos in memory, data streamed, atomic rename at the end. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEY_LEN 65535u

/* One metadata entry. `key` and everything `value` points to are owned by the writer. */
struct wkv {
    char *key;
    size_t key_len;
    struct gguf_value value;
};

/* One tensor; `data` is borrowed from the caller until gguf_writer_write returns. */
struct wtensor {
    char *name;   /* owned */
    enum qtype type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t size;
};

struct gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
};

/* Growable header buffer; `err` sticks after the first failed allocation. */
struct buf {
    uint8_t *p;
    size_t len, cap;
    int err;
};

static const uint8_t vsize[GGUF_VTYPE_COUNT] = {
    [GGUF_VTYPE_UINT8] = 1,  [GGUF_VTYPE_INT8] = 1,    [GGUF_VTYPE_UINT16] = 2,
    [GGUF_VTYPE_INT16] = 2,  [GGUF_VTYPE_UINT32] = 4,  [GGUF_VTYPE_INT32] = 4,
    [GGUF_VTYPE_FLOAT32] = 4, [GGUF_VTYPE_BOOL] = 1,   [GGUF_VTYPE_UINT64] = 8,
    [GGUF_VTYPE_INT64] = 8,  [GGUF_VTYPE_FLOAT64] = 8,
};

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
    }
    return true;
}

/* ---- owned values ---- */

static void value_free(struct gguf_value *v)
{
    if (v->type == GGUF_VTYPE_STRING) {
        free((void *)v->v.str.ptr);
    } else if (v->type == GGUF_VTYPE_ARRAY) {
        if (v->v.arr.strs)
            for (uint64_t i = 0; i < v->v.arr.n; i++)
                free((void *)v->v.arr.strs[i].ptr);
        if (v->v.arr.arrs)
            for (uint64_t i = 0; i < v->v.arr.n; i++)
                value_free((struct gguf_value *)&v->v.arr.arrs[i]);
        free((void *)v->v.arr.strs);
        free((void *)v->v.arr.arrs);
        free((void *)v->v.arr.data);
    }
    memset(v, 0, sizeof(*v));
}

static int str_copy(struct gguf_str *dst, const struct gguf_str *src)
{
    if (src->len && !src->ptr)
        return GGUF_E_TYPE;
    if (src->len >= SIZE_MAX)
        return GGUF_E_LIMIT;
    char *p = malloc((size_t)src->len + 1);
    if (!p)
        return GGUF_E_NOMEM;
    if (src->len)
        memcpy(p, src->ptr, (size_t)src->len);
    p[src->len] = 0;
    dst->ptr = p;
    dst->len = src->len;
    return 0;
}

/* A scalar must fit the width of its type, or the file would not read back the same. */
static bool scalar_fits(const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_VTYPE_UINT8: return v->v.u64 <= UINT8_MAX;
    case GGUF_VTYPE_UINT16: return v->v.u64 <= UINT16_MAX;
    case GGUF_VTYPE_UINT32: return v->v.u64 <= UINT32_MAX;
    case GGUF_VTYPE_BOOL: return v->v.u64 <= 1;
    case GGUF_VTYPE_INT8: return v->v.i64 >= INT8_MIN && v->v.i64 <= INT8_MAX;
    case GGUF_VTYPE_INT16: return v->v.i64 >= INT16_MIN && v->v.i64 <= INT16_MAX;
    case GGUF_VTYPE_INT32: return v->v.i64 >= INT32_MIN && v->v.i64 <= INT32_MAX;
    default: return true;
    }
}

/* Deep copy with validation; depth = number of enclosing arrays. On failure dst is freed. */
static int value_copy(struct gguf_value *dst, const struct gguf_value *src, unsigned depth)
{
    int rc = 0;
    memset(dst, 0, sizeof(*dst));
    if ((unsigned)src->type >= GGUF_VTYPE_COUNT)
        return GGUF_E_TYPE;
    dst->type = src->type;
    if (src->type == GGUF_VTYPE_STRING)
        return str_copy(&dst->v.str, &src->v.str);
    if (src->type != GGUF_VTYPE_ARRAY) {
        if (src->type == GGUF_VTYPE_BOOL && src->v.u64 > 1)
            return GGUF_E_TYPE;
        if (!scalar_fits(src))
            return GGUF_E_LIMIT;
        dst->v = src->v;
        return 0;
    }
    enum gguf_vtype et = src->v.arr.type;
    uint64_t n = src->v.arr.n;
    if ((unsigned)et >= GGUF_VTYPE_COUNT)
        return GGUF_E_TYPE;
    if (depth + 1 > GGUF_MAX_ARRAY_DEPTH)
        return GGUF_E_LIMIT;
    dst->v.arr.type = et;
    dst->v.arr.n = n;
    if (n == 0)
        return 0;
    if (et == GGUF_VTYPE_STRING) {
        if (!src->v.arr.strs)
            return GGUF_E_TYPE;
        if (n > SIZE_MAX / sizeof(struct gguf_str))
            return GGUF_E_LIMIT;
        struct gguf_str *strs = calloc((size_t)n, sizeof(*strs));
        if (!strs)
            return GGUF_E_NOMEM;
        dst->v.arr.strs = strs;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = str_copy(&strs[i], &src->v.arr.strs[i])))
                goto out;
        return 0;
    }
    if (et == GGUF_VTYPE_ARRAY) {
        if (!src->v.arr.arrs)
            return GGUF_E_TYPE;
        if (n > SIZE_MAX / sizeof(struct gguf_value))
            return GGUF_E_LIMIT;
        struct gguf_value *arrs = calloc((size_t)n, sizeof(*arrs));
        if (!arrs)
            return GGUF_E_NOMEM;
        dst->v.arr.arrs = arrs;
        for (uint64_t i = 0; i < n; i++) {
            if (src->v.arr.arrs[i].type != GGUF_VTYPE_ARRAY) {
                rc = GGUF_E_TYPE;
                goto out;
            }
            if ((rc = value_copy(&arrs[i], &src->v.arr.arrs[i], depth + 1)))
                goto out;
        }
        return 0;
    }
    if (!src->v.arr.data)
        return GGUF_E_TYPE;
    if (n > SIZE_MAX / vsize[et])
        return GGUF_E_LIMIT;
    size_t bytes = (size_t)n * vsize[et];
    if (et == GGUF_VTYPE_BOOL)
        for (size_t i = 0; i < bytes; i++)
            if (((const uint8_t *)src->v.arr.data)[i] > 1)
                return GGUF_E_TYPE;
    void *data = malloc(bytes);
    if (!data)
        return GGUF_E_NOMEM;
    memcpy(data, src->v.arr.data, bytes);
    dst->v.arr.data = data;
out:
    if (rc)
        value_free(dst);
    return rc;
}

/* ---- writer object ---- */

struct gguf_writer *gguf_writer_new(void)
{
    return calloc(1, sizeof(struct gguf_writer));
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        value_free(&w->kv[i].value);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static int64_t find_kv(const struct gguf_writer *w, const char *key, size_t len)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == len && !memcmp(w->kv[i].key, key, len))
            return (int64_t)i;
    return -1;
}

static int grow(void **arr, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / item)
            return GGUF_E_NOMEM;
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * item);
    if (!p)
        return GGUF_E_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Set key (len bytes, any NUL-free valid UTF-8) to a deep copy of v. */
static int set_value_n(struct gguf_writer *w, const char *key, size_t len,
                       const struct gguf_value *v)
{
    struct gguf_value copy;
    int rc;
    if (!w || !key || !v || len == 0)
        return GGUF_E_TYPE;
    if (len > MAX_KEY_LEN)
        return GGUF_E_LIMIT;
    if (!utf8_valid((const uint8_t *)key, len) || memchr(key, 0, len))
        return GGUF_E_TYPE;
    if ((rc = value_copy(&copy, v, 0)))
        return rc;
    int64_t i = find_kv(w, key, len);
    if (i >= 0) {
        value_free(&w->kv[i].value);
        w->kv[i].value = copy;
        return 0;
    }
    char *k = malloc(len + 1);
    if (!k || grow((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof(*w->kv))) {
        free(k);
        value_free(&copy);
        return GGUF_E_NOMEM;
    }
    memcpy(k, key, len);
    k[len] = 0;
    w->kv[w->n_kv++] = (struct wkv){k, len, copy};
    return 0;
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf *src)
{
    if (!w || !src)
        return GGUF_E_TYPE;
    for (uint64_t i = 0; i < gguf_kv_count(src); i++) {
        struct gguf_str key = gguf_kv_key(src, i);
        int rc = set_value_n(w, key.ptr, (size_t)key.len, gguf_kv_value(src, i));
        if (rc)
            return rc;
    }
    return 0;
}

int gguf_writer_set_value(struct gguf_writer *w, const char *key, const struct gguf_value *v)
{
    return set_value_n(w, key, key ? strlen(key) : 0, v);
}

int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    struct gguf_value val = {.type = GGUF_VTYPE_UINT32, .v.u64 = v};
    return gguf_writer_set_value(w, key, &val);
}

int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v)
{
    struct gguf_value val = {.type = GGUF_VTYPE_FLOAT32, .v.f64 = v};
    return gguf_writer_set_value(w, key, &val);
}

int gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v)
{
    struct gguf_value val = {.type = GGUF_VTYPE_BOOL, .v.u64 = v ? 1 : 0};
    return gguf_writer_set_value(w, key, &val);
}

int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return GGUF_E_TYPE;
    struct gguf_value val = {.type = GGUF_VTYPE_STRING, .v.str = {v, strlen(v)}};
    return gguf_writer_set_value(w, key, &val);
}

int gguf_writer_remove(struct gguf_writer *w, const char *key)
{
    if (!w || !key)
        return GGUF_E_NOTFOUND;
    int64_t i = find_kv(w, key, strlen(key));
    if (i < 0)
        return GGUF_E_NOTFOUND;
    free(w->kv[i].key);
    value_free(&w->kv[i].value);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - (size_t)i - 1) * sizeof(*w->kv));
    w->n_kv--;
    return 0;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum qtype type,
                           uint32_t n_dims, const int64_t *ne, const void *data, uint64_t size)
{
    if (!w || !name || !ne)
        return GGUF_E_TYPE;
    size_t len = strlen(name);
    if (len == 0 || len > GGUF_MAX_NAME)
        return GGUF_E_LIMIT;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return GGUF_E_DUPLICATE;
    const struct qtype_traits *tr = quant_traits((int)type);
    if (!tr)
        return GGUF_E_TYPE;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return GGUF_E_SHAPE;
    struct wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}, .data = data,
                        .size = size};
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || nel > INT64_MAX / ne[d])
            return GGUF_E_SHAPE;
        nel *= ne[d];
        t.ne[d] = ne[d];
    }
    if (ne[0] % tr->block_size)
        return GGUF_E_SHAPE;
    uint64_t row = (uint64_t)(ne[0] / tr->block_size), rows = (uint64_t)(nel / ne[0]);
    if (row > UINT64_MAX / tr->type_size || row * tr->type_size > UINT64_MAX / rows ||
        row * tr->type_size * rows != size)
        return GGUF_E_SHAPE;
    if (!data)
        return GGUF_E_TYPE;
    t.name = malloc(len + 1);
    if (!t.name || grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof(*w->t))) {
        free(t.name);
        return GGUF_E_NOMEM;
    }
    memcpy(t.name, name, len + 1);
    w->t[w->n_t++] = t;
    return 0;
}

/* ---- serialization ---- */

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->err)
        return;
    if (n > SIZE_MAX - b->len) {
        b->err = GGUF_E_NOMEM;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                b->err = GGUF_E_NOMEM;
                return;
            }
            cap *= 2;
        }
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->err = GGUF_E_NOMEM;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_le(struct buf *b, uint64_t v, unsigned n)
{
    uint8_t tmp[8];
    for (unsigned i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    put(b, tmp, n);
}

static void put_str(struct buf *b, const void *p, uint64_t len)
{
    put_le(b, len, 8);
    put(b, p, (size_t)len);
}

static void put_value(struct buf *b, const struct gguf_value *v, bool with_type)
{
    if (with_type)
        put_le(b, (uint32_t)v->type, 4);
    switch (v->type) {
    case GGUF_VTYPE_STRING:
        put_str(b, v->v.str.ptr, v->v.str.len);
        break;
    case GGUF_VTYPE_ARRAY:
        put_le(b, (uint32_t)v->v.arr.type, 4);
        put_le(b, v->v.arr.n, 8);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.type == GGUF_VTYPE_STRING)
                put_str(b, v->v.arr.strs[i].ptr, v->v.arr.strs[i].len);
            else if (v->v.arr.type == GGUF_VTYPE_ARRAY)
                put_value(b, &v->v.arr.arrs[i], false);
        }
        if (v->v.arr.type != GGUF_VTYPE_STRING && v->v.arr.type != GGUF_VTYPE_ARRAY)
            put(b, v->v.arr.data, (size_t)v->v.arr.n * vsize[v->v.arr.type]);
        break;
    case GGUF_VTYPE_FLOAT32: {
        float f = (float)v->v.f64;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_le(b, bits, 4);
        break;
    }
    case GGUF_VTYPE_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f64, 8);
        put_le(b, bits, 8);
        break;
    }
    default:
        /* i64 and u64 share their bits; the low bytes are the value in two's complement. */
        put_le(b, v->v.u64, vsize[v->type]);
        break;
    }
}

static int werr(int code, char *errbuf, size_t errlen, const char *path, const char *field,
                const char *msg)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s: %s: %s", path, field, msg);
    return code;
}

static int write_all(int fd, const void *p, uint64_t n)
{
    const uint8_t *s = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, s, chunk);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        s += k;
        n -= (uint64_t)k;
    }
    return 0;
}

static int write_zeros(int fd, uint64_t n)
{
    static const uint8_t zeros[4096];
    while (n) {
        uint64_t k = n > sizeof(zeros) ? sizeof(zeros) : n;
        if (write_all(fd, zeros, k))
            return -1;
        n -= k;
    }
    return 0;
}

/* Read the written file back with the strict reader, so a bad file never replaces `path`. */
static int verify(int fd, uint64_t size, const char *path, char *errbuf, size_t errlen)
{
    if (size > SIZE_MAX)
        return werr(GGUF_E_IO, errbuf, errlen, path, "verify", "file too large to map");
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return werr(GGUF_E_IO, errbuf, errlen, path, "verify", strerror(errno));
    struct gguf *g = NULL;
    int rc = gguf_open_buffer(&g, map, (size_t)size, path, errbuf, errlen);
    gguf_close(g);
    munmap(map, (size_t)size);
    return rc;
}

/* Make the rename durable; best effort, since the data itself is already synced. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int gguf_writer_write(struct gguf_writer *w, const char *path, char *errbuf, size_t errlen)
{
    struct buf b = {0};
    uint64_t *offsets = NULL;
    char *tmp = NULL;
    int fd = -1;
    int rc = 0;
    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    char msg[200];

    if (!w || !path)
        return werr(GGUF_E_IO, errbuf, errlen, path ? path : "(null)", "write", "no writer");
    int64_t ai = find_kv(w, "general.alignment", 17);
    if (ai >= 0) {
        const struct gguf_value *v = &w->kv[ai].value;
        if (v->type != GGUF_VTYPE_UINT32) {
            snprintf(msg, sizeof(msg), "wrong type (%s, must be uint32)",
                     gguf_vtype_name(v->type));
            return werr(GGUF_E_TYPE, errbuf, errlen, path, "general.alignment", msg);
        }
        if (!v->v.u64 || (v->v.u64 & (v->v.u64 - 1)) || v->v.u64 > GGUF_MAX_ALIGNMENT) {
            snprintf(msg, sizeof(msg), "alignment %llu is not a power of two <= %d",
                     (unsigned long long)v->v.u64, GGUF_MAX_ALIGNMENT);
            return werr(GGUF_E_ALIGNMENT, errbuf, errlen, path, "general.alignment", msg);
        }
        align = v->v.u64;
    }

    /* Tensor offsets: each tensor starts on an alignment boundary of the data section. */
    offsets = calloc(w->n_t ? w->n_t : 1, sizeof(*offsets));
    if (!offsets) {
        rc = werr(GGUF_E_NOMEM, errbuf, errlen, path, "write", "out of memory");
        goto out;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        offsets[i] = off;
        uint64_t pad = (align - w->t[i].size % align) % align;
        if (w->t[i].size > UINT64_MAX - pad || off > UINT64_MAX - (w->t[i].size + pad)) {
            rc = werr(GGUF_E_LIMIT, errbuf, errlen, path, "write", "data section overflows");
            goto out;
        }
        off += w->t[i].size + pad;
    }
    const uint64_t data_size = off;

    put(&b, "GGUF", 4);
    put_le(&b, 3, 4);
    put_le(&b, w->n_t, 8);
    put_le(&b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&b, w->kv[i].key, w->kv[i].key_len);
        put_value(&b, &w->kv[i].value, true);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        put_str(&b, t->name, strlen(t->name));
        put_le(&b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(&b, (uint64_t)t->ne[d], 8);
        put_le(&b, (uint32_t)t->type, 4);
        put_le(&b, offsets[i], 8);
    }
    static const uint8_t zeros[GGUF_MAX_ALIGNMENT];
    put(&b, zeros, (size_t)((align - b.len % align) % align));
    if (b.err) {
        rc = werr(b.err, errbuf, errlen, path, "write", "out of memory for the header");
        goto out;
    }

    size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp) {
        rc = werr(GGUF_E_NOMEM, errbuf, errlen, path, "write", "out of memory");
        goto out;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        tmp = NULL;
        rc = werr(GGUF_E_IO, errbuf, errlen, path, "create temp file", strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0644) < 0 || write_all(fd, b.p, b.len)) {
        rc = werr(GGUF_E_IO, errbuf, errlen, path, "write", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        uint64_t end = i + 1 < w->n_t ? offsets[i + 1] : data_size;
        if (write_all(fd, w->t[i].data, w->t[i].size) ||
            write_zeros(fd, end - offsets[i] - w->t[i].size)) {
            rc = werr(GGUF_E_IO, errbuf, errlen, path, "write", strerror(errno));
            goto out;
        }
    }
    if (fsync(fd) < 0) {
        rc = werr(GGUF_E_IO, errbuf, errlen, path, "fsync", strerror(errno));
        goto out;
    }
    if ((rc = verify(fd, (uint64_t)b.len + data_size, path, errbuf, errlen)))
        goto out;
    if (close(fd) < 0) {
        fd = -1;
        rc = werr(GGUF_E_IO, errbuf, errlen, path, "close", strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = werr(GGUF_E_IO, errbuf, errlen, path, "rename", strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    sync_dir(path);
    if (errbuf && errlen)
        errbuf[0] = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(b.p);
    free(offsets);
    return rc;
}
