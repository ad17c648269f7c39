/* GGUF reader and writer: fixtures, crafted malformed files, every truncation, round trips. */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"

/* ---- a tiny byte builder for crafted files ---- */

struct bb {
    uint8_t *p;
    size_t len, cap;
};

static void bb_put(struct bb *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bb_le(struct bb *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, t, n);
}

static void bb_u8(struct bb *b, uint8_t v) { bb_le(b, v, 1); }
static void bb_u32(struct bb *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(struct bb *b, uint64_t v) { bb_le(b, v, 8); }
static void bb_f32(struct bb *b, float f)
{
    uint32_t w;
    memcpy(&w, &f, 4);
    bb_u32(b, w);
}
static void bb_str(struct bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_header(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_kv_u32(struct bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    bb_u32(b, GGUF_VTYPE_UINT32);
    bb_u32(b, v);
}
static void bb_kv_str(struct bb *b, const char *key, const char *v)
{
    bb_str(b, key);
    bb_u32(b, GGUF_VTYPE_STRING);
    bb_str(b, v);
}
/* Tensor info with n_dims dims from ne. */
static void bb_tensor(struct bb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                      uint32_t type, uint64_t offset)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, offset);
}
static void bb_pad(struct bb *b, size_t align)
{
    while (b->len % align)
        bb_u8(b, 0);
}
static void bb_fill(struct bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bb_u8(b, (uint8_t)(i * 31 + 7));
}

/* Writes bytes to a file in the test's temp dir and returns its path (static buffer). */
static const char *write_tmp(const char *name, const void *p, size_t n)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f))
        abort();
    return path;
}

/* The error message contract: one line, "PATH: FIELD: problem", naming every needle. */
static void check_msg(int line, const char *err, const char *path, const char *const *needles)
{
    if (strncmp(err, path, strlen(path)) || strncmp(err + strlen(path), ": ", 2))
        test__fail(__FILE__, line, "message does not start with the path: %s", err);
    if (strchr(err, '\n'))
        test__fail(__FILE__, line, "message is not one line: %s", err);
    for (; needles && *needles; needles++)
        if (!strstr(err, *needles))
            test__fail(__FILE__, line, "message lacks \"%s\": %s", *needles, err);
}

/* Open the bytes both as a file (mmap path) and as an exact-size heap buffer (so ASan sees
 * any read past the end); both must fail with `code` and a message naming the needles. */
static void expect_fail(int line, struct bb *b, int code, const char *const *needles)
{
    char err[512] = "";
    struct gguf *g = (struct gguf *)1;
    const char *path = write_tmp("bad.gguf", b->p, b->len);
    int rc = gguf_open(&g, path, err, sizeof(err));
    if (rc != code)
        test__fail(__FILE__, line, "gguf_open: rc %d (%s), expected %d (%s): %s", rc,
                   gguf_strerror(rc), code, gguf_strerror(code), err);
    if (g)
        test__fail(__FILE__, line, "handle not NULL on failure");
    check_msg(line, err, path, needles);
    if (getenv("GGUF_TEST_VERBOSE"))   /* to review the wording of every message */
        fprintf(stderr, "    line %d: %s\n", line, err);

    void *copy = malloc(b->len ? b->len : 1);
    if (b->len)
        memcpy(copy, b->p, b->len);
    rc = gguf_open_buffer(&g, copy, b->len, "buf.gguf", err, sizeof(err));
    if (rc != code)
        test__fail(__FILE__, line, "gguf_open_buffer: rc %d, expected %d: %s", rc, code, err);
    check_msg(line, err, "buf.gguf", needles);
    gguf_close(g);
    free(copy);
    free(b->p);
    *b = (struct bb){0};
}

#define EXPECT_FAIL(b, code, ...) \
    expect_fail(__LINE__, (b), (code), (const char *const[]){__VA_ARGS__, NULL})

static struct gguf *open_ok(struct bb *b)
{
    char err[512] = "";
    struct gguf *g = NULL;
    int rc = gguf_open_buffer(&g, b->p, b->len, "ok.gguf", err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "expected success, got %d: %s", rc, err);
    return g;
}

/* A file with one kv and one F32 tensor [4, 2] at offset 0: the base of most tensor cases. */
static void one_tensor_file(struct bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                            uint64_t offset, size_t data_bytes)
{
    bb_header(b, 3, 1, 1);
    bb_kv_str(b, "general.architecture", "llama");
    bb_tensor(b, "blk.0.attn_q.weight", n_dims, ne, type, offset);
    bb_pad(b, 32);
    bb_fill(b, data_bytes);
}

/* ---- header ---- */

TEST(gguf_bad_magic)
{
    struct bb b = {0};
    bb_put(&b, "GGML", 4);
    bb_u32(&b, 3);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    EXPECT_FAIL(&b, GGUF_E_MAGIC, "header", "magic 'GGML'");
    bb_put(&b, "\x7f" "ELF\n", 5);
    EXPECT_FAIL(&b, GGUF_E_MAGIC, "magic '\\x7fELF'");
}

TEST(gguf_short_files)
{
    struct bb b = {0};
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "header", "0 bytes");
    bb_put(&b, "GG", 2);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "2 bytes");
    bb_put(&b, "GGUF", 4);
    bb_u32(&b, 3);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "tensor count");
}

TEST(gguf_version_1_and_4)
{
    struct bb b = {0};
    bb_header(&b, 1, 0, 0);
    EXPECT_FAIL(&b, GGUF_E_VERSION, "header", "version 1 is not supported");
    bb_header(&b, 4, 0, 0);
    EXPECT_FAIL(&b, GGUF_E_VERSION, "version 4");
    bb_header(&b, 0x03000000, 0, 0);
    EXPECT_FAIL(&b, GGUF_E_VERSION, "big-endian");
    bb_header(&b, 2, 0, 0);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    CHECK_EQ_INT(gguf_version(g), 2);
    CHECK_EQ_INT(gguf_kv_count(g), 0);
    CHECK_EQ_INT(gguf_tensor_count(g), 0);
    CHECK_EQ_INT(gguf_alignment(g), 32);
    gguf_close(g);
    free(b.p);
}

TEST(gguf_huge_counts)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, UINT64_MAX);
    bb_fill(&b, 1000);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "header", "kv count 18446744073709551615 exceeds what a 1024-byte file can hold");
    bb_header(&b, 3, UINT64_MAX, 0);
    bb_fill(&b, 1000);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "header: tensor count 18446744073709551615 exceeds what a 1024-byte file can hold");
    /* Each count alone fits, together they do not. */
    bb_header(&b, 3, 20, 30);
    bb_fill(&b, 1000);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "30 kv pairs and 20 tensor infos");
    /* Just over the bound from the minimal kv size (14 bytes). */
    bb_header(&b, 3, 0, 1000 / 14 + 1);
    bb_fill(&b, 1000);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "kv pairs");
}

