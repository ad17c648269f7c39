/* The OpenAI-compatible server: routes HTTP requests to local models (and, later, gateway
 * targets), streaming with SSE. */
#ifndef TANDEM_SERVER_SERVER_H
#define TANDEM_SERVER_SERVER_H

#include <stddef.h>

#include "gateway/local.h"
#include "server/api_openai.h"
#include "server/http.h"

struct server_config {
    struct http_config http;
    struct api_limits limits;
    const struct local_config *models;  /* [n_models]; each name is what clients ask for */
    int n_models;
    int shutdown_grace_s;               /* running streams get this long on stop (default 10) */
};
void server_config_default(struct server_config *cfg);

struct server;

/* Loads every model, then listens. Errors name the model or address. */
int server_start(struct server **out, const struct server_config *cfg, char *err, size_t errlen);
int server_port(const struct server *s);
/* Graceful stop: no new requests, running streams end within the grace period (finished or
 * ended with finish_reason "cancelled" and [DONE]), then models are freed. Accepts NULL. */
void server_stop(struct server *s);

#endif
