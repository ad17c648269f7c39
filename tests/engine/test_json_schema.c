/* Tests of JSON-Schema constrained decoding: schema compiler, byte matcher, sampler stage. */
#include "test.h"

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "engine/json_schema.h"
#include "engine/json_schema_impl.h"
#include "tandem.h"

static struct json_schema *compile_ok(const char *text)
{
    struct json_schema *s = NULL;
    char err[256];
    int rc = json_schema_compile(&s, text, text ? strlen(text) : 0, err, sizeof(err));
    if (rc)
        test__fail(__FILE__, __LINE__, "compile failed (%d: %s) for %s", rc, err, text);
    return s;
}

/* Feeds `ok` byte by byte (all must be accepted), then checks the first byte of `bad` is
 * rejected (bad == NULL: nothing more) and json_match_complete after `ok` is `complete`. */
static void expect_at(int line, struct json_schema *s, const char *ok, const char *bad,
                      int complete)
{
    struct json_match *m = NULL;
    if (!s || json_match_new(&m, s)) {
        test__fail(__FILE__, line, "no matcher");
        return;
    }
    for (size_t i = 0; ok[i]; i++) {
        if (json_match_feed(m, ok + i, 1) != 0) {
            test__fail(__FILE__, line, "byte %zu ('%c') of %s rejected", i, ok[i], ok);
            goto out;
        }
    }
    if (complete >= 0 && json_match_complete(m) != (complete != 0))
        test__fail(__FILE__, line, "complete after %s is %d", ok, !complete);
    if (bad) {
        if (json_match_accepts(m, bad, 1))
            test__fail(__FILE__, line, "'%c' accepted after %s", bad[0], ok);
        if (json_match_feed(m, bad, 1) != JSON_SCHEMA_E_REJECT)
            test__fail(__FILE__, line, "feed of '%c' after %s not rejected", bad[0], ok);
    }
out:
    json_match_free(m);
}

/* One check of a schema, as expect_at runs it. */
struct match_case {
    int line;
    const char *ok, *bad;
    int complete;
};
#define ACCEPT(text) {__LINE__, text, NULL, 1}
#define PARTIAL(text) {__LINE__, text, NULL, 0}
#define REJECT(ok, bad) {__LINE__, ok, bad, -1}

/* A schema (NULL: any object) and its checks; the list ends at the first empty slot. */
struct schema_cases {
    const char *schema;
    struct match_case cases[24];
};

static void check_groups(const struct schema_cases *groups, size_t n)
{
    for (size_t g = 0; g < n; g++) {
        struct json_schema *s = compile_ok(groups[g].schema);
        for (const struct match_case *c = groups[g].cases; c->ok; c++)
            expect_at(c->line, s, c->ok, c->bad, c->complete);
        json_schema_free(s);
    }
}

static void expect_error(int line, const char *schema, int code, const char *word)
{
    struct json_schema *s = (struct json_schema *)1;
    char err[256] = "";
    int rc = json_schema_compile(&s, schema, strlen(schema), err, sizeof(err));
    if (rc != code)
        test__fail(__FILE__, line, "%s: rc %d, want %d (%s)", schema, rc, code, err);
    if (s != NULL)
        test__fail(__FILE__, line, "%s: *out not NULL on error", schema);
    if (word && !strstr(err, word))
        test__fail(__FILE__, line, "%s: message \"%s\" does not name %s", schema, err, word);
    json_schema_free(rc ? NULL : s);
}

