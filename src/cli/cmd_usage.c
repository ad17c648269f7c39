/* tandem usage: requests, tokens, cost and what staying local saved, grouped by key, team,
 * model or target, from the gateway's usage ledger. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "store/store.h"

#define USAGE_GROUPS_MAX 100000
#define GROUP_COL_MAX 48

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem usage [--since 24h|7d|2w|YYYY-MM-DD|month|all]\n"
               "                    [--by key|team|model|target] [--json] [--db PATH]\n"
               "  Totals from the usage ledger since a time (default 30d): requests, prompt and\n"
               "  completion tokens, cost, local cost, and 'saved' (what the requests served\n"
               "  locally would have cost at the reference cloud price, minus their local cost).\n"
               "  'month' is the start of the current calendar month (UTC), as budgets use.\n"
               "  The database is $TANDEM_HOME/tandem.db unless --db names another.\n");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --since: Nh, Nd, Nw (before now), YYYY-MM-DD (UTC midnight), month, all. */
static int parse_since(const char *s, int64_t now, int64_t *out)
{
    if (!strcmp(s, "all")) {
        *out = 0;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!strcmp(s, "month")) {
        time_t t = (time_t)(now / 1000);
        if (!gmtime_r(&t, &tm))
            return -1;
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *out = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    int y, m, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && strlen(s) == 10) {
        if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
            return -1;
        tm.tm_year = y - 1900;
        tm.tm_mon = m - 1;
        tm.tm_mday = d;
        time_t t = timegm(&tm);
        struct tm check;
        if (t < 0 || !gmtime_r(&t, &check) || check.tm_mday != d) /* 2024-02-31 */
            return -1;
        *out = (int64_t)t * 1000;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n < 0 || n > 100000 || strlen(end) != 1)
        return -1;
    int64_t unit = *end == 'h'   ? 3600000LL
                   : *end == 'd' ? 86400000LL
                   : *end == 'w' ? 604800000LL
                                 : 0;
    if (!unit)
        return -1;
    *out = now - n * unit;
    if (*out < 0)
        *out = 0;
    return 0;
}

struct row {
    char *group, *label;
    struct store_usage_group g;
};

struct rows {
    struct row *v;
    int n, cap;
};

static int collect(void *ud, const struct store_usage_group *g)
{
    struct rows *r = ud;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        if (cap > USAGE_GROUPS_MAX)
            return STORE_E_NOMEM;
        struct row *p = realloc(r->v, (size_t)cap * sizeof(*p));
        if (!p)
            return STORE_E_NOMEM;
        r->v = p;
        r->cap = cap;
    }
    struct row *x = &r->v[r->n];
    x->group = strdup(g->group);
    x->label = strdup(g->label);
    if (!x->group || !x->label) {
        free(x->group);
        free(x->label);
        return STORE_E_NOMEM;
    }
    x->g = *g;
    x->g.group = x->group;
    x->g.label = x->label;
    r->n++;
    return 0;
}

static void rows_free(struct rows *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->v[i].group);
        free(r->v[i].label);
    }
    free(r->v);
}

static void add(struct store_usage_group *t, const struct store_usage_group *g)
{
    t->requests += g->requests;
    t->prompt_tokens += g->prompt_tokens;
    t->completion_tokens += g->completion_tokens;
    t->cost_usd += g->cost_usd;
    t->local_cost_usd += g->local_cost_usd;
    t->saved_usd += g->saved_usd;
}

