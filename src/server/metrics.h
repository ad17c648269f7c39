/* Metrics registry (counters, gauges, histograms with labels) rendered as Prometheus text. */
#ifndef TANDEM_SERVER_METRICS_H
#define TANDEM_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_error {
    METRICS_OK = 0,
    METRICS_E_ARG = -1, /* bad name, label name, bucket list or parameter */
    METRICS_E_NOMEM = -2,
    METRICS_E_EXISTS = -3, /* a family with that name is already registered */
    METRICS_E_TOOBIG = -4, /* the render buffer reached its cap */
};
const char *metrics_strerror(int err);

#define METRICS_MAX_LABELS 4      /* label names per family */
#define METRICS_MAX_BUCKETS 64    /* finite bucket bounds per histogram */
#define METRICS_MAX_VALUE_LEN 128 /* label values are truncated to this many bytes */
#define METRICS_DEFAULT_MAX_CHILDREN 1024
#define METRICS_OTHER "other" /* every label value of a family's overflow child */

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
};

struct metrics_registry; /* families; owns everything below */
struct metrics_family;   /* one metric name: help, type, label names, children */
struct metrics_child;    /* one combination of label values: the thing that is updated */

/* A new, empty registry. Each family holds at most max_children children (0: the default,
 * 1024); once full, updates for new label values go to one extra overflow child whose label
 * values are all METRICS_OTHER. NULL when out of memory. */
struct metrics_registry *metrics_registry_new(size_t max_children);
/* Frees the registry, its families and children: every family and child pointer obtained from
 * it becomes invalid. No other thread may use it any more. Accepts NULL. */
void metrics_registry_free(struct metrics_registry *r);

/* Register a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; help: any text (escaped on output);
 * labels: n_labels (<= METRICS_MAX_LABELS) names [a-zA-Z_][a-zA-Z0-9_]*, not starting with
 * "__" ("le" is reserved for histograms). *out is owned by the registry and valid until
 * metrics_registry_free. Thread-safe, but meant for start-up. */
int metrics_counter_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                        const char *help, const char *const *labels, size_t n_labels);
int metrics_gauge_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                      const char *help, const char *const *labels, size_t n_labels);
/* bounds: n_bounds (1..METRICS_MAX_BUCKETS) finite upper bounds, strictly increasing; the +Inf
 * bucket is implicit. The bounds are copied. */
int metrics_histogram_new(struct metrics_registry *r, struct metrics_family **out, const char *name,
                          const char *help, const char *const *labels, size_t n_labels,
                          const double *bounds, size_t n_bounds);

/* The child for these label values (exactly one per label name; NULL values count as ""),
 * created on first use. Values are cut to METRICS_MAX_VALUE_LEN bytes and invalid UTF-8 bytes
 * become '?'. Returns the overflow child when the family is full, NULL only when f is NULL or
 * memory ran out. The pointer stays valid until metrics_registry_free, so hot paths may cache
 * it. Thread-safe (a read lock on a small hash map; a write lock on first use). */
struct metrics_child *metrics_family_child(struct metrics_family *f, const char *const *values);

/* Updates: lock-free, callable from any thread; c may be NULL (no-op), and an update that does
 * not fit the child's type (set on a counter, observe on a gauge, ...) is ignored. */
void metrics_child_inc(struct metrics_child *c);               /* counter or gauge += 1 */
void metrics_child_add(struct metrics_child *c, double v);     /* counter (v >= 0 only) or gauge */
void metrics_child_set(struct metrics_child *c, double v);     /* gauge */
void metrics_child_observe(struct metrics_child *c, double v); /* histogram; NaN ignored */

/* Lookup + update in one call, for cold paths. */
void metrics_add(struct metrics_family *f, const char *const *values, double v);
void metrics_set(struct metrics_family *f, const char *const *values, double v);
void metrics_observe(struct metrics_family *f, const char *const *values, double v);

/* Current value of a counter or gauge; a histogram's sum. 0 for NULL. */
double metrics_child_value(const struct metrics_child *c);
/* Number of observations of a histogram (0 for other types and NULL). */
uint64_t metrics_child_count(const struct metrics_child *c);

/* A growable output buffer with a hard cap. data is NUL-terminated once anything was written;
 * the caller owns it (free with metrics_buf_free, or take data and free() it). */
struct metrics_buf {
    char *data;
    size_t len, cap;
    size_t max; /* hard cap in bytes, including the NUL */
};
/* max 0: 16 MiB. */
void metrics_buf_init(struct metrics_buf *b, size_t max);
void metrics_buf_free(struct metrics_buf *b); /* accepts a zeroed struct */

/* Append the text exposition format (version 0.0.4) of every family that has at least one
 * child: "# HELP", "# TYPE", then the samples. Families are sorted by name, children by their
 * label values; histogram buckets are cumulative and end with le="+Inf", then _sum and _count.
 * Safe while other threads update and create children (each value is read atomically; a
 * histogram's _count is the sum of its buckets, so they always agree). On error the buffer
 * keeps what was written so far. */
int metrics_render(struct metrics_registry *r, struct metrics_buf *b);

/* Content-Type of the rendered text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the metrics tandem exports (docs/metrics.md) ---- */

/* Handles into one registry; all valid until metrics_tandem_free. Label orders as listed. */
struct metrics_tandem {
    struct metrics_registry *reg;
    struct metrics_family *requests;           /* counter {model,target,outcome} */
    struct metrics_family *request_errors;     /* counter {model,target,status} */
    struct metrics_family *request_duration;   /* histogram seconds {model,target} */
    struct metrics_family *ttft;               /* histogram seconds {model,target} */
    struct metrics_family *tokens;             /* counter {model,target,kind} */
    struct metrics_family *cost_usd;           /* counter {model,target,kind} */
    struct metrics_family *prefix_cache_hits;  /* counter {model} */
    struct metrics_family *slots_busy;         /* gauge {model} */
    struct metrics_family *slots;              /* gauge {model} */
    struct metrics_family *queue_depth;        /* gauge {model} */
    struct metrics_family *upstream_up;        /* gauge {target} */
    struct metrics_family *privacy_detections; /* counter {kind} */
    struct metrics_family *privacy_actions;    /* counter {action} */
    struct metrics_family *build_info;         /* gauge {version}, always 1 */
};

/* Bucket bounds (seconds) of the two latency histograms. */
extern const double metrics_duration_buckets[];
extern const size_t metrics_duration_buckets_n;
extern const double metrics_ttft_buckets[];
extern const size_t metrics_ttft_buckets_n;

/* A registry with every tandem metric registered and tandem_build_info{version} set to 1
 * (version NULL: "unknown"). max_children as for metrics_registry_new. *out is owned by the
 * caller: free with metrics_tandem_free. */
int metrics_tandem_new(struct metrics_tandem **out, const char *version, size_t max_children);
void metrics_tandem_free(struct metrics_tandem *m); /* frees the registry too; accepts NULL */

#endif
