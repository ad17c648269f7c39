/* tandem keys: create, list, revoke and check the gateway's virtual API keys. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "gateway/keys.h"
#include "store/store.h"

#define KEYS_LIST_MAX (1 << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem keys create --name NAME [--team TEAM] [--models a,b] [--budget USD]\n"
            "                          [--rpm N] [--tpm N] [--admin] [--json] [--db PATH]\n"
            "       tandem keys list [--json] [--db PATH]\n"
            "       tandem keys revoke ID|NAME [--db PATH]\n"
            "       tandem keys verify [--db PATH]     (reads a secret on stdin)\n"
            "  Virtual API keys for the gateway. Only a key's SHA-256 is stored: 'create' prints\n"
            "  the secret once. --models is an allow-list (empty = every model; 'gpt-*' matches\n"
            "  a prefix), --budget a monthly budget in USD, --rpm/--tpm per-minute limits\n"
            "  (0 = none). The database is $TANDEM_HOME/tandem.db (default\n"
            "  ~/.cache/tandem/tandem.db) unless --db names another (a path or sqlite:PATH).\n");
}

static struct store *open_db(const char *db, bool create)
{
    struct store *s = NULL;
    char err[512];
    int e = store_open_path(&s, db, create, err, sizeof(err));
    if (e && !(e == STORE_E_NOT_FOUND && !create))
        fprintf(stderr, "tandem keys: %s\n", err[0] ? err : store_strerror(e));
    return s;
}

static void fmt_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M", &tm))
        snprintf(buf, cap, "-");
}

static int parse_money(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v >= 1e15) {
        fprintf(stderr, "tandem keys: --budget: '%s' is not an amount in USD\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_count(const char *opt, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "tandem keys: %s: '%s' is not a non-negative integer\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int keys_create_cmd(int argc, char **argv)
{
    const char *name = NULL, *team = NULL, *models = NULL, *db = NULL, *v;
    double budget = 0;
    int64_t rpm = 0, tpm = 0;
    bool admin = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--name")) {
            if (!(name = args_value("keys", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--team")) {
            if (!(team = args_value("keys", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--models")) {
            if (!(models = args_value("keys", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--db")) {
            if (!(db = args_value("keys", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--budget")) {
            if (!(v = args_value("keys", argc, argv, &i)) || parse_money(v, &budget))
                return 2;
        } else if (!strcmp(a, "--rpm")) {
            if (!(v = args_value("keys", argc, argv, &i)) || parse_count("--rpm", v, &rpm))
                return 2;
        } else if (!strcmp(a, "--tpm")) {
            if (!(v = args_value("keys", argc, argv, &i)) || parse_count("--tpm", v, &tpm))
                return 2;
        } else if (!strcmp(a, "--admin")) {
            admin = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            fprintf(stderr, "tandem keys create: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!name || !*name) {
        fprintf(stderr, "tandem keys create: --name is required\n");
        return 2;
    }
    if (strlen(name) >= STORE_NAME_MAX || (team && strlen(team) >= STORE_NAME_MAX) ||
        (models && strlen(models) >= STORE_MODELS_MAX)) {
        fprintf(stderr, "tandem keys create: name, team or models too long\n");
        return 2;
    }
    struct store *s = open_db(db, true);
    if (!s)
        return 1;
    char secret[KEYS_SECRET_MAX], id[STORE_ID_MAX];
    int se = 0, e = keys_create(s, name, team, models, budget, rpm, tpm, admin, secret, id, &se);
    store_close(s);
    if (e) {
        fprintf(stderr, "tandem keys create: %s%s%s\n", keys_strerror(e), se ? ": " : "",
                se ? store_strerror(se) : "");
        return 1;
    }
    int rc = 0;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:b}", "id", id, "secret",
                              secret, "name", name, "team", team ? team : "", "models",
                              models ? models : "", "budget_usd_month", budget, "rpm",
                              (json_int_t)rpm, "tpm", (json_int_t)tpm, "admin", admin);
        rc = !o || json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
             fputc('\n', stdout) == EOF;
        json_decref(o);
    } else {
        printf("id:     %s\nname:   %s\nsecret: %s\n", id, name, secret);
    }
    fprintf(stderr, "tandem keys: store this secret now: it cannot be shown again (only its "
                    "SHA-256 is kept)\n");
    memset(secret, 0, sizeof(secret));
    if (fflush(stdout) || ferror(stdout) || rc) {
        fprintf(stderr, "tandem keys create: error writing output\n");
        return 1;
    }
    return 0;
}

struct key_vec {
    struct store_key *v;
    int n, cap;
};

static int collect_key(void *ud, const struct store_key *k)
{
    struct key_vec *kv = ud;
    if (kv->n == kv->cap) {
        int cap = kv->cap ? kv->cap * 2 : 64;
        if (cap > KEYS_LIST_MAX)
            return STORE_E_NOMEM;
        struct store_key *p = realloc(kv->v, (size_t)cap * sizeof(*p));
        if (!p)
            return STORE_E_NOMEM;
        kv->v = p;
        kv->cap = cap;
    }
    kv->v[kv->n++] = *k;
    return 0;
}

static json_t *key_json(const struct store_key *k)
{
    char created[32], revoked[32];
    fmt_time(k->created_ms, created, sizeof(created));
    fmt_time(k->revoked_ms, revoked, sizeof(revoked));
    json_t *models = json_array();
    for (const char *p = k->models; models && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n)
            json_array_append_new(models, json_stringn(p, n));
        if (!end)
            break;
        p = end + 1;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o?, s:f, s:I, s:I, s:b, s:I, s:I, s:s}", "id", k->id,
                     "name", k->name, "team", k->team, "prefix", k->prefix, "models", models,
                     "budget_usd_month", k->budget_usd_month, "rpm", (json_int_t)k->rpm, "tpm",
                     (json_int_t)k->tpm, "admin", k->admin, "created_ms", (json_int_t)k->created_ms,
                     "revoked_ms", (json_int_t)k->revoked_ms, "status",
                     k->revoked_ms ? "revoked" : "active");
}

static int print_list(const struct key_vec *kv, bool json)
{
    if (json) {
        json_t *a = json_array();
        for (int i = 0; a && i < kv->n; i++) {
            json_t *o = key_json(&kv->v[i]);
            if (!o || json_array_append_new(a, o)) {
                json_decref(a);
                a = NULL;
            }
        }
        int rc = !a || json_dumpf(a, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
                 fputc('\n', stdout) == EOF;
        json_decref(a);
        return rc;
    }
    if (!kv->n) {
        printf("no keys yet: create one with 'tandem keys create --name NAME'\n");
        return 0;
    }
    int nw = 4, tw = 4;
    for (int i = 0; i < kv->n; i++) {
        int l = (int)strlen(kv->v[i].name), t = (int)strlen(kv->v[i].team);
        nw = l > nw ? (l > 32 ? 32 : l) : nw;
        tw = t > tw ? (t > 24 ? 24 : t) : tw;
    }
    printf("%-20s  %-*s  %-*s  %-10s  %9s  %6s  %8s  %-5s  %-16s  %-7s  %s\n", "ID", nw, "NAME", tw,
           "TEAM", "PREFIX", "BUDGET", "RPM", "TPM", "ADMIN", "CREATED", "STATUS", "MODELS");
    for (int i = 0; i < kv->n; i++) {
        const struct store_key *k = &kv->v[i];
        char created[32], budget[32], rpm[24], tpm[24];
        fmt_time(k->created_ms, created, sizeof(created));
        if (k->budget_usd_month > 0)
            snprintf(budget, sizeof(budget), "$%.2f", k->budget_usd_month);
        else
            snprintf(budget, sizeof(budget), "-");
        if (k->rpm)
            snprintf(rpm, sizeof(rpm), "%lld", (long long)k->rpm);
        else
            snprintf(rpm, sizeof(rpm), "-");
        if (k->tpm)
            snprintf(tpm, sizeof(tpm), "%lld", (long long)k->tpm);
        else
            snprintf(tpm, sizeof(tpm), "-");
        printf("%-20s  %-*.*s  %-*.*s  %-10s  %9s  %6s  %8s  %-5s  %-16s  %-7s  %s\n", k->id, nw,
               nw, k->name, tw, tw, k->team[0] ? k->team : "-", k->prefix, budget, rpm, tpm,
               k->admin ? "yes" : "no", created, k->revoked_ms ? "revoked" : "active",
               k->models[0] ? k->models : "*");
    }
    return 0;
}

static int keys_list_cmd(int argc, char **argv)
{
    const char *db = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--db")) {
            if (!(db = args_value("keys", argc, argv, &i)))
                return 2;
        } else {
            fprintf(stderr, "tandem keys list: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct key_vec kv = {0};
    struct store *s = NULL;
    char err[512];
    int e = store_open_path(&s, db, false, err, sizeof(err));
    if (e && e != STORE_E_NOT_FOUND) {
        fprintf(stderr, "tandem keys list: %s\n", err);
        return 1;
    }
    if (s) {
        e = store_key_list(s, collect_key, &kv);
        store_close(s);
        if (e) {
            fprintf(stderr, "tandem keys list: %s\n", store_strerror(e));
            free(kv.v);
            return 1;
        }
    }
    int rc = print_list(&kv, json);
    free(kv.v);
    if (rc || fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "tandem keys list: error writing output\n");
        return 1;
    }
    return 0;
}

static int keys_revoke_cmd(int argc, char **argv)
{
    const char *db = NULL, *which = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) {
            if (!(db = args_value("keys", argc, argv, &i)))
                return 2;
        } else if (argv[i][0] == '-' || which) {
            fprintf(stderr, "tandem keys revoke: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else {
            which = argv[i];
        }
    }
    if (!which || !*which || strlen(which) >= STORE_NAME_MAX) {
        fprintf(stderr, "tandem keys revoke: name the key to revoke (its id or name)\n");
        return 2;
    }
    struct store *s = open_db(db, false);
    if (!s) {
        fprintf(stderr, "tandem keys revoke: no key '%s' (no database yet)\n", which);
        return 1;
    }
    struct store_key k;
    char id[STORE_ID_MAX] = "";
    int e = strlen(which) < STORE_ID_MAX ? store_key_get(s, which, &k) : STORE_E_NOT_FOUND;
    int status = 1;
    if (!e) {
        snprintf(id, sizeof(id), "%s", k.id);
    } else if (e == STORE_E_NOT_FOUND) {
        /* By name: exactly one active key may carry it. */
        struct key_vec kv = {0};
        if ((e = store_key_list(s, collect_key, &kv))) {
            fprintf(stderr, "tandem keys revoke: %s\n", store_strerror(e));
            free(kv.v);
            goto out;
        }
        int active = 0, any = 0;
        for (int i = 0; i < kv.n; i++) {
            if (strcmp(kv.v[i].name, which))
                continue;
            any++;
            if (!kv.v[i].revoked_ms) {
                active++;
                snprintf(id, sizeof(id), "%s", kv.v[i].id);
            }
        }
        free(kv.v);
        if (active > 1) {
            fprintf(stderr, "tandem keys revoke: %d active keys are named '%s'; give the id\n",
                    active, which);
            goto out;
        }
        if (!active) {
            fprintf(stderr, "tandem keys revoke: %s '%s'\n",
                    any ? "already revoked:" : "no key with id or name", which);
            goto out;
        }
    } else {
        fprintf(stderr, "tandem keys revoke: %s\n", store_strerror(e));
        goto out;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e = store_key_revoke(s, id, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (e == STORE_E_REVOKED) {
        fprintf(stderr, "tandem keys revoke: %s is already revoked\n", id);
    } else if (e) {
        fprintf(stderr, "tandem keys revoke: %s\n", store_strerror(e));
    } else {
        printf("revoked %s\n", id);
        status = 0;
    }
out:
    store_close(s);
    return status;
}

static int keys_verify_cmd(int argc, char **argv)
{
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) {
            if (!(db = args_value("keys", argc, argv, &i)))
                return 2;
        } else {
            fprintf(stderr,
                    "tandem keys verify: unexpected argument '%s' (the secret is read "
                    "from stdin)\n",
                    argv[i]);
            return 2;
        }
    }
    char line[KEYS_PRESENTED_MAX + 2];
    if (!fgets(line, sizeof(line), stdin)) {
        fprintf(stderr, "tandem keys verify: no secret on stdin\n");
        return 2;
    }
    size_t n = strcspn(line, "\r\n");
    line[n] = 0;
    struct store *s = open_db(db, false);
    if (!s) {
        printf("invalid\n");
        return 1;
    }
    struct store_key k;
    int se = 0, e = keys_verify(s, line, n, &k, &se);
    memset(line, 0, sizeof(line));
    store_close(s);
    if (e == KEYS_E_STORE) {
        fprintf(stderr, "tandem keys verify: %s\n", store_strerror(se));
        return 1;
    }
    if (e == KEYS_E_REVOKED) {
        printf("revoked %s (%s)\n", k.id, k.name);
        return 1;
    }
    if (e) {
        printf("invalid\n");
        return 1;
    }
    printf("valid %s (%s)%s%s\n", k.id, k.name, k.team[0] ? " team " : "", k.team);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    if (!strcmp(sub, "create"))
        return keys_create_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return keys_list_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "revoke"))
        return keys_revoke_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "verify"))
        return keys_verify_cmd(argc - 1, argv + 1);
    fprintf(stderr, "tandem keys: unknown subcommand '%s'\n", sub);
    usage(stderr);
    return 2;
}
