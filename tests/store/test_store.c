/* Store: migrations, keys, usage summaries, budgets under concurrency, audit storage, and
 * durability across a SIGKILL. */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

static const char *db_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", test_tmpdir(), name);
    return buf;
}

static struct store *open_db(const char *path)
{
    struct store *s = NULL;
    char err[256];
    int e = store_open(&s, path, err, sizeof(err));
    if (e)
        fprintf(stderr, "    store_open(%s): %s: %s\n", path, store_strerror(e), err);
    return s;
}

/* One integer from SQL run directly on the file (a second connection). */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct store_key make_key(const char *id, const char *name, const char *team, uint8_t fill)
{
    struct store_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.name, sizeof(k.name), "%s", name);
    snprintf(k.team, sizeof(k.team), "%s", team);
    snprintf(k.prefix, sizeof(k.prefix), "tk-%.5s", id);
    memset(k.key_hash, fill, sizeof(k.key_hash));
    k.created_ms = 1700000000000LL + fill;
    return k;
}

TEST(store_migrate_fresh)
{
    const char *path = db_path("fresh.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    CHECK(store_schema_version() >= 3);
    CHECK_EQ_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    CHECK_EQ_INT(sql_int(path, "PRAGMA application_id"), 0x746e646d);
    CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name "
                               "IN ('api_keys', 'usage', 'budget_reservations', 'audit_log', "
                               "'audit_heads', 'spend_monthly')"),
                 6);
    CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = "
                               "'wal'"),
                 1);
    store_close(s);
}

