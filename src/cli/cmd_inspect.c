/* tandem inspect: print a GGUF file's header, metadata and tensor table, as text or JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tandem.h"
#include "engine/gguf.h"

#define TEXT_MAX_STRING 64       /* bytes of a string value shown in text mode */
#define TEXT_MAX_ITEMS 8         /* array elements shown in text mode */
#define TEXT_LINE_BUDGET 100     /* columns an array's elements may take */
#define JSON_FULL_ARRAY 4096     /* longer arrays are summarized as {type, count, head} */
#define JSON_HEAD 16

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem inspect [--json] MODEL.gguf\n"
               "  Prints the header, every metadata key (long arrays abbreviated), the tensor\n"
               "  table and totals; --json prints one JSON document instead.\n");
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static unsigned utf8_seq(const unsigned char *s, uint64_t n)
{
    unsigned len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
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
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* ---- text ---- */

/* Prints bytes with C-style escapes for control characters, quotes, backslashes and invalid
 * UTF-8, cut after `max` bytes with "…". Returns the columns used. */
static size_t print_escaped(FILE *f, const char *p, uint64_t len, uint64_t max)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t cols = 0;
    for (uint64_t i = 0; i < len;) {
        if (i >= max) {
            fputs("\xe2\x80\xa6", f);   /* … */
            cols++;
            break;
        }
        unsigned k = utf8_seq(s + i, len - i);
        unsigned char c = s[i];
        if (k > 1) {
            fwrite(s + i, 1, k, f);
            cols++;
            i += k;
            continue;
        }
        i++;
        switch (k ? c : 0x100) {
        case '"': cols += (size_t)fprintf(f, "\\\""); break;
        case '\\': cols += (size_t)fprintf(f, "\\\\"); break;
        case '\n': cols += (size_t)fprintf(f, "\\n"); break;
        case '\t': cols += (size_t)fprintf(f, "\\t"); break;
        case '\r': cols += (size_t)fprintf(f, "\\r"); break;
        default:
            if (k && c >= 0x20 && c < 0x7f) {
                fputc(c, f);
                cols++;
            } else {
                cols += (size_t)fprintf(f, "\\x%02x", c);
            }
        }
    }
    return cols;
}

static size_t print_quoted(FILE *f, const char *p, uint64_t len, uint64_t max)
{
    fputc('"', f);
    size_t cols = print_escaped(f, p, len, max);
    fputc('"', f);
    return cols + 2;
}

/* A key or tensor name, escaped, padded with spaces to `width` columns. */
static void print_name(FILE *f, const char *p, uint64_t len, size_t width)
{
    for (size_t cols = print_escaped(f, p, len, UINT64_MAX); cols < width; cols++)
        fputc(' ', f);
}

static size_t print_scalar(FILE *f, const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_VTYPE_INT8:
    case GGUF_VTYPE_INT16:
    case GGUF_VTYPE_INT32:
    case GGUF_VTYPE_INT64: return (size_t)fprintf(f, "%lld", (long long)v->v.i64);
    case GGUF_VTYPE_FLOAT32: return (size_t)fprintf(f, "%.7g", v->v.f64);
    case GGUF_VTYPE_FLOAT64: return (size_t)fprintf(f, "%.15g", v->v.f64);
    case GGUF_VTYPE_BOOL: return (size_t)fprintf(f, "%s", v->v.u64 ? "true" : "false");
    case GGUF_VTYPE_STRING: return print_quoted(f, v->v.str.ptr, v->v.str.len, TEXT_MAX_STRING);
    default: return (size_t)fprintf(f, "%llu", (unsigned long long)v->v.u64);
    }
}

