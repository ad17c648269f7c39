/* Tests of the gateway configuration file: parsing, validation messages, secrets, limits. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "test.h"

#define SECRET "sk-test-SECRET-value-0123456789"

static const char MINIMAL[] =
    "listen: 127.0.0.1:8080\n"
    "models:\n"
    "  - name: local-small                  # what clients put in \"model\"\n"
    "    local: { path: ../shared/models/stories260K.gguf }\n"
    "  - name: cloud-gpt\n"
    "    provider: openai                   # openai | anthropic | gemini | mistral | "
    "openai-compatible\n"
    "    base_url: https://api.openai.com/v1\n"
    "    api_key: env:OPENAI_API_KEY\n"
    "    model: gpt-4o\n"
    "    price: { input_per_mtok: 2.50, output_per_mtok: 10.00 }\n"
    "routes:\n"
    "  - name: smart                        # a public name; targets are tried in order\n"
    "    targets: [cloud-gpt, local-small]\n"
    "privacy:\n"
    "  action: route_local                  # route_local | pseudonymize | block | allow\n"
    "  local_model: local-small\n";

/* A message check that shows the whole message when it fails. */
#define CHECK_HAS(msg, sub)                                                                        \
    do {                                                                                           \
        if (!strstr((msg), (sub)))                                                                 \
            test__fail(__FILE__, __LINE__, "expected \"%s\" in \"%s\"", (sub), (msg));             \
    } while (0)

static int parse(const char *yaml, struct gw_config **cfg, char *err, size_t errlen)
{
    return gw_config_parse(cfg, yaml, strlen(yaml), "t.yaml", err, errlen);
}

/* Parses text that must fail; returns the code and leaves the message in err. */
static int parse_bad(const char *yaml, char *err, size_t errlen)
{
    struct gw_config *cfg = (struct gw_config *)1;
    int rc = parse(yaml, &cfg, err, errlen);
    if (rc == 0) {
        test__fail(__FILE__, __LINE__, "expected an error for:\n%s", yaml);
        gw_config_free(cfg);
    } else if (cfg != NULL) {
        test__fail(__FILE__, __LINE__, "*out not NULL after an error");
    }
    return rc;
}

/* A valid config with one cloud model (literal key) and one local model, plus `extra`. */
static void with_models(char *buf, size_t len, const char *extra)
{
    snprintf(buf, len,
             "models:\n"
             "  - name: loc\n"
             "    local: { path: m.gguf }\n"
             "  - name: cloud\n"
             "    provider: anthropic\n"
             "    api_key: literal-key\n"
             "%s",
             extra);
}

TEST(config_minimal_example)
{
    char err[512];
    struct gw_config *cfg = NULL;
    setenv("OPENAI_API_KEY", SECRET, 1);
    int rc = parse(MINIMAL, &cfg, err, sizeof(err));
    REQUIRE(rc == 0);
    CHECK_STR(cfg->listen_host, "127.0.0.1");
    CHECK_EQ_INT(cfg->listen_port, 8080);
    REQUIRE(cfg->n_models == 2);
    const struct gw_model *l = &cfg->models[0], *g = &cfg->models[1];
    CHECK_STR(l->name, "local-small");
    CHECK_EQ_INT(l->kind, GW_MODEL_LOCAL);
    CHECK_STR(l->local.path, "../shared/models/stories260K.gguf");
    CHECK_EQ_INT(l->local.slots, 0);
    CHECK_EQ_INT(l->local.ctx_size, 0);
    CHECK_STR(g->name, "cloud-gpt");
    CHECK_EQ_INT(g->kind, GW_MODEL_PROVIDER);
    CHECK_EQ_INT(g->upstream.provider, GW_PROVIDER_OPENAI);
    CHECK_STR(g->upstream.base_url, "https://api.openai.com/v1");
    CHECK_STR(g->upstream.api_key, SECRET);
    CHECK_STR(g->upstream.api_key_env, "OPENAI_API_KEY");
    CHECK_STR(g->upstream.model, "gpt-4o");
    CHECK_NEAR(g->upstream.price.input_per_mtok, 2.5, 1e-12);
    CHECK_NEAR(g->upstream.price.output_per_mtok, 10.0, 1e-12);
    CHECK_EQ_INT(g->upstream.timeouts.connect_ms, 10000);
    CHECK_EQ_INT(g->upstream.timeouts.first_byte_ms, 60000);
    CHECK_EQ_INT(g->upstream.timeouts.total_ms, 600000);
    CHECK_EQ_INT(g->upstream.retries.max, 2);
    CHECK_EQ_INT(g->upstream.retries.backoff_ms, 250);
    CHECK(!g->has_privacy);
    REQUIRE(cfg->n_routes == 1);
    const struct gw_route *r = &cfg->routes[0];
    CHECK_STR(r->name, "smart");
    CHECK_EQ_INT(r->strategy, GW_ROUTE_ORDERED);
    REQUIRE(r->n_targets == 2);
    CHECK_STR(r->targets[0].model, "cloud-gpt");
    CHECK_STR(r->targets[1].model, "local-small");
    CHECK_EQ_INT(r->targets[0].weight, 1);
    CHECK_EQ_INT(r->n_fallback, 0);
    CHECK_EQ_INT(cfg->privacy.action, GW_PRIVACY_ROUTE_LOCAL);
    CHECK_STR(cfg->privacy.local_model, "local-small");
    CHECK_EQ_INT(cfg->privacy.detect, GW_PII_ALL);
    CHECK_EQ_INT(cfg->limits.max_body_bytes, 4 << 20);
    CHECK_EQ_INT(cfg->limits.queue, 64);
    CHECK(gw_config_find_model(cfg, "cloud-gpt") == g);
    CHECK(gw_config_find_model(cfg, "smart") == NULL);
    CHECK(gw_config_find_route(cfg, "smart") == r);
    CHECK(gw_config_find_route(cfg, "cloud-gpt") == NULL);
    CHECK(gw_config_model_privacy(cfg, g) == &cfg->privacy);
    CHECK_STR(cfg->source, "t.yaml");
    gw_config_free(cfg);
    gw_config_free(NULL);
}

