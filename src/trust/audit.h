/* Tamper-evident audit log: canonical request records, RFC 6962 leaf hashes, Ed25519 signed
 * tree heads, full verification and inclusion proofs, over storage supplied as callbacks. */
#ifndef TANDEM_TRUST_AUDIT_H
#define TANDEM_TRUST_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trust/merkle.h"

#define AUDIT_HASH_SIZE MERKLE_HASH_SIZE
#define AUDIT_RECORD_MAX (1u << 20)       /* bytes per serialized record */
#define AUDIT_SIG_MAX 1024                /* bytes per head signature (Ed25519 uses 64) */
#define AUDIT_ID_MAX 128                  /* request_id, key_id: up to 127 bytes + NUL */
#define AUDIT_NAME_MAX 256                /* model, target: up to 255 bytes + NUL */
#define AUDIT_TEXT_MAX (256u * 1024)      /* included prompt/response text is cut to this */
#define AUDIT_RECORD_VERSION 1

enum audit_error {
    AUDIT_OK = 0,
    AUDIT_E_ARG = -1,        /* NULL pointer, bad index or size, invalid string */
    AUDIT_E_NOMEM = -2,
    AUDIT_E_NOTFOUND = -3,   /* no entry / head there (also returned by storage callbacks) */
    AUDIT_E_EXISTS = -4,     /* a head for that tree size is stored already (also storage) */
    AUDIT_E_STORAGE = -5,    /* a storage callback failed (any other negative it returned) */
    AUDIT_E_FORMAT = -6,     /* bytes that are not a canonical record / proof JSON */
    AUDIT_E_TOOBIG = -7,     /* a record over AUDIT_RECORD_MAX */
    AUDIT_E_CRYPTO = -8,     /* OpenSSL failed */
    AUDIT_E_KEY = -9,        /* key file unreadable, not Ed25519, or no private part */
    AUDIT_E_IO = -10,        /* reading or writing a key file */
    AUDIT_E_TAMPERED = -11,  /* verification found a fault (see struct audit_report) */
    AUDIT_E_PROOF = -12,     /* an inclusion proof does not verify */
    AUDIT_E_SIGNATURE = -13, /* a head signature does not verify */
};

/* Message for an audit_error value (never NULL). */
const char *audit_strerror(int err);

/* ---- Records ------------------------------------------------------------------------------ */

/* What the privacy policy did with the request. */
enum audit_privacy {
    AUDIT_PRIVACY_NONE = 0,       /* no policy applied */
    AUDIT_PRIVACY_PASS,           /* scanned: nothing found, or allowed */
    AUDIT_PRIVACY_LOCAL,          /* PII found: served by the local model only */
    AUDIT_PRIVACY_PSEUDONYMIZE,   /* PII found: the cloud saw placeholders */
    AUDIT_PRIVACY_BLOCK,          /* PII found: refused */
    AUDIT_PRIVACY_COUNT
};

enum audit_outcome {
    AUDIT_OUTCOME_OK = 0,
    AUDIT_OUTCOME_ERROR,          /* upstream or engine failure */
    AUDIT_OUTCOME_BLOCKED,        /* refused by policy */
    AUDIT_OUTCOME_RATE_LIMITED,
    AUDIT_OUTCOME_OVER_BUDGET,
    AUDIT_OUTCOME_UNAUTHORIZED,
    AUDIT_OUTCOME_CANCELLED,      /* the client went away */
    AUDIT_OUTCOME_COUNT
};

/* Lowercase names ("pseudonymize", "rate_limited"), NULL when out of range. */
const char *audit_privacy_name(enum audit_privacy p);
const char *audit_outcome_name(enum audit_outcome o);

/* One audited request. Strings are NUL-terminated valid UTF-8 (encode rejects anything else,
 * and names that do not fit their array cannot be represented). The text pointers are NULL unless the
 * text is to be kept (and encode keeps it only when asked); after audit_record_decode they
 * point into the decoded buffer and are NOT NUL-terminated. */
