/* Sampler: every stage on hand-made logits, the chain, reproducibility, logprobs, stop strings. */
#include "test.h"

#include <float.h>
#include <stdint.h>

#include "engine/sampler.h"

/* ---- helpers ---- */

#define MAXC 64

struct cands {
    struct sampler_candidate d[MAXC];
    struct sampler_candidates c;
};

static void cands_init(struct cands *x, const float *logits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x->d[i] = (struct sampler_candidate){(int32_t)i, logits[i], 0.0f};
    x->c = (struct sampler_candidates){x->d, n, false, true, -1};
}

static void apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    st->iface->apply(st, c);
}

/* logit of token id among the current candidates, or NAN if it was cut */
static float logit_of(const struct sampler_candidates *c, int32_t id)
{
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].id == id)
            return c->data[i].logit;
    return NAN;
}

static int has(const struct sampler_candidates *c, int32_t id)
{
    return !isnan(logit_of(c, id));
}

static struct sampler_chain *chain_of(const struct sampler_config *cfg, int32_t n_vocab)
{
    struct sampler_chain *c = NULL;
    int rc = sampler_chain_new(&c, cfg, n_vocab);
    if (rc)
        fprintf(stderr, "    sampler_chain_new: %s\n", sampler_strerror(rc));
    return c;
}

static void config_plain(struct sampler_config *cfg, float temperature, uint64_t seed)
{
    sampler_config_default(cfg);
    cfg->temperature = temperature;
    cfg->top_k = 0;
    cfg->top_p = 1.0f;
    cfg->min_p = 0.0f;
    cfg->seed = seed;
}

/* A deterministic pseudo-random float in [-range, range) for building test logits. */
static float test_rand(uint64_t *s, float range)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0) * range;
}

/* ---- ordering helpers ---- */

static int cmp_ref(const void *a, const void *b)
{
    const struct sampler_candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

TEST(sampler_sort_and_select_total_order)
{
    enum { N = 5000 };
    static struct sampler_candidate a[N], ref[N];
    uint64_t s = 7;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            /* round 1: many ties; round 2: already sorted; round 3: reversed */
            float v = round == 1 ? (float)((int)test_rand(&s, 5.0f)) : test_rand(&s, 10.0f);
            if (round == 2)
                v = (float)(N - i);
            if (round == 3)
                v = (float)i;
            a[i] = ref[i] = (struct sampler_candidate){i, v, 0};
        }
        qsort(ref, N, sizeof(ref[0]), cmp_ref);
        sampler__sort(a, N);
        int same = 1;
        for (int i = 0; i < N; i++)
            same &= a[i].id == ref[i].id;
        CHECK(same);
        /* select: shuffle back, then the k best must be exactly ref[0..k) as a set */
        for (int i = 0; i < N; i++)
            a[i] = ref[(i * 7919) % N];
        size_t k = 37 + (size_t)round * 500;
        sampler__select(a, N, k);
        sampler__sort(a, k);
        same = 1;
        for (size_t i = 0; i < k; i++)
            same &= a[i].id == ref[i].id;
        CHECK(same);
    }
}

/* ---- deterministic arithmetic ---- */

TEST(sampler_exp_accuracy)
{
    double worst = 0;
    for (double x = -708.0; x <= 0.0; x += 0.0137) {
        double e = exp(x), d = sampler__exp(x);
        if (e > 1e-300) {
            double rel = fabs(d - e) / e;
            if (rel > worst)
                worst = rel;
        }
    }
    CHECK(worst < 1e-11);
    CHECK_NEAR(sampler__exp(0.0), 1.0, 0.0);
    CHECK_NEAR(sampler__exp(-1.0), 0.36787944117144233, 1e-12);
    CHECK_NEAR(sampler__exp(-700.0) / exp(-700.0), 1.0, 1e-11);
    CHECK(sampler__exp(-708.5) == 0.0);
    CHECK(isinf(sampler__exp(710.0)));
    CHECK(sampler__exp(-1000.0) == 0.0);
    CHECK(sampler__exp(NAN) == 0.0);
}

TEST(sampler_rng_reference_vector)
{
    /* xoshiro256** from the state {1, 2, 3, 4}: the reference implementation's outputs. */
    uint64_t s[4] = {1, 2, 3, 4};
    CHECK(sampler__rng_next(s) == 11520ULL);
    CHECK(sampler__rng_next(s) == 0ULL);
    CHECK(sampler__rng_next(s) == 1509978240ULL);
    CHECK(sampler__rng_next(s) == 1215971899390074240ULL);
    /* splitmix64 seeding: seed 0 gives splitmix64's first output 0xe220a8397b1dcdaf */
    sampler__rng_seed(s, 0);
    CHECK(s[0] == 0xe220a8397b1dcdafULL);
}

/* ---- stages ---- */

TEST(sampler_greedy_argmax_and_ties)
{
    struct sampler_stage *g = NULL;
    REQUIRE(sampler_stage_greedy_new(&g) == 0);
    struct cands x;
    cands_init(&x, (const float[]){1.0f, 3.0f, 2.0f}, 3);
    apply(g, &x.c);
    CHECK_EQ_INT(x.c.data[x.c.selected].id, 1);
    /* ties go to the lowest id, wherever they sit in the array */
    cands_init(&x, (const float[]){5.0f, 7.0f, 1.0f, 7.0f, 7.0f}, 5);
    x.d[1].id = 4;
    x.d[4].id = 1;
    x.c.identity = false;
    apply(g, &x.c);
    CHECK_EQ_INT(x.c.data[x.c.selected].id, 1);
    sampler_stage_free(g);

    /* through a chain with temperature 0 */
    struct sampler_config cfg;
    config_plain(&cfg, 0.0f, 1);
    struct sampler_chain *c = chain_of(&cfg, 6);
    REQUIRE(c);
    CHECK_EQ_INT(sampler_sample(c, (const float[]){0, 2, 9, 9, 1, 9}), 2);
    sampler_free(c);
}

