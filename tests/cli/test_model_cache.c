/* Unit tests of the model cache helpers: URL resolution, names, checksums, sidecars, listing. */
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "cli/model_cache.h"

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (!rc && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out))
        rc = -1;
    return rc;
}

TEST(model_cache_resolve_hf)
{
    char url[MODEL_CACHE_URL_MAX];
    bool hf = false;
    unsetenv("TANDEM_HF_ENDPOINT");
    CHECK_EQ_INT(model_cache_resolve_url("hf://owner/repo/dir/m.gguf", url, sizeof(url), &hf), 0);
    CHECK_STR(url, "https://huggingface.co/owner/repo/resolve/main/dir/m.gguf");
    CHECK(hf);
    CHECK_EQ_INT(model_cache_resolve_url("hf://o-1/r.x_y@v2.0/m.gguf", url, sizeof(url), &hf), 0);
    CHECK_STR(url, "https://huggingface.co/o-1/r.x_y/resolve/v2.0/m.gguf");
    setenv("TANDEM_HF_ENDPOINT", "http://127.0.0.1:8080//", 1);
    CHECK_EQ_INT(model_cache_resolve_url("hf://a/b@refs%2Fpr%2F1/m.gguf", url, sizeof(url), &hf),
                 0);
    CHECK_STR(url, "http://127.0.0.1:8080/a/b/resolve/refs%2Fpr%2F1/m.gguf");
    /* A plain URL under the endpoint may carry the token; another host may not. */
    CHECK_EQ_INT(model_cache_resolve_url("http://127.0.0.1:8080/a/b/resolve/main/m.gguf", url,
                                         sizeof(url), &hf),
                 0);
    CHECK(hf);
    CHECK_EQ_INT(model_cache_resolve_url("http://127.0.0.1:80800/m.gguf", url, sizeof(url), &hf),
                 0);
    CHECK(!hf);
    CHECK_EQ_INT(model_cache_resolve_url("https://example.com/m.gguf", url, sizeof(url), &hf), 0);
    CHECK(!hf);
    CHECK_STR(url, "https://example.com/m.gguf");
}

