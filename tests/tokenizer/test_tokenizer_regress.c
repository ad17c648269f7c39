/* Regressions found by fuzzing the tokenizer (tests/fuzz/fuzz_tokenizer.c). */
#include "test.h"

#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"

/* Sizing a decode with a NULL buffer of capacity 0 must not touch the buffer (it used to
 * memcpy zero bytes to NULL: undefined behaviour UBSan reports). */
TEST(tokenizer_regress_decode_size_query)
{
    char *path = test_shared_path("fixtures/vocab/ggml-vocab-gpt-2.gguf");
    struct gguf *g = NULL;
    struct tokenizer *tok = NULL;
    char err[256];
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    REQUIRE(tokenizer_from_gguf(&tok, g, err, sizeof(err)) == 0);
    /* A control token renders as "" without TOKENIZER_DECODE_SPECIAL: a zero-length piece. */
    int32_t eot = tokenizer_find(tok, "<|endoftext|>", 13);
    REQUIRE(eot >= 0);
    int32_t ids[2] = {eot, eot};
    CHECK_EQ_INT(tokenizer_decode(tok, ids, 2, NULL, 0, 0), 0);
    tokenizer_free(tok);
    gguf_close(g);
}
