/* RFC 6962 Merkle tree hashing, streaming roots, and inclusion / consistency proofs. */
#include "trust/merkle.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

const char *merkle_strerror(int err)
{
    switch (err) {
    case MERKLE_OK: return "ok";
    case MERKLE_E_ARG: return "invalid argument";
    case MERKLE_E_CRYPTO: return "SHA-256 failed";
    case MERKLE_E_PROOF: return "proof does not verify";
    case MERKLE_E_SOURCE: return "reading a leaf hash failed";
    case MERKLE_E_FULL: return "tree is full";
    default: return "unknown merkle error";
    }
}

/* The SHA-256 implementation, fetched once (an implicit fetch per digest costs a lookup). */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_fetched;

static void sha_init(void)
{
    sha_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&sha_once, sha_init);
    return sha_fetched ? sha_fetched : EVP_sha256();
}

/* SHA-256 over up to three pieces (a one-byte prefix and one or two bodies). */
static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                        size_t clen, uint8_t out[MERKLE_HASH_SIZE])
{
    int rc = MERKLE_E_CRYPTO;
    unsigned int olen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return MERKLE_E_CRYPTO;
    if (EVP_DigestInit_ex(ctx, sha256_md(), NULL) != 1)
        goto out;
    if (alen && EVP_DigestUpdate(ctx, a, alen) != 1)
        goto out;
    if (blen && EVP_DigestUpdate(ctx, b, blen) != 1)
        goto out;
    if (clen && EVP_DigestUpdate(ctx, c, clen) != 1)
        goto out;
    if (EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != MERKLE_HASH_SIZE)
        goto out;
    rc = MERKLE_OK;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int merkle_sha256(const void *data, size_t len, uint8_t out[MERKLE_HASH_SIZE])
{
    if (!out || (!data && len))
        return MERKLE_E_ARG;
    return sha256_parts(data, len, NULL, 0, NULL, 0, out);
}

int merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_SIZE])
{
    static const uint8_t prefix = 0x00;
    if (!out || (!data && len))
        return MERKLE_E_ARG;
    return sha256_parts(&prefix, 1, data, len, NULL, 0, out);
}

int merkle_node_hash(const uint8_t left[MERKLE_HASH_SIZE], const uint8_t right[MERKLE_HASH_SIZE],
                     uint8_t out[MERKLE_HASH_SIZE])
{
    static const uint8_t prefix = 0x01;
    uint8_t tmp[MERKLE_HASH_SIZE];
    if (!left || !right || !out)
        return MERKLE_E_ARG;
    int rc = sha256_parts(&prefix, 1, left, MERKLE_HASH_SIZE, right, MERKLE_HASH_SIZE, tmp);
    if (rc == 0)
        memcpy(out, tmp, MERKLE_HASH_SIZE);
    return rc;
}

int merkle_empty_root(uint8_t out[MERKLE_HASH_SIZE])
{
    return merkle_sha256(NULL, 0, out);
}

void merkle_range_init(struct merkle_range *r)
{
    memset(r, 0, sizeof(*r));
}

int merkle_range_push(struct merkle_range *r, const uint8_t leaf_hash[MERKLE_HASH_SIZE])
{
    if (!r || !leaf_hash || r->n > MERKLE_MAX_DEPTH)
        return MERKLE_E_ARG;
    if (r->size == UINT64_MAX)
        return MERKLE_E_FULL;
    uint8_t h[MERKLE_HASH_SIZE];
    memcpy(h, leaf_hash, MERKLE_HASH_SIZE);
    /* Each trailing set bit of size is a perfect subtree of the same height as the one being
     * carried: merge them, as in binary addition. */
    for (uint64_t s = r->size; s & 1; s >>= 1) {
        if (r->n == 0)
            return MERKLE_E_ARG;   /* inconsistent range (not built by push) */
        int rc = merkle_node_hash(r->stack[r->n - 1], h, h);
        if (rc)
            return rc;
        r->n--;
    }
    if (r->n >= MERKLE_MAX_DEPTH)
        return MERKLE_E_FULL;
    memcpy(r->stack[r->n++], h, MERKLE_HASH_SIZE);
    r->size++;
    return MERKLE_OK;
}

int merkle_range_root(const struct merkle_range *r, uint8_t out[MERKLE_HASH_SIZE])
{
    if (!r || !out || r->n > MERKLE_MAX_DEPTH)
        return MERKLE_E_ARG;
    if (r->n == 0)
        return merkle_empty_root(out);
    /* The RFC's split puts the largest perfect subtree on the left at every level, so the root
     * folds the stack from the smallest (rightmost) subtree up. */
    uint8_t h[MERKLE_HASH_SIZE];
    memcpy(h, r->stack[r->n - 1], MERKLE_HASH_SIZE);
    for (unsigned i = r->n - 1; i-- > 0;) {
        int rc = merkle_node_hash(r->stack[i], h, h);
        if (rc)
            return rc;
    }
    memcpy(out, h, MERKLE_HASH_SIZE);
    return MERKLE_OK;
}