struct audit_record {
    int64_t ts_ms;                        /* when the request finished, Unix ms */
    char request_id[AUDIT_ID_MAX];
    char key_id[AUDIT_ID_MAX];            /* virtual API key id ("" when none) */
    char model[AUDIT_NAME_MAX];           /* public model or route name requested */
    char target[AUDIT_NAME_MAX];          /* the target that served it ("" when none) */
    enum audit_privacy privacy;
    enum audit_outcome outcome;
    uint16_t http_status;
    uint8_t prompt_sha256[AUDIT_HASH_SIZE];   /* SHA-256 of the prompt as received */
    uint8_t response_sha256[AUDIT_HASH_SIZE]; /* SHA-256 of the response text as sent */
    const char *prompt_text;              /* may be NULL */
    size_t prompt_len;
    const char *response_text;            /* may be NULL */
    size_t response_len;
    bool prompt_truncated, response_truncated; /* set by decode: the stored text was cut */
};

/* Sets the two SHA-256 fields from the full texts and points prompt_text / response_text at
 * them (borrowed: they must outlive the encode). Either text may be NULL (hash of ""). */
int audit_record_set_texts(struct audit_record *r, const char *prompt, size_t prompt_len,
                           const char *response, size_t response_len);

/* Serializes r canonically (docs/audit.md: version 1, big-endian, length-prefixed). The
 * texts are written only when include_text is true (each cut to AUDIT_TEXT_MAX at a UTF-8
 * boundary). *out is malloc'd (the caller frees it), *len its length. */
int audit_record_encode(const struct audit_record *r, bool include_text, uint8_t **out,
                        size_t *len);
/* Parses a serialized record strictly: the version, every length, enum value and flag bit is
 * checked and trailing bytes are refused, so encode(decode(b)) == b. The text pointers of
 * out point into buf. AUDIT_E_FORMAT when it does not parse. */
int audit_record_decode(const uint8_t *buf, size_t len, struct audit_record *out);
/* The record as a JSON object (hashes in hex, texts when present); malloc'd string. */
int audit_record_to_json(const struct audit_record *r, char **out);

/* ---- Storage ------------------------------------------------------------------------------ */

/* A signed tree head: the root of the first tree_size entries at ts_ms, signed. */
struct audit_head {
    uint64_t tree_size;
    uint8_t root[AUDIT_HASH_SIZE];
    int64_t ts_ms;
    uint8_t sig[AUDIT_SIG_MAX];
    size_t sig_len;                       /* 0: unsigned */
};

/* Where the log lives (SQLite, PostgreSQL, a file, memory). Every slot gets the `ud` of its
 * struct audit_storage. Slots return 0, AUDIT_E_NOTFOUND or AUDIT_E_EXISTS where stated, or
 * any other negative value on failure (the audit functions report that as AUDIT_E_STORAGE).
 * The audit module serializes its own calls; a storage shared by several processes must make
 * `append` atomic itself. */
struct audit_storage_ops {
    /* Required. Appends one entry: record (len bytes, 1..AUDIT_RECORD_MAX) and its leaf hash,
     * both copied, with ts_ms. Assigns the index: 0 for the first entry, then consecutive with
     * no gaps; *idx receives it. */
    int (*append)(void *ud, int64_t ts_ms, const uint8_t *record, size_t len,
                  const uint8_t leaf_hash[AUDIT_HASH_SIZE], uint64_t *idx);
    /* Required. *n = the number of entries (the next index). */
    int (*count)(void *ud, uint64_t *n);
    /* Required. Entry idx as stored: leaf_hash, and *ts_ms when ts_ms is not NULL; when
     * record is not NULL, *record gets a malloc'd copy (the caller free()s it) and *len its
     * length. AUDIT_E_NOTFOUND when there is no entry with that index. */
    int (*get)(void *ud, uint64_t idx, int64_t *ts_ms, uint8_t leaf_hash[AUDIT_HASH_SIZE],
               uint8_t **record, size_t *len);
    /* May be NULL (get is used instead). Stored leaf hashes of [first, first + n) into out;
     * *got = how many were written (fewer when the log ends first). */
    int (*leaf_hashes)(void *ud, uint64_t first, uint64_t n, uint8_t (*out)[AUDIT_HASH_SIZE],
                       uint64_t *got);
    /* Required. Stores a head (h->sig_len <= AUDIT_SIG_MAX, copied). AUDIT_E_EXISTS when a
     * head for h->tree_size is stored already. */
    int (*head_put)(void *ud, const struct audit_head *h);
    /* Required. The head with the largest tree size; AUDIT_E_NOTFOUND when none. */
    int (*head_latest)(void *ud, struct audit_head *out);
    /* May be NULL (audit_verify then checks only the latest head). The head with the
     * smallest tree size >= min_size; AUDIT_E_NOTFOUND when none. */
    int (*head_next)(void *ud, uint64_t min_size, struct audit_head *out);
};

