/* The audit log: canonical records, appends, Ed25519 signed tree heads, verification, proofs. */
#include "trust/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

const char *audit_strerror(int err)
{
    switch (err) {
    case AUDIT_OK: return "ok";
    case AUDIT_E_ARG: return "invalid argument";
    case AUDIT_E_NOMEM: return "out of memory";
    case AUDIT_E_NOTFOUND: return "not found";
    case AUDIT_E_EXISTS: return "a head for this tree size exists already";
    case AUDIT_E_STORAGE: return "audit storage failed";
    case AUDIT_E_FORMAT: return "malformed audit record or proof";
    case AUDIT_E_TOOBIG: return "audit record too large";
    case AUDIT_E_CRYPTO: return "cryptography failure";
    case AUDIT_E_KEY: return "not a usable Ed25519 key";
    case AUDIT_E_IO: return "key file I/O failed";
    case AUDIT_E_TAMPERED: return "audit log verification failed";
    case AUDIT_E_PROOF: return "inclusion proof does not verify";
    case AUDIT_E_SIGNATURE: return "tree head signature does not verify";
    default: return "unknown audit error";
    }
}

static const char *const PRIVACY_NAMES[AUDIT_PRIVACY_COUNT] = {
    [AUDIT_PRIVACY_NONE] = "none",
    [AUDIT_PRIVACY_PASS] = "pass",
    [AUDIT_PRIVACY_LOCAL] = "local",
    [AUDIT_PRIVACY_PSEUDONYMIZE] = "pseudonymize",
    [AUDIT_PRIVACY_BLOCK] = "block",
};

static const char *const OUTCOME_NAMES[AUDIT_OUTCOME_COUNT] = {
    [AUDIT_OUTCOME_OK] = "ok",
    [AUDIT_OUTCOME_ERROR] = "error",
    [AUDIT_OUTCOME_BLOCKED] = "blocked",
    [AUDIT_OUTCOME_RATE_LIMITED] = "rate_limited",
    [AUDIT_OUTCOME_OVER_BUDGET] = "over_budget",
    [AUDIT_OUTCOME_UNAUTHORIZED] = "unauthorized",
    [AUDIT_OUTCOME_CANCELLED] = "cancelled",
};

static const char *const FAULT_NAMES[AUDIT_FAULT_COUNT] = {
    [AUDIT_FAULT_NONE] = "none",
    [AUDIT_FAULT_MISSING] = "missing_entry",
    [AUDIT_FAULT_PARSE] = "record_unparsable",
    [AUDIT_FAULT_LEAF_HASH] = "leaf_hash_mismatch",
    [AUDIT_FAULT_TIMESTAMP] = "timestamp_mismatch",
    [AUDIT_FAULT_HEAD_SIGNATURE] = "head_signature_invalid",
    [AUDIT_FAULT_HEAD_ROOT] = "head_root_mismatch",
};

const char *audit_privacy_name(enum audit_privacy p)
{
    return (unsigned)p < AUDIT_PRIVACY_COUNT ? PRIVACY_NAMES[p] : NULL;
}

const char *audit_outcome_name(enum audit_outcome o)
{
    return (unsigned)o < AUDIT_OUTCOME_COUNT ? OUTCOME_NAMES[o] : NULL;
}

const char *audit_fault_name(enum audit_fault f)
{
    return (unsigned)f < AUDIT_FAULT_COUNT ? FAULT_NAMES[f] : NULL;
}

/* Storage callbacks may return their own negative codes; keep ours, fold the rest. */
static int storage_err(int e)
{
    if (e == AUDIT_E_NOTFOUND || e == AUDIT_E_EXISTS)
        return e;
    return e < 0 ? AUDIT_E_STORAGE : e;
}

static int merkle_err(int e)
{
    switch (e) {
    case MERKLE_OK: return AUDIT_OK;
    case MERKLE_E_PROOF: return AUDIT_E_PROOF;
    case MERKLE_E_ARG: return AUDIT_E_ARG;
    case MERKLE_E_SOURCE: return AUDIT_E_STORAGE;
    default: return AUDIT_E_CRYPTO;
    }
}

static void hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a hex string of any even length up to 2*cap digits; *n gets the byte count. */
static int hex_decode(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2 || len / 2 > cap)
        return AUDIT_E_FORMAT;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return AUDIT_E_FORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *n = len / 2;
    return AUDIT_OK;
}

/* ---- Records ------------------------------------------------------------------------------ */

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

/* Length of a NUL-terminated string field, or -1 when it is unterminated or not UTF-8. */
static long field_len(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n >= cap || n > 255 || !utf8_valid((const uint8_t *)s, n))
        return -1;
    return (long)n;
}