TEST(sampler_logit_bias)
{
    struct sampler_stage *b = NULL;
    struct sampler_logit_bias bias[] = {{2, -INFINITY}, {0, 1.5f}, {3, 0.25f}, {3, 0.25f}};
    REQUIRE(sampler_stage_logit_bias_new(&b, 4, 4, bias) == 0);
    CHECK_STR(b->iface->name(b), "logit-bias");
    struct cands x;
    cands_init(&x, (const float[]){1.0f, 2.0f, 9.0f, 0.0f}, 4);
    apply(b, &x.c);
    CHECK_NEAR(x.d[0].logit, 2.5, 1e-6);
    CHECK_NEAR(x.d[1].logit, 2.0, 1e-6);
    CHECK(x.d[2].logit == -INFINITY);
    CHECK_NEAR(x.d[3].logit, 0.5, 1e-6); /* the same token twice: biases add */
    /* candidates moved around: same result through the lookup path */
    cands_init(&x, (const float[]){1.0f, 2.0f, 9.0f, 0.0f}, 4);
    sampler__sort(x.d, 4);
    x.c.identity = false;
    apply(b, &x.c);
    CHECK_NEAR(logit_of(&x.c, 0), 2.5, 1e-6);
    CHECK(logit_of(&x.c, 2) == -INFINITY);
    CHECK_NEAR(logit_of(&x.c, 3), 0.5, 1e-6);
    sampler_stage_free(b);

    /* invalid: token out of range, NaN, +inf */
    CHECK(sampler_stage_logit_bias_new(&b, 4, 1, (struct sampler_logit_bias[]){{4, 1}}) ==
          SAMPLER_E_INVALID);
    CHECK(sampler_stage_logit_bias_new(&b, 4, 1, (struct sampler_logit_bias[]){{-1, 1}}) ==
          SAMPLER_E_INVALID);
    CHECK(sampler_stage_logit_bias_new(&b, 4, 1, (struct sampler_logit_bias[]){{0, NAN}}) ==
          SAMPLER_E_INVALID);
    CHECK(sampler_stage_logit_bias_new(&b, 4, 1, (struct sampler_logit_bias[]){{0, INFINITY}}) ==
          SAMPLER_E_INVALID);
    CHECK(b == NULL);

    /* a ban through the chain changes a greedy pick */
    struct sampler_config cfg;
    config_plain(&cfg, 0.0f, 1);
    cfg.n_logit_bias = 1;
    cfg.logit_bias = (struct sampler_logit_bias[]){{2, -INFINITY}};
    struct sampler_chain *c = chain_of(&cfg, 4);
    REQUIRE(c);
    CHECK_EQ_INT(sampler_sample(c, (const float[]){1, 3, 9, 2}), 1);
    sampler_free(c);
}

TEST(sampler_repetition_penalty)
{
    struct sampler_stage *p = NULL;
    REQUIRE(sampler_stage_penalties_new(&p, 5, 3, 2.0f, 0.0f, 0.0f) == 0);
    CHECK_STR(p->iface->name(p), "penalties");
    p->iface->accept(p, 0);
    p->iface->accept(p, 1);
    p->iface->accept(p, 1); /* counted once for the repetition penalty */
    struct cands x;
    cands_init(&x, (const float[]){2.0f, -2.0f, 1.0f, 0.5f, -1.0f}, 5);
    apply(p, &x.c);
    CHECK_NEAR(x.d[0].logit, 1.0, 1e-6);  /* positive: divided */
    CHECK_NEAR(x.d[1].logit, -4.0, 1e-6); /* negative: multiplied */
    CHECK_NEAR(x.d[2].logit, 1.0, 1e-6);
    CHECK_NEAR(x.d[4].logit, -1.0, 1e-6);
    /* the window holds the last 3 tokens: accepting 3 evicts the first 0 */
    p->iface->accept(p, 3);
    cands_init(&x, (const float[]){2.0f, -2.0f, 1.0f, 0.5f, -1.0f}, 5);
    apply(p, &x.c);
    CHECK_NEAR(x.d[0].logit, 2.0, 1e-6);
    CHECK_NEAR(x.d[1].logit, -4.0, 1e-6);
    CHECK_NEAR(x.d[3].logit, 0.25, 1e-6);
    /* same through the non-identity path */
    cands_init(&x, (const float[]){2.0f, -2.0f, 1.0f, 0.5f, -1.0f}, 5);
    sampler__sort(x.d, 5);
    x.c.identity = false;
    apply(p, &x.c);
    CHECK_NEAR(logit_of(&x.c, 0), 2.0, 1e-6);
    CHECK_NEAR(logit_of(&x.c, 1), -4.0, 1e-6);
    CHECK_NEAR(logit_of(&x.c, 3), 0.25, 1e-6);
    /* reset forgets the history */
    p->iface->reset(p);
    cands_init(&x, (const float[]){2.0f, -2.0f, 1.0f, 0.5f, -1.0f}, 5);
    apply(p, &x.c);
    CHECK_NEAR(x.d[1].logit, -2.0, 1e-6);
    sampler_stage_free(p);
}

