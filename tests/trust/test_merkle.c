/* RFC 6962 Merkle hashing: the certificate-transparency test vectors, proofs, and randomized
 * cross-checks against a direct recursive transcription of RFC 6962 2.1. */
#include "trust/merkle.h"
#include "test.h"

/* The leaves of the certificate-transparency test vectors (RFC 6962 reference tests). */
static const char *const CT_LEAVES[8] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};
/* Roots of the trees of the first 0..8 leaves. These are the published CT / trillian vectors;
 * they were also recomputed with an independent ~30-line Python implementation of RFC 6962
 * (hashlib.sha256; recursive MTH, PATH and SUBPROOF), which produced the proof vectors below. */
static const char *const CT_ROOTS[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vec {
    uint64_t m, n;
    size_t len;
    const char *hash[4];
};

static const struct vec INCLUSION[] = {
    {0, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1, 5, 3, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0, 1, 0, {NULL}},
    {6, 8, 3, {"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
               "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3, 7, 3, {"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
               "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
               "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
};

static const struct vec CONSISTENCY[] = {
    {1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, 2, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {3, 7, 4, {"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
               "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
               "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
               "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
    {4, 8, 1, {"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {1, 2, 1, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"}},
    {7, 8, 4, {"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
               "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
               "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/* Leaf hashes held in an array: the merkle_leaf_fn used by these tests. */
struct leaves {
    uint8_t (*h)[MERKLE_HASH_SIZE];
    uint64_t n;
    uint64_t reads;
};

static int leaves_get(void *ud, uint64_t idx, uint8_t out[MERKLE_HASH_SIZE])
{
    struct leaves *l = ud;
    if (idx >= l->n)
        return -100;
    l->reads++;
    memcpy(out, l->h[idx], MERKLE_HASH_SIZE);
    return 0;
}

static size_t unhex_bytes(const char *s, uint8_t *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static struct leaves ct_leaves(void)
{
    static uint8_t h[8][MERKLE_HASH_SIZE];
    for (int i = 0; i < 8; i++) {
        uint8_t d[16];
        size_t n = unhex_bytes(CT_LEAVES[i], d);
        merkle_leaf_hash(d, n, h[i]);
    }
    return (struct leaves){h, 8, 0};
}

static void check_hex(const uint8_t h[MERKLE_HASH_SIZE], const char *want)
{
    char hex[65];
    merkle_hex(h, hex);
    CHECK_STR(hex, want);
}

TEST(merkle_ct_roots)
{
    struct leaves l = ct_leaves();
    uint8_t root[MERKLE_HASH_SIZE];
    REQUIRE(merkle_empty_root(root) == 0);
    check_hex(root, CT_ROOTS[0]);
    struct merkle_range r;
    merkle_range_init(&r);
    for (uint64_t n = 1; n <= 8; n++) {
        REQUIRE(merkle_root_of((const uint8_t(*)[32])l.h, n, root) == 0);
        check_hex(root, CT_ROOTS[n]);
        REQUIRE(merkle_range_push(&r, l.h[n - 1]) == 0);
        REQUIRE(merkle_range_root(&r, root) == 0);
        check_hex(root, CT_ROOTS[n]);
        REQUIRE(merkle_subtree_root(leaves_get, &l, 0, n, root, NULL) == 0);
        check_hex(root, CT_ROOTS[n]);
    }
    CHECK_EQ_INT(r.size, 8);
    CHECK_EQ_INT(r.n, 1);
}

TEST(merkle_ct_inclusion)
{
    struct leaves l = ct_leaves();
    for (size_t v = 0; v < sizeof(INCLUSION) / sizeof(INCLUSION[0]); v++) {
        const struct vec *t = &INCLUSION[v];
        struct merkle_proof p;
        REQUIRE(merkle_inclusion_proof(leaves_get, &l, t->m, t->n, &p, NULL) == 0);
        CHECK_EQ_INT(p.n, t->len);
        for (size_t i = 0; i < p.n && i < t->len; i++)
            check_hex(p.hash[i], t->hash[i]);
        uint8_t root[MERKLE_HASH_SIZE];
        merkle_unhex(CT_ROOTS[t->n], root);
        CHECK_EQ_INT(merkle_verify_inclusion(t->m, t->n, l.h[t->m],
                                             (const uint8_t(*)[32])p.hash, p.n, root), 0);
    }
}

TEST(merkle_ct_consistency)
{
    struct leaves l = ct_leaves();
    for (size_t v = 0; v < sizeof(CONSISTENCY) / sizeof(CONSISTENCY[0]); v++) {
        const struct vec *t = &CONSISTENCY[v];
        struct merkle_proof p;
        REQUIRE(merkle_consistency_proof(leaves_get, &l, t->m, t->n, &p, NULL) == 0);
        CHECK_EQ_INT(p.n, t->len);
        for (size_t i = 0; i < p.n && i < t->len; i++)
            check_hex(p.hash[i], t->hash[i]);
        uint8_t rm[MERKLE_HASH_SIZE], rn[MERKLE_HASH_SIZE];
        merkle_unhex(CT_ROOTS[t->m], rm);
        merkle_unhex(CT_ROOTS[t->n], rn);
        CHECK_EQ_INT(merkle_verify_consistency(t->m, t->n, rm, rn,
                                               (const uint8_t(*)[32])p.hash, p.n), 0);
        /* Swapped roots, or the proof of another pair, must fail. */
        CHECK(merkle_verify_consistency(t->m, t->n, rn, rm, (const uint8_t(*)[32])p.hash,
                                        p.n) != 0);
    }
    /* Edge cases: m == 0 and m == n need an empty proof. */
    uint8_t r8[32], r0[32];
    merkle_unhex(CT_ROOTS[8], r8);
    merkle_unhex(CT_ROOTS[0], r0);
    CHECK_EQ_INT(merkle_verify_consistency(0, 8, r0, r8, NULL, 0), 0);
    CHECK_EQ_INT(merkle_verify_consistency(8, 8, r8, r8, NULL, 0), 0);
    CHECK(merkle_verify_consistency(8, 8, r8, r0, NULL, 0) != 0);
    CHECK(merkle_verify_consistency(8, 8, r8, r8, (const uint8_t(*)[32])r8, 1) != 0);
    CHECK(merkle_verify_consistency(9, 8, r8, r8, NULL, 0) == MERKLE_E_ARG);
}

TEST(merkle_hex_roundtrip)
{
    uint8_t h[32], back[32];
    char hex[65];
    for (int i = 0; i < 32; i++)
        h[i] = (uint8_t)(i * 37 + 5);
    merkle_hex(h, hex);
    CHECK_EQ_INT(merkle_unhex(hex, back), 0);
    CHECK(memcmp(h, back, 32) == 0);
    CHECK(merkle_unhex("abc", back) != 0);
    CHECK(merkle_unhex("zz0b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d00", back) != 0);
    hex[64] = 'a';
    hex[65 - 1] = 'a';
    char longer[67];
    memcpy(longer, hex, 64);
    memcpy(longer + 64, "ab", 3);
    CHECK(merkle_unhex(longer, back) != 0);
}

/* RFC 6962 2.1 transcribed literally (recursive; used only as the oracle here). */
static void ref_mth(const struct leaves *l, uint64_t lo, uint64_t hi, uint8_t out[32])
{
    if (hi - lo == 1) {
        memcpy(out, l->h[lo], 32);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    uint8_t a[32], b[32];
    ref_mth(l, lo, lo + k, a);
    ref_mth(l, lo + k, hi, b);
    merkle_node_hash(a, b, out);
}

static void ref_path(const struct leaves *l, uint64_t m, uint64_t lo, uint64_t hi,
                     struct merkle_proof *p)
{
    if (hi - lo <= 1)
        return;
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m < k) {
        ref_path(l, m, lo, lo + k, p);
        ref_mth(l, lo + k, hi, p->hash[p->n++]);
    } else {
        ref_path(l, m - k, lo + k, hi, p);
        ref_mth(l, lo, lo + k, p->hash[p->n++]);
    }
}

static void ref_subproof(const struct leaves *l, uint64_t m, uint64_t lo, uint64_t hi, int b,
                         struct merkle_proof *p)
{
    if (m == hi - lo) {
        if (!b)
            ref_mth(l, lo, hi, p->hash[p->n++]);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m <= k) {
        ref_subproof(l, m, lo, lo + k, b, p);
        ref_mth(l, lo + k, hi, p->hash[p->n++]);
    } else {
        ref_subproof(l, m - k, lo + k, hi, 0, p);
        ref_mth(l, lo, lo + k, p->hash[p->n++]);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

TEST(merkle_random_proofs_1_to_200)
{
    enum { N = 200 };
    static uint8_t h[N][32];
    for (int i = 0; i < N; i++) {
        /* Distinct leaves of random length (the index is part of the data). */
        uint8_t d[10] = {(uint8_t)i, (uint8_t)(i >> 8)};
        for (int j = 2; j < 10; j++)
            d[j] = (uint8_t)rnd();
        merkle_leaf_hash(d, 2 + (size_t)(rnd() % 9), h[i]);
    }
    struct leaves l = {h, N, 0};
    int failures = 0;
    for (uint64_t n = 1; n <= N; n++) {
        uint8_t root[32], ref_root[32];
        REQUIRE(merkle_subtree_root(leaves_get, &l, 0, n, root, NULL) == 0);
        ref_mth(&l, 0, n, ref_root);
        CHECK(memcmp(root, ref_root, 32) == 0);
        for (int t = 0; t < 12; t++) {
            uint64_t m = t < 3 ? (t == 0 ? 0 : t == 1 ? n - 1 : n / 2) : rnd() % n;
            struct merkle_proof p, want = {0};
            REQUIRE(merkle_inclusion_proof(leaves_get, &l, m, n, &p, NULL) == 0);
            ref_path(&l, m, 0, n, &want);
            if (p.n != want.n || memcmp(p.hash, want.hash, p.n * 32) != 0)
                failures++;
            if (merkle_verify_inclusion(m, n, h[m], (const uint8_t(*)[32])p.hash, p.n, root))
                failures++;
            /* Wrong index, wrong size, wrong leaf, a flipped bit, a truncated path: all fail. */
            if (n > 1 && !merkle_verify_inclusion((m + 1) % n, n, h[m],
                                                  (const uint8_t(*)[32])p.hash, p.n, root))
                failures++;
            /* (The same path may walk to the same root under size n + 1 — RFC 9162 binds
             * the size through the signed root — so the wrong size is paired with the real
             * root of that size.) */
            if (n < N) {
                uint8_t root_next[32];
                ref_mth(&l, 0, n + 1, root_next);
                if (!merkle_verify_inclusion(m, n + 1, h[m], (const uint8_t(*)[32])p.hash, p.n,
                                             root_next))
                    failures++;
            }
            if (n > 1 && !merkle_verify_inclusion(m, n, h[(m + 1) % n],
                                                  (const uint8_t(*)[32])p.hash, p.n, root))
                failures++;
            if (p.n) {
                struct merkle_proof bad = p;
                bad.hash[rnd() % p.n][rnd() % 32] ^= (uint8_t)(1u << (rnd() % 8));
                if (!merkle_verify_inclusion(m, n, h[m], (const uint8_t(*)[32])bad.hash, bad.n,
                                             root))
                    failures++;
                if (!merkle_verify_inclusion(m, n, h[m], (const uint8_t(*)[32])p.hash, p.n - 1,
                                             root))
                    failures++;
            }

            uint64_t m2 = 1 + rnd() % n;   /* consistency between sizes m2 <= n */
            uint8_t root_m[32];
            ref_mth(&l, 0, m2, root_m);
            struct merkle_proof c, cwant = {0};
            REQUIRE(merkle_consistency_proof(leaves_get, &l, m2, n, &c, NULL) == 0);
            if (m2 < n)
                ref_subproof(&l, m2, 0, n, 1, &cwant);
            if (c.n != cwant.n || memcmp(c.hash, cwant.hash, c.n * 32) != 0)
                failures++;
            if (merkle_verify_consistency(m2, n, root_m, root, (const uint8_t(*)[32])c.hash,
                                          c.n))
                failures++;
            if (c.n) {
                struct merkle_proof bad = c;
                bad.hash[rnd() % c.n][rnd() % 32] ^= 0x80;
                if (!merkle_verify_consistency(m2, n, root_m, root,
                                               (const uint8_t(*)[32])bad.hash, bad.n))
                    failures++;
                if (m2 > 1 && !merkle_verify_consistency(m2 - 1, n, root_m, root,
                                                         (const uint8_t(*)[32])c.hash, c.n))
                    failures++;
            }
        }
    }
    CHECK_EQ_INT(failures, 0);
}

TEST(merkle_proof_reads_each_leaf_once)
{
    enum { N = 1000 };
    static uint8_t h[N][32];
    for (int i = 0; i < N; i++)
        merkle_leaf_hash(&i, sizeof(i), h[i]);
    struct leaves l = {h, N, 0};
    struct merkle_proof p;
    REQUIRE(merkle_inclusion_proof(leaves_get, &l, 517, N, &p, NULL) == 0);
    CHECK_EQ_INT(l.reads, N - 1);
    l.reads = 0;
    REQUIRE(merkle_consistency_proof(leaves_get, &l, 300, N, &p, NULL) == 0);
    CHECK(l.reads <= N);
    /* A failing source is reported with its own error. */
    struct leaves short_l = {h, 10, 0};
    int serr = 0;
    CHECK_EQ_INT(merkle_inclusion_proof(leaves_get, &short_l, 3, 20, &p, &serr), MERKLE_E_SOURCE);
    CHECK_EQ_INT(serr, -100);
    CHECK_EQ_INT(merkle_inclusion_proof(leaves_get, &l, 5, 5, &p, NULL), MERKLE_E_ARG);
}
