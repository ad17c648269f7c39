/* The gateway configuration file (tandem.yaml): strict YAML parsing into plain structs. */
#ifndef TANDEM_GATEWAY_CONFIG_H
#define TANDEM_GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum gw_config_error {
    GW_CONFIG_OK = 0,
    GW_CONFIG_E_ARG = -1, /* bad parameter */
    GW_CONFIG_E_NOMEM = -2,
    GW_CONFIG_E_IO = -3,      /* the file cannot be read, or the dump cannot be written */
    GW_CONFIG_E_SYNTAX = -4,  /* not well-formed YAML (libyaml's own message) */
    GW_CONFIG_E_INVALID = -5, /* well-formed YAML that breaks the schema or a cross-check */
    GW_CONFIG_E_LIMIT = -6,   /* over a size, count or nesting bound, or unsupported YAML */
    GW_CONFIG_E_ENV = -7,     /* an `env:VAR` secret whose variable is unset or unusable */
};
const char *gw_config_strerror(int err);

/* Hard bounds on what a configuration may contain. */
#define GW_CONFIG_MAX_FILE_BYTES (1u << 20)
#define GW_CONFIG_MAX_MODELS 256
#define GW_CONFIG_MAX_ROUTES 256
#define GW_CONFIG_MAX_TARGETS 64  /* per route, targets and fallback each */
#define GW_CONFIG_MAX_STRING 4096 /* bytes in any one scalar */
#define GW_CONFIG_MAX_NAME 128    /* bytes in a model or route name */
#define GW_CONFIG_MAX_DEPTH 16    /* nesting of mappings and lists */

enum gw_model_kind {
    GW_MODEL_LOCAL,    /* a GGUF file run by the local engine */
    GW_MODEL_PROVIDER, /* an upstream API */
};

enum gw_provider {
    GW_PROVIDER_OPENAI,
    GW_PROVIDER_ANTHROPIC,
    GW_PROVIDER_GEMINI,
    GW_PROVIDER_MISTRAL,
    GW_PROVIDER_OPENAI_COMPATIBLE,
    GW_PROVIDER_COUNT
};
/* The config spelling ("openai", "openai-compatible", ...); "?" when out of range. */
const char *gw_provider_name(enum gw_provider p);
/* The base URL used when a model names none; NULL for openai-compatible (it must give one). */
const char *gw_provider_default_base_url(enum gw_provider p);

enum gw_privacy_action {
    GW_PRIVACY_ALLOW,        /* send as is (detections are still counted and audited) */
    GW_PRIVACY_ROUTE_LOCAL,  /* a prompt with PII goes to privacy.local_model instead */
    GW_PRIVACY_PSEUDONYMIZE, /* PII replaced by placeholders upstream, restored in the answer */
    GW_PRIVACY_BLOCK,        /* a prompt with PII is refused */
    GW_PRIVACY_ACTION_COUNT
};
const char *gw_privacy_action_name(enum gw_privacy_action a);

/* Kinds of personal or secret data the detector can look for; `detect` is a bit set of
 * (1u << kind). */
enum gw_pii_kind {
    GW_PII_EMAIL,
    GW_PII_PHONE,
    GW_PII_CARD,
    GW_PII_IBAN,
    GW_PII_IPV4,
    GW_PII_IPV6,
    GW_PII_SSN,
    GW_PII_NATIONAL_ID,
    GW_PII_API_KEY,
    GW_PII_PRIVATE_KEY,
    GW_PII_PERSON,
    GW_PII_COUNT
};
#define GW_PII_ALL ((1u << GW_PII_COUNT) - 1u)
const char *gw_pii_kind_name(enum gw_pii_kind k);

enum gw_route_strategy {
    GW_ROUTE_ORDERED,       /* first healthy target, the next on failure */
    GW_ROUTE_WEIGHTED,      /* random by target weight, the others as fallback */
    GW_ROUTE_LEAST_LATENCY, /* the target with the lowest recent latency first */
    GW_ROUTE_STRATEGY_COUNT
};
const char *gw_route_strategy_name(enum gw_route_strategy s);

/* Where a value came from in the file (1-based), for errors found after loading. */
struct gw_config_pos {
    int line, col;
};

struct gw_privacy {
    enum gw_privacy_action action;
    const char *local_model; /* NULL or the name of a local model (required for route_local) */
    unsigned detect;         /* bit set of enum gw_pii_kind; default GW_PII_ALL */
    struct gw_config_pos pos;
};

/* Engine options of a local model; 0 means "the engine's default". */
struct gw_local {
    const char *path; /* GGUF file, as written (relative paths are from the working dir) */
    int slots;        /* parallel sequences (`slots`, or its synonym `parallel`) */
    int ctx_size;     /* context positions per slot */
    int threads;      /* compute threads */
    int batch;        /* tokens per decode step */
};

struct gw_price {
    double input_per_mtok;  /* USD per million prompt tokens, >= 0 */
    double output_per_mtok; /* USD per million completion tokens, >= 0 */
};

struct gw_timeouts {
    int connect_ms;    /* TCP + TLS handshake (default 10 000) */
    int first_byte_ms; /* request sent to first response byte (default 60 000) */
    int total_ms;      /* whole exchange, streaming included (default 600 000) */
};

struct gw_retries {
    int max;        /* extra attempts after a retryable failure (default 2) */
    int backoff_ms; /* first delay, doubled per attempt (default 250) */
};

