/* Sampler stages (bias, penalties, top-k, top-p, min-p, temperature, greedy, dist) and the
 * deterministic arithmetic they share: exp, PRNG, candidate ordering. */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Reproducible draws need the exact same arithmetic everywhere: no fused multiply-add. GCC in
 * ISO C mode does not contract; clang would without this. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- deterministic arithmetic ---- */

static inline __attribute__((always_inline)) double det_exp(double x)
{
    static const double log2e = 1.4426950408889634;
    static const double ln2_hi = 6.93147180369123816490e-01; /* high bits of ln 2, exact k*hi */
    static const double ln2_lo = 1.90821492927058770002e-10;
    if (!(x >= -708.0)) /* also NaN; results below 1e-307 are of no use as weights */
        return 0.0;
    if (x > 709.0)
        return HUGE_VAL;
    /* x = k ln2 + r with |r| <= ln2/2; exp(r) by its Taylor polynomial of degree 9 in
     * Estrin's form (short dependency chains; relative error below 1e-11, ample for sampling
     * weights); 2^k is built from its bits. No libm, no rounding-mode or FMA dependence: the
     * same bits everywhere. */
    double t = x * log2e + 0.5;
    int64_t k = (int64_t)t;
    if ((double)k > t)
        k--; /* floor */
    double kf = (double)k;
    double r = x - kf * ln2_hi;
    r = r - kf * ln2_lo;
    double r2 = r * r;
    double r4 = r2 * r2;
    double r8 = r4 * r4;
    double p01 = 1.0 + r;
    double p23 = 0.5 + r * (1.0 / 6.0);
    double p45 = (1.0 / 24.0) + r * (1.0 / 120.0);
    double p67 = (1.0 / 720.0) + r * (1.0 / 5040.0);
    double p89 = (1.0 / 40320.0) + r * (1.0 / 362880.0);
    double lo4 = p01 + r2 * p23;
    double hi4 = p45 + r2 * p67;
    double p = lo4 + r4 * hi4;
    p = p + r8 * p89;
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

double sampler__exp(double x)
{
    return det_exp(x);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sampler__rng_next(uint64_t s[4])
{
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sampler__rng_seed(uint64_t s[4], uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&x);
}

/* A uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(sampler__rng_next(s) >> 11) * 0x1.0p-53;
}

/* Overflow to +inf would poison the softmax (inf - inf); logits saturate instead. */
static float saturate(float v)
{
    return v > FLT_MAX ? FLT_MAX : v;
}

/* ---- ordering: higher logit first, ties to the lower id ---- */

static inline int cand_before(const struct sampler_candidate *a, const struct sampler_candidate *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void cand_swap(struct sampler_candidate *a, size_t i, size_t j)
{
    struct sampler_candidate t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void insertion_sort(struct sampler_candidate *a, size_t lo, size_t hi)
{
    for (size_t i = lo + 1; i < hi; i++) {
        struct sampler_candidate t = a[i];
        size_t j = i;
        while (j > lo && cand_before(&t, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = t;
    }
}

/* Heap whose root is the candidate that comes last in the order. */
static void sift_down(struct sampler_candidate *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cand_before(&a[child], &a[child + 1]))
            child++;
        if (!cand_before(&a[root], &a[child]))
            return;
        cand_swap(a, root, child);
        root = child;
    }
}

static void heap_sort(struct sampler_candidate *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        cand_swap(a, 0, end);
        sift_down(a, 0, end);
    }
}

/* Lomuto partition of a[lo..hi) around the median of three; returns the pivot's position. */
static size_t partition(struct sampler_candidate *a, size_t lo, size_t hi)
{
    size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (cand_before(&a[mid], &a[lo]))
        cand_swap(a, lo, mid);
    if (cand_before(&a[last], &a[lo]))
        cand_swap(a, lo, last);
    if (cand_before(&a[mid], &a[last]))
        cand_swap(a, mid, last);
    struct sampler_candidate pivot = a[last];
    size_t i = lo;
    for (size_t j = lo; j < last; j++)
        if (cand_before(&a[j], &pivot))
            cand_swap(a, i++, j);
    cand_swap(a, i, last);
    return i;
}

static int log2_floor(size_t n)
{
    int r = 0;
    while (n >>= 1)
        r++;
    return r;
}

static void sort_range(struct sampler_candidate *a, size_t lo, size_t hi, int depth)
{
    while (hi - lo > 16) {
        if (depth-- <= 0) {
            heap_sort(a + lo, hi - lo);
            return;
        }
        size_t p = partition(a, lo, hi);
        /* recurse into the smaller side, loop on the larger: stack depth O(log n) */
        if (p - lo < hi - p - 1) {
            sort_range(a, lo, p, depth);
            lo = p + 1;
        } else {
            sort_range(a, p + 1, hi, depth);
            hi = p;
        }
    }
    insertion_sort(a, lo, hi);
}

void sampler__sort(struct sampler_candidate *a, size_t n)
{
    if (n > 1)
        sort_range(a, 0, n, 2 * log2_floor(n) + 4);
}

void sampler__select(struct sampler_candidate *a, size_t n, size_t k)
{
    if (k == 0 || k >= n)
        return;
    size_t lo = 0, hi = n;
    int budget = 2 * log2_floor(n) + 8;
    while (hi - lo > 16) {
        if (budget-- <= 0) {
            heap_sort(a + lo, hi - lo);
            return;
        }
        size_t p = partition(a, lo, hi);
        if (p == k || p + 1 == k)
            return;
        if (p < k)
            lo = p + 1;
        else
            hi = p;
    }
    insertion_sort(a, lo, hi);
}

/* Index of the best candidate. */
static size_t best_index(const struct sampler_candidates *c)
{
    if (c->sorted)
        return 0;
    size_t b = 0;
    for (size_t i = 1; i < c->size; i++)
        if (cand_before(&c->data[i], &c->data[b]))
            b = i;
    return b;
}

/* Softmax weight relative to the best logit, exactly reproducible. */
static double weight(float logit, float max)
{
    if (logit == max)
        return 1.0;
    return det_exp((double)logit - (double)max);
}

/* ---- stage allocation ---- */

/* One block for the stage and a small fixed-size context. */
static struct sampler_stage *stage_alloc(const struct sampler_stage_i *iface, size_t ctx_size)
{
    size_t head = (sizeof(struct sampler_stage) + 15) & ~(size_t)15;
    struct sampler_stage *st = calloc(1, head + ctx_size);
    if (!st)
        return NULL;
    st->iface = iface;
    st->ctx = ctx_size ? (char *)st + head : NULL;
    return st;
}

void sampler_stage_free(struct sampler_stage *st)
{
    if (!st)
        return;
    if (st->iface && st->iface->free)
        st->iface->free(st);
    free(st);
}

/* ---- logit bias ---- */

struct bias_ctx {
    size_t n;
    struct sampler_logit_bias *b; /* sorted by token, one entry per token */
};

static const char *bias_name(const struct sampler_stage *st)
{
    (void)st;
    return "logit-bias";
}

static void bias_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    struct bias_ctx *x = st->ctx;
    if (x->n == 0)
        return;
    if (c->identity) {
        for (size_t i = 0; i < x->n; i++) {
            struct sampler_candidate *e = &c->data[x->b[i].token];
            e->logit = saturate(e->logit + x->b[i].bias);
        }
    } else {
        for (size_t i = 0; i < c->size; i++) {
            int32_t id = c->data[i].id;
            size_t lo = 0, hi = x->n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (x->b[mid].token < id)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < x->n && x->b[lo].token == id)
                c->data[i].logit = saturate(c->data[i].logit + x->b[lo].bias);
        }
    }
    c->sorted = false;
}

static void bias_free(struct sampler_stage *st)
{
    struct bias_ctx *x = st->ctx;
    free(x->b);
}

static const struct sampler_stage_i bias_iface = {
    .name = bias_name, .apply = bias_apply, .free = bias_free,
};

static int cmp_bias(const void *a, const void *b)
{
    const struct sampler_logit_bias *x = a, *y = b;
    return (x->token > y->token) - (x->token < y->token);
}

int sampler_stage_logit_bias_new(struct sampler_stage **out, int32_t n_vocab, size_t n,
                                 const struct sampler_logit_bias *bias)
{
    *out = NULL;
    if (n_vocab <= 0 || (n && !bias) || n > (size_t)n_vocab * 4)
        return SAMPLER_E_INVALID;
    for (size_t i = 0; i < n; i++) {
        float v = bias[i].bias;
        if (bias[i].token < 0 || bias[i].token >= n_vocab || v != v || v > 1e30f ||
            (v < -1e30f && v != -INFINITY))
            return SAMPLER_E_INVALID;
    }
    struct sampler_stage *st = stage_alloc(&bias_iface, sizeof(struct bias_ctx));
    if (!st)
        return SAMPLER_E_NOMEM;
    struct bias_ctx *x = st->ctx;
    if (n) {
        x->b = malloc(n * sizeof(*x->b));
        if (!x->b) {
            free(st);
            return SAMPLER_E_NOMEM;
        }
        memcpy(x->b, bias, n * sizeof(*x->b));
        /* Sorting merely groups equal tokens; the sums do not depend on the order qsort
         * leaves them in except for float rounding of three or more biases on one token. */
        qsort(x->b, n, sizeof(*x->b), cmp_bias);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (m && x->b[m - 1].token == x->b[i].token)
                x->b[m - 1].bias += x->b[i].bias;
            else
                x->b[m++] = x->b[i];
        }
        x->n = m;
    }
    *out = st;
    return SAMPLER_OK;
}