TEST(json_compile_errors)
{
    const int I = JSON_SCHEMA_E_INVALID, U = JSON_SCHEMA_E_UNSUPPORTED;
    expect_error(__LINE__, "{\"type\":", I, "not valid JSON");
    expect_error(__LINE__, "42", I, "schema");
    expect_error(__LINE__, "false", I, "accepts nothing");
    expect_error(__LINE__, "{\"type\":\"strin\"}", I, "strin");
    expect_error(__LINE__, "{\"type\":[]}", I, "type");
    expect_error(__LINE__, "{\"type\":\"string\",\"pattern\":\"^a\"}", U, "pattern");
    expect_error(__LINE__, "{\"not\":{}}", U, "not");
    expect_error(__LINE__, "{\"type\":\"number\",\"multipleOf\":2}", U, "multipleOf");
    expect_error(__LINE__, "{\"type\":\"array\",\"uniqueItems\":true}", U, "uniqueItems");
    expect_error(__LINE__, "{\"type\":\"object\",\"patternProperties\":{}}", U,
                 "patternProperties");
    expect_error(__LINE__, "{\"type\":\"object\",\"minProperties\":1}", U, "minProperties");
    expect_error(__LINE__, "{\"type\":\"string\",\"minLength\":-1}", I, "minLength");
    expect_error(__LINE__, "{\"type\":\"string\",\"maxLength\":\"5\"}", I, "maxLength");
    expect_error(__LINE__, "{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}", I, "minLength");
    expect_error(__LINE__, "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", I, "minItems");
    expect_error(__LINE__, "{\"allOf\":[{},{}]}", U, "allOf");
    expect_error(__LINE__, "{\"anyOf\":[]}", I, "anyOf");
    expect_error(__LINE__,
                 "{\"anyOf\":[{\"type\":\"object\"},{\"type\":\"object\",\"properties\":{}}]}", U,
                 "anyOf");
    expect_error(__LINE__, "{\"oneOf\":[{\"type\":\"string\"},{\"enum\":[\"a\"]}]}", U, "oneOf");
    expect_error(__LINE__, "{\"$ref\":\"#/$defs/missing\"}", I, "$ref");
    expect_error(__LINE__, "{\"$ref\":\"https://example.com/s.json\"}", U, "$ref");
    expect_error(__LINE__, "{\"$ref\":\"#/$defs/a\",\"type\":\"string\",\"$defs\":{\"a\":{}}}", U,
                 "$ref");
    expect_error(__LINE__, "{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}", U,
                 "$ref cycle");
    expect_error(__LINE__,
                 "{\"$defs\":{\"x\":{\"anyOf\":[{\"$ref\":\"#/$defs/x\"},{\"type\":\"null\"}]}},"
                 "\"$ref\":\"#/$defs/x\"}",
                 U, "anyOf");
    expect_error(__LINE__,
                 "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"],"
                 "\"additionalProperties\":false}",
                 I, "'b'");
    expect_error(__LINE__, "{\"properties\":{\"a\":{\"type\":\"string\",\"if\":{}}}}", U, "if");
    /* a NULL error buffer is fine */
    struct json_schema *s = NULL;
    CHECK_EQ_INT(json_schema_compile(&s, "{\"not\":1}", 9, NULL, 0), U);
    CHECK(s == NULL);
    CHECK_STR(json_schema_strerror(U), "unsupported JSON schema keyword");
}

/* Random edits of a valid schema: every result compiles or fails cleanly. */
TEST(json_compile_mutations_do_not_crash)
{
    const char *base =
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"],"
        "\"maxLength\":4},\"b\":{\"$ref\":\"#/$defs/n\"},\"c\":{\"type\":\"array\","
        "\"prefixItems\":[{\"const\":1}],\"items\":{\"enum\":[\"x\",2]},\"maxItems\":3}},"
        "\"required\":[\"a\"],\"$defs\":{\"n\":{\"anyOf\":[{\"type\":\"integer\"},"
        "{\"type\":\"boolean\"}]}}}";
    size_t n = strlen(base);
    char buf[1024];
    uint64_t r = 12345;
    int ok = 0;
    const char alphabet[] = "{}[]\":,01-aeb tnrfl\\$#/";
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, base, n);
        int edits = 1 + iter % 3;
        for (int e = 0; e < edits; e++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (r >> 33) % n;
            buf[pos] = alphabet[(r >> 20) % (sizeof(alphabet) - 1)];
        }
        struct json_schema *s = NULL;
        char err[128];
        int rc = json_schema_compile(&s, buf, n, err, sizeof(err));
        if (rc == 0) {
            ok++;
            struct json_match *m = NULL;
            REQUIRE(json_match_new(&m, s) == 0);
            json_match_feed(m, "{\"a\":\"xy\",\"c\":[1,2]}", 20);
            json_match_free(m);
        } else {
            CHECK(rc == JSON_SCHEMA_E_INVALID || rc == JSON_SCHEMA_E_UNSUPPORTED);
            CHECK(err[0] != 0);
            CHECK(s == NULL);
        }
        json_schema_free(s);
    }
    CHECK(ok > 0);
}

