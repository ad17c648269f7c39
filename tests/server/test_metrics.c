/* Metrics registry: exact exposition text, promtool validation, concurrency, overflow, limits. */
#include "test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "server/metrics.h"

/* Runs `promtool check metrics` with text on stdin. Returns its exit status (127: promtool
 * missing) and its output in out. */
static int promtool_check(const char *text, char *out, size_t cap)
{
    char path[512], cmd[700];
    snprintf(path, sizeof path, "%s/metrics.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *render(struct metrics_registry *r)
{
    struct metrics_buf b;
    metrics_buf_init(&b, 0);
    int rc = metrics_render(r, &b);
    if (rc != METRICS_OK) {
        test__fail(__FILE__, __LINE__, "metrics_render: %s", metrics_strerror(rc));
        metrics_buf_free(&b);
        return NULL;
    }
    return b.data;
}

TEST(metrics_render_exact)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct metrics_family *hist, *cnt, *g, *unused;
    const char *l_mc[] = {"model", "code"}, *l_m[] = {"model"};
    const double bounds[] = {0.25, 1, 2.5};
    /* Registered out of order: output is sorted by name. */
    REQUIRE(metrics_histogram_new(r, &hist, "c_latency_seconds", "Latency.", l_m, 1, bounds, 3) ==
            0);
    REQUIRE(metrics_counter_new(r, &cnt, "b_requests_total",
                                "Requests\\ with \"quotes\"\nand newline", l_mc, 2) == 0);
    REQUIRE(metrics_gauge_new(r, &g, "a_temp", "Temperature.", NULL, 0) == 0);
    REQUIRE(metrics_gauge_new(r, &unused, "d_unused", "No children: not rendered.", l_m, 1) == 0);

    metrics_set(g, NULL, 1.5);
    metrics_child_inc(metrics_family_child(cnt, (const char *[]){"z", "200"}));
    metrics_add(cnt, (const char *[]){"z", "200"}, 1);
    metrics_add(cnt, (const char *[]){"a\"b\\c\nd", "500"}, 3);
    metrics_add(cnt, (const char *[]){"a", "404"}, 0.25);
    const char *m[] = {"m"};
    metrics_observe(hist, m, 0.125);
    metrics_observe(hist, m, 0.25); /* on the bound: le is inclusive */
    metrics_observe(hist, m, 0.75);
    metrics_observe(hist, m, 3);

    const char *want = "# HELP a_temp Temperature.\n"
                       "# TYPE a_temp gauge\n"
                       "a_temp 1.5\n"
                       "# HELP b_requests_total Requests\\\\ with \"quotes\"\\nand newline\n"
                       "# TYPE b_requests_total counter\n"
                       "b_requests_total{model=\"a\",code=\"404\"} 0.25\n"
                       "b_requests_total{model=\"a\\\"b\\\\c\\nd\",code=\"500\"} 3\n"
                       "b_requests_total{model=\"z\",code=\"200\"} 2\n"
                       "# HELP c_latency_seconds Latency.\n"
                       "# TYPE c_latency_seconds histogram\n"
                       "c_latency_seconds_bucket{model=\"m\",le=\"0.25\"} 2\n"
                       "c_latency_seconds_bucket{model=\"m\",le=\"1\"} 3\n"
                       "c_latency_seconds_bucket{model=\"m\",le=\"2.5\"} 3\n"
                       "c_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
                       "c_latency_seconds_sum{model=\"m\"} 4.125\n"
                       "c_latency_seconds_count{model=\"m\"} 4\n";
    char *got = render(r);
    CHECK_STR(got, want);
    char out[4096];
    int st = got ? promtool_check(got, out, sizeof out) : -1;
    if (st == 127)
        test__fail(__FILE__, __LINE__, "promtool not found: install Debian's prometheus package");
    else if (st != 0)
        test__fail(__FILE__, __LINE__, "promtool check metrics failed (%d):\n%s", st, out);
    free(got);
    metrics_registry_free(r);
}

TEST(metrics_promtool_tandem)
{
    struct metrics_tandem *t;
    REQUIRE(metrics_tandem_new(&t, "0.1.0-test", 0) == 0);
    const char *targets[] = {"local", "openai", "anthropic"};
    const char *models[] = {"qwen2.5-7b", "gpt-4o", "mod\"el\\with\nodd \xc3\xa9 \xff bytes"};
    for (int i = 0; i < 3; i++) {
        const char *mt[] = {models[i], targets[i]};
        metrics_add(t->requests, (const char *[]){models[i], targets[i], "ok"}, 10 + i);
        metrics_add(t->requests, (const char *[]){models[i], targets[i], "error"}, 1);
        metrics_add(t->request_errors, (const char *[]){models[i], targets[i], "502"}, 1);
        for (int k = 0; k < 50; k++) {
            metrics_observe(t->request_duration, mt, 0.003 * k * k);
            metrics_observe(t->ttft, mt, 0.002 * k * k);
        }
        metrics_add(t->tokens, (const char *[]){models[i], targets[i], "prompt"}, 1200);
        metrics_add(t->tokens, (const char *[]){models[i], targets[i], "completion"}, 300);
        metrics_add(t->tokens, (const char *[]){models[i], targets[i], "cached"}, 800);
        metrics_add(t->cost_usd, (const char *[]){models[i], targets[i], "cloud"}, 0.0123);
        metrics_add(t->cost_usd, (const char *[]){models[i], targets[i], "saved"}, 0.1);
        metrics_add(t->prefix_cache_hits, (const char *[]){models[i]}, 4);
        metrics_set(t->slots, (const char *[]){models[i]}, 4);
        metrics_set(t->slots_busy, (const char *[]){models[i]}, 2);
        metrics_set(t->queue_depth, (const char *[]){models[i]}, 0);
        metrics_set(t->upstream_up, (const char *[]){targets[i]}, i != 1);
    }
    metrics_add(t->privacy_detections, (const char *[]){"email"}, 3);
    metrics_add(t->privacy_actions, (const char *[]){"redact"}, 3);

    char *text = render(t->reg);
    REQUIRE(text);
    char out[8192];
    int st = promtool_check(text, out, sizeof out);
    if (st == 127)
        test__fail(__FILE__, __LINE__, "promtool not found: install Debian's prometheus package");
    else if (st != 0)
        test__fail(__FILE__, __LINE__, "promtool check metrics failed (%d):\n%s\n--- text:\n%s", st,
                   out, text);
    /* Every predefined family shows up, and the odd label value is escaped and sanitized. */
    const char *names[] = {"tandem_requests_total",
                           "tandem_request_errors_total",
                           "tandem_request_duration_seconds",
                           "tandem_time_to_first_token_seconds",
                           "tandem_tokens_total",
                           "tandem_cost_usd_total",
                           "tandem_prefix_cache_hits_total",
                           "tandem_slots_busy",
                           "tandem_slots",
                           "tandem_queue_depth",
                           "tandem_upstream_up",
                           "tandem_privacy_detections_total",
                           "tandem_privacy_actions_total",
                           "tandem_build_info"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s ", names[i]);
        if (!strstr(text, line))
            test__fail(__FILE__, __LINE__, "missing family %s", names[i]);
    }
    CHECK(strstr(text, "tandem_build_info{version=\"0.1.0-test\"} 1\n"));
    CHECK(strstr(text, "model=\"mod\\\"el\\\\with\\nodd \xc3\xa9 ? bytes\""));
    CHECK(strstr(text, "tandem_tokens_total{model=\"gpt-4o\",target=\"openai\",kind=\"cached\"} "
                       "800\n"));
    CHECK(strstr(text, "tandem_upstream_up{target=\"openai\"} 0\n"));
    free(text);
    metrics_tandem_free(t);
}

/* The checker itself must reject broken text, or the tests above prove nothing. */
TEST(metrics_promtool_rejects_garbage)
{
    char out[2048];
    int st = promtool_check("# TYPE x_total counter\nx_total{a=\"b} 1\n", out, sizeof out);
    if (st == 127)
        test__fail(__FILE__, __LINE__, "promtool not found: install Debian's prometheus package");
    CHECK(st != 0);
}

struct conc {
    struct metrics_family *cnt, *fcnt, *g, *hist;
    struct metrics_child *hot;
    int id;
};

static void *conc_worker(void *arg)
{
    struct conc *c = arg;
    const char *own[] = {c->id % 2 ? "odd" : "even"};
    for (int i = 0; i < 100000; i++) {
        metrics_child_inc(c->hot);
        metrics_add(c->cnt, own, 1);
        metrics_add(c->fcnt, NULL, 0.5);
        metrics_child_add(metrics_family_child(c->g, NULL), 1);
        metrics_observe(c->hist, (const char *[]){"h"}, (i % 4) * 0.5);
    }
    return NULL;
}

TEST(metrics_concurrent_exact)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct conc base = {0};
    const double b[] = {0.5, 1};
    REQUIRE(metrics_counter_new(r, &base.cnt, "c_total", "c", (const char *[]){"k"}, 1) == 0);
    REQUIRE(metrics_counter_new(r, &base.fcnt, "f_total", "f", NULL, 0) == 0);
    REQUIRE(metrics_gauge_new(r, &base.g, "g", "g", NULL, 0) == 0);
    REQUIRE(metrics_histogram_new(r, &base.hist, "h", "h", (const char *[]){"k"}, 1, b, 2) == 0);
    base.hot = metrics_family_child(base.cnt, (const char *[]){"hot"});
    REQUIRE(base.hot);
    pthread_t th[8];
    struct conc args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = base;
        args[i].id = i;
        REQUIRE(pthread_create(&th[i], NULL, conc_worker, &args[i]) == 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(metrics_child_value(base.hot), 800000);
    CHECK_EQ_INT(metrics_child_value(metrics_family_child(base.cnt, (const char *[]){"odd"})),
                 400000);
    CHECK_EQ_INT(metrics_child_value(metrics_family_child(base.cnt, (const char *[]){"even"})),
                 400000);
    CHECK_EQ_INT(metrics_child_value(metrics_family_child(base.fcnt, NULL)), 400000);
    CHECK_EQ_INT(metrics_child_value(metrics_family_child(base.g, NULL)), 800000);
    struct metrics_child *h = metrics_family_child(base.hist, (const char *[]){"h"});
    CHECK_EQ_INT(metrics_child_count(h), 800000);
    CHECK_EQ_INT(metrics_child_value(h), 600000); /* 8 * 25000 * (0 + 0.5 + 1 + 1.5) */
    char *text = render(r);
    REQUIRE(text);
    CHECK(strstr(text, "h_bucket{k=\"h\",le=\"0.5\"} 400000\n"));
    CHECK(strstr(text, "h_bucket{k=\"h\",le=\"1\"} 600000\n"));
    CHECK(strstr(text, "h_bucket{k=\"h\",le=\"+Inf\"} 800000\n"));
    CHECK(strstr(text, "h_count{k=\"h\"} 800000\n"));
    CHECK(strstr(text, "c_total{k=\"hot\"} 800000\n"));
    free(text);
    metrics_registry_free(r);
}

TEST(metrics_overflow_child)
{
    struct metrics_registry *r = metrics_registry_new(4);
    REQUIRE(r);
    struct metrics_family *f;
    REQUIRE(metrics_counter_new(r, &f, "x_total", "x", (const char *[]){"model", "t"}, 2) == 0);
    struct metrics_child *first = NULL;
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        struct metrics_child *c = metrics_family_child(f, (const char *[]){name, "a"});
        REQUIRE(c);
        if (i == 0)
            first = c;
        metrics_child_inc(c);
    }
    /* Known children keep working after the family is full. */
    CHECK(metrics_family_child(f, (const char *[]){"m0", "a"}) == first);
    struct metrics_child *other = metrics_family_child(f, (const char *[]){"m9", "a"});
    CHECK(other == metrics_family_child(f, (const char *[]){METRICS_OTHER, METRICS_OTHER}));
    CHECK(other != first);
    CHECK_EQ_INT(metrics_child_value(other), 6);
    char *text = render(r);
    REQUIRE(text);
    CHECK_STR(text, "# HELP x_total x\n# TYPE x_total counter\n"
                    "x_total{model=\"m0\",t=\"a\"} 1\n"
                    "x_total{model=\"m1\",t=\"a\"} 1\n"
                    "x_total{model=\"m2\",t=\"a\"} 1\n"
                    "x_total{model=\"m3\",t=\"a\"} 1\n"
                    "x_total{model=\"other\",t=\"other\"} 6\n");
    free(text);
    metrics_registry_free(r);
}