/* ---- strings, arrays, values ---- */

TEST(gguf_huge_string_length)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, UINT64_MAX - 3);
    bb_fill(&b, 16);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "kv[0]", "key length 18446744073709551612 exceeds");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.name");
    bb_u32(&b, GGUF_VTYPE_STRING);
    bb_u64(&b, 1ull << 62);
    bb_fill(&b, 16);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "kv[0] 'general.name'", "string value length 4611686018427387904");
    /* A length that fits a file of this size but runs past its end is truncation. */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.name");
    bb_u32(&b, GGUF_VTYPE_STRING);
    bb_u64(&b, 20);
    bb_put(&b, "xy", 2);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "kv[0] 'general.name'", "string value");
}

TEST(gguf_huge_array_count)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "a.u32s");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_UINT32);
    bb_u64(&b, 1ull << 40);
    bb_fill(&b, 64);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "kv[0] 'a.u32s'", "array count 1099511627776 exceeds");
    /* A string array: rejected before anything is allocated for 2^40 entries (an attempt
     * would fail with GGUF_E_NOMEM instead). */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_STRING);
    bb_u64(&b, 1ull << 40);
    bb_fill(&b, 64);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "string array count 1099511627776");
    /* Nested arrays likewise. */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "a.nested");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u64(&b, UINT64_MAX);
    bb_fill(&b, 64);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "nested array count 18446744073709551615");
    /* 5 strings of 8-byte length prefixes cannot fit in 39 bytes: truncated. */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "a.strs");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_STRING);
    bb_u64(&b, 5);
    bb_fill(&b, 39);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "kv[0] 'a.strs': string array count 5 needs at least 40 bytes at offset 54");
}

TEST(gguf_unknown_value_type)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "x.y");
    bb_u32(&b, 13);
    bb_u32(&b, 0);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'x.y'", "unknown value type 13");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "x.y");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, 0xffffffffu);
    bb_u64(&b, 0);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "unknown array element type 4294967295");
}

TEST(gguf_bool_must_be_0_or_1)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.add_bos_token");
    bb_u32(&b, GGUF_VTYPE_BOOL);
    bb_u8(&b, 2);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'tokenizer.ggml.add_bos_token'", "bool value 2");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "x.flags");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_BOOL);
    bb_u64(&b, 3);
    bb_put(&b, "\x01\x00\xff", 3);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "array element 2: bool value 255");
}

TEST(gguf_keys_must_be_valid)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "");
    bb_u32(&b, GGUF_VTYPE_UINT8);
    bb_u8(&b, 1);
    bb_u8(&b, 1);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "kv[0]", "empty key");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "bad\xff\nkey");
    bb_u32(&b, GGUF_VTYPE_UINT8);
    bb_u8(&b, 1);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'bad\\xff\\x0akey'", "not valid UTF-8");
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 3);
    bb_put(&b, "a\0b", 3);
    bb_u32(&b, GGUF_VTYPE_UINT8);
    bb_u8(&b, 1);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'a\\x00b': key contains a NUL byte");
}

TEST(gguf_duplicate_key)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 3);
    bb_kv_str(&b, "general.name", "a");
    bb_kv_u32(&b, "x.n", 1);
    bb_kv_str(&b, "general.name", "b");
    EXPECT_FAIL(&b, GGUF_E_DUPLICATE, "kv[2] 'general.name'", "duplicate key (first at kv[0])");
}

static void nested_array(struct bb *b, unsigned levels)
{
    /* levels arrays, each holding one array, the innermost holding one uint8 */
    for (unsigned i = 1; i < levels; i++) {
        bb_u32(b, GGUF_VTYPE_ARRAY);
        bb_u64(b, 1);
    }
    bb_u32(b, GGUF_VTYPE_UINT8);
    bb_u64(b, 1);
    bb_u8(b, 42);
}

TEST(gguf_array_depth_limit)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "x.deep");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    nested_array(&b, GGUF_MAX_ARRAY_DEPTH);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    const struct gguf_value *v = gguf_get(g, "x.deep");
    REQUIRE(v);
    for (int d = 1; d < GGUF_MAX_ARRAY_DEPTH; d++) {
        REQUIRE(v->type == GGUF_VTYPE_ARRAY && v->v.arr.type == GGUF_VTYPE_ARRAY);
        CHECK_EQ_INT(v->v.arr.n, 1);
        v = &v->v.arr.arrs[0];
    }
    CHECK_EQ_INT(v->v.arr.type, GGUF_VTYPE_UINT8);
    CHECK_EQ_INT(gguf_arr_i64(v, 0), 42);
    gguf_close(g);
    free(b.p);
    b = (struct bb){0};

    bb_header(&b, 3, 0, 1);
    bb_str(&b, "x.deep");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    nested_array(&b, GGUF_MAX_ARRAY_DEPTH + 1);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "kv[0] 'x.deep'", "nested deeper than 4");
}

/* ---- known keys ---- */

static void wrong_type_case(int line, const char *key, uint32_t vtype, uint32_t elem,
                            const char *needle)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 2);
    bb_kv_str(&b, "general.architecture", "llama");
    bb_str(&b, key);
    bb_u32(&b, vtype);
    if (vtype == GGUF_VTYPE_ARRAY) {
        bb_u32(&b, elem);
        bb_u64(&b, 1);
        if (elem == GGUF_VTYPE_STRING)
            bb_str(&b, "x");
        else
            bb_u32(&b, 7);
    } else if (vtype == GGUF_VTYPE_STRING) {
        bb_str(&b, "32");
    } else {
        bb_u32(&b, 7);
    }
    char field[200];
    snprintf(field, sizeof(field), "kv[1] '%s'", key);
    expect_fail(line, &b, GGUF_E_TYPE, (const char *const[]){field, needle, NULL});
}

