/* Privacy: detection of personal data and secrets in prompts, per-request pseudonymisation
 * with a vault, and streaming restoration of placeholders in the model's answer. */
#ifndef TANDEM_GATEWAY_PII_H
#define TANDEM_GATEWAY_PII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pii_kind {
    PII_KIND_EMAIL = 0,
    PII_KIND_PHONE,
    PII_KIND_CARD,
    PII_KIND_IBAN,
    PII_KIND_IPV4,
    PII_KIND_IPV6,
    PII_KIND_SSN,
    PII_KIND_NATIONAL_ID,
    PII_KIND_API_KEY,
    PII_KIND_PRIVATE_KEY,
    PII_KIND_PERSON,
    PII_KIND_COUNT
};

#define PII_MASK(kind) (1u << (kind))
#define PII_MASK_ALL ((1u << PII_KIND_COUNT) - 1u)

enum pii_error {
    PII_OK = 0,
    PII_E_ARG = -1,     /* NULL pointer or bad argument */
    PII_E_NOMEM = -2,
    PII_E_FULL = -3,    /* more matches than the caller's array holds, or the vault is full */
    PII_E_TOO_BIG = -4, /* an input or output would exceed the module's size caps */
};
/* Static text for an error code; never contains detected values. */
const char *pii_strerror(int err);

/* Short lowercase name of a kind ("email", "phone", ..., "person"); "unknown" when out of
 * range. */
const char *pii_kind_name(enum pii_kind kind);
/* Uppercase tag used in placeholders ("EMAIL", ..., "PRIVATE_KEY"); NULL when out of range. */
const char *pii_kind_tag(enum pii_kind kind);

/* One detected value: bytes [start, start + len) of the scanned text. */
struct pii_match {
    enum pii_kind kind;
    size_t start;
    size_t len;
};

/* Largest text the scanner accepts (bigger inputs give PII_E_TOO_BIG). */
#define PII_TEXT_MAX ((size_t)256 << 20)

/* Scans text[0, len) (need not be NUL-terminated; any bytes, UTF-8 expected) for every kind
 * and writes up to max matches, sorted by start and non-overlapping, into matches; *n gets
 * the number written. When two candidates overlap the longer one wins, then the more specific
 * kind. Returns 0, or PII_E_FULL when more than max matches exist (the first max are
 * written), PII_E_ARG, PII_E_TOO_BIG. Allocates nothing; thread-safe. */
int pii_scan(const char *text, size_t len, struct pii_match *matches, size_t max, size_t *n);
/* Like pii_scan, limited to the kinds in mask (a PII_MASK() union). */
int pii_scan_kinds(const char *text, size_t len, unsigned mask, struct pii_match *matches,
                   size_t max, size_t *n);
/* Counts matches per kind (counts[] is overwritten) without keeping or reporting the values:
 * what an audit record or metric may carry. Returns 0 or a negative error. */
int pii_count(const char *text, size_t len, unsigned mask, unsigned counts[PII_KIND_COUNT]);

/* Per-request mapping between detected values and placeholders "[EMAIL_1]", "[PERSON_2]".
 * Not thread-safe: one request uses it from one thread at a time. */
struct pii_vault;

/* Longest placeholder the vault emits, in bytes ("[PRIVATE_KEY_65536]" is 19). */
#define PII_PLACEHOLDER_MAX 32
/* Caps of one vault: distinct values, and total bytes of stored values. */
#define PII_VAULT_MAX_ENTRIES 65536
#define PII_VAULT_MAX_BYTES ((size_t)64 << 20)

/* A new empty vault, or NULL when out of memory. Free with pii_vault_free. */
struct pii_vault *pii_vault_new(void);
/* Frees the vault and the values it holds (wipes them first); accepts NULL. Restorers made
 * from it must be freed before. */
void pii_vault_free(struct pii_vault *v);
/* Number of distinct values the vault holds. */
size_t pii_vault_size(const struct pii_vault *v);

/* Replaces every value of the kinds in mask found in text[0, len) by its placeholder; the same
 * value (same kind, same bytes) always gets the same placeholder within one vault, so several
 * messages of one request may be passed in turn. On success *out is a new NUL-terminated
 * buffer the caller frees with free(), *out_len its length (without the NUL), and, when counts
 * is not NULL, counts[] is overwritten with the number of replaced values per kind in this
 * text. On error *out is NULL and the vault may hold values of this text already.
 * Returns 0, PII_E_ARG, PII_E_NOMEM, PII_E_FULL (vault caps), PII_E_TOO_BIG. */
int pii_vault_pseudonymize(struct pii_vault *v, const char *text, size_t len, unsigned mask,
                           char **out, size_t *out_len, unsigned counts[PII_KIND_COUNT]);
/* The value behind placeholder p[0, plen) ("[EMAIL_1]"), or NULL when the vault does not know
 * it. The pointer stays valid until the vault is freed; *value_len gets its length. */
const char *pii_vault_lookup(const struct pii_vault *v, const char *p, size_t plen,
                             size_t *value_len);

/* Streaming restoration of an answer: placeholders the vault knows are replaced by their
 * values, everything else (unknown placeholders included) passes through unchanged, across
 * any split of the answer into chunks. Holds back at most PII_PLACEHOLDER_MAX bytes. */
struct pii_restorer;

/* A restorer reading vault v, which must outlive it; NULL when out of memory or v is NULL. */
struct pii_restorer *pii_restore_new(const struct pii_vault *v);
/* Frees the restorer; accepts NULL. */
void pii_restore_free(struct pii_restorer *r);
/* Feeds chunk[0, len) and sets *out / *out_len to the text that is now final (possibly empty;
 * it may end short of the chunk while a possible placeholder is held back). *out points into
 * the restorer's buffer and stays valid until the next feed, flush or free. Returns 0,
 * PII_E_ARG, PII_E_NOMEM or PII_E_TOO_BIG. */
int pii_restore_feed(struct pii_restorer *r, const char *chunk, size_t len, const char **out,
                     size_t *out_len);
/* Ends the answer: sets *out / *out_len to whatever was held back (unchanged, since it never
 * completed a known placeholder) and resets the restorer for a new answer. Same ownership as
 * pii_restore_feed. */
int pii_restore_flush(struct pii_restorer *r, const char **out, size_t *out_len);

/* Internal, shared by the pii_*.c files. */
typedef int (*pii__emit_fn)(void *ctx, const struct pii_match *m);
/* Runs every detector in mask over text and calls emit for each final match, in order of
 * start, non-overlapping; stops and returns emit's value when it is negative. */
int pii__scan_run(const char *text, size_t len, unsigned mask, pii__emit_fn emit, void *ctx);
/* Length of a person name starting at text[i] (0 when none); *start may move past an
 * honorific. Needs i at a word start. */
size_t pii__person_at(const char *text, size_t len, size_t i, size_t *start);
/* Whether word[0, n) is in the embedded list of given names (exact case). */
bool pii__is_given_name(const char *word, size_t n);
/* The sorted embedded list of given names, for tests. */
extern const char *const pii__given_names[];
extern const size_t pii__given_names_count;

#endif
