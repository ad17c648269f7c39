/* Golden tokenizer vectors: every fixture vocabulary against its .inp/.out pair; round trips. */
#include "test.h"

#include <stdint.h>

#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

struct vocab_fixture {
    struct gguf *g;
    struct tokenizer *tok;
};

static int open_vocab(struct vocab_fixture *v, const char *rel)
{
    char err[256] = "";
    char *path = test_shared_path(rel);
    v->g = NULL;
    v->tok = NULL;
    int rc = gguf_open(&v->g, path, err, sizeof(err));
    if (rc) {
        test__fail(__FILE__, __LINE__, "gguf_open %s: %s", path, err);
        return rc;
    }
    rc = tokenizer_from_gguf(&v->tok, v->g, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "tokenizer_from_gguf %s: %s (%s)", path, err,
                   tokenizer_strerror(rc));
    return rc;
}

static void close_vocab(struct vocab_fixture *v)
{
    tokenizer_free(v->tok);
    gguf_close(v->g);
}

/* Splits the .inp file into its strings (each followed by "\n__ggml_vocab_test__\n"). */
static size_t split_inputs(char *raw, size_t len, char **str, size_t *slen, size_t max)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n = 0, pos = 0, sl = sizeof(sep) - 1;
    while (pos <= len && n < max) {
        char *next = memmem(raw + pos, len - pos, sep, sl);
        if (!next)
            break;
        str[n] = raw + pos;
        slen[n] = (size_t)(next - (raw + pos));
        n++;
        pos = (size_t)(next - raw) + sl;
    }
    return n;
}

static size_t parse_ids(const char *line, size_t len, int32_t *ids, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        long v = 0;
        while (i < len && line[i] >= '0' && line[i] <= '9')
            v = v * 10 + (line[i++] - '0');
        ids[n++] = (int32_t)v;
        while (i < len && line[i] != ' ')
            i++;
    }
    return n;
}

#define MAX_STRINGS 128
#define MAX_IDS 4096

/* Runs every vector of one vocabulary; returns the number that matched. */
static void run_vectors(const char *name, bool expect_roundtrip)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "fixtures/vocab/ggml-vocab-%s.gguf", name);
    struct vocab_fixture v;
    if (open_vocab(&v, rel))
        goto out;
    size_t in_len, out_len;
    char pin[300], pout[300];
    snprintf(pin, sizeof(pin), "%s.inp", test_shared_path(rel));
    snprintf(pout, sizeof(pout), "%s.out", test_shared_path(rel));
    char *inp = slurp(pin, &in_len), *exp = slurp(pout, &out_len);
    if (!inp || !exp) {
        test__fail(__FILE__, __LINE__, "cannot read %s / %s", pin, pout);
        goto out;
    }
    char *strs[MAX_STRINGS];
    size_t lens[MAX_STRINGS];
    size_t n = split_inputs(inp, in_len, strs, lens, MAX_STRINGS);
    CHECK(n > 10);
    static int32_t want[MAX_IDS], got[MAX_IDS];
    static char text[1 << 16];
    size_t passed = 0, line_start = 0, round_ok = 0;
    for (size_t i = 0; i < n; i++) {
        char *nl = memchr(exp + line_start, '\n', out_len - line_start);
        size_t line_len = nl ? (size_t)(nl - (exp + line_start)) : out_len - line_start;
        size_t nw = parse_ids(exp + line_start, line_len, want, MAX_IDS);
        line_start += line_len + 1;
        int ng = tokenizer_encode(v.tok, strs[i], lens[i], got, MAX_IDS, 0);
        bool same = ng >= 0 && (size_t)ng == nw && !memcmp(got, want, nw * sizeof(int32_t));
        if (same) {
            passed++;
        } else {
            char a[512] = "", b[512] = "";
            size_t ka = 0, kb = 0;
            for (int k = 0; k < ng && k < 40; k++)
                ka += (size_t)snprintf(a + ka, sizeof(a) - ka, "%d ", got[k]);
            for (size_t k = 0; k < nw && k < 40; k++)
                kb += (size_t)snprintf(b + kb, sizeof(b) - kb, "%d ", want[k]);
            test__fail(__FILE__, __LINE__, "%s string %zu \"%.*s\": got [%s] want [%s]", name, i,
                       (int)(lens[i] > 60 ? 60 : lens[i]), strs[i], a, b);
        }
        if (ng >= 0) {
            int64_t tl = tokenizer_decode(v.tok, got, (size_t)ng, text, sizeof(text), 0);
            if (tl == (int64_t)lens[i] && !memcmp(text, strs[i], lens[i]))
                round_ok++;
            else if (expect_roundtrip)
                test__fail(__FILE__, __LINE__, "%s string %zu: decode(encode(s)) != s (%.*s)",
                           name, i, (int)(tl > 0 && tl < 80 ? tl : 0), text);
        }
    }
    fprintf(stderr, "    %s: %zu/%zu vectors, %zu/%zu round trips\n", name, passed, n, round_ok,
            n);
    CHECK_EQ_INT(passed, n);
    free(inp);
    free(exp);
out:
    close_vocab(&v);
}

TEST(tokenizer_vectors_llama_spm) { run_vectors("llama-spm", true); }
TEST(tokenizer_vectors_phi_3) { run_vectors("phi-3", true); }
TEST(tokenizer_vectors_gpt_2) { run_vectors("gpt-2", true); }
TEST(tokenizer_vectors_falcon) { run_vectors("falcon", true); }
TEST(tokenizer_vectors_mpt) { run_vectors("mpt", true); }
TEST(tokenizer_vectors_starcoder) { run_vectors("starcoder", true); }
TEST(tokenizer_vectors_refact) { run_vectors("refact", true); }
TEST(tokenizer_vectors_deepseek_llm) { run_vectors("deepseek-llm", true); }
TEST(tokenizer_vectors_deepseek_coder) { run_vectors("deepseek-coder", true); }
/* WordPiece lowercases, strips accents and drops spaces: not lossless */
TEST(tokenizer_vectors_bert_bge) { run_vectors("bert-bge", false); }