TEST(gguf_known_keys_wrong_type)
{
    wrong_type_case(__LINE__, "tokenizer.ggml.tokens", GGUF_VTYPE_ARRAY, GGUF_VTYPE_INT32,
                    "wrong type (array of int32, must be array of string)");
    wrong_type_case(__LINE__, "tokenizer.ggml.scores", GGUF_VTYPE_ARRAY, GGUF_VTYPE_INT32,
                    "must be array of float32");
    wrong_type_case(__LINE__, "tokenizer.ggml.token_type", GGUF_VTYPE_ARRAY, GGUF_VTYPE_STRING,
                    "must be array of int32");
    wrong_type_case(__LINE__, "tokenizer.ggml.merges", GGUF_VTYPE_UINT32, 0,
                    "wrong type (uint32, must be array of string)");
    wrong_type_case(__LINE__, "tokenizer.ggml.model", GGUF_VTYPE_INT32, 0, "must be string");
    wrong_type_case(__LINE__, "llama.context_length", GGUF_VTYPE_STRING, 0,
                    "must be an integer type");
    wrong_type_case(__LINE__, "llama.embedding_length", GGUF_VTYPE_FLOAT32, 0,
                    "must be an integer type");
    wrong_type_case(__LINE__, "llama.block_count", GGUF_VTYPE_ARRAY, GGUF_VTYPE_UINT32,
                    "must be an integer type");
    wrong_type_case(__LINE__, "llama.feed_forward_length", GGUF_VTYPE_STRING, 0,
                    "must be an integer type or an array of integers");
    wrong_type_case(__LINE__, "llama.attention.head_count", GGUF_VTYPE_ARRAY,
                    GGUF_VTYPE_STRING, "integer");

    /* general.architecture itself must be a string. */
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.architecture", 1);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'general.architecture'", "must be string");

    /* Per-layer head counts (an array of integers) are fine, as are other integer widths. */
    bb_header(&b, 3, 0, 3);
    bb_kv_str(&b, "general.architecture", "llama");
    bb_str(&b, "llama.attention.head_count");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_INT32);
    bb_u64(&b, 2);
    bb_u32(&b, 4);
    bb_u32(&b, 8);
    bb_str(&b, "llama.context_length");
    bb_u32(&b, GGUF_VTYPE_UINT64);
    bb_u64(&b, 4096);
    struct gguf *g = open_ok(&b);
    CHECK(g != NULL);
    gguf_close(g);
    free(b.p);
}

TEST(gguf_alignment_rules)
{
    static const uint32_t bad[] = {0, 48, 1u << 20};
    static const char *const why[] = {"alignment 0 is not a power of two",
                                      "alignment 48 is not a power of two",
                                      "alignment 1048576 exceeds the maximum 65536"};
    for (int i = 0; i < 3; i++) {
        struct bb b = {0};
        bb_header(&b, 3, 0, 2);
        bb_kv_str(&b, "general.name", "x");
        bb_kv_u32(&b, "general.alignment", bad[i]);
        EXPECT_FAIL(&b, GGUF_E_ALIGNMENT, "kv[1] 'general.alignment'", why[i]);
    }
    struct bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, GGUF_VTYPE_UINT64);
    bb_u64(&b, 32);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "kv[0] 'general.alignment'", "wrong type (uint64, must be uint32)");

    /* A valid non-default alignment moves the data section and binds the offsets. */
    const uint64_t ne[1] = {4};
    bb_header(&b, 3, 1, 1);
    bb_kv_u32(&b, "general.alignment", 256);
    bb_tensor(&b, "t", 1, ne, QTYPE_F32, 0);
    bb_pad(&b, 256);
    bb_fill(&b, 16);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    CHECK_EQ_INT(gguf_alignment(g), 256);
    CHECK_EQ_INT(gguf_data_offset(g), 256);
    CHECK(gguf_tensor_at(g, 0)->data == b.p + 256);
    gguf_close(g);
    free(b.p);
}

/* ---- tensors ---- */

TEST(gguf_tensor_n_dims)
{
    struct bb b = {0};
    const uint64_t ne[5] = {4, 1, 1, 1, 1};
    one_tensor_file(&b, 0, ne, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "tensor 'blk.0.attn_q.weight'", "n_dims: 0 is out of range (must be 1..4)");
    one_tensor_file(&b, 5, ne, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "n_dims: 5");
}

TEST(gguf_tensor_dimension_zero)
{
    struct bb b = {0};
    const uint64_t ne[2] = {4, 0};
    one_tensor_file(&b, 2, ne, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE,
                "tensor 'blk.0.attn_q.weight' ne[1]: dimension is 0 (must be >= 1)");
    const uint64_t big[1] = {1ull << 63};
    one_tensor_file(&b, 1, big, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "tensor 'blk.0.attn_q.weight' ne[0]: dimension 9223372036854775808 exceeds INT64_MAX");
}

TEST(gguf_tensor_element_overflow)
{
    struct bb b = {0};
    const uint64_t ne[2] = {1ull << 32, 1ull << 32};
    one_tensor_file(&b, 2, ne, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "ne[1]: element count overflows int64 (product so far 4294967296 x 4294967296)");
    /* 2^62 elements fit int64, their F32 bytes (2^64) do not. */
    const uint64_t ne2[2] = {1ull << 31, 1ull << 31};
    one_tensor_file(&b, 2, ne2, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "shape: size in bytes overflows");
    /* Four dims whose product overflows only at the last one. */
    const uint64_t ne4[4] = {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 5};
    one_tensor_file(&b, 4, ne4, QTYPE_F32, 0, 16);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "ne[3]: element count overflows");
}

TEST(gguf_tensor_block_multiple)
{
    struct bb b = {0};
    const uint64_t ne[2] = {33, 2};
    one_tensor_file(&b, 2, ne, QTYPE_Q8_0, 0, 68);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "ne[0]: row length 33 is not a multiple of the Q8_0 block size 32");
    const uint64_t ne2[1] = {128};
    one_tensor_file(&b, 1, ne2, QTYPE_Q4_K, 0, 144);
    EXPECT_FAIL(&b, GGUF_E_SHAPE, "Q4_K block size 256");
}

TEST(gguf_tensor_unknown_type)
{
    struct bb b = {0};
    const uint64_t ne[1] = {32};
    one_tensor_file(&b, 1, ne, 99, 0, 128);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "tensor 'blk.0.attn_q.weight'", "type: unknown tensor type 99");
    one_tensor_file(&b, 1, ne, 16, 0, 128);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "unsupported tensor type 16 (IQ2_XXS)");
    one_tensor_file(&b, 1, ne, 0x80000000u, 0, 128);
    EXPECT_FAIL(&b, GGUF_E_TYPE, "unknown tensor type 2147483648");
}

TEST(gguf_tensor_offsets)
{
    struct bb b = {0};
    const uint64_t ne[2] = {4, 2};   /* F32: 32 bytes */
    one_tensor_file(&b, 2, ne, QTYPE_F32, 4096, 32);
    EXPECT_FAIL(&b, GGUF_E_OFFSET, "tensor 'blk.0.attn_q.weight'",
                "offset: 4096 is past the end of the file (data section holds 32 bytes)");
    one_tensor_file(&b, 2, ne, QTYPE_F32, UINT64_MAX - 31, 32);
    EXPECT_FAIL(&b, GGUF_E_OFFSET, "18446744073709551584");
    one_tensor_file(&b, 2, ne, QTYPE_F32, 4, 64);
    EXPECT_FAIL(&b, GGUF_E_OFFSET, "offset: 4 is not a multiple of the alignment 32");
    one_tensor_file(&b, 2, ne, QTYPE_F32, 0, 31);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "data: 32 bytes at offset 0 run past the end of the file (data section holds 31 bytes)");
    /* Header ends at EOF: the data section is missing altogether. */
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 2, ne, QTYPE_F32, 0);
    EXPECT_FAIL(&b, GGUF_E_TRUNCATED, "data section", "before the data section");
}

