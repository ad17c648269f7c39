/* Word -> ids cache shared by all threads: direct-mapped, one cache line per entry, seqlocked. */
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

#define CACHE_ENTRIES (1u << 16)   /* 4 MiB per tokenizer */

_Static_assert(TOK_CACHE_MAX_WORD == 24 && TOK_CACHE_MAX_IDS == 8, "entry layout");

/* Readers never block: they copy the entry and retry-free discard it if a writer was inside
 * (the sequence number was odd or changed). Writers claim an entry with a CAS and skip it when
 * another writer holds it. The payload is atomic words accessed relaxed, so the races the
 * protocol tolerates are not data races in C11 terms. */
struct entry {
    _Atomic uint32_t seq;     /* even: stable; odd: being written */
    _Atomic uint32_t meta;    /* len | n_ids << 8 | tag << 16; 0 = empty */
    _Atomic uint64_t w[7];    /* 24 bytes of word (zero padded), then 8 int32 ids */
};
_Static_assert(sizeof(struct entry) == 64, "one cache line");

struct tok__cache {
    struct entry e[CACHE_ENTRIES];
};

struct tok__cache *tok__cache_new(void)
{
    struct tok__cache *c = aligned_alloc(64, sizeof(struct tok__cache));
    if (!c)
        return NULL;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        atomic_init(&c->e[i].seq, 0);
        atomic_init(&c->e[i].meta, 0);
        for (int j = 0; j < 7; j++)
            atomic_init(&c->e[i].w[j], 0);
    }
    return c;
}

void tok__cache_free(struct tok__cache *c)
{
    free(c);
}

static uint32_t make_meta(size_t len, int n, uint64_t h)
{
    return (uint32_t)len | (uint32_t)n << 8 | (uint32_t)(h >> 48) << 16;
}

int tok__cache_get(struct tok__cache *c, const char *word, size_t len, uint64_t h, int32_t *out)
{
    if (len == 0 || len > TOK_CACHE_MAX_WORD)
        return -1;
    struct entry *e = &c->e[h & (CACHE_ENTRIES - 1)];
    uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 & 1)
        return -1;
    uint32_t meta = atomic_load_explicit(&e->meta, memory_order_relaxed);
    uint64_t w[7];
    for (int j = 0; j < 7; j++)
        w[j] = atomic_load_explicit(&e->w[j], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1)
        return -1;
    if ((meta & 0xFF) != len || (meta >> 16) != (uint32_t)(h >> 48))
        return -1;
    uint64_t key[3] = {0, 0, 0};
    memcpy(key, word, len);
    if (key[0] != w[0] || key[1] != w[1] || key[2] != w[2])
        return -1;
    int n = (int)((meta >> 8) & 0xFF);
    memcpy(out, &w[3], (size_t)n * sizeof(int32_t));
    return n;
}

void tok__cache_put(struct tok__cache *c, const char *word, size_t len, uint64_t h,
                    const int32_t *ids, int n)
{
    if (len == 0 || len > TOK_CACHE_MAX_WORD || n < 0 || n > TOK_CACHE_MAX_IDS)
        return;
    struct entry *e = &c->e[h & (CACHE_ENTRIES - 1)];
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &s, s + 1,
                                                            memory_order_acquire,
                                                            memory_order_relaxed))
        return;
    atomic_thread_fence(memory_order_release);
    uint64_t w[7] = {0};
    memcpy(w, word, len);
    memcpy(&w[3], ids, (size_t)n * sizeof(int32_t));
    atomic_store_explicit(&e->meta, make_meta(len, n, h), memory_order_relaxed);
    for (int j = 0; j < 7; j++)
        atomic_store_explicit(&e->w[j], w[j], memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}