TEST(sampler_frequency_and_presence_penalties)
{
    struct sampler_stage *p = NULL;
    REQUIRE(sampler_stage_penalties_new(&p, 4, 64, 1.0f, 0.5f, 0.25f) == 0);
    int32_t hist[] = {0, 0, 0, 2};
    for (size_t i = 0; i < 4; i++)
        p->iface->accept(p, hist[i]);
    struct cands x;
    cands_init(&x, (const float[]){3.0f, 3.0f, 3.0f, 3.0f}, 4);
    apply(p, &x.c);
    CHECK_NEAR(x.d[0].logit, 3.0 - 3 * 0.5 - 0.25, 1e-6);
    CHECK_NEAR(x.d[1].logit, 3.0, 1e-6);
    CHECK_NEAR(x.d[2].logit, 3.0 - 1 * 0.5 - 0.25, 1e-6);
    CHECK_NEAR(x.d[3].logit, 3.0, 1e-6);
    /* out of range tokens are ignored by accept */
    p->iface->accept(p, 99);
    p->iface->accept(p, -1);
    sampler_stage_free(p);
    CHECK(sampler_stage_penalties_new(&p, 4, -1, 1.0f, 0, 0) == SAMPLER_E_INVALID);
    CHECK(sampler_stage_penalties_new(&p, 4, 8, 0.0f, 0, 0) == SAMPLER_E_INVALID);
    CHECK(sampler_stage_penalties_new(&p, 4, 8, 1.0f, NAN, 0) == SAMPLER_E_INVALID);

    /* the chain: a repeated token loses a greedy pick once penalised */
    struct sampler_config cfg;
    config_plain(&cfg, 0.0f, 1);
    cfg.frequency_penalty = 1.0f;
    cfg.repeat_last_n = 8;
    struct sampler_chain *c = chain_of(&cfg, 3);
    REQUIRE(c);
    const float l[] = {2.0f, 1.5f, 0.0f};
    CHECK_EQ_INT(sampler_sample(c, l), 0);
    sampler_accept(c, 0);
    CHECK_EQ_INT(sampler_sample(c, l), 1);
    CHECK(sampler_accept(c, 3) == SAMPLER_E_INVALID);
    sampler_reset(c);
    CHECK_EQ_INT(sampler_sample(c, l), 0);
    sampler_free(c);
}

TEST(sampler_temperature)
{
    struct sampler_stage *t = NULL;
    REQUIRE(sampler_stage_temperature_new(&t, 2.0f) == 0);
    struct cands x;
    cands_init(&x, (const float[]){2.0f, 4.0f, -1.0f}, 3);
    apply(t, &x.c);
    CHECK_NEAR(x.d[0].logit, 1.0, 1e-6);
    CHECK_NEAR(x.d[1].logit, 2.0, 1e-6);
    CHECK_NEAR(x.d[2].logit, -0.5, 1e-6);
    CHECK(x.c.identity);
    sampler_stage_free(t);
    CHECK(sampler_stage_temperature_new(&t, 0.0f) == SAMPLER_E_INVALID);
    CHECK(sampler_stage_temperature_new(&t, NAN) == SAMPLER_E_INVALID);
    /* a tiny temperature saturates instead of overflowing to inf */
    REQUIRE(sampler_stage_temperature_new(&t, 1e-9f) == 0);
    cands_init(&x, (const float[]){1e33f, 1.0f}, 2);
    apply(t, &x.c);
    CHECK(x.d[0].logit == FLT_MAX);
    sampler_stage_free(t);
}

TEST(sampler_top_k)
{
    struct sampler_stage *k = NULL;
    REQUIRE(sampler_stage_top_k_new(&k, 3) == 0);
    struct cands x;
    cands_init(&x, (const float[]){0.1f, 5.0f, 3.0f, -2.0f, 4.0f, 3.0f, 1.0f}, 7);
    apply(k, &x.c);
    CHECK_EQ_INT(x.c.size, 3);
    CHECK(x.c.sorted);
    CHECK(!x.c.identity);
    CHECK_EQ_INT(x.c.data[0].id, 1);
    CHECK_EQ_INT(x.c.data[1].id, 4);
    CHECK_EQ_INT(x.c.data[2].id, 2); /* 3.0 twice: the lower id */
    sampler_stage_free(k);

    /* k >= size and k <= 0 leave everything */
    REQUIRE(sampler_stage_top_k_new(&k, 10) == 0);
    cands_init(&x, (const float[]){1, 2, 3}, 3);
    apply(k, &x.c);
    CHECK_EQ_INT(x.c.size, 3);
    CHECK(x.c.identity);
    sampler_stage_free(k);

    /* a vocabulary-sized array against a full sort */
    enum { N = 150000 };
    struct sampler_candidate *a = malloc(N * sizeof(*a)), *ref = malloc(N * sizeof(*ref));
    REQUIRE(a && ref);
    uint64_t s = 3;
    for (int i = 0; i < N; i++)
        a[i] = ref[i] = (struct sampler_candidate){i, test_rand(&s, 20.0f), 0};
    qsort(ref, N, sizeof(*ref), cmp_ref);
    REQUIRE(sampler_stage_top_k_new(&k, 40) == 0);
    struct sampler_candidates c = {a, N, false, true, -1};
    apply(k, &c);
    CHECK_EQ_INT(c.size, 40);
    int same = 1;
    for (int i = 0; i < 40; i++)
        same &= a[i].id == ref[i].id;
    CHECK(same);
    sampler_stage_free(k);
    free(a);
    free(ref);
}

/* logits whose softmax is exactly probs (up to rounding) */
static void logits_of_probs(float *l, const double *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        l[i] = (float)log(p[i]);
}

