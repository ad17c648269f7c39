/* Tokenizer behaviour: special tokens, BOS/EOS, pieces, streaming, threads, models, bad metadata. */
#include "test.h"

#include <pthread.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

struct fx {
    struct gguf *g;
    struct tokenizer *tok;
};

static bool load(struct fx *f, const char *rel)
{
    char err[256] = "";
    char *path = test_shared_path(rel);
    f->g = NULL;
    f->tok = NULL;
    if (gguf_open(&f->g, path, err, sizeof(err))) {
        test__fail(__FILE__, __LINE__, "gguf_open %s: %s", path, err);
        return false;
    }
    int rc = tokenizer_from_gguf(&f->tok, f->g, err, sizeof(err));
    if (rc) {
        test__fail(__FILE__, __LINE__, "tokenizer_from_gguf %s: %s", path, err);
        return false;
    }
    return true;
}

static void unload(struct fx *f)
{
    tokenizer_free(f->tok);
    gguf_close(f->g);
}

static int enc(const struct tokenizer *tok, const char *s, int32_t *ids, size_t max, unsigned fl)
{
    return tokenizer_encode(tok, s, strlen(s), ids, max, fl);
}

static bool roundtrip(const struct tokenizer *tok, const char *s)
{
    int32_t ids[1024];
    char out[4096];
    int n = enc(tok, s, ids, 1024, 0);
    if (n < 0 || n > 1024)
        return false;
    int64_t l = tokenizer_decode(tok, ids, (size_t)n, out, sizeof(out), 0);
    return l == (int64_t)strlen(s) && !memcmp(out, s, (size_t)l);
}

static const char *const texts[] = {
    "Hello world",
    " Hello, y'all! How are you \xf0\x9f\x98\x81 ?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple",
    "\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8",
    "int main(void) {\n\treturn 0;\n}\n",
    "   leading and trailing spaces   ",
    "\xd8\xa7\xd9\x84\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 \xd8\xb9\xd9\x84\xd9\x8a\xd9\x83\xd9\x85 3.14159",
};

TEST(tokenizer_other_vocabs_load_and_roundtrip)
{
    const char *names[] = {"fixtures/vocab/ggml-vocab-baichuan.gguf",
                           "fixtures/vocab/ggml-vocab-gpt-neox.gguf"};
    for (int v = 0; v < 2; v++) {
        struct fx f;
        if (!load(&f, names[v])) {
            unload(&f);
            continue;
        }
        CHECK(tokenizer_n_vocab(f.tok) > 50000);
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            if (!roundtrip(f.tok, texts[i]))
                test__fail(__FILE__, __LINE__, "%s: round trip of \"%s\"", names[v], texts[i]);
        }
        unload(&f);
    }
}

TEST(tokenizer_fixture_models_load)
{
    const char *names[] = {"fixtures/models/llama-F32.gguf", "fixtures/models/qwen2-F16.gguf",
                           "fixtures/models/gpt2-F16.gguf", "fixtures/models/phi3-F16.gguf",
                           "fixtures/models/falcon-F16.gguf", "models/stories260K.gguf"};
    for (int v = 0; v < 6; v++) {
        struct fx f;
        if (load(&f, names[v])) {
            for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                if (!roundtrip(f.tok, texts[i]))
                    test__fail(__FILE__, __LINE__, "%s: round trip of \"%s\"", names[v],
                               texts[i]);
            }
        }
        unload(&f);
    }
}

TEST(tokenizer_stories260K_prompt)
{
    /* fixtures/golden/stories260K-prompt.txt holds the reference engine's ids (with BOS) */
    struct fx f;
    REQUIRE(load(&f, "models/stories260K.gguf"));
    FILE *fp = fopen(test_shared_path("fixtures/golden/stories260K-prompt.txt"), "r");
    REQUIRE(fp);
    int32_t want[64], got[64];
    int nw = 0;
    long v;
    while (nw < 64 && fscanf(fp, "%ld", &v) == 1)
        want[nw++] = (int32_t)v;
    fclose(fp);
    int n = enc(f.tok, "Once upon a time, there was a little robot", got, 64,
                TOKENIZER_ADD_SPECIAL);
    CHECK_EQ_INT(n, nw);
    for (int i = 0; i < n && i < nw; i++)
        CHECK_EQ_INT(got[i], want[i]);
    unload(&f);
}