/* A fixed-size array element as a scalar value (arrays hold raw little-endian elements). */
static struct gguf_value array_elem(const struct gguf_value *arr, uint64_t i)
{
    struct gguf_value e = {.type = arr->v.arr.type};
    switch (e.type) {
    case GGUF_VTYPE_FLOAT32:
    case GGUF_VTYPE_FLOAT64: e.v.f64 = gguf_arr_f32(arr, i); break;
    case GGUF_VTYPE_INT8:
    case GGUF_VTYPE_INT16:
    case GGUF_VTYPE_INT32:
    case GGUF_VTYPE_INT64: e.v.i64 = gguf_arr_i64(arr, i); break;
    case GGUF_VTYPE_UINT64: {
        uint64_t raw;
        memcpy(&raw, (const char *)arr->v.arr.data + i * 8, 8);
        e.v.u64 = raw;   /* gguf_arr_i64 would saturate values above INT64_MAX */
        break;
    }
    default: e.v.u64 = (uint64_t)gguf_arr_i64(arr, i); break;
    }
    if (e.type == GGUF_VTYPE_FLOAT64) {
        double d;
        memcpy(&d, (const char *)arr->v.arr.data + i * 8, 8);
        e.v.f64 = d;   /* full precision, not via float */
    }
    return e;
}

/* "[type × n] a, b, c …" within roughly `budget` columns. */
static size_t print_array(FILE *f, const struct gguf_value *v, size_t budget, unsigned items)
{
    size_t cols = (size_t)fprintf(f, "[%s \xc3\x97 %llu]", gguf_vtype_name(v->v.arr.type),
                                  (unsigned long long)v->v.arr.n) - 1;
    uint64_t shown = 0;
    for (uint64_t i = 0; i < v->v.arr.n; i++) {
        if (shown == items || cols >= budget)
            break;
        cols += (size_t)fprintf(f, i ? ", " : " ");
        if (v->v.arr.type == GGUF_VTYPE_STRING) {
            cols += print_quoted(f, v->v.arr.strs[i].ptr, v->v.arr.strs[i].len, 24);
        } else if (v->v.arr.type == GGUF_VTYPE_ARRAY) {
            fputc('(', f);
            cols += print_array(f, &v->v.arr.arrs[i], budget > cols ? budget - cols : 0, 3) + 2;
            fputc(')', f);
        } else {
            struct gguf_value e = array_elem(v, i);
            cols += print_scalar(f, &e);
        }
        shown++;
    }
    if (shown < v->v.arr.n) {
        fputs(" \xe2\x80\xa6", f);
        cols += 2;
    }
    return cols;
}

/* Pads a UTF-8 string to `width` columns (continuation bytes take none). */
static void print_padded(FILE *f, const char *s, size_t width)
{
    size_t cols = 0;
    for (const char *p = s; *p; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    fputs(s, f);
    for (; cols < width; cols++)
        fputc(' ', f);
}

static void format_shape(char *buf, size_t cap, const struct gguf_tensor *t)
{
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, d ? " \xc3\x97 %lld" : "%lld", (long long)t->ne[d]);
}

static const char *type_name(enum qtype t)
{
    const struct qtype_traits *tr = quant_traits((int)t);
    return tr ? tr->name : "?";
}