TEST(sampler_top_p)
{
    const double probs[] = {0.15, 0.5, 0.05, 0.3};
    float l[4];
    logits_of_probs(l, probs, 4);
    const struct {
        float p;
        size_t kept;
    } cases[] = {{0.0f, 1}, {0.45f, 1}, {0.75f, 2}, {0.85f, 3}, {0.97f, 4}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sampler_stage *st = NULL;
        REQUIRE(sampler_stage_top_p_new(&st, cases[i].p, 1) == 0);
        struct cands x;
        cands_init(&x, l, 4);
        apply(st, &x.c);
        CHECK_EQ_INT(x.c.size, cases[i].kept);
        CHECK(!x.c.identity || cases[i].kept == 4);
        /* the kept set is the best tokens, in no particular order */
        CHECK(has(&x.c, 1));
        if (cases[i].kept >= 2)
            CHECK(has(&x.c, 3));
        if (cases[i].kept >= 3)
            CHECK(has(&x.c, 0));
        sampler_stage_free(st);
    }
    /* min_keep wins over a small p */
    struct sampler_stage *st = NULL;
    REQUIRE(sampler_stage_top_p_new(&st, 0.1f, 3) == 0);
    struct cands x;
    cands_init(&x, l, 4);
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 3);
    sampler_stage_free(st);
    /* p = 1 is a no-op */
    REQUIRE(sampler_stage_top_p_new(&st, 1.0f, 1) == 0);
    cands_init(&x, l, 4);
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 4);
    CHECK(x.c.identity);
    sampler_stage_free(st);
    CHECK(sampler_stage_top_p_new(&st, NAN, 1) == SAMPLER_E_INVALID);
}

TEST(sampler_top_p_partial_selection_matches_full_sort)
{
    enum { N = 100000 };
    struct sampler_candidate *a = malloc(N * sizeof(*a)), *ref = malloc(N * sizeof(*ref));
    REQUIRE(a && ref);
    const float ps[] = {0.5f, 0.9f, 0.99f};
    for (size_t r = 0; r < 3; r++) {
        uint64_t s = 11 + r;
        for (int i = 0; i < N; i++)
            a[i] = ref[i] = (struct sampler_candidate){i, test_rand(&s, 8.0f), 0};
        qsort(ref, N, sizeof(*ref), cmp_ref);
        /* reference cut from the fully sorted array */
        double sum = 0, cum = 0;
        for (int i = 0; i < N; i++)
            sum += (float)sampler__exp((double)ref[i].logit - ref[0].logit);
        size_t cut = N;
        for (int i = 0; i < N; i++) {
            cum += (float)sampler__exp((double)ref[i].logit - ref[0].logit);
            if (cum >= ps[r] * sum) {
                cut = (size_t)i + 1;
                break;
            }
        }
        struct sampler_stage *st = NULL;
        REQUIRE(sampler_stage_top_p_new(&st, ps[r], 1) == 0);
        struct sampler_candidates c = {a, N, false, true, -1};
        apply(st, &c);
        CHECK_EQ_INT(c.size, cut);
        sampler__sort(a, c.size); /* the kept set in order, to compare */
        int same = 1;
        for (size_t i = 0; i < c.size && i < cut; i++)
            same &= a[i].id == ref[i].id;
        CHECK(same);
        /* already sorted input takes the prefix walk and gives the same cut */
        memcpy(a, ref, N * sizeof(*a));
        c = (struct sampler_candidates){a, N, true, false, -1};
        apply(st, &c);
        CHECK_EQ_INT(c.size, cut);
        sampler_stage_free(st);
    }
    free(a);
    free(ref);
}

TEST(sampler_min_p)
{
    const double probs[] = {0.15, 0.5, 0.05, 0.3};
    float l[4];
    logits_of_probs(l, probs, 4);
    struct sampler_stage *st = NULL;
    /* threshold 0.2 * 0.5 = 0.1: drops only the 0.05 token */
    REQUIRE(sampler_stage_min_p_new(&st, 0.2f, 1) == 0);
    struct cands x;
    cands_init(&x, l, 4);
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 3);
    CHECK(!has(&x.c, 2));
    CHECK(has(&x.c, 0) && has(&x.c, 1) && has(&x.c, 3));
    /* sorted input takes the prefix path */
    cands_init(&x, l, 4);
    sampler__sort(x.d, 4);
    x.c.sorted = true;
    x.c.identity = false;
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 3);
    CHECK_EQ_INT(x.c.data[2].id, 0);
    sampler_stage_free(st);
    /* threshold 0.35: only the best survives; min_keep 2 keeps two */
    REQUIRE(sampler_stage_min_p_new(&st, 0.7f, 1) == 0);
    cands_init(&x, l, 4);
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 1);
    CHECK_EQ_INT(x.c.data[0].id, 1);
    sampler_stage_free(st);
    REQUIRE(sampler_stage_min_p_new(&st, 0.7f, 2) == 0);
    cands_init(&x, l, 4);
    apply(st, &x.c);
    CHECK_EQ_INT(x.c.size, 2);
    CHECK(has(&x.c, 1) && has(&x.c, 3));
    sampler_stage_free(st);
    /* exactly on the threshold is kept: p = 0.3 / 0.5 = 0.6 */
    REQUIRE(sampler_stage_min_p_new(&st, 0.6f, 1) == 0);
    cands_init(&x, (const float[]){logf(0.5f), logf(0.5f) + logf(0.6f), -30.0f}, 3);
    apply(st, &x.c);
    CHECK(has(&x.c, 0));
    CHECK(!has(&x.c, 2));
    sampler_stage_free(st);
    CHECK(sampler_stage_min_p_new(&st, 1.5f, 1) == SAMPLER_E_INVALID);
}