TEST(config_defaults_and_long_forms)
{
    char err[512], y[4096];
    struct gw_config *cfg = NULL;
    with_models(y, sizeof(y),
                "    price: { input_per_mtok: 3, output_per_mtok: 1.5e1 }\n"
                "    timeouts: { connect_ms: 500, total_ms: 90000, first_byte_ms: 2000 }\n"
                "    retries: { max: 0, backoff_ms: 10 }\n"
                "    privacy: { action: block, detect: [email, card] }\n"
                "  - name: mist\n"
                "    provider: mistral\n"
                "    api_key: \"k\"\n"
                "  - name: gem\n"
                "    provider: gemini\n"
                "    api_key: k\n"
                "  - name: vllm\n"
                "    provider: openai-compatible\n"
                "    base_url: http://10.0.0.5:8000/v1/\n"
                "  - name: big\n"
                "    local:\n"
                "      path: big.gguf\n"
                "      parallel: 8\n"
                "      ctx_size: 8192\n"
                "      threads: 4\n"
                "      batch: 256\n"
                "routes:\n"
                "  - name: spread\n"
                "    strategy: weighted\n"
                "    targets:\n"
                "      - { model: cloud, weight: 3 }\n"
                "      - model: mist\n"
                "    fallback: [loc]\n"
                "limits: { max_body_bytes: 2MiB, max_messages: 50, max_tokens: 4096, queue: 8 }\n"
                "listen: \"[::1]:9000\"\n");
    int rc = parse(y, &cfg, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "%s", err);
    REQUIRE(rc == 0);
    CHECK_STR(cfg->listen_host, "::1");
    CHECK_EQ_INT(cfg->listen_port, 9000);
    const struct gw_model *c = gw_config_find_model(cfg, "cloud");
    REQUIRE(c);
    CHECK_STR(c->upstream.base_url, "https://api.anthropic.com");
    CHECK_STR(c->upstream.model, "cloud"); /* defaults to the name */
    CHECK_STR(c->upstream.api_key, "literal-key");
    CHECK(c->upstream.api_key_env == NULL);
    CHECK_NEAR(c->upstream.price.output_per_mtok, 15.0, 1e-12);
    CHECK_EQ_INT(c->upstream.timeouts.connect_ms, 500);
    CHECK_EQ_INT(c->upstream.timeouts.first_byte_ms, 2000);
    CHECK_EQ_INT(c->upstream.retries.max, 0);
    CHECK(c->has_privacy);
    CHECK_EQ_INT(c->privacy.action, GW_PRIVACY_BLOCK);
    CHECK_EQ_INT(c->privacy.detect, (1u << GW_PII_EMAIL) | (1u << GW_PII_CARD));
    CHECK(gw_config_model_privacy(cfg, c) == &c->privacy);
    CHECK_STR(gw_config_find_model(cfg, "mist")->upstream.base_url, "https://api.mistral.ai/v1");
    CHECK_STR(gw_config_find_model(cfg, "gem")->upstream.base_url,
              "https://generativelanguage.googleapis.com");
    const struct gw_model *v = gw_config_find_model(cfg, "vllm");
    CHECK_STR(v->upstream.base_url, "http://10.0.0.5:8000/v1");
    CHECK(v->upstream.api_key == NULL);
    const struct gw_model *b = gw_config_find_model(cfg, "big");
    CHECK_EQ_INT(b->local.slots, 8);
    CHECK_EQ_INT(b->local.ctx_size, 8192);
    CHECK_EQ_INT(b->local.threads, 4);
    CHECK_EQ_INT(b->local.batch, 256);
    const struct gw_route *r = gw_config_find_route(cfg, "spread");
    REQUIRE(r && r->n_targets == 2 && r->n_fallback == 1);
    CHECK_EQ_INT(r->strategy, GW_ROUTE_WEIGHTED);
    CHECK_EQ_INT(r->targets[0].weight, 3);
    CHECK_STR(r->targets[1].model, "mist");
    CHECK_EQ_INT(r->targets[1].weight, 1);
    CHECK_STR(r->fallback[0], "loc");
    CHECK_EQ_INT(cfg->limits.max_body_bytes, 2 << 20);
    CHECK_EQ_INT(cfg->limits.max_messages, 50);
    CHECK_EQ_INT(cfg->limits.max_tokens, 4096);
    CHECK_EQ_INT(cfg->limits.queue, 8);
    CHECK_EQ_INT(cfg->privacy.action, GW_PRIVACY_ALLOW); /* no privacy: section */
    gw_config_free(cfg);
}

