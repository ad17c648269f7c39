/* libFuzzer: arbitrary text through the PII scanner, the vault and the streaming restorer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/pii.h"

/* Deterministic chunk sizes, seeded from the input so a crash replays. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Matches are in bounds, of known kinds, in the mask, sorted and non-overlapping. */
static void check_matches(const struct pii_match *m, size_t n, size_t len, unsigned mask)
{
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)m[i].kind >= PII_KIND_COUNT || !(mask & PII_MASK(m[i].kind)))
            abort();
        if (m[i].len == 0 || m[i].start > len || m[i].len > len - m[i].start)
            abort();
        if (i && m[i].start < end)
            abort();
        end = m[i].start + m[i].len;
    }
}

/* Scan with mask; *out gets a malloc'd array (caller frees), returns the number of matches. */
static size_t scan(const char *text, size_t len, unsigned mask, struct pii_match **out)
{
    /* Matches are non-empty and disjoint: len of them at most. */
    struct pii_match *m = malloc((len + 1) * sizeof(*m));
    size_t n = (size_t)-1;
    if (!m)
        abort();
    int rc = pii_scan_kinds(text, len, mask, m, len + 1, &n);
    if (rc || n > len)
        abort();
    check_matches(m, n, len, mask);

    /* A short array gets the first matches and says it is full. */
    struct pii_match few[2];
    size_t nf = (size_t)-1;
    rc = pii_scan_kinds(text, len, mask, few, 2, &nf);
    if ((rc != (n > 2 ? PII_E_FULL : 0)) || nf != (n < 2 ? n : 2) ||
        memcmp(few, m, nf * sizeof(*m)))
        abort();

    /* The counts agree with the matches. */
    unsigned counts[PII_KIND_COUNT], expect[PII_KIND_COUNT] = {0};
    if (pii_count(text, len, mask, counts))
        abort();
    for (size_t i = 0; i < n; i++)
        expect[m[i].kind]++;
    if (memcmp(counts, expect, sizeof(counts)))
        abort();
    *out = m;
    return n;
}

/* out[0, out_len) is text with every match replaced by a placeholder the vault maps back. */
static void check_pseudonymized(const struct pii_vault *v, const char *text, size_t len,
                                const struct pii_match *m, size_t n, const char *out,
                                size_t out_len)
{
    size_t i = 0, o = 0; /* read positions in text and out */
    for (size_t k = 0; k < n; k++) {
        size_t plain = m[k].start - i;
        if (plain > out_len - o || memcmp(out + o, text + i, plain))
            abort();
        o += plain;
        const char *close = o < out_len ? memchr(out + o, ']', out_len - o) : NULL;
        if (!close || out[o] != '[')
            abort();
        size_t pl = (size_t)(close - (out + o)) + 1, vl = 0;
        if (pl > PII_PLACEHOLDER_MAX)
            abort();
        const char *val = pii_vault_lookup(v, out + o, pl, &vl);
        if (!val || vl != m[k].len || memcmp(val, text + m[k].start, vl))
            abort();
        o += pl;
        i = m[k].start + m[k].len;
    }
    if (len - i != out_len - o || memcmp(out + o, text + i, len - i) || out[out_len])
        abort();
}

/* Feeds p[0, n) to a new restorer in chunks of 0..31 bytes; returns the malloc'd result. */
static char *restore(const struct pii_vault *v, const char *p, size_t n, uint32_t seed,
                     size_t *out_n)
{
    struct pii_restorer *r = pii_restore_new(v);
    size_t cap = 2 * n + 64, k = 0;
    char *res = malloc(cap);
    if (!r || !res)
        abort();
    const char *o;
    size_t on;
    for (size_t i = 0; i <= n;) {
        bool last = i == n;
        size_t c = last ? 0 : next_rand(&seed) % 32;
        if (c > n - i)
            c = n - i;
        int rc = last ? pii_restore_flush(r, &o, &on) : pii_restore_feed(r, p + i, c, &o, &on);
        if (rc || !o)
            abort();
        if (on > cap - k) {
            while (on > cap - k)
                cap *= 2;
            char *g = realloc(res, cap);
            if (!g)
                abort();
            res = g;
        }
        memcpy(res + k, o, on);
        k += on;
        if (last)
            break;
        i += c;
    }
    pii_restore_free(r);
    *out_n = k;
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    /* The first byte picks the mask and the chunking; the whole input is the text (so the
     * chunking does not change what the scanner sees). */
    unsigned sel = size ? data[0] : 0;
    unsigned mask = sel & 1 ? PII_MASK_ALL : PII_MASK_ALL & ~(1u << (sel >> 1) % PII_KIND_COUNT);
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)size ^ (sel << 8);

    struct pii_match *all = NULL, *m = NULL;
    size_t n_all = scan(text, size, PII_MASK_ALL, &all);
    struct pii_match *plain = malloc((size + 1) * sizeof(*plain));
    size_t n_plain = 0;
    if (!plain || pii_scan(text, size, plain, size + 1, &n_plain) || n_plain != n_all ||
        memcmp(plain, all, n_all * sizeof(*all)))
        abort();
    free(plain);
    size_t n = scan(text, size, mask, &m);

    struct pii_vault *v = pii_vault_new();
    if (!v)
        abort();
    char *out = NULL;
    size_t out_len = 0;
    unsigned counts[PII_KIND_COUNT], expect[PII_KIND_COUNT] = {0};
    if (pii_vault_pseudonymize(v, text, size, mask, &out, &out_len, counts) || !out)
        abort();
    for (size_t i = 0; i < n; i++)
        expect[m[i].kind]++;
    if (memcmp(counts, expect, sizeof(counts)) || pii_vault_size(v) > n)
        abort();
    check_pseudonymized(v, text, size, m, n, out, out_len);

    /* The same text again: the same placeholders, nothing new in the vault. */
    size_t before = pii_vault_size(v), again_len = 0;
    char *again = NULL;
    if (pii_vault_pseudonymize(v, text, size, mask, &again, &again_len, NULL) ||
        again_len != out_len || memcmp(again, out, out_len) || pii_vault_size(v) != before)
        abort();
    free(again);

    /* Restoring gives the original back, however the answer is cut, unless the original had
     * a '[' of its own (then it may look like a placeholder). */
    size_t back_len = 0;
    char *back = restore(v, out, out_len, seed, &back_len);
    if (!memchr(text, '[', size) && (back_len != size || memcmp(back, text, size)))
        abort();
    free(back);
    /* Text with no placeholder in it passes through unchanged. */
    if (!memchr(text, '[', size)) {
        back = restore(v, text, size, seed + 1, &back_len);
        if (back_len != size || memcmp(back, text, size))
            abort();
        free(back);
    }

    free(out);
    pii_vault_free(v);
    free(m);
    free(all);
    return 0;
}