TEST(store_migrate_reopen)
{
    const char *path = db_path("reopen.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    struct store_key k = make_key("key_a", "alpha", "t1", 1);
    CHECK_EQ_INT(store_key_insert(s, &k), 0);
    store_close(s);
    s = open_db(path);
    REQUIRE(s);
    struct store_key got;
    CHECK_EQ_INT(store_key_get(s, "key_a", &got), 0);
    CHECK_STR(got.name, "alpha");
    CHECK_EQ_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    store_close(s);
    /* Also by URL. */
    char url[600];
    snprintf(url, sizeof(url), "sqlite:%s", path);
    s = open_db(url);
    REQUIRE(s);
    CHECK_EQ_INT(store_key_get(s, "key_a", &got), 0);
    store_close(s);
}

TEST(store_migrate_too_new)
{
    const char *path = db_path("new.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    store_close(s);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version() + 1);
    REQUIRE(sql_exec(path, sql) == SQLITE_OK);
    char err[256] = "";
    CHECK_EQ_INT(store_open(&s, path, err, sizeof(err)), STORE_E_TOO_NEW);
    CHECK(s == NULL);
    CHECK(strstr(err, "newer") != NULL);
    /* Refused without changing anything. */
    CHECK_EQ_INT(sql_int(path, "PRAGMA user_version"), store_schema_version() + 1);
}

TEST(store_migrate_partial_backfills)
{
    /* A database at version 2 (before the monthly spend rollup) gets step 3, which backfills
     * month-to-date spend from the existing ledger. */
    const char *path = db_path("partial.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    struct store_key k = make_key("key_a", "alpha", "t1", 1);
    CHECK_EQ_INT(store_key_insert(s, &k), 0);
    store_close(s);
    int64_t now = now_ms();
    char sql[512];
    snprintf(sql, sizeof(sql),
             "DROP TABLE spend_monthly; PRAGMA user_version = 2;"
             "INSERT INTO usage(ts_ms, key_id, team, cost_usd, outcome) VALUES"
             "(%lld, 'key_a', 't1', 0.25, 'ok'), (%lld, 'key_a', 't1', 0.5, 'ok')",
             (long long)now, (long long)now);
    REQUIRE(sql_exec(path, sql) == SQLITE_OK);
    s = open_db(path);
    REQUIRE(s);
    CHECK_EQ_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    double ks = -1, ts = -1;
    CHECK_EQ_INT(store_budget_spent(s, "key_a", "t1", now, &ks, &ts), 0);
    CHECK_NEAR(ks, 0.75, 1e-9);
    CHECK_NEAR(ts, 0.75, 1e-9);
    store_close(s);
}

TEST(store_open_refuses_foreign_files)
{
    const char *path = db_path("other.db");
    REQUIRE(sql_exec(path, "CREATE TABLE t(x)") == SQLITE_OK);
    struct store *s = NULL;
    char err[256];
    CHECK_EQ_INT(store_open(&s, path, err, sizeof(err)), STORE_E_CORRUPT);
    CHECK(s == NULL);
    CHECK_EQ_INT(store_open(&s, "postgres://db/tandem", err, sizeof(err)), STORE_E_URL);
    CHECK_EQ_INT(store_open(&s, "", err, sizeof(err)), STORE_E_ARG);
    CHECK_EQ_INT(store_open(&s, db_path("missing-dir/x.db"), err, sizeof(err)), STORE_E_IO);
    CHECK_STR(store_strerror(STORE_E_BUDGET), "budget exceeded");
    CHECK_STR(store_strerror(-999), "unknown store error");
}

static int count_key(void *ud, const struct store_key *k)
{
    (void)k;
    ++*(int *)ud;
    return 0;
}

TEST(store_keys_crud)
{
    struct store *s = open_db(db_path("keys.db"));
    REQUIRE(s);
    struct store_key a = make_key("key_a", "alpha", "t1", 1), b = make_key("key_b", "beta", "", 2);
    snprintf(a.models, sizeof(a.models), "m1,m2");
    a.budget_usd_month = 12.5;
    a.rpm = 60;
    a.tpm = 1000;
    a.admin = true;
    CHECK_EQ_INT(store_key_insert(s, &a), 0);
    CHECK_EQ_INT(store_key_insert(s, &b), 0);
    CHECK_EQ_INT(store_key_insert(s, &a), STORE_E_EXISTS);
    struct store_key dup = make_key("key_c", "gamma", "", 1); /* same hash as a */
    CHECK_EQ_INT(store_key_insert(s, &dup), STORE_E_EXISTS);
    struct store_key bad = make_key("", "x", "", 9);
    CHECK_EQ_INT(store_key_insert(s, &bad), STORE_E_ARG);

    struct store_key got;
    uint8_t h[STORE_HASH_LEN];
    memset(h, 1, sizeof(h));
    CHECK_EQ_INT(store_key_get_by_hash(s, h, &got), 0);
    CHECK_STR(got.id, "key_a");
    CHECK_STR(got.models, "m1,m2");
    CHECK_STR(got.team, "t1");
    CHECK_NEAR(got.budget_usd_month, 12.5, 0);
    CHECK_EQ_INT(got.rpm, 60);
    CHECK_EQ_INT(got.tpm, 1000);
    CHECK(got.admin);
    CHECK_EQ_INT(got.revoked_ms, 0);
    memset(h, 7, sizeof(h));
    CHECK_EQ_INT(store_key_get_by_hash(s, h, &got), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(store_key_get(s, "nope", &got), STORE_E_NOT_FOUND);

    int n = 0;
    CHECK_EQ_INT(store_key_list(s, count_key, &n), 0);
    CHECK_EQ_INT(n, 2);

    CHECK_EQ_INT(store_key_revoke(s, "key_b", 1234), 0);
    CHECK_EQ_INT(store_key_revoke(s, "key_b", 1235), STORE_E_REVOKED);
    CHECK_EQ_INT(store_key_revoke(s, "nope", 1235), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(store_key_get(s, "key_b", &got), 0);
    CHECK_EQ_INT(got.revoked_ms, 1234);
    store_close(s);
}

static struct store_usage row(int64_t ts, const char *key, const char *team, const char *model,
                              const char *target, const char *kind, double cost)
{
    return (struct store_usage){
        .ts_ms = ts,
        .request_id = "req",
        .key_id = key,
        .team = team,
        .model = model,
        .target = target,
        .target_kind = kind,
        .prompt_tokens = 10,
        .completion_tokens = 5,
        .latency_ms = 100,
        .ttft_ms = 20,
        .cost_usd = cost,
        .local_cost_usd = !strcmp(kind, "local") ? 0.001 : 0,
        .cloud_equiv_usd = !strcmp(kind, "local") ? 0.011 : cost,
        .outcome = "ok",
    };
}

struct groups {
    int n;
    char name[8][64];
    char label[8][64];
    int64_t requests[8], tokens[8];
    double cost[8], saved[8];
};

static int collect(void *ud, const struct store_usage_group *g)
{
    struct groups *gs = ud;
    if (gs->n >= 8)
        return 1;
    snprintf(gs->name[gs->n], 64, "%s", g->group);
    snprintf(gs->label[gs->n], 64, "%s", g->label);
    gs->requests[gs->n] = g->requests;
    gs->tokens[gs->n] = g->prompt_tokens + g->completion_tokens;
    gs->cost[gs->n] = g->cost_usd;
    gs->saved[gs->n] = g->saved_usd;
    gs->n++;
    return 0;
}

TEST(store_usage_summary_groups)
{
    struct store *s = open_db(db_path("usage.db"));
    REQUIRE(s);
    struct store_key a = make_key("key_a", "alpha", "t1", 1);
    CHECK_EQ_INT(store_key_insert(s, &a), 0);
    int64_t t = now_ms();
    struct store_usage rows[] = {
        row(t, "key_a", "t1", "small", "local:qwen", "local", 0),
        row(t, "key_a", "t1", "small", "local:qwen", "local", 0),
        row(t, "key_a", "t1", "big", "openai:gpt-4o", "cloud", 0.5),
        row(t, "key_b", "t2", "big", "openai:gpt-4o", "cloud", 0.25),
        row(t - 86400000LL * 3, "key_b", "t2", "big", "openai:gpt-4o", "cloud", 100),
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        CHECK_EQ_INT(store_usage_insert(s, &rows[i], NULL), 0);

    struct groups g = {0};
    CHECK_EQ_INT(store_usage_summary(s, t - 3600000, STORE_GROUP_KEY, collect, &g), 0);
    REQUIRE(g.n == 2);
    CHECK_STR(g.name[0], "key_a");
    CHECK_STR(g.label[0], "alpha");
    CHECK_EQ_INT(g.requests[0], 3);
    CHECK_EQ_INT(g.tokens[0], 45);
    CHECK_NEAR(g.cost[0], 0.5, 1e-12);
    CHECK_NEAR(g.saved[0], 0.02, 1e-12); /* two local rows, 0.011 - 0.001 each */
    CHECK_STR(g.name[1], "key_b");
    CHECK_STR(g.label[1], "key_b"); /* unknown key: the id */
    CHECK_EQ_INT(g.requests[1], 1);

    memset(&g, 0, sizeof(g));
    CHECK_EQ_INT(store_usage_summary(s, t - 3600000, STORE_GROUP_TARGET, collect, &g), 0);
    REQUIRE(g.n == 2);
    CHECK_STR(g.name[0], "openai:gpt-4o");
    CHECK_EQ_INT(g.requests[0], 2);
    CHECK_NEAR(g.cost[0], 0.75, 1e-12);
    CHECK_NEAR(g.saved[0], 0, 0);
    CHECK_STR(g.name[1], "local:qwen");
    CHECK_NEAR(g.saved[1], 0.02, 1e-12);

    memset(&g, 0, sizeof(g));
    CHECK_EQ_INT(store_usage_summary(s, 0, STORE_GROUP_TEAM, collect, &g), 0);
    REQUIRE(g.n == 2);
    CHECK_STR(g.name[0], "t2"); /* includes the old 100 USD row */
    CHECK_NEAR(g.cost[0], 100.25, 1e-9);

    memset(&g, 0, sizeof(g));
    CHECK_EQ_INT(store_usage_summary(s, 0, STORE_GROUP_MODEL, collect, &g), 0);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(store_usage_summary(s, 0, STORE_GROUP_COUNT, collect, &g), STORE_E_ARG);

    /* Validation of rows. */
    struct store_usage bad = row(t, "k", "", "m", "x", "gpu", 0);
    CHECK_EQ_INT(store_usage_insert(s, &bad, NULL), STORE_E_ARG);
    bad = row(t, "k", "", "m", "x", "local", -1);
    CHECK_EQ_INT(store_usage_insert(s, &bad, NULL), STORE_E_ARG);
    bad = row(t, "k", "", "m", "x", "local", 0);
    bad.outcome = "weird";
    CHECK_EQ_INT(store_usage_insert(s, &bad, NULL), STORE_E_ARG);
    bad.outcome = "error:502";
    CHECK_EQ_INT(store_usage_insert(s, &bad, NULL), 0);
    store_close(s);
}

TEST(store_budget_reserve_settle)
{
    struct store *s = open_db(db_path("budget.db"));
    REQUIRE(s);
    struct store_key a = make_key("key_a", "alpha", "t1", 1);
    CHECK_EQ_INT(store_key_insert(s, &a), 0);
    int64_t t = now_ms();
    int64_t r1 = 0, r2 = 0, r3 = 0, uid = 0;
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.6, 1.0, 0, t, &r1), 0);
    /* 0.6 open + 0.6 > 1.0 */
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.6, 1.0, 0, t, &r2), STORE_E_BUDGET);
    /* Team budget binds too. */
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.3, 1.0, 0.8, t, &r2), STORE_E_BUDGET);
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.3, 1.0, 0.9, t, &r2), 0);

    /* Settle r1 with its real cost: the reservation is replaced by the usage row. */
    struct store_usage u = row(t, NULL, NULL, "m", "openai:x", "cloud", 0.1);
    CHECK_EQ_INT(store_budget_settle(s, r1, &u, &uid), 0);
    CHECK(uid > 0);
    double ks = 0, ts = 0;
    CHECK_EQ_INT(store_budget_spent(s, "key_a", "t1", t, &ks, &ts), 0);
    CHECK_NEAR(ks, 0.4, 1e-9); /* 0.1 settled + 0.3 open */
    CHECK_NEAR(ts, 0.4, 1e-9);
    /* Settling again is refused and inserts nothing. */
    CHECK_EQ_INT(store_budget_settle(s, r1, &u, NULL), STORE_E_SETTLED);
    CHECK_EQ_INT(store_budget_settle(s, 99999, &u, NULL), STORE_E_NOT_FOUND);
    struct groups g = {0};
    CHECK_EQ_INT(store_usage_summary(s, 0, STORE_GROUP_KEY, collect, &g), 0);
    REQUIRE(g.n == 1);
    CHECK_STR(g.name[0], "key_a"); /* key and team came from the reservation */
    CHECK_EQ_INT(g.requests[0], 1);
    memset(&g, 0, sizeof(g));
    CHECK_EQ_INT(store_usage_summary(s, 0, STORE_GROUP_TEAM, collect, &g), 0);
    CHECK_STR(g.name[0], "t1");

    /* Release: no usage, no spend. */
    CHECK_EQ_INT(store_budget_release(s, r2), 0);
    CHECK_EQ_INT(store_budget_release(s, r2), STORE_E_SETTLED);
    CHECK_EQ_INT(store_budget_spent(s, "key_a", "t1", t, &ks, &ts), 0);
    CHECK_NEAR(ks, 0.1, 1e-9);

    /* A stale reservation (older than the TTL) no longer counts; settling it late still
     * records the usage. */
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.9, 1.0, 0, t, &r3), 0);
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.5, 1.0, 0, t + 1000, &r2),
                 STORE_E_BUDGET);
    int64_t later = t + STORE_RESERVATION_TTL_MS + 1000;
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "t1", 0.5, 1.0, 0, later, &r2), 0);
    u.ts_ms = later;
    u.cost_usd = 0.2;
    CHECK_EQ_INT(store_budget_settle(s, r3, &u, NULL), 0);
    CHECK_EQ_INT(store_budget_spent(s, "key_a", NULL, later, &ks, NULL), 0);
    CHECK_NEAR(ks, 0.1 + 0.2 + 0.5, 1e-9);

    /* No budget (0) never refuses; an unknown key cannot reserve. */
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "", 1000, 0, 0, later, &r2), 0);
    CHECK_EQ_INT(store_budget_reserve(s, "key_zz", "", 1, 0, 0, later, &r2), STORE_E_NOT_FOUND);
    store_close(s);
}