struct churn {
    struct metrics_family *cnt, *hist;
    atomic_bool stop;
    int id;
};

static void *churn_worker(void *arg)
{
    struct churn *c = arg;
    for (unsigned i = 0; !atomic_load(&c->stop); i++) {
        char v[32];
        snprintf(v, sizeof v, "v%d-%u", c->id, i % 3000); /* new children up to the overflow */
        metrics_add(c->cnt, (const char *[]){v}, 1);
        metrics_observe(c->hist, (const char *[]){v + (i % 2)}, (i % 100) * 0.01);
    }
    return NULL;
}

TEST(metrics_render_while_updating)
{
    struct metrics_registry *r = metrics_registry_new(256);
    REQUIRE(r);
    struct churn ch = {0};
    const double b[] = {0.1, 0.5};
    REQUIRE(metrics_counter_new(r, &ch.cnt, "u_total", "u", (const char *[]){"k"}, 1) == 0);
    REQUIRE(metrics_histogram_new(r, &ch.hist, "u_seconds", "u", (const char *[]){"k"}, 1, b, 2) ==
            0);
    atomic_init(&ch.stop, false);
    pthread_t th[3];
    struct churn *args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = &ch;
        REQUIRE(pthread_create(&th[i], NULL, churn_worker, args[i]) == 0);
    }
    int bad = 0;
    for (int k = 0; k < 100; k++) {
        struct metrics_buf buf;
        metrics_buf_init(&buf, 0);
        if (metrics_render(r, &buf) != METRICS_OK || !buf.data ||
            (buf.len && buf.data[buf.len - 1] != '\n'))
            bad++;
        metrics_buf_free(&buf);
    }
    atomic_store(&ch.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(bad, 0);
    /* However far the workers got, go past the 256-children bound now. */
    for (int i = 0; i < 300; i++) {
        char v[32];
        snprintf(v, sizeof v, "after-%d", i);
        metrics_add(ch.cnt, (const char *[]){v}, 1);
    }
    char *text = render(r);
    REQUIRE(text);
    char out[4096];
    int st = promtool_check(text, out, sizeof out);
    if (st != 0)
        test__fail(__FILE__, __LINE__, "promtool check metrics failed (%d):\n%s", st, out);
    CHECK(strstr(text, "u_total{k=\"other\"} "));
    free(text);
    metrics_registry_free(r);
}

