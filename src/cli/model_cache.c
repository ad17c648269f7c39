/* The local model cache: where models live, what they are called, sidecars and listing. */
#include "cli/model_cache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"

#define LIST_MAX_ENTRIES 100000 /* a models directory larger than this is listed truncated */
#define HASH_CHUNK (1u << 20)

const char *model_cache_strerror(int err)
{
    switch (err) {
    case MODEL_CACHE_OK:
        return "ok";
    case MODEL_CACHE_E_IO:
        return "I/O error";
    case MODEL_CACHE_E_NAME:
        return "not a usable model file name";
    case MODEL_CACHE_E_URL:
        return "malformed or unsupported URL";
    case MODEL_CACHE_E_TOOLONG:
        return "path or URL too long";
    case MODEL_CACHE_E_NOMEM:
        return "out of memory";
    case MODEL_CACHE_E_NOHOME:
        return "neither TANDEM_HOME nor HOME is set";
    default:
        return "unknown error";
    }
}

/* snprintf into a fixed buffer; MODEL_CACHE_E_TOOLONG when it does not fit. */
__attribute__((format(printf, 3, 4))) static int fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? MODEL_CACHE_E_TOOLONG : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

int model_cache_home(char *buf, size_t cap)
{
    const char *home = getenv("TANDEM_HOME");
    if (home && *home)
        return fmt(buf, cap, "%s", home);
    home = getenv("HOME");
    if (!home || !*home)
        return MODEL_CACHE_E_NOHOME;
    return fmt(buf, cap, "%s/.cache/tandem", home);
}

/* mkdir -p with mode 0700 for the components that do not exist yet. */
static int mkdir_parents(const char *path)
{
    char tmp[MODEL_CACHE_PATH_MAX];
    if (fmt(tmp, sizeof(tmp), "%s", path))
        return MODEL_CACHE_E_TOOLONG;
    size_t n = strlen(tmp);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0)
            continue;
        char saved = tmp[i];
        tmp[i] = 0;
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return MODEL_CACHE_E_IO;
        tmp[i] = saved;
    }
    struct stat st;
    if (stat(path, &st))
        return MODEL_CACHE_E_IO;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return MODEL_CACHE_E_IO;
    }
    return 0;
}

int model_cache_models_dir(char *buf, size_t cap, bool create)
{
    char home[MODEL_CACHE_PATH_MAX];
    int rc = model_cache_home(home, sizeof(home));
    if (rc)
        return rc;
    if ((rc = fmt(buf, cap, "%s/models", home)))
        return rc;
    if (create && (rc = mkdir_parents(buf)))
        return rc;
    return 0;
}

bool model_cache_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MODEL_CACHE_NAME_MAX || name[0] == '.' || !ends_with(name, ".gguf") ||
        n == strlen(".gguf"))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

/* Characters allowed in a URL we pass on: printable ASCII without spaces, quotes or brackets
 * that would make the URL ambiguous in a header or a message. */
static bool url_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '`' &&
           c != '{' && c != '}' && c != '|' && c != '^';
}

/* An owner, repository or revision: [A-Za-z0-9._-]+, with '%' for escaped revisions. */
static bool hf_ident_ok(const char *s, size_t n, bool rev)
{
    if (n == 0 || n > 256 || (n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.')))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && !(rev && c == '%'))
            return false;
    }
    return true;
}

/* A path inside a repository: non-empty segments, no "." or "..", no query or fragment. */
static bool hf_path_ok(const char *p)
{
    if (!*p)
        return false;
    const char *seg = p;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == 0) {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == 0)
                return true;
            seg = c + 1;
        } else if (!url_char_ok((unsigned char)*c) || *c == '?' || *c == '#') {
            return false;
        }
    }
}

static bool has_http_scheme(const char *u, size_t *scheme_len)
{
    if (!strncasecmp(u, "http://", 7)) {
        *scheme_len = 7;
        return true;
    }
    if (!strncasecmp(u, "https://", 8)) {
        *scheme_len = 8;
        return true;
    }
    return false;
}