TEST(store_budget_month_boundary)
{
    struct store *s = open_db(db_path("month.db"));
    REQUIRE(s);
    struct store_key a = make_key("key_a", "alpha", "", 1);
    CHECK_EQ_INT(store_key_insert(s, &a), 0);
    /* 2024-01-31 23:59:59 UTC and 2024-02-01 00:00:01 UTC. */
    int64_t jan = 1706745599000LL, feb = 1706745601000LL, r;
    struct store_usage u = row(jan, "key_a", "", "m", "x", "cloud", 0.9);
    CHECK_EQ_INT(store_usage_insert(s, &u, NULL), 0);
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "", 0.2, 1.0, 0, jan, &r), STORE_E_BUDGET);
    CHECK_EQ_INT(store_budget_reserve(s, "key_a", "", 0.2, 1.0, 0, feb, &r), 0);
    store_close(s);
}

/* ---- concurrency ---- */

#define RACE_THREADS 16
#define RACE_CYCLES 20
#define RACE_MAX 0.01
#define RACE_KEY_BUDGET 1.5
#define RACE_TEAM_BUDGET 2.0

struct race {
    const char *path;
    struct store *shared;
    int64_t now;
    int ok[RACE_THREADS], refused[RACE_THREADS], errors[RACE_THREADS];
};