TEST(metrics_invalid_args)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct metrics_family *f = (struct metrics_family *)1;
    const double ok_b[] = {1, 2}, bad_b[] = {2, 1}, inf_b[] = {1, INFINITY};
    CHECK_EQ_INT(metrics_counter_new(r, &f, "9bad", "h", NULL, 0), METRICS_E_ARG);
    CHECK(f == NULL);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "bad-name", "h", NULL, 0), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "", "h", NULL, 0), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "x", "h", (const char *[]){"a:b"}, 1), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "x", "h", (const char *[]){"__x"}, 1), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "x", "h", (const char *[]){"a", "a"}, 2),
                 METRICS_E_ARG);
    CHECK_EQ_INT(metrics_counter_new(r, &f, "x", "h", (const char *[]){"a", "b", "c", "d", "e"}, 5),
                 METRICS_E_ARG);
    CHECK_EQ_INT(metrics_histogram_new(r, &f, "h", "h", (const char *[]){"le"}, 1, ok_b, 2),
                 METRICS_E_ARG);
    CHECK_EQ_INT(metrics_histogram_new(r, &f, "h", "h", NULL, 0, bad_b, 2), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_histogram_new(r, &f, "h", "h", NULL, 0, inf_b, 2), METRICS_E_ARG);
    CHECK_EQ_INT(metrics_histogram_new(r, &f, "h", "h", NULL, 0, ok_b, 0), METRICS_E_ARG);
    struct metrics_family *dup;
    CHECK_EQ_INT(metrics_counter_new(r, &f, "ns:x_total", "h", (const char *[]){"a"}, 1), 0);
    CHECK_EQ_INT(metrics_gauge_new(r, &dup, "ns:x_total", "h", NULL, 0), METRICS_E_EXISTS);
    CHECK_EQ_INT(metrics_counter_new(NULL, &dup, "y", "h", NULL, 0), METRICS_E_ARG);
    CHECK(metrics_strerror(METRICS_E_EXISTS)[0]);
    /* Updates of the wrong kind and NULL handles are ignored, not fatal. */
    struct metrics_child *c = metrics_family_child(f, (const char *[]){"v"});
    metrics_child_add(c, 2);
    metrics_child_add(c, -1);
    metrics_child_add(c, NAN);
    metrics_child_set(c, 100);
    metrics_child_observe(c, 1);
    CHECK_EQ_INT(metrics_child_value(c), 2);
    metrics_child_inc(NULL);
    metrics_add(NULL, NULL, 1);
    CHECK(metrics_family_child(NULL, NULL) == NULL);
    CHECK(metrics_family_child(f, NULL) == NULL);
    metrics_registry_free(r);
    metrics_registry_free(NULL);
    metrics_tandem_free(NULL);
}