/* ---- penalties ---- */

struct pen_ctx {
    int32_t n_vocab, last_n;
    float repeat, freq, presence;
    int32_t *counts; /* [n_vocab] occurrences in the window */
    int32_t *ring;   /* [last_n] the window, oldest at head when full */
    size_t head, n;
};

static const char *pen_name(const struct sampler_stage *st)
{
    (void)st;
    return "penalties";
}

static float pen_one(const struct pen_ctx *x, float logit, int32_t count)
{
    if (x->repeat != 1.0f)
        logit = logit <= 0 ? logit * x->repeat : logit / x->repeat;
    logit -= (float)count * x->freq + (count > 0 ? x->presence : 0.0f);
    return saturate(logit);
}

static void pen_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    struct pen_ctx *x = st->ctx;
    if (x->n == 0)
        return;
    if (c->identity) {
        /* Visit each distinct token of the window once: mark visited ones by negating their
         * count, then restore. O(last_n), not O(n_vocab). */
        for (size_t i = 0; i < x->n; i++) {
            int32_t t = x->ring[i];
            int32_t cnt = x->counts[t];
            if (cnt > 0) {
                c->data[t].logit = pen_one(x, c->data[t].logit, cnt);
                x->counts[t] = -cnt;
            }
        }
        for (size_t i = 0; i < x->n; i++) {
            int32_t t = x->ring[i];
            if (x->counts[t] < 0)
                x->counts[t] = -x->counts[t];
        }
    } else {
        for (size_t i = 0; i < c->size; i++) {
            int32_t id = c->data[i].id;
            if (id >= 0 && id < x->n_vocab && x->counts[id] > 0)
                c->data[i].logit = pen_one(x, c->data[i].logit, x->counts[id]);
        }
    }
    c->sorted = false;
}

