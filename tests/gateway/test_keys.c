/* API keys: creation and format, verification by hash, revocation, timing of right vs wrong
 * keys, model allow-lists, and the sliding-window rate limiter. */
#include <openssl/evp.h>
#include <pthread.h>
#include <time.h>

#include "gateway/keys.h"
#include "test.h"

static struct store *open_store(const char *name)
{
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
    struct store *s = NULL;
    int e = store_open(&s, path, err, sizeof(err));
    if (e)
        fprintf(stderr, "    store_open: %s\n", err);
    return s;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

TEST(keys_create_verify)
{
    struct store *s = open_store("k.db");
    REQUIRE(s);
    char secret[KEYS_SECRET_MAX], id[STORE_ID_MAX];
    REQUIRE(keys_create(s, "ci", "research", "small,big", 25, 60, 10000, false, secret, id, NULL) ==
            0);
    CHECK_EQ_INT(strlen(secret), KEYS_SECRET_LEN);
    CHECK(!strncmp(secret, "tk-", 3));
    for (int i = 3; i < KEYS_SECRET_LEN; i++)
        CHECK(b64url_char(secret[i]));
    CHECK(!strncmp(id, "key_", 4) && strlen(id) == 20);

    struct store_key k;
    CHECK_EQ_INT(keys_verify(s, secret, strlen(secret), &k, NULL), 0);
    CHECK_STR(k.id, id);
    CHECK_STR(k.name, "ci");
    CHECK_STR(k.team, "research");
    CHECK_EQ_INT(k.rpm, 60);
    CHECK_EQ_INT(k.tpm, 10000);
    CHECK(!k.admin);
    CHECK(!strncmp(k.prefix, secret, KEYS_PREFIX_LEN) && strlen(k.prefix) == KEYS_PREFIX_LEN);
    /* Only SHA-256(secret) is stored. */
    uint8_t h[32];
    unsigned int n = 0;
    REQUIRE(EVP_Digest(secret, strlen(secret), h, &n, EVP_sha256(), NULL) && n == 32);
    CHECK(!memcmp(k.key_hash, h, 32));

    /* Two keys never share a secret or id. */
    char secret2[KEYS_SECRET_MAX], id2[STORE_ID_MAX];
    REQUIRE(keys_create(s, "ci", NULL, NULL, 0, 0, 0, true, secret2, id2, NULL) == 0);
    CHECK(strcmp(secret, secret2) && strcmp(id, id2));
    CHECK_EQ_INT(keys_verify(s, secret2, strlen(secret2), &k, NULL), 0);
    CHECK(k.admin);
    CHECK_STR(k.models, "");
    store_close(s);
}

TEST(keys_wrong_keys_fail)
{
    struct store *s = open_store("k.db");
    REQUIRE(s);
    char secret[KEYS_SECRET_MAX], id[STORE_ID_MAX];
    REQUIRE(keys_create(s, "a", NULL, NULL, 0, 0, 0, false, secret, id, NULL) == 0);
    struct store_key k;
    char wrong[KEYS_SECRET_MAX];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[KEYS_SECRET_LEN - 1] = wrong[KEYS_SECRET_LEN - 1] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(keys_verify(s, wrong, strlen(wrong), &k, NULL), KEYS_E_INVALID);
    CHECK_STR(k.id, ""); /* nothing leaks out on failure */
    CHECK_EQ_INT(keys_verify(s, secret, KEYS_SECRET_LEN - 1, &k, NULL), KEYS_E_INVALID);
    CHECK_EQ_INT(keys_verify(s, "", 0, &k, NULL), KEYS_E_INVALID);
    static char huge[4096];
    memset(huge, 'x', sizeof(huge) - 1);
    CHECK_EQ_INT(keys_verify(s, huge, strlen(huge), &k, NULL), KEYS_E_INVALID);
    CHECK_EQ_INT(keys_verify(s, NULL, 0, &k, NULL), KEYS_E_ARG);
    /* Bad creation arguments. */
    CHECK_EQ_INT(keys_create(s, "", NULL, NULL, 0, 0, 0, false, secret, id, NULL), KEYS_E_ARG);
    CHECK_EQ_INT(keys_create(s, "a", NULL, NULL, -1, 0, 0, false, secret, id, NULL), KEYS_E_ARG);
    CHECK_EQ_INT(keys_create(s, "a", NULL, NULL, 0, -5, 0, false, secret, id, NULL), KEYS_E_ARG);
    CHECK_STR(keys_strerror(KEYS_E_REVOKED), "API key revoked");
    store_close(s);
}

TEST(keys_revoked_fails_at_once)
{
    struct store *s = open_store("k.db");
    REQUIRE(s);
    /* A second handle, as another process (the CLI) would have. */
    struct store *s2 = open_store("k.db");
    REQUIRE(s2);
    char secret[KEYS_SECRET_MAX], id[STORE_ID_MAX];
    REQUIRE(keys_create(s, "a", NULL, NULL, 0, 0, 0, false, secret, id, NULL) == 0);
    struct store_key k;
    CHECK_EQ_INT(keys_verify(s, secret, strlen(secret), &k, NULL), 0);
    CHECK_EQ_INT(store_key_revoke(s2, id, 1700000000000LL), 0);
    CHECK_EQ_INT(keys_verify(s, secret, strlen(secret), &k, NULL), KEYS_E_REVOKED);
    CHECK_EQ_INT(k.revoked_ms, 1700000000000LL);
    store_close(s2);
    store_close(s);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TIMING_N 2000

/* Medians of TIMING_N interleaved verifications of the right key and of a wrong one. */
static void time_verify(struct store *s, const char *right, const char *wrong, double *m_right,
                        double *m_wrong)
{
    static double tr[TIMING_N], tw[TIMING_N];
    struct store_key k;
    size_t len = strlen(right);
    for (int i = 0; i < TIMING_N; i++) {
        double t0 = now_s();
        int a = keys_verify(s, right, len, &k, NULL);
        double t1 = now_s();
        int b = keys_verify(s, wrong, len, &k, NULL);
        double t2 = now_s();
        if (a != 0 || b != KEYS_E_INVALID)
            test__fail(__FILE__, __LINE__, "verify results %d %d", a, b);
        tr[i] = t1 - t0;
        tw[i] = t2 - t1;
    }
    qsort(tr, TIMING_N, sizeof(double), cmp_double);
    qsort(tw, TIMING_N, sizeof(double), cmp_double);
    *m_right = tr[TIMING_N / 2];
    *m_wrong = tw[TIMING_N / 2];
}

TEST(keys_verify_timing_right_vs_wrong)
{
    struct store *s = open_store("k.db");
    REQUIRE(s);
    char secret[KEYS_SECRET_MAX], id[STORE_ID_MAX];
    /* Some other keys so the hash index has depth. */
    for (int i = 0; i < 200; i++)
        REQUIRE(keys_create(s, "filler", NULL, NULL, 0, 0, 0, false, secret, id, NULL) == 0);
    REQUIRE(keys_create(s, "target", NULL, NULL, 0, 0, 0, false, secret, id, NULL) == 0);
    /* The most dangerous wrong key: equal to the real one except for its last character. */
    char wrong[KEYS_SECRET_MAX];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[KEYS_SECRET_LEN - 1] = wrong[KEYS_SECRET_LEN - 1] == 'A' ? 'B' : 'A';
    double mr = 0, mw = 0, ratio = 0;
    /* Scheduling noise on a busy machine can skew one round; three tries. */
    for (int attempt = 0; attempt < 3; attempt++) {
        time_verify(s, secret, wrong, &mr, &mw);
        ratio = mr > mw ? mr / mw : mw / mr;
        if (ratio <= 1.2)
            break;
    }
    if (ratio > 1.2)
        fprintf(stderr, "    medians: right %.2f us, wrong %.2f us\n", mr * 1e6, mw * 1e6);
    CHECK(ratio <= 1.2);
    store_close(s);
}

TEST(keys_model_allow_list)
{
    struct store_key k;
    memset(&k, 0, sizeof(k));
    CHECK(keys_model_allowed(&k, "anything"));
    snprintf(k.models, sizeof(k.models), "small, gpt-4o-mini,claude-*");
    CHECK(keys_model_allowed(&k, "small"));
    CHECK(keys_model_allowed(&k, "gpt-4o-mini"));
    CHECK(keys_model_allowed(&k, "claude-3-5-sonnet"));
    CHECK(!keys_model_allowed(&k, "gpt-4o"));
    CHECK(!keys_model_allowed(&k, "smal"));
    CHECK(!keys_model_allowed(&k, "smaller"));
    CHECK(!keys_model_allowed(&k, "claude"));
    snprintf(k.models, sizeof(k.models), "*");
    CHECK(keys_model_allowed(&k, "x"));
    CHECK(!keys_model_allowed(&k, NULL));
}

TEST(keys_rate_requests_window)
{
    struct keys_limiter *l = keys_limiter_new(0);
    REQUIRE(l);
    int64_t t0 = 1000000000LL + 250; /* 250 ms into a second */
    int64_t retry = -1;
    /* rpm 3: three at t0, the fourth waits until t0's second leaves the window. */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(keys_rate_check(l, "k1", 3, 0, 0, t0, &retry), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k1", 3, 0, 0, t0, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 60000 - 250);
    CHECK_EQ_INT(keys_rate_check(l, "k1", 3, 0, 0, t0 + 30000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 30000 - 250);
    /* Other keys are independent. */
    CHECK_EQ_INT(keys_rate_check(l, "k2", 3, 0, 0, t0, &retry), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k1", 3, 0, 0, t0 + 59749, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 1);
    CHECK_EQ_INT(keys_rate_check(l, "k1", 3, 0, 0, t0 + 59750, &retry), 0);

    /* Sliding, not fixed: one request at each of 0 s, 20 s, 40 s (rpm 3); at 61 s the first
     * has left the window, the others have not. */
    int64_t b = 2000000000LL;
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b, NULL), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b + 20000, NULL), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b + 40000, NULL), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b + 50000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 10000);
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b + 61000, &retry), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k3", 3, 0, 0, b + 62000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 18000); /* until the 20 s request leaves at 80 s */
    /* Unlimited keys always pass. */
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_INT(keys_rate_check(l, "k4", 0, 0, 100, b, NULL), 0);
    keys_limiter_free(l);
}