struct race_arg {
    struct race *r;
    int idx;
};

static void *race_thread(void *p)
{
    struct race_arg *a = p;
    struct race *r = a->r;
    /* Half the threads share one handle, half have their own connection (as separate
     * processes would): both kinds of contention. */
    struct store *s = a->idx % 2 ? open_db(r->path) : r->shared;
    if (!s) {
        r->errors[a->idx]++;
        return NULL;
    }
    const char *key = a->idx % 4 < 2 ? "key_a" : "key_b";
    for (int i = 0; i < RACE_CYCLES; i++) {
        int64_t id;
        int e = store_budget_reserve(s, key, "t1", RACE_MAX, RACE_KEY_BUDGET, RACE_TEAM_BUDGET,
                                     r->now, &id);
        if (e == STORE_E_BUDGET) {
            r->refused[a->idx]++;
            continue;
        }
        if (e) {
            fprintf(stderr, "    reserve: %s\n", store_strerror(e));
            r->errors[a->idx]++;
            continue;
        }
        /* Real costs between half and all of the reservation. */
        struct store_usage u = row(r->now, NULL, NULL, "m", "openai:x", "cloud",
                                   RACE_MAX * (0.5 + 0.1 * ((a->idx + i) % 6)));
        if (u.cost_usd > RACE_MAX)
            u.cost_usd = RACE_MAX;
        e = store_budget_settle(s, id, &u, NULL);
        if (e) {
            fprintf(stderr, "    settle: %s\n", store_strerror(e));
            r->errors[a->idx]++;
        } else {
            r->ok[a->idx]++;
        }
    }
    if (s != r->shared)
        store_close(s);
    return NULL;
}

