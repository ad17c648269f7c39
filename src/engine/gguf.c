/* GGUF v2/v3 reader: maps a file read-only, validates every field, indexes keys and tensors. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The smallest encodings of the repeated header items. Every count is checked against the
 * bytes left (count <= left / min) before anything is allocated for it, so memory stays a
 * small multiple of the file size whatever the counts claim:
 *   kv:          u64 key length, >= 1 key byte, u32 type, >= 1 value byte
 *   tensor info: u64 name length, >= 1 name byte, u32 n_dims, >= 1 u64 dim, u32 type, u64 off
 *   string:      u64 length
 *   array:       u32 element type, u64 count */
#define MIN_KV_BYTES 14u
#define MIN_TENSOR_INFO_BYTES 33u
#define MIN_STRING_BYTES 8u
#define MIN_ARRAY_BYTES 12u
#define HEADER_BYTES 24u
#define MAX_KEY_LEN 65535u          /* the format's documented key limit */
#define MAX_COUNT 0x7fffffffu       /* hash slots hold 32-bit indices */
#define ARENA_CHUNK (64u * 1024u)
#define FIELD_MAX 160

struct gguf_kv {
    struct gguf_str key;
    struct gguf_value value;
};

/* Bump allocator for everything sized by the file (string tables, nested arrays, names). */
struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    max_align_t mem[];
};

struct gguf {
    const uint8_t *base;        /* file bytes: the mapping or the caller's buffer */
    uint64_t size;
    void *map;                  /* owned mapping (gguf_open), NULL for a caller buffer */
    size_t map_len;
    char *path;                 /* owned copy of the path or buffer name */
    uint32_t version, alignment;
    uint64_t data_offset;
    uint64_t n_kv, n_tensors;
    struct gguf_kv *kv;         /* [n_kv], owned */
    struct gguf_tensor *tensors;/* [n_tensors], owned; names live in the arena */
    uint32_t *kv_slots;         /* open addressing, index + 1 (0 = empty); [kv_mask + 1] */
    uint64_t kv_mask;
    uint32_t *t_slots;          /* same for tensor names */
    uint64_t t_mask;
    uint64_t hash_seed;         /* per handle, so colliding names cannot be precomputed */
    struct arena_block *arena;
};

struct parser {
    struct gguf *g;
    const uint8_t *p;
    uint64_t size, pos;
    char *errbuf;
    size_t errlen;
    char name[200];             /* escaped file name for messages */
    char field[FIELD_MAX];      /* what is being parsed, e.g. "kv[3] 'general.alignment'" */
};

static const uint8_t vtype_size[GGUF_VTYPE_COUNT] = {
    [GGUF_VTYPE_UINT8] = 1,  [GGUF_VTYPE_INT8] = 1,    [GGUF_VTYPE_UINT16] = 2,
    [GGUF_VTYPE_INT16] = 2,  [GGUF_VTYPE_UINT32] = 4,  [GGUF_VTYPE_INT32] = 4,
    [GGUF_VTYPE_FLOAT32] = 4, [GGUF_VTYPE_BOOL] = 1,   [GGUF_VTYPE_STRING] = 0,
    [GGUF_VTYPE_ARRAY] = 0,  [GGUF_VTYPE_UINT64] = 8,  [GGUF_VTYPE_INT64] = 8,
    [GGUF_VTYPE_FLOAT64] = 8,
};

static const char *const vtype_names[GGUF_VTYPE_COUNT] = {
    [GGUF_VTYPE_UINT8] = "uint8",     [GGUF_VTYPE_INT8] = "int8",
    [GGUF_VTYPE_UINT16] = "uint16",   [GGUF_VTYPE_INT16] = "int16",
    [GGUF_VTYPE_UINT32] = "uint32",   [GGUF_VTYPE_INT32] = "int32",
    [GGUF_VTYPE_FLOAT32] = "float32", [GGUF_VTYPE_BOOL] = "bool",
    [GGUF_VTYPE_STRING] = "string",   [GGUF_VTYPE_ARRAY] = "array",
    [GGUF_VTYPE_UINT64] = "uint64",   [GGUF_VTYPE_INT64] = "int64",
    [GGUF_VTYPE_FLOAT64] = "float64",
};