/* ---- the chain ---- */

TEST(sampler_chain_stage_order)
{
    struct sampler_config cfg;
    sampler_config_default(&cfg);
    cfg.seed = 5;
    cfg.repeat_penalty = 1.1f;
    cfg.n_logit_bias = 1;
    cfg.logit_bias = (struct sampler_logit_bias[]){{1, 2.0f}};
    struct sampler_chain *c = chain_of(&cfg, 10);
    REQUIRE(c);
    const char *want[] = {"logit-bias", "penalties", "top-k", "top-p", "min-p", "temperature",
                          "dist"};
    REQUIRE(sampler_chain_n_stages(c) == 7);
    for (size_t i = 0; i < 7; i++) {
        const struct sampler_stage *st = sampler_chain_stage(c, i);
        CHECK_STR(st->iface->name(st), want[i]);
    }
    CHECK(sampler_chain_seed(c) == 5);
    sampler_free(c);

    /* greedy: truncation stages are left out; off stages are not added */
    cfg.temperature = 0.0f;
    cfg.n_logit_bias = 0;
    cfg.repeat_penalty = 1.0f;
    c = chain_of(&cfg, 10);
    REQUIRE(c);
    REQUIRE(sampler_chain_n_stages(c) == 1);
    CHECK_STR(sampler_chain_stage(c, 0)->iface->name(sampler_chain_stage(c, 0)), "greedy");
    sampler_free(c);

    /* a random seed is drawn and reported */
    sampler_config_default(&cfg);
    c = chain_of(&cfg, 10);
    REQUIRE(c);
    CHECK(sampler_chain_seed(c) != SAMPLER_SEED_RANDOM);
    sampler_free(c);
}

TEST(sampler_invalid_config)
{
    struct sampler_config cfg;
    struct sampler_chain *c = (struct sampler_chain *)&cfg;
    sampler_config_default(&cfg);
    CHECK(sampler_chain_new(&c, &cfg, 0) == SAMPLER_E_INVALID);
    CHECK(c == NULL);
    cfg.top_p = 1.5f;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.min_p = -0.1f;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.n_probs = SAMPLER_MAX_TOP_LOGPROBS + 1;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.repeat_last_n = -1;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.repeat_penalty = 0.0f;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.temperature = NAN;
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    sampler_config_default(&cfg);
    cfg.n_logit_bias = 1;
    cfg.logit_bias = (struct sampler_logit_bias[]){{10, 1.0f}};
    CHECK(sampler_chain_new(&c, &cfg, 10) == SAMPLER_E_INVALID);
    CHECK(c == NULL);

    /* a chain without a pick stage cannot sample */
    REQUIRE(sampler_chain_new_empty(&c, 3) == 0);
    struct sampler_stage *st = NULL;
    REQUIRE(sampler_stage_top_k_new(&st, 2) == 0);
    REQUIRE(sampler_chain_add(c, st) == 0);
    CHECK_EQ_INT(sampler_sample(c, (const float[]){1, 2, 3}), SAMPLER_E_STATE);
    struct sampler_logprobs lp;
    CHECK(sampler_logprobs(c, &lp) == SAMPLER_E_STATE);
    for (int i = 0; i < SAMPLER_MAX_STAGES - 1; i++) {
        REQUIRE(sampler_stage_greedy_new(&st) == 0);
        REQUIRE(sampler_chain_add(c, st) == 0);
    }
    REQUIRE(sampler_stage_greedy_new(&st) == 0);
    CHECK(sampler_chain_add(c, st) == SAMPLER_E_LIMIT); /* and st is freed */
    sampler_free(c);
    sampler_free(NULL);
    sampler_stage_free(NULL);
}

TEST(sampler_nan_and_banned_logits)
{
    struct sampler_config cfg;
    config_plain(&cfg, 1.0f, 9);
    struct sampler_chain *c = chain_of(&cfg, 4);
    REQUIRE(c);
    for (int i = 0; i < 200; i++) {
        int32_t t = sampler_sample(c, (const float[]){NAN, 1.0f, NAN, 1.0f});
        CHECK(t == 1 || t == 3);
    }
    /* everything banned: a valid token (the lowest id) rather than garbage */
    CHECK_EQ_INT(sampler_sample(c, (const float[]){-INFINITY, -INFINITY, -INFINITY, -INFINITY}), 0);
    /* +inf logits saturate: the inf tokens share the mass */
    for (int i = 0; i < 200; i++) {
        int32_t t = sampler_sample(c, (const float[]){0.0f, INFINITY, 0.0f, INFINITY});
        CHECK(t == 1 || t == 3);
    }
    sampler_free(c);
}

static void draw_sequence(uint64_t seed, int32_t *out, int n)
{
    struct sampler_config cfg;
    sampler_config_default(&cfg);
    cfg.seed = seed;
    cfg.top_k = 0;
    cfg.min_p = 0.0f;
    cfg.top_p = 0.98f;
    cfg.repeat_penalty = 1.05f;
    struct sampler_chain *c = chain_of(&cfg, 50);
    if (!c)
        return;
    float l[50];
    uint64_t s = 99;
    for (int i = 0; i < 50; i++)
        l[i] = test_rand(&s, 3.0f);
    for (int i = 0; i < n; i++) {
        out[i] = sampler_sample(c, l);
        sampler_accept(c, out[i]);
    }
    sampler_free(c);
}