static void pen_accept(struct sampler_stage *st, int32_t token)
{
    struct pen_ctx *x = st->ctx;
    if (x->last_n == 0 || token < 0 || token >= x->n_vocab)
        return;
    if (x->n == (size_t)x->last_n) {
        x->counts[x->ring[x->head]]--;
        x->ring[x->head] = token;
        x->head = (x->head + 1) % (size_t)x->last_n;
    } else {
        x->ring[x->n++] = token;
    }
    x->counts[token]++;
}

static void pen_reset(struct sampler_stage *st)
{
    struct pen_ctx *x = st->ctx;
    for (size_t i = 0; i < x->n; i++)
        x->counts[x->ring[i]] = 0;
    x->n = 0;
    x->head = 0;
}

static void pen_free(struct sampler_stage *st)
{
    struct pen_ctx *x = st->ctx;
    free(x->counts);
    free(x->ring);
}

static const struct sampler_stage_i pen_iface = {
    .name = pen_name, .apply = pen_apply, .accept = pen_accept, .reset = pen_reset,
    .free = pen_free,
};

static int finite_in(float v, float lim)
{
    return v == v && v >= -lim && v <= lim;
}

int sampler_stage_penalties_new(struct sampler_stage **out, int32_t n_vocab, int32_t last_n,
                                float repeat, float freq, float presence)
{
    *out = NULL;
    if (n_vocab <= 0 || last_n < 0 || last_n > SAMPLER_MAX_LAST_N || !finite_in(repeat, 1e6f) ||
        repeat <= 0 || !finite_in(freq, 1e6f) || !finite_in(presence, 1e6f))
        return SAMPLER_E_INVALID;
    struct sampler_stage *st = stage_alloc(&pen_iface, sizeof(struct pen_ctx));
    if (!st)
        return SAMPLER_E_NOMEM;
    struct pen_ctx *x = st->ctx;
    *x = (struct pen_ctx){n_vocab, last_n, repeat, freq, presence, NULL, NULL, 0, 0};
    x->counts = calloc((size_t)n_vocab, sizeof(int32_t));
    x->ring = malloc((size_t)(last_n ? last_n : 1) * sizeof(int32_t));
    if (!x->counts || !x->ring) {
        sampler_stage_free(st);
        return SAMPLER_E_NOMEM;
    }
    *out = st;
    return SAMPLER_OK;
}