/* ggml type ids this engine does not implement, named so the error says what the file is. */
static const char *const unsupported_qtype_names[] = {
    [4] = "Q4_2",     [5] = "Q4_3",     [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
    [19] = "IQ1_S",   [20] = "IQ4_NL",  [21] = "IQ3_S",   [22] = "IQ2_S",  [23] = "IQ4_XS",
    [24] = "I8",      [25] = "I16",     [26] = "I32",     [27] = "I64",    [28] = "F64",
    [29] = "IQ1_M",
};

const char *gguf_strerror(int err)
{
    switch (err) {
    case GGUF_OK: return "success";
    case GGUF_E_IO: return "I/O error";
    case GGUF_E_MAGIC: return "not a GGUF file";
    case GGUF_E_VERSION: return "unsupported GGUF version";
    case GGUF_E_TRUNCATED: return "file truncated";
    case GGUF_E_LIMIT: return "count or length beyond limits";
    case GGUF_E_TYPE: return "bad or unexpected type";
    case GGUF_E_SHAPE: return "bad tensor shape";
    case GGUF_E_OFFSET: return "bad tensor data offset";
    case GGUF_E_DUPLICATE: return "duplicate key or tensor name";
    case GGUF_E_ALIGNMENT: return "bad alignment";
    case GGUF_E_NOMEM: return "out of memory";
    case GGUF_E_NOTFOUND: return "not found";
    default: return "unknown GGUF error";
    }
}

const char *gguf_vtype_name(enum gguf_vtype t)
{
    return (unsigned)t < GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

/* ---- small helpers ---- */

static uint64_t load_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static unsigned utf8_seq(const uint8_t *s, uint64_t n)
{
    uint8_t c = s[0];
    unsigned len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
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
        return 0;
    }
    if (n < len)
        return 0;
    for (unsigned k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return len;
}

static bool utf8_valid(const uint8_t *s, uint64_t n)
{
    uint64_t i = 0;
    while (i < n) {
        unsigned k = utf8_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* Write bytes for a one-line message: printable ASCII and valid UTF-8 as they are, anything
 * else (and quote/backslash) escaped; cut at about `max` bytes with "...". Always terminates. */
static void escape_bytes(char *dst, size_t cap, const void *src, uint64_t n, size_t max)
{
    const uint8_t *s = src;
    size_t o = 0;
    if (!cap)
        return;
    for (uint64_t i = 0; i < n;) {
        char tmp[8];
        size_t tl;
        unsigned k = utf8_seq(s + i, n - i);
        if (k == 1 && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' && s[i] != '\\') {
            tmp[0] = (char)s[i];
            tl = 1;
        } else if (k > 1) {
            memcpy(tmp, s + i, k);
            tl = k;
        } else {
            k = 1;
            tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
        }
        if (o + tl + 4 > cap || o + tl > max) {
            if (o + 4 <= cap) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(dst + o, tmp, tl);
        o += tl;
        i += k;
    }
    dst[o] = 0;
}

static __attribute__((format(printf, 3, 4))) int fail(struct parser *p, int code,
                                                      const char *fmt, ...)
{
    if (p->errbuf && p->errlen) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(p->errbuf, p->errlen, "%s: %s: %s", p->name, p->field, msg);
    }
    return code;
}

/* The same with a sub-field appended to the current field: "tensor 'x' ne[1]: ...". */
static __attribute__((format(printf, 4, 5))) int fail_sub(struct parser *p, const char *sub,
                                                          int code, const char *fmt, ...)
{
    if (p->errbuf && p->errlen) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(p->errbuf, p->errlen, "%s: %s %s: %s", p->name, p->field, sub, msg);
    }
    return code;
}

static __attribute__((format(printf, 2, 3))) void set_field(struct parser *p, const char *fmt,
                                                            ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->field, sizeof(p->field), fmt, ap);
    va_end(ap);
}

static void set_field_kv(struct parser *p, uint64_t i, const void *key, uint64_t len)
{
    char esc[100];
    escape_bytes(esc, sizeof(esc), key, len, 80);
    set_field(p, "kv[%llu] '%s'", (unsigned long long)i, esc);
}

static void set_field_tensor(struct parser *p, const void *name, uint64_t len)
{
    char esc[100];
    escape_bytes(esc, sizeof(esc), name, len, 80);
    set_field(p, "tensor '%s'", esc);
}

/* ---- arena ---- */

static void *arena_alloc(struct gguf *g, uint64_t n, size_t item)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / item || n * item > SIZE_MAX - sizeof(max_align_t) * 2)
        return NULL;
    size_t bytes = (size_t)(n * item);
    bytes = (bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_block *b = g->arena;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > ARENA_CHUNK / 4 ? bytes : ARENA_CHUNK;
        if (cap > SIZE_MAX - sizeof(*b))
            return NULL;
        struct arena_block *nb = malloc(sizeof(*nb) + cap);
        if (!nb)
            return NULL;
        nb->cap = cap;
        nb->used = 0;
        if (b && cap != ARENA_CHUNK) {
            /* A big one-off block goes behind the current one so its free tail stays usable. */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            g->arena = nb;
        }
        b = nb;
    }
    void *r = (char *)b->mem + b->used;
    b->used += bytes;
    return r;
}

/* ---- hash tables ---- */