int merkle_root_of(const uint8_t (*hashes)[MERKLE_HASH_SIZE], uint64_t n,
                   uint8_t out[MERKLE_HASH_SIZE])
{
    if ((!hashes && n) || !out)
        return MERKLE_E_ARG;
    struct merkle_range r;
    merkle_range_init(&r);
    for (uint64_t i = 0; i < n; i++) {
        int rc = merkle_range_push(&r, hashes[i]);
        if (rc)
            return rc;
    }
    return merkle_range_root(&r, out);
}

int merkle_subtree_root(merkle_leaf_fn get, void *ud, uint64_t begin, uint64_t end,
                        uint8_t out[MERKLE_HASH_SIZE], int *source_err)
{
    if (!get || !out || begin > end)
        return MERKLE_E_ARG;
    struct merkle_range r;
    merkle_range_init(&r);
    for (uint64_t i = begin; i < end; i++) {
        uint8_t leaf[MERKLE_HASH_SIZE];
        int e = get(ud, i, leaf);
        if (e) {
            if (source_err)
                *source_err = e;
            return MERKLE_E_SOURCE;
        }
        int rc = merkle_range_push(&r, leaf);
        if (rc)
            return rc;
    }
    return merkle_range_root(&r, out);
}

/* The largest power of two strictly less than x (x >= 2): the RFC 6962 split point. */
static uint64_t split_point(uint64_t x)
{
    return (uint64_t)1 << (63 - __builtin_clzll(x - 1));
}

/* Reverses the proof: generation walks the tree top-down, the RFC lists hashes bottom-up. */
static void proof_reverse(struct merkle_proof *p)
{
    for (size_t i = 0, j = p->n ? p->n - 1 : 0; i < j; i++, j--) {
        uint8_t t[MERKLE_HASH_SIZE];
        memcpy(t, p->hash[i], MERKLE_HASH_SIZE);
        memcpy(p->hash[i], p->hash[j], MERKLE_HASH_SIZE);
        memcpy(p->hash[j], t, MERKLE_HASH_SIZE);
    }
}

static int proof_add(struct merkle_proof *p, merkle_leaf_fn get, void *ud, uint64_t begin,
                     uint64_t end, int *source_err)
{
    if (p->n >= MERKLE_MAX_PROOF)
        return MERKLE_E_ARG;
    int rc = merkle_subtree_root(get, ud, begin, end, p->hash[p->n], source_err);
    if (rc == 0)
        p->n++;
    return rc;
}

int merkle_inclusion_proof(merkle_leaf_fn get, void *ud, uint64_t m, uint64_t n,
                           struct merkle_proof *out, int *source_err)
{
    if (!get || !out || m >= n)
        return MERKLE_E_ARG;
    out->n = 0;
    uint64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);
        int rc;
        if (m < lo + k) {
            rc = proof_add(out, get, ud, lo + k, hi, source_err);
            hi = lo + k;
        } else {
            rc = proof_add(out, get, ud, lo, lo + k, source_err);
            lo += k;
        }
        if (rc)
            return rc;
    }
    proof_reverse(out);
    return MERKLE_OK;
}

int merkle_consistency_proof(merkle_leaf_fn get, void *ud, uint64_t m, uint64_t n,
                             struct merkle_proof *out, int *source_err)
{
    if (!get || !out || m > n)
        return MERKLE_E_ARG;
    out->n = 0;
    if (m == 0 || m == n)
        return MERKLE_OK;
    /* SUBPROOF(mm, D[lo:hi], whole) unrolled: `whole` stays true while the old tree is a
     * left-aligned subtree of the current range. */
    uint64_t lo = 0, hi = n, mm = m;
    bool whole = true;
    for (;;) {
        int rc = 0;
        if (mm == hi - lo) {
            if (!whole)
                rc = proof_add(out, get, ud, lo, hi, source_err);
            if (rc)
                return rc;
            break;
        }
        uint64_t k = split_point(hi - lo);
        if (mm <= k) {
            rc = proof_add(out, get, ud, lo + k, hi, source_err);
            hi = lo + k;
        } else {
            rc = proof_add(out, get, ud, lo, lo + k, source_err);
            mm -= k;
            lo += k;
            whole = false;
        }
        if (rc)
            return rc;
    }
    proof_reverse(out);
    return MERKLE_OK;
}

