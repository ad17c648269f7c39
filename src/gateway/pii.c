/* Privacy module entry points: kind names, error text, scanning into arrays and counting. */
#include "gateway/pii.h"

static const char *const kind_names[PII_KIND_COUNT] = {
    [PII_KIND_EMAIL] = "email",
    [PII_KIND_PHONE] = "phone",
    [PII_KIND_CARD] = "card",
    [PII_KIND_IBAN] = "iban",
    [PII_KIND_IPV4] = "ipv4",
    [PII_KIND_IPV6] = "ipv6",
    [PII_KIND_SSN] = "ssn",
    [PII_KIND_NATIONAL_ID] = "national_id",
    [PII_KIND_API_KEY] = "api_key",
    [PII_KIND_PRIVATE_KEY] = "private_key",
    [PII_KIND_PERSON] = "person",
};

static const char *const kind_tags[PII_KIND_COUNT] = {
    [PII_KIND_EMAIL] = "EMAIL",
    [PII_KIND_PHONE] = "PHONE",
    [PII_KIND_CARD] = "CARD",
    [PII_KIND_IBAN] = "IBAN",
    [PII_KIND_IPV4] = "IPV4",
    [PII_KIND_IPV6] = "IPV6",
    [PII_KIND_SSN] = "SSN",
    [PII_KIND_NATIONAL_ID] = "NATIONAL_ID",
    [PII_KIND_API_KEY] = "API_KEY",
    [PII_KIND_PRIVATE_KEY] = "PRIVATE_KEY",
    [PII_KIND_PERSON] = "PERSON",
};

const char *pii_kind_name(enum pii_kind kind)
{
    return ((unsigned)kind < PII_KIND_COUNT) ? kind_names[kind] : "unknown";
}

const char *pii_kind_tag(enum pii_kind kind)
{
    return ((unsigned)kind < PII_KIND_COUNT) ? kind_tags[kind] : NULL;
}

const char *pii_strerror(int err)
{
    switch (err) {
    case PII_OK: return "ok";
    case PII_E_ARG: return "invalid argument";
    case PII_E_NOMEM: return "out of memory";
    case PII_E_FULL: return "too many detected values";
    case PII_E_TOO_BIG: return "text too large";
    default: return "unknown error";
    }
}

struct array_sink {
    struct pii_match *m;
    size_t max, n;
    bool full;
};

static int array_emit(void *ctx, const struct pii_match *m)
{
    struct array_sink *s = ctx;
    if (s->n == s->max) {
        s->full = true;
        return PII_E_FULL;
    }
    s->m[s->n++] = *m;
    return 0;
}

int pii_scan_kinds(const char *text, size_t len, unsigned mask, struct pii_match *matches,
                   size_t max, size_t *n)
{
    if (!n || (!matches && max))
        return PII_E_ARG;
    *n = 0;
    struct array_sink s = {matches, max, 0, false};
    int rc = pii__scan_run(text, len, mask & PII_MASK_ALL, array_emit, &s);
    *n = s.n;
    return rc;
}

int pii_scan(const char *text, size_t len, struct pii_match *matches, size_t max, size_t *n)
{
    return pii_scan_kinds(text, len, PII_MASK_ALL, matches, max, n);
}

static int count_emit(void *ctx, const struct pii_match *m)
{
    unsigned *counts = ctx;
    counts[m->kind]++;
    return 0;
}

int pii_count(const char *text, size_t len, unsigned mask, unsigned counts[PII_KIND_COUNT])
{
    if (!counts)
        return PII_E_ARG;
    for (int k = 0; k < PII_KIND_COUNT; k++)
        counts[k] = 0;
    return pii__scan_run(text, len, mask & PII_MASK_ALL, count_emit, counts);
}