static uint64_t hash_bytes(uint64_t seed, const void *p, uint64_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (uint64_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int slots_new(uint64_t n, uint32_t **slots, uint64_t *mask)
{
    uint64_t cap = 8;
    while (cap < n * 2)
        cap *= 2;
    *slots = calloc((size_t)cap, sizeof(uint32_t));
    *mask = cap - 1;
    return *slots ? 0 : GGUF_E_NOMEM;
}

static bool kv_key_eq(const struct gguf *g, uint32_t idx, const void *key, uint64_t len)
{
    const struct gguf_str *k = &g->kv[idx].key;
    return k->len == len && !memcmp(k->ptr, key, len);
}

static bool tensor_name_eq(const struct gguf *g, uint32_t idx, const void *name, uint64_t len)
{
    const char *t = g->tensors[idx].name;
    return !memcmp(t, name, len) && t[len] == 0;
}

/* Index of the entry equal to (key, len), or -1. When absent and `insert` is given, the slot
 * for the new entry `insert - 1` is filled. */
static int64_t slots_find(const struct gguf *g, uint32_t *slots, uint64_t mask,
                          bool (*eq)(const struct gguf *, uint32_t, const void *, uint64_t),
                          const void *key, uint64_t len, uint32_t insert)
{
    if (!slots)
        return -1;
    for (uint64_t h = hash_bytes(g->hash_seed, key, len) & mask;; h = (h + 1) & mask) {
        if (!slots[h]) {
            if (insert)
                slots[h] = insert;
            return -1;
        }
        if (eq(g, slots[h] - 1, key, len))
            return slots[h] - 1;
    }
}

/* ---- primitive reads ---- */

static int need(struct parser *p, uint64_t n, const char *what)
{
    if (p->size - p->pos >= n)
        return 0;
    return fail(p, GGUF_E_TRUNCATED,
                "file ends inside the %s (needs %llu bytes at offset %llu, file is %llu bytes)",
                what, (unsigned long long)n, (unsigned long long)p->pos,
                (unsigned long long)p->size);
}

static int rd_u32(struct parser *p, uint32_t *v, const char *what)
{
    int rc = need(p, 4, what);
    if (rc)
        return rc;
    *v = (uint32_t)load_le(p->p + p->pos, 4);
    p->pos += 4;
    return 0;
}

static int rd_u64(struct parser *p, uint64_t *v, const char *what)
{
    int rc = need(p, 8, what);
    if (rc)
        return rc;
    *v = load_le(p->p + p->pos, 8);
    p->pos += 8;
    return 0;
}

/* `count` items of at least `min_bytes` each must fit in the bytes left. A count that not even
 * the whole file could hold is a LIMIT error, one cut short by the end of file TRUNCATED. */
static int check_count(struct parser *p, uint64_t count, uint64_t min_bytes, const char *what)
{
    uint64_t left = p->size - p->pos;
    if (count <= left / min_bytes)
        return 0;
    if (count > p->size / min_bytes)
        return fail(p, GGUF_E_LIMIT, "%s %llu exceeds what a %llu-byte file can hold", what,
                    (unsigned long long)count, (unsigned long long)p->size);
    return fail(p, GGUF_E_TRUNCATED,
                "%s %llu needs at least %llu bytes at offset %llu, file is %llu bytes",
                what, (unsigned long long)count, (unsigned long long)(count * min_bytes),
                (unsigned long long)p->pos, (unsigned long long)p->size);
}

static int rd_str(struct parser *p, struct gguf_str *s, const char *what)
{
    uint64_t len;
    int rc = rd_u64(p, &len, what);
    if (rc)
        return rc;
    if (len > p->size - p->pos) {
        if (len > p->size)
            return fail(p, GGUF_E_LIMIT, "%s length %llu exceeds what a %llu-byte file can hold",
                        what, (unsigned long long)len, (unsigned long long)p->size);
        return fail(p, GGUF_E_TRUNCATED,
                    "file ends inside the %s (%llu bytes at offset %llu, file is %llu bytes)",
                    what, (unsigned long long)len, (unsigned long long)p->pos,
                    (unsigned long long)p->size);
    }
    s->ptr = (const char *)p->p + p->pos;
    s->len = len;
    p->pos += len;
    return 0;
}

/* ---- values ---- */

static void decode_scalar(enum gguf_vtype t, const uint8_t *b, struct gguf_value *out)
{
    uint64_t raw = load_le(b, vtype_size[t]);
    out->type = t;
    switch (t) {
    case GGUF_VTYPE_INT8: out->v.i64 = (int8_t)(uint8_t)raw; break;
    case GGUF_VTYPE_INT16: out->v.i64 = (int16_t)(uint16_t)raw; break;
    case GGUF_VTYPE_INT32: out->v.i64 = (int32_t)(uint32_t)raw; break;
    case GGUF_VTYPE_INT64: out->v.i64 = (int64_t)raw; break;
    case GGUF_VTYPE_FLOAT32: {
        uint32_t w = (uint32_t)raw;
        float f;
        memcpy(&f, &w, 4);
        out->v.f64 = f;
        break;
    }
    case GGUF_VTYPE_FLOAT64: memcpy(&out->v.f64, &raw, 8); break;
    default: out->v.u64 = raw; break;   /* unsigned and bool */
    }
}

static int parse_value(struct parser *p, uint32_t type, struct gguf_value *out, unsigned depth);

static int parse_array(struct parser *p, struct gguf_value *out, unsigned depth)
{
    uint32_t et;
    uint64_t n;
    int rc;
    if ((rc = rd_u32(p, &et, "array element type")) || (rc = rd_u64(p, &n, "array count")))
        return rc;
    if (et >= GGUF_VTYPE_COUNT)
        return fail(p, GGUF_E_TYPE, "unknown array element type %u", et);
    out->type = GGUF_VTYPE_ARRAY;
    out->v.arr.type = (enum gguf_vtype)et;
    out->v.arr.n = n;
    out->v.arr.data = p->p + p->pos;
    out->v.arr.strs = NULL;
    out->v.arr.arrs = NULL;
    if (et == GGUF_VTYPE_STRING) {
        if ((rc = check_count(p, n, MIN_STRING_BYTES, "string array count")))
            return rc;
        struct gguf_str *strs = arena_alloc(p->g, n, sizeof(*strs));
        if (n && !strs)
            return fail(p, GGUF_E_NOMEM, "out of memory for %llu strings", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if ((rc = rd_str(p, &strs[i], "array string")))
                return rc;
        out->v.arr.strs = strs;
        return 0;
    }
    if (et == GGUF_VTYPE_ARRAY) {
        if (depth + 1 > GGUF_MAX_ARRAY_DEPTH)
            return fail(p, GGUF_E_LIMIT, "arrays nested deeper than %d levels",
                        GGUF_MAX_ARRAY_DEPTH);
        if ((rc = check_count(p, n, MIN_ARRAY_BYTES, "nested array count")))
            return rc;
        struct gguf_value *arrs = arena_alloc(p->g, n, sizeof(*arrs));
        if (n && !arrs)
            return fail(p, GGUF_E_NOMEM, "out of memory for %llu arrays", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if ((rc = parse_array(p, &arrs[i], depth + 1)))
                return rc;
        out->v.arr.arrs = arrs;
        return 0;
    }
    if ((rc = check_count(p, n, vtype_size[et], "array count")))
        return rc;
    if (et == GGUF_VTYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            uint8_t b = p->p[p->pos + i];
            if (b > 1)
                return fail(p, GGUF_E_TYPE, "array element %llu: bool value %u (must be 0 or 1)",
                            (unsigned long long)i, b);
        }
    }
    p->pos += n * vtype_size[et];
    return 0;
}

/* depth = number of enclosing arrays. */
static int parse_value(struct parser *p, uint32_t type, struct gguf_value *out, unsigned depth)
{
    int rc;
    if (type >= GGUF_VTYPE_COUNT)
        return fail(p, GGUF_E_TYPE, "unknown value type %u", type);
    if (type == GGUF_VTYPE_STRING) {
        out->type = GGUF_VTYPE_STRING;
        return rd_str(p, &out->v.str, "string value");
    }
    if (type == GGUF_VTYPE_ARRAY)
        return parse_array(p, out, depth + 1);
    if ((rc = need(p, vtype_size[type], "value")))
        return rc;
    decode_scalar((enum gguf_vtype)type, p->p + p->pos, out);
    if (type == GGUF_VTYPE_BOOL && out->v.u64 > 1)
        return fail(p, GGUF_E_TYPE, "bool value %llu (must be 0 or 1)",
                    (unsigned long long)out->v.u64);
    p->pos += vtype_size[type];
    return 0;
}

/* ---- known keys ---- */

enum key_kind {
    KIND_STRING,
    KIND_U32,
    KIND_INT,          /* any integer type */
    KIND_INT_OR_ARR,   /* integer, or array of integers (per-layer values) */
    KIND_FLOAT,        /* float32 or float64 */
    KIND_BOOL,
    KIND_ARR_STRING,
    KIND_ARR_F32,
    KIND_ARR_I32,
};

static const struct known_key {
    const char *key;   /* a leading '.' means "<general.architecture>" + key */
    enum key_kind kind;
} known_keys[] = {
    {"general.architecture", KIND_STRING},
    {"general.alignment", KIND_U32},
    {"general.name", KIND_STRING},
    {"general.file_type", KIND_INT},
    {"general.quantization_version", KIND_INT},
    {"tokenizer.ggml.model", KIND_STRING},
    {"tokenizer.ggml.pre", KIND_STRING},
    {"tokenizer.ggml.tokens", KIND_ARR_STRING},
    {"tokenizer.ggml.scores", KIND_ARR_F32},
    {"tokenizer.ggml.token_type", KIND_ARR_I32},
    {"tokenizer.ggml.merges", KIND_ARR_STRING},
    {"tokenizer.ggml.bos_token_id", KIND_INT},
    {"tokenizer.ggml.eos_token_id", KIND_INT},
    {"tokenizer.ggml.unknown_token_id", KIND_INT},
    {"tokenizer.ggml.padding_token_id", KIND_INT},
    {"tokenizer.ggml.add_bos_token", KIND_BOOL},
    {"tokenizer.ggml.add_eos_token", KIND_BOOL},
    {"tokenizer.chat_template", KIND_STRING},
    {".context_length", KIND_INT},
    {".embedding_length", KIND_INT},
    {".block_count", KIND_INT},
    {".feed_forward_length", KIND_INT_OR_ARR},
    {".attention.head_count", KIND_INT_OR_ARR},
    {".attention.head_count_kv", KIND_INT_OR_ARR},
    {".vocab_size", KIND_INT},
    {".expert_count", KIND_INT},
    {".expert_used_count", KIND_INT},
    {".rope.dimension_count", KIND_INT},
};

static bool is_int_type(enum gguf_vtype t)
{
    return t <= GGUF_VTYPE_INT32 || t == GGUF_VTYPE_UINT64 || t == GGUF_VTYPE_INT64;
}

static bool kind_ok(enum key_kind k, const struct gguf_value *v)
{
    bool arr = v->type == GGUF_VTYPE_ARRAY;
    switch (k) {
    case KIND_STRING: return v->type == GGUF_VTYPE_STRING;
    case KIND_U32: return v->type == GGUF_VTYPE_UINT32;
    case KIND_INT: return is_int_type(v->type);
    case KIND_INT_OR_ARR: return is_int_type(v->type) || (arr && is_int_type(v->v.arr.type));
    case KIND_FLOAT: return v->type == GGUF_VTYPE_FLOAT32 || v->type == GGUF_VTYPE_FLOAT64;
    case KIND_BOOL: return v->type == GGUF_VTYPE_BOOL;
    case KIND_ARR_STRING: return arr && v->v.arr.type == GGUF_VTYPE_STRING;
    case KIND_ARR_F32: return arr && v->v.arr.type == GGUF_VTYPE_FLOAT32;
    case KIND_ARR_I32: return arr && v->v.arr.type == GGUF_VTYPE_INT32;
    }
    return false;
}

static const char *kind_name(enum key_kind k)
{
    switch (k) {
    case KIND_STRING: return "string";
    case KIND_U32: return "uint32";
    case KIND_INT: return "an integer type";
    case KIND_INT_OR_ARR: return "an integer type or an array of integers";
    case KIND_FLOAT: return "float32 or float64";
    case KIND_BOOL: return "bool";
    case KIND_ARR_STRING: return "array of string";
    case KIND_ARR_F32: return "array of float32";
    case KIND_ARR_I32: return "array of int32";
    }
    return "?";
}

static int check_known_keys(struct parser *p)
{
    struct gguf *g = p->g;
    const struct gguf_value *arch = gguf_get(g, "general.architecture");
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
        const struct known_key *k = &known_keys[i];
        char key[300];
        if (k->key[0] == '.') {
            if (!arch || arch->type != GGUF_VTYPE_STRING || arch->v.str.len > 200)
                continue;
            snprintf(key, sizeof(key), "%.*s%s", (int)arch->v.str.len, arch->v.str.ptr, k->key);
        } else {
            snprintf(key, sizeof(key), "%s", k->key);
        }
        int64_t idx = slots_find(g, g->kv_slots, g->kv_mask, kv_key_eq, key, strlen(key), 0);
        if (idx < 0)
            continue;
        const struct gguf_value *v = &g->kv[idx].value;
        if (kind_ok(k->kind, v))
            continue;
        set_field_kv(p, (uint64_t)idx, key, strlen(key));
        if (v->type == GGUF_VTYPE_ARRAY)
            return fail(p, GGUF_E_TYPE, "wrong type (array of %s, must be %s)",
                        gguf_vtype_name(v->v.arr.type), kind_name(k->kind));
        return fail(p, GGUF_E_TYPE, "wrong type (%s, must be %s)", gguf_vtype_name(v->type),
                    kind_name(k->kind));
    }
    return 0;
}

static int check_alignment(struct parser *p)
{
    struct gguf *g = p->g;
    int64_t idx = slots_find(g, g->kv_slots, g->kv_mask, kv_key_eq, "general.alignment", 17, 0);
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (idx < 0)
        return 0;
    const struct gguf_value *v = &g->kv[idx].value;
    set_field_kv(p, (uint64_t)idx, "general.alignment", 17);
    if (v->type != GGUF_VTYPE_UINT32)
        return fail(p, GGUF_E_TYPE, "wrong type (%s, must be uint32)", gguf_vtype_name(v->type));
    if (!is_pow2(v->v.u64))
        return fail(p, GGUF_E_ALIGNMENT, "alignment %llu is not a power of two",
                    (unsigned long long)v->v.u64);
    if (v->v.u64 > GGUF_MAX_ALIGNMENT)
        return fail(p, GGUF_E_ALIGNMENT, "alignment %llu exceeds the maximum %d",
                    (unsigned long long)v->v.u64, GGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)v->v.u64;
    return 0;
}

/* ---- header sections ---- */

static int parse_header(struct parser *p)
{
    struct gguf *g = p->g;
    int rc;
    set_field(p, "header");
    if (p->size < 4)
        return fail(p, GGUF_E_TRUNCATED, "file is %llu bytes, too short for a GGUF header",
                    (unsigned long long)p->size);
    if (memcmp(p->p, "GGUF", 4)) {
        char esc[32];
        escape_bytes(esc, sizeof(esc), p->p, 4, 20);
        return fail(p, GGUF_E_MAGIC, "not a GGUF file (magic '%s', expected 'GGUF')", esc);
    }
    p->pos = 4;
    if ((rc = rd_u32(p, &g->version, "version")))
        return rc;
    if (g->version != 2 && g->version != 3) {
        uint32_t v = g->version;
        uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
        if (swapped == 2 || swapped == 3)
            return fail(p, GGUF_E_VERSION,
                        "big-endian GGUF files are not supported (version field 0x%08x)", v);
        return fail(p, GGUF_E_VERSION, "version %u is not supported (must be 2 or 3)", v);
    }
    if ((rc = rd_u64(p, &g->n_tensors, "tensor count")) ||
        (rc = rd_u64(p, &g->n_kv, "kv count")))
        return rc;
    /* Bound both counts by what the rest of the file can hold before allocating. */
    uint64_t left = p->size - p->pos;
    if (g->n_tensors > p->size / MIN_TENSOR_INFO_BYTES || g->n_tensors > MAX_COUNT)
        return fail(p, GGUF_E_LIMIT, "tensor count %llu exceeds what a %llu-byte file can hold",
                    (unsigned long long)g->n_tensors, (unsigned long long)p->size);
    if (g->n_kv > p->size / MIN_KV_BYTES || g->n_kv > MAX_COUNT)
        return fail(p, GGUF_E_LIMIT, "kv count %llu exceeds what a %llu-byte file can hold",
                    (unsigned long long)g->n_kv, (unsigned long long)p->size);
    uint64_t min_bytes = g->n_tensors * MIN_TENSOR_INFO_BYTES + g->n_kv * MIN_KV_BYTES;
    if (min_bytes > left)
        return fail(p, GGUF_E_TRUNCATED,
                    "file ends before %llu kv pairs and %llu tensor infos (they need at least "
                    "%llu bytes, %llu are left)",
                    (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors,
                    (unsigned long long)min_bytes, (unsigned long long)left);
    return 0;
}

static int parse_kvs(struct parser *p)
{
    struct gguf *g = p->g;
    int rc;
    if (g->n_kv) {
        g->kv = calloc((size_t)g->n_kv, sizeof(*g->kv));
        if (!g->kv)
            return fail(p, GGUF_E_NOMEM, "out of memory for %llu kv pairs",
                        (unsigned long long)g->n_kv);
    }
    if (slots_new(g->n_kv, &g->kv_slots, &g->kv_mask))
        return fail(p, GGUF_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        struct gguf_kv *kv = &g->kv[i];
        uint32_t type;
        set_field(p, "kv[%llu]", (unsigned long long)i);
        if ((rc = rd_str(p, &kv->key, "key")))
            return rc;
        if (kv->key.len == 0)
            return fail(p, GGUF_E_LIMIT, "empty key");
        set_field_kv(p, i, kv->key.ptr, kv->key.len);
        if (kv->key.len > MAX_KEY_LEN)
            return fail(p, GGUF_E_LIMIT, "key length %llu exceeds %u bytes",
                        (unsigned long long)kv->key.len, MAX_KEY_LEN);
        if (!utf8_valid((const uint8_t *)kv->key.ptr, kv->key.len))
            return fail(p, GGUF_E_TYPE, "key is not valid UTF-8");
        if (memchr(kv->key.ptr, 0, (size_t)kv->key.len))
            return fail(p, GGUF_E_TYPE, "key contains a NUL byte");
        int64_t dup = slots_find(g, g->kv_slots, g->kv_mask, kv_key_eq, kv->key.ptr,
                                 kv->key.len, (uint32_t)i + 1);
        if (dup >= 0)
            return fail(p, GGUF_E_DUPLICATE, "duplicate key (first at kv[%lld])", (long long)dup);
        if ((rc = rd_u32(p, &type, "value type")) || (rc = parse_value(p, type, &kv->value, 0)))
            return rc;
    }
    if ((rc = check_alignment(p)))
        return rc;
    return check_known_keys(p);
}

static int parse_tensor_info(struct parser *p, uint64_t i)
{
    struct gguf *g = p->g;
    struct gguf_tensor *t = &g->tensors[i];
    struct gguf_str name;
    uint32_t type;
    int rc;
    set_field(p, "tensor[%llu]", (unsigned long long)i);
    if ((rc = rd_str(p, &name, "tensor name")))
        return rc;
    if (name.len == 0)
        return fail(p, GGUF_E_LIMIT, "empty tensor name");
    set_field_tensor(p, name.ptr, name.len);
    if (name.len > GGUF_MAX_NAME)
        return fail(p, GGUF_E_LIMIT, "name length %llu exceeds %d bytes",
                    (unsigned long long)name.len, GGUF_MAX_NAME);
    if (memchr(name.ptr, 0, (size_t)name.len))
        return fail(p, GGUF_E_TYPE, "name contains a NUL byte");
    char *copy = arena_alloc(g, name.len + 1, 1);
    if (!copy)
        return fail(p, GGUF_E_NOMEM, "out of memory");
    memcpy(copy, name.ptr, (size_t)name.len);
    copy[name.len] = 0;
    t->name = copy;
    int64_t dup = slots_find(g, g->t_slots, g->t_mask, tensor_name_eq, name.ptr, name.len,
                             (uint32_t)i + 1);
    if (dup >= 0)
        return fail(p, GGUF_E_DUPLICATE, "duplicate tensor name (first at tensor[%lld])",
                    (long long)dup);

    if ((rc = rd_u32(p, &t->n_dims, "n_dims")))
        return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return fail_sub(p, "n_dims", GGUF_E_SHAPE, "%u is out of range (must be 1..%d)",
                        t->n_dims, GGUF_MAX_DIMS);
    int64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        char sub[8];
        snprintf(sub, sizeof(sub), "ne[%u]", d);
        if (d < t->n_dims && (rc = rd_u64(p, &ne, "dimensions")))
            return rc;
        if (ne == 0)
            return fail_sub(p, sub, GGUF_E_SHAPE, "dimension is 0 (must be >= 1)");
        if (ne > INT64_MAX)
            return fail_sub(p, sub, GGUF_E_SHAPE, "dimension %llu exceeds INT64_MAX",
                            (unsigned long long)ne);
        if ((uint64_t)nel > (uint64_t)INT64_MAX / ne)
            return fail_sub(p, sub, GGUF_E_SHAPE, "element count overflows int64 (product so far %lld x %llu)",
                            (long long)nel, (unsigned long long)ne);
        nel *= (int64_t)ne;
        t->ne[d] = (int64_t)ne;
    }
    if ((rc = rd_u32(p, &type, "tensor type")))
        return rc;
    const struct qtype_traits *tr = type < QTYPE_COUNT ? quant_traits((int)type) : NULL;
    if (!tr) {
        const char *known = type < sizeof(unsupported_qtype_names) / sizeof(char *)
                                ? unsupported_qtype_names[type]
                                : NULL;
        if (known)
            return fail_sub(p, "type", GGUF_E_TYPE, "unsupported tensor type %u (%s)", type,
                            known);
        return fail_sub(p, "type", GGUF_E_TYPE, "unknown tensor type %u", type);
    }
    t->type = (enum qtype)type;
    if (t->ne[0] % tr->block_size)
        return fail_sub(p, "ne[0]", GGUF_E_SHAPE,
                        "row length %lld is not a multiple of the %s block size %lld",
                        (long long)t->ne[0], tr->name, (long long)tr->block_size);
    /* bytes = blocks per row * block bytes * rows; each step checked */
    uint64_t bytes = (uint64_t)(t->ne[0] / tr->block_size);
    uint64_t rows = (uint64_t)(nel / t->ne[0]);
    if (bytes > UINT64_MAX / tr->type_size || bytes * tr->type_size > UINT64_MAX / rows ||
        bytes * tr->type_size * rows > (uint64_t)INT64_MAX)
        return fail_sub(p, "shape", GGUF_E_SHAPE, "size in bytes overflows (%lld elements of %s)",
                        (long long)nel, tr->name);
    t->size = bytes * tr->type_size * rows;
    if ((rc = rd_u64(p, &t->offset, "data offset")))
        return rc;
    return 0;
}

struct span {
    uint64_t start, end;
    uint32_t idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int check_tensor_data(struct parser *p)
{
    struct gguf *g = p->g;
    int rc = 0;
    struct span *spans = NULL;
    set_field(p, "data section");
    uint64_t a = g->alignment;
    uint64_t pad = (a - p->pos % a) % a;
    if (p->pos > UINT64_MAX - pad)
        return fail(p, GGUF_E_OFFSET, "start overflows");
    g->data_offset = p->pos + pad;
    if (!g->n_tensors)
        return 0;
    if (g->data_offset > p->size)
        return fail(p, GGUF_E_TRUNCATED,
                    "file ends at %llu bytes, before the data section at offset %llu",
                    (unsigned long long)p->size, (unsigned long long)g->data_offset);
    uint64_t data_size = p->size - g->data_offset;
    spans = malloc((size_t)g->n_tensors * sizeof(*spans));
    if (!spans)
        return fail(p, GGUF_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        set_field_tensor(p, t->name, strlen(t->name));
        if (t->offset % a) {
            rc = fail_sub(p, "offset", GGUF_E_OFFSET, "%llu is not a multiple of the alignment %llu",
                          (unsigned long long)t->offset, (unsigned long long)a);
            goto out;
        }
        if (t->offset >= data_size) {
            rc = fail_sub(p, "offset", GGUF_E_OFFSET,
                          "%llu is past the end of the file (data section holds %llu bytes)",
                          (unsigned long long)t->offset, (unsigned long long)data_size);
            goto out;
        }
        if (t->size > data_size - t->offset) {
            rc = fail_sub(p, "data", GGUF_E_TRUNCATED,
                          "%llu bytes at offset %llu run past the end of the file (data section "
                          "holds %llu bytes)",
                          (unsigned long long)t->size, (unsigned long long)t->offset,
                          (unsigned long long)data_size);
            goto out;
        }
        t->data = p->p + g->data_offset + t->offset;
        spans[i] = (struct span){t->offset, t->offset + t->size, (uint32_t)i};
    }
    qsort(spans, (size_t)g->n_tensors, sizeof(*spans), cmp_span);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const struct span *prev = &spans[i - 1], *cur = &spans[i];
        if (cur->start < prev->end) {
            const struct gguf_tensor *t = &g->tensors[cur->idx];
            char other[100];
            escape_bytes(other, sizeof(other), g->tensors[prev->idx].name,
                         strlen(g->tensors[prev->idx].name), 80);
            set_field_tensor(p, t->name, strlen(t->name));
            rc = fail_sub(p, "data", GGUF_E_OFFSET, "[%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
                      (unsigned long long)cur->start, (unsigned long long)cur->end, other,
                      (unsigned long long)prev->start, (unsigned long long)prev->end);
            goto out;
        }
    }
out:
    free(spans);
    return rc;
}

static int parse(struct parser *p)
{
    struct gguf *g = p->g;
    int rc;
    if ((rc = parse_header(p)) || (rc = parse_kvs(p)))
        return rc;
    if (g->n_tensors) {
        g->tensors = calloc((size_t)g->n_tensors, sizeof(*g->tensors));
        if (!g->tensors)
            return fail(p, GGUF_E_NOMEM, "out of memory for %llu tensors",
                        (unsigned long long)g->n_tensors);
    }
    if (slots_new(g->n_tensors, &g->t_slots, &g->t_mask))
        return fail(p, GGUF_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((rc = parse_tensor_info(p, i)))
            return rc;
    return check_tensor_data(p);
}

static int open_common(struct gguf **out, struct gguf *g, const char *name, char *errbuf,
                       size_t errlen)
{
    struct parser p = {.g = g, .p = g->base, .size = g->size, .errbuf = errbuf,
                       .errlen = errlen};
    int rc;
    /* The heap address varies with ASLR; spread over 64 bits with the splitmix64 finalizer. */
    uint64_t seed = (uint64_t)(uintptr_t)g ^ 0x9e3779b97f4a7c15ull;
    seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ull;
    seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebull;
    g->hash_seed = seed ^ (seed >> 31);
    escape_bytes(p.name, sizeof(p.name), name, strlen(name), 180);
    size_t nl = strlen(name);
    g->path = malloc(nl + 1);
    if (!g->path) {
        set_field(&p, "open");
        rc = fail(&p, GGUF_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(g->path, name, nl + 1);
    rc = parse(&p);
out:
    if (rc) {
        gguf_close(g);
        return rc;
    }
    if (errbuf && errlen)
        errbuf[0] = 0;
    *out = g;
    return 0;
}

int gguf_open_buffer(struct gguf **out, const void *data, size_t size, const char *name,
                     char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!name)
        name = "(buffer)";
    struct gguf *g = calloc(1, sizeof(*g));
    if (!g) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "%s: open: out of memory", name);
        return GGUF_E_NOMEM;
    }
    g->base = data;
    g->size = data ? size : 0;
    return open_common(out, g, name, errbuf, errlen);
}

static int io_fail(const char *path, const char *what, const char *why, char *errbuf,
                   size_t errlen)
{
    if (errbuf && errlen) {
        char esc[200];
        escape_bytes(esc, sizeof(esc), path, strlen(path), 180);
        snprintf(errbuf, errlen, "%s: %s: %s", esc, what, why);
    }
    return GGUF_E_IO;
}

int gguf_open(struct gguf **out, const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    void *map = NULL;
    int rc;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(path, "open", strerror(errno), errbuf, errlen);
    if (fstat(fd, &st) < 0) {
        rc = io_fail(path, "stat", strerror(errno), errbuf, errlen);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = io_fail(path, "open", "not a regular file", errbuf, errlen);
        goto out;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = io_fail(path, "open", "file too large to map", errbuf, errlen);
        goto out;
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = io_fail(path, "mmap", strerror(errno), errbuf, errlen);
            goto out;
        }
    }
    struct gguf *g = calloc(1, sizeof(*g));
    if (!g) {
        rc = io_fail(path, "open", "out of memory", errbuf, errlen);
        rc = GGUF_E_NOMEM;
        goto out;
    }
    g->base = map;
    g->size = (uint64_t)st.st_size;
    g->map = map;
    g->map_len = (size_t)st.st_size;
    map = NULL;   /* owned by g now, unmapped by gguf_close on failure */
    rc = open_common(out, g, path, errbuf, errlen);
out:
    if (map)
        munmap(map, (size_t)st.st_size);
    close(fd);
    return rc;
}

void gguf_close(struct gguf *g)
{
    if (!g)
        return;
    while (g->arena) {
        struct arena_block *next = g->arena->next;
        free(g->arena);
        g->arena = next;
    }
    free(g->kv);
    free(g->tensors);
    free(g->kv_slots);
    free(g->t_slots);
    free(g->path);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g);
}