TEST(config_listen_forms)
{
    static const struct {
        const char *in, *host;
        int port;
    } ok[] = {
        {"8081", "127.0.0.1", 8081},   {":8082", "0.0.0.0", 8082},
        {"0.0.0.0:0", "0.0.0.0", 0},   {"gateway.internal:443", "gateway.internal", 443},
        {"\"[::]:8080\"", "::", 8080},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char y[512], err[512];
        struct gw_config *cfg = NULL;
        snprintf(y, sizeof(y), "listen: %s\nmodels: [{name: a, local: a.gguf}]\n", ok[i].in);
        int rc = parse(y, &cfg, err, sizeof(err));
        if (rc)
            test__fail(__FILE__, __LINE__, "%s: %s", ok[i].in, err);
        if (!cfg)
            continue;
        CHECK_STR(cfg->listen_host, ok[i].host);
        CHECK_EQ_INT(cfg->listen_port, ok[i].port);
        CHECK_STR(cfg->models[0].local.path, "a.gguf");
        gw_config_free(cfg);
    }
    static const char *const bad[] = {"127.0.0.1",    "127.0.0.1:99999", "127.0.0.1:http",
                                      "300.1.1.1:80", "::1:80",          "bad_host!:80",
                                      "\"[::g]:80\"", "[1, 2]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char y[512], err[512];
        snprintf(y, sizeof(y), "models: [{name: a, local: a.gguf}]\nlisten: %s\n", bad[i]);
        CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
        CHECK_HAS(err, "t.yaml:2:9: listen: ");
    }
}

TEST(config_env_secret_missing)
{
    char err[512];
    unsetenv("OPENAI_API_KEY");
    CHECK_EQ_INT(parse_bad(MINIMAL, err, sizeof(err)), GW_CONFIG_E_ENV);
    CHECK_STR(err,
              "t.yaml:8:14: models[1].api_key: environment variable OPENAI_API_KEY is not set");
    setenv("OPENAI_API_KEY", "", 1);
    CHECK_EQ_INT(parse_bad(MINIMAL, err, sizeof(err)), GW_CONFIG_E_ENV);
    CHECK_HAS(err, "OPENAI_API_KEY is empty");
    /* a stray newline in the variable is refused, and the value is not echoed */
    setenv("OPENAI_API_KEY", SECRET "\n", 1);
    CHECK_EQ_INT(parse_bad(MINIMAL, err, sizeof(err)), GW_CONFIG_E_ENV);
    CHECK_HAS(err, "control character");
    CHECK(!strstr(err, SECRET));
    char y[1024];
    with_models(y, sizeof(y), "");
    char *p = strstr(y, "literal-key");
    REQUIRE(p);
    memcpy(p, "env:1BAD_NAM", 12); /* same length as literal-key + 1: rewrite the line */
    p[12] = '\n';
    p[13] = 0;
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_HAS(err, "t.yaml:6:14: models[1].api_key: invalid environment variable name");
}

