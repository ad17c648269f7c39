/* The local model cache ($TANDEM_HOME/models): locations, names, sidecar files, listing. */
#ifndef TANDEM_CLI_MODEL_CACHE_H
#define TANDEM_CLI_MODEL_CACHE_H

#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_CACHE_PATH_MAX 4096
#define MODEL_CACHE_NAME_MAX 200 /* longest file name accepted for a model (bytes) */
#define MODEL_CACHE_URL_MAX 4096
#define MODEL_CACHE_HF_DEFAULT "https://huggingface.co"
#define MODEL_CACHE_PART ".part"           /* partial download: <name>.part */
#define MODEL_CACHE_PART_INFO ".part.info" /* what the partial download is: <name>.part.info */
#define MODEL_CACHE_SHA256 ".sha256"       /* checksum, sha256sum format: <name>.sha256 */

/* Negative errors of this module; model_cache_strerror names them. */
enum model_cache_error {
    MODEL_CACHE_OK = 0,
    MODEL_CACHE_E_IO = -1,      /* a file or directory operation failed (errno kept) */
    MODEL_CACHE_E_NAME = -2,    /* not a usable model file name */
    MODEL_CACHE_E_URL = -3,     /* malformed or unsupported URL */
    MODEL_CACHE_E_TOOLONG = -4, /* a path, URL or name does not fit its buffer */
    MODEL_CACHE_E_NOMEM = -5,
    MODEL_CACHE_E_NOHOME = -6, /* neither TANDEM_HOME nor HOME is set */
};

const char *model_cache_strerror(int err);

/* The cache root: $TANDEM_HOME, else $HOME/.cache/tandem. Written to buf (cap bytes). */
int model_cache_home(char *buf, size_t cap);
/* The models directory (<home>/models). With create, the home and models directories are
 * created (mode 0700) when missing. Returns 0 or a negative model_cache_error. */
int model_cache_models_dir(char *buf, size_t cap, bool create);

/* Whether `name` can be a file in the models directory: 1..MODEL_CACHE_NAME_MAX bytes of
 * printable ASCII without '/' or '\\', not starting with '.', ending in ".gguf". */
bool model_cache_name_valid(const char *name);

/* Turns a user URL into a download URL. http:// and https:// URLs are copied; hf://OWNER/REPO
 * [@REV]/PATH becomes <endpoint>/OWNER/REPO/resolve/<REV or main>/PATH, with the endpoint from
 * $TANDEM_HF_ENDPOINT (default MODEL_CACHE_HF_DEFAULT). *is_hf (may be NULL) says whether the
 * result points at the Hugging Face endpoint (an http(s) URL under it counts too): only then
 * may a token be sent. Returns 0 or MODEL_CACHE_E_URL / MODEL_CACHE_E_TOOLONG. */
int model_cache_resolve_url(const char *in, char *out, size_t cap, bool *is_hf);
/* The file name a URL names: its last path segment, without query or fragment, with %XX
 * escapes decoded. Returns 0, or MODEL_CACHE_E_NAME when that is not a valid model name. */
int model_cache_name_from_url(const char *url, char *out, size_t cap);

/* "1.1 MiB"-style size and "292K" / "1.1B"-style parameter count, into buf. */
void model_cache_format_size(uint64_t bytes, char *buf, size_t cap);
void model_cache_format_params(uint64_t n, char *buf, size_t cap);

/* SHA-256 of a whole file as 64 lowercase hex digits (out: at least 65 bytes). */
int model_cache_sha256_file(const char *path, char *out);
/* Feeds fd from its current offset to end of file into ctx (already initialised), reading
 * through buf (cap bytes). seen (may be NULL) gets each chunk after it is hashed; stop (may be
 * NULL) is polled before every read, and once it is set the call fails with errno EINTR.
 * Returns 0 at end of file, -1 when a read or the digest fails (errno kept). */
int model_cache_digest_fd(EVP_MD_CTX *ctx, int fd, unsigned char *buf, size_t cap,
                          const volatile sig_atomic_t *stop,
                          void (*seen)(void *arg, const unsigned char *data, size_t n), void *arg);
/* Whether s is 64 hex digits; if so and norm is not NULL, copies it lowercased (65 bytes). */
bool model_cache_sha256_parse(const char *s, char *norm);
/* Reads the hex digest stored in a <name>.sha256 file; 0 on success. */
int model_cache_sha256_read(const char *sidecar, char *out);
/* Writes "<hex>  <name>\n" (sha256sum -c compatible) to `sidecar` atomically. */
int model_cache_sha256_write(const char *sidecar, const char *hex, const char *name);

/* What a partial download is: the URL it came from, its total size (0 = unknown) and the
 * server's strong ETag for it ("" = none), so a resume can ask for the same version. */
struct model_cache_part_info {
    char url[MODEL_CACHE_URL_MAX];
    uint64_t total;
    char etag[256];
};
int model_cache_part_info_read(const char *path, struct model_cache_part_info *info);
int model_cache_part_info_write(const char *path, const struct model_cache_part_info *info);

/* One entry of the models directory. */
struct model_cache_entry {
    char name[MODEL_CACHE_NAME_MAX + 1]; /* model file name (without .part) */
    char path[MODEL_CACHE_PATH_MAX];     /* the file on disk (the .part for partial ones) */
    uint64_t size;                       /* bytes on disk */
    bool partial;
    uint64_t total;    /* partial: expected size from the .part.info, 0 = unknown */
    char arch[64];     /* general.architecture, "" when unknown */
    char type[32];     /* file type (Q4_K_M, F16...), "" when unknown */
    uint64_t n_params; /* elements of all tensors, 0 when unknown */
    char sha256[65];   /* from the .sha256 sidecar, "" when absent */
    char error[512];   /* why a complete file could not be read as GGUF, "" if it could */
};

/* Lists the *.gguf and *.gguf.part files of `dir`, sorted by name, reading each complete
 * file's GGUF header (no weights are read). *out is malloc'd (free with free()); a missing
 * directory lists as empty. Returns the count or a negative model_cache_error. */
int model_cache_list(const char *dir, struct model_cache_entry **out);

#endif