/* http(s)://HOST... with a non-empty host and only URL characters. */
static bool http_url_ok(const char *u)
{
    size_t sl;
    if (!has_http_scheme(u, &sl))
        return false;
    const char *host = u + sl;
    if (!*host || *host == '/' || *host == '?' || *host == '#')
        return false;
    for (const char *c = u; *c; c++)
        if (!url_char_ok((unsigned char)*c))
            return false;
    return true;
}

int model_cache_resolve_url(const char *in, char *out, size_t cap, bool *is_hf)
{
    const char *endpoint = getenv("TANDEM_HF_ENDPOINT");
    char ep[MODEL_CACHE_URL_MAX];
    if (!endpoint || !*endpoint)
        endpoint = MODEL_CACHE_HF_DEFAULT;
    if (fmt(ep, sizeof(ep), "%s", endpoint))
        return MODEL_CACHE_E_TOOLONG;
    for (size_t n = strlen(ep); n > 0 && ep[n - 1] == '/'; n--)
        ep[n - 1] = 0;
    if (!http_url_ok(ep))
        return MODEL_CACHE_E_URL;
    if (is_hf)
        *is_hf = false;

    if (strncmp(in, "hf://", 5)) {
        if (!http_url_ok(in))
            return MODEL_CACHE_E_URL;
        if (fmt(out, cap, "%s", in))
            return MODEL_CACHE_E_TOOLONG;
        size_t n = strlen(ep);
        if (is_hf)
            *is_hf = !strncmp(in, ep, n) && in[n] == '/';
        return 0;
    }
    /* hf://OWNER/REPO[@REV]/PATH */
    const char *owner = in + 5, *slash = strchr(owner, '/');
    if (!slash || !hf_ident_ok(owner, (size_t)(slash - owner), false))
        return MODEL_CACHE_E_URL;
    const char *repo = slash + 1, *end = strchr(repo, '/');
    if (!end)
        return MODEL_CACHE_E_URL;
    const char *at = memchr(repo, '@', (size_t)(end - repo));
    const char *rev = "main";
    size_t rev_len = 4, repo_len = (size_t)((at ? at : end) - repo);
    if (at) {
        rev = at + 1;
        rev_len = (size_t)(end - rev);
        if (!hf_ident_ok(rev, rev_len, true))
            return MODEL_CACHE_E_URL;
    }
    if (!hf_ident_ok(repo, repo_len, false) || !hf_path_ok(end + 1))
        return MODEL_CACHE_E_URL;
    if (fmt(out, cap, "%s/%.*s/%.*s/resolve/%.*s/%s", ep, (int)(slash - owner), owner,
            (int)repo_len, repo, (int)rev_len, rev, end + 1))
        return MODEL_CACHE_E_TOOLONG;
    if (is_hf)
        *is_hf = true;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int model_cache_name_from_url(const char *url, char *out, size_t cap)
{
    size_t sl = 0, end = strcspn(url, "?#");
    if (!strncmp(url, "hf://", 5))
        sl = 5;
    else if (!has_http_scheme(url, &sl))
        return MODEL_CACHE_E_URL;
    size_t start = end;
    while (start > sl && url[start - 1] != '/')
        start--;
    if (start == sl) /* only a host: no path segment */
        return MODEL_CACHE_E_NAME;
    size_t o = 0;
    for (size_t i = start; i < end; i++) {
        int c = (unsigned char)url[i];
        if (c == '%') {
            int hi = i + 2 < end ? hexval(url[i + 1]) : -1, lo = hi >= 0 ? hexval(url[i + 2]) : -1;
            if (lo < 0)
                return MODEL_CACHE_E_NAME;
            c = hi << 4 | lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return MODEL_CACHE_E_NAME;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return model_cache_name_valid(out) ? 0 : MODEL_CACHE_E_NAME;
}

void model_cache_format_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 " B", bytes);
        return;
    }
    double v = (double)bytes / 1024;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void model_cache_format_params(uint64_t n, char *buf, size_t cap)
{
    const double p = (double)n;
    if (p >= 1e9)
        snprintf(buf, cap, "%.1fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(buf, cap, "%.1fM", p / 1e6);
    else if (p >= 1e3)
        snprintf(buf, cap, "%.0fK", p / 1e3);
    else
        snprintf(buf, cap, "%" PRIu64, n);
}

int model_cache_digest_fd(EVP_MD_CTX *ctx, int fd, unsigned char *buf, size_t cap,
                          const volatile sig_atomic_t *stop,
                          void (*seen)(void *arg, const unsigned char *data, size_t n), void *arg)
{
    for (;;) {
        if (stop && *stop) {
            errno = EINTR;
            return -1;
        }
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
            return -1;
        if (seen)
            seen(arg, buf, (size_t)n);
    }
}

int model_cache_sha256_file(const char *path, char *out)
{
    int rc = MODEL_CACHE_E_IO, fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = malloc(HASH_CHUNK), md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!buf || !ctx) {
        rc = MODEL_CACHE_E_NOMEM;
        goto out;
    }
    if (fd < 0 || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        model_cache_digest_fd(ctx, fd, buf, HASH_CHUNK, NULL, NULL, NULL))
        goto out;
    if (!EVP_DigestFinal_ex(ctx, md, &md_len) || md_len != 32)
        goto out;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    rc = 0;
out:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

bool model_cache_sha256_parse(const char *s, char *norm)
{
    for (int i = 0; i < 64; i++)
        if (hexval((unsigned char)s[i]) < 0)
            return false;
    if (s[64])
        return false;
    if (norm) {
        for (int i = 0; i < 64; i++)
            norm[i] = (char)tolower((unsigned char)s[i]);
        norm[64] = 0;
    }
    return true;
}

int model_cache_sha256_read(const char *sidecar, char *out)
{
    char line[512];
    FILE *f = fopen(sidecar, "r");
    if (!f)
        return MODEL_CACHE_E_IO;
    int rc = MODEL_CACHE_E_IO;
    if (fgets(line, sizeof(line), f) && strlen(line) > 64) {
        char hex[65];
        memcpy(hex, line, 64);
        hex[64] = 0;
        if ((line[64] == ' ' || line[64] == '\n') && model_cache_sha256_parse(hex, out))
            rc = 0;
    }
    fclose(f);
    return rc;
}

/* Writes `len` bytes to `path` via a temporary file and rename, mode 0600. */
static int write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[MODEL_CACHE_PATH_MAX];
    if (fmt(tmp, sizeof(tmp), "%s.tmp", path))
        return MODEL_CACHE_E_TOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return MODEL_CACHE_E_IO;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int ok = done == len && fsync(fd) == 0;
    if (close(fd))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return MODEL_CACHE_E_IO;
    }
    return 0;
}