static void print_text(FILE *f, const struct gguf *g)
{
    const uint64_t n_kv = gguf_kv_count(g), n_t = gguf_tensor_count(g);
    fprintf(f, "%s: GGUF v%u, %llu bytes, alignment %u, data at offset %llu, %llu kv, %llu "
               "tensors\n",
            gguf_path(g), gguf_version(g), (unsigned long long)gguf_file_size(g),
            gguf_alignment(g), (unsigned long long)gguf_data_offset(g),
            (unsigned long long)n_kv, (unsigned long long)n_t);

    size_t kw = 3;
    for (uint64_t i = 0; i < n_kv; i++) {
        size_t l = (size_t)gguf_kv_key(g, i).len;
        if (l > kw)
            kw = l;
    }
    if (kw > 48)
        kw = 48;
    fprintf(f, "\nmetadata:\n");
    for (uint64_t i = 0; i < n_kv; i++) {
        struct gguf_str k = gguf_kv_key(g, i);
        const struct gguf_value *v = gguf_kv_value(g, i);
        fputs("  ", f);
        print_name(f, k.ptr, k.len, kw + 2);
        fprintf(f, "%-7s  ", gguf_vtype_name(v->type));
        if (v->type == GGUF_VTYPE_ARRAY)
            print_array(f, v, TEXT_LINE_BUDGET, TEXT_MAX_ITEMS);
        else
            print_scalar(f, v);
        fputc('\n', f);
    }

    size_t nw = 4, sw = 5;
    char shape[128];
    for (uint64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        size_t l = strlen(t->name);
        nw = l > nw ? l : nw;
        format_shape(shape, sizeof(shape), t);
        l = strlen(shape) - (t->n_dims - 1);   /* × is 2 bytes, 1 column */
        sw = l > sw ? l : sw;
    }
    if (!n_t) {
        fprintf(f, "\ntensors: none\n");
        return;
    }
    fprintf(f, "\ntensors:\n  ");
    print_padded(f, "name", nw + 2);
    print_padded(f, "type", 6);
    print_padded(f, "shape", sw + 2);
    fprintf(f, "%12s  %12s\n", "bytes", "offset");
    int64_t n_params = 0;
    uint64_t n_bytes = 0, by_type_bytes[QTYPE_COUNT] = {0}, by_type_count[QTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        format_shape(shape, sizeof(shape), t);
        fputs("  ", f);
        print_name(f, t->name, strlen(t->name), nw + 2);
        print_padded(f, type_name(t->type), 6);
        print_padded(f, shape, sw + 2);
        fprintf(f, "%12llu  %12llu\n", (unsigned long long)t->size,
                (unsigned long long)t->offset);
        /* Sums cannot overflow: every tensor lies inside the file. */
        n_params += gguf_tensor_nelements(t);
        n_bytes += t->size;
        by_type_bytes[t->type] += t->size;
        by_type_count[t->type]++;
    }
    fprintf(f, "\ntotal: %llu tensors, %lld parameters, %llu bytes of tensor data\n",
            (unsigned long long)n_t, (long long)n_params, (unsigned long long)n_bytes);
    struct gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) == 0) {
        const int alen = (int)(arch.len > 64 ? 64 : arch.len);
        if (tandem_arch_supported(arch.ptr, arch.len))
            fprintf(f, "architecture: %.*s, %.2f M parameters (runs on this engine)\n", alen,
                    arch.ptr, n_params / 1e6);
        else
            fprintf(f, "architecture: %.*s, %.2f M parameters (not supported; supported: %s)\n",
                    alen, arch.ptr, n_params / 1e6, tandem_supported_archs());
    }
    for (int ty = 0; ty < QTYPE_COUNT; ty++)
        if (by_type_count[ty])
            fprintf(f, "  %-6s %6llu tensors  %12llu bytes\n", type_name((enum qtype)ty),
                    (unsigned long long)by_type_count[ty], (unsigned long long)by_type_bytes[ty]);
}

/* ---- JSON ---- */

/* A JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD. NULL on allocation
 * failure. */
