/* SQLite backend: API keys and the audit log's storage (leaves and signed tree heads). */
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

#define KEY_COLUMNS                                                                                \
    "id, name, team, models, budget_usd_month, rpm, tpm, admin, key_hash, prefix, "                \
    "created_ms, revoked_ms"

/* Copies a key row; with miss set, the row is the all-NULL one of a lookup that found
 * nothing (copied the same way, hash left zero). */
static int read_key(sqlite3_stmt *st, struct store_key *k, bool miss)
{
    memset(k, 0, sizeof(*k));
    int e;
    if ((e = sq__column_text(st, 0, k->id, sizeof(k->id))) ||
        (e = sq__column_text(st, 1, k->name, sizeof(k->name))) ||
        (e = sq__column_text(st, 2, k->team, sizeof(k->team))) ||
        (e = sq__column_text(st, 3, k->models, sizeof(k->models))) ||
        (e = sq__column_text(st, 9, k->prefix, sizeof(k->prefix))))
        return e;
    k->budget_usd_month = sqlite3_column_double(st, 4);
    k->rpm = sqlite3_column_int64(st, 5);
    k->tpm = sqlite3_column_int64(st, 6);
    k->admin = sqlite3_column_int64(st, 7) != 0;
    const void *h = sqlite3_column_blob(st, 8);
    if (!miss && (!h || sqlite3_column_bytes(st, 8) != STORE_HASH_LEN))
        return STORE_E_CORRUPT;
    if (!miss)
        memcpy(k->key_hash, h, STORE_HASH_LEN);
    k->created_ms = sqlite3_column_int64(st, 10);
    k->revoked_ms = sqlite3_column_int64(st, 11);
    return 0;
}