int model_cache_sha256_write(const char *sidecar, const char *hex, const char *name)
{
    char line[MODEL_CACHE_NAME_MAX + 80];
    if (!model_cache_sha256_parse(hex, NULL))
        return MODEL_CACHE_E_NAME;
    if (fmt(line, sizeof(line), "%s  %s\n", hex, name))
        return MODEL_CACHE_E_TOOLONG;
    return write_atomic(sidecar, line, strlen(line));
}

int model_cache_part_info_read(const char *path, struct model_cache_part_info *info)
{
    char line[MODEL_CACHE_URL_MAX + 16];
    memset(info, 0, sizeof(*info));
    FILE *f = fopen(path, "r");
    if (!f)
        return MODEL_CACHE_E_IO;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            rc = MODEL_CACHE_E_TOOLONG;
            break;
        }
        line[n - 1] = 0;
        if (!strncmp(line, "url ", 4)) {
            if (fmt(info->url, sizeof(info->url), "%s", line + 4))
                rc = MODEL_CACHE_E_TOOLONG;
        } else if (!strncmp(line, "etag ", 5)) {
            if (fmt(info->etag, sizeof(info->etag), "%s", line + 5))
                rc = MODEL_CACHE_E_TOOLONG;
        } else if (!strncmp(line, "total ", 6)) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(line + 6, &end, 10);
            if (errno || *end || end == line + 6 || line[6] == '-')
                rc = MODEL_CACHE_E_IO;
            else
                info->total = v;
        }
    }
    if (ferror(f))
        rc = MODEL_CACHE_E_IO;
    fclose(f);
    return rc;
}

