/* The audit log over an in-memory storage: records, keys, appends, signed heads, verification
 * (and the tampering it must catch), inclusion proofs and their JSON form. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "trust/audit.h"
#include "test.h"

/* ---- An in-memory audit_storage_ops implementation ---------------------------------------- */

struct mem_entry {
    bool present;
    int64_t ts;
    uint8_t *rec;
    size_t len;
    uint8_t leaf[32];
};

struct mem_store {
    pthread_mutex_t mu;
    struct mem_entry *e;
    uint64_t n, cap;
    struct audit_head *heads;   /* sorted by tree_size */
    size_t nheads, heads_cap;
};

static int mem_append(void *ud, int64_t ts, const uint8_t *rec, size_t len,
                      const uint8_t leaf[32], uint64_t *idx)
{
    struct mem_store *s = ud;
    if (!len || len > AUDIT_RECORD_MAX)
        return -1000;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        uint64_t cap = s->cap ? s->cap * 2 : 64;
        struct mem_entry *e = realloc(s->e, cap * sizeof(*e));
        if (!e) {
            pthread_mutex_unlock(&s->mu);
            return -1001;
        }
        s->e = e;
        s->cap = cap;
    }
    struct mem_entry *x = &s->e[s->n];
    x->present = true;
    x->ts = ts;
    x->rec = malloc(len);
    memcpy(x->rec, rec, len);
    x->len = len;
    memcpy(x->leaf, leaf, 32);
    *idx = s->n++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int mem_count(void *ud, uint64_t *n)
{
    struct mem_store *s = ud;
    *n = s->n;
    return 0;
}

static int mem_get(void *ud, uint64_t idx, int64_t *ts, uint8_t leaf[32], uint8_t **rec,
                   size_t *len)
{
    struct mem_store *s = ud;
    if (idx >= s->n || !s->e[idx].present)
        return AUDIT_E_NOTFOUND;
    const struct mem_entry *x = &s->e[idx];
    if (ts)
        *ts = x->ts;
    memcpy(leaf, x->leaf, 32);
    if (rec) {
        *rec = malloc(x->len);
        memcpy(*rec, x->rec, x->len);
        *len = x->len;
    }
    return 0;
}

static int mem_leaf_hashes(void *ud, uint64_t first, uint64_t n, uint8_t (*out)[32],
                           uint64_t *got)
{
    struct mem_store *s = ud;
    uint64_t k = 0;
    while (k < n && first + k < s->n && s->e[first + k].present) {
        memcpy(out[k], s->e[first + k].leaf, 32);
        k++;
    }
    *got = k;
    return 0;
}

static int mem_head_put(void *ud, const struct audit_head *h)
{
    struct mem_store *s = ud;
    size_t i = 0;
    while (i < s->nheads && s->heads[i].tree_size < h->tree_size)
        i++;
    if (i < s->nheads && s->heads[i].tree_size == h->tree_size)
        return AUDIT_E_EXISTS;
    if (s->nheads == s->heads_cap) {
        s->heads_cap = s->heads_cap ? 2 * s->heads_cap : 8;
        s->heads = realloc(s->heads, s->heads_cap * sizeof(*s->heads));
    }
    memmove(&s->heads[i + 1], &s->heads[i], (s->nheads - i) * sizeof(*s->heads));
    s->heads[i] = *h;
    s->nheads++;
    return 0;
}

static int mem_head_latest(void *ud, struct audit_head *out)
{
    struct mem_store *s = ud;
    if (!s->nheads)
        return AUDIT_E_NOTFOUND;
    *out = s->heads[s->nheads - 1];
    return 0;
}

static int mem_head_next(void *ud, uint64_t min_size, struct audit_head *out)
{
    struct mem_store *s = ud;
    for (size_t i = 0; i < s->nheads; i++)
        if (s->heads[i].tree_size >= min_size) {
            *out = s->heads[i];
            return 0;
        }
    return AUDIT_E_NOTFOUND;
}

static const struct audit_storage_ops MEM_OPS = {
    .append = mem_append,
    .count = mem_count,
    .get = mem_get,
    .leaf_hashes = mem_leaf_hashes,
    .head_put = mem_head_put,
    .head_latest = mem_head_latest,
    .head_next = mem_head_next,
};

/* The minimal storage: no leaf_hashes, no head_next. */
static const struct audit_storage_ops MEM_OPS_MIN = {
    .append = mem_append,
    .count = mem_count,
    .get = mem_get,
    .head_put = mem_head_put,
    .head_latest = mem_head_latest,
};

