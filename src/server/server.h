/* The OpenAI-compatible server: routes HTTP requests to local models (and, later, gateway
 * targets), streaming with SSE. */
#ifndef TANDEM_SERVER_SERVER_H
#define TANDEM_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/local.h"
#include "server/api_openai.h"
#include "server/http.h"

struct server_config {
    struct http_config http;
    struct api_limits limits;
    /* Either a gateway configuration file (docs/config.md: local models, providers, routes,
     * privacy) ... */
    const char *config_path;
    bool listen_override;               /* with a file: http.host/port beat its `listen` */
    /* ... or local models given on the command line (name and path of each). */
    const struct local_config *models;
    int n_models;
    /* Engine options for local models that do not set their own (0: engine defaults). */
    int default_slots, default_ctx, default_threads, default_batch;
    int queue_max;                      /* per local model (0: 64) */
    int shutdown_grace_s;               /* running streams get this long on stop (default 10) */
};
void server_config_default(struct server_config *cfg);

struct server;

/* Loads every model, then listens. Errors name the model or address. */
int server_start(struct server **out, const struct server_config *cfg, char *err, size_t errlen);
int server_port(const struct server *s);
const char *server_host(const struct server *s);  /* the listen address */
/* Re-reads the configuration file and switches to it: requests already running finish on the
 * old one; local models whose file and options did not change stay loaded. On error the old
 * configuration stays. */
int server_reload(struct server *s, char *err, size_t errlen);
/* Graceful stop: no new requests, running streams end within the grace period (finished or
 * ended with finish_reason "cancelled" and [DONE]), then models are freed. Accepts NULL. */
void server_stop(struct server *s);

#endif