/* ---- top-k ---- */

struct top_k_ctx {
    int32_t k;
};

static const char *top_k_name(const struct sampler_stage *st)
{
    (void)st;
    return "top-k";
}

/* The k best to a[0..k) with a heap kept in a[0..k) itself (root: the worst of them): one
 * pass, and most candidates cost a single comparison with the root. */
static void heap_select(struct sampler_candidate *a, size_t n, size_t k)
{
    for (size_t i = k / 2; i-- > 0;)
        sift_down(a, i, k);
    for (size_t i = k; i < n; i++)
        if (cand_before(&a[i], &a[0])) {
            cand_swap(a, 0, i);
            sift_down(a, 0, k);
        }
}

static void top_k_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    const struct top_k_ctx *x = st->ctx;
    if (x->k <= 0 || (size_t)x->k >= c->size)
        return;
    size_t k = (size_t)x->k;
    if (!c->sorted) {
        if (k <= 4096)
            heap_select(c->data, c->size, k);
        else
            sampler__select(c->data, c->size, k);
        sampler__sort(c->data, k);
    }
    c->size = k;
    c->sorted = true;
    c->identity = false;
}

static const struct sampler_stage_i top_k_iface = {.name = top_k_name, .apply = top_k_apply};

int sampler_stage_top_k_new(struct sampler_stage **out, int32_t k)
{
    *out = stage_alloc(&top_k_iface, sizeof(struct top_k_ctx));
    if (!*out)
        return SAMPLER_E_NOMEM;
    ((struct top_k_ctx *)(*out)->ctx)->k = k;
    return SAMPLER_OK;
}

/* ---- top-p ---- */

struct top_p_ctx {
    float p;
    size_t min_keep;
};

static const char *top_p_name(const struct sampler_stage *st)
{
    (void)st;
    return "top-p";
}

/* Buckets of logit distance from the best, for top-p on an unsorted array: 1/16 nat wide over
 * 32 nats; everything farther shares the last bucket. */
#define TOP_P_BUCKETS 512
#define TOP_P_RANGE 32.0f

static int top_p_bucket(float logit, float max)
{
    float d = (max - logit) * (TOP_P_BUCKETS / TOP_P_RANGE);
    return d < (float)(TOP_P_BUCKETS - 1) ? (int)d : TOP_P_BUCKETS - 1;
}

/* How many of the best candidates reach `target` probability mass (weights in .p), with
 * a[0..result) made the best candidates. One pass sums the mass per bucket; the bucket where
 * the running mass crosses the target is the only part that gets sorted. *sorted says whether
 * a[0..result) is in order. */
static size_t mass_select(struct sampler_candidate *a, size_t n, float max, double target,
                          bool *sorted)
{
    double mass[TOP_P_BUCKETS] = {0};
    size_t count[TOP_P_BUCKETS] = {0};
    for (size_t i = 0; i < n; i++) {
        int b = top_p_bucket(a[i].logit, max);
        mass[b] += a[i].p;
        count[b]++;
    }
    double acc = 0;
    int bound = 0;
    while (bound < TOP_P_BUCKETS - 1 && acc + mass[bound] < target)
        acc += mass[bound++];
    /* the better buckets to the front, then the boundary bucket after them */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (top_p_bucket(a[i].logit, max) < bound)
            cand_swap(a, m++, i);
    size_t e = m;
    for (size_t i = m; i < n; i++)
        if (top_p_bucket(a[i].logit, max) == bound)
            cand_swap(a, e++, i);
    sampler__sort(a + m, e - m);
    *sorted = m == 0;
    for (size_t i = m; i < e; i++) {
        acc += a[i].p;
        if (acc >= target)
            return i + 1;
    }
    return e; /* rounding: the whole boundary bucket */
}