static struct mem_store *mem_new(void)
{
    struct mem_store *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void mem_free(struct mem_store *s)
{
    for (uint64_t i = 0; i < s->n; i++)
        free(s->e[i].rec);
    free(s->e);
    free(s->heads);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- Helpers ------------------------------------------------------------------------------ */

static void make_record(struct audit_record *r, uint64_t i)
{
    memset(r, 0, sizeof(*r));
    r->ts_ms = 1700000000000 + (int64_t)i * 7;
    snprintf(r->request_id, sizeof(r->request_id), "req-%llu", (unsigned long long)i);
    snprintf(r->key_id, sizeof(r->key_id), "key-%llu", (unsigned long long)(i % 5));
    snprintf(r->model, sizeof(r->model), "%s", i % 2 ? "smart" : "local-small");
    snprintf(r->target, sizeof(r->target), "%s", i % 2 ? "gpt-4o" : "local-small");
    r->privacy = (enum audit_privacy)(i % AUDIT_PRIVACY_COUNT);
    r->outcome = (enum audit_outcome)(i % AUDIT_OUTCOME_COUNT);
    r->http_status = 200;
    char prompt[64], resp[64];
    int pl = snprintf(prompt, sizeof(prompt), "prompt number %llu", (unsigned long long)i);
    int rl = snprintf(resp, sizeof(resp), "response %llu", (unsigned long long)i);
    audit_record_set_texts(r, prompt, (size_t)pl, resp, (size_t)rl);
    r->prompt_text = r->response_text = NULL;   /* the buffers die here */
}

struct fixture {
    struct mem_store *ms;
    struct audit_storage st;
    struct audit_log *log;
    struct audit_key *key;   /* private */
    struct audit_key *pub;   /* public only, loaded from PEM */
};

/* A log of n entries with signed heads at each size listed in heads[] (ascending). */
static bool fixture_init(struct fixture *f, uint64_t n, const uint64_t *heads, size_t nheads)
{
    memset(f, 0, sizeof(*f));
    f->ms = mem_new();
    f->st = (struct audit_storage){&MEM_OPS, f->ms};
    if (audit_log_open(&f->st, NULL, &f->log) || audit_key_generate(&f->key))
        return false;
    char path[512];
    snprintf(path, sizeof(path), "%s/audit.pub", test_tmpdir());
    if (audit_key_save(f->key, path, false) || audit_key_load(path, &f->pub))
        return false;
    size_t h = 0;
    for (uint64_t i = 0; i <= n; i++) {
        while (h < nheads && heads[h] == i) {
            if (audit_sign_head(f->log, f->key, 1800000000000 + (int64_t)i, NULL))
                return false;
            h++;
        }
        if (i == n)
            break;
        struct audit_record r;
        make_record(&r, i);
        uint64_t idx = 0;
        if (audit_append(f->log, &r, &idx) || idx != i)
            return false;
    }
    return true;
}

static void fixture_free(struct fixture *f)
{
    audit_log_free(f->log);
    audit_key_free(f->key);
    audit_key_free(f->pub);
    mem_free(f->ms);
}

/* ---- Records ------------------------------------------------------------------------------ */

TEST(audit_record_roundtrip)
{
    struct audit_record r, d;
    make_record(&r, 42);
    const char *prompt = "Bonjour, je m'appelle Zoë — 你好";
    const char *resp = "Salut";
    audit_record_set_texts(&r, prompt, strlen(prompt), resp, strlen(resp));
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;

    /* Without the text flag the texts are dropped; the hashes stay. */
    REQUIRE(audit_record_encode(&r, false, &a, &alen) == 0);
    REQUIRE(audit_record_decode(a, alen, &d) == 0);
    CHECK(d.prompt_text == NULL && d.response_text == NULL);
    CHECK_STR(d.request_id, "req-42");
    CHECK_STR(d.model, r.model);
    CHECK_EQ_INT(d.ts_ms, r.ts_ms);
    CHECK_EQ_INT(d.privacy, r.privacy);
    CHECK_EQ_INT(d.outcome, r.outcome);
    CHECK(memcmp(d.prompt_sha256, r.prompt_sha256, 32) == 0);
    uint8_t want[32];
    merkle_sha256(prompt, strlen(prompt), want);
    CHECK(memcmp(d.prompt_sha256, want, 32) == 0);
    CHECK(memmem(a, alen, "Bonjour", 7) == NULL);
    /* Canonical: re-encoding the decoded record gives the same bytes. */
    REQUIRE(audit_record_encode(&d, false, &b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);

    REQUIRE(audit_record_encode(&r, true, &a, &alen) == 0);
    REQUIRE(audit_record_decode(a, alen, &d) == 0);
    REQUIRE(d.prompt_text != NULL);
    CHECK(d.prompt_len == strlen(prompt) && memcmp(d.prompt_text, prompt, d.prompt_len) == 0);
    CHECK(d.response_len == 5);
    REQUIRE(audit_record_encode(&d, true, &b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(b);

    /* Strict parsing: every strict prefix, a trailing byte, bad version / enum / flags. */
    for (size_t cut = 0; cut < alen; cut++)
        CHECK(audit_record_decode(a, cut, &d) == AUDIT_E_FORMAT);
    uint8_t *c = malloc(alen + 1);
    memcpy(c, a, alen);
    c[alen] = 0;
    CHECK(audit_record_decode(c, alen + 1, &d) == AUDIT_E_FORMAT);
    c[0] = 2;
    CHECK(audit_record_decode(c, alen, &d) == AUDIT_E_FORMAT);
    free(c);
    free(a);

    struct audit_record bad = r;
    bad.privacy = AUDIT_PRIVACY_COUNT;
    CHECK(audit_record_encode(&bad, false, &a, &alen) == AUDIT_E_ARG);
    bad = r;
    memcpy(bad.model, "\xff\xfe", 3);
    CHECK(audit_record_encode(&bad, false, &a, &alen) == AUDIT_E_ARG);
    bad = r;
    memset(bad.key_id, 'k', sizeof(bad.key_id));   /* unterminated */
    CHECK(audit_record_encode(&bad, false, &a, &alen) == AUDIT_E_ARG);
}

TEST(audit_record_text_cut_and_json)
{
    struct audit_record r, d;
    make_record(&r, 1);
    size_t big = AUDIT_TEXT_MAX + 10;
    char *text = malloc(big);
    memset(text, 'a', big);
    memcpy(text + AUDIT_TEXT_MAX - 1, "\xc3\xa9", 2);   /* a 2-byte code point across the cut */
    audit_record_set_texts(&r, text, big, "ok", 2);
    uint8_t *a = NULL;
    size_t alen = 0;
    REQUIRE(audit_record_encode(&r, true, &a, &alen) == 0);
    REQUIRE(audit_record_decode(a, alen, &d) == 0);
    CHECK_EQ_INT(d.prompt_len, AUDIT_TEXT_MAX - 1);
    CHECK(d.prompt_truncated);
    CHECK(!d.response_truncated);
    uint8_t full[32];
    merkle_sha256(text, big, full);
    CHECK(memcmp(d.prompt_sha256, full, 32) == 0);   /* the hash covers the whole text */
    free(a);
    free(text);

    make_record(&r, 3);
    r.http_status = 429;
    char *json = NULL;
    REQUIRE(audit_record_to_json(&r, &json) == 0);
    CHECK(strstr(json, "\"request_id\":\"req-3\"") != NULL);
    CHECK(strstr(json, "\"http_status\":429") != NULL);
    CHECK(strstr(json, "\"outcome\":\"rate_limited\"") != NULL);
    CHECK(strstr(json, "\"prompt\"") == NULL);
    free(json);
    CHECK_STR(audit_privacy_name(AUDIT_PRIVACY_PSEUDONYMIZE), "pseudonymize");
    CHECK(audit_outcome_name(AUDIT_OUTCOME_COUNT) == NULL);
}

/* ---- Keys --------------------------------------------------------------------------------- */

TEST(audit_key_pem_files)
{
    const char *dir = test_tmpdir();
    char priv[512], pub[512], junk[512];
    snprintf(priv, sizeof(priv), "%s/audit.key", dir);
    snprintf(pub, sizeof(pub), "%s/audit.pub", dir);
    snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
    struct audit_key *k = NULL, *kp = NULL, *kpub = NULL;
    REQUIRE(audit_key_generate(&k) == 0);
    CHECK(audit_key_has_private(k));
    REQUIRE(audit_key_save(k, priv, true) == 0);
    REQUIRE(audit_key_save(k, pub, false) == 0);
    CHECK_EQ_INT(audit_key_save(k, priv, true), AUDIT_E_IO);   /* never overwrites */
    REQUIRE(audit_key_load(priv, &kp) == 0);
    REQUIRE(audit_key_load(pub, &kpub) == 0);
    CHECK(audit_key_has_private(kp));
    CHECK(!audit_key_has_private(kpub));
    char id1[65], id2[65], id3[65];
    audit_key_id(k, id1);
    audit_key_id(kp, id2);
    audit_key_id(kpub, id3);
    CHECK_STR(id1, id2);
    CHECK_STR(id1, id3);

    /* Sign with the loaded private key, verify with the loaded public one. */
    struct audit_head h = {.tree_size = 7, .ts_ms = 123};
    memset(h.root, 0xab, 32);
    CHECK_EQ_INT(audit_head_sign(kpub, &h), AUDIT_E_KEY);
    REQUIRE(audit_head_sign(kp, &h) == 0);
    CHECK_EQ_INT(h.sig_len, 64);
    CHECK_EQ_INT(audit_head_verify(kpub, &h), 0);
    h.ts_ms++;
    CHECK_EQ_INT(audit_head_verify(kpub, &h), AUDIT_E_SIGNATURE);

    FILE *f = fopen(junk, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    struct audit_key *bad = NULL;
    CHECK_EQ_INT(audit_key_load(junk, &bad), AUDIT_E_KEY);
    CHECK_EQ_INT(audit_key_load("/nonexistent/audit.key", &bad), AUDIT_E_IO);
    CHECK(bad == NULL);
    audit_key_free(k);
    audit_key_free(kp);
    audit_key_free(kpub);
}

/* The key files the docs tell operators to make with the openssl CLI load and work. */
TEST(audit_key_openssl_cli)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "openssl CLI not installed: skipped\n");
        return;
    }
    const char *dir = test_tmpdir();
    char cmd[4096], priv[512], pub[512], rsa[512];
    snprintf(priv, sizeof(priv), "%s/cli.key", dir);
    snprintf(pub, sizeof(pub), "%s/cli.pub", dir);
    snprintf(rsa, sizeof(rsa), "%s/rsa.key", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm ed25519 -out %s && openssl pkey -in %s -pubout -out %s"
             " && openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out %s 2>/dev/null",
             priv, priv, pub, rsa);
    REQUIRE(system(cmd) == 0);
    struct audit_key *k = NULL, *p = NULL, *r = NULL;
    REQUIRE(audit_key_load(priv, &k) == 0);
    REQUIRE(audit_key_load(pub, &p) == 0);
    CHECK_EQ_INT(audit_key_load(rsa, &r), AUDIT_E_KEY);
    struct audit_head h = {.tree_size = 1};
    REQUIRE(audit_head_sign(k, &h) == 0);
    CHECK_EQ_INT(audit_head_verify(p, &h), 0);
    audit_key_free(k);
    audit_key_free(p);
}

/* ---- Append, heads, verify ---------------------------------------------------------------- */

static const uint64_t HEADS[] = {0, 10, 25, 50};

TEST(audit_append_verify_ok)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    CHECK_EQ_INT(audit_log_size(f.log), 50);
    CHECK_EQ_INT(f.ms->nheads, 4);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), 0);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_NONE);
    CHECK_EQ_INT(rep.entries, 50);
    CHECK_EQ_INT(rep.entries_ok, 50);
    CHECK_EQ_INT(rep.heads_ok, 4);
    /* No key: roots only. */
    CHECK_EQ_INT(audit_verify(&f.st, NULL, &rep), 0);
    /* Nothing new: no new head. */
    CHECK_EQ_INT(audit_sign_head(f.log, f.key, 1, NULL), AUDIT_E_EXISTS);
    CHECK_EQ_INT(audit_sign_head(f.log, f.pub, 1, NULL), AUDIT_E_KEY);

    /* Reopen (the range is rebuilt from storage), append, sign: still verifies. */
    audit_log_free(f.log);
    REQUIRE(audit_log_open(&f.st, NULL, &f.log) == 0);
    CHECK_EQ_INT(audit_log_size(f.log), 50);
    struct audit_record r;
    make_record(&r, 50);
    uint64_t idx = 0;
    REQUIRE(audit_append(f.log, &r, &idx) == 0);
    CHECK_EQ_INT(idx, 50);
    struct audit_head h;
    REQUIRE(audit_sign_head(f.log, f.key, 99, &h) == 0);
    CHECK_EQ_INT(h.tree_size, 51);
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), 0);
    CHECK_EQ_INT(rep.heads_ok, 5);

    /* Heads are pairwise consistent (RFC 6962 consistency proofs from the stored leaves). */
    for (size_t i = 0; i + 1 < f.ms->nheads; i++) {
        const struct audit_head *a = &f.ms->heads[i], *b = &f.ms->heads[i + 1];
        struct merkle_proof p;
        uint8_t ra[32], rb[32];
        REQUIRE(audit_consistency_proof(&f.st, a->tree_size, b->tree_size, &p, ra, rb) == 0);
        CHECK(memcmp(ra, a->root, 32) == 0 && memcmp(rb, b->root, 32) == 0);
        CHECK_EQ_INT(merkle_verify_consistency(a->tree_size, b->tree_size, a->root, b->root,
                                               (const uint8_t(*)[32])p.hash, p.n), 0);
    }
    fixture_free(&f);
}

