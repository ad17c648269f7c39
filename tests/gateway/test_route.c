/* Routing policy: strategies, fallbacks, circuit breakers, privacy outcomes, backoff. */
#include "gateway/route.h"
#include "test.h"

static const char *YAML =
    "models:\n"
    "  - name: local-small\n"
    "    local: { path: /nonexistent/x.gguf }\n"
    "  - name: local-big\n"
    "    local: { path: /nonexistent/y.gguf }\n"
    "  - name: gpt\n"
    "    provider: openai\n"
    "    api_key: k1\n"
    "  - name: claude\n"
    "    provider: anthropic\n"
    "    api_key: k2\n"
    "  - name: private-cloud\n"
    "    provider: openai-compatible\n"
    "    base_url: http://127.0.0.1:9/v1\n"
    "    privacy: { action: block }\n"
    "routes:\n"
    "  - name: smart\n"
    "    targets: [gpt, claude]\n"
    "    fallback: [local-small]\n"
    "  - name: weighted\n"
    "    strategy: weighted\n"
    "    targets: [{ model: gpt, weight: 9 }, { model: claude, weight: 1 }]\n"
    "  - name: fast\n"
    "    strategy: least_latency\n"
    "    targets: [gpt, claude, local-big]\n"
    "  - name: strict\n"
    "    targets: [gpt, private-cloud]\n"
    "privacy:\n"
    "  action: route_local\n"
    "  local_model: local-small\n";

static struct gw_config *cfg(void)
{
    struct gw_config *c = NULL;
    char err[512];
    if (gw_config_parse(&c, YAML, strlen(YAML), "t.yaml", err, sizeof(err)))
        test__fail(__FILE__, __LINE__, "%s", err);
    return c;
}

static const char *name_at(const struct route_plan *p, size_t i)
{
    return i < p->n ? p->targets[i]->name : "(none)";
}

TEST(route_model_and_ordered_route)
{
    struct gw_config *c = cfg();
    REQUIRE(c);
    struct route_plan p;
    CHECK_EQ_INT(route_plan(c, "gpt", false, NULL, NULL, 0, 1, &p), ROUTE_OK);
    CHECK_EQ_INT(p.n, 1);
    CHECK_STR(name_at(&p, 0), "gpt");
    CHECK_EQ_INT(route_plan(c, "smart", false, NULL, NULL, 0, 1, &p), ROUTE_OK);
    CHECK_EQ_INT(p.n, 3);
    CHECK_STR(name_at(&p, 0), "gpt");
    CHECK_STR(name_at(&p, 1), "claude");
    CHECK_STR(name_at(&p, 2), "local-small");
    CHECK_EQ_INT(p.privacy, ROUTE_PRIVACY_PASS);
    CHECK_EQ_INT(route_plan(c, "nope", false, NULL, NULL, 0, 1, &p), ROUTE_E_UNKNOWN);
    gw_config_free(c);
}

TEST(route_weighted_follows_weights)
{
    struct gw_config *c = cfg();
    REQUIRE(c);
    int first_gpt = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        struct route_plan p;
        REQUIRE(route_plan(c, "weighted", false, NULL, NULL, 0, x, &p) == ROUTE_OK);
        CHECK_EQ_INT(p.n, 2);  /* the other target stays as a fallback */
        first_gpt += !strcmp(name_at(&p, 0), "gpt");
    }
    CHECK(first_gpt > 8700 && first_gpt < 9300);
    gw_config_free(c);
}