struct gw_upstream {
    enum gw_provider provider;
    const char *base_url;    /* never NULL after loading; no trailing '/' */
    const char *api_key;     /* SECRET: the resolved key, or NULL when none is configured */
    const char *api_key_env; /* the variable name when written as `env:VAR`, else NULL */
    const char *model;       /* upstream model id (default: the model's name) */
    struct gw_price price;
    struct gw_timeouts timeouts;
    struct gw_retries retries;
};

struct gw_model {
    const char *name; /* what clients put in "model" */
    enum gw_model_kind kind;
    struct gw_local local;       /* kind == GW_MODEL_LOCAL */
    struct gw_upstream upstream; /* kind == GW_MODEL_PROVIDER */
    bool has_privacy;            /* a per-model override of the top-level privacy policy */
    struct gw_privacy privacy;
    struct gw_config_pos pos;
};

struct gw_route_target {
    const char *model; /* the name of a model in gw_config.models */
    int weight;        /* >= 1; default 1 (only the weighted strategy uses it) */
};

struct gw_route {
    const char *name; /* public name clients may put in "model" */
    enum gw_route_strategy strategy;
    struct gw_route_target *targets;
    size_t n_targets;
    const char **fallback; /* model names tried, in order, after every target failed */
    size_t n_fallback;
    struct gw_config_pos pos;
};

struct gw_limits {
    size_t max_body_bytes; /* request bodies above are refused with 413 (default 4 MiB) */
    int max_messages;      /* messages per chat request (default 1024) */
    int max_tokens;        /* cap on a request's max_tokens; 0: no cap (default 0) */
    int queue;             /* requests waiting per local model before 503 (default 64) */
};

/* Governance: where state lives, the admin key, the audit log, and what local serving costs. */
struct gw_local_cost {
    double watts;                 /* power drawn while serving (default 0) */
    double usd_per_kwh;           /* energy price (default 0) */
    double hardware_usd_per_hour; /* amortized hardware (default 0) */
    struct gw_price reference;    /* what the same tokens would cost in the cloud, for "saved"
                                   * (default 0: no savings reported) */
};

/* A team: the budget and rate limits its keys share (keys name their team). */
struct gw_team {
    const char *name;
    double budget_usd_month; /* 0: none */
    int rpm, tpm;            /* 0: unlimited */
};

struct gw_governance {
    const char *state_path;     /* SQLite database file, or NULL: $TANDEM_HOME/tandem.db */
    const char *admin_key;      /* SECRET: the admin key (for admin endpoints), or NULL */
    const char *admin_key_env;  /* its variable when written as env:VAR */
    const char *audit_signing_key; /* PEM file of the Ed25519 key that signs tree heads, or NULL */
    bool audit_include_text;    /* store prompt/response text in the audit log (default no) */
    struct gw_local_cost local_cost;
    struct gw_team *teams;
    size_t n_teams;
};

/* A loaded configuration. Every string and array is owned by the struct and lives until
 * gw_config_free; the struct is immutable after loading, so any number of threads may read
 * it while a new one is being built (SIGHUP reload). */
struct gw_config {
    const char *source;      /* the name given for errors (the file path) */
    const char *listen_host; /* "127.0.0.1", "::1", "0.0.0.0", a host name */
    int listen_port;         /* 0..65535 (0: an ephemeral port) */
    struct gw_model *models;
    size_t n_models;
    struct gw_route *routes;
    size_t n_routes;
    struct gw_privacy privacy; /* default: action allow, detect all */
    struct gw_limits limits;
    struct gw_governance gov;
    struct gw_mem *mem__; /* internal: the allocations behind every pointer above */
};

/* Parses `len` bytes of YAML text. `name_for_errors` (may be NULL: "<config>") prefixes every
 * message as `name:line:col: key.path: problem`. `env:VAR` secrets are resolved with getenv
 * now; the loader has no other side effects and no global state, so it is thread-safe as
 * long as nobody calls setenv concurrently. On success *out owns a new config (free it with
 * gw_config_free); on error *out is NULL, err holds one line, and a negative
 * enum gw_config_error is returned. Error messages never contain a secret's value. */
int gw_config_parse(struct gw_config **out, const char *text, size_t len,
                    const char *name_for_errors, char *err, size_t errlen);

/* Reads the file at `path` (a regular file of at most GW_CONFIG_MAX_FILE_BYTES) and parses
 * it as gw_config_parse does, with `path` as the name in errors. */
int gw_config_load(struct gw_config **out, const char *path, char *err, size_t errlen);

/* Frees the config and wipes its memory (it holds secrets). Accepts NULL. Every pointer
 * obtained from it becomes invalid. */
void gw_config_free(struct gw_config *cfg);

/* The model or route called `name`, or NULL. Pointers stay valid until gw_config_free. */
const struct gw_model *gw_config_find_model(const struct gw_config *cfg, const char *name);
const struct gw_route *gw_config_find_route(const struct gw_config *cfg, const char *name);
const struct gw_team *gw_config_find_team(const struct gw_config *cfg, const char *name);

/* The privacy policy that applies to requests served by `model`: its override if it has
 * one, else the top-level policy. `model` may be NULL (top-level). */
const struct gw_privacy *gw_config_model_privacy(const struct gw_config *cfg,
                                                 const struct gw_model *model);

/* Writes the effective configuration (defaults filled in) as YAML that gw_config_parse
 * accepts again. Every secret is written as "***": API keys, and passwords or query strings
 * in URLs. Returns 0 or GW_CONFIG_E_IO when the stream reports an error. */
int gw_config_dump(const struct gw_config *cfg, FILE *f);

#endif