TEST(gguf_tensor_overlap)
{
    struct bb b = {0};
    const uint64_t ne[1] = {16};   /* F32: 64 bytes */
    bb_header(&b, 3, 3, 0);
    bb_tensor(&b, "a", 1, ne, QTYPE_F32, 0);
    bb_tensor(&b, "b", 1, ne, QTYPE_F32, 128);
    bb_tensor(&b, "c", 1, ne, QTYPE_F32, 96);   /* [96, 160) overlaps b [128, 192) */
    bb_pad(&b, 32);
    bb_fill(&b, 192);
    EXPECT_FAIL(&b, GGUF_E_OFFSET, "tensor 'b'", "tensor 'b' data: [128, 192) overlaps tensor 'c' [96, 160)");
    /* Two tensors sharing an offset. */
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "a", 1, ne, QTYPE_F32, 64);
    bb_tensor(&b, "b", 1, ne, QTYPE_F32, 64);
    bb_pad(&b, 32);
    bb_fill(&b, 128);
    EXPECT_FAIL(&b, GGUF_E_OFFSET, "overlaps tensor 'a'");
    /* Back to back is fine, in any order. */
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "a", 1, ne, QTYPE_F32, 64);
    bb_tensor(&b, "b", 1, ne, QTYPE_F32, 0);
    bb_pad(&b, 32);
    bb_fill(&b, 128);
    struct gguf *g = open_ok(&b);
    CHECK(g != NULL);
    gguf_close(g);
    free(b.p);
}

TEST(gguf_tensor_names)
{
    struct bb b = {0};
    const uint64_t ne[1] = {8};
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "w", 1, ne, QTYPE_F32, 0);
    bb_tensor(&b, "w", 1, ne, QTYPE_F32, 32);
    bb_pad(&b, 32);
    bb_fill(&b, 64);
    EXPECT_FAIL(&b, GGUF_E_DUPLICATE, "tensor 'w'", "duplicate tensor name (first at tensor[0])");
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "", 1, ne, QTYPE_F32, 0);
    bb_pad(&b, 32);
    bb_fill(&b, 32);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "tensor[0]", "empty tensor name");
    char longname[GGUF_MAX_NAME + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, longname, 1, ne, QTYPE_F32, 0);
    bb_pad(&b, 32);
    bb_fill(&b, 32);
    EXPECT_FAIL(&b, GGUF_E_LIMIT, "name length 257 exceeds 256 bytes");
    longname[GGUF_MAX_NAME] = 0;   /* exactly the maximum is fine */
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, longname, 1, ne, QTYPE_F32, 0);
    bb_pad(&b, 32);
    bb_fill(&b, 32);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    CHECK(gguf_find_tensor(g, longname) == gguf_tensor_at(g, 0));
    gguf_close(g);
    free(b.p);
}

/* ---- every prefix of a valid file must fail cleanly ---- */

static void build_small_valid(struct bb *b)
{
    const uint64_t ne1[2] = {4, 2}, ne2[1] = {32}, ne3[3] = {2, 1, 3};
    bb_header(b, 3, 3, 6);
    bb_kv_str(b, "general.architecture", "llama");
    bb_kv_u32(b, "llama.context_length", 64);
    bb_str(b, "tokenizer.ggml.tokens");
    bb_u32(b, GGUF_VTYPE_ARRAY);
    bb_u32(b, GGUF_VTYPE_STRING);
    bb_u64(b, 3);
    bb_str(b, "<s>");
    bb_str(b, "");
    bb_str(b, "hello");
    bb_str(b, "tokenizer.ggml.scores");
    bb_u32(b, GGUF_VTYPE_ARRAY);
    bb_u32(b, GGUF_VTYPE_FLOAT32);
    bb_u64(b, 3);
    bb_f32(b, 0.0f);
    bb_f32(b, -1.0f);
    bb_f32(b, -2.5f);
    bb_str(b, "x.nested");
    bb_u32(b, GGUF_VTYPE_ARRAY);
    nested_array(b, 3);
    bb_str(b, "x.flag");
    bb_u32(b, GGUF_VTYPE_BOOL);
    bb_u8(b, 1);
    bb_tensor(b, "a", 2, ne1, QTYPE_F32, 0);      /* 32 bytes */
    bb_tensor(b, "b", 1, ne2, QTYPE_Q8_0, 32);    /* 34 bytes */
    bb_tensor(b, "c", 3, ne3, QTYPE_F16, 96);     /* 12 bytes */
    bb_pad(b, 32);
    bb_fill(b, 108);
}

TEST(gguf_every_truncation_fails_cleanly)
{
    struct bb b = {0};
    build_small_valid(&b);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    CHECK_EQ_INT(gguf_tensor_count(g), 3);
    gguf_close(g);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);   /* exact size: ASan catches any over-read */
        if (n)
            memcpy(copy, b.p, n);
        char err[512] = "";
        g = NULL;
        int rc = gguf_open_buffer(&g, copy, n, "cut.gguf", err, sizeof(err));
        if (rc != GGUF_E_TRUNCATED && rc != GGUF_E_LIMIT && rc != GGUF_E_OFFSET)
            test__fail(__FILE__, __LINE__, "prefix %zu: rc %d: %s", n, rc, err);
        if (g)
            test__fail(__FILE__, __LINE__, "prefix %zu: handle returned", n);
        if (getenv("GGUF_TEST_VERBOSE"))
            fprintf(stderr, "    prefix %zu: %s\n", n, err);
        check_msg(__LINE__, err, "cut.gguf", NULL);
        gguf_close(g);
        free(copy);
    }
    /* A handful through the mmap path too. */
    for (size_t n = 0; n < b.len; n += 37) {
        char err[512] = "";
        const char *path = write_tmp("cut.gguf", b.p, n);
        CHECK(gguf_open(&g, path, err, sizeof(err)) < 0);
        check_msg(__LINE__, err, path, NULL);
    }
    free(b.p);
}

/* Flipping any single header byte must never crash or leak (ASan build). */
TEST(gguf_every_byte_flip_is_safe)
{
    struct bb b = {0};
    build_small_valid(&b);
    for (size_t i = 0; i < b.len; i++) {
        for (int k = 0; k < 3; k++) {
            static const uint8_t xors[3] = {0x01, 0x80, 0xff};
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.p, b.len);
            copy[i] ^= xors[k];
            struct gguf *g = NULL;
            char err[512] = "";
            int rc = gguf_open_buffer(&g, copy, b.len, "flip.gguf", err, sizeof(err));
            if (rc)
                check_msg(__LINE__, err, "flip.gguf", NULL);
            else
                CHECK(g != NULL);
            gguf_close(g);
            free(copy);
        }
    }
    free(b.p);
}

