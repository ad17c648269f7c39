/* libFuzzer: "schema\0document" through json_schema_compile and the byte matcher. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json_schema.h"

/* Deterministic piece sizes, seeded from the input so a crash replays. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static size_t piece(uint32_t *s, size_t left)
{
    size_t k = 1 + next_rand(s) % 17;
    return k < left ? k : left;
}

/* feed and accepts must agree, and feed returns only 0 or REJECT. */
static bool feed_checked(struct json_match *m, const char *p, size_t n)
{
    bool a = json_match_accepts(m, p, n);
    int rc = json_match_feed(m, p, n);
    if ((rc != 0 && rc != JSON_SCHEMA_E_REJECT) || a != (rc == 0))
        abort();
    return rc == 0;
}

/* A complete value must be JSON; a JSON value the matcher took in full must be complete (the
 * matcher never allows anything but the end after the top-level value). */
static void check_complete(const struct json_match *m, const char *fed, size_t n)
{
    json_t *v = json_loadb(fed, n, JSON_DECODE_ANY, NULL);
    if (json_match_complete(m) != (v != NULL))
        abort();
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, 0, size);
    size_t schema_len = nul ? (size_t)(nul - in) : size;
    const char *doc = nul ? nul + 1 : in + size;
    size_t doc_len = nul ? size - schema_len - 1 : 0;

    struct json_schema *s = NULL;
    struct json_match *m = NULL;
    char *fed = NULL;
    char err[256];
    int rc = json_schema_compile(&s, in, schema_len, err, sizeof(err));
    if (rc) {
        if (s || (rc != JSON_SCHEMA_E_INVALID && rc != JSON_SCHEMA_E_UNSUPPORTED) ||
            !memchr(err, 0, sizeof(err)) || !json_schema_strerror(rc))
            abort();
        return 0;
    }
    if (!s || json_match_new(&m, s) || !m)
        abort();
    fed = malloc(doc_len + 1);
    if (!fed)
        abort();
    if (!json_match_accepts(m, doc, 0) || json_match_feed(m, doc, 0))
        abort();

    /* 1. Byte by byte, skipping what is rejected: the bytes taken are a prefix the schema
     *    allows. Whenever the value becomes complete it must parse. */
    size_t n_fed = 0;
    bool was_complete = json_match_complete(m);
    for (size_t i = 0; i < doc_len; i++) {
        if (!feed_checked(m, doc + i, 1))
            continue;
        fed[n_fed++] = doc[i];
        bool c = json_match_complete(m);
        if (c && !was_complete)
            check_complete(m, fed, n_fed);
        was_complete = c;
    }
    check_complete(m, fed, n_fed);
    const bool complete = json_match_complete(m);

    /* 2. The accepted bytes again, in random pieces: every piece is taken, same end state. */
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    seed |= 1;
    json_match_reset(m);
    for (size_t i = 0; i < n_fed;) {
        size_t k = piece(&seed, n_fed - i);
        if (!feed_checked(m, fed + i, k))
            abort();
        i += k;
    }
    if (json_match_complete(m) != complete)
        abort();

    /* 3. The raw document in random pieces: a rejected piece changes nothing, so retrying it
     *    byte by byte must take exactly the bytes pass 1 took. */
    json_match_reset(m);
    size_t j = 0;
    for (size_t i = 0; i < doc_len;) {
        size_t k = piece(&seed, doc_len - i);
        if (feed_checked(m, doc + i, k)) {
            if (j + k > n_fed || memcmp(fed + j, doc + i, k))
                abort();
            j += k;
        } else {
            for (size_t b = 0; b < k; b++)
                if (feed_checked(m, doc + i + b, 1)) {
                    if (j >= n_fed || fed[j] != doc[i + b])
                        abort();
                    j++;
                }
        }
        i += k;
    }
    if (j != n_fed || json_match_complete(m) != complete)
        abort();

    /* 4. All the accepted bytes in one call. */
    json_match_reset(m);
    if (!feed_checked(m, fed, n_fed) || json_match_complete(m) != complete)
        abort();

    free(fed);
    json_match_free(m);
    json_schema_free(s);
    return 0;
}