/* ---- accessors ---- */

uint32_t gguf_version(const struct gguf *g) { return g->version; }
uint32_t gguf_alignment(const struct gguf *g) { return g->alignment; }
uint64_t gguf_data_offset(const struct gguf *g) { return g->data_offset; }
uint64_t gguf_file_size(const struct gguf *g) { return g->size; }
const char *gguf_path(const struct gguf *g) { return g->path; }
uint64_t gguf_kv_count(const struct gguf *g) { return g->n_kv; }
uint64_t gguf_tensor_count(const struct gguf *g) { return g->n_tensors; }

struct gguf_str gguf_kv_key(const struct gguf *g, uint64_t i)
{
    if (i >= g->n_kv)
        return (struct gguf_str){NULL, 0};
    return g->kv[i].key;
}

const struct gguf_value *gguf_kv_value(const struct gguf *g, uint64_t i)
{
    return i < g->n_kv ? &g->kv[i].value : NULL;
}

const struct gguf_value *gguf_get(const struct gguf *g, const char *key)
{
    if (!g || !key)
        return NULL;
    int64_t idx = slots_find(g, g->kv_slots, g->kv_mask, kv_key_eq, key, strlen(key), 0);
    return idx < 0 ? NULL : &g->kv[idx].value;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
    if (!g || !name)
        return NULL;
    int64_t idx = slots_find(g, g->t_slots, g->t_mask, tensor_name_eq, name, strlen(name), 0);
    return idx < 0 ? NULL : &g->tensors[idx];
}

