/* Routing policy, kept free of I/O so that it is unit-tested as pure functions: which targets a
 * request may go to and in what order (strategy, circuit breakers, privacy), and how long to
 * wait before a retry. */
#ifndef TANDEM_GATEWAY_ROUTE_H
#define TANDEM_GATEWAY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"

#define ROUTE_MAX_PLAN 64

/* Health of one target, as the circuit breaker and least-latency ordering see it. Updated by
 * route_health_record; read by route_plan. Plain data: the caller serializes access. */
struct route_health {
    int consecutive_failures;
    int64_t open_until_ms;   /* the circuit is open (target skipped) until then */
    bool probing;            /* half-open: one request is testing the target ... */
    int64_t probe_since_ms;  /* ... since then (a probe never reported expires after open_ms) */
    double latency_ms;       /* exponentially weighted moving average (0: unknown) */
    uint64_t successes, failures;
};

struct route_breaker_config {
    int failures_to_open;    /* consecutive failures that open the circuit (default 5) */
    int open_ms;             /* how long it stays open before a probe (default 30 000) */
};
void route_breaker_config_default(struct route_breaker_config *c);

/* Records the outcome of one attempt on a target at time now_ms. */
void route_health_record(struct route_health *h, const struct route_breaker_config *c, bool ok,
                         double latency_ms, int64_t now_ms);
/* May a request go to the target now? Closed: yes. Open: no, until open_until_ms passes; then
 * one request (this one: sets probing) may probe it (half-open). */
bool route_health_admit(struct route_health *h, const struct route_breaker_config *c,
                        int64_t now_ms);

/* The privacy decision for a request. */
enum route_privacy_outcome {
    ROUTE_PRIVACY_PASS,         /* no PII found, or the policy allows it */
    ROUTE_PRIVACY_LOCAL,        /* PII found: only privacy.local_model may serve it */
    ROUTE_PRIVACY_PSEUDONYMIZE, /* PII found: cloud targets get placeholders */
    ROUTE_PRIVACY_BLOCK,        /* PII found: refuse (403) */
};

struct route_plan {
    const struct gw_model *targets[ROUTE_MAX_PLAN];  /* in the order to try */
    size_t n;
    enum route_privacy_outcome privacy;
    const struct gw_privacy *policy;   /* the policy that applied (NULL: none configured) */
};

enum route_error {
    ROUTE_OK = 0,
    ROUTE_E_UNKNOWN = -1,    /* no model or route of that name: 404 */
    ROUTE_E_BLOCKED = -2,    /* privacy block: 403 */
    ROUTE_E_NO_TARGET = -3,  /* every target is unhealthy (circuits open): 503 */
};

/* Plans a request for public name `name`: a model (one target), or a route (its targets in the
 * order of its strategy, then its fallbacks; duplicates removed). pii_found: the detector
 * found PII of a kind the applicable policy detects (the caller scans with that policy's
 * `detect` set: see route_privacy_policy). Targets whose circuit is open are left out (not
 * admitted: health[] indexes config->models). With route_local, the plan is just the local
 * model. `rnd` is a uniform random number for the weighted strategy. health may be NULL. */
int route_plan(const struct gw_config *cfg, const char *name, bool pii_found,
               struct route_health *health, const struct route_breaker_config *breaker,
               int64_t now_ms, uint64_t rnd, struct route_plan *out);

/* The privacy policy that applies to `name` (a model's override, else the top-level policy;
 * for a route, the strictest policy of its targets), or NULL when no policy is configured. */
const struct gw_privacy *route_privacy_policy(const struct gw_config *cfg, const char *name);

/* Delay before retry number `attempt` (1 = the first retry): base * 2^(attempt-1), capped at
 * max_ms, with "full jitter" (uniform in [0, that]) from rnd; never less than retry_after_ms
 * when the upstream asked for it. */
int route_backoff_ms(int base_ms, int attempt, int max_ms, int retry_after_ms, uint64_t rnd);

#endif
