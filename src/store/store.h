/* Gateway state (API keys, usage, budget reservations, audit log) behind a backend-neutral
 * interface; SQLite is the first backend, PostgreSQL can follow (see docs/store.md). */
#ifndef TANDEM_STORE_STORE_H
#define TANDEM_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque handle. Every function below is thread-safe: one handle may be shared by all the
 * threads of a process (the SQLite backend serialises them on one connection with a mutex),
 * and several processes may open the same database. */
struct store;

enum store_error {
    STORE_OK = 0,
    STORE_E_ARG = -1, /* NULL pointer, bad value, or a text field over its size cap */
    STORE_E_NOMEM = -2,
    STORE_E_IO = -3,      /* the backend failed (disk full, I/O error, SQL error) */
    STORE_E_BUSY = -4,    /* another process held the database longer than the timeout */
    STORE_E_CORRUPT = -5, /* not a tandem database, or a row that breaks the schema */
    STORE_E_TOO_NEW = -6, /* the database schema is newer than this binary knows */
    STORE_E_URL = -7,     /* unknown scheme in the store URL */
    STORE_E_NOT_FOUND = -8,
    STORE_E_EXISTS = -9,   /* a unique value (key id, key hash, audit tree size) is taken */
    STORE_E_BUDGET = -10,  /* the reservation would take the key or team over its budget */
    STORE_E_SETTLED = -11, /* the reservation was already settled or released */
    STORE_E_REVOKED = -12, /* the key is already revoked */
};

/* Static text for an error code. */
const char *store_strerror(int err);

/* The schema version this binary writes (the number of migration steps it knows). */
int store_schema_version(void);

/* Opens (creating when missing) the store named by url: "sqlite:/path/to/db", "sqlite:path"
 * or a bare path. The SQLite file is created with mode 0600; its directory must exist.
 * Pending schema migrations are applied, each step in its own transaction. On success *out
 * owns the handle (free it with store_close); on failure *out is NULL, the error is returned
 * and a message is written to err (errlen bytes, may be NULL/0). */
int store_open(struct store **out, const char *url, char *err, size_t errlen);
/* Closes the store; s may be NULL. No other thread may be using s. */
void store_close(struct store *s);

/* The default database path, "$TANDEM_HOME/tandem.db" ($TANDEM_HOME defaults to
 * $HOME/.cache/tandem), written to buf. With create_dir, the directory is created (mode 0700)
 * when missing. Returns 0, STORE_E_ARG (no HOME, or buf too small) or STORE_E_IO. */
int store_default_path(char *buf, size_t cap, bool create_dir);

/* For command-line tools: opens url, or the default path when url is NULL. With create, a
 * missing database (and default directory) is created; without, a missing SQLite file gives
 * STORE_E_NOT_FOUND instead of an empty new database. err as in store_open. */
int store_open_path(struct store **out, const char *url, bool create, char *err, size_t errlen);

/* ---- API keys ------------------------------------------------------------------------- */

#define STORE_HASH_LEN 32 /* SHA-256 */
#define STORE_ID_MAX 64   /* buffer sizes, NUL included */
#define STORE_NAME_MAX 128
#define STORE_MODELS_MAX 1024
#define STORE_PREFIX_MAX 16

/* One API key. Only the SHA-256 of the secret is stored; prefix is its first few characters
 * (shown in lists so that people can tell keys apart). */
struct store_key {
    char id[STORE_ID_MAX]; /* "key_" + 16 hex digits */
    char name[STORE_NAME_MAX];
    char team[STORE_NAME_MAX];     /* "" = no team */
    char models[STORE_MODELS_MAX]; /* comma-separated allow-list; "" = every model */
    double budget_usd_month;       /* 0 = no budget */
    int64_t rpm;                   /* requests per minute; 0 = unlimited */
    int64_t tpm;                   /* tokens per minute; 0 = unlimited */
    bool admin;
    uint8_t key_hash[STORE_HASH_LEN];
    char prefix[STORE_PREFIX_MAX];
    int64_t created_ms; /* Unix time in milliseconds */
    int64_t revoked_ms; /* 0 = active */
};