int64_t gguf_tensor_nelements(const struct gguf_tensor *t)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims && d < GGUF_MAX_DIMS; d++)
        n *= t->ne[d];   /* validated at open: cannot overflow */
    return n;
}

static bool is_unsigned_type(enum gguf_vtype t)
{
    return t == GGUF_VTYPE_UINT8 || t == GGUF_VTYPE_UINT16 || t == GGUF_VTYPE_UINT32 ||
           t == GGUF_VTYPE_UINT64;
}

/* Integer value as a (sign, magnitude) pair, so every width compares exactly. */
static int get_int(const struct gguf *g, const char *key, bool *neg, uint64_t *mag)
{
    const struct gguf_value *v = gguf_get(g, key);
    if (!v)
        return GGUF_E_NOTFOUND;
    if (!is_int_type(v->type))
        return GGUF_E_TYPE;
    if (is_unsigned_type(v->type)) {
        *neg = false;
        *mag = v->v.u64;
    } else {
        *neg = v->v.i64 < 0;
        *mag = *neg ? (uint64_t)0 - (uint64_t)v->v.i64 : (uint64_t)v->v.i64;
    }
    return 0;
}

int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = get_int(g, key, &neg, &mag);
    if (rc)
        return rc;
    if (neg || mag > UINT32_MAX)
        return GGUF_E_TYPE;
    *out = (uint32_t)mag;
    return 0;
}