TEST(json_object_required_and_keys)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":5},"
         "\"age\":{\"type\":\"integer\"},\"nick\":{\"type\":\"string\"},"
         "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}},"
         "\"required\":[\"name\",\"age\"]}",
         {
             ACCEPT("{\"name\":\"bob\",\"age\":42}"),
             ACCEPT("{\"age\":-7,\"tags\":[],\"name\":\"\"}"),
             ACCEPT(" { \"name\" : \"b\" ,\n  \"age\": 0 ,\"tags\":[ \"x\" , \"y\" ] }"),
             REJECT("{\"age\":42", "}"), /* name is required */
             REJECT("{", "}"),
             REJECT("{\"name\":\"bob\",\"n", "a"), /* a key may not repeat */
             REJECT("{\"n", "o"), /* only listed keys */
             REJECT("{\"ni", "x"), /* "nick" is fine ... */
             PARTIAL("{\"nick\":\"a\",\"n"), /* ... "name" still open after it */
             REJECT("{\"nam", "\""), /* a prefix is not a key */
             REJECT("{\"name\"", ","),
             REJECT("{\"name\":\"bobby", "x"), /* maxLength 5 */
             REJECT("{\"name\":\"b\",\"age\":4", "."), /* integer */
             REJECT("{\"name\":\"b\",\"age\":0", "1"), /* no leading zeros */
             REJECT("{\"name\":\"b\",\"age\":1,\"tags\":[\"a\",\"b\"", ","),
             REJECT("{\"name\":\"b\",\"age\":1,\"tags\":[\"a\",", "]"),
             REJECT("{\"name\":\"b\",\"age\":1,", "}"), /* no trailing comma */
             REJECT("{\"name\":\"b\",\"age\":1}", " "), /* nothing after the value */
             REJECT("", "["),
             /* whitespace is bounded: 6 per gap, one newline */
             ACCEPT("{\n     \"name\":\"b\",\"age\":1}"),
             REJECT("{      ", " "),
             REJECT("{\n ", "\n"),
             /* all four keys used: no comma can follow */
             REJECT("{\"name\":\"b\",\"age\":1,\"nick\":\"\",\"tags\":[]", ","),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_object_additional_properties)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
         "\"additionalProperties\":{\"type\":\"string\"}}",
         {
             ACCEPT("{\"a\":1,\"b\":\"x\"}"),
             ACCEPT("{\"ab\":\"x\",\"a\":2,\"\":\"\"}"),
             REJECT("{\"b\":", "1"), /* other keys take the additional schema */
             REJECT("{\"a\":", "\""), /* a takes its own */
             REJECT("{\"a\":1,\"a", "\""), /* no repeat, even as an "additional" key */
             REJECT("{\"", "\\"), /* escapes could spell a listed name ... */
             ACCEPT("{\"x\\u0061\":\"\"}"), /* ... but not once the name differs */
         }},
        /* {"type":"object"} alone: any object; required names not listed get any value */
        {"{\"type\":\"object\",\"required\":[\"id\"]}",
         {
             ACCEPT("{\"id\":[1,{\"z\":null}],\"w\\n\":true}"),
             REJECT("{\"x\":1", "}"),
         }},
        /* escaped names are matched in their canonical JSON spelling */
        {"{\"properties\":{\"a\\\"b\":{\"type\":\"null\"},\"\\u00e9\":{}},"
         "\"required\":[\"a\\\"b\"]}",
         {
             ACCEPT("{\"a\\\"b\":null}"),
             ACCEPT("{\"\xc3\xa9\":1,\"a\\\"b\":null}"),
             REJECT("{\"a", "\""),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_arrays_nested_and_bounded)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"items\":{\"type\":\"array\","
         "\"items\":{\"type\":\"integer\"},\"maxItems\":3}}",
         {
             ACCEPT("[[1,2,3],[]]"),
             ACCEPT("[ [ 1 ] ]"),
             REJECT("[", "]"), /* minItems 1 */
             REJECT("[[1,2,3]", "4"),
             REJECT("[[1,2,3", ","), /* inner maxItems 3 */
             REJECT("[[],[]", ","), /* outer maxItems 2 */
             REJECT("[[1,", "]"),
             REJECT("[", "1"),
         }},
        {"{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},"
         "{\"type\":\"string\"}],\"items\":false}",
         {
             ACCEPT("[1,\"a\"]"),
             ACCEPT("[1]"),
             ACCEPT("[]"),
             REJECT("[1,\"a\"", ","),
             REJECT("[", "\""),
         }},
        /* draft-7 tuple form */
        {"{\"items\":[{\"type\":\"boolean\"}],\"additionalItems\":{\"type\":\"null\"}}",
         {
             ACCEPT("[true,null,null]"),
             REJECT("[true,", "t"),
         }},
        {"{\"type\":\"array\",\"maxItems\":0}",
         {
             ACCEPT("[]"),
             REJECT("[", "1"),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_enum_and_const)
{
    static const struct schema_cases groups[] = {
        {"{\"enum\":[\"red\",\"green\",3,null,[1,{\"a\":true}]]}",
         {
             ACCEPT("\"green\""),
             ACCEPT("null"),
             ACCEPT("[1,{\"a\":true}]"),
             REJECT("\"gr", "a"),
             REJECT("\"red\"", "\""),
             REJECT("nul", "x"),
             REJECT("", "4"),
             REJECT("[1,", " "), /* literals are matched in compact form */
             ACCEPT("3"),
         }},
        {"{\"type\":\"object\",\"properties\":{\"n\":{\"enum\":[1,12,1.5]}},"
         "\"required\":[\"n\"]}",
         {
             ACCEPT("{\"n\":1}"),
             ACCEPT("{\"n\":12}"),
             ACCEPT("{\"n\":1.5 }"),
             REJECT("{\"n\":12", "3"),
             REJECT("{\"n\":1.", "6"),
         }},
        {"{\"const\":{\"a\":[1,2]}}",
         {
             ACCEPT("{\"a\":[1,2]}"),
             REJECT("{\"a\":[1,", "3"),
         }},
        /* type filters the enum: only strings survive */
        {"{\"type\":\"string\",\"enum\":[\"x\",1,true]}",
         {
             ACCEPT("\"x\""),
             REJECT("", "1"),
             REJECT("", "t"),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_numbers)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":\"number\"}",
         {
             ACCEPT("-12.5e+3"),
             ACCEPT("0"),
             ACCEPT("1E9"),
             PARTIAL("-"),
             PARTIAL("1."),
             PARTIAL("1e"),
             PARTIAL("1e-"),
             REJECT("0", "1"),
             REJECT("-", "-"),
             REJECT("1.", "e"),
             REJECT("", "+"),
             REJECT("", "."),
             REJECT("1234567890123456", "7"), /* integer digits bounded */
             REJECT("1.12345678", "9"), /* fraction digits bounded */
             REJECT("1e12", "3"), /* exponent digits bounded */
         }},
        {"{\"type\":\"integer\"}",
         {
             ACCEPT("-120"),
             REJECT("1", "."),
             REJECT("1", "e"),
         }},
        {"{\"type\":\"integer\",\"minimum\":0}",
         {
             ACCEPT("5"),
             REJECT("", "-"),
         }},
        {"{\"type\":[\"integer\",\"number\"]}",
         {
             ACCEPT("1.5"),
             ACCEPT("-2"),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_strings_escapes_utf8)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":\"string\",\"maxLength\":3}",
         {
             ACCEPT("\"a\xc3\xa9\xe2\x82\xac\""), /* a, e-acute, euro: 3 code points */
             REJECT("\"a\xc3\xa9\xe2\x82\xac", "x"),
             ACCEPT("\"\\ud83d\\ude00ab\""), /* a surrogate pair is one */
             ACCEPT("\"\xf0\x9f\x98\x80\\n\\u0041\""),
             ACCEPT("\"\\\"\\\\\\/\""),
             REJECT("\"\\ud83d", "\""), /* high surrogate needs a low one */
             REJECT("\"\\ud83d\\", "n"),
             REJECT("\"\\ud83d\\u", "0"),
             REJECT("\"\\ud83d\\ud", "0"),
             REJECT("\"\\ud", "e"), /* lone low surrogate */
             REJECT("\"\\u000", "0"), /* \u0000: strict parsers refuse it */
             REJECT("\"\\u00", "g"),
             REJECT("\"\\", "x"),
             REJECT("\"", "\n"), /* raw control bytes */
             REJECT("\"", "\xc0"), /* overlong lead */
             REJECT("\"", "\xff"),
             REJECT("\"\xe0", "\x80"), /* overlong 3-byte */
             REJECT("\"\xed", "\xa0"), /* UTF-16 surrogate in UTF-8 */
             REJECT("\"\xf4", "\x90"), /* above U+10FFFF */
             REJECT("\"\xc3", "\""), /* truncated sequence */
             REJECT("\"abc", "\\"), /* an escape is a code point too */
         }},
        {"{\"type\":\"string\",\"minLength\":2,\"format\":\"date\"}",
         {
             REJECT("\"a", "\""),
             ACCEPT("\"ab\""),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_literals_anyof_refs)
{
    static const struct schema_cases groups[] = {
        {"{\"type\":[\"boolean\",\"null\"]}",
         {
             ACCEPT("true"),
             ACCEPT("false"),
             ACCEPT(" null"),
             REJECT("tru", "x"),
             REJECT("", "\""),
         }},
        {"{\"anyOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"array\","
         "\"items\":{\"type\":\"integer\"}},{\"type\":\"null\"},"
         "{\"const\":true},{\"enum\":[false]}]}",
         {
             ACCEPT("\"ab\""),
             ACCEPT("[1,2]"),
             ACCEPT("null"),
             ACCEPT("true"),
             ACCEPT("false"),
             REJECT("\"ab", "c"),
             REJECT("[1", "."),
             REJECT("", "{"),
             REJECT("", "1"),
         }},
        {"{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
         "\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},"
         "\"required\":[\"v\",\"next\"],\"additionalProperties\":false}},"
         "\"$ref\":\"#/$defs/node\"}",
         {
             ACCEPT("{\"v\":1,\"next\":{\"v\":2,\"next\":null}}"),
             REJECT("{\"v\":1,\"next\":{\"v\":", "t"),
             REJECT("{\"v\":1,\"next\":{\"v\":2", "}"),
         }},
        {"{\"definitions\":{\"c\":{\"enum\":[\"r\",\"g\"]}},\"type\":\"object\","
         "\"properties\":{\"c\":{\"$ref\":\"#/definitions/c\"},"
         "\"d\":{\"allOf\":[{\"$ref\":\"#/definitions/c\"}],\"description\":\"x\"}}}",
         {
             ACCEPT("{\"c\":\"r\",\"d\":\"g\"}"),
             REJECT("{\"d\":\"", "b"),
         }},
        /* anyOf alternatives where one subsumes the other at the first byte */
        {"{\"anyOf\":[{},{\"type\":\"string\",\"maxLength\":1}]}",
         {
             ACCEPT("\"long string\""),
         }},
        /* the root recursion: "#" */
        {"{\"type\":\"array\",\"items\":{\"$ref\":\"#\"},\"maxItems\":2}",
         {
             ACCEPT("[[],[[]]]"),
             REJECT("[[],[]", ","),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
}

TEST(json_null_schema_any_object)
{
    static const struct schema_cases groups[] = {
        {NULL,
         {
             ACCEPT("{\"a\":[1,{\"b\":null},-2.5e3,\"x\\u00e9\"],\"c\":\"x\",\"a\":{}}"),
             ACCEPT("{}"),
             REJECT("", "["),
             REJECT("", "\""),
             REJECT("", "1"),
             REJECT("{\"a\":", "}"),
             REJECT("{\"a\"", "}"),
             REJECT("{", "a"),
         }},
    };
    check_groups(groups, sizeof(groups) / sizeof(groups[0]));
    /* depth is bounded at 64 containers */
    struct json_schema *s = compile_ok(NULL);
    char deep[128] = "{\"a\":";
    size_t n = strlen(deep);
    for (int i = 0; i < 63; i++)
        deep[n++] = '[';
    deep[n] = 0;
    expect_at(__LINE__, s, deep, "[", -1);
    expect_at(__LINE__, s, deep, "{", -1);
    json_schema_free(s);
}

TEST(json_feed_is_atomic)
{
    struct json_schema *s = compile_ok("{\"type\":\"object\",\"properties\":{\"a\":"
                                       "{\"type\":\"integer\"}},\"required\":[\"a\"]}");
    struct json_match *m = NULL;
    REQUIRE(json_match_new(&m, s) == 0);
    CHECK_EQ_INT(json_match_feed(m, "{\"a\":1", 6), 0);
    CHECK_EQ_INT(json_match_feed(m, "2x}", 3), JSON_SCHEMA_E_REJECT); /* unchanged */
    CHECK(json_match_accepts(m, "23}", 3));
    CHECK(!json_match_complete(m));
    CHECK_EQ_INT(json_match_feed(m, "2}", 2), 0);
    CHECK(json_match_complete(m));
    CHECK(!json_match_accepts(m, " ", 1));
    json_match_reset(m);
    CHECK(!json_match_complete(m));
    CHECK_EQ_INT(json_match_feed(m, "{\"a\":3}", 7), 0);
    CHECK(json_match_complete(m));
    json_match_free(m);
    json_schema_free(s);
    json_match_free(NULL);
    json_schema_free(NULL);
    json_vocab_free(NULL);
}

/* ---- a validator for the subset, to check generated text independently of the matcher ---- */

static bool validate(json_t *v, json_t *sch, json_t *root, int depth);

static json_t *deref(json_t *sch, json_t *root)
{
    json_t *r = json_object_get(sch, "$ref");
    if (!json_is_string(r))
        return sch;
    const char *p = json_string_value(r);
    if (!strcmp(p, "#"))
        return root;
    if (!strncmp(p, "#/$defs/", 8))
        return json_object_get(json_object_get(root, "$defs"), p + 8);
    return NULL;
}

static bool type_ok(json_t *v, const char *t)
{
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    return !strcmp(t, "null") && json_is_null(v);
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool validate(json_t *v, json_t *sch, json_t *root, int depth)
{
    sch = deref(sch, root);
    if (!sch || depth > 64)
        return false;
    json_t *t = json_object_get(sch, "type"), *x;
    if (json_is_string(t) && !type_ok(v, json_string_value(t)))
        return false;
    if ((x = json_object_get(sch, "enum"))) {
        bool any = false;
        for (size_t i = 0; i < json_array_size(x); i++)
            any |= json_equal(json_array_get(x, i), v);
        if (!any)
            return false;
    }
    if ((x = json_object_get(sch, "const")) && !json_equal(x, v))
        return false;
    if ((x = json_object_get(sch, "anyOf"))) {
        bool any = false;
        for (size_t i = 0; i < json_array_size(x); i++)
            any |= validate(v, json_array_get(x, i), root, depth + 1);
        if (!any)
            return false;
    }
    if (json_is_string(v)) {
        size_t n = utf8_len(json_string_value(v), json_string_length(v));
        if ((x = json_object_get(sch, "maxLength")) && n > (size_t)json_integer_value(x))
            return false;
        if ((x = json_object_get(sch, "minLength")) && n < (size_t)json_integer_value(x))
            return false;
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if ((x = json_object_get(sch, "maxItems")) && n > (size_t)json_integer_value(x))
            return false;
        if ((x = json_object_get(sch, "minItems")) && n < (size_t)json_integer_value(x))
            return false;
        json_t *items = json_object_get(sch, "items");
        for (size_t i = 0; items && i < n; i++)
            if (!validate(json_array_get(v, i), items, root, depth + 1))
                return false;
    }
    if (json_is_object(v)) {
        json_t *props = json_object_get(sch, "properties");
        json_t *req = json_object_get(sch, "required");
        for (size_t i = 0; i < json_array_size(req); i++)
            if (!json_object_get(v, json_string_value(json_array_get(req, i))))
                return false;
        const char *k;
        json_t *val;
        json_object_foreach(v, k, val)
        {
            json_t *ps = props ? json_object_get(props, k) : NULL;
            if (!ps && json_is_false(json_object_get(sch, "additionalProperties")))
                return false;
            if (ps && !validate(val, ps, root, depth + 1))
                return false;
        }
    }
    return true;
}

/* ---- the sampler stage ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct gen_result {
    char text[8192];
    size_t len;
    int steps;
    bool ended;
    bool failed;
};

/* Samples with random logits until an end-of-generation token (or max_steps). */
static int generate(struct tandem_model *model, const struct json_vocab *vocab,
                    const struct json_schema *s, uint64_t seed, int max_steps,
                    struct gen_result *out)
{
    int32_t nv = json__vocab_n(vocab);
    struct sampler_chain *chain = NULL;
    struct sampler_stage *st = NULL, *dist = NULL;
    float *logits = malloc((size_t)nv * sizeof(float));
    memset(out, 0, sizeof(*out));
    if (!logits || sampler_chain_new_empty(&chain, nv) ||
        sampler_stage_json_new(&st, vocab, s, model))
        goto fail;
    const struct sampler_stage *json_st = st;
    if (sampler_chain_add(chain, st) || sampler_stage_dist_new(&dist, seed) ||
        sampler_chain_add(chain, dist))
        goto fail;
    uint64_t r = seed * 2654435761u + 1;
    for (out->steps = 0; out->steps < max_steps; out->steps++) {
        for (int32_t i = 0; i < nv; i++)
            logits[i] = (float)((rng_next(&r) >> 40) % 1000) / 100.0f - 5.0f;
        int32_t tok = sampler_sample(chain, logits);
        if (tok < 0)
            goto fail;
        if (tandem_token_is_eog(model, tok)) {
            out->ended = true;
            break;
        }
        char piece[256];
        int n = tandem_token_to_piece(model, tok, piece, sizeof(piece), false);
        if (n < 0 || (size_t)n > sizeof(piece) || out->len + (size_t)n >= sizeof(out->text))
            goto fail;
        memcpy(out->text + out->len, piece, (size_t)n);
        out->len += (size_t)n;
        sampler_accept(chain, tok);
    }
    out->text[out->len] = 0;
    out->failed = sampler_stage_json_failed(json_st);
    sampler_free(chain);
    free(logits);
    return 0;
fail:
    sampler_free(chain);
    sampler_stage_free(dist);
    free(logits);
    return -1;
}

static struct tandem_model *load_stories(void)
{
    struct tandem_model *m = NULL;
    char err[256];
    char *path = test_shared_path("models/stories260K.gguf");
    if (!path || tandem_model_load(&m, path, err, sizeof(err))) {
        test__fail(__FILE__, __LINE__, "load: %s", path ? err : "no memory");
        m = NULL;
    }
    free(path);
    return m;
}

static const char *const gen_schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":8},\"age\":{\"type\":\"integer\",\"minimum\":0},\"color\":{\"enum\":[\"red\","
    "\"green\",\"blue\"]},\"ok\":{\"type\":\"boolean\"},\"tags\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\",\"maxLength\":3},\"maxItems\":3}},"
    "\"required\":[\"name\",\"age\",\"color\"],\"additionalProperties\":false}",
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"minItems\":1,"
    "\"maxItems\":3,\"items\":{\"$ref\":\"#/$defs/item\"}},\"note\":{\"anyOf\":[{\"type\":"
    "\"string\",\"maxLength\":5},{\"type\":\"null\"}]}},\"required\":[\"items\",\"note\"],"
    "\"$defs\":{\"item\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
    "\"score\":{\"type\":\"number\"}},\"required\":[\"id\",\"score\"]}}}",
    "{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"array\",\"prefixItems\":[{\"const\":"
    "\"x\"},{\"type\":\"null\"}],\"items\":false,\"minItems\":2}},\"required\":[\"t\"]}",
};

TEST(json_stage_generates_valid_json)
{
    struct tandem_model *m = load_stories();
    REQUIRE(m);
    struct json_vocab *v = NULL;
    REQUIRE(json_vocab_new(&v, m) == 0);
    for (size_t k = 0; k < sizeof(gen_schemas) / sizeof(gen_schemas[0]); k++) {
        struct json_schema *s = compile_ok(gen_schemas[k]);
        REQUIRE(s);
        json_t *sch = json_loads(gen_schemas[k], 0, NULL);
        for (uint64_t seed = 1; seed <= 6; seed++) {
            struct gen_result g;
            REQUIRE(generate(m, v, s, seed, 400, &g) == 0);
            if (!g.ended || g.failed)
                test__fail(__FILE__, __LINE__,
                           "schema %zu seed %llu: ended %d failed %d "
                           "after %d steps: %s",
                           k, (unsigned long long)seed, g.ended, g.failed, g.steps, g.text);
            json_error_t je;
            json_t *doc = json_loads(g.text, 0, &je);
            if (!doc)
                test__fail(__FILE__, __LINE__, "schema %zu seed %llu: not JSON (%s): %s", k,
                           (unsigned long long)seed, je.text, g.text);
            else if (!validate(doc, sch, sch, 0))
                test__fail(__FILE__, __LINE__, "schema %zu seed %llu: invalid: %s", k,
                           (unsigned long long)seed, g.text);
            if (getenv("JSON_TEST_VERBOSE"))
                fprintf(stderr, "[%zu/%llu %d steps] %s\n", k, (unsigned long long)seed, g.steps,
                        g.text);
            json_decref(doc);
        }
        json_decref(sch);
        json_schema_free(s);
    }
    /* any JSON object (response_format json_object): strings are unbounded, so only check
     * that whatever was produced is a valid prefix or a valid object */
    struct json_schema *s = compile_ok(NULL);
    struct gen_result g;
    REQUIRE(generate(m, v, s, 7, 300, &g) == 0);
    CHECK(!g.failed);
    if (g.ended) {
        json_t *doc = json_loads(g.text, 0, NULL);
        CHECK(json_is_object(doc));
        json_decref(doc);
    }
    json_schema_free(s);
    json_vocab_free(v);
    tandem_model_free(m);
}

TEST(json_stage_masks_and_failed_flag)
{
    struct tandem_model *m = load_stories();
    REQUIRE(m);
    struct json_vocab *v = NULL;
    REQUIRE(json_vocab_new(&v, m) == 0);
    struct json_schema *s = compile_ok("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                                       "\"boolean\"}},\"required\":[\"a\"]}");
    struct sampler_stage *st = NULL;
    REQUIRE(sampler_stage_json_new(&st, v, s, m) == 0);
    CHECK_STR(st->iface->name(st), "json");
    int32_t nv = tandem_model_n_vocab(m);
    struct sampler_candidate *data = malloc((size_t)nv * sizeof(*data));
    REQUIRE(data);
    struct sampler_candidates c;
    /* at the start only texts that begin a JSON object pass, EOG does not */
    for (int32_t i = 0; i < nv; i++)
        data[i] = (struct sampler_candidate){i, 1.0f, 0};
    c = (struct sampler_candidates){data, (size_t)nv, true, true, -1};
    st->iface->apply(st, &c);
    int kept = 0;
    for (int32_t i = 0; i < nv; i++) {
        char piece[64];
        int n = tandem_token_to_piece(m, i, piece, sizeof(piece), false);
        bool want = n > 0 && !tandem_token_is_eog(m, i);
        for (int j = 0; want && j < n; j++)
            want = piece[j] == ' ' || piece[j] == '\n' || piece[j] == '\t' ||
                   (piece[j] == '{' && j == n - 1);
        if (want != (data[i].logit == 1.0f))
            test__fail(__FILE__, __LINE__, "token %d '%.*s' allowed %d", i, n > 0 ? n : 0, piece,
                       data[i].logit == 1.0f);
        kept += data[i].logit == 1.0f;
        CHECK(data[i].id == i);
    }
    CHECK(kept > 0);
    CHECK(!c.sorted);
    CHECK(c.identity);
    /* feed a whole value through accept, then only EOG is left */
    int32_t ids[64];
    int n = tandem_tokenize(m, "{\"a\":true}", 10, ids, 64, false, false);
    REQUIRE(n > 0 && n <= 64);
    for (int i = 0; i < n; i++)
        st->iface->accept(st, ids[i]);
    CHECK(!sampler_stage_json_failed(st));
    CHECK(sampler_stage_json_complete(st));
    for (int32_t i = 0; i < nv; i++)
        data[i] = (struct sampler_candidate){i, 1.0f, 0};
    c = (struct sampler_candidates){data, (size_t)nv, true, true, -1};
    st->iface->apply(st, &c);
    for (int32_t i = 0; i < nv; i++)
        CHECK((data[i].logit == 1.0f) == tandem_token_is_eog(m, i));
    /* a token the matcher rejects sets the flag; reset clears it */
    st->iface->reset(st);
    CHECK(!sampler_stage_json_complete(st));
    n = tandem_tokenize(m, "}", 1, ids, 64, false, false);
    REQUIRE(n >= 1);
    st->iface->accept(st, ids[n - 1]);
    CHECK(sampler_stage_json_failed(st));
    st->iface->reset(st);
    CHECK(!sampler_stage_json_failed(st));
    CHECK(!sampler_stage_json_failed(NULL));
    sampler_stage_free(st);
    free(data);
    json_schema_free(s);
    json_vocab_free(v);
    tandem_model_free(m);
}

/* A vocabulary with no way to continue: the stage leaves EOG and raises the flag. */
TEST(json_stage_dead_end_leaves_eog)
{
    const char *texts[] = {"{", "\"", "x", "</s>"};
    size_t lens[] = {1, 1, 1, 4};
    uint8_t eog[] = {0, 0, 0, 1};
    struct json_vocab *v = NULL;
    REQUIRE(json__vocab_new_texts(&v, texts, lens, eog, 4) == 0);
    struct json_schema *s = compile_ok("{\"type\":\"object\",\"properties\":{\"ab\":{}},"
                                       "\"required\":[\"ab\"]}");
    struct sampler_stage *st = NULL;
    REQUIRE(sampler_stage_json_new(&st, v, s, NULL) == 0);
    struct sampler_candidate data[4];
    for (int i = 0; i < 4; i++)
        data[i] = (struct sampler_candidate){i, 0.5f, 0};
    struct sampler_candidates c = {data, 4, false, true, -1};
    st->iface->apply(st, &c);
    CHECK(data[0].logit == 0.5f);
    CHECK(data[1].logit == -INFINITY && data[2].logit == -INFINITY);
    CHECK(data[3].logit == -INFINITY);
    CHECK(!sampler_stage_json_failed(st));
    st->iface->accept(st, 0);
    st->iface->accept(st, 1); /* {" : now a key "ab" is needed and no token spells 'a' */
    for (int i = 0; i < 4; i++)
        data[i] = (struct sampler_candidate){i, 0.5f, 0};
    c = (struct sampler_candidates){data, 4, false, true, -1};
    st->iface->apply(st, &c);
    CHECK(data[0].logit == -INFINITY && data[1].logit == -INFINITY);
    CHECK(data[2].logit == -INFINITY);
    CHECK(data[3].logit > -INFINITY);
    CHECK(sampler_stage_json_failed(st));
    sampler_stage_free(st);
    json_schema_free(s);
    json_vocab_free(v);
}

/* Timing over a synthetic 32k-token vocabulary: words, JSON punctuation, digits. Prints the
 * cost of one apply in a few states; fails only when it is absurdly slow. */
TEST(json_stage_apply_speed_32k)
{
    enum { NV = 32000 };
    static const char *const parts[] = {
        "the",      " the", "ing", " a",  "s",     "ed",     " and", "er",  "\"",
        "\":",      "{\"",  "\",", "\"}", ",\"",   "}",      "{",    "[",   "]",
        ",",        ":",    " ",   "  ",  "\n",    "\n  ",   "0",    "1",   "12",
        "2024",     ".",    "-",   "e",   "true",  "false",  "null", "\\n", "\\\"",
        "\xc3\xa9", "name", "id",  "x",   "value", " value", "ion",  "Th",  "at",
        " is",      "ly",   "re",  "on",  "al",    "an",     "in",   "it"};
    const size_t np = sizeof(parts) / sizeof(parts[0]);
    char **texts = calloc(NV, sizeof(*texts));
    size_t *lens = calloc(NV, sizeof(*lens));
    uint8_t *eog = calloc(NV, 1);
    REQUIRE(texts && lens && eog);
    uint64_t r = 99;
    for (int i = 0; i < NV; i++) {
        char buf[64];
        size_t n = 0;
        int k = 1 + (int)(rng_next(&r) % 3);
        for (int j = 0; j < k; j++) {
            const char *p = parts[rng_next(&r) % np];
            size_t l = strlen(p);
            memcpy(buf + n, p, l);
            n += l;
        }
        texts[i] = malloc(n);
        REQUIRE(texts[i]);
        memcpy(texts[i], buf, n);
        lens[i] = n;
    }
    for (int i = 2; i < 2 + 95; i++) { /* every printable ASCII byte as a token */
        texts[i][0] = (char)(' ' + i - 2);
        lens[i] = 1;
    }
    lens[0] = 0;
    eog[1] = 1;
    struct json_vocab *v = NULL;
    REQUIRE(json__vocab_new_texts(&v, (const char *const *)texts, lens, eog, NV) == 0);
    struct json_schema *s = compile_ok(gen_schemas[0]);
    struct sampler_stage *st = NULL;
    REQUIRE(sampler_stage_json_new(&st, v, s, NULL) == 0);
    struct sampler_candidate *data = malloc(NV * sizeof(*data));
    REQUIRE(data);
    static const char *const prefixes[] = {"", "{\"", "{\"name\":\"ab", "{\"age\":12"};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        st->iface->reset(st);
        /* drive the stage's matcher by accepting single-byte tokens of the prefix */
        for (const char *q = prefixes[p]; *q; q++) {
            int32_t id = -1;
            for (int i = 2; i < NV && id < 0; i++)
                if (lens[i] == 1 && texts[i][0] == *q)
                    id = i;
            REQUIRE(id >= 0);
            st->iface->accept(st, id);
        }
        CHECK(!sampler_stage_json_failed(st));
        int reps = 20, kept = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int rep = 0; rep < reps; rep++) {
            for (int i = 0; i < NV; i++)
                data[i] = (struct sampler_candidate){i, 1.0f, 0};
            struct sampler_candidates c = {data, NV, false, true, -1};
            st->iface->apply(st, &c);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        for (int i = 0; i < NV; i++)
            kept += data[i].logit == 1.0f;
        double us = ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / reps;
        printf("    json apply over %d tokens after '%s': %.0f us (%d allowed)\n", NV, prefixes[p],
               us, kept);
        CHECK(kept > 0);
        CHECK(us < 200000);
    }
    sampler_stage_free(st);
    free(data);
    json_schema_free(s);
    json_vocab_free(v);
    for (int i = 0; i < NV; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    free(eog);
}