TEST(tokenizer_bos_eos_flags)
{
    struct fx f;
    int32_t ids[64];
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    CHECK(tokenizer_add_bos(f.tok));
    CHECK(!tokenizer_add_eos(f.tok));
    int n0 = enc(f.tok, "Hello world", ids, 64, 0);
    CHECK_EQ_INT(n0, 2);
    CHECK_EQ_INT(ids[0], 15043);
    int n1 = enc(f.tok, "Hello world", ids, 64, TOKENIZER_ADD_SPECIAL);
    CHECK_EQ_INT(n1, 3);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(ids[1], 15043);
    /* the empty text is [] without, [BOS] with special tokens */
    CHECK_EQ_INT(enc(f.tok, "", ids, 64, 0), 0);
    CHECK_EQ_INT(enc(f.tok, "", ids, 64, TOKENIZER_ADD_SPECIAL), 1);
    unload(&f);

    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-gpt-2.gguf"));
    CHECK(!tokenizer_add_bos(f.tok));
    CHECK_EQ_INT(enc(f.tok, "Hello world", ids, 64, TOKENIZER_ADD_SPECIAL),
                 enc(f.tok, "Hello world", ids, 64, 0));
    unload(&f);

    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-bert-bge.gguf"));
    int n = enc(f.tok, "Hello world", ids, 64, TOKENIZER_ADD_SPECIAL);
    REQUIRE(n == 4);
    CHECK_EQ_INT(ids[0], 101);
    CHECK_EQ_INT(ids[1], 7592);
    CHECK_EQ_INT(ids[3], 102);
    unload(&f);

    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-deepseek-llm.gguf"));
    n = enc(f.tok, "Hi", ids, 64, TOKENIZER_ADD_SPECIAL);
    CHECK(n >= 2);
    CHECK_EQ_INT(ids[0], 100000);
    unload(&f);
}

TEST(tokenizer_special_parsing)
{
    struct fx f;
    int32_t ids[64];
    REQUIRE(load(&f, "fixtures/models/qwen2-F16.gguf"));
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int n = enc(f.tok, s, ids, 64, TOKENIZER_PARSE_SPECIAL);
    REQUIRE(n >= 3);
    CHECK_EQ_INT(ids[0], 382);
    CHECK_EQ_INT(ids[n - 1], 383);
    n = enc(f.tok, s, ids, 64, 0);
    REQUIRE(n > 3);
    for (int i = 0; i < n; i++)
        CHECK(ids[i] != 382 && ids[i] != 383);
    CHECK(roundtrip(f.tok, s));
    CHECK(tokenizer_is_eog(f.tok, 383));
    CHECK_EQ_INT(tokenizer_eot(f.tok), 383);
    CHECK(!tokenizer_is_eog(f.tok, 382));
    CHECK_EQ_INT(tokenizer_token_type(f.tok, 382), TOKENIZER_TOKEN_CONTROL);
    unload(&f);

    /* SentencePiece: a special token in the middle, and the space prefix after it */
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    n = enc(f.tok, "Hello</s>world", ids, 64, TOKENIZER_PARSE_SPECIAL);
    int32_t w1[8];
    int nh = enc(f.tok, "Hello", w1, 8, 0);
    REQUIRE(n == nh + 1 + enc(f.tok, "world", w1, 8, 0));
    CHECK_EQ_INT(ids[nh], 2);
    n = enc(f.tok, "Hello</s>world", ids, 64, 0);
    for (int i = 0; i < n; i++)
        CHECK(ids[i] != 2);
    unload(&f);

    /* user-defined tokens are matched even without PARSE_SPECIAL: mpt's runs of spaces */
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-mpt.gguf"));
    n = enc(f.tok, "a                        b", ids, 64, 0);   /* 24 spaces */
    REQUIRE(n == 3);
    CHECK_EQ_INT(tokenizer_token_type(f.tok, ids[1]), TOKENIZER_TOKEN_USER_DEFINED);
    CHECK(roundtrip(f.tok, "a                        b"));
    unload(&f);

    /* phi-3: special text eats the whitespace after it (rstrip), as the reference does */
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-phi-3.gguf"));
    n = enc(f.tok, "<|user|>  Hi", ids, 64, TOKENIZER_PARSE_SPECIAL);
    int32_t hi[8];
    int nhi = enc(f.tok, "Hi", hi, 8, 0);
    REQUIRE(n == 1 + nhi);
    CHECK_EQ_INT(ids[0], 32010);
    CHECK_EQ_INT(ids[1], hi[0]);
    unload(&f);
}