struct audit_storage {
    const struct audit_storage_ops *ops;
    void *ud;
};

/* ---- Keys --------------------------------------------------------------------------------- */

/* An Ed25519 key (private, or public only). Opaque. */
struct audit_key;

/* A fresh random key pair. */
int audit_key_generate(struct audit_key **out);
/* Loads a PEM file: a private key (PKCS#8, as `openssl genpkey -algorithm ed25519` writes) or
 * a public key (SubjectPublicKeyInfo, `openssl pkey -pubout`). AUDIT_E_KEY when it is not
 * Ed25519, AUDIT_E_IO when it cannot be read. */
int audit_key_load(const char *path, struct audit_key **out);
/* Writes the private key (private_part true; file mode 0600) or the public key as PEM. The
 * file must not exist yet (AUDIT_E_IO otherwise). */
int audit_key_save(const struct audit_key *k, const char *path, bool private_part);
/* Whether the key can sign. */
bool audit_key_has_private(const struct audit_key *k);
/* Key id: hex SHA-256 of the raw 32-byte public key. */
int audit_key_id(const struct audit_key *k, char out[2 * AUDIT_HASH_SIZE + 1]);
/* Accepts NULL. */
void audit_key_free(struct audit_key *k);

/* The signed message: "tandem-audit-head-v1" || u64be tree_size || root || i64be ts_ms
 * (68 bytes). Signs h in place (h->sig, h->sig_len). */
int audit_head_sign(const struct audit_key *k, struct audit_head *h);
/* 0 when h's signature verifies under k, AUDIT_E_SIGNATURE when not. */
int audit_head_verify(const struct audit_key *k, const struct audit_head *h);

/* ---- The log ------------------------------------------------------------------------------ */

struct audit_log_options {
    bool include_text;   /* keep prompt/response text in records (default: hashes only) */
};

/* The append side of a log. Thread-safe: appends and head signing are serialized. */
struct audit_log;

/* Opens the log on `st` (copied; st->ud must outlive the log). Reads every stored leaf hash
 * once into a compact range (O(log n) memory), so heads are then signed in O(1). opt may be
 * NULL (defaults). AUDIT_E_TAMPERED when an index below count has no entry (run
 * audit_verify to locate it); the caller decides whether to serve without an audit log. */
int audit_log_open(const struct audit_storage *st, const struct audit_log_options *opt,
                   struct audit_log **out);
/* Accepts NULL. */
void audit_log_free(struct audit_log *log);
/* Number of entries the log has seen. */
uint64_t audit_log_size(struct audit_log *log);
/* Serializes r (texts only with include_text), hashes it and appends it; *idx (may be NULL)
 * gets its index. Entries appended by other processes sharing the storage are folded in. */
int audit_append(struct audit_log *log, const struct audit_record *r, uint64_t *idx);
/* Signs the root over all entries at ts_ms with k (a private key) and stores the head; out
 * may be NULL. AUDIT_E_EXISTS when the newest head already covers every entry. */
int audit_sign_head(struct audit_log *log, const struct audit_key *k, int64_t ts_ms,
                    struct audit_head *out);

/* ---- Verification ------------------------------------------------------------------------- */