TEST(audit_tamper_record_byte)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    struct audit_report rep;
    /* A byte inside the model name: still parses, no longer matches its leaf hash. */
    struct mem_entry *e = &f.ms->e[17];
    uint8_t *m = memmem(e->rec, e->len, "smart", 5);
    REQUIRE(m != NULL);
    m[0] = 'S';
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_LEAF_HASH);
    CHECK_EQ_INT(rep.idx, 17);
    CHECK(!rep.head);
    CHECK_EQ_INT(rep.entries_ok, 17);
    CHECK_EQ_INT(rep.heads_ok, 2);
    CHECK(strstr(rep.detail, "entry 17") != NULL);
    m[0] = 's';
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), 0);
    /* The version byte: the record no longer parses. */
    f.ms->e[33].rec[0] ^= 0x40;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_PARSE);
    CHECK_EQ_INT(rep.idx, 33);
    /* Every single-byte edit of a record is caught at its index. */
    f.ms->e[33].rec[0] ^= 0x40;
    e = &f.ms->e[40];
    int missed = 0;
    for (size_t i = 0; i < e->len; i++) {
        e->rec[i] ^= 0x01;
        if (audit_verify(&f.st, NULL, &rep) != AUDIT_E_TAMPERED || rep.idx != 40)
            missed++;
        e->rec[i] ^= 0x01;
    }
    CHECK_EQ_INT(missed, 0);
    fixture_free(&f);
}

