/* Governance on the request path: API keys, model allow-lists, rate limits, budgets (reserve
 * before, settle after), usage records and the audit log. */
#ifndef TANDEM_SERVER_GOVERN_H
#define TANDEM_SERVER_GOVERN_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/config.h"
#include "server/api_openai.h"
#include "server/http.h"
#include "store/store.h"

struct governance;

/* Opens the state store (cfg->gov.state_path, else $TANDEM_HOME/tandem.db), the rate limiter
 * and the audit log (signing heads with cfg->gov.audit_signing_key when given). */
int govern_open(struct governance **out, const struct gw_config *cfg, char *err, size_t errlen);
/* Signs a last tree head and closes everything. Accepts NULL. */
void govern_close(struct governance *g);
/* True when no API key is active: the server then runs open (loopback only). */
bool govern_open_mode(struct governance *g);

/* What admission decided for one request. */
struct admission {
    bool keyed;                 /* a valid key was presented */
    struct store_key key;
    int64_t reservation;        /* budget reservation to settle, or 0 */
};

/* Checks the request's key (Authorization: Bearer or x-api-key), its model allow-list, its
 * rate limits and its team's (`tokens` is the request's token estimate; teams are defined in
 * cfg) and reserves `max_cost_usd` against the key's and the team's monthly budgets. 0, or -1 with err filled (401, 403, 429 with Retry-After in *retry_s). */
int govern_admit(struct governance *g, const struct gw_config *cfg, struct http_req *r,
                 const char *model, int64_t tokens, double max_cost_usd, struct admission *adm,
                 struct api_error *err, int *retry_s);
/* True when the request carries the admin key (config admin_key, or a key with admin set). */
bool govern_is_admin(struct governance *g, struct http_req *r, const struct gw_config *cfg);

/* Records a finished request: settles its reservation with the usage row (or inserts the row),
 * adds the completion tokens to its rate window, and appends the audit record (texts hashed,
 * kept only when the configuration says so). */
struct govern_record {
    const char *request_id, *model, *target, *target_kind, *privacy, *outcome;
    int http_status;
    int64_t prompt_tokens, completion_tokens, latency_ms, ttft_ms, pii_count;
    double cost_usd, local_cost_usd, cloud_equiv_usd;
    const char *prompt_text, *response_text;  /* kept when the config says so, else NULL */
    size_t prompt_len, response_len;
    const uint8_t *prompt_sha256, *response_sha256;  /* 32 bytes each: used when a text is NULL */
};
void govern_finish(struct governance *g, const struct admission *adm, const struct govern_record *rec);

/* Whether the audit log keeps texts (else only their hashes). */
bool govern_include_text(const struct governance *g);
/* The state store (for GET /v1/usage). */
struct store *govern_store(struct governance *g);

#endif