/* ---- I/O ---- */

TEST(gguf_open_io_errors)
{
    char err[512];
    struct gguf *g = (struct gguf *)1;
    char path[512];
    snprintf(path, sizeof(path), "%s/missing.gguf", test_tmpdir());
    CHECK_EQ_INT(gguf_open(&g, path, err, sizeof(err)), GGUF_E_IO);
    CHECK(g == NULL);
    check_msg(__LINE__, err, path, (const char *const[]){"open: No such file", NULL});
    CHECK_EQ_INT(gguf_open(&g, test_tmpdir(), err, sizeof(err)), GGUF_E_IO);
    CHECK(strstr(err, "not a regular file") != NULL);
    /* A tiny error buffer is still terminated; NULL is allowed. */
    char small[8];
    CHECK_EQ_INT(gguf_open(&g, path, small, sizeof(small)), GGUF_E_IO);
    CHECK_EQ_INT(strlen(small), 7);
    CHECK_EQ_INT(gguf_open(&g, path, NULL, 0), GGUF_E_IO);
    CHECK_STR(gguf_strerror(GGUF_E_DUPLICATE), "duplicate key or tensor name");
    CHECK_STR(gguf_vtype_name(GGUF_VTYPE_FLOAT32), "float32");
    CHECK_STR(gguf_vtype_name((enum gguf_vtype)99), "unknown");
    gguf_close(NULL);
}

/* ---- fixtures ---- */

static int open_dir_files(const char *rel, const char *suffix)
{
    char *dir = test_shared_path(rel);
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) {
        test__fail(__FILE__, __LINE__, "cannot open %s", dir);
        free(dir);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l < sl || strcmp(e->d_name + l - sl, suffix))
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct gguf *g = NULL;
        int rc = gguf_open(&g, path, err, sizeof(err));
        if (rc) {
            test__fail(__FILE__, __LINE__, "%s", err);
            continue;
        }
        n++;
        /* Every tensor is found by name; the lookup of every key returns that very value. */
        for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
            const struct gguf_tensor *t = gguf_tensor_at(g, i);
            if (gguf_find_tensor(g, t->name) != t)
                test__fail(__FILE__, __LINE__, "%s: lookup of %s", path, t->name);
        }
        for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
            struct gguf_str k = gguf_kv_key(g, i);
            char key[512];
            snprintf(key, sizeof(key), "%.*s", (int)k.len, k.ptr);
            if (gguf_get(g, key) != gguf_kv_value(g, i))
                test__fail(__FILE__, __LINE__, "%s: lookup of %s", path, key);
        }
        gguf_close(g);
    }
    closedir(d);
    free(dir);
    return n;
}

TEST(gguf_fixture_models_open)
{
    CHECK(open_dir_files("fixtures/models", ".gguf") >= 29);
}

TEST(gguf_fixture_vocabs_open)
{
    CHECK(open_dir_files("fixtures/vocab", ".gguf") >= 12);
}

TEST(gguf_llama_f32_contents)
{
    char *path = test_shared_path("fixtures/models/llama-F32.gguf");
    char err[512];
    struct gguf *g = NULL;
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_alignment(g), 32);
    CHECK_EQ_INT(gguf_tensor_count(g), 21);
    CHECK_EQ_INT(gguf_kv_count(g), 21);
    CHECK_STR(gguf_path(g), path);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK_EQ_INT(gguf_file_size(g), st.st_size);
    CHECK_EQ_INT(gguf_data_offset(g) % 32, 0);

    const struct gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 256);
    CHECK_EQ_INT(t->ne[1], 512);
    CHECK_EQ_INT(t->ne[2], 1);
    CHECK_EQ_INT(t->type, QTYPE_F32);
    CHECK_EQ_INT(t->size, 256 * 512 * 4);
    CHECK_EQ_INT(gguf_tensor_nelements(t), 256 * 512);
    t = gguf_find_tensor(g, "blk.1.ffn_down.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->ne[0], 512);
    CHECK_EQ_INT(t->ne[1], 256);
    CHECK(gguf_find_tensor(g, "blk.2.ffn_down.weight") == NULL);
    CHECK(gguf_find_tensor(g, "") == NULL);

    /* Tensor data points into the mapping at data_offset + offset. */
    t = gguf_tensor_at(g, 3);
    REQUIRE(t);
    float head[4];
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(pread(fd, head, sizeof(head), (off_t)(gguf_data_offset(g) + t->offset)) == 16);
    close(fd);
    CHECK(memcmp(head, t->data, sizeof(head)) == 0);

    uint32_t u32 = 0;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    struct gguf_str s;
    CHECK_EQ_INT(gguf_get_u32(g, "llama.embedding_length", &u32), 0);
    CHECK_EQ_INT(u32, 256);
    CHECK_EQ_INT(gguf_get_u64(g, "llama.block_count", &u64), 0);
    CHECK_EQ_INT(u64, 2);
    CHECK_EQ_INT(gguf_get_i64(g, "llama.context_length", &i64), 0);
    CHECK_EQ_INT(i64, 512);
    CHECK_EQ_INT(gguf_get_f32(g, "llama.rope.freq_base", &f), 0);
    CHECK_NEAR(f, 10000.0, 0);
    CHECK_EQ_INT(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), 0);
    CHECK(b);
    CHECK_EQ_INT(gguf_get_str(g, "general.architecture", &s), 0);
    CHECK(s.len == 5 && !memcmp(s.ptr, "llama", 5));
    CHECK_EQ_INT(gguf_get_u32(g, "llama.nope", &u32), GGUF_E_NOTFOUND);
    CHECK_EQ_INT(gguf_get_u32(g, "general.architecture", &u32), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_f32(g, "llama.block_count", &f), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_bool(g, "llama.block_count", &b), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_str(g, "llama.block_count", &s), GGUF_E_TYPE);

    const struct gguf_value *tok = gguf_get(g, "tokenizer.ggml.tokens");
    REQUIRE(tok && tok->type == GGUF_VTYPE_ARRAY && tok->v.arr.type == GGUF_VTYPE_STRING);
    CHECK_EQ_INT(tok->v.arr.n, 512);
    CHECK(tok->v.arr.strs[1].len == 3 && !memcmp(tok->v.arr.strs[1].ptr, "<s>", 3));
    const struct gguf_value *tt = gguf_get(g, "tokenizer.ggml.token_type");
    REQUIRE(tt && tt->v.arr.type == GGUF_VTYPE_INT32 && tt->v.arr.n == 512);
    CHECK_EQ_INT(gguf_arr_i64(tt, 0), 2);
    CHECK_EQ_INT(gguf_arr_i64(tt, 1), 3);
    CHECK_EQ_INT(gguf_arr_i64(tt, 512), 0);   /* out of range */
    const struct gguf_value *sc = gguf_get(g, "tokenizer.ggml.scores");
    REQUIRE(sc && sc->v.arr.n == 512);
    CHECK_NEAR(gguf_arr_f32(sc, 0), 0.0, 0);
    gguf_close(g);
    free(path);
}

