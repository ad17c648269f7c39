/* GGUF v2/v3 reader (mmap, strict validation) and writer. */
#ifndef TANDEM_ENGINE_GGUF_H
#define TANDEM_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/quant.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT 65536           /* larger values are rejected as malformed */
#define GGUF_MAX_NAME 256                  /* longest tensor name accepted (bytes, w/o NUL) */
#define GGUF_MAX_ARRAY_DEPTH 4             /* nesting of arrays within arrays */

/* Negative error codes; gguf_strerror names them. The detailed one-line message (file, field,
 * offending value) goes into the caller's error buffer. */
enum gguf_error {
    GGUF_OK = 0,
    GGUF_E_IO = -1,          /* open/stat/mmap/write failed */
    GGUF_E_MAGIC = -2,       /* not a GGUF file */
    GGUF_E_VERSION = -3,     /* unsupported version */
    GGUF_E_TRUNCATED = -4,   /* file ends inside a header field or tensor data */
    GGUF_E_LIMIT = -5,       /* a count/length beyond what the file can hold or a hard cap */
    GGUF_E_TYPE = -6,        /* unknown value type or tensor type, or wrong type for a known key */
    GGUF_E_SHAPE = -7,       /* n_dims, dimension, element count, or row not a block multiple */
    GGUF_E_OFFSET = -8,      /* tensor data outside the file, misaligned, or overlapping */
    GGUF_E_DUPLICATE = -9,   /* duplicate key or tensor name */
    GGUF_E_ALIGNMENT = -10,  /* general.alignment not a power of two or too large */
    GGUF_E_NOMEM = -11,
    GGUF_E_NOTFOUND = -12,   /* key or tensor absent (accessors) */
};

const char *gguf_strerror(int err);

/* Metadata value types, as numbered in the file format. */
enum gguf_vtype {
    GGUF_VTYPE_UINT8 = 0,
    GGUF_VTYPE_INT8 = 1,
    GGUF_VTYPE_UINT16 = 2,
    GGUF_VTYPE_INT16 = 3,
    GGUF_VTYPE_UINT32 = 4,
    GGUF_VTYPE_INT32 = 5,
    GGUF_VTYPE_FLOAT32 = 6,
    GGUF_VTYPE_BOOL = 7,
    GGUF_VTYPE_STRING = 8,
    GGUF_VTYPE_ARRAY = 9,
    GGUF_VTYPE_UINT64 = 10,
    GGUF_VTYPE_INT64 = 11,
    GGUF_VTYPE_FLOAT64 = 12,
    GGUF_VTYPE_COUNT
};

const char *gguf_vtype_name(enum gguf_vtype t);

/* A string inside the mapped file: not NUL-terminated, may hold any bytes. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

/* A metadata value. Everything points into the mapping or into memory owned by the gguf
 * handle; valid until gguf_close. */
struct gguf_value {
    enum gguf_vtype type;
    union {
        uint64_t u64;   /* UINT8..UINT64 and BOOL (zero-extended) */
        int64_t i64;    /* INT8..INT64 (sign-extended) */
        double f64;     /* FLOAT32, FLOAT64 */
        struct gguf_str str;
        struct {
            enum gguf_vtype type;  /* element type */
            uint64_t n;
            /* Fixed-size element types: raw little-endian elements in the file (may be
             * unaligned: read with memcpy or the gguf_arr_* helpers). */
            const void *data;
            /* STRING elements: n entries. ARRAY elements: n nested values. NULL otherwise. */
            const struct gguf_str *strs;
            const struct gguf_value *arrs;
        } arr;
    } v;
};

struct gguf_tensor {
    const char *name;             /* NUL-terminated, owned by the handle */
    uint32_t n_dims;              /* 1..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS];    /* ne[0] is the fastest-varying (row length); unused = 1 */
    enum qtype type;
    uint64_t offset;              /* relative to the start of the data section */
    uint64_t size;                /* bytes */
    const void *data;             /* into the mapping */
};

struct gguf;  /* opaque */

/* Open and validate a file; tensor data is mmapped read-only, never copied.
 * On success *out owns the mapping; on failure *out is NULL, a negative gguf_error is returned
 * and errbuf (if not NULL) holds one line: "PATH: FIELD: problem (value)". */
int gguf_open(struct gguf **out, const char *path, char *errbuf, size_t errlen);
/* The same over a caller's buffer (not copied; must outlive the handle). `name` is used in
 * error messages. For tests and fuzzing. */
int gguf_open_buffer(struct gguf **out, const void *data, size_t size, const char *name,
                     char *errbuf, size_t errlen);
/* Accepts NULL. Invalidates every pointer obtained from the handle. */
void gguf_close(struct gguf *g);

uint32_t gguf_version(const struct gguf *g);
uint32_t gguf_alignment(const struct gguf *g);
uint64_t gguf_data_offset(const struct gguf *g);   /* file offset of the data section */
uint64_t gguf_file_size(const struct gguf *g);
const char *gguf_path(const struct gguf *g);

/* Metadata, in file order. */
uint64_t gguf_kv_count(const struct gguf *g);
struct gguf_str gguf_kv_key(const struct gguf *g, uint64_t i);
const struct gguf_value *gguf_kv_value(const struct gguf *g, uint64_t i);
/* Value of a key (NUL-terminated), or NULL. */
const struct gguf_value *gguf_get(const struct gguf *g, const char *key);

/* Typed getters: return 0, GGUF_E_NOTFOUND if absent, GGUF_E_TYPE if of an incompatible
 * type. Integers convert between widths when the value fits; floats accept FLOAT32/FLOAT64. */
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out);
int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out);
int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out);
int gguf_get_f32(const struct gguf *g, const char *key, float *out);
int gguf_get_bool(const struct gguf *g, const char *key, bool *out);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out);
/* Element i of a fixed-size-typed array value, converted (no bounds check beyond i < n). */
float gguf_arr_f32(const struct gguf_value *arr, uint64_t i);
int64_t gguf_arr_i64(const struct gguf_value *arr, uint64_t i);

/* Tensors, in file order. */
uint64_t gguf_tensor_count(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i);
/* By name, or NULL (hash lookup). */
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);
int64_t gguf_tensor_nelements(const struct gguf_tensor *t);
/* The file's weight type as general.file_type names it ("Q4_K_M", llama.cpp's numbering), or
 * when absent or unknown the tensor type holding most of the bytes; "" without tensors. */
const char *gguf_file_type_name(const struct gguf *g);

/* ---- writer: builds a new file; metadata and tensor infos first, data streamed after. ---- */
struct gguf_writer;

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);   /* accepts NULL */
/* Copy every key/value of src (values deep-copied, so src may close afterwards). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf *src);
/* Set (add or replace, keeping the position of an existing key). */
int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v);
int gguf_writer_set_value(struct gguf_writer *w, const char *key, const struct gguf_value *v);
int gguf_writer_remove(struct gguf_writer *w, const char *key);
/* Add a tensor: `data` (size bytes, = row size * rows) is borrowed until gguf_writer_write
 * returns. */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum qtype type,
                           uint32_t n_dims, const int64_t *ne, const void *data, uint64_t size);
/* Write a v3 file (alignment from general.alignment if set, else 32) atomically (temp file
 * + rename). errbuf as for gguf_open. */
int gguf_writer_write(struct gguf_writer *w, const char *path, char *errbuf, size_t errlen);

#endif
