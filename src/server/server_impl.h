/* Internals shared by the server's files: the served state (config, local models, health)
 * and the generation handler. */
#ifndef TANDEM_SERVER_IMPL_H
#define TANDEM_SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gateway/config.h"
#include "gateway/local.h"
#include "gateway/route.h"
#include "gateway/upstream.h"
#include "server/api_openai.h"
#include "server/http.h"
#include "server/govern.h"
#include "server/metrics.h"
#include "server/server.h"

struct chat_template;

/* A loaded local model, shared by every configuration that names it with the same options
 * (a reload keeps it loaded). */
struct served_local {
    atomic_int refs;
    struct local_model *lm;
    const struct tandem_model *m;
    struct chat_template *tmpl;
    char bos[64], eos[64];
    const char *end_of_turn;  /* stop string of the template family, or NULL */
    char special_first[257];  /* the distinct first bytes of control tokens' texts */
    char *key;                /* path + options: what makes two entries the same model */
};

/* Everything a request needs, swapped as a whole on reload; a request holds a reference for
 * its whole life, so a reload never pulls anything from under it. */
struct served_state {
    atomic_int refs;
    struct gw_config *cfg;
    struct served_local **locals;      /* [cfg->n_models]; NULL for provider models */
    struct route_health *health;       /* [cfg->n_models], guarded by health_mu */
    pthread_mutex_t health_mu;
    struct api_limits limits;
};

struct server {
    struct http_server *http;
    struct upstream_pool *pool;
    pthread_mutex_t state_mu;
    struct served_state *state;        /* current; take with server__state_get */
    struct route_breaker_config breaker;
    struct server_config cfg;
    char *config_path;                 /* for reloads; NULL when built from -m options */
    char *host;                        /* the listen address (owned) */
    int grace_s;
    int64_t started;
    struct metrics_tandem *metrics;    /* GET /metrics */
    struct governance *gov;            /* keys, budgets, usage, audit */
};

/* A reference to the current state; release it with server__state_put. */
struct served_state *server__state_get(struct server *s);
void server__state_put(struct served_state *st);

/* HTTP answers with an error in the client's API shape. */
void server__respond_error(struct http_req *r, const struct api_error *e, bool anthropic);
void server__respond_json(struct http_req *r, int status, char *body);

/* Monotonic clock in milliseconds (circuit breakers, latencies). */
int64_t server__now_ms(void);

/* Tokenizes text into a malloc'd array (*n tokens), NULL on failure. */
int32_t *server__tokenize(const struct tandem_model *m, const char *text, size_t len,
                          bool add_special, bool parse_special, int *n);

/* The inbound APIs a generation can come from. */
enum client_api { CLIENT_OPENAI_CHAT, CLIENT_OPENAI_COMPLETION, CLIENT_ANTHROPIC };

/* POST /v1/chat/completions, /v1/completions, /v1/messages. */
void server__handle_generate(struct server *s, struct http_req *r, enum client_api api);

#endif