TEST(model_cache_resolve_rejects)
{
    char url[MODEL_CACHE_URL_MAX], small[16];
    unsetenv("TANDEM_HF_ENDPOINT");
    const char *bad[] = {
        "hf://owner/m.gguf",
        "hf://owner/repo/",
        "hf://owner/repo",
        "hf:///repo/m.gguf",
        "hf://o/r/../m.gguf",
        "hf://o/r/a//m.gguf",
        "hf://o/r@/m.gguf",
        "hf://o w/r/m.gguf",
        "hf://o/r/m.gguf?x=1",
        "ftp://example.com/m.gguf",
        "http://",
        "https:///path",
        "example.com/m.gguf",
        "http://a b/m.gguf",
        "http://h/\x01.gguf",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (model_cache_resolve_url(bad[i], url, sizeof(url), NULL) != MODEL_CACHE_E_URL)
            test__fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
    CHECK_EQ_INT(
        model_cache_resolve_url("https://example.com/model.gguf", small, sizeof(small), NULL),
        MODEL_CACHE_E_TOOLONG);
    setenv("TANDEM_HF_ENDPOINT", "file:///etc", 1);
    CHECK_EQ_INT(model_cache_resolve_url("hf://o/r/m.gguf", url, sizeof(url), NULL),
                 MODEL_CACHE_E_URL);
}

TEST(model_cache_names)
{
    char name[MODEL_CACHE_NAME_MAX + 1];
    CHECK_EQ_INT(model_cache_name_from_url("https://h/a/b/Model-Q4_K_M.gguf?download=true#x", name,
                                           sizeof(name)),
                 0);
    CHECK_STR(name, "Model-Q4_K_M.gguf");
    CHECK_EQ_INT(model_cache_name_from_url("https://h/a/my%2Bmodel.gguf", name, sizeof(name)), 0);
    CHECK_STR(name, "my+model.gguf");
    CHECK_EQ_INT(model_cache_name_from_url("hf://o/r/sub/x.gguf", name, sizeof(name)), 0);
    CHECK_STR(name, "x.gguf");
    const char *bad[] = {"https://h/",
                         "https://h",
                         "https://h/file.bin",
                         "https://h/a%2F.gguf",
                         "https://h/%2e%2e.gguf",
                         "https://h/x%zz.gguf",
                         "https://h/x%4",
                         "https://h/.hidden.gguf",
                         "https://h/sp%20ace.gguf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (model_cache_name_from_url(bad[i], name, sizeof(name)) == 0)
            test__fail(__FILE__, __LINE__, "took a name from '%s': '%s'", bad[i], name);

    CHECK(model_cache_name_valid("a.gguf"));
    CHECK(!model_cache_name_valid(".gguf"));
    CHECK(!model_cache_name_valid("a.GGUF"));
    CHECK(!model_cache_name_valid("../a.gguf"));
    CHECK(!model_cache_name_valid("a\\b.gguf"));
    CHECK(!model_cache_name_valid("caf\xc3\xa9.gguf"));
    char longname[MODEL_CACHE_NAME_MAX + 8];
    memset(longname, 'x', sizeof(longname));
    memcpy(longname + MODEL_CACHE_NAME_MAX - 5, ".gguf", 6);
    CHECK(model_cache_name_valid(longname)); /* exactly the maximum */
    memcpy(longname + MODEL_CACHE_NAME_MAX - 4, ".gguf", 6);
    CHECK(!model_cache_name_valid(longname)); /* one byte over */
}

TEST(model_cache_format)
{
    static const struct {
        bool params; /* model_cache_format_params, else model_cache_format_size */
        uint64_t n;
        const char *want;
    } cases[] = {
        {false, 0, "0 B"},
        {false, 1023, "1023 B"},
        {false, 1185376, "1.1 MiB"},
        {false, 4ull << 30, "4.0 GiB"},
        {false, 700ull << 20, "700 MiB"},
        {false, UINT64_MAX, "16 EiB"},
        {true, 292800, "293K"},
        {true, 1100048384, "1.1B"},
        {true, 7, "7"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char b[32];
        if (cases[i].params)
            model_cache_format_params(cases[i].n, b, sizeof(b));
        else
            model_cache_format_size(cases[i].n, b, sizeof(b));
        CHECK_STR(b, cases[i].want);
    }
}

TEST(model_cache_sha256)
{
    char path[512], hex[65], back[65];
    snprintf(path, sizeof(path), "%s/abc", test_tmpdir());
    REQUIRE(write_file(path, "abc", 3) == 0);
    CHECK_EQ_INT(model_cache_sha256_file(path, hex), 0);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    snprintf(path, sizeof(path), "%s/empty", test_tmpdir());
    REQUIRE(write_file(path, "", 0) == 0);
    CHECK_EQ_INT(model_cache_sha256_file(path, hex), 0);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(model_cache_sha256_file("/nonexistent/file", hex) < 0);

    CHECK(model_cache_sha256_parse(
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", back));
    CHECK_STR(back, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(!model_cache_sha256_parse("ba78", NULL));
    CHECK(!model_cache_sha256_parse(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", NULL));
    CHECK(!model_cache_sha256_parse(
        "ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", NULL));

    snprintf(path, sizeof(path), "%s/m.gguf.sha256", test_tmpdir());
    CHECK_EQ_INT(model_cache_sha256_write(path, back, "m.gguf"), 0);
    CHECK_EQ_INT(model_cache_sha256_read(path, hex), 0);
    CHECK_STR(hex, back);
    CHECK(model_cache_sha256_write(path, "xyz", "m.gguf") < 0);
    REQUIRE(write_file(path, "not a digest\n", 13) == 0);
    CHECK(model_cache_sha256_read(path, hex) < 0);
}

TEST(model_cache_part_info)
{
    char path[512];
    struct model_cache_part_info in = {.total = 123456789012ull}, out;
    snprintf(in.url, sizeof(in.url), "https://example.com/a/b.gguf?x=1");
    snprintf(path, sizeof(path), "%s/b.gguf.part.info", test_tmpdir());
    CHECK_EQ_INT(model_cache_part_info_write(path, &in), 0);
    CHECK_EQ_INT(model_cache_part_info_read(path, &out), 0);
    CHECK_STR(out.url, in.url);
    CHECK_EQ_INT(out.total, in.total);
    REQUIRE(write_file(path, "url x\ntotal -5\n", 15) == 0);
    CHECK(model_cache_part_info_read(path, &out) < 0);
    REQUIRE(write_file(path, "total 99999999999999999999999\n", 30) == 0);
    CHECK(model_cache_part_info_read(path, &out) < 0);
    snprintf(in.url, sizeof(in.url), "a\nb");
    CHECK(model_cache_part_info_write(path, &in) < 0);
}

TEST(model_cache_dirs)
{
    char home[512], dir[MODEL_CACHE_PATH_MAX];
    snprintf(home, sizeof(home), "%s/deep/er/home", test_tmpdir());
    setenv("TANDEM_HOME", home, 1);
    CHECK_EQ_INT(model_cache_models_dir(dir, sizeof(dir), false), 0);
    struct stat st;
    CHECK(stat(dir, &st) != 0); /* not created without create */
    CHECK_EQ_INT(model_cache_models_dir(dir, sizeof(dir), true), 0);
    REQUIRE(stat(dir, &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ_INT(st.st_mode & 0777, 0700);
    REQUIRE(stat(home, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0700);
    unsetenv("TANDEM_HOME");
    setenv("HOME", "/somewhere", 1);
    CHECK_EQ_INT(model_cache_home(dir, sizeof(dir)), 0);
    CHECK_STR(dir, "/somewhere/.cache/tandem");
    unsetenv("HOME");
    CHECK_EQ_INT(model_cache_home(dir, sizeof(dir)), MODEL_CACHE_E_NOHOME);
    /* A file where the directory should be. */
    snprintf(home, sizeof(home), "%s/file", test_tmpdir());
    REQUIRE(write_file(home, "x", 1) == 0);
    setenv("TANDEM_HOME", home, 1);
    CHECK(model_cache_models_dir(dir, sizeof(dir), true) < 0);
}

TEST(model_cache_list)
{
    char dir[512], p[1024];
    snprintf(dir, sizeof(dir), "%s/models", test_tmpdir());
    struct model_cache_entry *v = NULL;
    CHECK_EQ_INT(model_cache_list(dir, &v), 0); /* missing directory: empty */
    free(v);
    REQUIRE(mkdir(dir, 0700) == 0);
    char *model = test_shared_path("models/stories260K.gguf");
    snprintf(p, sizeof(p), "%s/b-model.gguf", dir);
    REQUIRE(copy_file(model, p) == 0);
    snprintf(p, sizeof(p), "%s/b-model.gguf.sha256", dir);
    REQUIRE(model_cache_sha256_write(
                p, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
                "b-model.gguf") == 0);
    snprintf(p, sizeof(p), "%s/a-partial.gguf.part", dir);
    REQUIRE(write_file(p, "GGUF\3\0\0\0", 8) == 0);
    struct model_cache_part_info info = {.total = 32};
    snprintf(info.url, sizeof(info.url), "http://h/a-partial.gguf");
    snprintf(p, sizeof(p), "%s/a-partial.gguf.part.info", dir);
    REQUIRE(model_cache_part_info_write(p, &info) == 0);
    snprintf(p, sizeof(p), "%s/c-junk.gguf", dir);
    REQUIRE(write_file(p, "not gguf", 8) == 0);
    snprintf(p, sizeof(p), "%s/d-nosize.gguf.part", dir);
    REQUIRE(write_file(p, "GG", 2) == 0);
    snprintf(p, sizeof(p), "%s/.hidden.gguf", dir);
    REQUIRE(write_file(p, "x", 1) == 0);
    snprintf(p, sizeof(p), "%s/readme.txt", dir);
    REQUIRE(write_file(p, "x", 1) == 0);
    snprintf(p, sizeof(p), "%s/e-dir.gguf", dir);
    REQUIRE(mkdir(p, 0700) == 0);

    int n = model_cache_list(dir, &v);
    REQUIRE(n == 4);
    CHECK_STR(v[0].name, "a-partial.gguf");
    CHECK(v[0].partial);
    CHECK_EQ_INT(v[0].size, 8);
    CHECK_EQ_INT(v[0].total, 32);
    CHECK(strstr(v[0].path, "/a-partial.gguf.part") != NULL);
    CHECK_STR(v[1].name, "b-model.gguf");
    CHECK(!v[1].partial);
    CHECK_EQ_INT(v[1].size, 1185376);
    CHECK_STR(v[1].arch, "llama");
    CHECK_STR(v[1].type, "F32");
    CHECK_EQ_INT(v[1].n_params, 292800);
    CHECK_STR(v[1].sha256, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    CHECK_STR(v[1].error, "");
    CHECK_STR(v[2].name, "c-junk.gguf");
    CHECK(v[2].error[0] != 0);
    CHECK_STR(v[2].arch, "");
    CHECK_STR(v[3].name, "d-nosize.gguf");
    CHECK(v[3].partial);
    CHECK_EQ_INT(v[3].total, 0);
    free(v);
}