int model_cache_part_info_write(const char *path, const struct model_cache_part_info *info)
{
    char buf[MODEL_CACHE_URL_MAX + 320];
    if (strchr(info->url, '\n') || strchr(info->etag, '\n') ||
        fmt(buf, sizeof(buf), "url %s\ntotal %" PRIu64 "\netag %s\n", info->url, info->total,
            info->etag))
        return MODEL_CACHE_E_TOOLONG;
    return write_atomic(path, buf, strlen(buf));
}


/* Reads what the listing shows from a complete file's GGUF header. */
static void entry_read_gguf(struct model_cache_entry *e)
{
    struct gguf *g = NULL;
    if (gguf_open(&g, e->path, e->error, sizeof(e->error))) {
        if (!e->error[0])
            fmt(e->error, sizeof(e->error), "%s: not a readable GGUF file", e->name);
        return;
    }
    struct gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) == 0) {
        size_t n = arch.len < sizeof(e->arch) - 1 ? (size_t)arch.len : sizeof(e->arch) - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)arch.ptr[i];
            e->arch[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
        }
        e->arch[n] = 0;
    }
    snprintf(e->type, sizeof(e->type), "%s", gguf_file_type_name(g));
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++)
        e->n_params += (uint64_t)gguf_tensor_nelements(gguf_tensor_at(g, i));
    gguf_close(g);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct model_cache_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->partial - (int)y->partial;
}

int model_cache_list(const char *dir, struct model_cache_entry **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : MODEL_CACHE_E_IO;
    struct model_cache_entry *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < LIST_MAX_ENTRIES) {
        const char *fn = de->d_name;
        bool partial = ends_with(fn, ".gguf" MODEL_CACHE_PART);
        if (fn[0] == '.' || (!partial && !ends_with(fn, ".gguf")))
            continue;
        size_t name_len = strlen(fn) - (partial ? strlen(MODEL_CACHE_PART) : 0);
        if (name_len > MODEL_CACHE_NAME_MAX)
            continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            struct model_cache_entry *p = realloc(v, (size_t)nc * sizeof(*v));
            if (!p) {
                rc = MODEL_CACHE_E_NOMEM;
                goto out;
            }
            v = p;
            cap = nc;
        }
        struct model_cache_entry *e = &v[n];
        memset(e, 0, sizeof(*e));
        memcpy(e->name, fn, name_len);
        e->partial = partial;
        struct stat st;
        if (fmt(e->path, sizeof(e->path), "%s/%s", dir, fn) || stat(e->path, &st) ||
            !S_ISREG(st.st_mode))
            continue;
        e->size = (uint64_t)st.st_size;
        char side[MODEL_CACHE_PATH_MAX];
        if (partial) {
            struct model_cache_part_info info;
            if (!fmt(side, sizeof(side), "%s/%s%s", dir, e->name, MODEL_CACHE_PART_INFO) &&
                !model_cache_part_info_read(side, &info))
                e->total = info.total;
        } else {
            entry_read_gguf(e);
            if (!fmt(side, sizeof(side), "%s/%s%s", dir, e->name, MODEL_CACHE_SHA256))
                model_cache_sha256_read(side, e->sha256);
        }
        n++;
    }
    if (n)
        qsort(v, (size_t)n, sizeof(*v), entry_cmp);
    *out = v;
    v = NULL;
    rc = n;
out:
    closedir(d);
    free(v);
    return rc;
}