TEST(tokenizer_output_too_small)
{
    struct fx f;
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-gpt-2.gguf"));
    int32_t ids[4], all[64];
    const char *s = "The quick brown fox jumps over the lazy dog";
    int n = enc(f.tok, s, all, 64, 0);
    CHECK_EQ_INT(n, 9);
    CHECK_EQ_INT(enc(f.tok, s, ids, 4, 0), n);
    CHECK(!memcmp(ids, all, sizeof(ids)));
    CHECK_EQ_INT(enc(f.tok, s, NULL, 0, 0), n);
    CHECK_EQ_INT(tokenizer_encode(f.tok, NULL, 3, ids, 4, 0), TOKENIZER_E_ARG);
    char small[4];
    CHECK_EQ_INT(tokenizer_decode(f.tok, all, (size_t)n, small, sizeof(small), 0),
                 (int64_t)strlen(s));
    int32_t bad = 999999;
    CHECK_EQ_INT(tokenizer_decode(f.tok, &bad, 1, small, sizeof(small), 0), TOKENIZER_E_ARG);
    CHECK_EQ_INT(tokenizer_piece(f.tok, -1, small, sizeof(small), 0), TOKENIZER_E_ARG);
    unload(&f);
}

TEST(tokenizer_pieces_and_decode)
{
    struct fx f;
    char buf[64];
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    int n = tokenizer_piece(f.tok, 15043, buf, sizeof(buf), 0);   /* "▁Hello" */
    CHECK_EQ_INT(n, 6);
    CHECK(!memcmp(buf, " Hello", 6));
    CHECK_EQ_INT(tokenizer_piece(f.tok, 1, buf, sizeof(buf), 0), 0);
    CHECK_EQ_INT(tokenizer_piece(f.tok, 1, buf, sizeof(buf), TOKENIZER_DECODE_SPECIAL), 3);
    CHECK_EQ_INT(tokenizer_piece(f.tok, 0x0A + 3, buf, sizeof(buf), 0), 1);   /* <0x0A> */
    CHECK_EQ_INT(buf[0], '\n');
    int32_t ids[] = {1, 15043, 3186, 2};
    int64_t l = tokenizer_decode(f.tok, ids, 4, buf, sizeof(buf), TOKENIZER_DECODE_SPECIAL);
    buf[l > 0 ? l : 0] = 0;
    CHECK_STR(buf, "<s> Hello world</s>");
    l = tokenizer_decode(f.tok, ids + 1, 2, buf, sizeof(buf), 0);
    buf[l > 0 ? l : 0] = 0;
    CHECK_STR(buf, "Hello world");
    CHECK(tokenizer_is_eog(f.tok, 2));
    CHECK(!tokenizer_is_eog(f.tok, 1));
    CHECK_EQ_INT(tokenizer_find(f.tok, "\xe2\x96\x81Hello", 8), 15043);
    unload(&f);

    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-gpt-2.gguf"));
    CHECK(tokenizer_is_eog(f.tok, 50256));
    int32_t t[8];
    int nt = enc(f.tok, "Hello , world !", t, 8, 0);
    l = tokenizer_decode(f.tok, t, (size_t)nt, buf, sizeof(buf), TOKENIZER_DECODE_CLEAN_SPACES);
    buf[l > 0 ? l : 0] = 0;
    CHECK_STR(buf, "Hello, world!");
    /* invalid UTF-8 survives byte-level BPE */
    const char raw[] = "a\xff\xc3(b\xe2\x82";
    nt = tokenizer_encode(f.tok, raw, sizeof(raw) - 1, t, 8, 0);
    REQUIRE(nt > 0 && nt <= 8);
    l = tokenizer_decode(f.tok, t, (size_t)nt, buf, sizeof(buf), 0);
    CHECK_EQ_INT(l, sizeof(raw) - 1);
    CHECK(!memcmp(buf, raw, sizeof(raw) - 1));
    unload(&f);
}