TEST(gguf_vocab_llama_spm_contents)
{
    char *path = test_shared_path("fixtures/vocab/ggml-vocab-llama-spm.gguf");
    char err[512];
    struct gguf *g = NULL;
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(gguf_tensor_count(g), 0);
    const struct gguf_value *tok = gguf_get(g, "tokenizer.ggml.tokens");
    REQUIRE(tok);
    CHECK_EQ_INT(tok->v.arr.n, 32000);
    struct gguf_str model;
    CHECK_EQ_INT(gguf_get_str(g, "tokenizer.ggml.model", &model), 0);
    CHECK(model.len == 5 && !memcmp(model.ptr, "llama", 5));
    gguf_close(g);
    free(path);
}

TEST(gguf_typed_getter_conversions)
{
    struct bb b = {0};
    bb_header(&b, 3, 0, 6);
    bb_str(&b, "v.neg");
    bb_u32(&b, GGUF_VTYPE_INT8);
    bb_u8(&b, 0xfe);   /* -2 */
    bb_str(&b, "v.big");
    bb_u32(&b, GGUF_VTYPE_UINT64);
    bb_u64(&b, 1ull << 40);
    bb_str(&b, "v.huge");
    bb_u32(&b, GGUF_VTYPE_UINT64);
    bb_u64(&b, UINT64_MAX);
    bb_str(&b, "v.i16");
    bb_u32(&b, GGUF_VTYPE_INT16);
    bb_le(&b, 300, 2);
    bb_str(&b, "v.f64");
    bb_u32(&b, GGUF_VTYPE_FLOAT64);
    double d = 0.125;
    bb_put(&b, &d, 8);
    bb_str(&b, "v.mixed");
    bb_u32(&b, GGUF_VTYPE_ARRAY);
    bb_u32(&b, GGUF_VTYPE_INT16);
    bb_u64(&b, 2);
    bb_le(&b, 0xffff, 2);
    bb_le(&b, 7, 2);
    struct gguf *g = open_ok(&b);
    REQUIRE(g);
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    CHECK_EQ_INT(gguf_get_u32(g, "v.neg", &u32), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_u64(g, "v.neg", &u64), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_i64(g, "v.neg", &i64), 0);
    CHECK_EQ_INT(i64, -2);
    CHECK_EQ_INT(gguf_get_u32(g, "v.big", &u32), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_u64(g, "v.big", &u64), 0);
    CHECK(u64 == 1ull << 40);
    CHECK_EQ_INT(gguf_get_i64(g, "v.huge", &i64), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_get_u64(g, "v.huge", &u64), 0);
    CHECK(u64 == UINT64_MAX);
    CHECK_EQ_INT(gguf_get_u32(g, "v.i16", &u32), 0);
    CHECK_EQ_INT(u32, 300);
    CHECK_EQ_INT(gguf_get_f32(g, "v.f64", &f), 0);
    CHECK_NEAR(f, 0.125, 0);
    CHECK_EQ_INT(gguf_get_u32(g, "v.f64", &u32), GGUF_E_TYPE);
    const struct gguf_value *m = gguf_get(g, "v.mixed");
    REQUIRE(m);
    CHECK_EQ_INT(gguf_arr_i64(m, 0), -1);
    CHECK_NEAR(gguf_arr_f32(m, 1), 7.0, 0);
    CHECK_EQ_INT(gguf_arr_i64(gguf_get(g, "v.neg"), 0), 0);   /* not an array */
    gguf_close(g);
    free(b.p);
}

/* ---- writer ---- */

static bool value_eq(const struct gguf_value *a, const struct gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case GGUF_VTYPE_STRING:
        return a->v.str.len == b->v.str.len && !memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len);
    case GGUF_VTYPE_FLOAT32:
    case GGUF_VTYPE_FLOAT64:
        return a->v.f64 == b->v.f64;
    case GGUF_VTYPE_ARRAY:
        if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n)
            return false;
        for (uint64_t i = 0; i < a->v.arr.n; i++) {
            if (a->v.arr.type == GGUF_VTYPE_STRING) {
                const struct gguf_str *x = &a->v.arr.strs[i], *y = &b->v.arr.strs[i];
                if (x->len != y->len || memcmp(x->ptr, y->ptr, x->len))
                    return false;
            } else if (a->v.arr.type == GGUF_VTYPE_ARRAY) {
                if (!value_eq(&a->v.arr.arrs[i], &b->v.arr.arrs[i]))
                    return false;
            } else if (gguf_arr_i64(a, i) != gguf_arr_i64(b, i) ||
                       gguf_arr_f32(a, i) != gguf_arr_f32(b, i)) {
                return false;
            }
        }
        return true;
    default:
        return a->v.u64 == b->v.u64;
    }
}