/* Inserts a key (every text field NUL-terminated within its buffer, budget finite and >= 0,
 * rpm/tpm >= 0). STORE_E_EXISTS when the id or the hash is taken. */
int store_key_insert(struct store *s, const struct store_key *k);
/* The key whose secret hashes to hash (revoked or not; the caller checks revoked_ms), copied to
 * *out. One indexed lookup. STORE_E_NOT_FOUND when there is none. */
int store_key_get_by_hash(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                          struct store_key *out);
/* The key with this id, copied to *out, or STORE_E_NOT_FOUND. */
int store_key_get(struct store *s, const char *id, struct store_key *out);
/* Calls cb for every key, oldest first; cb returns 0 to go on, anything else stops the listing
 * and is returned. cb runs with the store locked and must not call store functions; k is valid
 * only during the call. */
typedef int (*store_key_cb)(void *ud, const struct store_key *k);
int store_key_list(struct store *s, store_key_cb cb, void *ud);
/* Marks the key revoked at now_ms; takes effect for the next lookup (nothing is cached).
 * STORE_E_NOT_FOUND, or STORE_E_REVOKED when it already was. */
int store_key_revoke(struct store *s, const char *id, int64_t now_ms);
/* Keys not revoked (>= 0), or a negative error. The server runs open only while this is 0. */
int64_t store_key_active_count(struct store *s);

/* ---- Usage ---------------------------------------------------------------------------- */

/* One finished (or blocked, or cancelled) request. Strings may be NULL (stored as ""); each is
 * at most 1023 bytes. target_kind is "local", "cloud" or ""/NULL (nothing was called);
 * outcome is "ok", "blocked", "cancelled" or "error:<status>". Counts and costs >= 0. */
struct store_usage {
    int64_t ts_ms;
    const char *request_id;
    const char *key_id;
    const char *team;
    const char *model;  /* the public model name the client asked for */
    const char *target; /* what served it ("local:qwen2-1.5b", "openai:gpt-4o-mini", ...) */
    const char *target_kind;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t latency_ms;
    int64_t ttft_ms;
    double cost_usd;        /* what is charged against budgets */
    double local_cost_usd;  /* estimated cost of running it locally (energy, hardware) */
    double cloud_equiv_usd; /* the same tokens at the reference cloud price */
    const char *privacy_action;
    int64_t pii_count;
    const char *outcome;
};

/* Appends a usage row (counted in month-to-date spend at once). *id (may be NULL) gets its
 * row id. Use store_budget_settle instead when the request holds a reservation. */
int store_usage_insert(struct store *s, const struct store_usage *u, int64_t *id);

enum store_group {
    STORE_GROUP_KEY = 0,
    STORE_GROUP_TEAM,
    STORE_GROUP_MODEL,
    STORE_GROUP_TARGET,
    STORE_GROUP_COUNT
};
/* "key", "team", "model", "target"; NULL when out of range. */
const char *store_group_name(enum store_group g);

/* Totals for one group of usage rows. */
struct store_usage_group {
    const char *group; /* key id, team, model or target ("" for rows without one) */
    const char *label; /* the key's name when grouped by key, else the same as group */
    int64_t requests;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    double cost_usd;
    double local_cost_usd;
    double saved_usd; /* cloud_equiv_usd - local_cost_usd over rows served locally */
};
/* Calls cb once per group of the rows with ts_ms >= since_ms, most expensive first (then by
 * name). cb's return value works as in store_key_list; g and its strings are valid only during
 * the call, which runs with the store locked. */
typedef int (*store_usage_cb)(void *ud, const struct store_usage_group *g);
int store_usage_summary(struct store *s, int64_t since_ms, enum store_group by, store_usage_cb cb,
                        void *ud);

/* ---- Budgets -------------------------------------------------------------------------- */

/* Reservations older than this no longer count against budgets (the request is presumed
 * dead); settling one late still records its usage. */
#define STORE_RESERVATION_TTL_MS (10 * 60 * 1000)