TEST(sampler_seed_reproducible)
{
    enum { N = 1000 };
    static int32_t a[N], b[N], d[N];
    draw_sequence(1234, a, N);
    draw_sequence(1234, b, N);
    draw_sequence(1235, d, N);
    int same = 1, diff = 0;
    for (int i = 0; i < N; i++) {
        same &= a[i] == b[i];
        diff += a[i] != d[i];
        CHECK(a[i] >= 0 && a[i] < 50);
    }
    CHECK(same);
    CHECK(diff > N / 2);
    /* reset restarts the same sequence */
    struct sampler_config cfg;
    config_plain(&cfg, 1.0f, 77);
    struct sampler_chain *c = chain_of(&cfg, 8);
    REQUIRE(c);
    const float l[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    int32_t first[20];
    for (int i = 0; i < 20; i++)
        first[i] = sampler_sample(c, l);
    sampler_reset(c);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(sampler_sample(c, l), first[i]);
    sampler_free(c);
}

TEST(sampler_pinned_sequence)
{
    /* The exact tokens for seed 42: they must not change across platforms, compilers or
     * refactorings (a change breaks users' reproducible generations). */
    struct sampler_config cfg;
    config_plain(&cfg, 0.7f, 42);
    struct sampler_chain *c = chain_of(&cfg, 8);
    REQUIRE(c);
    const float l[8] = {1.0f, 0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f, 0.25f};
    const int32_t want[16] = {1, 2, 6, 6, 7, 6, 6, 6, 6, 4, 6, 2, 6, 2, 6, 6};
    int ok = 1;
    for (int i = 0; i < 16; i++) {
        int32_t t = sampler_sample(c, l);
        if (t != want[i])
            ok = 0;
    }
    CHECK(ok);
    sampler_free(c);
}

/* Pearson's chi-square of counts against expected probabilities. */
static double chi_square(const long *count, const double *p, int k, long n)
{
    double x2 = 0;
    for (int i = 0; i < k; i++) {
        double e = p[i] * (double)n;
        x2 += (count[i] - e) * (count[i] - e) / e;
    }
    return x2;
}

TEST(sampler_distribution_chi_square)
{
    enum { K = 8, DRAWS = 200000 };
    const double probs[K] = {0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02};
    float l[K];
    logits_of_probs(l, probs, K);
    /* temperature 1: the softmax itself. df = 7: P(X2 > 24.32) = 0.001 */
    struct sampler_config cfg;
    config_plain(&cfg, 1.0f, 2024);
    struct sampler_chain *c = chain_of(&cfg, K);
    REQUIRE(c);
    long count[K] = {0};
    for (long i = 0; i < DRAWS; i++)
        count[sampler_sample(c, l)]++;
    double x2 = chi_square(count, probs, K, DRAWS);
    CHECK(x2 < 24.32);
    sampler_free(c);

    /* temperature 0.5 squares the probabilities (renormalised) */
    double q[K], z = 0;
    for (int i = 0; i < K; i++)
        z += probs[i] * probs[i];
    for (int i = 0; i < K; i++)
        q[i] = probs[i] * probs[i] / z;
    config_plain(&cfg, 0.5f, 7);
    c = chain_of(&cfg, K);
    REQUIRE(c);
    long cnt2[K] = {0};
    for (long i = 0; i < DRAWS; i++)
        cnt2[sampler_sample(c, l)]++;
    CHECK(chi_square(cnt2, q, K, DRAWS) < 24.32);
    /* and the test has teeth: the counts are far from the untempered distribution */
    CHECK(chi_square(cnt2, probs, K, DRAWS) > 1000.0);
    sampler_free(c);

    /* top-k 3 renormalises over the three best: df = 2, P(X2 > 13.82) = 0.001 */
    config_plain(&cfg, 1.0f, 8);
    cfg.top_k = 3;
    c = chain_of(&cfg, K);
    REQUIRE(c);
    long cnt3[K] = {0};
    for (long i = 0; i < DRAWS; i++)
        cnt3[sampler_sample(c, l)]++;
    const double p3[3] = {0.3 / 0.65, 0.2 / 0.65, 0.15 / 0.65};
    CHECK(chi_square(cnt3, p3, 3, DRAWS) < 13.82);
    for (int i = 3; i < K; i++)
        CHECK_EQ_INT(cnt3[i], 0);
    sampler_free(c);
}

TEST(sampler_logprobs_normalised)
{
    enum { N = 20 };
    float l[N];
    uint64_t s = 5;
    for (int i = 0; i < N; i++)
        l[i] = test_rand(&s, 4.0f);
    const float temps[] = {0.0f, 0.5f, 1.0f, 1.7f};
    for (size_t ti = 0; ti < 4; ti++) {
        struct sampler_config cfg;
        config_plain(&cfg, temps[ti], 3);
        cfg.top_k = 2; /* truncation must not change the reported distribution */
        cfg.n_probs = N;
        struct sampler_chain *c = chain_of(&cfg, N);
        REQUIRE(c);
        int32_t tok = sampler_sample(c, l);
        REQUIRE(tok >= 0);
        struct sampler_logprobs lp;
        REQUIRE(sampler_logprobs(c, &lp) == 0);
        CHECK_EQ_INT(lp.token, tok);
        CHECK_EQ_INT(lp.n_top, N);
        /* reference log-softmax at the chain's temperature (1 when greedy) */
        double t = temps[ti] > 0 ? temps[ti] : 1.0, max = -1e30, sum = 0;
        for (int i = 0; i < N; i++)
            if (l[i] / t > max)
                max = l[i] / t;
        for (int i = 0; i < N; i++)
            sum += exp(l[i] / t - max);
        double lse = max + log(sum), total = 0;
        for (int i = 0; i < N; i++) {
            total += exp(lp.top[i].logprob);
            CHECK_NEAR(lp.top[i].logprob, (double)l[lp.top[i].id] / t - lse, 1e-4);
            if (i)
                CHECK(lp.top[i].logprob <= lp.top[i - 1].logprob);
        }
        CHECK_NEAR(total, 1.0, 1e-5);
        CHECK_NEAR(lp.logprob, (double)l[tok] / t - lse, 1e-4);
        CHECK(lp.logprob <= 0.0f);
        sampler_free(c);
    }
}

TEST(sampler_logprobs_top_n_and_bias)
{
    /* after bias and penalties; a banned token reads -inf; ties ordered by id */
    struct sampler_config cfg;
    config_plain(&cfg, 0.0f, 3);
    cfg.logprobs = true;
    cfg.n_probs = 3;
    cfg.n_logit_bias = 1;
    cfg.logit_bias = (struct sampler_logit_bias[]){{0, -INFINITY}};
    struct sampler_chain *c = chain_of(&cfg, 5);
    REQUIRE(c);
    const float l[5] = {10.0f, 1.0f, 2.0f, 2.0f, 0.0f};
    CHECK_EQ_INT(sampler_sample(c, l), 2);
    struct sampler_logprobs lp;
    REQUIRE(sampler_logprobs(c, &lp) == 0);
    CHECK_EQ_INT(lp.n_top, 3);
    CHECK_EQ_INT(lp.top[0].id, 2);
    CHECK_EQ_INT(lp.top[1].id, 3);
    CHECK_EQ_INT(lp.top[2].id, 1);
    CHECK_NEAR(lp.top[0].logprob, lp.top[1].logprob, 0.0);
    double lse = log(exp(1.0) + 2 * exp(2.0) + exp(0.0));
    CHECK_NEAR(lp.logprob, 2.0 - lse, 1e-5);
    sampler_free(c);

    /* logprobs off: an error, not stale data */
    config_plain(&cfg, 0.0f, 3);
    c = chain_of(&cfg, 5);
    REQUIRE(c);
    sampler_sample(c, l);
    CHECK(sampler_logprobs(c, &lp) == SAMPLER_E_STATE);
    sampler_free(c);
}

TEST(sampler_large_vocab_chain)
{
    enum { N = 152064 };
    float *l = malloc(N * sizeof(float));
    REQUIRE(l);
    uint64_t s = 17;
    for (int i = 0; i < N; i++)
        l[i] = test_rand(&s, 6.0f);
    l[12345] = 30.0f;
    struct sampler_config cfg;
    sampler_config_default(&cfg);
    cfg.seed = 1;
    cfg.n_probs = 5;
    cfg.top_k = 0; /* top-p over the whole vocabulary: the partial-selection path */
    struct sampler_chain *c = chain_of(&cfg, N);
    REQUIRE(c);
    for (int i = 0; i < 20; i++) {
        int32_t t = sampler_sample(c, l);
        CHECK_EQ_INT(t, 12345); /* 30 vs <= 6: everything else is far below top-p and min-p */
        sampler_accept(c, t);
    }
    struct sampler_logprobs lp;
    REQUIRE(sampler_logprobs(c, &lp) == 0);
    CHECK_EQ_INT(lp.top[0].id, 12345);
    sampler_free(c);
    free(l);
}

/* ---- stop conditions ---- */

/* Appends a piece to a text buffer and runs the stop check. */
struct gen {
    char text[256];
    size_t len;
    size_t emitted;
};

static enum sampler_stop_reason push(struct sampler_stop *s, struct gen *g, const char *piece)
{
    size_t n = strlen(piece);
    memcpy(g->text + g->len, piece, n);
    g->len += n;
    size_t emit = 0;
    enum sampler_stop_reason r = sampler_stop_text(s, g->text, g->len, &emit);
    if (r == SAMPLER_STOP_NONE && emit < g->emitted)
        test__fail(__FILE__, __LINE__, "emit_len went back from %zu to %zu", g->emitted, emit);
    g->emitted = emit;
    return r;
}

TEST(sampler_stop_string_split_across_pieces)
{
    const char *stops[] = {"###", "END"};
    struct sampler_stop_config sc = {.strings = stops, .n_strings = 2};
    struct sampler_stop *s = NULL;
    REQUIRE(sampler_stop_new(&s, &sc) == 0);
    struct gen g = {0};
    CHECK(push(s, &g, "Hello #") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 6); /* "#" held back */
    CHECK(push(s, &g, "#") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 6);
    CHECK(push(s, &g, "# world") == SAMPLER_STOP_STRING);
    CHECK_EQ_INT(g.emitted, 6);
    CHECK_EQ_INT(sampler_stop_matched(s), 0);

    /* a false alarm is released once it can no longer match */
    sampler_stop_reset(s);
    g = (struct gen){0};
    CHECK(push(s, &g, "a#") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 1);
    CHECK(push(s, &g, "#b") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 4);
    CHECK_EQ_INT(sampler_stop_matched(s), -1);

    /* one byte per piece */
    sampler_stop_reset(s);
    g = (struct gen){0};
    CHECK(push(s, &g, "x") == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "E") == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "N") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 1);
    CHECK(push(s, &g, "D") == SAMPLER_STOP_STRING);
    CHECK_EQ_INT(g.emitted, 1);
    CHECK_EQ_INT(sampler_stop_matched(s), 1);
    sampler_stop_free(s);
}