static void top_p_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    const struct top_p_ctx *x = st->ctx;
    size_t n = c->size;
    if (x->p >= 1.0f || n == 0)
        return;
    float max = c->data[best_index(c)].logit;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        float w = (float)weight(c->data[i].logit, max);
        c->data[i].p = w;
        sum += w;
    }
    double target = (double)x->p * sum;
    size_t min_keep = x->min_keep ? x->min_keep : 1;
    if (min_keep > n)
        min_keep = n;
    size_t cut = n;
    if (c->sorted) {
        double cum = 0;
        for (size_t i = 0; i < n; i++) {
            cum += c->data[i].p;
            if (cum >= target) {
                cut = i + 1;
                break;
            }
        }
        if (cut < min_keep)
            cut = min_keep;
    } else {
        bool sorted;
        cut = mass_select(c->data, n, max, target, &sorted);
        if (cut < min_keep) {
            sampler__select(c->data + cut, n - cut, min_keep - cut);
            cut = min_keep;
            sorted = false;
        }
        c->sorted = sorted;
    }
    if (cut < n)
        c->identity = false;
    c->size = cut;
}

static const struct sampler_stage_i top_p_iface = {.name = top_p_name, .apply = top_p_apply};

int sampler_stage_top_p_new(struct sampler_stage **out, float p, size_t min_keep)
{
    *out = NULL;
    if (!(p >= 0.0f))
        return SAMPLER_E_INVALID;
    *out = stage_alloc(&top_p_iface, sizeof(struct top_p_ctx));
    if (!*out)
        return SAMPLER_E_NOMEM;
    *(struct top_p_ctx *)(*out)->ctx = (struct top_p_ctx){p, min_keep};
    return SAMPLER_OK;
}

/* ---- min-p ---- */

struct min_p_ctx {
    float p;
    float log_p;
    size_t min_keep;
};

static const char *min_p_name(const struct sampler_stage *st)
{
    (void)st;
    return "min-p";
}

/* p_i >= p * p_max, i.e. exp(l_i - max) >= p. Far from the threshold the libm log decides;
 * within 1e-3 of it the exact exp does, so the outcome is the same on every platform. */
static int min_p_keep(const struct min_p_ctx *x, float logit, float max)
{
    if (logit == max)
        return 1;
    double d = (double)logit - (double)max;
    if (d > (double)x->log_p + 1e-3)
        return 1;
    if (d < (double)x->log_p - 1e-3)
        return 0;
    return det_exp(d) >= (double)x->p;
}

static void min_p_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    const struct min_p_ctx *x = st->ctx;
    size_t n = c->size;
    if (x->p <= 0.0f || n == 0)
        return;
    float max = c->data[best_index(c)].logit;
    size_t min_keep = x->min_keep ? x->min_keep : 1;
    if (min_keep > n)
        min_keep = n;
    size_t kept = 0;
    if (c->sorted) {
        while (kept < n && min_p_keep(x, c->data[kept].logit, max))
            kept++;
        if (kept < min_keep)
            kept = min_keep;
        if (kept < n)
            c->identity = false;
        c->size = kept;
        return;
    }
    /* one pass: kept candidates are swapped to the front (in order), the rest stay behind */
    for (size_t i = 0; i < n; i++)
        if (min_p_keep(x, c->data[i].logit, max))
            cand_swap(c->data, kept++, i);
    if (kept == n)
        return;
    if (kept < min_keep) {
        sampler__select(c->data + kept, n - kept, min_keep - kept);
        kept = min_keep;
    }
    c->size = kept;
    c->identity = false;
}

static const struct sampler_stage_i min_p_iface = {.name = min_p_name, .apply = min_p_apply};