static json_t *json_bytes(const char *p, uint64_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    uint64_t i = 0;
    while (i < len) {
        unsigned k = utf8_seq(s + i, len - i);
        if (!k)
            break;
        i += k;
    }
    if (i == len)
        return json_stringn(p, (size_t)len);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *clean = malloc((size_t)len * 3 + 1);   /* each bad byte grows to 3 */
    if (!clean)
        return NULL;
    size_t o = 0;
    for (i = 0; i < len;) {
        unsigned k = utf8_seq(s + i, len - i);
        if (k) {
            memcpy(clean + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(clean, o);
    free(clean);
    return j;
}

static json_t *json_number(const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_VTYPE_INT8:
    case GGUF_VTYPE_INT16:
    case GGUF_VTYPE_INT32:
    case GGUF_VTYPE_INT64: return json_integer((json_int_t)v->v.i64);
    case GGUF_VTYPE_FLOAT32:
    case GGUF_VTYPE_FLOAT64:
        /* JSON has no NaN or infinity. */
        return v->v.f64 == v->v.f64 && v->v.f64 - v->v.f64 == 0 ? json_real(v->v.f64)
                                                                 : json_null();
    case GGUF_VTYPE_BOOL: return json_boolean(v->v.u64);
    default:
        /* Above INT64_MAX only a (lossy) real is available. */
        return v->v.u64 <= INT64_MAX ? json_integer((json_int_t)v->v.u64)
                                     : json_real((double)v->v.u64);
    }
}

static json_t *json_value(const struct gguf_value *v);

static json_t *json_elements(const struct gguf_value *v, uint64_t n)
{
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < n; i++) {
        json_t *e;
        if (v->v.arr.type == GGUF_VTYPE_STRING) {
            e = json_bytes(v->v.arr.strs[i].ptr, v->v.arr.strs[i].len);
        } else if (v->v.arr.type == GGUF_VTYPE_ARRAY) {
            e = json_value(&v->v.arr.arrs[i]);
        } else {
            struct gguf_value s = array_elem(v, i);
            e = json_number(&s);
        }
        if (!e || json_array_append_new(a, e)) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *json_value(const struct gguf_value *v)
{
    if (v->type == GGUF_VTYPE_STRING)
        return json_bytes(v->v.str.ptr, v->v.str.len);
    if (v->type != GGUF_VTYPE_ARRAY)
        return json_number(v);
    if (v->v.arr.n <= JSON_FULL_ARRAY)
        return json_elements(v, v->v.arr.n);
    return json_pack("{s:s, s:I, s:o}", "type", gguf_vtype_name(v->v.arr.type), "count",
                     (json_int_t)v->v.arr.n, "head", json_elements(v, JSON_HEAD));
}

static json_t *build_json(const struct gguf *g)
{
    json_t *root = NULL, *meta = json_object(), *tensors = json_array();
    char *key = NULL;
    int64_t n_params = 0;
    if (!meta || !tensors)
        goto fail;
    for (uint64_t i = 0; i < gguf_kv_count(g); i++) {
        struct gguf_str k = gguf_kv_key(g, i);
        json_t *v = json_value(gguf_kv_value(g, i));
        key = malloc((size_t)k.len + 1);   /* keys are NUL-free UTF-8 (checked by the reader) */
        if (!v || !key) {
            json_decref(v);
            goto fail;
        }
        memcpy(key, k.ptr, (size_t)k.len);
        key[k.len] = 0;
        if (json_object_set_new(meta, key, v))
            goto fail;
        free(key);
        key = NULL;
    }
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        json_t *shape = json_array();
        for (uint32_t d = 0; shape && d < t->n_dims; d++)
            if (json_array_append_new(shape, json_integer(t->ne[d]))) {
                json_decref(shape);
                shape = NULL;
            }
        json_t *jt = json_pack("{s:o?, s:s, s:o?, s:I, s:I}", "name", json_bytes(t->name,
                               strlen(t->name)), "type", type_name(t->type), "shape", shape,
                               "offset", (json_int_t)t->offset, "bytes", (json_int_t)t->size);
        if (!jt || json_array_append_new(tensors, jt))
            goto fail;
        n_params += gguf_tensor_nelements(t);
    }
    root = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:I}", "path", gguf_path(g),
                     "version", (json_int_t)gguf_version(g), "alignment",
                     (json_int_t)gguf_alignment(g), "file_size", (json_int_t)gguf_file_size(g),
                     "data_offset", (json_int_t)gguf_data_offset(g), "metadata", meta,
                     "tensors", tensors, "n_params", (json_int_t)n_params);
    struct gguf_str arch;
    if (root && gguf_get_str(g, "general.architecture", &arch) == 0)
        json_object_set_new(root, "arch_supported",
                            json_boolean(tandem_arch_supported(arch.ptr, arch.len)));
    /* json_pack's "o" steals the references, even on failure. */
    return root;
fail:
    free(key);
    json_decref(meta);
    json_decref(tensors);
    return NULL;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tandem inspect: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "tandem inspect: more than one file given\n");
            usage(stderr);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    char err[512];
    struct gguf *g = NULL;
    int rc = gguf_open(&g, path, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int status = 0;
    if (json) {
        json_t *root = build_json(g);
        if (!root) {
            fprintf(stderr, "tandem inspect: out of memory building JSON\n");
            status = 1;
        } else {
            if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
                fputc('\n', stdout) == EOF)
                status = 1;
            json_decref(root);
        }
    } else {
        print_text(stdout, g);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "tandem inspect: error writing output\n");
        status = 1;
    }
    gguf_close(g);
    return status;
}