TEST(metrics_label_values_sanitized)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct metrics_family *f;
    REQUIRE(metrics_gauge_new(r, &f, "g", "g", (const char *[]){"v"}, 1) == 0);
    char longv[400];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[126] = '\xc3'; /* a 2-byte character straddling the cut */
    longv[127] = '\xa9';
    longv[128] = '\xc3';
    longv[129] = '\xa9';
    struct metrics_child *c1 = metrics_family_child(f, (const char *[]){longv});
    longv[300] = 'b'; /* differs only after the cut: the same child */
    CHECK(metrics_family_child(f, (const char *[]){longv}) == c1);
    /* Invalid UTF-8 becomes '?', so it is the same child as the literal '?'. */
    CHECK(metrics_family_child(f, (const char *[]){"x\xff\xc3(y"}) ==
          metrics_family_child(f, (const char *[]){"x?\?(y"}));
    CHECK(metrics_family_child(f, (const char *[]){NULL}) ==
          metrics_family_child(f, (const char *[]){""}));
    metrics_child_set(c1, -2.5);
    char *text = render(r);
    REQUIRE(text);
    char want[300];
    snprintf(want, sizeof want, "g{v=\"%.126s\xc3\xa9\"} -2.5\n", longv);
    CHECK(strstr(text, want));
    free(text);
    metrics_registry_free(r);
}

