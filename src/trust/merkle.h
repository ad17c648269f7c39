/* RFC 6962 / RFC 9162 Merkle tree hashing: leaf and node hashes, streaming roots in O(log n)
 * memory, inclusion (audit) proofs and consistency proofs with their verification. */
#ifndef TANDEM_TRUST_MERKLE_H
#define TANDEM_TRUST_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_SIZE 32
/* A tree of n < 2^64 leaves has depth <= 64; an inclusion path has at most 64 hashes and a
 * consistency proof at most 65 (RFC 6962 2.1.2: the first subtree root, then one per level). */
#define MERKLE_MAX_DEPTH 64
#define MERKLE_MAX_PROOF 66

enum merkle_error {
    MERKLE_OK = 0,
    MERKLE_E_ARG = -1,     /* NULL pointer, index out of range, sizes out of order */
    MERKLE_E_CRYPTO = -2,  /* the SHA-256 implementation failed */
    MERKLE_E_PROOF = -3,   /* a proof does not verify */
    MERKLE_E_SOURCE = -4,  /* the leaf source callback failed */
    MERKLE_E_FULL = -5,    /* more than 2^64 - 1 leaves */
};

/* Message for a merkle_error value (never NULL). */
const char *merkle_strerror(int err);

/* SHA-256(data) (plain, no prefix). data may be NULL when len is 0. */
int merkle_sha256(const void *data, size_t len, uint8_t out[MERKLE_HASH_SIZE]);
/* Leaf hash: SHA-256(0x00 || data). data may be NULL when len is 0. */
int merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_SIZE]);
/* Interior node hash: SHA-256(0x01 || left || right). out may alias left or right. */
int merkle_node_hash(const uint8_t left[MERKLE_HASH_SIZE], const uint8_t right[MERKLE_HASH_SIZE],
                     uint8_t out[MERKLE_HASH_SIZE]);
/* The root of the empty tree: SHA-256 of the empty string. */
int merkle_empty_root(uint8_t out[MERKLE_HASH_SIZE]);

/* A compact range: the roots of the perfect subtrees that make up the first `size` leaves
 * (one per set bit of size, largest first). Pushing leaf hashes one at a time yields the root
 * of any prefix in O(log n) memory, so a 1M-entry log is verified without holding its hashes.
 * Plain data: initialize with merkle_range_init, copy freely; the caller serializes access. */
struct merkle_range {
    uint64_t size;                                       /* leaves pushed so far */
    unsigned n;                                          /* subtree roots on the stack */
    uint8_t stack[MERKLE_MAX_DEPTH][MERKLE_HASH_SIZE];   /* [n], largest subtree first */
};

void merkle_range_init(struct merkle_range *r);
/* Appends one leaf hash (already hashed with merkle_leaf_hash). */
int merkle_range_push(struct merkle_range *r, const uint8_t leaf_hash[MERKLE_HASH_SIZE]);
/* MTH of the leaves pushed so far (the empty root when none). Does not change r. */
int merkle_range_root(const struct merkle_range *r, uint8_t out[MERKLE_HASH_SIZE]);

/* MTH of n leaf hashes held in an array (hashes[n][32]). */
int merkle_root_of(const uint8_t (*hashes)[MERKLE_HASH_SIZE], uint64_t n,
                   uint8_t out[MERKLE_HASH_SIZE]);

/* Source of leaf hashes for proof generation: writes the leaf hash of leaf `idx` and returns
 * 0, or a negative value (reported as MERKLE_E_SOURCE, with the value kept in *source_err of
 * the caller when it asked for it). Called with increasing idx within one subtree. */
typedef int (*merkle_leaf_fn)(void *ud, uint64_t idx, uint8_t out[MERKLE_HASH_SIZE]);

/* An audit path or consistency proof: n hashes, in RFC 6962 order (bottom of the tree first). */
struct merkle_proof {
    size_t n;
    uint8_t hash[MERKLE_MAX_PROOF][MERKLE_HASH_SIZE];
};

/* MTH(D[begin:end]) over leaves read from `get`, streamed (O(log n) memory, end-begin reads).
 * source_err (may be NULL) receives the callback's own error when it fails. */
int merkle_subtree_root(merkle_leaf_fn get, void *ud, uint64_t begin, uint64_t end,
                        uint8_t out[MERKLE_HASH_SIZE], int *source_err);

/* PATH(m, D[n]): the inclusion proof of leaf m in the tree of the first n leaves
 * (requires m < n). Reads each of the other n-1 leaves at most once. */
int merkle_inclusion_proof(merkle_leaf_fn get, void *ud, uint64_t m, uint64_t n,
                           struct merkle_proof *out, int *source_err);
/* PROOF(m, D[n]): the consistency proof between the trees of the first m and first n leaves
 * (requires m <= n; empty when m == 0 or m == n). */
int merkle_consistency_proof(merkle_leaf_fn get, void *ud, uint64_t m, uint64_t n,
                             struct merkle_proof *out, int *source_err);

/* Verifies that leaf_hash is leaf `m` of the tree of size n whose root is `root`, given its
 * audit path (RFC 9162 2.1.3.2). Returns 0 or MERKLE_E_PROOF (MERKLE_E_ARG for bad sizes). */
int merkle_verify_inclusion(uint64_t m, uint64_t n, const uint8_t leaf_hash[MERKLE_HASH_SIZE],
                            const uint8_t (*path)[MERKLE_HASH_SIZE], size_t path_len,
                            const uint8_t root[MERKLE_HASH_SIZE]);
/* The root an audit path leads to from leaf m of a tree of size n (the walk of
 * merkle_verify_inclusion without the final comparison). MERKLE_E_PROOF when the path has the
 * wrong length for (m, n). */
int merkle_inclusion_root(uint64_t m, uint64_t n, const uint8_t leaf_hash[MERKLE_HASH_SIZE],
                          const uint8_t (*path)[MERKLE_HASH_SIZE], size_t path_len,
                          uint8_t out[MERKLE_HASH_SIZE]);
/* Verifies that the tree of size m with root root_m is a prefix of the tree of size n with
 * root root_n, given PROOF(m, D[n]) (RFC 9162 2.1.4.2). m == 0 is consistent with anything
 * (the proof must then be empty); m == n requires an empty proof and equal roots. */
int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[MERKLE_HASH_SIZE],
                              const uint8_t root_n[MERKLE_HASH_SIZE],
                              const uint8_t (*proof)[MERKLE_HASH_SIZE], size_t proof_len);

/* Lowercase hex of a hash into out (65 bytes with the NUL). */
void merkle_hex(const uint8_t h[MERKLE_HASH_SIZE], char out[2 * MERKLE_HASH_SIZE + 1]);
/* Parses exactly 64 hex digits (either case). Returns 0 or MERKLE_E_ARG. */
int merkle_unhex(const char *s, uint8_t out[MERKLE_HASH_SIZE]);

#endif