int sq__key_insert(struct store *s, const struct store_key *k)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    sqlite3_stmt *st = sq__stmt(q, SQ_KEY_INSERT,
                                "INSERT INTO api_keys(" KEY_COLUMNS
                                ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (st) {
        sq__bind_text(st, 1, k->id);
        sq__bind_text(st, 2, k->name);
        sq__bind_text(st, 3, k->team);
        sq__bind_text(st, 4, k->models);
        sqlite3_bind_double(st, 5, k->budget_usd_month);
        sqlite3_bind_int64(st, 6, k->rpm);
        sqlite3_bind_int64(st, 7, k->tpm);
        sqlite3_bind_int(st, 8, k->admin ? 1 : 0);
        sqlite3_bind_blob(st, 9, k->key_hash, STORE_HASH_LEN, SQLITE_STATIC);
        sq__bind_text(st, 10, k->prefix);
        sqlite3_bind_int64(st, 11, k->created_ms);
        sqlite3_bind_int64(st, 12, k->revoked_ms);
        e = sq__exec(st);
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

/* Runs a key query with one bound parameter already set and reads at most one row. */
static int key_one(sqlite3_stmt *st, struct store_key *out)
{
    int rc = sqlite3_step(st);
    int e = rc == SQLITE_ROW    ? read_key(st, out, false)
            : rc == SQLITE_DONE ? STORE_E_NOT_FOUND
                                : sq__err(rc);
    sqlite3_reset(st);
    return e;
}

int sq__key_get_by_hash(struct store *s, const uint8_t *hash, struct store_key *out)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    /* Always exactly one row (NULLs on a miss), so that a hit and a miss run the same steps
     * and copies: API key verification should take the same time either way. */
    sqlite3_stmt *st = sq__stmt(q, SQ_KEY_BY_HASH,
                                "SELECT k.id, k.name, k.team, k.models, k.budget_usd_month, "
                                "k.rpm, k.tpm, k.admin, k.key_hash, k.prefix, k.created_ms, "
                                "k.revoked_ms FROM (SELECT ?1 AS h) AS p "
                                "LEFT JOIN api_keys AS k ON k.key_hash = p.h");
    if (st) {
        sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            bool found = sqlite3_column_type(st, 0) != SQLITE_NULL;
            e = read_key(st, out, !found);
            if (!e && !found)
                e = STORE_E_NOT_FOUND;
        } else {
            e = sq__err(rc) ? sq__err(rc) : STORE_E_IO;
        }
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__key_get(struct store *s, const char *id, struct store_key *out)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_KEY_BY_ID, "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?1");
    if (st) {
        sq__bind_text(st, 1, id);
        e = key_one(st, out);
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__key_list(struct store *s, store_key_cb cb, void *ud)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO, rc;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_KEY_LIST, "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_ms, id");
    if (!st)
        goto out;
    e = 0;
    struct store_key k;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((e = read_key(st, &k, false)) || (e = cb(ud, &k)))
            break;
    }
    if (!e && rc != SQLITE_DONE)
        e = sq__err(rc);
    sqlite3_reset(st);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__key_revoke(struct store *s, const char *id, int64_t now_ms)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = sq__begin(q);
    if (e)
        goto out;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_KEY_REVOKE_GET, "SELECT revoked_ms FROM api_keys WHERE id = ?1");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sq__bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    int64_t revoked = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    e = rc == SQLITE_ROW    ? (revoked ? STORE_E_REVOKED : 0)
        : rc == SQLITE_DONE ? STORE_E_NOT_FOUND
                            : sq__err(rc);
    if (e)
        goto fail;
    st = sq__stmt(q, SQ_KEY_REVOKE, "UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sq__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    if ((e = sq__exec(st)))
        goto fail;
    e = sq__commit(q);
    goto out;
fail:
    sq__rollback(q);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

/* ---- audit log ---- */

static int64_t audit_next(struct sq_store *q)
{
    sqlite3_stmt *st =
        sq__stmt(q, SQ_AUDIT_NEXT, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log");
    if (!st)
        return STORE_E_IO;
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : STORE_E_IO;
    if (rc != SQLITE_ROW && sq__err(rc))
        n = sq__err(rc);
    sqlite3_reset(st);
    return n;
}

int64_t sq__audit_append(struct store *s, int64_t ts_ms, const void *record, size_t len,
                         const uint8_t *leaf_hash)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int64_t idx = sq__begin(q);
    if (idx)
        goto out;
    if ((idx = audit_next(q)) < 0)
        goto fail;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_AUDIT_INSERT,
                 "INSERT INTO audit_log(idx, ts_ms, record, leaf_hash) VALUES(?1, ?2, ?3, ?4)");
    if (!st) {
        idx = STORE_E_IO;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, idx);
    sqlite3_bind_int64(st, 2, ts_ms);
    sqlite3_bind_blob(st, 3, record, (int)len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, leaf_hash, STORE_HASH_LEN, SQLITE_STATIC);
    int e = sq__exec(st);
    if (e) {
        idx = e;
        goto fail;
    }
    if ((e = sq__commit(q))) /* commit failure rolls back */
        idx = e;
    goto out;
fail:
    sq__rollback(q);
out:
    pthread_mutex_unlock(&q->mu);
    return idx;
}

int sq__audit_get(struct store *s, int64_t idx, int64_t *ts_ms, void **record, size_t *len,
                  uint8_t *leaf_hash)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_AUDIT_GET, "SELECT ts_ms, record, leaf_hash FROM audit_log WHERE idx = ?1");
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, idx);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        e = rc == SQLITE_DONE ? STORE_E_NOT_FOUND : sq__err(rc);
        goto reset;
    }
    const void *h = sqlite3_column_blob(st, 2);
    if (!h || sqlite3_column_bytes(st, 2) != STORE_HASH_LEN) {
        e = STORE_E_CORRUPT;
        goto reset;
    }
    if (record) {
        const void *r = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        if (n <= 0 || (size_t)n > STORE_AUDIT_RECORD_MAX || !r) {
            e = STORE_E_CORRUPT;
            goto reset;
        }
        void *copy = malloc((size_t)n);
        if (!copy) {
            e = STORE_E_NOMEM;
            goto reset;
        }
        memcpy(copy, r, (size_t)n);
        *record = copy;
        *len = (size_t)n;
    }
    if (ts_ms)
        *ts_ms = sqlite3_column_int64(st, 0);
    if (leaf_hash)
        memcpy(leaf_hash, h, STORE_HASH_LEN);
    e = 0;
reset:
    sqlite3_reset(st);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