TEST(audit_tamper_delete_entry)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    struct audit_report rep;
    f.ms->e[23].present = false;   /* a row deleted from the middle */
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_MISSING);
    CHECK_EQ_INT(rep.idx, 23);
    f.ms->e[23].present = true;
    /* The last 3 rows deleted: the head over 50 entries names the first missing one. */
    for (int i = 47; i < 50; i++)
        free(f.ms->e[i].rec);
    f.ms->n = 47;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_MISSING);
    CHECK_EQ_INT(rep.idx, 47);
    CHECK(rep.head);
    CHECK_EQ_INT(rep.head_size, 50);
    CHECK_EQ_INT(rep.entries_ok, 47);
    /* The appending side notices too. */
    CHECK_EQ_INT(audit_sign_head(f.log, f.key, 5, NULL), AUDIT_E_TAMPERED);
    fixture_free(&f);
}

TEST(audit_tamper_leaf_hash_and_timestamp)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    struct audit_report rep;
    f.ms->e[31].leaf[5] ^= 0x10;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_LEAF_HASH);
    CHECK_EQ_INT(rep.idx, 31);
    f.ms->e[31].leaf[5] ^= 0x10;
    f.ms->e[8].ts += 1;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_TIMESTAMP);
    CHECK_EQ_INT(rep.idx, 8);
    fixture_free(&f);
}