TEST(gguf_write_round_trip_every_type)
{
    struct gguf_writer *w = gguf_writer_new();
    REQUIRE(w);
    static const uint8_t u8s[3] = {1, 2, 250};
    static const int32_t i32s[2] = {-5, 70000};
    static const double f64s[2] = {0.5, -1e300};
    static const uint8_t bools[3] = {0, 1, 1};
    const struct gguf_str strs[3] = {{"a", 1}, {"", 0}, {"with\0nul", 8}};
    const struct gguf_value inner[3] = {
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_UINT8, .n = 3, .data = u8s}},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_STRING, .n = 3, .strs = strs}},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_INT32, .n = 0, .data = ""}},
    };
    const struct gguf_value outer = {
        .type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_ARRAY, .n = 3, .arrs = inner}};
    const struct gguf_value vals[] = {
        {.type = GGUF_VTYPE_UINT8, .v.u64 = 200},   {.type = GGUF_VTYPE_INT8, .v.i64 = -100},
        {.type = GGUF_VTYPE_UINT16, .v.u64 = 65535}, {.type = GGUF_VTYPE_INT16, .v.i64 = -32768},
        {.type = GGUF_VTYPE_UINT32, .v.u64 = 4000000000u},
        {.type = GGUF_VTYPE_INT32, .v.i64 = INT32_MIN},
        {.type = GGUF_VTYPE_FLOAT32, .v.f64 = 0.25},  {.type = GGUF_VTYPE_BOOL, .v.u64 = 1},
        {.type = GGUF_VTYPE_STRING, .v.str = {"hi\nthere", 8}},
        {.type = GGUF_VTYPE_UINT64, .v.u64 = UINT64_MAX},
        {.type = GGUF_VTYPE_INT64, .v.i64 = INT64_MIN}, {.type = GGUF_VTYPE_FLOAT64, .v.f64 = -2.5},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_INT32, .n = 2, .data = i32s}},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_FLOAT64, .n = 2, .data = f64s}},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_BOOL, .n = 3, .data = bools}},
        {.type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_STRING, .n = 3, .strs = strs}},
        outer,
    };
    const size_t n_vals = sizeof(vals) / sizeof(vals[0]);
    char key[64];
    CHECK_EQ_INT(gguf_writer_set_u32(w, "general.alignment", 64), 0);
    for (size_t i = 0; i < n_vals; i++) {
        snprintf(key, sizeof(key), "test.v%zu", i);
        CHECK_EQ_INT(gguf_writer_set_value(w, key, &vals[i]), 0);
    }
    CHECK_EQ_INT(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    CHECK_EQ_INT(gguf_writer_set_f32(w, "x.f", 1.5f), 0);
    CHECK_EQ_INT(gguf_writer_set_bool(w, "x.b", false), 0);
    /* Replacing keeps the position; removing closes the gap. */
    CHECK_EQ_INT(gguf_writer_set_str(w, "test.v0", "replaced"), 0);
    CHECK_EQ_INT(gguf_writer_remove(w, "x.f"), 0);
    CHECK_EQ_INT(gguf_writer_remove(w, "x.f"), GGUF_E_NOTFOUND);

    float f32[3 * 5];
    for (int i = 0; i < 15; i++)
        f32[i] = (float)i * 0.5f - 3.0f;
    uint8_t q8[2 * 34], q4k[144 * 2], f16[2 * 3];
    for (size_t i = 0; i < sizeof(q8); i++)
        q8[i] = (uint8_t)(i * 3);
    for (size_t i = 0; i < sizeof(q4k); i++)
        q4k[i] = (uint8_t)(i * 5 + 1);
    memset(f16, 0x3c, sizeof(f16));
    const int64_t ne_a[2] = {3, 5}, ne_b[2] = {32, 2}, ne_c[4] = {256, 1, 2, 1}, ne_d[1] = {3};
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "a.f32", QTYPE_F32, 2, ne_a, f32, sizeof(f32)), 0);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "b.q8", QTYPE_Q8_0, 2, ne_b, q8, sizeof(q8)), 0);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "c.q4k", QTYPE_Q4_K, 4, ne_c, q4k, sizeof(q4k)), 0);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "d.f16", QTYPE_F16, 1, ne_d, f16, sizeof(f16)), 0);

    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/rt.gguf", test_tmpdir());
    REQUIRE(gguf_writer_write(w, path, err, sizeof(err)) == 0);
    gguf_writer_free(w);

    struct gguf *g = NULL;
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_alignment(g), 64);
    CHECK_EQ_INT(gguf_kv_count(g), 1 + n_vals + 2);
    struct gguf_str k0 = gguf_kv_key(g, 0);
    CHECK(k0.len == 17 && !memcmp(k0.ptr, "general.alignment", 17));
    struct gguf_str k1 = gguf_kv_key(g, 1);
    CHECK(k1.len == 7 && !memcmp(k1.ptr, "test.v0", 7));
    struct gguf_str s;
    CHECK_EQ_INT(gguf_get_str(g, "test.v0", &s), 0);
    CHECK(s.len == 8 && !memcmp(s.ptr, "replaced", 8));
    for (size_t i = 1; i < n_vals; i++) {
        snprintf(key, sizeof(key), "test.v%zu", i);
        const struct gguf_value *v = gguf_get(g, key);
        if (!v || !value_eq(v, &vals[i]))
            test__fail(__FILE__, __LINE__, "value %s differs after the round trip", key);
        struct gguf_str ki = gguf_kv_key(g, i + 1);
        if (ki.len != strlen(key) || memcmp(ki.ptr, key, ki.len))
            test__fail(__FILE__, __LINE__, "key %zu out of order", i);
    }
    CHECK(gguf_get(g, "x.f") == NULL);
    bool bv = true;
    CHECK_EQ_INT(gguf_get_bool(g, "x.b", &bv), 0);
    CHECK(!bv);

    REQUIRE(gguf_tensor_count(g) == 4);
    const struct gguf_tensor *t = gguf_tensor_at(g, 2);
    CHECK_STR(t->name, "c.q4k");
    CHECK_EQ_INT(t->n_dims, 4);
    CHECK(t->ne[0] == 256 && t->ne[1] == 1 && t->ne[2] == 2 && t->ne[3] == 1);
    CHECK_EQ_INT(t->type, QTYPE_Q4_K);
    CHECK(t->size == sizeof(q4k) && !memcmp(t->data, q4k, sizeof(q4k)));
    CHECK(!memcmp(gguf_find_tensor(g, "a.f32")->data, f32, sizeof(f32)));
    CHECK(!memcmp(gguf_find_tensor(g, "b.q8")->data, q8, sizeof(q8)));
    CHECK(!memcmp(gguf_find_tensor(g, "d.f16")->data, f16, sizeof(f16)));
    for (uint64_t i = 0; i < 4; i++)
        CHECK_EQ_INT(gguf_tensor_at(g, i)->offset % 64, 0);
    gguf_close(g);
}

TEST(gguf_write_copy_of_fixture_is_identical)
{
    char *src_path = test_shared_path("fixtures/models/llama-Q4_K_M.gguf");
    char err[512], path[512];
    struct gguf *src = NULL, *g = NULL;
    REQUIRE(gguf_open(&src, src_path, err, sizeof(err)) == 0);
    struct gguf_writer *w = gguf_writer_new();
    REQUIRE(w);
    CHECK_EQ_INT(gguf_writer_copy_kv(w, src), 0);
    for (uint64_t i = 0; i < gguf_tensor_count(src); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(src, i);
        CHECK_EQ_INT(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                            t->size), 0);
    }
    snprintf(path, sizeof(path), "%s/copy.gguf", test_tmpdir());
    REQUIRE(gguf_writer_write(w, path, err, sizeof(err)) == 0);
    gguf_writer_free(w);
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(gguf_kv_count(g), gguf_kv_count(src));
    for (uint64_t i = 0; i < gguf_kv_count(src) && i < gguf_kv_count(g); i++) {
        struct gguf_str a = gguf_kv_key(src, i), b = gguf_kv_key(g, i);
        CHECK(a.len == b.len && !memcmp(a.ptr, b.ptr, a.len));
        CHECK(value_eq(gguf_kv_value(src, i), gguf_kv_value(g, i)));
    }
    CHECK_EQ_INT(gguf_tensor_count(g), gguf_tensor_count(src));
    for (uint64_t i = 0; i < gguf_tensor_count(src) && i < gguf_tensor_count(g); i++) {
        const struct gguf_tensor *a = gguf_tensor_at(src, i), *b = gguf_tensor_at(g, i);
        CHECK_STR(a->name, b->name);
        CHECK(a->type == b->type && a->size == b->size && a->n_dims == b->n_dims);
        CHECK(!memcmp(a->ne, b->ne, sizeof(a->ne)));
        CHECK(!memcmp(a->data, b->data, a->size));
    }
    /* Same layout as the source, which was written with the same rules. */
    CHECK_EQ_INT(gguf_file_size(g), gguf_file_size(src));
    gguf_close(g);
    gguf_close(src);
    free(src_path);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