int64_t sq__audit_leaf_hashes(struct store *s, int64_t first, int64_t n,
                              uint8_t (*out)[STORE_HASH_LEN])
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int64_t got = STORE_E_IO;
    sqlite3_stmt *st = sq__stmt(q, SQ_AUDIT_LEAVES,
                                "SELECT idx, leaf_hash FROM audit_log WHERE idx >= ?1 ORDER BY "
                                "idx LIMIT ?2");
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, n);
    int rc;
    got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 1);
        /* Indices are dense: a gap means rows were removed behind our back. */
        if (sqlite3_column_int64(st, 0) != first + got || !h ||
            sqlite3_column_bytes(st, 1) != STORE_HASH_LEN) {
            got = STORE_E_CORRUPT;
            break;
        }
        memcpy(out[got], h, STORE_HASH_LEN);
        got++;
    }
    if (got >= 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        got = sq__err(rc);
    sqlite3_reset(st);
out:
    pthread_mutex_unlock(&q->mu);
    return got;
}

int64_t sq__audit_count(struct store *s)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int64_t n = audit_next(q);
    pthread_mutex_unlock(&q->mu);
    return n;
}

int sq__audit_head_put(struct store *s, const struct store_audit_head *h)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    sqlite3_stmt *st = sq__stmt(q, SQ_HEAD_INSERT,
                                "INSERT INTO audit_heads(tree_size, root_hash, ts_ms, signature) "
                                "VALUES(?1, ?2, ?3, ?4)");
    if (st) {
        sqlite3_bind_int64(st, 1, h->tree_size);
        sqlite3_bind_blob(st, 2, h->root_hash, STORE_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, h->ts_ms);
        if (h->sig_len)
            sqlite3_bind_blob(st, 4, h->signature, (int)h->sig_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        e = sq__exec(st);
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__audit_head_get(struct store *s, enum store_head_which which, int64_t tree_size,
                       struct store_audit_head *out)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = STORE_E_IO;
    sqlite3_stmt *st;
    if (which == STORE_HEAD_LATEST)
        st = sq__stmt(q, SQ_HEAD_LATEST,
                      "SELECT tree_size, root_hash, ts_ms, signature FROM audit_heads "
                      "ORDER BY tree_size DESC LIMIT 1");
    else if (which == STORE_HEAD_NEXT)
        st = sq__stmt(q, SQ_HEAD_NEXT,
                      "SELECT tree_size, root_hash, ts_ms, signature FROM audit_heads "
                      "WHERE tree_size >= ?1 ORDER BY tree_size LIMIT 1");
    else
        st = sq__stmt(q, SQ_HEAD_GET,
                      "SELECT tree_size, root_hash, ts_ms, signature FROM audit_heads "
                      "WHERE tree_size = ?1");
    if (!st)
        goto out;
    if (which != STORE_HEAD_LATEST)
        sqlite3_bind_int64(st, 1, tree_size);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        e = rc == SQLITE_DONE ? STORE_E_NOT_FOUND : sq__err(rc);
        goto reset;
    }
    const void *root = sqlite3_column_blob(st, 1);
    const void *sig = sqlite3_column_blob(st, 3);
    int sig_len = sqlite3_column_bytes(st, 3);
    if (!root || sqlite3_column_bytes(st, 1) != STORE_HASH_LEN || sig_len < 0 ||
        sig_len > STORE_AUDIT_SIG_MAX) {
        e = STORE_E_CORRUPT;
        goto reset;
    }
    memset(out, 0, sizeof(*out));
    out->tree_size = sqlite3_column_int64(st, 0);
    memcpy(out->root_hash, root, STORE_HASH_LEN);
    out->ts_ms = sqlite3_column_int64(st, 2);
    if (sig && sig_len)
        memcpy(out->signature, sig, (size_t)sig_len);
    out->sig_len = sig && sig_len ? (size_t)sig_len : 0;
    e = 0;
reset:
    sqlite3_reset(st);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

int64_t sq__key_active_count(struct store *s)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int64_t n = STORE_E_IO;
    sqlite3_stmt *st =
        sq__stmt(q, SQ_KEY_ACTIVE, "SELECT count(*) FROM api_keys WHERE revoked_ms = 0");
    if (st) {
        const int rc = sqlite3_step(st);
        n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : sq__err(rc);
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}
