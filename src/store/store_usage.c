/* SQLite backend: the usage ledger, month-to-date spend, summaries and budget reservations. */
#include <string.h>

#include "store/store_impl.h"

/* Budget comparisons tolerate this much floating-point rounding (a millionth of a cent). */
#define BUDGET_EPS 1e-8
/* Closed and dead reservations are deleted after a day (settling later gives NOT_FOUND). */
#define RESERVATION_KEEP_MS (24LL * 3600 * 1000)

enum { RES_OPEN = 0, RES_SETTLED = 1, RES_RELEASED = 2 };

static int spend_add(struct sq_store *q, const char *scope, const char *name, int64_t month,
                     double cost)
{
    if (!name || !*name || cost == 0)
        return 0;
    sqlite3_stmt *st = sq__stmt(q, SQ_SPEND_ADD,
                                "INSERT INTO spend_monthly(scope, name, month, cost_usd) "
                                "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(scope, name, month) "
                                "DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd");
    if (!st)
        return STORE_E_IO;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sq__bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, month);
    sqlite3_bind_double(st, 4, cost);
    return sq__exec(st);
}

/* Runs a single-value query (bindings set) and stores the double result. */
static int one_double(sqlite3_stmt *st, double *v)
{
    int rc = sqlite3_step(st);
    int e = 0;
    if (rc == SQLITE_ROW)
        *v += sqlite3_column_double(st, 0);
    else if (rc != SQLITE_DONE)
        e = sq__err(rc) ? sq__err(rc) : STORE_E_IO;
    sqlite3_reset(st);
    return e;
}

/* Month-to-date spend of one key or team: the rollup plus live reservations. */
static int spent(struct sq_store *q, bool team, const char *name, int64_t now_ms, double *out)
{
    *out = 0;
    sqlite3_stmt *st = sq__stmt(q, SQ_SPEND_GET,
                                "SELECT cost_usd FROM spend_monthly "
                                "WHERE scope = ?1 AND name = ?2 AND month = ?3");
    if (!st)
        return STORE_E_IO;
    sqlite3_bind_text(st, 1, team ? "team" : "key", -1, SQLITE_STATIC);
    sq__bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, sq__month(now_ms));
    int e = one_double(st, out);
    if (e)
        return e;
    st = team ? sq__stmt(q, SQ_RES_SUM_TEAM,
                         "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations "
                         "WHERE team = ?1 AND settled = 0 AND created_ms >= ?2")
              : sq__stmt(q, SQ_RES_SUM_KEY,
                         "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations "
                         "WHERE key_id = ?1 AND settled = 0 AND created_ms >= ?2");
    if (!st)
        return STORE_E_IO;
    sq__bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now_ms - STORE_RESERVATION_TTL_MS);
    return one_double(st, out);
}

/* Inserts the row and adds its cost to the monthly rollups; caller holds mu and a
 * transaction. key_id/team fall back to the given defaults when the row leaves them NULL. */