/* Feeds ids one at a time and checks that only whole characters come out. */
static void stream_check(const struct tokenizer *tok, const char *text)
{
    int32_t ids[256];
    int n = enc(tok, text, ids, 256, 0);
    REQUIRE(n > 0 && n <= 256);
    struct tokenizer_stream *s = tokenizer_stream_new(tok, 0);
    REQUIRE(s);
    char all[2048], piece[512];
    size_t k = 0;
    int held = 0;
    for (int i = 0; i < n; i++) {
        int m = tokenizer_stream_feed(s, ids[i], piece, sizeof(piece));
        REQUIRE(m >= 0);
        if (m == 0)
            held++;
        /* each chunk is valid UTF-8 on its own: never ends inside a character */
        if (m > 0) {
            unsigned char last = (unsigned char)piece[m - 1];
            CHECK(last < 0x80 || (last & 0xC0) == 0x80);
        }
        memcpy(all + k, piece, (size_t)m);
        k += (size_t)m;
    }
    CHECK_EQ_INT(tokenizer_stream_flush(s, piece, sizeof(piece)), 0);
    tokenizer_stream_free(s);
    all[k] = 0;
    /* SentencePiece adds a leading space the stream keeps */
    const char *got = all;
    if (tokenizer_get_kind(tok) == TOKENIZER_KIND_SPM && got[0] == ' ')
        got++;
    CHECK_STR(got, text);
    CHECK(held > 0);   /* the test text must split some character across tokens */
}