TEST(store_budget_race)
{
    static struct race r;
    r.path = db_path("race.db");
    r.shared = open_db(r.path);
    REQUIRE(r.shared);
    struct store_key a = make_key("key_a", "alpha", "t1", 1),
                     b = make_key("key_b", "beta", "t1", 2);
    CHECK_EQ_INT(store_key_insert(r.shared, &a), 0);
    CHECK_EQ_INT(store_key_insert(r.shared, &b), 0);
    r.now = now_ms();
    pthread_t th[RACE_THREADS];
    struct race_arg args[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (struct race_arg){&r, i};
        REQUIRE(pthread_create(&th[i], NULL, race_thread, &args[i]) == 0);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    int ok = 0, refused = 0, errors = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        ok += r.ok[i];
        refused += r.refused[i];
        errors += r.errors[i];
    }
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(ok + refused, RACE_THREADS * RACE_CYCLES);
    CHECK(refused > 0); /* the limit was reached */
    double ka, kb, team;
    CHECK_EQ_INT(store_budget_spent(r.shared, "key_a", "t1", r.now, &ka, &team), 0);
    CHECK_EQ_INT(store_budget_spent(r.shared, "key_b", NULL, r.now, &kb, NULL), 0);
    /* Never over by more than one request's reservation (in fact never over at all). */
    CHECK(ka <= RACE_KEY_BUDGET + RACE_MAX);
    CHECK(kb <= RACE_KEY_BUDGET + RACE_MAX);
    CHECK(team <= RACE_TEAM_BUDGET + RACE_MAX);
    CHECK(team <= RACE_TEAM_BUDGET + 1e-6);
    CHECK(team >= RACE_TEAM_BUDGET - RACE_MAX); /* and the budget was used up */
    CHECK_NEAR(ka + kb, team, 1e-9);
    /* Every settled request is exactly one usage row; nothing is left open. */
    CHECK_EQ_INT(sql_int(r.path, "SELECT count(*) FROM usage"), ok);
    CHECK_EQ_INT(sql_int(r.path, "SELECT count(*) FROM budget_reservations WHERE settled = 0"), 0);
    CHECK_EQ_INT(sql_int(r.path, "SELECT CAST(round(SUM(cost_usd) * 1e6) AS INTEGER) FROM usage"),
                 sql_int(r.path, "SELECT CAST(round(SUM(cost_usd) * 1e6) AS INTEGER) FROM "
                                 "spend_monthly WHERE scope = 'team'"));
    store_close(r.shared);
}

