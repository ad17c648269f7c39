/* The audit log's storage callbacks mapped onto the state store. */
#include "trust/audit_store.h"

#include <stdlib.h>
#include <string.h>

static int map_err(int e)
{
    switch (e) {
    case 0: return 0;
    case STORE_E_NOT_FOUND: return AUDIT_E_NOTFOUND;
    case STORE_E_EXISTS: return AUDIT_E_EXISTS;
    case STORE_E_NOMEM: return AUDIT_E_NOMEM;
    default: return AUDIT_E_STORAGE;
    }
}

static int st_append(void *ud, int64_t ts_ms, const uint8_t *record, size_t len,
                     const uint8_t leaf_hash[AUDIT_HASH_SIZE], uint64_t *idx)
{
    const int64_t i = store_audit_append(ud, ts_ms, record, len, leaf_hash);
    if (i < 0)
        return map_err((int)i);
    *idx = (uint64_t)i;
    return 0;
}

static int st_count(void *ud, uint64_t *n)
{
    const int64_t c = store_audit_count(ud);
    if (c < 0)
        return map_err((int)c);
    *n = (uint64_t)c;
    return 0;
}

static int st_get(void *ud, uint64_t idx, int64_t *ts_ms, uint8_t leaf_hash[AUDIT_HASH_SIZE],
                  uint8_t **record, size_t *len)
{
    void *rec = NULL;
    const int e = store_audit_get(ud, (int64_t)idx, ts_ms, record ? &rec : NULL, len, leaf_hash);
    if (record)
        *record = rec;
    return map_err(e);
}

static int st_leaf_hashes(void *ud, uint64_t first, uint64_t n, uint8_t (*out)[AUDIT_HASH_SIZE],
                          uint64_t *got)
{
    const int64_t k = store_audit_leaf_hashes(ud, (int64_t)first, (int64_t)n, out);
    if (k < 0)
        return map_err((int)k);
    *got = (uint64_t)k;
    return 0;
}

static void to_store(const struct audit_head *h, struct store_audit_head *o)
{
    memset(o, 0, sizeof(*o));
    o->tree_size = (int64_t)h->tree_size;
    memcpy(o->root_hash, h->root, sizeof(o->root_hash));
    o->ts_ms = h->ts_ms;
    o->sig_len = h->sig_len <= sizeof(o->signature) ? h->sig_len : 0;
    memcpy(o->signature, h->sig, o->sig_len);
}

static void from_store(const struct store_audit_head *o, struct audit_head *h)
{
    memset(h, 0, sizeof(*h));
    h->tree_size = (uint64_t)o->tree_size;
    memcpy(h->root, o->root_hash, sizeof(h->root));
    h->ts_ms = o->ts_ms;
    h->sig_len = o->sig_len <= sizeof(h->sig) ? o->sig_len : 0;
    memcpy(h->sig, o->signature, h->sig_len);
}

static int st_head_put(void *ud, const struct audit_head *h)
{
    struct store_audit_head o;
    to_store(h, &o);
    return map_err(store_audit_head_put(ud, &o));
}

static int st_head_latest(void *ud, struct audit_head *out)
{
    struct store_audit_head o;
    const int e = store_audit_head_get_latest(ud, &o);
    if (!e)
        from_store(&o, out);
    return map_err(e);
}

static int st_head_next(void *ud, uint64_t min_size, struct audit_head *out)
{
    struct store_audit_head o;
    const int e = store_audit_head_get_next(ud, (int64_t)min_size, &o);
    if (!e)
        from_store(&o, out);
    return map_err(e);
}

static const struct audit_storage_ops store_ops = {
    .append = st_append,
    .count = st_count,
    .get = st_get,
    .leaf_hashes = st_leaf_hashes,
    .head_put = st_head_put,
    .head_latest = st_head_latest,
    .head_next = st_head_next,
};

struct audit_storage audit_store_storage(struct store *s)
{
    return (struct audit_storage){.ops = &store_ops, .ud = s};
}
