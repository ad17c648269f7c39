/* The store front end (open by URL, argument checks, dispatch through store_ops) and the
 * SQLite backend's connection, pragmas, schema migrations and statement cache. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_impl.h"

/* 'tndm': marks a SQLite file as a tandem store. */
#define SQ_APPLICATION_ID 0x746e646d
#define SQ_BUSY_TIMEOUT_MS 5000

/* Schema migrations, applied in order; PRAGMA user_version is the number applied. Never edit
 * a released step: append a new one. */
static const char *const migrations[] = {
    /* 1: keys, usage ledger, budget reservations. */
    "CREATE TABLE api_keys("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " team TEXT NOT NULL DEFAULT '',"
    " models TEXT NOT NULL DEFAULT '',"
    " budget_usd_month REAL NOT NULL DEFAULT 0,"
    " rpm INTEGER NOT NULL DEFAULT 0,"
    " tpm INTEGER NOT NULL DEFAULT 0,"
    " admin INTEGER NOT NULL DEFAULT 0,"
    " key_hash BLOB NOT NULL UNIQUE CHECK(length(key_hash) = 32),"
    " prefix TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE usage("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " request_id TEXT NOT NULL DEFAULT '',"
    " key_id TEXT NOT NULL DEFAULT '',"
    " team TEXT NOT NULL DEFAULT '',"
    " model TEXT NOT NULL DEFAULT '',"
    " target TEXT NOT NULL DEFAULT '',"
    " target_kind TEXT NOT NULL DEFAULT '' CHECK(target_kind IN ('local', 'cloud', '')),"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0,"
    " latency_ms INTEGER NOT NULL DEFAULT 0,"
    " ttft_ms INTEGER NOT NULL DEFAULT 0,"
    " cost_usd REAL NOT NULL DEFAULT 0,"
    " local_cost_usd REAL NOT NULL DEFAULT 0,"
    " cloud_equiv_usd REAL NOT NULL DEFAULT 0,"
    " privacy_action TEXT NOT NULL DEFAULT '',"
    " pii_count INTEGER NOT NULL DEFAULT 0,"
    " outcome TEXT NOT NULL);"
    "CREATE INDEX usage_ts ON usage(ts_ms);"
    "CREATE TABLE budget_reservations("
    " id INTEGER PRIMARY KEY,"
    " key_id TEXT NOT NULL REFERENCES api_keys(id),"
    " team TEXT NOT NULL DEFAULT '',"
    " amount_usd REAL NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " settled INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX budget_reservations_key ON budget_reservations(key_id, settled, created_ms);"
    "CREATE INDEX budget_reservations_team ON budget_reservations(team, settled, created_ms);"
    "CREATE INDEX budget_reservations_created ON budget_reservations(created_ms);",

    /* 2: audit log storage (Merkle leaves and signed tree heads, see src/trust). */
    "CREATE TABLE audit_log("
    " idx INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " record BLOB NOT NULL,"
    " leaf_hash BLOB NOT NULL CHECK(length(leaf_hash) = 32));"
    "CREATE TABLE audit_heads("
    " tree_size INTEGER PRIMARY KEY,"
    " root_hash BLOB NOT NULL CHECK(length(root_hash) = 32),"
    " ts_ms INTEGER NOT NULL,"
    " signature BLOB);",

    /* 3: month-to-date spend per key and team, kept with each usage insert so that a budget
     * check reads two rows instead of summing the month's ledger; backfilled from usage. */
    "CREATE TABLE spend_monthly("
    " scope TEXT NOT NULL CHECK(scope IN ('key', 'team')),"
    " name TEXT NOT NULL,"
    " month INTEGER NOT NULL,"
    " cost_usd REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY(scope, name, month)) WITHOUT ROWID;"
    "INSERT INTO spend_monthly(scope, name, month, cost_usd)"
    " SELECT 'key', key_id, CAST(strftime('%Y%m', ts_ms / 1000, 'unixepoch') AS INTEGER),"
    " SUM(cost_usd) FROM usage WHERE key_id != '' GROUP BY 1, 2, 3;"
    "INSERT INTO spend_monthly(scope, name, month, cost_usd)"
    " SELECT 'team', team, CAST(strftime('%Y%m', ts_ms / 1000, 'unixepoch') AS INTEGER),"
    " SUM(cost_usd) FROM usage WHERE team != '' GROUP BY 1, 2, 3;",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const error_text[] = {
    [0] = "ok",
    [-STORE_E_ARG] = "invalid argument",
    [-STORE_E_NOMEM] = "out of memory",
    [-STORE_E_IO] = "database error",
    [-STORE_E_BUSY] = "database is busy (locked by another process)",
    [-STORE_E_CORRUPT] = "database is corrupt or not a tandem store",
    [-STORE_E_TOO_NEW] = "database schema is newer than this tandem",
    [-STORE_E_URL] = "unsupported store URL",
    [-STORE_E_NOT_FOUND] = "not found",
    [-STORE_E_EXISTS] = "already exists",
    [-STORE_E_BUDGET] = "budget exceeded",
    [-STORE_E_SETTLED] = "reservation already settled",
    [-STORE_E_REVOKED] = "key already revoked",
};

const char *store_strerror(int err)
{
    if (err > 0 || -err >= (int)(sizeof(error_text) / sizeof(error_text[0])) || !error_text[-err])
        return "unknown store error";
    return error_text[-err];
}

int store_schema_version(void)
{
    return N_MIGRATIONS;
}

static const char *const group_names[STORE_GROUP_COUNT] = {
    [STORE_GROUP_KEY] = "key",
    [STORE_GROUP_TEAM] = "team",
    [STORE_GROUP_MODEL] = "model",
    [STORE_GROUP_TARGET] = "target",
};

const char *store_group_name(enum store_group g)
{
    return (unsigned)g < STORE_GROUP_COUNT ? group_names[g] : NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- SQLite helpers ---- */

int sq__err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_NOMEM:
        return STORE_E_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_E_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return STORE_E_CORRUPT;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return STORE_E_NOT_FOUND;
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return STORE_E_EXISTS;
        return STORE_E_ARG;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return STORE_E_ARG;
    default:
        return STORE_E_IO;
    }
}

