/* Store internals: the backend interface (struct store_ops) and the SQLite backend's shared
 * helpers. Only src/store/ includes this. */
#ifndef TANDEM_STORE_IMPL_H
#define TANDEM_STORE_IMPL_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

/* Which tree head audit_head_get returns. */
enum store_head_which {
    STORE_HEAD_EXACT = 0, /* tree_size == the given size */
    STORE_HEAD_NEXT,      /* the smallest tree_size >= the given size */
    STORE_HEAD_LATEST,    /* the largest tree_size (the size is ignored) */
};

/* A backend. The front end (store_sqlite.c) validates arguments before calling a slot, so a
 * slot may assume non-NULL pointers and values within the documented ranges. Every slot is
 * required (a backend that cannot do something returns STORE_E_IO) and must be thread-safe. */
struct store_ops {
    const char *name;                                              /* required: "sqlite" */
    void (*close)(struct store *s);                                /* required */
    int (*key_insert)(struct store *s, const struct store_key *k); /* required */
    int (*key_get_by_hash)(struct store *s, const uint8_t *hash,
                           struct store_key *out);                          /* required */
    int (*key_get)(struct store *s, const char *id, struct store_key *out); /* required */
    int (*key_list)(struct store *s, store_key_cb cb, void *ud);            /* required */
    int (*key_revoke)(struct store *s, const char *id, int64_t now_ms);     /* required */
    int64_t (*key_active_count)(struct store *s);                          /* required */
    int (*usage_insert)(struct store *s, const struct store_usage *u,
                        int64_t *id); /* required; id not NULL */
    int (*usage_summary)(struct store *s, int64_t since_ms, enum store_group by, store_usage_cb cb,
                         void *ud); /* required */
    int (*budget_reserve)(struct store *s, const char *key_id, const char *team, double max_cost,
                          double key_budget, double team_budget, int64_t now_ms,
                          int64_t *id); /* required; team not NULL */
    int (*budget_settle)(struct store *s, int64_t id, const struct store_usage *u,
                         int64_t *usage_id); /* required; u NULL = release */
    int (*budget_spent)(struct store *s, const char *key_id, const char *team, int64_t now_ms,
                        double *key_spent, double *team_spent); /* required; none NULL */
    int64_t (*audit_append)(struct store *s, int64_t ts_ms, const void *record, size_t len,
                            const uint8_t *leaf_hash); /* required */
    int (*audit_get)(struct store *s, int64_t idx, int64_t *ts_ms, void **record, size_t *len,
                     uint8_t *leaf_hash); /* required; outputs may be NULL */
    int64_t (*audit_leaf_hashes)(struct store *s, int64_t first, int64_t n,
                                 uint8_t (*out)[STORE_HASH_LEN]);             /* required */
    int64_t (*audit_count)(struct store *s);                                  /* required */
    int (*audit_head_put)(struct store *s, const struct store_audit_head *h); /* required */
    int (*audit_head_get)(struct store *s, enum store_head_which which, int64_t tree_size,
                          struct store_audit_head *out); /* required */
};

/* Every backend's handle starts with this. */
struct store {
    const struct store_ops *ops;
};

/* Longest text accepted in a usage row field. */
#define STORE__TEXT_MAX 1023

/* ---- SQLite backend ---- */

/* Prepared statements, cached for the life of the connection (prepared on first use). */
enum sq_stmt {
    SQ_BEGIN = 0,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_KEY_INSERT,
    SQ_KEY_BY_HASH,
    SQ_KEY_BY_ID,
    SQ_KEY_LIST,
    SQ_KEY_REVOKE_GET,
    SQ_KEY_REVOKE,
    SQ_KEY_ACTIVE,
    SQ_USAGE_INSERT,
    SQ_SPEND_ADD,
    SQ_SPEND_GET,
    SQ_RES_SUM_KEY,
    SQ_RES_SUM_TEAM,
    SQ_RES_EXPIRE,
    SQ_RES_INSERT,
    SQ_RES_GET,
    SQ_RES_CLOSE,
    SQ_AUDIT_NEXT,
    SQ_AUDIT_INSERT,
    SQ_AUDIT_GET,
    SQ_AUDIT_LEAVES,
    SQ_HEAD_INSERT,
    SQ_HEAD_GET,
    SQ_HEAD_LATEST,
    SQ_HEAD_NEXT,
    SQ__COUNT
};

/* One connection guarded by a mutex: every operation locks mu for its whole duration, so a
 * transaction never interleaves with another thread's statements. */
struct sq_store {
    struct store base;
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmt[SQ__COUNT];
};

/* The cached statement id (prepared from sql on first use), reset and with bindings cleared;
 * NULL when preparing fails. Caller holds mu. */
sqlite3_stmt *sq__stmt(struct sq_store *q, enum sq_stmt id, const char *sql);
/* A store error for an SQLite result code. */
int sq__err(int rc);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on the cached statements; caller holds mu. */
int sq__begin(struct sq_store *q);
int sq__commit(struct sq_store *q);
void sq__rollback(struct sq_store *q);
/* Runs a statement that returns no rows to completion; returns 0 or a store error. */
int sq__exec(sqlite3_stmt *st);
/* Binds text (NULL as ""). Returns the SQLite result code. */
int sq__bind_text(sqlite3_stmt *st, int col, const char *s);
/* Copies column col as text into buf (cap bytes). STORE_E_CORRUPT when it does not fit. */
int sq__column_text(sqlite3_stmt *st, int col, char *buf, size_t cap);
/* Calendar month of a Unix-ms time in UTC as YYYYMM. */
int64_t sq__month(int64_t ms);

/* Slots implemented in store_keys.c (keys, audit) and store_usage.c (usage, budgets). */
int sq__key_insert(struct store *s, const struct store_key *k);
int sq__key_get_by_hash(struct store *s, const uint8_t *hash, struct store_key *out);
int sq__key_get(struct store *s, const char *id, struct store_key *out);
int sq__key_list(struct store *s, store_key_cb cb, void *ud);
int sq__key_revoke(struct store *s, const char *id, int64_t now_ms);
int64_t sq__key_active_count(struct store *s);
int sq__usage_insert(struct store *s, const struct store_usage *u, int64_t *id);
int sq__usage_summary(struct store *s, int64_t since_ms, enum store_group by, store_usage_cb cb,
                      void *ud);
int sq__budget_reserve(struct store *s, const char *key_id, const char *team, double max_cost,
                       double key_budget, double team_budget, int64_t now_ms, int64_t *id);
int sq__budget_settle(struct store *s, int64_t id, const struct store_usage *u, int64_t *usage_id);
int sq__budget_spent(struct store *s, const char *key_id, const char *team, int64_t now_ms,
                     double *key_spent, double *team_spent);
int64_t sq__audit_append(struct store *s, int64_t ts_ms, const void *record, size_t len,
                         const uint8_t *leaf_hash);
int sq__audit_get(struct store *s, int64_t idx, int64_t *ts_ms, void **record, size_t *len,
                  uint8_t *leaf_hash);
int64_t sq__audit_leaf_hashes(struct store *s, int64_t first, int64_t n,
                              uint8_t (*out)[STORE_HASH_LEN]);
int64_t sq__audit_count(struct store *s);
int sq__audit_head_put(struct store *s, const struct store_audit_head *h);
int sq__audit_head_get(struct store *s, enum store_head_which which, int64_t tree_size,
                       struct store_audit_head *out);

#endif