int sampler_stage_min_p_new(struct sampler_stage **out, float p, size_t min_keep)
{
    *out = NULL;
    if (!(p <= 1.0f) || p != p)
        return SAMPLER_E_INVALID;
    *out = stage_alloc(&min_p_iface, sizeof(struct min_p_ctx));
    if (!*out)
        return SAMPLER_E_NOMEM;
    *(struct min_p_ctx *)(*out)->ctx =
        (struct min_p_ctx){p, p > 0.0f ? logf(p) : -INFINITY, min_keep};
    return SAMPLER_OK;
}

/* ---- temperature ---- */

struct temp_ctx {
    float t;
};

static const char *temp_name(const struct sampler_stage *st)
{
    (void)st;
    return "temperature";
}

static void temp_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    const struct temp_ctx *x = st->ctx;
    if (x->t == 1.0f)
        return;
    int saturated = 0;
    for (size_t i = 0; i < c->size; i++) {
        float v = c->data[i].logit / x->t;
        if (v > FLT_MAX) {
            v = FLT_MAX;
            saturated = 1;
        }
        c->data[i].logit = v;
    }
    if (saturated) /* distinct logits may have become equal: the order may have changed */
        c->sorted = false;
}

static const struct sampler_stage_i temp_iface = {.name = temp_name, .apply = temp_apply};

int sampler_stage_temperature_new(struct sampler_stage **out, float t)
{
    *out = NULL;
    if (!(t > 0.0f) || t > 1e6f)
        return SAMPLER_E_INVALID;
    *out = stage_alloc(&temp_iface, sizeof(struct temp_ctx));
    if (!*out)
        return SAMPLER_E_NOMEM;
    /* Below 1e-6 the draw is greedy anyway; the floor keeps logits/t finite. */
    ((struct temp_ctx *)(*out)->ctx)->t = t < 1e-6f ? 1e-6f : t;
    return SAMPLER_OK;
}

/* ---- greedy ---- */

static const char *greedy_name(const struct sampler_stage *st)
{
    (void)st;
    return "greedy";
}

static void greedy_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    (void)st;
    c->selected = c->size ? (int64_t)best_index(c) : -1;
}

static const struct sampler_stage_i greedy_iface = {.name = greedy_name, .apply = greedy_apply};

int sampler_stage_greedy_new(struct sampler_stage **out)
{
    *out = stage_alloc(&greedy_iface, 0);
    return *out ? SAMPLER_OK : SAMPLER_E_NOMEM;
}

/* ---- dist: seeded random draw ---- */

struct dist_ctx {
    uint64_t seed;
    uint64_t s[4];
};

static const char *dist_name(const struct sampler_stage *st)
{
    (void)st;
    return "dist";
}

static void dist_apply(struct sampler_stage *st, struct sampler_candidates *c)
{
    struct dist_ctx *x = st->ctx;
    size_t n = c->size;
    if (n == 0) {
        c->selected = -1;
        return;
    }
    size_t b = best_index(c);
    float max = c->data[b].logit;
    if (max == -INFINITY) { /* everything banned: fall back to the lowest id */
        c->selected = (int64_t)b;
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        float w = (float)weight(c->data[i].logit, max);
        c->data[i].p = w;
        sum += w;
    }
    double target = rng_uniform(x->s) * sum;
    double cum = 0;
    int64_t sel = -1;
    for (size_t i = 0; i < n; i++) {
        cum += c->data[i].p;
        if (target < cum) {
            sel = (int64_t)i;
            break;
        }
    }
    if (sel < 0) /* rounding pushed target to the total: the last candidate with weight */
        for (size_t i = n; i-- > 0;)
            if (c->data[i].p > 0) {
                sel = (int64_t)i;
                break;
            }
    c->selected = sel;
}

static void dist_reset(struct sampler_stage *st)
{
    struct dist_ctx *x = st->ctx;
    sampler__rng_seed(x->s, x->seed);
}

static const struct sampler_stage_i dist_iface = {
    .name = dist_name, .apply = dist_apply, .reset = dist_reset,
};

int sampler_stage_dist_new(struct sampler_stage **out, uint64_t seed)
{
    *out = stage_alloc(&dist_iface, sizeof(struct dist_ctx));
    if (!*out)
        return SAMPLER_E_NOMEM;
    struct dist_ctx *x = (*out)->ctx;
    x->seed = seed;
    sampler__rng_seed(x->s, seed);
    return SAMPLER_OK;
}