int merkle_inclusion_root(uint64_t m, uint64_t n, const uint8_t leaf_hash[MERKLE_HASH_SIZE],
                          const uint8_t (*path)[MERKLE_HASH_SIZE], size_t path_len,
                          uint8_t out[MERKLE_HASH_SIZE])
{
    if (!leaf_hash || !out || (!path && path_len) || m >= n)
        return MERKLE_E_ARG;
    if (path_len > MERKLE_MAX_DEPTH)
        return MERKLE_E_PROOF;
    uint64_t fn = m, sn = n - 1;
    uint8_t r[MERKLE_HASH_SIZE];
    memcpy(r, leaf_hash, MERKLE_HASH_SIZE);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0)
            return MERKLE_E_PROOF;
        int rc;
        if ((fn & 1) || fn == sn) {
            rc = merkle_node_hash(path[i], r, r);
            /* The right edge of a tree that is not perfect: climb past the levels where this
             * node has no right sibling. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            rc = merkle_node_hash(r, path[i], r);
        }
        if (rc)
            return rc;
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return MERKLE_E_PROOF;
    memcpy(out, r, MERKLE_HASH_SIZE);
    return MERKLE_OK;
}

int merkle_verify_inclusion(uint64_t m, uint64_t n, const uint8_t leaf_hash[MERKLE_HASH_SIZE],
                            const uint8_t (*path)[MERKLE_HASH_SIZE], size_t path_len,
                            const uint8_t root[MERKLE_HASH_SIZE])
{
    if (!root)
        return MERKLE_E_ARG;
    uint8_t r[MERKLE_HASH_SIZE];
    int rc = merkle_inclusion_root(m, n, leaf_hash, path, path_len, r);
    if (rc)
        return rc;
    return memcmp(r, root, MERKLE_HASH_SIZE) == 0 ? MERKLE_OK : MERKLE_E_PROOF;
}

int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[MERKLE_HASH_SIZE],
                              const uint8_t root_n[MERKLE_HASH_SIZE],
                              const uint8_t (*proof)[MERKLE_HASH_SIZE], size_t proof_len)
{
    if (!root_m || !root_n || (!proof && proof_len) || m > n)
        return MERKLE_E_ARG;
    if (m == 0)
        return proof_len == 0 ? MERKLE_OK : MERKLE_E_PROOF;
    if (m == n)
        return proof_len == 0 && memcmp(root_m, root_n, MERKLE_HASH_SIZE) == 0 ? MERKLE_OK
                                                                                : MERKLE_E_PROOF;
    if (proof_len == 0 || proof_len > MERKLE_MAX_PROOF)
        return MERKLE_E_PROOF;
    /* When m is a power of two the old root is itself a node of the new tree and the proof
     * leaves it out: start from it (the RFC's "prepend first_hash"). */
    bool pow2 = (m & (m - 1)) == 0;
    size_t total = proof_len + (pow2 ? 1 : 0);
#define PROOF_AT(i) (pow2 ? ((i) == 0 ? root_m : proof[(i) - 1]) : proof[(i)])
    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[MERKLE_HASH_SIZE], sr[MERKLE_HASH_SIZE];
    memcpy(fr, PROOF_AT(0), MERKLE_HASH_SIZE);
    memcpy(sr, PROOF_AT(0), MERKLE_HASH_SIZE);
    for (size_t i = 1; i < total; i++) {
        const uint8_t *c = PROOF_AT(i);
        if (sn == 0)
            return MERKLE_E_PROOF;
        int rc;
        if ((fn & 1) || fn == sn) {
            rc = merkle_node_hash(c, fr, fr);
            if (rc == 0)
                rc = merkle_node_hash(c, sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            rc = merkle_node_hash(sr, c, sr);
        }
        if (rc)
            return rc;
        fn >>= 1;
        sn >>= 1;
    }
#undef PROOF_AT
    if (sn != 0 || memcmp(fr, root_m, MERKLE_HASH_SIZE) != 0 ||
        memcmp(sr, root_n, MERKLE_HASH_SIZE) != 0)
        return MERKLE_E_PROOF;
    return MERKLE_OK;
}

void merkle_hex(const uint8_t h[MERKLE_HASH_SIZE], char out[2 * MERKLE_HASH_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < MERKLE_HASH_SIZE; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * MERKLE_HASH_SIZE] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int merkle_unhex(const char *s, uint8_t out[MERKLE_HASH_SIZE])
{
    if (!s || !out)
        return MERKLE_E_ARG;
    for (size_t i = 0; i < MERKLE_HASH_SIZE; i++) {
        int hi = hexval(s[2 * i]);
        int lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MERKLE_E_ARG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return s[2 * MERKLE_HASH_SIZE] == '\0' ? MERKLE_OK : MERKLE_E_ARG;
}
