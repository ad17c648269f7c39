/* Routing policy: target order per strategy, circuit breakers, privacy outcome, backoff. */
#include "gateway/route.h"

#include <string.h>

void route_breaker_config_default(struct route_breaker_config *c)
{
    c->failures_to_open = 5;
    c->open_ms = 30000;
}

void route_health_record(struct route_health *h, const struct route_breaker_config *c, bool ok,
                         double latency_ms, int64_t now_ms)
{
    h->probing = false;
    if (ok) {
        h->successes++;
        h->consecutive_failures = 0;
        h->open_until_ms = 0;
        h->latency_ms = h->latency_ms > 0 ? 0.8 * h->latency_ms + 0.2 * latency_ms : latency_ms;
        return;
    }
    h->failures++;
    h->consecutive_failures++;
    /* A failed probe reopens at once; otherwise the threshold decides. */
    if (h->open_until_ms || h->consecutive_failures >= c->failures_to_open)
        h->open_until_ms = now_ms + c->open_ms;
}

bool route_health_admit(struct route_health *h, const struct route_breaker_config *c,
                        int64_t now_ms)
{
    if (!h->open_until_ms)
        return true;
    if (now_ms < h->open_until_ms || (h->probing && now_ms - h->probe_since_ms < c->open_ms))
        return false;
    h->probing = true;  /* half-open: this request is the probe */
    h->probe_since_ms = now_ms;
    return true;
}

static int model_index(const struct gw_config *cfg, const struct gw_model *m)
{
    return (int)(m - cfg->models);
}

static bool plan_has(const struct route_plan *p, const struct gw_model *m)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->targets[i] == m)
            return true;
    return false;
}

static void plan_add(struct route_plan *p, const struct gw_model *m)
{
    if (m && p->n < ROUTE_MAX_PLAN && !plan_has(p, m))
        p->targets[p->n++] = m;
}

/* Severity order of privacy actions: a route takes its strictest target's policy. */
static int strictness(enum gw_privacy_action a)
{
    switch (a) {
    case GW_PRIVACY_BLOCK: return 3;
    case GW_PRIVACY_ROUTE_LOCAL: return 2;
    case GW_PRIVACY_PSEUDONYMIZE: return 1;
    default: return 0;
    }
}

const struct gw_privacy *route_privacy_policy(const struct gw_config *cfg, const char *name)
{
    const struct gw_model *m = gw_config_find_model(cfg, name);
    if (m)
        return gw_config_model_privacy(cfg, m);
    const struct gw_route *r = gw_config_find_route(cfg, name);
    if (!r)
        return gw_config_model_privacy(cfg, NULL);
    const struct gw_privacy *best = NULL;
    for (size_t i = 0; i < r->n_targets + r->n_fallback; i++) {
        const char *tn = i < r->n_targets ? r->targets[i].model : r->fallback[i - r->n_targets];
        const struct gw_privacy *p = gw_config_model_privacy(cfg, gw_config_find_model(cfg, tn));
        if (p && (!best || strictness(p->action) > strictness(best->action)))
            best = p;
    }
    return best ? best : gw_config_model_privacy(cfg, NULL);
}