/* Rewriting a record together with its stored leaf hash passes the per-entry checks; the
 * signed heads catch it. */
TEST(audit_tamper_consistent_rewrite)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    struct mem_entry *e = &f.ms->e[12];
    uint8_t *m = memmem(e->rec, e->len, "local-small", 11);
    REQUIRE(m != NULL);
    m[0] = 'L';
    merkle_leaf_hash(e->rec, e->len, e->leaf);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_ROOT);
    CHECK(rep.head);
    CHECK_EQ_INT(rep.head_size, 25);   /* the first head covering entry 12 */
    CHECK_EQ_INT(rep.entries_ok, 25);
    fixture_free(&f);
}

TEST(audit_forged_head)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    struct audit_report rep;
    f.ms->heads[2].sig[10] ^= 1;   /* the head over 25 entries */
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_SIGNATURE);
    CHECK(rep.head);
    CHECK_EQ_INT(rep.head_size, 25);
    CHECK_EQ_INT(rep.heads_ok, 2);
    f.ms->heads[2].sig[10] ^= 1;
    /* A head whose root was replaced and re-signed with another key. */
    struct audit_key *other = NULL;
    REQUIRE(audit_key_generate(&other) == 0);
    f.ms->heads[3].root[0] ^= 1;
    REQUIRE(audit_head_sign(other, &f.ms->heads[3]) == 0);
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_SIGNATURE);
    CHECK_EQ_INT(rep.head_size, 50);
    /* Without a key the root mismatch is still caught. */
    CHECK_EQ_INT(audit_verify(&f.st, NULL, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_ROOT);
    /* An unsigned head fails when a key is given. */
    f.ms->heads[3].root[0] ^= 1;
    f.ms->heads[3].sig_len = 0;
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_SIGNATURE);
    CHECK(strstr(rep.detail, "not signed") != NULL);
    audit_key_free(other);
    fixture_free(&f);
}

