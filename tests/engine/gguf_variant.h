/* Test helper: a copy of a fixture model with tensors replaced or added and keys set. */
#ifndef TANDEM_TEST_GGUF_VARIANT_H
#define TANDEM_TEST_GGUF_VARIANT_H

#include "engine/gguf.h"

/* Called for every tensor of the source, in order: may return replacement data of the same
 * size (kept alive by the callee until the write), or NULL to keep the original; may add
 * tensors or keys to w. Called once more with t == NULL at the end. */
typedef const void *(*gguf_variant_fn)(struct gguf_writer *w, const struct gguf *src,
                                        const struct gguf_tensor *t, void *ud);

/* Writes <tmpdir>/<name>.gguf from fixtures/models/<fixture>.gguf; returns its path
 * (malloc'd) or NULL. */
char *gguf_variant(const char *fixture, const char *name, gguf_variant_fn fn, void *ud);

/* Loads a model and returns the last-position logits of a fixed 8-token prompt (malloc'd),
 * setting *n_vocab. */
float *gguf_variant_logits(const char *path, int *n_vocab);
/* max |a - b| / max |b| */
float gguf_variant_rel_diff(const float *a, const float *b, int n);

#endif
