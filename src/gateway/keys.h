/* Virtual API keys: creation (secret shown once, SHA-256 stored), verification by hash,
 * model allow-lists, and in-memory per-key request/token rate limits. */
#ifndef TANDEM_GATEWAY_KEYS_H
#define TANDEM_GATEWAY_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum keys_error {
    KEYS_OK = 0,
    KEYS_E_ARG = -1, /* NULL pointer, empty name, negative limit, text too long */
    KEYS_E_NOMEM = -2,
    KEYS_E_RANDOM = -3,  /* getrandom failed */
    KEYS_E_CRYPTO = -4,  /* the SHA-256 digest failed */
    KEYS_E_STORE = -5,   /* the store failed; keys_verify/keys_create pass its code in *store_err */
    KEYS_E_INVALID = -6, /* no such key */
    KEYS_E_REVOKED = -7, /* the key exists but is revoked */
    KEYS_E_RATE = -8,    /* over the key's rpm or tpm; retry after the given delay */
    KEYS_E_TOO_LARGE = -9, /* one request asks for more tokens than the key's tpm */
};
/* Static text for an error code. */
const char *keys_strerror(int err);

#define KEYS_SECRET_PREFIX "tk-"
#define KEYS_SECRET_LEN (3 + 43) /* "tk-" + base64url of 32 random bytes, no padding */
#define KEYS_SECRET_MAX (KEYS_SECRET_LEN + 1)
#define KEYS_PREFIX_LEN 8 /* characters of the secret kept for display */
/* Presented strings longer than this are refused without hashing (the format is public). */
#define KEYS_PRESENTED_MAX 256

/* SHA-256 of the secret (the bytes stored in api_keys.key_hash). Returns 0 or KEYS_E_CRYPTO. */
int keys_hash(const char *secret, size_t len, uint8_t out[STORE_HASH_LEN]);

/* Creates a key: random secret and id, stores its hash. name is required; team and models
 * may be NULL or ""; budget_usd_month, rpm, tpm are 0 for none. out_secret (KEYS_SECRET_MAX
 * bytes) receives the secret, the only time it exists outside the client; out_id
 * (STORE_ID_MAX bytes) receives the id. Returns 0 or a keys_error; on KEYS_E_STORE, *store_err
 * (may be NULL) gets the store's code. */
int keys_create(struct store *s, const char *name, const char *team, const char *models,
                double budget_usd_month, int64_t rpm, int64_t tpm, bool admin, char *out_secret,
                char *out_id, int *store_err);

/* Checks a presented secret (len bytes, need not be NUL-terminated): SHA-256 of it, one
 * indexed lookup by hash, a constant-time comparison of the stored hash. Every well-sized
 * input takes that same path whether it matches or not, so timing does not depend on how much
 * of a real key was guessed. Nothing is cached: a revocation is seen by the next call. On 0
 * the key is copied to *out; otherwise KEYS_E_INVALID, KEYS_E_REVOKED (out still filled, for
 * logging) or KEYS_E_STORE. */
int keys_verify(struct store *s, const char *presented, size_t len, struct store_key *out,
                int *store_err);

/* Whether the key may use model: its allow-list is empty (every model), or one of its
 * comma-separated entries is "*", equals model, or ends in '*' and is a prefix of model. */
bool keys_model_allowed(const struct store_key *k, const char *model);

/* ---- rate limits ---- */

/* Per-key sliding one-minute windows (60 one-second buckets) of requests and tokens, in
 * memory (per process: replicas each enforce their own limit). Thread-safe. */
struct keys_limiter;

/* A limiter tracking at most max_keys keys at once (idle keys are dropped first; 0 picks
 * 65536). NULL when out of memory. */
struct keys_limiter *keys_limiter_new(size_t max_keys);
/* Frees the limiter; NULL is fine. No other thread may be using it. */
void keys_limiter_free(struct keys_limiter *l);

/* Admits one request of key_id estimated at tokens tokens at now_ms (any monotonic or wall
 * clock in milliseconds, never going backwards by more than the window): when the last 60 s
 * plus this request stay within rpm and tpm (0 = unlimited), records it and returns 0.
 * Otherwise returns KEYS_E_RATE with *retry_after_ms (may be NULL) set to the wait until it
 * would be admitted (for Retry-After), or KEYS_E_TOO_LARGE when tokens > tpm, or KEYS_E_NOMEM
 * when max_keys active keys are tracked already. */
int keys_rate_check(struct keys_limiter *l, const char *key_id, int64_t rpm, int64_t tpm,
                    int64_t tokens, int64_t now_ms, int64_t *retry_after_ms);
/* Adds tokens learnt after admission (completion tokens; negative to correct an
 * over-estimate) to key_id's current second. */
void keys_rate_add_tokens(struct keys_limiter *l, const char *key_id, int64_t tokens,
                          int64_t now_ms);

#endif