TEST(audit_wrong_public_key)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 20, HEADS, 2));
    struct audit_key *other = NULL;
    REQUIRE(audit_key_generate(&other) == 0);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&f.st, other, &rep), AUDIT_E_TAMPERED);
    CHECK_EQ_INT(rep.fault, AUDIT_FAULT_HEAD_SIGNATURE);
    CHECK_EQ_INT(rep.head_size, 0);   /* the first head */
    CHECK_EQ_INT(audit_verify(&f.st, f.pub, &rep), 0);
    audit_key_free(other);
    fixture_free(&f);
}

/* ---- Proofs ------------------------------------------------------------------------------- */

TEST(audit_inclusion_proof_roundtrip)
{
    struct fixture f;
    REQUIRE(fixture_init(&f, 50, HEADS, 4));
    for (uint64_t idx = 0; idx < 50; idx++) {
        struct audit_inclusion p, q;
        REQUIRE(audit_inclusion_proof(&f.st, idx, 0, &p) == 0);   /* against the latest head */
        CHECK_EQ_INT(p.tree_size, 50);
        CHECK(p.has_head);
        const struct mem_entry *e = &f.ms->e[idx];
        CHECK_EQ_INT(audit_verify_inclusion(&p, e->rec, e->len, f.pub), 0);
        char *json = NULL;
        REQUIRE(audit_inclusion_to_json(&p, &json) == 0);
        REQUIRE(audit_inclusion_from_json(json, strlen(json), &q) == 0);
        CHECK_EQ_INT(audit_verify_inclusion(&q, e->rec, e->len, f.pub), 0);
        CHECK_EQ_INT(q.leaf_index, idx);
        CHECK_EQ_INT(q.path.n, p.path.n);
        /* The wrong record, the wrong index. */
        const struct mem_entry *o = &f.ms->e[(idx + 1) % 50];
        CHECK_EQ_INT(audit_verify_inclusion(&q, o->rec, o->len, f.pub), AUDIT_E_PROOF);
        q.leaf_index = (idx + 1) % 50;
        CHECK_EQ_INT(audit_verify_inclusion(&q, NULL, 0, NULL), AUDIT_E_PROOF);
        free(json);
    }

    struct audit_inclusion p, q;
    REQUIRE(audit_inclusion_proof(&f.st, 7, 0, &p) == 0);
    char *json = NULL;
    REQUIRE(audit_inclusion_to_json(&p, &json) == 0);
    CHECK(strstr(json, "\"leaf_index\":7") != NULL);
    CHECK(strstr(json, "\"tree_size\":50") != NULL);
    CHECK(strstr(json, "\"audit_path\":[\"") != NULL);
    CHECK(strstr(json, "\"signature\":\"") != NULL);
    /* A tampered path hash in the JSON. */
    char *ap = strstr(json, "\"audit_path\":[\"");
    REQUIRE(ap != NULL);
    char *digit = ap + strlen("\"audit_path\":[\"");
    *digit = *digit == '0' ? '1' : '0';
    REQUIRE(audit_inclusion_from_json(json, strlen(json), &q) == 0);
    CHECK_EQ_INT(audit_verify_inclusion(&q, NULL, 0, NULL), AUDIT_E_PROOF);
    free(json);
    /* A self-consistent proof against a different (unsigned) root fails with the key. */
    q = p;
    q.path.hash[0][0] ^= 1;
    REQUIRE(merkle_inclusion_root(q.leaf_index, q.tree_size, q.leaf_hash,
                                  (const uint8_t(*)[32])q.path.hash, q.path.n, q.root) == 0);
    CHECK_EQ_INT(audit_verify_inclusion(&q, NULL, 0, NULL), 0);
    CHECK_EQ_INT(audit_verify_inclusion(&q, NULL, 0, f.pub), AUDIT_E_PROOF);
    /* A forged head signature, a wrong key. */
    q = p;
    q.head.sig[0] ^= 1;
    CHECK_EQ_INT(audit_verify_inclusion(&q, NULL, 0, f.pub), AUDIT_E_SIGNATURE);
    struct audit_key *other = NULL;
    REQUIRE(audit_key_generate(&other) == 0);
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, other), AUDIT_E_SIGNATURE);
    audit_key_free(other);

    /* At a size with no head: a valid proof, but nothing signed to check it against. */
    REQUIRE(audit_inclusion_proof(&f.st, 3, 30, &p) == 0);
    CHECK(!p.has_head);
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, NULL), 0);
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, f.pub), AUDIT_E_SIGNATURE);
    REQUIRE(audit_inclusion_proof(&f.st, 3, 25, &p) == 0);
    CHECK(p.has_head);
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, f.pub), 0);
    CHECK_EQ_INT(audit_inclusion_proof(&f.st, 30, 30, &p), AUDIT_E_ARG);
    CHECK_EQ_INT(audit_inclusion_proof(&f.st, 3, 51, &p), AUDIT_E_ARG);

    /* Malformed JSON. */
    CHECK_EQ_INT(audit_inclusion_from_json("{}", 2, &q), AUDIT_E_FORMAT);
    CHECK_EQ_INT(audit_inclusion_from_json("[1]", 3, &q), AUDIT_E_FORMAT);
    const char *neg = "{\"leaf_index\":-1,\"tree_size\":2,\"leaf_hash\":\"00\",\"audit_path\":[],"
                      "\"root\":\"00\"}";
    CHECK_EQ_INT(audit_inclusion_from_json(neg, strlen(neg), &q), AUDIT_E_FORMAT);
    fixture_free(&f);
}