TEST(route_least_latency_orders_by_average)
{
    struct gw_config *c = cfg();
    REQUIRE(c);
    struct route_health h[8] = {0};
    struct route_breaker_config bc;
    route_breaker_config_default(&bc);
    const int gpt = 2, claude = 3, big = 1;
    route_health_record(&h[gpt], &bc, true, 300, 0);
    route_health_record(&h[claude], &bc, true, 100, 0);
    route_health_record(&h[big], &bc, true, 200, 0);
    struct route_plan p;
    REQUIRE(route_plan(c, "fast", false, h, &bc, 0, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "claude");
    CHECK_STR(name_at(&p, 1), "local-big");
    CHECK_STR(name_at(&p, 2), "gpt");
    /* The average moves: claude slows down a lot. */
    for (int i = 0; i < 10; i++)
        route_health_record(&h[claude], &bc, true, 2000, 0);
    REQUIRE(route_plan(c, "fast", false, h, &bc, 0, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 2), "claude");
    gw_config_free(c);
}

TEST(route_circuit_breaker_opens_and_probes)
{
    struct gw_config *c = cfg();
    REQUIRE(c);
    struct route_health h[8] = {0};
    struct route_breaker_config bc = {.failures_to_open = 3, .open_ms = 1000};
    const int gpt = 2;
    for (int i = 0; i < 2; i++)
        route_health_record(&h[gpt], &bc, false, 0, 100);
    struct route_plan p;
    REQUIRE(route_plan(c, "smart", false, h, &bc, 100, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "gpt");  /* two failures: still closed */
    route_health_record(&h[gpt], &bc, false, 0, 100);
    REQUIRE(route_plan(c, "smart", false, h, &bc, 200, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "claude");  /* open: skipped */
    CHECK_EQ_INT(p.n, 2);
    /* After open_ms one probe goes through, the next request still skips it. */
    REQUIRE(route_plan(c, "smart", false, h, &bc, 1200, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "gpt");
    REQUIRE(route_plan(c, "smart", false, h, &bc, 1201, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "claude");
    /* A failed probe reopens it; a successful one closes it. */
    route_health_record(&h[gpt], &bc, false, 0, 1250);
    REQUIRE(route_plan(c, "smart", false, h, &bc, 1300, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "claude");
    REQUIRE(route_plan(c, "smart", false, h, &bc, 2300, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "gpt");
    route_health_record(&h[gpt], &bc, true, 50, 2310);
    REQUIRE(route_plan(c, "smart", false, h, &bc, 2311, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "gpt");
    REQUIRE(route_plan(c, "smart", false, h, &bc, 2312, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "gpt");
    /* Every target open: no target. */
    const int claude = 3, small = 0;
    for (int i = 0; i < 3; i++) {
        route_health_record(&h[gpt], &bc, false, 0, 3000);
        route_health_record(&h[claude], &bc, false, 0, 3000);
        route_health_record(&h[small], &bc, false, 0, 3000);
    }
    CHECK_EQ_INT(route_plan(c, "smart", false, h, &bc, 3001, 1, &p), ROUTE_E_NO_TARGET);
    gw_config_free(c);
}

TEST(route_privacy_outcomes)
{
    struct gw_config *c = cfg();
    REQUIRE(c);
    struct route_plan p;
    /* route_local (top level): cloud targets never see it, the local model serves it. */
    REQUIRE(route_plan(c, "smart", true, NULL, NULL, 0, 1, &p) == ROUTE_OK);
    CHECK_EQ_INT(p.privacy, ROUTE_PRIVACY_LOCAL);
    CHECK_EQ_INT(p.n, 1);
    CHECK_STR(name_at(&p, 0), "local-small");
    REQUIRE(route_plan(c, "gpt", true, NULL, NULL, 0, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "local-small");
    /* A local model asked for by name stays itself. */
    REQUIRE(route_plan(c, "local-big", true, NULL, NULL, 0, 1, &p) == ROUTE_OK);
    CHECK_STR(name_at(&p, 0), "local-big");
    CHECK_EQ_INT(p.n, 2);
    /* A model's own block policy; a route takes its strictest target's policy. */
    CHECK_EQ_INT(route_plan(c, "private-cloud", true, NULL, NULL, 0, 1, &p), ROUTE_E_BLOCKED);
    CHECK_EQ_INT(route_plan(c, "strict", true, NULL, NULL, 0, 1, &p), ROUTE_E_BLOCKED);
    CHECK_EQ_INT(route_plan(c, "strict", false, NULL, NULL, 0, 1, &p), ROUTE_OK);
    CHECK_EQ_INT(p.n, 2);
    gw_config_free(c);
}

TEST(route_backoff_jitter_and_retry_after)
{
    for (uint64_t r = 0; r < 1000; r++) {
        const int d1 = route_backoff_ms(100, 1, 5000, 0, r * 7919);
        const int d3 = route_backoff_ms(100, 3, 5000, 0, r * 7919);
        const int d9 = route_backoff_ms(100, 9, 5000, 0, r * 7919);
        CHECK(d1 >= 0 && d1 <= 100);
        CHECK(d3 >= 0 && d3 <= 400);
        CHECK(d9 >= 0 && d9 <= 5000);
        CHECK(route_backoff_ms(100, 2, 5000, 1000, r) >= 1000);
    }
    /* The jitter is spread, not constant. */
    int lo = 0, hi = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        const int d = route_backoff_ms(1000, 1, 5000, 0, r * 2654435761u);
        lo += d < 300;
        hi += d > 700;
    }
    CHECK(lo > 150 && hi > 150);
}