int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = get_int(g, key, &neg, &mag);
    if (rc)
        return rc;
    if (neg)
        return GGUF_E_TYPE;
    *out = mag;
    return 0;
}

int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = get_int(g, key, &neg, &mag);
    if (rc)
        return rc;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return GGUF_E_TYPE;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int gguf_get_f32(const struct gguf *g, const char *key, float *out)
{
    const struct gguf_value *v = gguf_get(g, key);
    if (!v)
        return GGUF_E_NOTFOUND;
    if (v->type != GGUF_VTYPE_FLOAT32 && v->type != GGUF_VTYPE_FLOAT64)
        return GGUF_E_TYPE;
    *out = (float)v->v.f64;
    return 0;
}

int gguf_get_bool(const struct gguf *g, const char *key, bool *out)
{
    const struct gguf_value *v = gguf_get(g, key);
    if (!v)
        return GGUF_E_NOTFOUND;
    if (v->type != GGUF_VTYPE_BOOL)
        return GGUF_E_TYPE;
    *out = v->v.u64 != 0;
    return 0;
}

int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out)
{
    const struct gguf_value *v = gguf_get(g, key);
    if (!v)
        return GGUF_E_NOTFOUND;
    if (v->type != GGUF_VTYPE_STRING)
        return GGUF_E_TYPE;
    *out = v->v.str;
    return 0;
}