static json_t *group_json(const struct store_usage_group *g, bool with_name)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:f, s:f, s:f}", "requests", (json_int_t)g->requests,
                          "prompt_tokens", (json_int_t)g->prompt_tokens, "completion_tokens",
                          (json_int_t)g->completion_tokens, "cost_usd", g->cost_usd,
                          "local_cost_usd", g->local_cost_usd, "saved_usd", g->saved_usd);
    if (o && with_name &&
        (json_object_set_new(o, "group", json_string(g->group)) ||
         json_object_set_new(o, "label", json_string(g->label)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(const struct rows *r, const struct store_usage_group *total, int64_t since,
                      enum store_group by)
{
    json_t *groups = json_array();
    for (int i = 0; groups && i < r->n; i++) {
        json_t *o = group_json(&r->v[i].g, true);
        if (!o || json_array_append_new(groups, o)) {
            json_decref(groups);
            groups = NULL;
        }
    }
    json_t *doc =
        json_pack("{s:I, s:s, s:o?, s:o?}", "since_ms", (json_int_t)since, "by",
                  store_group_name(by), "groups", groups, "total", group_json(total, false));
    int rc = !doc || !groups || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
             fputc('\n', stdout) == EOF;
    json_decref(doc);
    return rc;
}

static void print_line(const char *name, int w, const struct store_usage_group *g)
{
    printf("%-*.*s  %9lld  %11lld  %11lld  %11.4f  %11.4f  %11.4f\n", w, w, name,
           (long long)g->requests, (long long)g->prompt_tokens, (long long)g->completion_tokens,
           g->cost_usd, g->local_cost_usd, g->saved_usd);
}

static void print_text(const struct rows *r, const struct store_usage_group *total, int64_t since,
                       enum store_group by)
{
    char when[40];
    time_t t = (time_t)(since / 1000);
    struct tm tm;
    if (since <= 0 || !gmtime_r(&t, &tm) ||
        !strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(when, sizeof(when), "the beginning");
    printf("usage since %s, by %s\n", when, store_group_name(by));
    if (!r->n) {
        printf("no requests recorded in this period\n");
        return;
    }
    char name[GROUP_COL_MAX * 2 + 8];
    int w = 6;
    for (int i = 0; i < r->n; i++) {
        const struct row *x = &r->v[i];
        int l =
            (int)strlen(x->label) + (strcmp(x->label, x->group) ? (int)strlen(x->group) + 3 : 0);
        if (!x->group[0])
            l = 6;
        w = l > w ? (l > GROUP_COL_MAX ? GROUP_COL_MAX : l) : w;
    }
    char header[16];
    snprintf(header, sizeof(header), "%s", store_group_name(by));
    for (char *p = header; *p; p++)
        *p = (char)(*p - 'a' + 'A');
    printf("%-*s  %9s  %11s  %11s  %11s  %11s  %11s\n", w, header, "REQUESTS", "PROMPT_TOK",
           "COMPL_TOK", "COST_USD", "LOCAL_USD", "SAVED_USD");
    for (int i = 0; i < r->n; i++) {
        const struct row *x = &r->v[i];
        if (!x->group[0])
            snprintf(name, sizeof(name), "(none)");
        else if (strcmp(x->label, x->group))
            snprintf(name, sizeof(name), "%.*s (%.*s)", GROUP_COL_MAX, x->label, GROUP_COL_MAX,
                     x->group);
        else
            snprintf(name, sizeof(name), "%s", x->group);
        print_line(name, w, &x->g);
    }
    print_line("TOTAL", w, total);
}

int cmd_usage(int argc, char **argv)
{
    const char *db = NULL, *since_s = "30d", *by_s = "key";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--db")) {
            if (!(db = args_value("usage", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--since")) {
            if (!(since_s = args_value("usage", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--by")) {
            if (!(by_s = args_value("usage", argc, argv, &i)))
                return 2;
        } else {
            fprintf(stderr, "tandem usage: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int64_t since;
    if (parse_since(since_s, now_ms(), &since)) {
        fprintf(stderr,
                "tandem usage: --since: '%s' is not 24h, 7d, 2w, YYYY-MM-DD, month or "
                "all\n",
                since_s);
        return 2;
    }
    enum store_group by = STORE_GROUP_COUNT;
    for (int g = 0; g < STORE_GROUP_COUNT; g++)
        if (!strcmp(by_s, store_group_name((enum store_group)g)))
            by = (enum store_group)g;
    if (by == STORE_GROUP_COUNT) {
        fprintf(stderr, "tandem usage: --by: '%s' is not key, team, model or target\n", by_s);
        return 2;
    }
    struct store *s = NULL;
    char err[512];
    int e = store_open_path(&s, db, false, err, sizeof(err));
    if (e && e != STORE_E_NOT_FOUND) {
        fprintf(stderr, "tandem usage: %s\n", err);
        return 1;
    }
    struct rows r = {0};
    if (s) {
        e = store_usage_summary(s, since, by, collect, &r);
        store_close(s);
        if (e) {
            fprintf(stderr, "tandem usage: %s\n", store_strerror(e));
            rows_free(&r);
            return 1;
        }
    }
    struct store_usage_group total = {.group = "", .label = ""};
    for (int i = 0; i < r.n; i++)
        add(&total, &r.v[i].g);
    int rc = 0;
    if (json)
        rc = print_json(&r, &total, since, by);
    else
        print_text(&r, &total, since, by);
    rows_free(&r);
    if (rc || fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "tandem usage: error writing output\n");
        return 1;
    }
    return 0;
}