TEST(tokenizer_stream_utf8)
{
    struct fx f;
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    /* emoji and rare CJK fall back to <0xNN> byte tokens */
    stream_check(f.tok, "llama \xf0\x9f\xa6\x99 and \xe9\xbe\x98 and \xf0\x9f\x98\x81!");
    unload(&f);
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-gpt-2.gguf"));
    stream_check(f.tok, "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8 \xf0\x9f\xa6\x99 caf\xc3\xa9");
    unload(&f);
    REQUIRE(load(&f, "fixtures/models/qwen2-F16.gguf"));
    stream_check(f.tok, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x98\x81");
    unload(&f);
}

TEST(tokenizer_stream_invalid_bytes)
{
    struct fx f;
    REQUIRE(load(&f, "fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    struct tokenizer_stream *s = tokenizer_stream_new(f.tok, 0);
    REQUIRE(s);
    char out[64];
    /* <0xE6> <0x88> then a plain token: the cut character becomes one U+FFFD */
    int32_t e6 = 3 + 0xE6, x88 = 3 + 0x88, a = tokenizer_find(f.tok, "a", 1);
    REQUIRE(a >= 0);
    CHECK_EQ_INT(tokenizer_stream_feed(s, e6, out, sizeof(out)), 0);
    CHECK_EQ_INT(tokenizer_stream_feed(s, x88, out, sizeof(out)), 0);
    int n = tokenizer_stream_feed(s, a, out, sizeof(out));
    CHECK_EQ_INT(n, 4);
    CHECK(!memcmp(out, "\xef\xbf\xbd" "a", 4));
    /* a held start is flushed as U+FFFD */
    CHECK_EQ_INT(tokenizer_stream_feed(s, e6, out, sizeof(out)), 0);
    CHECK_EQ_INT(tokenizer_stream_flush(s, out, sizeof(out)), 3);
    CHECK_EQ_INT(tokenizer_stream_feed(s, 3 + 0xFF, out, sizeof(out)), 3);
    CHECK_EQ_INT(tokenizer_stream_feed(s, 999999, out, sizeof(out)), TOKENIZER_E_ARG);
    CHECK_EQ_INT(tokenizer_stream_feed(s, e6, out, 2), 0);
    CHECK_EQ_INT(tokenizer_stream_feed(s, a, out, 2), TOKENIZER_E_LIMIT);
    tokenizer_stream_free(s);
    unload(&f);
}

struct thread_arg {
    const struct tokenizer *tok;
    const int32_t *want;
    const int *want_n;
    int bad;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    int32_t ids[1024];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            int n = enc(a->tok, texts[i], ids, 1024, 0);
            if (n != a->want_n[i] || memcmp(ids, a->want + i * 1024, (size_t)n * 4))
                a->bad++;
        }
    }
    return NULL;
}

TEST(tokenizer_threads)
{
    const char *names[] = {"fixtures/vocab/ggml-vocab-deepseek-llm.gguf",
                           "fixtures/vocab/ggml-vocab-llama-spm.gguf",
                           "fixtures/vocab/ggml-vocab-bert-bge.gguf"};
    for (int v = 0; v < 3; v++) {
        struct fx f;
        REQUIRE(load(&f, names[v]));
        static int32_t want[sizeof(texts) / sizeof(texts[0]) * 1024];
        int want_n[sizeof(texts) / sizeof(texts[0])];
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
            want_n[i] = enc(f.tok, texts[i], want + i * 1024, 1024, 0);
        pthread_t th[4];
        struct thread_arg args[4];
        for (int t = 0; t < 4; t++) {
            args[t] = (struct thread_arg){f.tok, want, want_n, 0};
            REQUIRE(pthread_create(&th[t], NULL, thread_main, &args[t]) == 0);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECK_EQ_INT(args[t].bad, 0);
        }
        unload(&f);
    }
}

/* ---- malformed metadata ---- */

static const char *const mini_tokens[] = {"<unk>", "<s>", "</s>", "a", "b", "ab", "\xe2\x96\x81"};
#define MINI_N 7

/* Writes a small vocabulary GGUF; `mutate` adjusts the writer before writing. */
static struct gguf *mini_gguf(const char *model, void (*mutate)(struct gguf_writer *))
{
    struct gguf_writer *w = gguf_writer_new();
    if (!w)
        return NULL;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    static struct gguf_str strs[MINI_N];
    for (int i = 0; i < MINI_N; i++)
        strs[i] = (struct gguf_str){mini_tokens[i], strlen(mini_tokens[i])};
    struct gguf_value toks = {.type = GGUF_VTYPE_ARRAY};
    toks.v.arr.type = GGUF_VTYPE_STRING;
    toks.v.arr.n = MINI_N;
    toks.v.arr.strs = strs;
    gguf_writer_set_value(w, "tokenizer.ggml.tokens", &toks);
    static const float scores[MINI_N] = {0, 0, 0, -1, -2, -0.5f, -3};
    struct gguf_value sc = {.type = GGUF_VTYPE_ARRAY};
    sc.v.arr.type = GGUF_VTYPE_FLOAT32;
    sc.v.arr.n = MINI_N;
    sc.v.arr.data = scores;
    gguf_writer_set_value(w, "tokenizer.ggml.scores", &sc);
    static const int32_t types[MINI_N] = {2, 3, 3, 1, 1, 1, 1};
    struct gguf_value ty = {.type = GGUF_VTYPE_ARRAY};
    ty.v.arr.type = GGUF_VTYPE_INT32;
    ty.v.arr.n = MINI_N;
    ty.v.arr.data = types;
    gguf_writer_set_value(w, "tokenizer.ggml.token_type", &ty);
    static struct gguf_str merges[1] = {{"a b", 3}};
    struct gguf_value mg = {.type = GGUF_VTYPE_ARRAY};
    mg.v.arr.type = GGUF_VTYPE_STRING;
    mg.v.arr.n = 1;
    mg.v.arr.strs = merges;
    gguf_writer_set_value(w, "tokenizer.ggml.merges", &mg);
    if (mutate)
        mutate(w);
    char path[512];
    snprintf(path, sizeof(path), "%s/mini-%d.gguf", test_tmpdir(), rand());
    char err[256];
    int rc = gguf_writer_write(w, path, err, sizeof(err));
    gguf_writer_free(w);
    if (rc) {
        test__fail(__FILE__, __LINE__, "gguf_writer_write: %s", err);
        return NULL;
    }
    struct gguf *g = NULL;
    if (gguf_open(&g, path, err, sizeof(err)))
        test__fail(__FILE__, __LINE__, "gguf_open: %s", err);
    return g;
}

/* Loads a mutated mini vocabulary and expects error `want` with `needle` in the message. */
static void expect_error(const char *model, void (*mutate)(struct gguf_writer *), int want,
                         const char *needle)
{
    struct gguf *g = mini_gguf(model, mutate);
    if (!g)
        return;
    struct tokenizer *tok = (struct tokenizer *)1;
    char err[256] = "";
    int rc = tokenizer_from_gguf(&tok, g, err, sizeof(err));
    CHECK_EQ_INT(rc, want);
    CHECK(tok == NULL);
    if (!strstr(err, needle))
        test__fail(__FILE__, __LINE__, "error \"%s\" does not mention \"%s\"", err, needle);
    tokenizer_free(rc ? NULL : tok);
    gguf_close(g);
}

static void no_tokens(struct gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.tokens"); }
static void no_model(struct gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.model"); }
static void no_merges(struct gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.merges"); }

static void short_scores(struct gguf_writer *w)
{
    static const float s[3] = {0, 0, 0};
    struct gguf_value v = {.type = GGUF_VTYPE_ARRAY};
    v.v.arr.type = GGUF_VTYPE_FLOAT32;
    v.v.arr.n = 3;
    v.v.arr.data = s;
    gguf_writer_set_value(w, "tokenizer.ggml.scores", &v);
}

static void long_types(struct gguf_writer *w)
{
    static const int32_t t[MINI_N + 1] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct gguf_value v = {.type = GGUF_VTYPE_ARRAY};
    v.v.arr.type = GGUF_VTYPE_INT32;
    v.v.arr.n = MINI_N + 1;
    v.v.arr.data = t;
    gguf_writer_set_value(w, "tokenizer.ggml.token_type", &v);
}

static void bad_merge(struct gguf_writer *w)
{
    static struct gguf_str m[2] = {{"a b", 3}, {"a zz", 4}};
    struct gguf_value v = {.type = GGUF_VTYPE_ARRAY};
    v.v.arr.type = GGUF_VTYPE_STRING;
    v.v.arr.n = 2;
    v.v.arr.strs = m;
    gguf_writer_set_value(w, "tokenizer.ggml.merges", &v);
}

static void merge_no_space(struct gguf_writer *w)
{
    static struct gguf_str m[1] = {{"ab", 2}};
    struct gguf_value v = {.type = GGUF_VTYPE_ARRAY};
    v.v.arr.type = GGUF_VTYPE_STRING;
    v.v.arr.n = 1;
    v.v.arr.strs = m;
    gguf_writer_set_value(w, "tokenizer.ggml.merges", &v);
}

static void bos_out_of_range(struct gguf_writer *w)
{
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 99999);
}

static void eos_out_of_range(struct gguf_writer *w)
{
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", MINI_N);
}

static void unknown_pre(struct gguf_writer *w)
{
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre");
}

static void pad_out_of_range(struct gguf_writer *w)
{
    gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", MINI_N);
    gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 0xFFFFFFFFu);
}

TEST(tokenizer_bad_metadata)
{
    expect_error("llama", no_tokens, TOKENIZER_E_MISSING, "tokenizer.ggml.tokens");
    expect_error("llama", no_model, TOKENIZER_E_MISSING, "tokenizer.ggml.model");
    expect_error("llama", short_scores, TOKENIZER_E_INVALID, "3 entries for 7 tokens");
    expect_error("llama", long_types, TOKENIZER_E_INVALID, "tokenizer.ggml.token_type");
    expect_error("llama", bos_out_of_range, TOKENIZER_E_INVALID, "bos_token_id");
    expect_error("llama", eos_out_of_range, TOKENIZER_E_INVALID, "eos_token_id");
    expect_error("gpt2", no_merges, TOKENIZER_E_MISSING, "tokenizer.ggml.merges");
    expect_error("gpt2", bad_merge, TOKENIZER_E_INVALID, "merges[1]");
    expect_error("gpt2", merge_no_space, TOKENIZER_E_INVALID, "merges[0]");
    expect_error("gpt2", unknown_pre, TOKENIZER_E_UNSUPPORTED, "no-such-pre");
    expect_error("t5", NULL, TOKENIZER_E_UNSUPPORTED, "t5");
}

/* Raw GGUF bytes, for values of the wrong type (the writer refuses to produce them). */
struct raw {
    unsigned char b[4096];
    size_t n;
};

static void raw_put(struct raw *r, const void *p, size_t n)
{
    if (r->n + n <= sizeof(r->b)) {
        memcpy(r->b + r->n, p, n);
        r->n += n;
    }
}

static void raw_u32(struct raw *r, uint32_t v) { raw_put(r, &v, 4); }
static void raw_u64(struct raw *r, uint64_t v) { raw_put(r, &v, 8); }

static void raw_str(struct raw *r, const char *s)
{
    raw_u64(r, strlen(s));
    raw_put(r, s, strlen(s));
}

static void raw_kv_str(struct raw *r, const char *k, const char *v)
{
    raw_str(r, k);
    raw_u32(r, GGUF_VTYPE_STRING);
    raw_str(r, v);
}

/* variant 0: tokens as int32; 1: scores as a string; 2: add_bos_token as a string */
static void raw_vocab(struct raw *r, int variant)
{
    r->n = 0;
    raw_put(r, "GGUF", 4);
    raw_u32(r, 3);
    raw_u64(r, 0);
    raw_u64(r, 3);
    raw_kv_str(r, "tokenizer.ggml.model", "llama");
    raw_str(r, "tokenizer.ggml.tokens");
    raw_u32(r, GGUF_VTYPE_ARRAY);
    if (variant == 0) {
        raw_u32(r, GGUF_VTYPE_INT32);
        raw_u64(r, 2);
        raw_u32(r, 1);
        raw_u32(r, 2);
    } else {
        raw_u32(r, GGUF_VTYPE_STRING);
        raw_u64(r, 3);
        raw_str(r, "<unk>");
        raw_str(r, "<s>");
        raw_str(r, "</s>");
    }
    if (variant == 2)
        raw_kv_str(r, "tokenizer.ggml.add_bos_token", "yes");
    else
        raw_kv_str(r, "tokenizer.ggml.scores", "high");
}

TEST(tokenizer_bad_metadata_types)
{
    const char *needles[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "add_bos_token"};
    for (int variant = 0; variant < 3; variant++) {
        static struct raw r;
        raw_vocab(&r, variant);
        struct gguf *g = NULL;
        char err[256] = "";
        if (gguf_open_buffer(&g, r.b, r.n, "raw", err, sizeof(err))) {
            /* the reader already refuses a known key of the wrong type: fine too */
            CHECK(strstr(err, needles[variant]) != NULL);
            continue;
        }
        struct tokenizer *tok = NULL;
        CHECK_EQ_INT(tokenizer_from_gguf(&tok, g, err, sizeof(err)), TOKENIZER_E_TYPE);
        CHECK(tok == NULL);
        if (!strstr(err, needles[variant]))
            test__fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", err, needles[variant]);
        gguf_close(g);
    }
}

TEST(tokenizer_mini_vocab)
{
    /* a valid mini vocabulary works; optional ids out of range are dropped, -1 means none */
    struct gguf *g = mini_gguf("llama", pad_out_of_range);
    REQUIRE(g);
    struct tokenizer *tok;
    char err[256];
    REQUIRE(tokenizer_from_gguf(&tok, g, err, sizeof(err)) == 0);
    CHECK_EQ_INT(tokenizer_pad(tok), -1);
    CHECK_EQ_INT(tokenizer_sep(tok), -1);
    int32_t ids[16];
    /* "ab ab" -> ▁ab▁ab: no "▁ab" token, so ▁ | ab | ▁ | ab; "c" has no token nor byte: <unk> */
    int n = tokenizer_encode(tok, "ab abc", 6, ids, 16, 0);
    REQUIRE(n == 5);
    CHECK_EQ_INT(ids[0], 6);
    CHECK_EQ_INT(ids[1], 5);
    CHECK_EQ_INT(ids[2], 6);
    CHECK_EQ_INT(ids[3], 5);
    CHECK_EQ_INT(ids[4], 0);
    tokenizer_free(tok);
    gguf_close(g);
    CHECK_EQ_INT(tokenizer_from_gguf(&tok, NULL, err, sizeof(err)), TOKENIZER_E_ARG);
}

/* Random bytes (biased to spaces, newlines, UTF-8 lead/continuation bytes and '<') through every
 * kind: no crash, and valid UTF-8 round trips through byte-level BPE and SentencePiece (a literal
 * U+2581 reads back as a space in SentencePiece, by design; invalid bytes can collide with
 * added tokens spelled like their byte-level characters, e.g. deepseek's "\xc3\xbf"). */
TEST(tokenizer_random_bytes)
{
    const char *names[] = {"fixtures/vocab/ggml-vocab-llama-spm.gguf",
                           "fixtures/vocab/ggml-vocab-gpt-2.gguf",
                           "fixtures/vocab/ggml-vocab-deepseek-llm.gguf",
                           "fixtures/vocab/ggml-vocab-bert-bge.gguf",
                           "fixtures/vocab/ggml-vocab-phi-3.gguf"};
    static const unsigned char alphabet[] = " \n\t<|>/sa\xe2\x96\x81\xc3\xa9\xf0\x9f\x98\x80\xff\x80\xbf" "0";
    uint32_t seed = 12345;
    for (int v = 0; v < 5; v++) {
        struct fx f;
        REQUIRE(load(&f, names[v]));
        bool lossless = tokenizer_get_kind(f.tok) != TOKENIZER_KIND_WPM;
        for (int iter = 0; iter < 300; iter++) {
            char text[200], back[2048];
            int32_t ids[512];
            size_t len = 0, want = (size_t)(iter % 150) + 1;
            while (len < want) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = seed >> 16;
                text[len++] = (r & 3) ? (char)alphabet[r % (sizeof(alphabet) - 1)] : (char)(r >> 3);
            }
            unsigned flags = (iter & 1) ? TOKENIZER_PARSE_SPECIAL : 0;
            int n = tokenizer_encode(f.tok, text, len, ids, 512, flags);
            REQUIRE(n >= 0 && n <= 512);
            int64_t l = tokenizer_decode(f.tok, ids, (size_t)n, back, sizeof(back),
                                         TOKENIZER_DECODE_SPECIAL);
            REQUIRE(l >= 0);
            bool check = lossless && !(iter & 1) && tok__utf8_valid_prefix(
                                                        (const unsigned char *)text, len) == len &&
                         !memmem(text, len, "\xe2\x96\x81", 3);
            if (check && (l != (int64_t)len || memcmp(back, text, len))) {
                test__fail(__FILE__, __LINE__, "%s: random text %d does not round trip: "
                           "\"%.*s\" -> \"%.*s\"", names[v], iter, (int)len, text,
                           (int)(l < 300 ? l : 300), back);
                break;
            }
        }
        unload(&f);
    }
}