/* Element i of a fixed-size array as a scalar value; false if not such an array. */
static bool arr_elem(const struct gguf_value *arr, uint64_t i, struct gguf_value *out)
{
    if (!arr || arr->type != GGUF_VTYPE_ARRAY || i >= arr->v.arr.n)
        return false;
    enum gguf_vtype t = arr->v.arr.type;
    if ((unsigned)t >= GGUF_VTYPE_COUNT || !vtype_size[t] || !arr->v.arr.data)
        return false;
    decode_scalar(t, (const uint8_t *)arr->v.arr.data + i * vtype_size[t], out);
    return true;
}

float gguf_arr_f32(const struct gguf_value *arr, uint64_t i)
{
    struct gguf_value v;
    if (!arr_elem(arr, i, &v))
        return 0.0f;
    if (v.type == GGUF_VTYPE_FLOAT32 || v.type == GGUF_VTYPE_FLOAT64)
        return (float)v.v.f64;
    if (is_unsigned_type(v.type) || v.type == GGUF_VTYPE_BOOL)
        return (float)v.v.u64;
    return (float)v.v.i64;
}

int64_t gguf_arr_i64(const struct gguf_value *arr, uint64_t i)
{
    struct gguf_value v;
    if (!arr_elem(arr, i, &v))
        return 0;
    if (v.type == GGUF_VTYPE_FLOAT32 || v.type == GGUF_VTYPE_FLOAT64) {
        /* Truncated toward zero; NaN and out-of-range values saturate instead of being UB. */
        if (!(v.v.f64 == v.v.f64))
            return 0;
        if (v.v.f64 >= 9223372036854775807.0)
            return INT64_MAX;
        if (v.v.f64 <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)v.v.f64;
    }
    if (is_unsigned_type(v.type) || v.type == GGUF_VTYPE_BOOL)
        return v.v.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v.v.u64;
    return v.v.i64;
}

const char *gguf_file_type_name(const struct gguf *g)
{
    static const char *names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0",
        [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L",
        [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
        [32] = "BF16",
    };
    uint32_t ft;
    if (gguf_get_u32(g, "general.file_type", &ft) == 0 && ft < sizeof(names) / sizeof(names[0]) &&
        names[ft])
        return names[ft];
    if (!gguf_tensor_count(g))
        return "";
    uint64_t bytes[QTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        bytes[t->type] += t->size;
    }
    int best = 0;
    for (int t = 1; t < QTYPE_COUNT; t++)
        if (bytes[t] > bytes[best])
            best = t;
    return quant_traits(best) ? quant_traits(best)->name : "?";
}