enum audit_fault {
    AUDIT_FAULT_NONE = 0,
    AUDIT_FAULT_MISSING,        /* no entry at idx: a gap, or a head covers entries not stored */
    AUDIT_FAULT_PARSE,          /* the record at idx does not parse */
    AUDIT_FAULT_LEAF_HASH,      /* the record at idx does not hash to its stored leaf hash */
    AUDIT_FAULT_TIMESTAMP,      /* the stored ts_ms of idx differs from the record's */
    AUDIT_FAULT_HEAD_SIGNATURE, /* the head for head_size is unsigned or its signature is bad */
    AUDIT_FAULT_HEAD_ROOT,      /* the head's root is not the root of its first entries */
    AUDIT_FAULT_COUNT
};

/* "leaf_hash_mismatch" etc.; NULL when out of range. */
const char *audit_fault_name(enum audit_fault f);

struct audit_report {
    uint64_t entries;         /* entries stored (count) */
    uint64_t entries_ok;      /* entries checked good before the fault (all when none) */
    uint64_t heads_ok;        /* heads checked good */
    enum audit_fault fault;   /* the first fault, in log order */
    uint64_t idx;             /* entry faults and MISSING: the first bad entry index */
    bool head;                /* the fault is about a head ... */
    uint64_t head_size;       /* ... with this tree size */
    char detail[256];         /* one human-readable line */
};

/* Verifies the whole log in one streaming pass: re-parses every record and recomputes its
 * leaf hash (an edited record or edited hash is caught at its index; a gap in the indexes is
 * MISSING), recomputes the root at every stored head's size and checks it and the head's
 * signature under `key` (NULL: roots only). Heads that all match roots of prefixes of the
 * same verified leaf sequence are pairwise consistent. A head whose size is past the last
 * entry reports MISSING at the first absent index (truncation). Returns 0 when everything
 * verifies, AUDIT_E_TAMPERED with `report` naming the first fault, or another error (storage
 * failure). report may not be NULL. Memory: O(log n). */
int audit_verify(const struct audit_storage *st, const struct audit_key *key,
                 struct audit_report *report);

/* ---- Proofs ------------------------------------------------------------------------------- */

struct audit_inclusion {
    uint64_t leaf_index;
    uint64_t tree_size;
    uint8_t leaf_hash[AUDIT_HASH_SIZE];
    uint8_t root[AUDIT_HASH_SIZE];
    struct merkle_proof path;             /* RFC 6962 PATH(leaf_index, D[tree_size]) */
    bool has_head;                        /* the signed head for tree_size, when stored */
    struct audit_head head;
};

/* Inclusion proof of entry idx in the tree of the first tree_size entries (tree_size 0: the
 * latest signed head's size; AUDIT_E_NOTFOUND when there is none), from the stored leaf
 * hashes. Attaches the stored head for that size when there is one; AUDIT_E_TAMPERED when
 * that head's root differs from the recomputed root. */
int audit_inclusion_proof(const struct audit_storage *st, uint64_t idx, uint64_t tree_size,
                          struct audit_inclusion *out);
/* Checks a proof: the path leads from leaf_hash to root; with record (may be NULL), that the
 * record hashes to leaf_hash; with key (may be NULL), that a head for tree_size with that
 * root is attached and its signature verifies. 0, AUDIT_E_PROOF or AUDIT_E_SIGNATURE. */
int audit_verify_inclusion(const struct audit_inclusion *p, const uint8_t *record,
                           size_t record_len, const struct audit_key *key);
/* The proof as JSON (docs/audit.md); malloc'd string. */
int audit_inclusion_to_json(const struct audit_inclusion *p, char **out);
/* Parses audit_inclusion_to_json's format. AUDIT_E_FORMAT when malformed. */
int audit_inclusion_from_json(const char *json, size_t len, struct audit_inclusion *out);

/* Consistency proof between the trees of the first m and first n entries (m <= n <= count),
 * from the stored leaf hashes; roots (either may be NULL) receive both roots. */
int audit_consistency_proof(const struct audit_storage *st, uint64_t m, uint64_t n,
                            struct merkle_proof *out, uint8_t root_m[AUDIT_HASH_SIZE],
                            uint8_t root_n[AUDIT_HASH_SIZE]);

#endif