/* The minimal storage (no head_next, no leaf_hashes) works; only the latest head is checked. */
TEST(audit_minimal_storage)
{
    struct mem_store *ms = mem_new();
    struct audit_storage st = {&MEM_OPS_MIN, ms};
    struct audit_log *log = NULL;
    struct audit_key *k = NULL;
    REQUIRE(audit_log_open(&st, NULL, &log) == 0);
    REQUIRE(audit_key_generate(&k) == 0);
    for (uint64_t i = 0; i < 300; i++) {
        struct audit_record r;
        make_record(&r, i);
        REQUIRE(audit_append(log, &r, NULL) == 0);
        if (i == 99 || i == 299)
            REQUIRE(audit_sign_head(log, k, (int64_t)i, NULL) == 0);
    }
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&st, k, &rep), 0);
    CHECK_EQ_INT(rep.heads_ok, 1);
    struct audit_inclusion p;
    REQUIRE(audit_inclusion_proof(&st, 250, 0, &p) == 0);
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, k), 0);
    REQUIRE(audit_inclusion_proof(&st, 20, 100, &p) == 0);
    CHECK(p.has_head == false);   /* found only through head_next */
    CHECK_EQ_INT(audit_verify_inclusion(&p, NULL, 0, NULL), 0);
    audit_log_free(log);
    audit_key_free(k);
    mem_free(ms);
}

/* Two writers on one storage (two processes sharing a database): each folds in the other's
 * entries, and the heads either signs verify. */