TEST(sampler_stop_overlapping_and_earliest)
{
    /* "aab" inside "aaab": the hold-back must restart at the second 'a' */
    const char *stops[] = {"aab"};
    struct sampler_stop_config sc = {.strings = stops, .n_strings = 1};
    struct sampler_stop *s = NULL;
    REQUIRE(sampler_stop_new(&s, &sc) == 0);
    struct gen g = {0};
    CHECK(push(s, &g, "a") == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "a") == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "a") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 1);
    CHECK(push(s, &g, "b") == SAMPLER_STOP_STRING);
    CHECK_EQ_INT(g.emitted, 1);
    sampler_stop_free(s);

    /* two stop strings complete in one piece: the output ends before the earlier one */
    const char *two[] = {"world", "lo w"};
    sc = (struct sampler_stop_config){.strings = two, .n_strings = 2};
    REQUIRE(sampler_stop_new(&s, &sc) == 0);
    g = (struct gen){0};
    CHECK(push(s, &g, "hello world") == SAMPLER_STOP_STRING);
    CHECK_EQ_INT(g.emitted, 3);
    CHECK_EQ_INT(sampler_stop_matched(s), 1);
    sampler_stop_free(s);

    /* empty stop strings are ignored; no strings: everything is emitted */
    const char *empty[] = {""};
    sc = (struct sampler_stop_config){.strings = empty, .n_strings = 1};
    REQUIRE(sampler_stop_new(&s, &sc) == 0);
    g = (struct gen){0};
    CHECK(push(s, &g, "abc") == SAMPLER_STOP_NONE);
    CHECK_EQ_INT(g.emitted, 3);
    sampler_stop_free(s);
}