static int insert_row(struct sq_store *q, const struct store_usage *u, const char *key_id,
                      const char *team, int64_t *id)
{
    if (u->key_id)
        key_id = u->key_id;
    if (u->team)
        team = u->team;
    sqlite3_stmt *st = sq__stmt(
        q, SQ_USAGE_INSERT,
        "INSERT INTO usage(ts_ms, request_id, key_id, team, model, target, target_kind, "
        "prompt_tokens, completion_tokens, latency_ms, ttft_ms, cost_usd, local_cost_usd, "
        "cloud_equiv_usd, privacy_action, pii_count, outcome) VALUES(?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
    if (!st)
        return STORE_E_IO;
    sqlite3_bind_int64(st, 1, u->ts_ms);
    sq__bind_text(st, 2, u->request_id);
    sq__bind_text(st, 3, key_id);
    sq__bind_text(st, 4, team);
    sq__bind_text(st, 5, u->model);
    sq__bind_text(st, 6, u->target);
    sq__bind_text(st, 7, u->target_kind);
    sqlite3_bind_int64(st, 8, u->prompt_tokens);
    sqlite3_bind_int64(st, 9, u->completion_tokens);
    sqlite3_bind_int64(st, 10, u->latency_ms);
    sqlite3_bind_int64(st, 11, u->ttft_ms);
    sqlite3_bind_double(st, 12, u->cost_usd);
    sqlite3_bind_double(st, 13, u->local_cost_usd);
    sqlite3_bind_double(st, 14, u->cloud_equiv_usd);
    sq__bind_text(st, 15, u->privacy_action);
    sqlite3_bind_int64(st, 16, u->pii_count);
    sq__bind_text(st, 17, u->outcome);
    int e = sq__exec(st);
    if (e)
        return e;
    *id = sqlite3_last_insert_rowid(q->db);
    int64_t month = sq__month(u->ts_ms);
    if ((e = spend_add(q, "key", key_id, month, u->cost_usd)))
        return e;
    return spend_add(q, "team", team, month, u->cost_usd);
}

int sq__usage_insert(struct store *s, const struct store_usage *u, int64_t *id)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = sq__begin(q);
    if (!e) {
        if ((e = insert_row(q, u, "", "", id)))
            sq__rollback(q);
        else
            e = sq__commit(q);
    }
    pthread_mutex_unlock(&q->mu);
    return e;
}

/* Totals per group; 'saved' only counts rows served locally. */
#define SUMMARY_COLUMNS                                                                            \
    "COUNT(*), SUM(u.prompt_tokens), SUM(u.completion_tokens), SUM(u.cost_usd), "                  \
    "SUM(u.local_cost_usd), "                                                                      \
    "SUM(CASE WHEN u.target_kind = 'local' THEN u.cloud_equiv_usd - u.local_cost_usd "             \
    "ELSE 0 END) "
static const char *const summary_sql[STORE_GROUP_COUNT] = {
    [STORE_GROUP_KEY] = "SELECT u.key_id, COALESCE(k.name, u.key_id), " SUMMARY_COLUMNS
                        "FROM usage u LEFT JOIN api_keys k ON k.id = u.key_id "
                        "WHERE u.ts_ms >= ?1 GROUP BY u.key_id ORDER BY 6 DESC, 1",
    [STORE_GROUP_TEAM] = "SELECT u.team, u.team, " SUMMARY_COLUMNS
                         "FROM usage u WHERE u.ts_ms >= ?1 GROUP BY u.team ORDER BY 6 DESC, 1",
    [STORE_GROUP_MODEL] = "SELECT u.model, u.model, " SUMMARY_COLUMNS
                          "FROM usage u WHERE u.ts_ms >= ?1 GROUP BY u.model ORDER BY 6 DESC, 1",
    [STORE_GROUP_TARGET] = "SELECT u.target, u.target, " SUMMARY_COLUMNS
                           "FROM usage u WHERE u.ts_ms >= ?1 GROUP BY u.target "
                           "ORDER BY 6 DESC, 1",
#undef SUMMARY_COLUMNS
};