TEST(config_error_wrong_type)
{
    char err[512];
    setenv("OPENAI_API_KEY", SECRET, 1);
    char y[2048];
    snprintf(y, sizeof(y), "%s", MINIMAL);
    char *p = strstr(y, "2.50");
    REQUIRE(p);
    memcpy(p, "abc ", 4);
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(err, "t.yaml:10:30: models[1].price.input_per_mtok: expected a number, got \"abc\"");
    /* a quoted number is a string, not a number */
    with_models(y, sizeof(y), "    price: { input_per_mtok: \"1\" }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:30: models[1].price.input_per_mtok: expected a number, got \"1\"");
    with_models(y, sizeof(y), "    retries: { max: 1.5 }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:21: models[1].retries.max: expected an integer, got \"1.5\"");
    with_models(y, sizeof(y), "    timeouts: [1, 2]\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:15: models[1].timeouts: expected a mapping, got a list");
    with_models(y, sizeof(y), "    model:\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "models[1].model: expected a string, got null");
    CHECK_EQ_INT(parse_bad("models: {name: a}\n", err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(err, "t.yaml:1:9: models: expected a list, got a mapping");
    parse_bad("- a\n- b\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:1: the configuration must be a mapping");
    parse_bad("models: [{name: a, local: a.gguf}]\nlimits: { max_body_bytes: 3TiB }\n", err,
              sizeof(err));
    CHECK_HAS(err, "t.yaml:2:27: limits.max_body_bytes: expected an integer, got \"3TiB\"");
    parse_bad("models: [{name: a, local: {path: a.gguf, slots: 100000}}]\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:49: models[0].local.slots: must be between 0 and 256, got 100000");
}

TEST(config_error_unknown_key_suggests)
{
    char err[512], y[1024];
    with_models(y, sizeof(y), "    proivder_x: 1\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:5: models[1]: unknown key \"proivder_x\" (expected one of: name, ");
    with_models(y, sizeof(y), "    pricee: { input_per_mtok: 1 }\n");
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(err, "t.yaml:7:5: models[1]: unknown key \"pricee\" (did you mean \"price\"?)");
    parse_bad("listn: 1.2.3.4:80\nmodels: [{name: a, local: a.gguf}]\n", err, sizeof(err));
    CHECK_STR(err, "t.yaml:1:1: unknown key \"listn\" (did you mean \"listen\"?)");
    parse_bad("models: [{name: a, local: {path: a.gguf, ctx_sise: 5}}]\n", err, sizeof(err));
    CHECK_HAS(
        err, "t.yaml:1:42: models[0].local: unknown key \"ctx_sise\" (did you mean \"ctx_size\"?)");
    with_models(y, sizeof(y), "privacy: { action: block, detect: [email, ibna] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err,
              "t.yaml:7:43: privacy.detect[1]: unknown PII kind \"ibna\" (did you mean \"iban\"?)");
    with_models(y, sizeof(y), "routes: [{name: r, targets: [loc], strategy: fastest}]\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "routes[0].strategy: unknown strategy \"fastest\" (expected one of: ordered, "
                   "weighted, least_latency)");
    /* provider-only keys on a local model */
    parse_bad("models: [{name: a, local: a.gguf, api_key: x}]\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:35: models[0]: key \"api_key\" applies to provider models only");
}

TEST(config_error_duplicates)
{
    char err[512], y[1024];
    with_models(y, sizeof(y), "  - name: loc\n    local: x.gguf\n");
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(
        err, "t.yaml:7:11: models[2].name: duplicate model name \"loc\" (first defined at line 2)");
    with_models(y, sizeof(y),
                "routes:\n  - { name: r, targets: [loc] }\n  - { name: r, targets: [cloud] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err,
              "t.yaml:9:13: routes[1].name: duplicate route name \"r\" (first defined at line 8)");
    with_models(y, sizeof(y), "routes:\n  - { name: cloud, targets: [loc] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err,
              "t.yaml:8:13: routes[0].name: route name \"cloud\" is already a model name (line 4)");
    with_models(y, sizeof(y), "routes:\n  - { name: r, targets: [loc, loc] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:8:31: routes[0].targets[1]: model \"loc\" is listed twice");
    /* duplicate keys in one mapping are an error, not "last one wins" */
    with_models(y, sizeof(y), "    api_key: other\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:5: duplicate key \"api_key\" (first at line 6)");
}

TEST(config_error_bad_target)
{
    char err[512], y[1024];
    with_models(y, sizeof(y), "routes:\n  - name: r\n    targets: [clod, loc]\n");
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(
        err, "t.yaml:9:15: routes[0].targets[0]: unknown model \"clod\" (did you mean \"cloud\"?)");
    with_models(y, sizeof(y), "routes:\n  - name: r\n    targets: [{ model: zzzzzz }]\n");
    parse_bad(y, err, sizeof(err));
    CHECK_STR(err, "t.yaml:9:24: routes[0].targets[0].model: unknown model \"zzzzzz\"");
    with_models(y, sizeof(y),
                "routes:\n  - { name: r1, targets: [loc] }\n  - { name: r2, targets: [r1] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "routes[1].targets[0]: \"r1\" is a route; route targets must be models");
    with_models(y, sizeof(y), "routes:\n  - { name: r, targets: [] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:8:25: routes[0].targets: a route needs at least one target");
    with_models(y, sizeof(y), "routes:\n  - { name: r, targets: [loc], fallback: [nope] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "routes[0].fallback[0]: unknown model \"nope\"");
    with_models(y, sizeof(y), "routes:\n  - { name: r, targets: [{model: loc, weight: 0}] }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "routes[0].targets[0].weight: must be between 1 and 1000000, got 0");
}

TEST(config_error_privacy)
{
    char err[512], y[1024];
    with_models(y, sizeof(y), "privacy:\n  action: route_local\n");
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(
        err,
        "t.yaml:8:11: privacy: action route_local needs local_model: the name of a local model");
    with_models(y, sizeof(y), "privacy:\n  action: route_local\n  local_model: cloud\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err,
              "t.yaml:9:16: privacy.local_model: model \"cloud\" is a anthropic provider model");
    with_models(y, sizeof(y), "privacy:\n  action: route_local\n  local_model: lok\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err,
              "t.yaml:9:16: privacy.local_model: unknown model \"lok\" (did you mean \"loc\"?)");
    with_models(y, sizeof(y), "privacy: { action: hide }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:20: privacy.action: unknown privacy action \"hide\"");
    /* a per-model override inherits the top-level local_model... */
    struct gw_config *cfg = NULL;
    with_models(y, sizeof(y),
                "    privacy: { action: route_local }\n"
                "privacy: { action: allow, local_model: loc }\n");
    int rc = parse(y, &cfg, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "%s", err);
    REQUIRE(cfg);
    const struct gw_model *m = gw_config_find_model(cfg, "cloud");
    CHECK_EQ_INT(m->privacy.action, GW_PRIVACY_ROUTE_LOCAL);
    CHECK_STR(m->privacy.local_model, "loc");
    CHECK_EQ_INT(gw_config_model_privacy(cfg, m)->action, GW_PRIVACY_ROUTE_LOCAL);
    CHECK_EQ_INT(gw_config_model_privacy(cfg, gw_config_find_model(cfg, "loc"))->action,
                 GW_PRIVACY_ALLOW);
    gw_config_free(cfg);
    /* ...and without one it is an error at the override */
    with_models(y, sizeof(y), "    privacy: { action: route_local }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "t.yaml:7:24: models[1].privacy: action route_local needs local_model");
}

TEST(config_error_provider)
{
    char err[512];
    CHECK_EQ_INT(
        parse_bad("models:\n  - name: a\n    provider: openia\n    api_key: k\n", err, sizeof(err)),
        GW_CONFIG_E_INVALID);
    CHECK_STR(
        err,
        "t.yaml:3:15: models[0].provider: unknown provider \"openia\" (did you mean \"openai\"?)");
    parse_bad("models:\n  - name: a\n    provider: azure\n", err, sizeof(err));
    CHECK_HAS(err, "unknown provider \"azure\" (expected one of: openai, anthropic, gemini, "
                   "mistral, openai-compatible)");
    parse_bad("models:\n  - name: a\n    provider: openai-compatible\n", err, sizeof(err));
    CHECK_STR(err, "t.yaml:3:15: models[0]: provider openai-compatible needs base_url (e.g. "
                   "http://127.0.0.1:8000/v1)");
    parse_bad("models:\n  - name: a\n    provider: openai\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:2:5: models[0]: provider openai needs api_key");
    parse_bad("models:\n  - name: a\n    provider: openai-compatible\n    base_url: ftp://x\n", err,
              sizeof(err));
    CHECK_HAS(err, "t.yaml:4:15: models[0].base_url: expected an http:// or https:// URL");
    parse_bad("models:\n  - name: a\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:2:5: models[0]: a model needs local: { path: file.gguf } or provider:");
    parse_bad("models:\n  - name: a b\n    local: x\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:2:11: models[0].name: invalid name \"a b\"");
    parse_bad("models: []\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:9: models: at least one model is needed");
    parse_bad("listen: 1.2.3.4:5\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:1: missing key \"models\"");
}

TEST(config_error_negative_price)
{
    char err[512], y[1024];
    with_models(y, sizeof(y), "    price: { input_per_mtok: 1, output_per_mtok: -0.5 }\n");
    CHECK_EQ_INT(parse_bad(y, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(err, "t.yaml:7:50: models[1].price.output_per_mtok: must be >= 0, got -0.5");
    with_models(y, sizeof(y), "    price: { input_per_mtok: .inf }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(err, "expected a number, got \".inf\"");
    with_models(y, sizeof(y), "    timeouts: { connect_ms: 5000, total_ms: 1000 }\n");
    parse_bad(y, err, sizeof(err));
    CHECK_HAS(
        err, "t.yaml:7:15: models[1].timeouts: total_ms (1000) must be at least connect_ms (5000)");
}

TEST(config_dump_redacts_secrets)
{
    char err[512];
    struct gw_config *cfg = NULL, *again = NULL;
    setenv("OPENAI_API_KEY", SECRET, 1);
    const char *yaml =
        "models:\n"
        "  - name: a\n"
        "    provider: openai\n"
        "    api_key: env:OPENAI_API_KEY\n"
        "  - name: b\n"
        "    provider: openai-compatible\n"
        "    base_url: https://user:hunter2-PASS@llm.example.com/v1?key=QUERY-SECRET\n"
        "    api_key: literal-LITERAL-secret\n"
        "  - name: c\n"
        "    local: { path: \"dir with \\\"quotes\\\"/m.gguf\", slots: 2 }\n"
        "routes: [{ name: r, targets: [a, {model: b, weight: 2}], fallback: [c] }]\n"
        "privacy: { action: pseudonymize, detect: [email, person] }\n";
    int rc = parse(yaml, &cfg, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "%s", err);
    REQUIRE(cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f);
    CHECK_EQ_INT(gw_config_dump(cfg, f), 0);
    fclose(f);
    REQUIRE(text);
    CHECK(!strstr(text, SECRET));
    CHECK(!strstr(text, "LITERAL"));
    CHECK(!strstr(text, "hunter2"));
    CHECK(!strstr(text, "QUERY-SECRET"));
    CHECK_HAS(text, "api_key: \"***\"  # from env:OPENAI_API_KEY");
    CHECK_HAS(text, "base_url: \"https://***@llm.example.com/v1?***\"");
    CHECK_HAS(text, "listen: \"127.0.0.1:8080\"");
    /* the dump is a valid configuration with the same meaning (apart from the secrets) */
    rc = gw_config_parse(&again, text, len, "dump", err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "%s\n%s", err, text);
    REQUIRE(again);
    CHECK_EQ_INT(again->n_models, 3);
    CHECK_STR(again->models[0].upstream.api_key, "***");
    CHECK_STR(again->models[2].local.path, "dir with \"quotes\"/m.gguf");
    CHECK_EQ_INT(again->models[2].local.slots, 2);
    CHECK_EQ_INT(again->routes[0].targets[1].weight, 2);
    CHECK_STR(again->routes[0].fallback[0], "c");
    CHECK_EQ_INT(again->privacy.action, GW_PRIVACY_PSEUDONYMIZE);
    CHECK_EQ_INT(again->privacy.detect, (1u << GW_PII_EMAIL) | (1u << GW_PII_PERSON));
    CHECK_EQ_INT(again->models[0].upstream.timeouts.total_ms, 600000);
    gw_config_free(again);
    gw_config_free(cfg);
    free(text);
}

TEST(config_malformed_yaml)
{
    char err[512];
    /* bad indentation */
    CHECK_EQ_INT(parse_bad("models:\n  - name: a\n   local: x\n", err, sizeof(err)),
                 GW_CONFIG_E_SYNTAX);
    CHECK_STR(err, "t.yaml:3:4: did not find expected '-' indicator (while parsing a block "
                   "collection at line 2)");
    CHECK_EQ_INT(parse_bad("listen: 1\n  models: x\n", err, sizeof(err)), GW_CONFIG_E_SYNTAX);
    CHECK_STR(err, "t.yaml:2:9: mapping values are not allowed in this context");
    /* unclosed flow sequence */
    CHECK_EQ_INT(parse_bad("models: [{name: a, local: x}\nlisten: 1\n", err, sizeof(err)),
                 GW_CONFIG_E_SYNTAX);
    CHECK(!strncmp(err, "t.yaml:", 7));
    CHECK_HAS(err, "did not find expected ',' or ']'");
    CHECK_HAS(err, "while parsing a flow sequence at line 1");
    /* unclosed quote */
    CHECK_EQ_INT(parse_bad("listen: \"127.0.0.1:80\nmodels: []\n", err, sizeof(err)),
                 GW_CONFIG_E_SYNTAX);
    CHECK_HAS(err, "t.yaml:3:1: found unexpected end of stream");
    /* invalid UTF-8 */
    CHECK_EQ_INT(parse_bad("listen: \xff\xfe\xfd\n", err, sizeof(err)), GW_CONFIG_E_SYNTAX);
    CHECK_HAS(err, "t.yaml: byte ");
    CHECK_EQ_INT(parse_bad("", err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_STR(err, "t.yaml: the configuration is empty");
    CHECK_EQ_INT(parse_bad("# only a comment\n", err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK_EQ_INT(parse_bad("models: [{name: a, local: x}]\n---\nmodels: []\n", err, sizeof(err)),
                 GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:2:1: only one YAML document is allowed");
}

TEST(config_rejects_anchors_tags_merge)
{
    char err[512];
    CHECK_EQ_INT(parse_bad("models:\n  - &m {name: a, local: x}\n  - *m\n", err, sizeof(err)),
                 GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:2:5: YAML anchors (&m) and aliases are not supported");
    /* the billion-laughs shape stops at the first anchor, before any expansion */
    char bomb[4096];
    size_t o = 0;
    o += (size_t)snprintf(bomb + o, sizeof(bomb) - o, "a0: &a0 [lol, lol]\n");
    for (int i = 1; i < 30; i++)
        o += (size_t)snprintf(bomb + o, sizeof(bomb) - o, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d]\n", i,
                              i, i - 1, i - 1, i - 1, i - 1);
    CHECK_EQ_INT(parse_bad(bomb, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:1:5: YAML anchors");
    CHECK_EQ_INT(
        parse_bad("listen: !!str 1.2.3.4:5\nmodels: [{name: a, local: x}]\n", err, sizeof(err)),
        GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:1:9: YAML tags (tag:yaml.org,2002:str) are not supported");
    CHECK_EQ_INT(parse_bad("models: !custom [{name: a, local: x}]\n", err, sizeof(err)),
                 GW_CONFIG_E_LIMIT);
    CHECK_EQ_INT(parse_bad("models:\n  - <<: {name: a}\n    local: x\n", err, sizeof(err)),
                 GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:2:5: YAML merge keys (<<) are not supported");
    CHECK_EQ_INT(parse_bad("? [a, b]\n: c\n", err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "mapping keys must be plain strings");
}

TEST(config_rejects_huge_and_deep)
{
    char err[512];
    /* deep nesting: flow and block */
    size_t n = 100000;
    char *deep = malloc(2 * n + 32);
    REQUIRE(deep);
    memcpy(deep, "models: ", 8);
    memset(deep + 8, '[', n);
    memset(deep + 8 + n, ']', n);
    deep[8 + 2 * n] = '\n';
    deep[9 + 2 * n] = 0;
    CHECK_EQ_INT(parse_bad(deep, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "nesting deeper than 16 levels");
    char block[4096];
    size_t o = 0;
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(block + o, sizeof(block) - o, "%*sk%d:\n", i, "", i);
    CHECK_EQ_INT(parse_bad(block, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:17:17: nesting deeper than 16 levels");
    /* over the size cap, without reading it */
    CHECK_EQ_INT(
        gw_config_parse(&(struct gw_config *){NULL}, deep, (1u << 20) + 1, "big", err, sizeof(err)),
        GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "big: the configuration is 1048577 bytes, over the 1048576-byte limit");
    free(deep);
    /* a 5000-byte string */
    char *lng = malloc(6000);
    REQUIRE(lng);
    memcpy(lng, "listen: ", 8);
    memset(lng + 8, 'x', 5000);
    memcpy(lng + 5008, "\n", 2);
    CHECK_EQ_INT(parse_bad(lng, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:1:9: a string of 5000 bytes is over the 4096-byte limit");
    free(lng);
    /* 257 models */
    size_t cap = 300 * 48;
    char *many = malloc(cap);
    REQUIRE(many);
    o = (size_t)snprintf(many, cap, "models:\n");
    for (int i = 0; i < 257; i++)
        o += (size_t)snprintf(many + o, cap - o, "  - { name: m%d, local: m.gguf }\n", i);
    CHECK_EQ_INT(parse_bad(many, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_HAS(err, "t.yaml:2:3: models: 257 models, at most 256 are allowed");
    free(many);
    /* an embedded NUL from an escape */
    parse_bad("models: [{name: \"a\\0b\", local: x}]\n", err, sizeof(err));
    CHECK_HAS(err, "t.yaml:1:17: models[0].name: contains a control character");
    /* garbage bytes */
    static const char junk[] = "\x01\x02models\x00: [\x7f";
    CHECK(gw_config_parse(&(struct gw_config *){NULL}, junk, sizeof(junk) - 1, "j", err,
                          sizeof(err)) < 0);
    CHECK(err[0] != 0);
}

TEST(config_load_files)
{
    char err[512], path[512];
    struct gw_config *cfg = NULL;
    setenv("OPENAI_API_KEY", SECRET, 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    int rc = gw_config_load(&cfg, "examples/tandem.yaml", err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "%s", err);
    REQUIRE(cfg);
    CHECK(cfg->n_models >= 2);
    CHECK(cfg->n_routes >= 1);
    CHECK(gw_config_find_model(cfg, "local-small") != NULL);
    CHECK_STR(cfg->source, "examples/tandem.yaml");
    gw_config_free(cfg);

    snprintf(path, sizeof(path), "%s/tandem.yaml", test_tmpdir());
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(MINIMAL, f);
    fclose(f);
    REQUIRE(gw_config_load(&cfg, path, err, sizeof(err)) == 0);
    CHECK_EQ_INT(cfg->n_models, 2);
    gw_config_free(cfg);

    f = fopen(path, "w");
    REQUIRE(f);
    fputs("models:\n  - name: a\n    local: x\n    bogus: 1\n", f);
    fclose(f);
    CHECK_EQ_INT(gw_config_load(&cfg, path, err, sizeof(err)), GW_CONFIG_E_INVALID);
    CHECK(cfg == NULL);
    CHECK(!strncmp(err, path, strlen(path)));
    CHECK_HAS(err, ":4:5: models[0]: unknown key \"bogus\"");

    snprintf(path, sizeof(path), "%s/missing.yaml", test_tmpdir());
    CHECK_EQ_INT(gw_config_load(&cfg, path, err, sizeof(err)), GW_CONFIG_E_IO);
    CHECK_HAS(err, "missing.yaml: cannot open: No such file or directory");
    CHECK_EQ_INT(gw_config_load(&cfg, test_tmpdir(), err, sizeof(err)), GW_CONFIG_E_IO);

    /* over 1 MiB on disk */
    snprintf(path, sizeof(path), "%s/big.yaml", test_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f);
    for (int i = 0; i < (1 << 20) / 16 + 1; i++)
        fputs("# padding.......\n", f);
    fclose(f);
    CHECK_EQ_INT(gw_config_load(&cfg, path, err, sizeof(err)), GW_CONFIG_E_LIMIT);
    CHECK_EQ_INT(gw_config_parse(NULL, "a", 1, NULL, err, sizeof(err)), GW_CONFIG_E_ARG);
}

static void *parse_thread(void *arg)
{
    intptr_t bad = 0;
    for (int i = 0; i < 200; i++) {
        char err[256];
        struct gw_config *cfg = NULL;
        if (gw_config_parse(&cfg, MINIMAL, strlen(MINIMAL), "t", err, sizeof(err)) ||
            strcmp(cfg->routes[0].targets[1].model, "local-small"))
            bad++;
        gw_config_free(cfg);
    }
    (void)arg;
    return (void *)bad;
}

/* A reload builds a new config while the old one serves: parsing shares no state. */
TEST(config_parse_concurrently)
{
    setenv("OPENAI_API_KEY", SECRET, 1);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&th[i], NULL, parse_thread, NULL) == 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK_EQ_INT((intptr_t)bad, 0);
    }
}

/* docs/config.md shows examples/tandem.yaml verbatim: the documented example is the tested one. */
TEST(config_docs_example_matches)
{
    char *doc = NULL, *ex = NULL;
    size_t dl = 0, el = 0;
    FILE *f = fopen("docs/config.md", "r");
    REQUIRE(f);
    dl = fread(doc = malloc(1 << 20), 1, (1 << 20) - 1, f);
    fclose(f);
    doc[dl] = 0;
    f = fopen("examples/tandem.yaml", "r");
    REQUIRE(f);
    el = fread(ex = malloc(1 << 20), 1, (1 << 20) - 1, f);
    fclose(f);
    ex[el] = 0;
    CHECK(el > 100);
    CHECK(strstr(doc, ex) != NULL);
    free(doc);
    free(ex);
}

TEST(config_governance_keys)
{
    char err[512], buf[2048];
    struct gw_config *cfg = NULL;
    setenv("TANDEM_TEST_ADMIN", "admin-secret-value", 1);
    with_models(buf, sizeof(buf),
                "state: /var/lib/tandem/t.db\n"
                "admin_key: env:TANDEM_TEST_ADMIN\n"
                "audit: { signing_key: /etc/tandem/audit.key, include_text: true }\n"
                "local_cost:\n"
                "  watts: 150\n"
                "  usd_per_kwh: 0.3\n"
                "  hardware_usd_per_hour: 0.5\n"
                "  reference: { input_per_mtok: 2.5, output_per_mtok: 10 }\n");
    REQUIRE(parse(buf, &cfg, err, sizeof(err)) == 0);
    CHECK_STR(cfg->gov.state_path, "/var/lib/tandem/t.db");
    CHECK_STR(cfg->gov.admin_key, "admin-secret-value");
    CHECK_STR(cfg->gov.admin_key_env, "TANDEM_TEST_ADMIN");
    CHECK_STR(cfg->gov.audit_signing_key, "/etc/tandem/audit.key");
    CHECK(cfg->gov.audit_include_text);
    CHECK_NEAR(cfg->gov.local_cost.watts, 150, 1e-9);
    CHECK_NEAR(cfg->gov.local_cost.reference.output_per_mtok, 10, 1e-9);
    char *dump = NULL;
    size_t dlen = 0;
    FILE *f = open_memstream(&dump, &dlen);
    REQUIRE(f && gw_config_dump(cfg, f) == 0);
    fclose(f);
    CHECK(!strstr(dump, "admin-secret-value"));
    CHECK(strstr(dump, "include_text: true") != NULL);
    free(dump);
    gw_config_free(cfg);
    with_models(buf, sizeof(buf), "audit: { include_text: yes }\n");
    parse_bad(buf, err, sizeof(err));
    CHECK(strstr(err, "audit.include_text") != NULL);
    with_models(buf, sizeof(buf), "local_cost: { watts: -1 }\n");
    parse_bad(buf, err, sizeof(err));
    CHECK(strstr(err, "local_cost.watts") != NULL);
}

TEST(config_teams)
{
    char err[512], buf[2048];
    struct gw_config *cfg = NULL;
    with_models(buf, sizeof(buf),
                "teams:\n  - { name: lab, budget_usd_month: 50, rpm: 100 }\n  - { name: ops }\n");
    REQUIRE(parse(buf, &cfg, err, sizeof(err)) == 0);
    const struct gw_team *t = gw_config_find_team(cfg, "lab");
    REQUIRE(t);
    CHECK_NEAR(t->budget_usd_month, 50, 1e-9);
    CHECK_EQ_INT(t->rpm, 100);
    CHECK_EQ_INT(t->tpm, 0);
    CHECK(gw_config_find_team(cfg, "ops") != NULL);
    CHECK(gw_config_find_team(cfg, "nope") == NULL);
    gw_config_free(cfg);
    with_models(buf, sizeof(buf), "teams:\n  - { name: lab }\n  - { name: lab }\n");
    parse_bad(buf, err, sizeof(err));
    CHECK(strstr(err, "defined twice") != NULL);
    with_models(buf, sizeof(buf), "teams:\n  - { name: lab, rpn: 3 }\n");
    parse_bad(buf, err, sizeof(err));
    CHECK(strstr(err, "rpn") != NULL);
}