/* ---- audit log storage ---- */

static void *audit_thread(void *p)
{
    struct store *s = p;
    for (int i = 0; i < 50; i++) {
        uint8_t h[STORE_HASH_LEN];
        memset(h, i, sizeof(h));
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "rec-%d", i);
        if (store_audit_append(s, 1000 + i, rec, (size_t)n, h) < 0)
            return (void *)1;
    }
    return NULL;
}

TEST(store_audit_storage)
{
    const char *path = db_path("audit.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    CHECK_EQ_INT(store_audit_count(s), 0);
    struct store_audit_head head;
    CHECK_EQ_INT(store_audit_head_get_latest(s, &head), STORE_E_NOT_FOUND);
    uint8_t h[STORE_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        memset(h, 0xa0 + i, sizeof(h));
        char rec[16];
        int n = snprintf(rec, sizeof(rec), "record %d", i);
        CHECK_EQ_INT(store_audit_append(s, 500 + i, rec, (size_t)n, h), i);
    }
    CHECK_EQ_INT(store_audit_count(s), 3);
    void *rec = NULL;
    size_t len = 0;
    int64_t ts = 0;
    CHECK_EQ_INT(store_audit_get(s, 1, &ts, &rec, &len, h), 0);
    CHECK_EQ_INT(ts, 501);
    CHECK_EQ_INT(len, 8);
    CHECK(rec && !memcmp(rec, "record 1", 8));
    CHECK_EQ_INT(h[0], 0xa1);
    free(rec);
    CHECK_EQ_INT(store_audit_get(s, 3, NULL, NULL, NULL, NULL), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(store_audit_append(s, 1, "", 0, h), STORE_E_ARG);

    /* Concurrent appenders get dense, distinct indices. */
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&th[i], NULL, audit_thread, s) == 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        CHECK(rv == NULL);
    }
    CHECK_EQ_INT(store_audit_count(s), 203);
    CHECK_EQ_INT(sql_int(path, "SELECT MAX(idx) - MIN(idx) + 1 - count(*) FROM audit_log"), 0);
    static uint8_t leaves[300][STORE_HASH_LEN];
    CHECK_EQ_INT(store_audit_leaf_hashes(s, 0, 300, leaves), 203);
    CHECK_EQ_INT(leaves[2][0], 0xa2);
    CHECK_EQ_INT(store_audit_leaf_hashes(s, 200, 10, leaves), 3);

    /* Signed tree heads. */
    struct store_audit_head h1 = {.tree_size = 3, .ts_ms = 10, .sig_len = 4};
    memset(h1.root_hash, 0x11, sizeof(h1.root_hash));
    memcpy(h1.signature, "sig!", 4);
    struct store_audit_head h2 = {.tree_size = 203, .ts_ms = 20, .sig_len = 0};
    memset(h2.root_hash, 0x22, sizeof(h2.root_hash));
    CHECK_EQ_INT(store_audit_head_put(s, &h1), 0);
    CHECK_EQ_INT(store_audit_head_put(s, &h2), 0);
    CHECK_EQ_INT(store_audit_head_put(s, &h1), STORE_E_EXISTS);
    CHECK_EQ_INT(store_audit_head_get_latest(s, &head), 0);
    CHECK_EQ_INT(head.tree_size, 203);
    CHECK_EQ_INT(head.sig_len, 0);
    CHECK_EQ_INT(head.root_hash[31], 0x22);
    CHECK_EQ_INT(store_audit_head_get(s, 3, &head), 0);
    CHECK_EQ_INT(head.sig_len, 4);
    CHECK(!memcmp(head.signature, "sig!", 4));
    CHECK_EQ_INT(store_audit_head_get(s, 4, &head), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(store_audit_head_get_next(s, 0, &head), 0);
    CHECK_EQ_INT(head.tree_size, 3);
    CHECK_EQ_INT(store_audit_head_get_next(s, 4, &head), 0);
    CHECK_EQ_INT(head.tree_size, 203);
    CHECK_EQ_INT(store_audit_head_get_next(s, 204, &head), STORE_E_NOT_FOUND);
    store_close(s);
}

/* ---- durability ---- */

TEST(store_crash_keeps_committed_rows)
{
    const char *path = db_path("crash.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    store_close(s);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct store *c = open_db(path);
        if (!c)
            _exit(2);
        for (int64_t n = 1;; n++) {
            struct store_usage u = row(1000 + n, "key_a", "t", "m", "local:x", "local", 0.001);
            if (store_usage_insert(c, &u, NULL))
                _exit(3);
            /* Reported only after the insert returned (committed). */
            if (write(fds[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
                _exit(4);
        }
    }
    close(fds[1]);
    int64_t last = 0, v;
    while (last < 400 && read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
        last = v;
    kill(pid, SIGKILL);
    while (read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
        last = v;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    REQUIRE(last >= 400);

    s = open_db(path);
    REQUIRE(s);
    int64_t rows = sql_int(path, "SELECT count(*) FROM usage");
    /* Every reported commit is there; at most one more (committed, not yet reported). */
    CHECK(rows >= last);
    CHECK(rows <= last + 1);
    CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM pragma_integrity_check WHERE "
                               "integrity_check = 'ok'"),
                 1);
    /* The rollup is consistent with the ledger (same transaction). */
    CHECK_EQ_INT(sql_int(path, "SELECT CAST(round(SUM(cost_usd) * 1e6) AS INTEGER) FROM usage"),
                 sql_int(path, "SELECT CAST(round(SUM(cost_usd) * 1e6) AS INTEGER) FROM "
                               "spend_monthly WHERE scope = 'key'"));
    store_close(s);
}

TEST(store_file_is_private)
{
    const char *path = db_path("priv.db");
    struct store *s = open_db(path);
    REQUIRE(s);
    store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test \"$(stat -c %%a '%s')\" = 600", path);
    CHECK_EQ_INT(system(cmd), 0);
}