TEST(gguf_write_rejects_bad_input)
{
    struct gguf_writer *w = gguf_writer_new();
    REQUIRE(w);
    float data[64] = {0};
    const int64_t ne[2] = {4, 2}, ne0[2] = {4, 0}, ne33[1] = {33};
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "t", QTYPE_F32, 2, ne, data, 32), 0);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "t", QTYPE_F32, 2, ne, data, 32), GGUF_E_DUPLICATE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_F32, 2, ne, data, 31), GGUF_E_SHAPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_F32, 2, ne0, data, 0), GGUF_E_SHAPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_F32, 0, ne, data, 32), GGUF_E_SHAPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_F32, 5, ne, data, 32), GGUF_E_SHAPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_Q8_0, 1, ne33, data, 34), GGUF_E_SHAPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", (enum qtype)99, 1, ne, data, 16), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "", QTYPE_F32, 2, ne, data, 32), GGUF_E_LIMIT);
    CHECK_EQ_INT(gguf_writer_add_tensor(w, "u", QTYPE_F32, 2, ne, NULL, 32), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_writer_set_u32(w, "", 1), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_writer_set_u32(w, "bad\xff", 1), GGUF_E_TYPE);
    const struct gguf_value b2 = {.type = GGUF_VTYPE_BOOL, .v.u64 = 2};
    const struct gguf_value u8big = {.type = GGUF_VTYPE_UINT8, .v.u64 = 256};
    const struct gguf_value badt = {.type = (enum gguf_vtype)13};
    CHECK_EQ_INT(gguf_writer_set_value(w, "x.b", &b2), GGUF_E_TYPE);
    CHECK_EQ_INT(gguf_writer_set_value(w, "x.u8", &u8big), GGUF_E_LIMIT);
    CHECK_EQ_INT(gguf_writer_set_value(w, "x.t", &badt), GGUF_E_TYPE);

    char dir[400], path[512], err[512];
    snprintf(dir, sizeof(dir), "%s/w", test_tmpdir());
    REQUIRE(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof(path), "%s/out.gguf", dir);

    /* An alignment the reader would reject is refused before anything is written. */
    CHECK_EQ_INT(gguf_writer_set_u32(w, "general.alignment", 48), 0);
    CHECK_EQ_INT(gguf_writer_write(w, path, err, sizeof(err)), GGUF_E_ALIGNMENT);
    check_msg(__LINE__, err, path, (const char *const[]){"general.alignment", "48", NULL});
    CHECK_EQ_INT(gguf_writer_remove(w, "general.alignment"), 0);

    /* A known key of the wrong type fails the read-back check: no file, no temp file left. */
    static const int32_t ids[2] = {1, 2};
    const struct gguf_value bad_tokens = {
        .type = GGUF_VTYPE_ARRAY, .v.arr = {.type = GGUF_VTYPE_INT32, .n = 2, .data = ids}};
    CHECK_EQ_INT(gguf_writer_set_value(w, "tokenizer.ggml.tokens", &bad_tokens), 0);
    CHECK_EQ_INT(gguf_writer_write(w, path, err, sizeof(err)), GGUF_E_TYPE);
    check_msg(__LINE__, err, path, (const char *const[]){"tokenizer.ggml.tokens", NULL});
    CHECK(!exists(path));
    CHECK_EQ_INT(count_dir_entries(dir), 0);
    CHECK_EQ_INT(gguf_writer_remove(w, "tokenizer.ggml.tokens"), 0);

    /* A directory that does not exist. */
    char nodir[600];
    snprintf(nodir, sizeof(nodir), "%s/nope/out.gguf", test_tmpdir());
    CHECK_EQ_INT(gguf_writer_write(w, nodir, err, sizeof(err)), GGUF_E_IO);
    check_msg(__LINE__, err, nodir, NULL);

    /* Now it is fine, and replaces an existing file atomically. */
    write_tmp("w/out.gguf", "old", 3);
    CHECK_EQ_INT(gguf_writer_write(w, path, err, sizeof(err)), 0);
    CHECK_EQ_INT(count_dir_entries(dir), 1);
    struct gguf *g = NULL;
    CHECK_EQ_INT(gguf_open(&g, path, err, sizeof(err)), 0);
    gguf_close(g);
    gguf_writer_free(w);
    gguf_writer_free(NULL);
}

TEST(gguf_write_empty_file)
{
    struct gguf_writer *w = gguf_writer_new();
    REQUIRE(w);
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/empty.gguf", test_tmpdir());
    REQUIRE(gguf_writer_write(w, path, err, sizeof(err)) == 0);
    gguf_writer_free(w);
    struct gguf *g = NULL;
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(gguf_kv_count(g), 0);
    CHECK_EQ_INT(gguf_tensor_count(g), 0);
    gguf_close(g);
}

/* ---- the fuzz target, replayed ---- */

/* tests/fuzz/fuzz_gguf.c is linked into the unit binary when the build picks it up; weak, so
 * this test is skipped rather than failing to link when it does not. The target aborts on any
 * contract violation, which fails the test (it runs in its own process). */
__attribute__((weak)) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    void *p = NULL;
    long n;
    if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
        (p = malloc((size_t)n)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
        *size = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    if (f)
        fclose(f);
    return p;
}

TEST(gguf_fuzz_target_replay)
{
    if (!LLVMFuzzerTestOneInput) {
        fprintf(stderr, "    fuzz target not linked in; skipped\n");
        return;
    }
    struct bb b = {0};
    build_small_valid(&b);
    for (size_t n = 0; n <= b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        if (n)
            memcpy(copy, b.p, n);
        CHECK_EQ_INT(LLVMFuzzerTestOneInput(copy, n), 0);
        free(copy);
    }
    free(b.p);
    static const char *const files[] = {"fixtures/models/llama-Q4_K_M.gguf",
                                        "fixtures/models/gemma2-Q8_0.gguf",
                                        "fixtures/vocab/ggml-vocab-gpt-2.gguf"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *path = test_shared_path(files[i]);
        size_t size = 0;
        void *data = read_file(path, &size);
        CHECK(data != NULL);
        if (data)
            CHECK_EQ_INT(LLVMFuzzerTestOneInput(data, size), 0);
        free(data);
        free(path);
    }
}