sqlite3_stmt *sq__stmt(struct sq_store *q, enum sq_stmt id, const char *sql)
{
    sqlite3_stmt *st = q->stmt[id];
    if (!st) {
        if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
            return NULL;
        q->stmt[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

int sq__exec(sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    /* With extended result codes on, step returns the precise constraint code. */
    int err = rc == SQLITE_DONE ? 0 : sq__err(rc);
    sqlite3_reset(st);
    return err;
}

int sq__begin(struct sq_store *q)
{
    sqlite3_stmt *st = sq__stmt(q, SQ_BEGIN, "BEGIN IMMEDIATE");
    return st ? sq__exec(st) : STORE_E_IO;
}

int sq__commit(struct sq_store *q)
{
    sqlite3_stmt *st = sq__stmt(q, SQ_COMMIT, "COMMIT");
    int err = st ? sq__exec(st) : STORE_E_IO;
    if (err)
        sq__rollback(q);
    return err;
}

void sq__rollback(struct sq_store *q)
{
    if (sqlite3_get_autocommit(q->db))
        return;
    sqlite3_stmt *st = sq__stmt(q, SQ_ROLLBACK, "ROLLBACK");
    if (!st || sq__exec(st))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

int sq__bind_text(sqlite3_stmt *st, int col, const char *s)
{
    return sqlite3_bind_text(st, col, s ? s : "", -1, SQLITE_STATIC);
}

int sq__column_text(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n >= cap)
        return STORE_E_CORRUPT;
    if (n)
        memcpy(buf, t, (size_t)n);
    buf[n] = 0;
    return 0;
}

int64_t sq__month(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    return (int64_t)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* ---- open, pragmas, migrations ---- */

static int pragma_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq__err(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? STORE_E_IO : sq__err(rc);
}

/* Brings the schema up to N_MIGRATIONS, one transaction per step. The version is read again
 * inside each write transaction, so two processes opening a fresh file do not both migrate. */
static int migrate(struct sq_store *q, char *err, size_t errlen)
{
    int64_t v = 0, app = 0;
    int e = pragma_int(q->db, "PRAGMA user_version", &v);
    if (!e)
        e = pragma_int(q->db, "PRAGMA application_id", &app);
    if (e) {
        set_err(err, errlen, "reading the schema version: %s", sqlite3_errmsg(q->db));
        return e;
    }
    if (v > N_MIGRATIONS) {
        set_err(err, errlen, "database schema version %lld is newer than this tandem (%d)",
                (long long)v, N_MIGRATIONS);
        return STORE_E_TOO_NEW;
    }
    if (v > 0 && app != SQ_APPLICATION_ID) {
        set_err(err, errlen, "not a tandem database (application_id %lld)", (long long)app);
        return STORE_E_CORRUPT;
    }
    while (v < N_MIGRATIONS) {
        if ((e = sq__begin(q))) {
            set_err(err, errlen, "starting migration: %s", sqlite3_errmsg(q->db));
            return e;
        }
        if ((e = pragma_int(q->db, "PRAGMA user_version", &v)))
            goto fail;
        if (v > N_MIGRATIONS) {
            sq__rollback(q);
            set_err(err, errlen, "database schema version %lld is newer than this tandem (%d)",
                    (long long)v, N_MIGRATIONS);
            return STORE_E_TOO_NEW;
        }
        if (v == N_MIGRATIONS) {
            sq__rollback(q);
            break;
        }
        if (v == 0) {
            int64_t n_tables = 0;
            if ((e = pragma_int(q->db, "SELECT count(*) FROM sqlite_schema", &n_tables)))
                goto fail;
            if (n_tables) {
                sq__rollback(q);
                set_err(err, errlen, "not a tandem database (it already has tables)");
                return STORE_E_CORRUPT;
            }
        }
        char set[96];
        snprintf(set, sizeof(set), "PRAGMA user_version = %lld; PRAGMA application_id = %d",
                 (long long)v + 1, SQ_APPLICATION_ID);
        int rc = sqlite3_exec(q->db, migrations[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(q->db, set, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            e = sq__err(rc) ? sq__err(rc) : STORE_E_IO;
            goto fail;
        }
        if ((e = sq__commit(q))) {
            set_err(err, errlen, "committing migration %lld: %s", (long long)v + 1,
                    sqlite3_errmsg(q->db));
            return e;
        }
        v++;
    }
    return 0;
fail:
    set_err(err, errlen, "migration %lld: %s", (long long)v + 1, sqlite3_errmsg(q->db));
    sq__rollback(q);
    return e;
}

static void sq_close(struct store *s)
{
    struct sq_store *q = (struct sq_store *)s;
    for (int i = 0; i < SQ__COUNT; i++)
        sqlite3_finalize(q->stmt[i]);
    if (q->db)
        sqlite3_close(q->db);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .key_insert = sq__key_insert,
    .key_get_by_hash = sq__key_get_by_hash,
    .key_get = sq__key_get,
    .key_list = sq__key_list,
    .key_revoke = sq__key_revoke,
    .key_active_count = sq__key_active_count,
    .usage_insert = sq__usage_insert,
    .usage_summary = sq__usage_summary,
    .budget_reserve = sq__budget_reserve,
    .budget_settle = sq__budget_settle,
    .budget_spent = sq__budget_spent,
    .audit_append = sq__audit_append,
    .audit_get = sq__audit_get,
    .audit_leaf_hashes = sq__audit_leaf_hashes,
    .audit_count = sq__audit_count,
    .audit_head_put = sq__audit_head_put,
    .audit_head_get = sq__audit_head_get,
};

static int sq_open(struct store **out, const char *path, char *err, size_t errlen)
{
    int e = 0;
    if (!sqlite3_threadsafe()) {
        set_err(err, errlen, "this SQLite library was built without thread support");
        return STORE_E_IO;
    }
    /* Create the file first so that it (and the -wal/-shm files SQLite derives from it) is
     * private: the database holds key hashes and usage. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return STORE_E_IO;
    }
    close(fd);
    struct sq_store *q = calloc(1, sizeof(*q));
    if (!q)
        return STORE_E_NOMEM;
    q->base.ops = &sqlite_ops;
    pthread_mutex_init(&q->mu, NULL);
    int rc = sqlite3_open_v2(
        path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
        e = q->db ? sq__err(rc) : STORE_E_NOMEM;
        goto fail;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer; synchronous=NORMAL: a commit is in the WAL file
     * (OS page cache) when it returns, so it survives the process being killed; only a power
     * loss may drop the last transactions, never corrupt the file. */
    char mode[16] = "";
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        snprintf(mode, sizeof(mode), "%s", m ? (const char *)m : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || strcmp(mode, "wal")) {
        set_err(err, errlen, "%s: cannot enable WAL mode: %s", path,
                rc != SQLITE_OK ? sqlite3_errmsg(q->db) : mode);
        e = rc != SQLITE_OK ? sq__err(rc) : STORE_E_IO;
        if (!e)
            e = STORE_E_IO;
        goto fail;
    }
    rc = sqlite3_exec(q->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(q->db));
        e = sq__err(rc) ? sq__err(rc) : STORE_E_IO;
        goto fail;
    }
    if ((e = migrate(q, err, errlen)))
        goto fail;
    *out = &q->base;
    return 0;
fail:
    sq_close(&q->base);
    return e;
}

/* ---- front end ---- */

/* The file path of a SQLite store URL ("sqlite:PATH", "sqlite://PATH" or a bare path), or
 * NULL for another scheme. */
static const char *sqlite_path(const char *url)
{
    if (!strncmp(url, "sqlite:", 7))
        return !strncmp(url + 7, "//", 2) ? url + 9 : url + 7;
    if (strstr(url, "://") || !strncmp(url, "postgres:", 9) || !strncmp(url, "postgresql:", 11))
        return NULL;
    return url;
}

int store_open(struct store **out, const char *url, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out || !url || !*url) {
        set_err(err, errlen, "no store URL");
        if (out)
            *out = NULL;
        return STORE_E_ARG;
    }
    *out = NULL;
    const char *path = sqlite_path(url);
    if (!path) {
        set_err(err, errlen, "unsupported store URL '%.64s' (only sqlite: for now)", url);
        return STORE_E_URL;
    }
    if (!*path) {
        set_err(err, errlen, "empty database path");
        return STORE_E_ARG;
    }
    return sq_open(out, path, err, errlen);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

int store_open_path(struct store **out, const char *url, bool create, char *err, size_t errlen)
{
    char def[4096];
    if (out)
        *out = NULL;
    if (!out)
        return STORE_E_ARG;
    if (!url) {
        int e = store_default_path(def, sizeof(def), create);
        if (e) {
            set_err(err, errlen, "cannot find the default database: %s",
                    e == STORE_E_IO ? strerror(errno) : "set TANDEM_HOME or HOME");
            return e;
        }
        url = def;
    }
    if (!create) {
        const char *path = sqlite_path(url);
        if (path && *path && access(path, F_OK) != 0) {
            set_err(err, errlen, "%s: no database yet", path);
            return STORE_E_NOT_FOUND;
        }
    }
    return store_open(out, url, err, errlen);
}

int store_default_path(char *buf, size_t cap, bool create_dir)
{
    char dir[4096];
    const char *home = getenv("TANDEM_HOME");
    int n;
    if (home && *home) {
        n = snprintf(dir, sizeof(dir), "%s", home);
    } else {
        home = getenv("HOME");
        if (!home || !*home)
            return STORE_E_ARG;
        n = snprintf(dir, sizeof(dir), "%s/.cache/tandem", home);
    }
    if (n < 0 || (size_t)n >= sizeof(dir))
        return STORE_E_ARG;
    n = snprintf(buf, cap, "%s/tandem.db", dir);
    if (n < 0 || (size_t)n >= cap)
        return STORE_E_ARG;
    if (!create_dir)
        return 0;
    /* mkdir -p, mode 0700 for what is created. */
    for (size_t i = 1, len = strlen(dir); i <= len; i++) {
        if (dir[i] != '/' && dir[i] != 0)
            continue;
        char c = dir[i];
        dir[i] = 0;
        if (mkdir(dir, 0700) && errno != EEXIST)
            return STORE_E_IO;
        dir[i] = c;
    }
    return 0;
}

static bool text_ok(const char *s, size_t cap)
{
    return s && memchr(s, 0, cap) != NULL;
}

static bool cost_ok(double v)
{
    return isfinite(v) && v >= 0;
}

static bool key_ok(const struct store_key *k)
{
    return k && text_ok(k->id, sizeof(k->id)) && k->id[0] && text_ok(k->name, sizeof(k->name)) &&
           text_ok(k->team, sizeof(k->team)) && text_ok(k->models, sizeof(k->models)) &&
           text_ok(k->prefix, sizeof(k->prefix)) && cost_ok(k->budget_usd_month) && k->rpm >= 0 &&
           k->tpm >= 0 && k->created_ms >= 0 && k->revoked_ms >= 0;
}

static bool usage_text_ok(const char *s)
{
    return !s || strnlen(s, STORE__TEXT_MAX + 1) <= STORE__TEXT_MAX;
}

static bool usage_ok(const struct store_usage *u)
{
    if (!u || !usage_text_ok(u->request_id) || !usage_text_ok(u->key_id) ||
        !usage_text_ok(u->team) || !usage_text_ok(u->model) || !usage_text_ok(u->target) ||
        !usage_text_ok(u->privacy_action) || !u->outcome || !usage_text_ok(u->outcome))
        return false;
    if (u->target_kind && *u->target_kind && strcmp(u->target_kind, "local") &&
        strcmp(u->target_kind, "cloud"))
        return false;
    if (strcmp(u->outcome, "ok") && strcmp(u->outcome, "blocked") &&
        strcmp(u->outcome, "cancelled") && strncmp(u->outcome, "error:", 6))
        return false;
    return u->ts_ms >= 0 && u->prompt_tokens >= 0 && u->completion_tokens >= 0 &&
           u->latency_ms >= 0 && u->ttft_ms >= 0 && u->pii_count >= 0 && cost_ok(u->cost_usd) &&
           cost_ok(u->local_cost_usd) && cost_ok(u->cloud_equiv_usd);
}

int store_key_insert(struct store *s, const struct store_key *k)
{
    if (!s || !key_ok(k))
        return STORE_E_ARG;
    return s->ops->key_insert(s, k);
}

int store_key_get_by_hash(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                          struct store_key *out)
{
    if (!s || !hash || !out)
        return STORE_E_ARG;
    return s->ops->key_get_by_hash(s, hash, out);
}

int store_key_get(struct store *s, const char *id, struct store_key *out)
{
    if (!s || !id || !out || strnlen(id, STORE_ID_MAX) >= STORE_ID_MAX)
        return STORE_E_ARG;
    return s->ops->key_get(s, id, out);
}

int store_key_list(struct store *s, store_key_cb cb, void *ud)
{
    if (!s || !cb)
        return STORE_E_ARG;
    return s->ops->key_list(s, cb, ud);
}

int store_key_revoke(struct store *s, const char *id, int64_t now_ms)
{
    if (!s || !id || strnlen(id, STORE_ID_MAX) >= STORE_ID_MAX || now_ms <= 0)
        return STORE_E_ARG;
    return s->ops->key_revoke(s, id, now_ms);
}

int64_t store_key_active_count(struct store *s)
{
    if (!s)
        return STORE_E_ARG;
    return s->ops->key_active_count(s);
}

int store_usage_insert(struct store *s, const struct store_usage *u, int64_t *id)
{
    int64_t dummy;
    if (!s || !usage_ok(u))
        return STORE_E_ARG;
    return s->ops->usage_insert(s, u, id ? id : &dummy);
}

int store_usage_summary(struct store *s, int64_t since_ms, enum store_group by, store_usage_cb cb,
                        void *ud)
{
    if (!s || !cb || (unsigned)by >= STORE_GROUP_COUNT)
        return STORE_E_ARG;
    return s->ops->usage_summary(s, since_ms, by, cb, ud);
}

int store_budget_reserve(struct store *s, const char *key_id, const char *team, double max_cost_usd,
                         double key_budget, double team_budget, int64_t now_ms,
                         int64_t *reservation_id)
{
    if (!s || !key_id || !*key_id || !usage_text_ok(key_id) || !usage_text_ok(team) ||
        !reservation_id || !cost_ok(max_cost_usd) || !cost_ok(key_budget) ||
        !cost_ok(team_budget) || now_ms < 0)
        return STORE_E_ARG;
    return s->ops->budget_reserve(s, key_id, team ? team : "", max_cost_usd, key_budget,
                                  team_budget, now_ms, reservation_id);
}

int store_budget_settle(struct store *s, int64_t reservation_id, const struct store_usage *u,
                        int64_t *usage_id)
{
    int64_t dummy;
    if (!s || !usage_ok(u))
        return STORE_E_ARG;
    return s->ops->budget_settle(s, reservation_id, u, usage_id ? usage_id : &dummy);
}

int store_budget_release(struct store *s, int64_t reservation_id)
{
    int64_t dummy;
    if (!s)
        return STORE_E_ARG;
    return s->ops->budget_settle(s, reservation_id, NULL, &dummy);
}

int store_budget_spent(struct store *s, const char *key_id, const char *team, int64_t now_ms,
                       double *key_spent, double *team_spent)
{
    double k = 0, t = 0;
    if (!s || !usage_text_ok(key_id) || !usage_text_ok(team))
        return STORE_E_ARG;
    int e = s->ops->budget_spent(s, key_id ? key_id : "", team ? team : "", now_ms, &k, &t);
    if (key_spent)
        *key_spent = e ? 0 : k;
    if (team_spent)
        *team_spent = e ? 0 : t;
    return e;
}

int64_t store_audit_append(struct store *s, int64_t ts_ms, const void *record, size_t len,
                           const uint8_t leaf_hash[STORE_HASH_LEN])
{
    if (!s || !record || !len || len > STORE_AUDIT_RECORD_MAX || !leaf_hash)
        return STORE_E_ARG;
    return s->ops->audit_append(s, ts_ms, record, len, leaf_hash);
}

int store_audit_get(struct store *s, int64_t idx, int64_t *ts_ms, void **record, size_t *len,
                    uint8_t leaf_hash[STORE_HASH_LEN])
{
    if (!s || idx < 0 || (record && !len))
        return STORE_E_ARG;
    if (record)
        *record = NULL;
    return s->ops->audit_get(s, idx, ts_ms, record, len, leaf_hash);
}

int64_t store_audit_leaf_hashes(struct store *s, int64_t first, int64_t n,
                                uint8_t (*out)[STORE_HASH_LEN])
{
    if (!s || first < 0 || n < 0 || (n && !out))
        return STORE_E_ARG;
    return n ? s->ops->audit_leaf_hashes(s, first, n, out) : 0;
}

int64_t store_audit_count(struct store *s)
{
    return s ? s->ops->audit_count(s) : STORE_E_ARG;
}

int store_audit_head_put(struct store *s, const struct store_audit_head *h)
{
    if (!s || !h || h->tree_size < 0 || h->sig_len > STORE_AUDIT_SIG_MAX)
        return STORE_E_ARG;
    return s->ops->audit_head_put(s, h);
}

int store_audit_head_get_latest(struct store *s, struct store_audit_head *out)
{
    if (!s || !out)
        return STORE_E_ARG;
    return s->ops->audit_head_get(s, STORE_HEAD_LATEST, 0, out);
}

int store_audit_head_get(struct store *s, int64_t tree_size, struct store_audit_head *out)
{
    if (!s || !out || tree_size < 0)
        return STORE_E_ARG;
    return s->ops->audit_head_get(s, STORE_HEAD_EXACT, tree_size, out);
}

int store_audit_head_get_next(struct store *s, int64_t min_size, struct store_audit_head *out)
{
    if (!s || !out || min_size < 0)
        return STORE_E_ARG;
    return s->ops->audit_head_get(s, STORE_HEAD_NEXT, min_size, out);
}