/* Orders a route's targets by its strategy into `out` (before filtering by health). */
static void order_targets(const struct gw_config *cfg, const struct gw_route *r,
                          const struct route_health *health, uint64_t rnd, struct route_plan *out)
{
    const size_t n = r->n_targets < ROUTE_MAX_PLAN ? r->n_targets : ROUTE_MAX_PLAN;
    const struct gw_model *ms[ROUTE_MAX_PLAN];
    int weights[ROUTE_MAX_PLAN];
    for (size_t i = 0; i < n; i++) {
        ms[i] = gw_config_find_model(cfg, r->targets[i].model);
        weights[i] = r->targets[i].weight > 0 ? r->targets[i].weight : 1;
    }
    if (r->strategy == GW_ROUTE_WEIGHTED) {
        /* Draw without replacement by weight: the first pick gets most requests, the rest
         * follow as fallbacks in weighted-random order too. */
        bool used[ROUTE_MAX_PLAN] = {false};
        uint64_t x = rnd ? rnd : 0x9E3779B97F4A7C15ull;
        for (size_t k = 0; k < n; k++) {
            long total = 0;
            for (size_t i = 0; i < n; i++)
                total += used[i] ? 0 : weights[i];
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            long pick = (long)(x % (uint64_t)total);
            for (size_t i = 0; i < n; i++) {
                if (used[i])
                    continue;
                if (pick < weights[i]) {
                    used[i] = true;
                    plan_add(out, ms[i]);
                    break;
                }
                pick -= weights[i];
            }
        }
    } else if (r->strategy == GW_ROUTE_LEAST_LATENCY && health) {
        /* Lowest moving-average latency first; targets never measured go first (so that
         * every target gets measured), in configuration order. */
        size_t idx[ROUTE_MAX_PLAN];
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0; j--) {
                const double a = ms[idx[j - 1]] ? health[model_index(cfg, ms[idx[j - 1]])].latency_ms : 0;
                const double b = ms[idx[j]] ? health[model_index(cfg, ms[idx[j]])].latency_ms : 0;
                if (b < a) {
                    const size_t t = idx[j];
                    idx[j] = idx[j - 1];
                    idx[j - 1] = t;
                } else {
                    break;
                }
            }
        for (size_t i = 0; i < n; i++)
            plan_add(out, ms[idx[i]]);
    } else {
        for (size_t i = 0; i < n; i++)
            plan_add(out, ms[i]);
    }
    for (size_t i = 0; i < r->n_fallback; i++)
        plan_add(out, gw_config_find_model(cfg, r->fallback[i]));
}

int route_plan(const struct gw_config *cfg, const char *name, bool pii_found,
               struct route_health *health, const struct route_breaker_config *breaker,
               int64_t now_ms, uint64_t rnd, struct route_plan *out)
{
    struct route_breaker_config defaults;
    if (!breaker) {
        route_breaker_config_default(&defaults);
        breaker = &defaults;
    }
    memset(out, 0, sizeof(*out));
    const struct gw_model *m = gw_config_find_model(cfg, name);
    const struct gw_route *r = m ? NULL : gw_config_find_route(cfg, name);
    if (!m && !r)
        return ROUTE_E_UNKNOWN;
    struct route_plan all = {0};
    if (m)
        plan_add(&all, m);
    else
        order_targets(cfg, r, health, rnd, &all);
    out->policy = route_privacy_policy(cfg, name);
    if (pii_found && out->policy) {
        switch (out->policy->action) {
        case GW_PRIVACY_BLOCK:
            out->privacy = ROUTE_PRIVACY_BLOCK;
            return ROUTE_E_BLOCKED;
        case GW_PRIVACY_ROUTE_LOCAL: {
            /* Local targets of the plan may serve it as they are; otherwise the policy's
             * local model. Cloud targets never see it. */
            out->privacy = ROUTE_PRIVACY_LOCAL;
            struct route_plan local = {0};
            for (size_t i = 0; i < all.n; i++)
                if (all.targets[i]->kind == GW_MODEL_LOCAL)
                    plan_add(&local, all.targets[i]);
            if (out->policy->local_model)
                plan_add(&local, gw_config_find_model(cfg, out->policy->local_model));
            all = local;
            break;
        }
        case GW_PRIVACY_PSEUDONYMIZE:
            out->privacy = ROUTE_PRIVACY_PSEUDONYMIZE;
            break;
        default:
            break;
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        const struct gw_model *t = all.targets[i];
        if (health && !route_health_admit(&health[model_index(cfg, t)], breaker, now_ms))
            continue;
        plan_add(out, t);
    }
    return out->n ? ROUTE_OK : ROUTE_E_NO_TARGET;
}

int route_backoff_ms(int base_ms, int attempt, int max_ms, int retry_after_ms, uint64_t rnd)
{
    if (attempt < 1)
        attempt = 1;
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    const int jittered = (int)(rnd % (uint64_t)(d + 1));
    return jittered > retry_after_ms ? jittered : retry_after_ms;
}