int sq__usage_summary(struct store *s, int64_t since_ms, enum store_group by, store_usage_cb cb,
                      void *ud)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, summary_sql[by], -1, &st, NULL);
    int e = sq__err(rc);
    if (rc != SQLITE_OK) {
        e = e ? e : STORE_E_IO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, since_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *g = sqlite3_column_text(st, 0);
        const unsigned char *l = sqlite3_column_text(st, 1);
        struct store_usage_group row = {
            .group = g ? (const char *)g : "",
            .label = l ? (const char *)l : "",
            .requests = sqlite3_column_int64(st, 2),
            .prompt_tokens = sqlite3_column_int64(st, 3),
            .completion_tokens = sqlite3_column_int64(st, 4),
            .cost_usd = sqlite3_column_double(st, 5),
            .local_cost_usd = sqlite3_column_double(st, 6),
            .saved_usd = sqlite3_column_double(st, 7),
        };
        if ((e = cb(ud, &row)))
            break;
    }
    if (!e && rc != SQLITE_DONE)
        e = sq__err(rc) ? sq__err(rc) : STORE_E_IO;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__budget_reserve(struct store *s, const char *key_id, const char *team, double max_cost,
                       double key_budget, double team_budget, int64_t now_ms, int64_t *id)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    double used;
    sqlite3_stmt *st;
    int e = sq__begin(q);
    if (e)
        goto out;
    st = sq__stmt(q, SQ_RES_EXPIRE, "DELETE FROM budget_reservations WHERE created_ms < ?1");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, now_ms - RESERVATION_KEEP_MS);
    if ((e = sq__exec(st)))
        goto fail;
    if (key_budget > 0) {
        if ((e = spent(q, false, key_id, now_ms, &used)))
            goto fail;
        if (used + max_cost > key_budget + BUDGET_EPS) {
            e = STORE_E_BUDGET;
            goto fail;
        }
    }
    if (*team && team_budget > 0) {
        if ((e = spent(q, true, team, now_ms, &used)))
            goto fail;
        if (used + max_cost > team_budget + BUDGET_EPS) {
            e = STORE_E_BUDGET;
            goto fail;
        }
    }
    st = sq__stmt(q, SQ_RES_INSERT,
                  "INSERT INTO budget_reservations(key_id, team, amount_usd, created_ms, settled) "
                  "VALUES(?1, ?2, ?3, ?4, 0)");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sq__bind_text(st, 1, key_id);
    sq__bind_text(st, 2, team);
    sqlite3_bind_double(st, 3, max_cost);
    sqlite3_bind_int64(st, 4, now_ms);
    if ((e = sq__exec(st)))
        goto fail;
    *id = sqlite3_last_insert_rowid(q->db);
    e = sq__commit(q);
    goto out;
fail:
    sq__rollback(q);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__budget_settle(struct store *s, int64_t id, const struct store_usage *u, int64_t *usage_id)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    char key_id[STORE__TEXT_MAX + 1], team[STORE__TEXT_MAX + 1];
    int e = sq__begin(q);
    if (e)
        goto out;
    sqlite3_stmt *st = sq__stmt(
        q, SQ_RES_GET, "SELECT key_id, team, settled FROM budget_reservations WHERE id = ?1");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (!(e = sq__column_text(st, 0, key_id, sizeof(key_id))) &&
            !(e = sq__column_text(st, 1, team, sizeof(team))) &&
            sqlite3_column_int64(st, 2) != RES_OPEN)
            e = STORE_E_SETTLED;
    } else {
        e = rc == SQLITE_DONE ? STORE_E_NOT_FOUND : sq__err(rc) ? sq__err(rc) : STORE_E_IO;
    }
    sqlite3_reset(st);
    if (e)
        goto fail;
    st = sq__stmt(q, SQ_RES_CLOSE, "UPDATE budget_reservations SET settled = ?2 WHERE id = ?1");
    if (!st) {
        e = STORE_E_IO;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, u ? RES_SETTLED : RES_RELEASED);
    if ((e = sq__exec(st)))
        goto fail;
    if (u && (e = insert_row(q, u, key_id, team, usage_id)))
        goto fail;
    e = sq__commit(q);
    goto out;
fail:
    sq__rollback(q);
out:
    pthread_mutex_unlock(&q->mu);
    return e;
}

int sq__budget_spent(struct store *s, const char *key_id, const char *team, int64_t now_ms,
                     double *key_spent, double *team_spent)
{
    struct sq_store *q = (struct sq_store *)s;
    pthread_mutex_lock(&q->mu);
    int e = 0;
    *key_spent = *team_spent = 0;
    if (*key_id)
        e = spent(q, false, key_id, now_ms, key_spent);
    if (!e && *team)
        e = spent(q, true, team, now_ms, team_spent);
    pthread_mutex_unlock(&q->mu);
    return e;
}