TEST(audit_two_writers)
{
    struct mem_store *ms = mem_new();
    struct audit_storage st = {&MEM_OPS, ms};
    struct audit_log *a = NULL, *b = NULL;
    struct audit_key *k = NULL;
    REQUIRE(audit_log_open(&st, NULL, &a) == 0);
    REQUIRE(audit_log_open(&st, NULL, &b) == 0);
    REQUIRE(audit_key_generate(&k) == 0);
    for (uint64_t i = 0; i < 40; i++) {
        struct audit_record r;
        make_record(&r, i);
        REQUIRE(audit_append(i % 3 ? a : b, &r, NULL) == 0);
        if (i % 13 == 12)
            REQUIRE(audit_sign_head(i % 2 ? a : b, k, (int64_t)i, NULL) == 0);
    }
    REQUIRE(audit_sign_head(a, k, 100, NULL) == 0);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&st, k, &rep), 0);
    CHECK_EQ_INT(rep.heads_ok, 4);
    audit_log_free(a);
    audit_log_free(b);
    audit_key_free(k);
    mem_free(ms);
}

struct thread_arg {
    struct audit_log *log;
    int base;
    int fails;
};

static void *append_thread(void *p)
{
    struct thread_arg *t = p;
    for (int i = 0; i < 500; i++) {
        struct audit_record r;
        make_record(&r, (uint64_t)(t->base + i));
        if (audit_append(t->log, &r, NULL) != 0)
            t->fails++;
    }
    return NULL;
}

TEST(audit_concurrent_appends)
{
    struct mem_store *ms = mem_new();
    struct audit_storage st = {&MEM_OPS, ms};
    struct audit_log *log = NULL;
    struct audit_key *k = NULL;
    REQUIRE(audit_log_open(&st, NULL, &log) == 0);
    REQUIRE(audit_key_generate(&k) == 0);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){log, i * 1000, 0};
        pthread_create(&th[i], NULL, append_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].fails, 0);
    }
    CHECK_EQ_INT(audit_log_size(log), 2000);
    REQUIRE(audit_sign_head(log, k, 1, NULL) == 0);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&st, k, &rep), 0);
    CHECK_EQ_INT(rep.entries_ok, 2000);
    audit_log_free(log);
    audit_key_free(k);
    mem_free(ms);
}

TEST(audit_include_text_option)
{
    struct mem_store *ms = mem_new();
    struct audit_storage st = {&MEM_OPS, ms};
    struct audit_log *log = NULL;
    struct audit_log_options opt = {.include_text = true};
    REQUIRE(audit_log_open(&st, &opt, &log) == 0);
    struct audit_record r;
    make_record(&r, 0);
    audit_record_set_texts(&r, "secret prompt", 13, "answer", 6);
    REQUIRE(audit_append(log, &r, NULL) == 0);
    audit_log_free(log);
    CHECK(memmem(ms->e[0].rec, ms->e[0].len, "secret prompt", 13) != NULL);
    REQUIRE(audit_log_open(&st, NULL, &log) == 0);   /* default: hashes only */
    REQUIRE(audit_append(log, &r, NULL) == 0);
    CHECK(memmem(ms->e[1].rec, ms->e[1].len, "secret", 6) == NULL);
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&st, NULL, &rep), 0);
    audit_log_free(log);
    mem_free(ms);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(audit_verify_100k_entries)
{
    struct mem_store *ms = mem_new();
    struct audit_storage st = {&MEM_OPS, ms};
    struct audit_log *log = NULL;
    struct audit_key *k = NULL;
    REQUIRE(audit_log_open(&st, NULL, &log) == 0);
    REQUIRE(audit_key_generate(&k) == 0);
    double t0 = now_s();
    for (uint64_t i = 0; i < 100000; i++) {
        struct audit_record r;
        make_record(&r, i);
        REQUIRE(audit_append(log, &r, NULL) == 0);
        if (i % 10000 == 9999)
            REQUIRE(audit_sign_head(log, k, (int64_t)i, NULL) == 0);
    }
    double t1 = now_s();
    struct audit_report rep;
    CHECK_EQ_INT(audit_verify(&st, k, &rep), 0);
    double t2 = now_s();
    CHECK_EQ_INT(rep.heads_ok, 10);
    struct audit_inclusion p;
    REQUIRE(audit_inclusion_proof(&st, 54321, 0, &p) == 0);
    CHECK_EQ_INT(audit_verify_inclusion(&p, ms->e[54321].rec, ms->e[54321].len, k), 0);
    double t3 = now_s();
    fprintf(stderr, "100k: append %.2fs, verify %.2fs, proof %.3fs\n", t1 - t0, t2 - t1,
            t3 - t2);
    CHECK(t2 - t1 < 3.0);
    audit_log_free(log);
    audit_key_free(k);
    mem_free(ms);
}