/* How much of a text is kept: at most AUDIT_TEXT_MAX bytes, cut at a code point boundary. */
static size_t text_keep(const char *t, size_t n)
{
    if (n <= AUDIT_TEXT_MAX)
        return n;
    size_t cut = AUDIT_TEXT_MAX;
    while (cut > 0 && ((uint8_t)t[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

int audit_record_set_texts(struct audit_record *r, const char *prompt, size_t prompt_len,
                           const char *response, size_t response_len)
{
    if (!r || (!prompt && prompt_len) || (!response && response_len))
        return AUDIT_E_ARG;
    if (merkle_sha256(prompt, prompt_len, r->prompt_sha256) ||
        merkle_sha256(response, response_len, r->response_sha256))
        return AUDIT_E_CRYPTO;
    r->prompt_text = prompt;
    r->prompt_len = prompt_len;
    r->response_text = response;
    r->response_len = response_len;
    r->prompt_truncated = r->response_truncated = false;
    return AUDIT_OK;
}

enum {
    REC_PROMPT = 1,           /* flags: prompt text follows */
    REC_RESPONSE = 2,         /* response text follows */
    REC_PROMPT_CUT = 4,       /* the prompt text was cut to AUDIT_TEXT_MAX */
    REC_RESPONSE_CUT = 8,
    REC_FLAGS_ALL = 15,
};

struct wbuf {
    uint8_t *p;
    size_t n;
};

static void put_u8(struct wbuf *w, uint8_t v)
{
    w->p[w->n++] = v;
}

static void put_be(struct wbuf *w, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        w->p[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct wbuf *w, const void *b, size_t n)
{
    if (n)
        memcpy(w->p + w->n, b, n);
    w->n += n;
}

int audit_record_encode(const struct audit_record *r, bool include_text, uint8_t **out,
                        size_t *len)
{
    if (!r || !out || !len)
        return AUDIT_E_ARG;
    *out = NULL;
    *len = 0;
    long lreq = field_len(r->request_id, sizeof(r->request_id));
    long lkey = field_len(r->key_id, sizeof(r->key_id));
    long lmodel = field_len(r->model, sizeof(r->model));
    long ltarget = field_len(r->target, sizeof(r->target));
    if (lreq < 0 || lkey < 0 || lmodel < 0 || ltarget < 0)
        return AUDIT_E_ARG;
    if ((unsigned)r->privacy >= AUDIT_PRIVACY_COUNT || (unsigned)r->outcome >= AUDIT_OUTCOME_COUNT)
        return AUDIT_E_ARG;
    bool with_prompt = include_text && r->prompt_text;
    bool with_response = include_text && r->response_text;
    size_t kp = 0, kr = 0;
    uint8_t flags = 0;
    if (with_prompt) {
        if (!utf8_valid((const uint8_t *)r->prompt_text, r->prompt_len))
            return AUDIT_E_ARG;
        kp = text_keep(r->prompt_text, r->prompt_len);
        flags |= REC_PROMPT | (kp < r->prompt_len || r->prompt_truncated ? REC_PROMPT_CUT : 0);
    }
    if (with_response) {
        if (!utf8_valid((const uint8_t *)r->response_text, r->response_len))
            return AUDIT_E_ARG;
        kr = text_keep(r->response_text, r->response_len);
        flags |= REC_RESPONSE |
                 (kr < r->response_len || r->response_truncated ? REC_RESPONSE_CUT : 0);
    }
    size_t size = 1 + 8 + 4 + (size_t)(lreq + lkey + lmodel + ltarget) + 1 + 1 + 2 +
                  2 * AUDIT_HASH_SIZE + 1 + (with_prompt ? 4 + kp : 0) +
                  (with_response ? 4 + kr : 0);
    if (size > AUDIT_RECORD_MAX)
        return AUDIT_E_TOOBIG;
    struct wbuf w = {malloc(size), 0};
    if (!w.p)
        return AUDIT_E_NOMEM;
    put_u8(&w, AUDIT_RECORD_VERSION);
    put_be(&w, (uint64_t)r->ts_ms, 8);
    put_u8(&w, (uint8_t)lreq);
    put_bytes(&w, r->request_id, (size_t)lreq);
    put_u8(&w, (uint8_t)lkey);
    put_bytes(&w, r->key_id, (size_t)lkey);
    put_u8(&w, (uint8_t)lmodel);
    put_bytes(&w, r->model, (size_t)lmodel);
    put_u8(&w, (uint8_t)ltarget);
    put_bytes(&w, r->target, (size_t)ltarget);
    put_u8(&w, (uint8_t)r->privacy);
    put_u8(&w, (uint8_t)r->outcome);
    put_be(&w, r->http_status, 2);
    put_bytes(&w, r->prompt_sha256, AUDIT_HASH_SIZE);
    put_bytes(&w, r->response_sha256, AUDIT_HASH_SIZE);
    put_u8(&w, flags);
    if (with_prompt) {
        put_be(&w, kp, 4);
        put_bytes(&w, r->prompt_text, kp);
    }
    if (with_response) {
        put_be(&w, kr, 4);
        put_bytes(&w, r->response_text, kr);
    }
    *out = w.p;
    *len = w.n;
    return AUDIT_OK;
}

struct rbuf {
    const uint8_t *p;
    size_t n, off;
};

static bool get_be(struct rbuf *b, int bytes, uint64_t *v)
{
    if (b->n - b->off < (size_t)bytes)
        return false;
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x = x << 8 | b->p[b->off++];
    *v = x;
    return true;
}

static bool get_str(struct rbuf *b, char *dst, size_t cap)
{
    uint64_t n;
    if (!get_be(b, 1, &n) || n >= cap || b->n - b->off < n)
        return false;
    const uint8_t *s = b->p + b->off;
    if (memchr(s, 0, n) || !utf8_valid(s, n))
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    b->off += n;
    return true;
}

static bool get_text(struct rbuf *b, const char **text, size_t *len)
{
    uint64_t n;
    if (!get_be(b, 4, &n) || n > AUDIT_TEXT_MAX || b->n - b->off < n)
        return false;
    if (!utf8_valid(b->p + b->off, n))
        return false;
    *text = (const char *)(b->p + b->off);
    *len = n;
    b->off += n;
    return true;
}

int audit_record_decode(const uint8_t *buf, size_t len, struct audit_record *out)
{
    if (!buf || !out)
        return AUDIT_E_ARG;
    memset(out, 0, sizeof(*out));
    if (len > AUDIT_RECORD_MAX)
        return AUDIT_E_FORMAT;
    struct rbuf b = {buf, len, 0};
    uint64_t v, ts, priv, outc, status, flags;
    if (!get_be(&b, 1, &v) || v != AUDIT_RECORD_VERSION || !get_be(&b, 8, &ts))
        return AUDIT_E_FORMAT;
    out->ts_ms = (int64_t)ts;
    if (!get_str(&b, out->request_id, sizeof(out->request_id)) ||
        !get_str(&b, out->key_id, sizeof(out->key_id)) ||
        !get_str(&b, out->model, sizeof(out->model)) ||
        !get_str(&b, out->target, sizeof(out->target)))
        return AUDIT_E_FORMAT;
    if (!get_be(&b, 1, &priv) || priv >= AUDIT_PRIVACY_COUNT || !get_be(&b, 1, &outc) ||
        outc >= AUDIT_OUTCOME_COUNT || !get_be(&b, 2, &status))
        return AUDIT_E_FORMAT;
    out->privacy = (enum audit_privacy)priv;
    out->outcome = (enum audit_outcome)outc;
    out->http_status = (uint16_t)status;
    if (b.n - b.off < 2 * AUDIT_HASH_SIZE)
        return AUDIT_E_FORMAT;
    memcpy(out->prompt_sha256, b.p + b.off, AUDIT_HASH_SIZE);
    memcpy(out->response_sha256, b.p + b.off + AUDIT_HASH_SIZE, AUDIT_HASH_SIZE);
    b.off += 2 * AUDIT_HASH_SIZE;
    if (!get_be(&b, 1, &flags) || (flags & ~(uint64_t)REC_FLAGS_ALL))
        return AUDIT_E_FORMAT;
    if (((flags & REC_PROMPT_CUT) && !(flags & REC_PROMPT)) ||
        ((flags & REC_RESPONSE_CUT) && !(flags & REC_RESPONSE)))
        return AUDIT_E_FORMAT;
    if ((flags & REC_PROMPT) && !get_text(&b, &out->prompt_text, &out->prompt_len))
        return AUDIT_E_FORMAT;
    if ((flags & REC_RESPONSE) && !get_text(&b, &out->response_text, &out->response_len))
        return AUDIT_E_FORMAT;
    out->prompt_truncated = (flags & REC_PROMPT_CUT) != 0;
    out->response_truncated = (flags & REC_RESPONSE_CUT) != 0;
    if (b.off != b.n)
        return AUDIT_E_FORMAT;
    return AUDIT_OK;
}

/* json_object_set_new that remembers a failure (NULL value or set error). */
static void jset(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        *ok = false;
}

static json_t *jhash(const uint8_t h[AUDIT_HASH_SIZE])
{
    char hex[2 * AUDIT_HASH_SIZE + 1];
    hex_encode(h, AUDIT_HASH_SIZE, hex);
    return json_string(hex);
}

static int dump_json(json_t *o, bool ok, char **out)
{
    if (!o)
        return AUDIT_E_NOMEM;
    *out = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return *out ? AUDIT_OK : AUDIT_E_NOMEM;
}

int audit_record_to_json(const struct audit_record *r, char **out)
{
    if (!r || !out)
        return AUDIT_E_ARG;
    *out = NULL;
    const char *priv = audit_privacy_name(r->privacy), *outc = audit_outcome_name(r->outcome);
    if (!priv || !outc)
        return AUDIT_E_ARG;
    json_t *o = json_object();
    bool ok = o != NULL;
    if (o) {
        jset(o, "version", json_integer(AUDIT_RECORD_VERSION), &ok);
        jset(o, "ts_ms", json_integer(r->ts_ms), &ok);
        jset(o, "request_id", json_string(r->request_id), &ok);
        jset(o, "key_id", json_string(r->key_id), &ok);
        jset(o, "model", json_string(r->model), &ok);
        jset(o, "target", json_string(r->target), &ok);
        jset(o, "privacy", json_string(priv), &ok);
        jset(o, "outcome", json_string(outc), &ok);
        jset(o, "http_status", json_integer(r->http_status), &ok);
        jset(o, "prompt_sha256", jhash(r->prompt_sha256), &ok);
        jset(o, "response_sha256", jhash(r->response_sha256), &ok);
        if (r->prompt_text) {
            jset(o, "prompt", json_stringn(r->prompt_text, r->prompt_len), &ok);
            if (r->prompt_truncated)
                jset(o, "prompt_truncated", json_true(), &ok);
        }
        if (r->response_text) {
            jset(o, "response", json_stringn(r->response_text, r->response_len), &ok);
            if (r->response_truncated)
                jset(o, "response_truncated", json_true(), &ok);
        }
    }
    return dump_json(o, ok, out);
}

/* ---- Keys --------------------------------------------------------------------------------- */

struct audit_key {
    EVP_PKEY *pkey;
    bool has_private;
};

static int key_wrap(EVP_PKEY *pk, struct audit_key **out)
{
    if (!EVP_PKEY_is_a(pk, "ED25519")) {
        EVP_PKEY_free(pk);
        return AUDIT_E_KEY;
    }
    struct audit_key *k = calloc(1, sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pk);
        return AUDIT_E_NOMEM;
    }
    size_t n = 0;
    k->pkey = pk;
    k->has_private = EVP_PKEY_get_raw_private_key(pk, NULL, &n) == 1 && n == 32;
    ERR_clear_error();
    *out = k;
    return AUDIT_OK;
}

int audit_key_generate(struct audit_key **out)
{
    if (!out)
        return AUDIT_E_ARG;
    *out = NULL;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
    int ok = ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pk) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pk);
        ERR_clear_error();
        return AUDIT_E_CRYPTO;
    }
    return key_wrap(pk, out);
}

/* Refuses to prompt for a passphrase: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

int audit_key_load(const char *path, struct audit_key **out)
{
    if (!path || !out)
        return AUDIT_E_ARG;
    *out = NULL;
    enum { KEY_FILE_MAX = 64 * 1024 };
    char *text = malloc(KEY_FILE_MAX + 1);
    if (!text)
        return AUDIT_E_NOMEM;
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(text);
        return AUDIT_E_IO;
    }
    size_t n = fread(text, 1, KEY_FILE_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n > KEY_FILE_MAX) {
        free(text);
        return rerr ? AUDIT_E_IO : AUDIT_E_KEY;
    }
    EVP_PKEY *pk = NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)n);
    if (bio)
        pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!pk) {
        bio = BIO_new_mem_buf(text, (int)n);
        if (bio)
            pk = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    OPENSSL_cleanse(text, n);
    free(text);
    if (!pk)
        return AUDIT_E_KEY;
    return key_wrap(pk, out);
}

int audit_key_save(const struct audit_key *k, const char *path, bool private_part)
{
    if (!k || !path || (private_part && !k->has_private))
        return AUDIT_E_ARG;
    int rc = AUDIT_E_CRYPTO;
    int fd = -1;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return AUDIT_E_NOMEM;
    int ok = private_part ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(bio, k->pkey);
    if (ok != 1)
        goto out;
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data)
        goto out;
    rc = AUDIT_E_IO;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private_part ? 0600 : 0644);
    if (fd < 0)
        goto out;
    for (long off = 0; off < len;) {
        ssize_t w = write(fd, data + off, (size_t)(len - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += w;
    }
    if (fsync(fd) != 0)
        goto out;
    rc = AUDIT_OK;
out:
    if (fd >= 0 && close(fd) != 0 && rc == AUDIT_OK)
        rc = AUDIT_E_IO;
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

bool audit_key_has_private(const struct audit_key *k)
{
    return k && k->has_private;
}

int audit_key_id(const struct audit_key *k, char out[2 * AUDIT_HASH_SIZE + 1])
{
    if (!k || !out)
        return AUDIT_E_ARG;
    uint8_t raw[32], h[AUDIT_HASH_SIZE];
    size_t n = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &n) != 1 || n != sizeof(raw)) {
        ERR_clear_error();
        return AUDIT_E_CRYPTO;
    }
    if (merkle_sha256(raw, n, h))
        return AUDIT_E_CRYPTO;
    hex_encode(h, AUDIT_HASH_SIZE, out);
    return AUDIT_OK;
}

void audit_key_free(struct audit_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

#define HEAD_CONTEXT "tandem-audit-head-v1"
enum { HEAD_CONTEXT_LEN = sizeof(HEAD_CONTEXT) - 1, HEAD_MSG_LEN = HEAD_CONTEXT_LEN + 8 + 32 + 8 };
_Static_assert(HEAD_MSG_LEN == 68, "signed head message layout");

static void head_message(const struct audit_head *h, uint8_t msg[HEAD_MSG_LEN])
{
    struct wbuf w = {msg, 0};
    put_bytes(&w, HEAD_CONTEXT, HEAD_CONTEXT_LEN);
    put_be(&w, h->tree_size, 8);
    put_bytes(&w, h->root, AUDIT_HASH_SIZE);
    put_be(&w, (uint64_t)h->ts_ms, 8);
}

int audit_head_sign(const struct audit_key *k, struct audit_head *h)
{
    if (!k || !h)
        return AUDIT_E_ARG;
    if (!k->has_private)
        return AUDIT_E_KEY;
    uint8_t msg[HEAD_MSG_LEN];
    head_message(h, msg);
    size_t siglen = sizeof(h->sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, h->sig, &siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        h->sig_len = 0;
        return AUDIT_E_CRYPTO;
    }
    h->sig_len = siglen;
    return AUDIT_OK;
}

int audit_head_verify(const struct audit_key *k, const struct audit_head *h)
{
    if (!k || !h)
        return AUDIT_E_ARG;
    if (h->sig_len == 0 || h->sig_len > sizeof(h->sig))
        return AUDIT_E_SIGNATURE;
    uint8_t msg[HEAD_MSG_LEN];
    head_message(h, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return AUDIT_E_NOMEM;
    int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, h->sig, h->sig_len, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? AUDIT_OK : AUDIT_E_SIGNATURE;
}

/* ---- Reading stored leaf hashes ----------------------------------------------------------- */

/* A merkle_leaf_fn over storage, batching through leaf_hashes when the storage has it. */
struct leaf_reader {
    const struct audit_storage *st;
    uint64_t first, n;                      /* cached window [first, first + n) */
    int err;                                /* the audit error of the last failure */
    uint8_t buf[256][AUDIT_HASH_SIZE];
};

static void reader_init(struct leaf_reader *r, const struct audit_storage *st)
{
    r->st = st;
    r->first = r->n = 0;
    r->err = 0;
}

static int reader_get(void *ud, uint64_t idx, uint8_t out[MERKLE_HASH_SIZE])
{
    struct leaf_reader *r = ud;
    const struct audit_storage_ops *ops = r->st->ops;
    if (idx - r->first < r->n && idx >= r->first) {
        memcpy(out, r->buf[idx - r->first], AUDIT_HASH_SIZE);
        return 0;
    }
    int e;
    if (ops->leaf_hashes) {
        uint64_t got = 0;
        e = ops->leaf_hashes(r->st->ud, idx, 256, r->buf, &got);
        if (e == 0 && got == 0)
            e = AUDIT_E_NOTFOUND;
        if (e == 0) {
            r->first = idx;
            r->n = got > 256 ? 256 : got;
            memcpy(out, r->buf[0], AUDIT_HASH_SIZE);
            return 0;
        }
    } else {
        e = ops->get(r->st->ud, idx, NULL, out, NULL, NULL);
    }
    if (e)
        r->err = storage_err(e);
    return e ? r->err : 0;
}

static int reader_err(const struct leaf_reader *r, int merkle_rc)
{
    if (merkle_rc == MERKLE_E_SOURCE && r->err)
        return r->err;
    return merkle_err(merkle_rc);
}

static bool storage_ok(const struct audit_storage *st)
{
    const struct audit_storage_ops *o = st ? st->ops : NULL;
    return o && o->append && o->count && o->get && o->head_put && o->head_latest;
}

/* ---- The log ------------------------------------------------------------------------------ */

struct audit_log {
    struct audit_storage st;
    struct audit_log_options opt;
    pthread_mutex_t mu;
    struct merkle_range range;   /* the leaves this log has folded in, in index order */
};

/* Folds stored entries [range.size, upto) into the range. Called with mu held. */
static int log_catch_up(struct audit_log *log, uint64_t upto)
{
    if (upto < log->range.size)
        return AUDIT_E_TAMPERED;   /* the storage lost entries this log has seen */
    struct leaf_reader *rd = malloc(sizeof(*rd));
    if (!rd)
        return AUDIT_E_NOMEM;
    reader_init(rd, &log->st);
    int rc = AUDIT_OK;
    while (log->range.size < upto) {
        uint8_t h[AUDIT_HASH_SIZE];
        int e = reader_get(rd, log->range.size, h);
        if (e) {
            rc = e == AUDIT_E_NOTFOUND ? AUDIT_E_TAMPERED : e;
            break;
        }
        if (merkle_range_push(&log->range, h)) {
            rc = AUDIT_E_CRYPTO;
            break;
        }
    }
    free(rd);
    return rc;
}

int audit_log_open(const struct audit_storage *st, const struct audit_log_options *opt,
                   struct audit_log **out)
{
    if (!out || !storage_ok(st))
        return AUDIT_E_ARG;
    *out = NULL;
    struct audit_log *log = calloc(1, sizeof(*log));
    if (!log)
        return AUDIT_E_NOMEM;
    log->st = *st;
    if (opt)
        log->opt = *opt;
    merkle_range_init(&log->range);
    if (pthread_mutex_init(&log->mu, NULL) != 0) {
        free(log);
        return AUDIT_E_NOMEM;
    }
    uint64_t n = 0;
    int rc = storage_err(st->ops->count(st->ud, &n));
    if (rc == 0)
        rc = log_catch_up(log, n);
    if (rc) {
        audit_log_free(log);
        return rc;
    }
    *out = log;
    return AUDIT_OK;
}

void audit_log_free(struct audit_log *log)
{
    if (!log)
        return;
    pthread_mutex_destroy(&log->mu);
    free(log);
}

uint64_t audit_log_size(struct audit_log *log)
{
    if (!log)
        return 0;
    pthread_mutex_lock(&log->mu);
    uint64_t n = log->range.size;
    pthread_mutex_unlock(&log->mu);
    return n;
}

int audit_append(struct audit_log *log, const struct audit_record *r, uint64_t *idx)
{
    if (!log || !r)
        return AUDIT_E_ARG;
    uint8_t *rec = NULL;
    size_t len = 0;
    uint8_t leaf[AUDIT_HASH_SIZE];
    int rc = audit_record_encode(r, log->opt.include_text, &rec, &len);
    if (rc)
        return rc;
    if (merkle_leaf_hash(rec, len, leaf)) {
        free(rec);
        return AUDIT_E_CRYPTO;
    }
    uint64_t at = 0;
    pthread_mutex_lock(&log->mu);
    rc = storage_err(log->st.ops->append(log->st.ud, r->ts_ms, rec, len, leaf, &at));
    if (rc == 0 && at != log->range.size)
        rc = log_catch_up(log, at);   /* another writer appended in between */
    if (rc == 0 && merkle_range_push(&log->range, leaf))
        rc = AUDIT_E_CRYPTO;
    if (rc && rc != AUDIT_E_STORAGE)
        merkle_range_init(&log->range);   /* rebuilt from storage on the next head */
    pthread_mutex_unlock(&log->mu);
    free(rec);
    if (rc == 0 && idx)
        *idx = at;
    return rc;
}

int audit_sign_head(struct audit_log *log, const struct audit_key *k, int64_t ts_ms,
                    struct audit_head *out)
{
    if (!log || !k)
        return AUDIT_E_ARG;
    if (!k->has_private)
        return AUDIT_E_KEY;
    struct audit_head *h = calloc(1, sizeof(*h)), *latest = calloc(1, sizeof(*latest));
    int rc = h && latest ? AUDIT_OK : AUDIT_E_NOMEM;
    if (rc)
        goto out;
    pthread_mutex_lock(&log->mu);
    uint64_t n = 0;
    rc = storage_err(log->st.ops->count(log->st.ud, &n));
    if (rc == 0)
        rc = log_catch_up(log, n);
    if (rc == 0) {
        int e = storage_err(log->st.ops->head_latest(log->st.ud, latest));
        if (e == 0 && latest->tree_size == n)
            rc = AUDIT_E_EXISTS;
        else if (e == 0 && latest->tree_size > n)
            rc = AUDIT_E_TAMPERED;   /* a head covers entries that are gone */
        else if (e != 0 && e != AUDIT_E_NOTFOUND)
            rc = e;
    }
    if (rc == 0) {
        h->tree_size = n;
        h->ts_ms = ts_ms;
        if (merkle_range_root(&log->range, h->root))
            rc = AUDIT_E_CRYPTO;
    }
    if (rc == 0)
        rc = audit_head_sign(k, h);
    if (rc == 0)
        rc = storage_err(log->st.ops->head_put(log->st.ud, h));
    pthread_mutex_unlock(&log->mu);
    if (rc == 0 && out)
        *out = *h;
out:
    free(h);
    free(latest);
    return rc;
}

/* ---- Verification ------------------------------------------------------------------------- */

/* Iterates the stored heads by increasing tree size (only the latest one without head_next). */
struct head_iter {
    const struct audit_storage *st;
    bool have;
    bool latest_only_done;
    struct audit_head h;
};

static int head_iter_next(struct head_iter *it, uint64_t min_size)
{
    const struct audit_storage_ops *o = it->st->ops;
    int e;
    it->have = false;
    if (o->head_next) {
        e = o->head_next(it->st->ud, min_size, &it->h);
    } else if (!it->latest_only_done) {
        it->latest_only_done = true;
        e = o->head_latest(it->st->ud, &it->h);
        if (e == 0 && it->h.tree_size < min_size)
            e = AUDIT_E_NOTFOUND;
    } else {
        e = AUDIT_E_NOTFOUND;
    }
    if (e == AUDIT_E_NOTFOUND)
        return AUDIT_OK;
    if (e)
        return storage_err(e);
    if (it->h.tree_size < min_size || it->h.sig_len > AUDIT_SIG_MAX)
        return AUDIT_E_STORAGE;   /* the storage broke the head_next contract */
    it->have = true;
    return AUDIT_OK;
}

static int report_fault(struct audit_report *rep, enum audit_fault f, uint64_t idx,
                        const struct audit_head *head, const char *why)
{
    rep->fault = f;
    rep->idx = idx;
    if (head) {
        rep->head = true;
        rep->head_size = head->tree_size;
        snprintf(rep->detail, sizeof(rep->detail), "%s: head for tree size %" PRIu64 ": %s",
                 audit_fault_name(f), head->tree_size, why);
    } else {
        snprintf(rep->detail, sizeof(rep->detail), "%s: entry %" PRIu64 ": %s",
                 audit_fault_name(f), idx, why);
    }
    return AUDIT_E_TAMPERED;
}

/* Checks one head against the root of the entries verified so far. */
static int check_head(const struct audit_head *h, const struct merkle_range *range,
                      const struct audit_key *key, struct audit_report *rep)
{
    uint8_t root[AUDIT_HASH_SIZE];
    if (merkle_range_root(range, root))
        return AUDIT_E_CRYPTO;
    if (key) {
        int e = audit_head_verify(key, h);
        if (e == AUDIT_E_SIGNATURE)
            return report_fault(rep, AUDIT_FAULT_HEAD_SIGNATURE, range->size, h,
                                h->sig_len ? "signature does not verify under the given key"
                                           : "head is not signed");
        if (e)
            return e;
    }
    if (memcmp(root, h->root, AUDIT_HASH_SIZE) != 0)
        return report_fault(rep, AUDIT_FAULT_HEAD_ROOT, range->size, h,
                            "root differs from the root recomputed from the records");
    rep->heads_ok++;
    return AUDIT_OK;
}

int audit_verify(const struct audit_storage *st, const struct audit_key *key,
                 struct audit_report *report)
{
    if (!report)
        return AUDIT_E_ARG;
    memset(report, 0, sizeof(*report));
    if (!storage_ok(st))
        return AUDIT_E_ARG;
    struct merkle_range *range = malloc(sizeof(*range));
    struct head_iter *it = calloc(1, sizeof(*it));
    int rc = range && it ? AUDIT_OK : AUDIT_E_NOMEM;
    if (rc)
        goto out;
    merkle_range_init(range);
    it->st = st;
    uint64_t n = 0;
    rc = storage_err(st->ops->count(st->ud, &n));
    if (rc)
        goto out;
    report->entries = n;
    rc = head_iter_next(it, 0);
    for (uint64_t idx = 0; rc == 0; idx++) {
        /* Heads over exactly the first idx entries are checked before entry idx is read. */
        while (rc == 0 && it->have && it->h.tree_size == idx) {
            rc = check_head(&it->h, range, key, report);
            if (rc == 0)
                rc = head_iter_next(it, idx + 1);
        }
        if (rc || idx == n)
            break;
        int64_t ts = 0;
        uint8_t stored[AUDIT_HASH_SIZE], leaf[AUDIT_HASH_SIZE];
        uint8_t *rec = NULL;
        size_t len = 0;
        int e = st->ops->get(st->ud, idx, &ts, stored, &rec, &len);
        if (e == AUDIT_E_NOTFOUND) {
            rc = report_fault(report, AUDIT_FAULT_MISSING, idx, NULL, "no entry with this index");
            break;
        }
        if (e) {
            rc = storage_err(e);
            break;
        }
        struct audit_record r;
        if (!rec || audit_record_decode(rec, len, &r) != 0) {
            rc = report_fault(report, AUDIT_FAULT_PARSE, idx, NULL, "record does not parse");
        } else if (merkle_leaf_hash(rec, len, leaf) != 0) {
            rc = AUDIT_E_CRYPTO;
        } else if (memcmp(leaf, stored, AUDIT_HASH_SIZE) != 0) {
            rc = report_fault(report, AUDIT_FAULT_LEAF_HASH, idx, NULL,
                              "record does not hash to its stored leaf hash");
        } else if (ts != r.ts_ms) {
            rc = report_fault(report, AUDIT_FAULT_TIMESTAMP, idx, NULL,
                              "stored timestamp differs from the record's");
        } else if (merkle_range_push(range, leaf) != 0) {
            rc = AUDIT_E_CRYPTO;
        } else {
            report->entries_ok++;
        }
        free(rec);
    }
    /* A head past the last entry: the entries it covers are gone (truncation). */
    if (rc == 0 && it->have)
        rc = report_fault(report, AUDIT_FAULT_MISSING, n, &it->h,
                          "head covers entries past the end of the log");
out:
    free(range);
    free(it);
    return rc;
}

/* ---- Proofs ------------------------------------------------------------------------------- */

/* The stored head for exactly tree_size, if any: *found tells. */
static int head_for_size(const struct audit_storage *st, uint64_t tree_size,
                         struct audit_head *out, bool *found)
{
    *found = false;
    int e = st->ops->head_next ? st->ops->head_next(st->ud, tree_size, out)
                               : st->ops->head_latest(st->ud, out);
    if (e == AUDIT_E_NOTFOUND)
        return AUDIT_OK;
    if (e)
        return storage_err(e);
    *found = out->tree_size == tree_size && out->sig_len <= AUDIT_SIG_MAX;
    return AUDIT_OK;
}

int audit_inclusion_proof(const struct audit_storage *st, uint64_t idx, uint64_t tree_size,
                          struct audit_inclusion *out)
{
    if (!out || !storage_ok(st))
        return AUDIT_E_ARG;
    memset(out, 0, sizeof(*out));
    int rc;
    if (tree_size == 0) {
        rc = storage_err(st->ops->head_latest(st->ud, &out->head));
        if (rc)
            return rc;
        if (out->head.sig_len > AUDIT_SIG_MAX)
            return AUDIT_E_STORAGE;
        tree_size = out->head.tree_size;
        out->has_head = true;
    } else {
        rc = head_for_size(st, tree_size, &out->head, &out->has_head);
        if (rc)
            return rc;
        if (!out->has_head)
            memset(&out->head, 0, sizeof(out->head));
    }
    uint64_t n = 0;
    rc = storage_err(st->ops->count(st->ud, &n));
    if (rc)
        return rc;
    if (tree_size > n)
        return out->has_head ? AUDIT_E_TAMPERED : AUDIT_E_ARG;
    if (idx >= tree_size)
        return AUDIT_E_ARG;
    out->leaf_index = idx;
    out->tree_size = tree_size;
    struct leaf_reader *rd = malloc(sizeof(*rd));
    if (!rd)
        return AUDIT_E_NOMEM;
    reader_init(rd, st);
    rc = reader_get(rd, idx, out->leaf_hash);
    if (rc == 0)
        rc = reader_err(rd, merkle_inclusion_proof(reader_get, rd, idx, tree_size, &out->path,
                                                   NULL));
    if (rc == 0)
        rc = merkle_err(merkle_inclusion_root(idx, tree_size, out->leaf_hash,
                                              (const uint8_t(*)[32])out->path.hash,
                                              out->path.n, out->root));
    free(rd);
    if (rc == 0 && out->has_head && memcmp(out->head.root, out->root, AUDIT_HASH_SIZE) != 0)
        rc = AUDIT_E_TAMPERED;
    return rc == AUDIT_E_NOTFOUND ? AUDIT_E_TAMPERED : rc;
}

int audit_verify_inclusion(const struct audit_inclusion *p, const uint8_t *record,
                           size_t record_len, const struct audit_key *key)
{
    if (!p || (!record && record_len))
        return AUDIT_E_ARG;
    if (record) {
        uint8_t leaf[AUDIT_HASH_SIZE];
        if (merkle_leaf_hash(record, record_len, leaf))
            return AUDIT_E_CRYPTO;
        if (memcmp(leaf, p->leaf_hash, AUDIT_HASH_SIZE) != 0)
            return AUDIT_E_PROOF;
    }
    if (p->path.n > MERKLE_MAX_PROOF)
        return AUDIT_E_PROOF;
    int rc = merkle_verify_inclusion(p->leaf_index, p->tree_size, p->leaf_hash,
                                     (const uint8_t(*)[32])p->path.hash, p->path.n, p->root);
    if (rc)
        return rc == MERKLE_E_CRYPTO ? AUDIT_E_CRYPTO : AUDIT_E_PROOF;
    if (key) {
        if (!p->has_head)
            return AUDIT_E_SIGNATURE;
        if (p->head.tree_size != p->tree_size ||
            memcmp(p->head.root, p->root, AUDIT_HASH_SIZE) != 0)
            return AUDIT_E_PROOF;
        return audit_head_verify(key, &p->head);
    }
    return AUDIT_OK;
}

int audit_inclusion_to_json(const struct audit_inclusion *p, char **out)
{
    if (!p || !out || p->path.n > MERKLE_MAX_PROOF || p->leaf_index > INT64_MAX ||
        p->tree_size > INT64_MAX || (p->has_head && p->head.sig_len > AUDIT_SIG_MAX))
        return AUDIT_E_ARG;
    *out = NULL;
    json_t *o = json_object(), *path = json_array();
    bool ok = o && path;
    if (ok) {
        jset(o, "leaf_index", json_integer((json_int_t)p->leaf_index), &ok);
        jset(o, "tree_size", json_integer((json_int_t)p->tree_size), &ok);
        jset(o, "leaf_hash", jhash(p->leaf_hash), &ok);
        for (size_t i = 0; i < p->path.n; i++)
            if (json_array_append_new(path, jhash(p->path.hash[i])) != 0)
                ok = false;
        jset(o, "audit_path", path, &ok);
        path = NULL;
        jset(o, "root", jhash(p->root), &ok);
        if (p->has_head) {
            json_t *h = json_object();
            char *sig = malloc(2 * AUDIT_SIG_MAX + 1);
            if (!sig)
                ok = false;
            if (h && sig) {
                hex_encode(p->head.sig, p->head.sig_len, sig);
                jset(h, "tree_size", json_integer((json_int_t)p->head.tree_size), &ok);
                jset(h, "root", jhash(p->head.root), &ok);
                jset(h, "ts_ms", json_integer(p->head.ts_ms), &ok);
                jset(h, "signature", json_string(sig), &ok);
            }
            free(sig);
            jset(o, "head", h, &ok);
        }
    }
    json_decref(path);
    return dump_json(o, ok, out);
}

static bool json_u64(json_t *o, const char *k, uint64_t *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return false;
    *v = (uint64_t)json_integer_value(x);
    return true;
}

static bool json_hash(json_t *o, const char *k, uint8_t out[AUDIT_HASH_SIZE])
{
    json_t *x = json_object_get(o, k);
    return json_is_string(x) && merkle_unhex(json_string_value(x), out) == 0;
}

int audit_inclusion_from_json(const char *json, size_t len, struct audit_inclusion *out)
{
    if (!json || !out)
        return AUDIT_E_ARG;
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = AUDIT_E_FORMAT;
    if (!json_is_object(o))
        goto out;
    json_t *path = json_object_get(o, "audit_path");
    if (!json_u64(o, "leaf_index", &out->leaf_index) || !json_u64(o, "tree_size", &out->tree_size) ||
        !json_hash(o, "leaf_hash", out->leaf_hash) || !json_hash(o, "root", out->root) ||
        !json_is_array(path) || json_array_size(path) > MERKLE_MAX_DEPTH)
        goto out;
    out->path.n = json_array_size(path);
    for (size_t i = 0; i < out->path.n; i++) {
        json_t *x = json_array_get(path, i);
        if (!json_is_string(x) || merkle_unhex(json_string_value(x), out->path.hash[i]) != 0)
            goto out;
    }
    json_t *h = json_object_get(o, "head");
    if (h) {
        uint64_t ts;
        json_t *sig = json_object_get(h, "signature");
        if (!json_is_object(h) || !json_u64(h, "tree_size", &out->head.tree_size) ||
            !json_hash(h, "root", out->head.root) || !json_is_string(sig))
            goto out;
        json_t *tsj = json_object_get(h, "ts_ms");
        if (!json_is_integer(tsj))
            goto out;
        ts = (uint64_t)json_integer_value(tsj);
        out->head.ts_ms = (int64_t)ts;
        if (hex_decode(json_string_value(sig), out->head.sig, AUDIT_SIG_MAX,
                       &out->head.sig_len) != 0)
            goto out;
        out->has_head = true;
    }
    rc = AUDIT_OK;
out:
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int audit_consistency_proof(const struct audit_storage *st, uint64_t m, uint64_t n,
                            struct merkle_proof *out, uint8_t root_m[AUDIT_HASH_SIZE],
                            uint8_t root_n[AUDIT_HASH_SIZE])
{
    if (!out || !storage_ok(st) || m > n)
        return AUDIT_E_ARG;
    uint64_t count = 0;
    int rc = storage_err(st->ops->count(st->ud, &count));
    if (rc)
        return rc;
    if (n > count)
        return AUDIT_E_ARG;
    struct leaf_reader *rd = malloc(sizeof(*rd));
    if (!rd)
        return AUDIT_E_NOMEM;
    reader_init(rd, st);
    rc = reader_err(rd, merkle_consistency_proof(reader_get, rd, m, n, out, NULL));
    if (rc == 0 && root_m)
        rc = reader_err(rd, merkle_subtree_root(reader_get, rd, 0, m, root_m, NULL));
    if (rc == 0 && root_n)
        rc = reader_err(rd, merkle_subtree_root(reader_get, rd, 0, n, root_n, NULL));
    free(rd);
    return rc;
}