TEST(metrics_buffer_cap)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct metrics_family *f;
    REQUIRE(metrics_counter_new(r, &f, "n_total", "n", (const char *[]){"k"}, 1) == 0);
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        metrics_add(f, (const char *[]){v}, i);
    }
    struct metrics_buf b;
    metrics_buf_init(&b, 256);
    CHECK_EQ_INT(metrics_render(r, &b), METRICS_E_TOOBIG);
    CHECK(b.len < 256);
    metrics_buf_free(&b);
    metrics_buf_init(&b, 0);
    CHECK_EQ_INT(metrics_render(r, &b), METRICS_OK);
    CHECK(b.len > 256 && strlen(b.data) == b.len);
    metrics_buf_free(&b);
    metrics_registry_free(r);
}

TEST(metrics_number_format)
{
    struct metrics_registry *r = metrics_registry_new(0);
    REQUIRE(r);
    struct metrics_family *f, *c;
    REQUIRE(metrics_gauge_new(r, &f, "g", "g", (const char *[]){"v"}, 1) == 0);
    REQUIRE(metrics_counter_new(r, &c, "c_total", "c", NULL, 0) == 0);
    metrics_set(f, (const char *[]){"a"}, 0.1);
    metrics_set(f, (const char *[]){"b"}, 1e20);
    metrics_set(f, (const char *[]){"c"}, INFINITY);
    metrics_set(f, (const char *[]){"d"}, -INFINITY);
    metrics_set(f, (const char *[]){"e"}, NAN);
    metrics_set(f, (const char *[]){"f"}, 1.0 / 3);
    metrics_add(c, NULL, 1e6);
    metrics_add(c, NULL, 0.1);
    char *text = render(r);
    REQUIRE(text);
    CHECK(strstr(text, "c_total 1000000.1\n"));
    CHECK(strstr(text, "g{v=\"a\"} 0.1\n"));
    CHECK(strstr(text, "g{v=\"b\"} 1e+20\n"));
    CHECK(strstr(text, "g{v=\"c\"} +Inf\n"));
    CHECK(strstr(text, "g{v=\"d\"} -Inf\n"));
    CHECK(strstr(text, "g{v=\"e\"} NaN\n"));
    CHECK(strstr(text, "g{v=\"f\"} 0.33333333333333331\n"));
    free(text);
    metrics_registry_free(r);
}
