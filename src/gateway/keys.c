/* Virtual API keys: random secrets stored as SHA-256, lookup by hash, allow-lists, and the
 * in-memory sliding-window rate limiter. */
#include "gateway/keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char *const error_text[] = {
    [0] = "ok",
    [-KEYS_E_ARG] = "invalid argument",
    [-KEYS_E_NOMEM] = "out of memory",
    [-KEYS_E_RANDOM] = "no randomness available (getrandom failed)",
    [-KEYS_E_CRYPTO] = "SHA-256 failed",
    [-KEYS_E_STORE] = "store error",
    [-KEYS_E_INVALID] = "invalid API key",
    [-KEYS_E_REVOKED] = "API key revoked",
    [-KEYS_E_RATE] = "rate limit exceeded",
    [-KEYS_E_TOO_LARGE] = "request exceeds the key's tokens-per-minute limit",
};

const char *keys_strerror(int err)
{
    if (err > 0 || -err >= (int)(sizeof(error_text) / sizeof(error_text[0])) || !error_text[-err])
        return "unknown keys error";
    return error_text[-err];
}

static int fill_random(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r <= 0)
            return KEYS_E_RANDOM;
        got += (size_t)r;
    }
    return 0;
}

/* base64url without padding: 4 characters per 3 bytes, 43 for 32 bytes. */
static void base64url(const uint8_t *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = 0;
}

int keys_hash(const char *secret, size_t len, uint8_t out[STORE_HASH_LEN])
{
    unsigned int n = 0;
    if (!secret || !out)
        return KEYS_E_ARG;
    if (!EVP_Digest(secret, len, out, &n, EVP_sha256(), NULL) || n != STORE_HASH_LEN)
        return KEYS_E_CRYPTO;
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fits(const char *s, size_t cap)
{
    return !s || strnlen(s, cap) < cap;
}

int keys_create(struct store *s, const char *name, const char *team, const char *models,
                double budget_usd_month, int64_t rpm, int64_t tpm, bool admin, char *out_secret,
                char *out_id, int *store_err)
{
    struct store_key k;
    uint8_t rnd[32], idr[8];
    int e;
    if (store_err)
        *store_err = 0;
    if (!s || !name || !*name || !out_secret || !out_id || rpm < 0 || tpm < 0 ||
        !(budget_usd_month >= 0 && budget_usd_month < 1e15) || !fits(name, sizeof(k.name)) ||
        !fits(team, sizeof(k.team)) || !fits(models, sizeof(k.models)))
        return KEYS_E_ARG;
    memset(&k, 0, sizeof(k));
    if ((e = fill_random(rnd, sizeof(rnd))) || (e = fill_random(idr, sizeof(idr))))
        goto out;
    char secret[KEYS_SECRET_MAX];
    memcpy(secret, KEYS_SECRET_PREFIX, 3);
    base64url(rnd, sizeof(rnd), secret + 3);
    snprintf(k.id, sizeof(k.id), "key_%02x%02x%02x%02x%02x%02x%02x%02x", idr[0], idr[1], idr[2],
             idr[3], idr[4], idr[5], idr[6], idr[7]);
    snprintf(k.name, sizeof(k.name), "%s", name);
    snprintf(k.team, sizeof(k.team), "%s", team ? team : "");
    snprintf(k.models, sizeof(k.models), "%s", models ? models : "");
    k.budget_usd_month = budget_usd_month;
    k.rpm = rpm;
    k.tpm = tpm;
    k.admin = admin;
    memcpy(k.prefix, secret, KEYS_PREFIX_LEN);
    k.prefix[KEYS_PREFIX_LEN] = 0;
    k.created_ms = wall_ms();
    if ((e = keys_hash(secret, KEYS_SECRET_LEN, k.key_hash)))
        goto wipe;
    int se = store_key_insert(s, &k);
    if (se) {
        if (store_err)
            *store_err = se;
        e = KEYS_E_STORE;
        goto wipe;
    }
    memcpy(out_secret, secret, KEYS_SECRET_MAX);
    snprintf(out_id, STORE_ID_MAX, "%s", k.id);
wipe:
    OPENSSL_cleanse(secret, sizeof(secret));
out:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return e;
}

int keys_verify(struct store *s, const char *presented, size_t len, struct store_key *out,
                int *store_err)
{
    static const uint8_t zero[STORE_HASH_LEN];
    uint8_t h[STORE_HASH_LEN];
    if (store_err)
        *store_err = 0;
    if (!s || !presented || !out)
        return KEYS_E_ARG;
    memset(out, 0, sizeof(*out));
    if (len > KEYS_PRESENTED_MAX)
        return KEYS_E_INVALID;
    int e = keys_hash(presented, len, h);
    if (e)
        return e;
    int se = store_key_get_by_hash(s, h, out);
    /* The comparison runs whether or not a row came back (against zeros when none did), so a
     * miss and a hit differ only in the row copy. */
    int differ = CRYPTO_memcmp(se ? zero : out->key_hash, h, STORE_HASH_LEN);
    if (se == STORE_E_NOT_FOUND) {
        memset(out, 0, sizeof(*out));
        return KEYS_E_INVALID;
    }
    if (se) {
        if (store_err)
            *store_err = se;
        return KEYS_E_STORE;
    }
    if (differ) {
        memset(out, 0, sizeof(*out));
        return KEYS_E_INVALID;
    }
    return out->revoked_ms ? KEYS_E_REVOKED : 0;
}

bool keys_model_allowed(const struct store_key *k, const char *model)
{
    if (!k || !model)
        return false;
    const char *p = k->models;
    size_t mlen = strlen(model);
    while (*p == ' ' || *p == ',')
        p++;
    if (!*p)
        return true;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 1 && p[0] == '*')
            return true;
        if (n && p[n - 1] == '*' && mlen >= n - 1 && !memcmp(p, model, n - 1))
            return true;
        if (n && n == mlen && !memcmp(p, model, n))
            return true;
        if (!end)
            break;
        p = end + 1;
        while (*p == ' ')
            p++;
    }
    return false;
}