TEST(keys_rate_tokens_window)
{
    struct keys_limiter *l = keys_limiter_new(0);
    REQUIRE(l);
    int64_t t = 5000000000LL, retry;
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 600, t, &retry), 0);
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 500, t + 1000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 59000);
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 400, t + 1000, &retry), 0);
    /* Completion tokens learnt later count too. */
    keys_rate_add_tokens(l, "k", -500, t + 2000); /* over-estimated: give some back */
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 400, t + 2000, &retry), 0);
    keys_rate_add_tokens(l, "k", 100, t + 2000);
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 1, t + 2000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(keys_rate_check(l, "k", 0, 1000, 1001, t, &retry), KEYS_E_TOO_LARGE);
    /* Both limits: the longer wait wins. */
    CHECK_EQ_INT(keys_rate_check(l, "m", 1, 100, 10, t, &retry), 0);
    CHECK_EQ_INT(keys_rate_check(l, "m", 1, 100, 10, t + 5000, &retry), KEYS_E_RATE);
    CHECK_EQ_INT(retry, 55000);
    keys_limiter_free(l);
}

struct rate_race {
    struct keys_limiter *l;
    int admitted;
    pthread_mutex_t mu;
};

static void *rate_thread(void *p)
{
    struct rate_race *r = p;
    for (int i = 0; i < 200; i++) {
        if (keys_rate_check(r->l, "shared", 100, 0, 0, 7000000000LL + i, NULL) == 0) {
            pthread_mutex_lock(&r->mu);
            r->admitted++;
            pthread_mutex_unlock(&r->mu);
        }
    }
    return NULL;
}

TEST(keys_rate_threads_and_capacity)
{
    struct rate_race r = {.l = keys_limiter_new(0), .mu = PTHREAD_MUTEX_INITIALIZER};
    REQUIRE(r.l);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        REQUIRE(pthread_create(&th[i], NULL, rate_thread, &r) == 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(r.admitted, 100);
    keys_limiter_free(r.l);

    /* A full table refuses new keys until old ones go idle. */
    struct keys_limiter *l = keys_limiter_new(2);
    REQUIRE(l);
    CHECK_EQ_INT(keys_rate_check(l, "a", 5, 0, 0, 1000, NULL), 0);
    CHECK_EQ_INT(keys_rate_check(l, "b", 5, 0, 0, 1000, NULL), 0);
    CHECK_EQ_INT(keys_rate_check(l, "c", 5, 0, 0, 2000, NULL), KEYS_E_NOMEM);
    CHECK_EQ_INT(keys_rate_check(l, "c", 5, 0, 0, 62000, NULL), 0);
    keys_limiter_free(l);
}