TEST(sampler_stop_tokens_and_max_tokens)
{
    const char *stops[] = {"<|"};
    const int32_t toks[] = {2, 7};
    struct sampler_stop_config sc = {.strings = stops, .n_strings = 1, .tokens = toks,
                                     .n_tokens = 2, .max_tokens = 3};
    struct sampler_stop *s = NULL;
    REQUIRE(sampler_stop_new(&s, &sc) == 0);
    struct gen g = {0};
    CHECK(sampler_stop_token(s, 5) == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "a") == SAMPLER_STOP_NONE);
    CHECK(sampler_stop_token(s, 7) == SAMPLER_STOP_TOKEN);
    CHECK_EQ_INT(sampler_stop_n_tokens(s), 1);
    CHECK(sampler_stop_token(s, 5) == SAMPLER_STOP_NONE);
    CHECK(push(s, &g, "b") == SAMPLER_STOP_NONE);
    CHECK(sampler_stop_token(s, 5) == SAMPLER_STOP_NONE);
    /* the third token reaches max_tokens: its text, held-back bytes included, is final */
    CHECK(push(s, &g, "<") == SAMPLER_STOP_LENGTH);
    CHECK_EQ_INT(g.emitted, 3);
    sampler_stop_free(s);

    /* limits */
    const char *many[SAMPLER_STOP_MAX_STRINGS + 1];
    for (int i = 0; i <= SAMPLER_STOP_MAX_STRINGS; i++)
        many[i] = "x";
    sc = (struct sampler_stop_config){.strings = many, .n_strings = SAMPLER_STOP_MAX_STRINGS + 1};
    CHECK(sampler_stop_new(&s, &sc) == SAMPLER_E_LIMIT);
    char *longs = malloc(SAMPLER_STOP_MAX_STRING_LEN + 2);
    REQUIRE(longs);
    memset(longs, 'y', SAMPLER_STOP_MAX_STRING_LEN + 1);
    longs[SAMPLER_STOP_MAX_STRING_LEN + 1] = 0;
    const char *one[] = {longs};
    sc = (struct sampler_stop_config){.strings = one, .n_strings = 1};
    CHECK(sampler_stop_new(&s, &sc) == SAMPLER_E_LIMIT);
    free(longs);
    sampler_stop_free(NULL);
}

/* A stage in front of the standard chain sees the candidates first (the JSON constraint's
 * slot): banning the best token there changes the greedy pick; logprobs are taken after it. */
TEST(sampler_chain_front_stage)
{
    float logits[8] = {5, 1, 4, 0, 0, 0, 0, 0};
    struct sampler_config cfg;
    sampler_config_default(&cfg);
    cfg.temperature = 0;
    cfg.logprobs = true;
    struct sampler_logit_bias ban = {.token = 0, .bias = -INFINITY};
    struct sampler_stage *front = NULL;
    REQUIRE(sampler_stage_logit_bias_new(&front, 8, 1, &ban) == 0);
    struct sampler_chain *c = NULL;
    REQUIRE(sampler_chain_new_front(&c, &cfg, 8, front) == 0);
    CHECK_EQ_INT(sampler_sample(c, logits), 2);
    struct sampler_logprobs lp;
    REQUIRE(sampler_logprobs(c, &lp) == 0);
    CHECK(lp.logprob > -0.2f);  /* token 0 no longer takes mass (with it: about -1.3) */
    sampler_free(c);
    struct sampler_chain *plain = NULL;
    REQUIRE(sampler_chain_new_front(&plain, &cfg, 8, NULL) == 0);
    CHECK_EQ_INT(sampler_sample(plain, logits), 0);
    sampler_free(plain);
    /* An invalid config frees the front stage (checked under ASan). */
    cfg.top_p = 2;
    REQUIRE(sampler_stage_logit_bias_new(&front, 8, 1, &ban) == 0);
    CHECK_EQ_INT(sampler_chain_new_front(&c, &cfg, 8, front), SAMPLER_E_INVALID);
}