/* ---- rate limiter ---- */

#define WINDOW_S 60
#define LIMITER_BUCKETS 4096
#define LIMITER_DEFAULT_MAX 65536

struct rl_entry {
    struct rl_entry *next;
    char key_id[STORE_ID_MAX];
    int64_t last_sec;      /* the latest second with activity */
    int64_t sec[WINDOW_S]; /* the second each slot currently counts (slot = second % 60) */
    int64_t req[WINDOW_S];
    int64_t tok[WINDOW_S];
};

struct keys_limiter {
    pthread_mutex_t mu;
    size_t n, max;
    struct rl_entry *table[LIMITER_BUCKETS];
};

struct keys_limiter *keys_limiter_new(size_t max_keys)
{
    struct keys_limiter *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->max = max_keys ? max_keys : LIMITER_DEFAULT_MAX;
    return l;
}

void keys_limiter_free(struct keys_limiter *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < LIMITER_BUCKETS; i++) {
        struct rl_entry *e = l->table[i];
        while (e) {
            struct rl_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static size_t bucket_of(const char *key_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % LIMITER_BUCKETS;
}

/* Drops the keys idle for a whole window. Caller holds mu. */
static void sweep(struct keys_limiter *l, int64_t now_sec)
{
    for (size_t i = 0; i < LIMITER_BUCKETS; i++) {
        struct rl_entry **pp = &l->table[i];
        while (*pp) {
            struct rl_entry *e = *pp;
            if (e->last_sec <= now_sec - WINDOW_S) {
                *pp = e->next;
                free(e);
                l->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* The entry for key_id, created when create is set; NULL when absent or the table is full.
 * Caller holds mu. */
static struct rl_entry *entry_get(struct keys_limiter *l, const char *key_id, int64_t now_sec,
                                  bool create)
{
    size_t b = bucket_of(key_id);
    for (struct rl_entry *e = l->table[b]; e; e = e->next)
        if (!strcmp(e->key_id, key_id))
            return e;
    if (!create)
        return NULL;
    if (l->n >= l->max)
        sweep(l, now_sec);
    if (l->n >= l->max)
        return NULL;
    struct rl_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->key_id, sizeof(e->key_id), "%s", key_id);
    for (int i = 0; i < WINDOW_S; i++)
        e->sec[i] = -1;
    e->next = l->table[b];
    l->table[b] = e;
    l->n++;
    return e;
}

/* Whether slot i counts in the window ending at now_sec. */
static bool live(const struct rl_entry *e, int i, int64_t now_sec)
{
    return e->sec[i] > now_sec - WINDOW_S && e->sec[i] <= now_sec;
}

/* Milliseconds until used + add <= limit once old seconds leave the window (vals per slot);
 * 0 when it fits now. */
static int64_t wait_for(const struct rl_entry *e, const int64_t *vals, int64_t add, int64_t limit,
                        int64_t now_sec, int64_t now_ms)
{
    int64_t used = 0;
    for (int i = 0; i < WINDOW_S; i++)
        if (live(e, i, now_sec))
            used += vals[i];
    if (used + add <= limit)
        return 0;
    /* Seconds leave the window oldest first: second t stops counting at (t + 60) * 1000. */
    for (int64_t t = now_sec - WINDOW_S + 1; t <= now_sec; t++) {
        int i = (int)(t % WINDOW_S);
        if (e->sec[i] == t)
            used -= vals[i];
        if (used + add <= limit) {
            int64_t w = (t + WINDOW_S) * 1000 - now_ms;
            return w > 0 ? w : 1;
        }
    }
    return WINDOW_S * 1000;
}

int keys_rate_check(struct keys_limiter *l, const char *key_id, int64_t rpm, int64_t tpm,
                    int64_t tokens, int64_t now_ms, int64_t *retry_after_ms)
{
    if (retry_after_ms)
        *retry_after_ms = 0;
    if (!l || !key_id || strnlen(key_id, STORE_ID_MAX) >= STORE_ID_MAX || rpm < 0 || tpm < 0 ||
        tokens < 0 || now_ms < 0)
        return KEYS_E_ARG;
    if (tpm && tokens > tpm)
        return KEYS_E_TOO_LARGE;
    if (!rpm && !tpm)
        return 0;
    int64_t now_sec = now_ms / 1000;
    int e = 0;
    pthread_mutex_lock(&l->mu);
    struct rl_entry *r = entry_get(l, key_id, now_sec, true);
    if (!r) {
        e = KEYS_E_NOMEM;
        goto out;
    }
    int64_t wait = 0, w;
    if (rpm && (w = wait_for(r, r->req, 1, rpm, now_sec, now_ms)) > wait)
        wait = w;
    if (tpm && (w = wait_for(r, r->tok, tokens, tpm, now_sec, now_ms)) > wait)
        wait = w;
    if (wait) {
        if (retry_after_ms)
            *retry_after_ms = wait;
        e = KEYS_E_RATE;
        goto out;
    }
    int i = (int)(now_sec % WINDOW_S);
    if (r->sec[i] != now_sec) {
        r->sec[i] = now_sec;
        r->req[i] = r->tok[i] = 0;
    }
    r->req[i]++;
    r->tok[i] += tokens;
    if (now_sec > r->last_sec)
        r->last_sec = now_sec;
out:
    pthread_mutex_unlock(&l->mu);
    return e;
}

void keys_rate_add_tokens(struct keys_limiter *l, const char *key_id, int64_t tokens,
                          int64_t now_ms)
{
    if (!l || !key_id || now_ms < 0 || !tokens)
        return;
    int64_t now_sec = now_ms / 1000;
    pthread_mutex_lock(&l->mu);
    struct rl_entry *r = entry_get(l, key_id, now_sec, false);
    if (r) {
        int i = (int)(now_sec % WINDOW_S);
        if (r->sec[i] != now_sec) {
            r->sec[i] = now_sec;
            r->req[i] = r->tok[i] = 0;
        }
        r->tok[i] += tokens;
        if (now_sec > r->last_sec)
            r->last_sec = now_sec;
    }
    pthread_mutex_unlock(&l->mu);
}