/* In one exclusive transaction: month-to-date spend (usage cost_usd of the calendar month of
 * now_ms, UTC) plus open reservations younger than STORE_RESERVATION_TTL_MS, plus max_cost_usd,
 * must stay <= key_budget for key_id and <= team_budget for team (a budget of 0 = none; team
 * NULL or "" = no team). Then inserts the reservation and sets *reservation_id. Returns 0 or
 * STORE_E_BUDGET (nothing reserved). */
int store_budget_reserve(struct store *s, const char *key_id, const char *team, double max_cost_usd,
                         double key_budget, double team_budget, int64_t now_ms,
                         int64_t *reservation_id);
/* In one transaction: closes the reservation and inserts its usage row (key_id/team taken from
 * the reservation when u leaves them NULL). *usage_id may be NULL. A reservation is settled at
 * most once: STORE_E_SETTLED the second time (and nothing is inserted), STORE_E_NOT_FOUND for
 * an unknown id. */
int store_budget_settle(struct store *s, int64_t reservation_id, const struct store_usage *u,
                        int64_t *usage_id);
/* Closes a reservation without usage (the request never reached a model and is not
 * recorded). Same errors as settle. */
int store_budget_release(struct store *s, int64_t reservation_id);
/* Month-to-date spend of the key and of the team (settled usage + live reservations) at
 * now_ms; either output may be NULL, team may be NULL. */
int store_budget_spent(struct store *s, const char *key_id, const char *team, int64_t now_ms,
                       double *key_spent, double *team_spent);

/* ---- Audit log storage (the Merkle logic lives in src/trust) ----------------------------- */

#define STORE_AUDIT_RECORD_MAX (1u << 20) /* bytes per record */
#define STORE_AUDIT_SIG_MAX 1024          /* bytes per signature */

/* Appends one record (len bytes, 1..STORE_AUDIT_RECORD_MAX, copied) with its RFC 6962 leaf
 * hash. The index is assigned in the same transaction: 0 for the first record, then
 * consecutive with no gaps. Returns the new index (>= 0) or a negative error. */
int64_t store_audit_append(struct store *s, int64_t ts_ms, const void *record, size_t len,
                           const uint8_t leaf_hash[STORE_HASH_LEN]);
/* Record idx: *ts_ms and leaf_hash (each may be NULL) are filled; when record is not NULL,
 * *record gets a malloc'd copy the caller frees and *len its length. STORE_E_NOT_FOUND when
 * idx >= count. */
int store_audit_get(struct store *s, int64_t idx, int64_t *ts_ms, void **record, size_t *len,
                    uint8_t leaf_hash[STORE_HASH_LEN]);
/* Leaf hashes of records [first, first + n) into out (n * STORE_HASH_LEN bytes). Returns how
 * many were written (fewer when the log ends first) or a negative error. */
int64_t store_audit_leaf_hashes(struct store *s, int64_t first, int64_t n,
                                uint8_t (*out)[STORE_HASH_LEN]);
/* Number of records (the next index). Negative on error. */
int64_t store_audit_count(struct store *s);

/* A signed tree head. */
struct store_audit_head {
    int64_t tree_size;
    uint8_t root_hash[STORE_HASH_LEN];
    int64_t ts_ms;
    uint8_t signature[STORE_AUDIT_SIG_MAX];
    size_t sig_len; /* 0 = unsigned */
};
/* Stores a tree head (h->sig_len <= STORE_AUDIT_SIG_MAX). STORE_E_EXISTS when a head for
 * this tree size is stored already. */
int store_audit_head_put(struct store *s, const struct store_audit_head *h);
/* The head with the largest tree size, or STORE_E_NOT_FOUND when none is stored. */
int store_audit_head_get_latest(struct store *s, struct store_audit_head *out);
/* The head for tree_size, or STORE_E_NOT_FOUND. */
int store_audit_head_get(struct store *s, int64_t tree_size, struct store_audit_head *out);
/* The head with the smallest tree size >= min_size (for walking all heads in order), or
 * STORE_E_NOT_FOUND. */
int store_audit_head_get_next(struct store *s, int64_t min_size, struct store_audit_head *out);

#endif
