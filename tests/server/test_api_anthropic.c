/* Anthropic Messages wire format: requests into struct api_request (every rejected case names
 * its param), error mapping, and the message and stream events re-parsed with jansson. */
#include "test.h"

#include <jansson.h>
#include <stdint.h>

#include "server/api_anthropic.h"

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
/* The start of a body whose messages follow. */
#define M5 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":"
#define BASE "\"model\":\"m\",\"max_tokens\":16," MSGS

static int parse(struct api_request *r, const char *body, struct api_error *err)
{
    return api_anthropic_parse(r, body, strlen(body), NULL, err);
}

/* Checks that body is rejected with `status` naming param (NULL: no param) and that the message
 * contains `needle` (NULL: any). Returns 1 when the row failed. */
static int expect_err(const char *body, int status, const char *param, const char *needle,
                      const struct api_limits *lim)
{
    struct api_request r;
    struct api_error e;
    memset(&e, 0, sizeof(e));
    int rc = api_anthropic_parse(&r, body, strlen(body), lim, &e);
    int bad = 0;
    if (rc != -1 || e.status != status)
        bad = 1;
    else if (param ? (!e.param || strcmp(e.param, param)) : e.param != NULL)
        bad = 1;
    else if (!e.message[0] || (needle && !strstr(e.message, needle)))
        bad = 1;
    /* Anthropic's messages lead with the path. */
    else if (param && strncmp(e.message, param, strlen(param)))
        bad = 1;
    if (rc == -1 && (r.priv || r.model || r.messages))
        bad = 1;
    if (bad)
        fprintf(stderr, "    row failed: %s -> rc %d status %d param %s msg %s\n", body, rc,
                e.status, e.param ? e.param : "(null)", e.message);
    if (rc == 0)
        api_request_free(&r);
    return bad;
}

TEST(anthropic_parse_all_fields)
{
    const char *body =
        "{\"model\":\"claude-x\",\"max_tokens\":100,"
        "\"system\":\"Be brief.\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\",\"cache_control\":"
        "{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"b\"}]}],"
        "\"stop_sequences\":[\"END\",\"\\n\\nHuman:\"],\"temperature\":0.5,\"top_p\":0.9,"
        "\"top_k\":40,\"stream\":true,\"metadata\":{\"user_id\":\"u-42\"},"
        "\"service_tier\":\"auto\",\"some_future_field\":{\"x\":1}}";
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, body, &e) == 0);
    CHECK_EQ_INT(r.kind, API_CHAT);
    CHECK_STR(r.model, "claude-x");
    CHECK_EQ_INT(r.max_tokens, 100);
    REQUIRE(r.n_messages == 4);
    CHECK_STR(r.messages[0].role, "system");
    CHECK_STR(r.messages[0].content, "Be brief.");
    CHECK_STR(r.messages[1].role, "user");
    CHECK_STR(r.messages[1].content, "Hello");
    CHECK_STR(r.messages[2].role, "assistant");
    CHECK_STR(r.messages[2].content, "Hi");
    CHECK_STR(r.messages[3].role, "user");
    CHECK_STR(r.messages[3].content, "a\nb");
    CHECK(r.messages[3].name == NULL);
    REQUIRE(r.n_stop == 2);
    CHECK_STR(r.stop[0], "END");
    CHECK_STR(r.stop[1], "\n\nHuman:");
    CHECK_NEAR(r.temperature, 0.5, 1e-6);
    CHECK_NEAR(r.top_p, 0.9, 1e-6);
    CHECK(r.stream);
    CHECK_STR(r.user, "u-42");
    CHECK(r.priv != NULL);
    api_request_free(&r);
    CHECK(r.priv == NULL && r.messages == NULL);
}

TEST(anthropic_parse_defaults)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, "{" BASE "}", &e) == 0);
    REQUIRE(r.n_messages == 1);
    CHECK_STR(r.messages[0].role, "user");
    CHECK_STR(r.messages[0].content, "hi");
    CHECK_EQ_INT(r.max_tokens, 16);
    CHECK_NEAR(r.temperature, 1, 1e-6);
    CHECK_NEAR(r.top_p, 1, 1e-6);
    CHECK(!r.stream);
    CHECK_EQ_INT(r.n_stop, 0);
    CHECK(r.user == NULL);
    CHECK_EQ_INT(r.format, API_FORMAT_TEXT);
    api_request_free(&r);
}

TEST(anthropic_parse_system_blocks)
{
    struct api_request r;
    struct api_error e;
    const char *body = "{" BASE ",\"system\":[{\"type\":\"text\",\"text\":\"one\"},"
                       "{\"type\":\"text\",\"text\":\"two\",\"cache_control\":{\"type\":"
                       "\"ephemeral\"}}]}";
    REQUIRE(parse(&r, body, &e) == 0);
    REQUIRE(r.n_messages == 2);
    CHECK_STR(r.messages[0].role, "system");
    CHECK_STR(r.messages[0].content, "one\ntwo");
    CHECK_STR(r.messages[1].content, "hi");
    api_request_free(&r);

    /* An empty system prompt (or none, or null) adds no message. */
    static const char *const empties[] = {"{" BASE ",\"system\":\"\"}", "{" BASE ",\"system\":[]}",
                                          "{" BASE ",\"system\":null}"};
    for (size_t i = 0; i < 3; i++) {
        REQUIRE(parse(&r, empties[i], &e) == 0);
        CHECK_EQ_INT(r.n_messages, 1);
        CHECK_STR(r.messages[0].role, "user");
        api_request_free(&r);
    }
}

TEST(anthropic_parse_prefill_and_unicode)
{
    struct api_request r;
    struct api_error e;
    /* A final assistant turn may be empty (a prefill); text keeps its Unicode. */
    const char *body = M5 "["
                          "{\"role\":\"user\",\"content\":\"caf\\u00e9 \\ud83d\\ude00\"},"
                          "{\"role\":\"assistant\",\"content\":\"\"}]}";
    REQUIRE(parse(&r, body, &e) == 0);
    REQUIRE(r.n_messages == 2);
    CHECK_STR(r.messages[0].content, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    CHECK_STR(r.messages[1].role, "assistant");
    CHECK_STR(r.messages[1].content, "");
    api_request_free(&r);
}

TEST(anthropic_parse_metadata_and_nulls)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, "{" BASE ",\"metadata\":{}}", &e) == 0);
    CHECK(r.user == NULL);
    api_request_free(&r);
    REQUIRE(parse(&r, "{" BASE ",\"metadata\":{\"user_id\":null},\"temperature\":null}", &e) == 0);
    CHECK(r.user == NULL);
    CHECK_NEAR(r.temperature, 1, 1e-6);
    api_request_free(&r);
    /* Empty tools, tool_choice auto/none and thinking disabled ask for nothing. */
    REQUIRE(parse(&r,
                  "{" BASE ",\"tools\":[],\"tool_choice\":{\"type\":\"auto\"},"
                  "\"thinking\":{\"type\":\"disabled\"}}",
                  &e) == 0);
    api_request_free(&r);
    REQUIRE(parse(&r, "{" BASE ",\"tool_choice\":{\"type\":\"none\"}}", &e) == 0);
    api_request_free(&r);
}

TEST(anthropic_parse_stop_limit)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, "{" BASE ",\"stop_sequences\":[\"a\",\"b\",\"c\",\"d\"]}", &e) == 0);
    CHECK_EQ_INT(r.n_stop, 4);
    CHECK_STR(r.stop[3], "d");
    api_request_free(&r);
    CHECK_EQ_INT(expect_err("{" BASE ",\"stop_sequences\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400,
                            "stop_sequences", "at most 4", NULL),
                 0);
    REQUIRE(parse(&r, "{" BASE ",\"stop_sequences\":[]}", &e) == 0);
    CHECK_EQ_INT(r.n_stop, 0);
    api_request_free(&r);
}

struct bad_case {
    const char *body;
    const char *param;
    const char *needle; /* part of the message, or NULL */
};

TEST(anthropic_parse_invalid)
{
    static const struct bad_case cases[] = {
        {"", NULL, "not valid JSON"},
        {"{", NULL, "not valid JSON"},
        {"[]", NULL, "JSON object"},
        {"{\"max_tokens\":5," MSGS "}", "model", "Field required"},
        {"{\"model\":null,\"max_tokens\":5," MSGS "}", "model", "Field required"},
        {"{\"model\":7,\"max_tokens\":5," MSGS "}", "model", "a string"},
        {"{\"model\":\"\",\"max_tokens\":5," MSGS "}", "model", NULL},
        {"{\"model\":\"m\"," MSGS "}", "max_tokens", "Field required"},
        {"{\"model\":\"m\",\"max_tokens\":\"5\"," MSGS "}", "max_tokens", "an integer"},
        {"{\"model\":\"m\",\"max_tokens\":1.5," MSGS "}", "max_tokens", "an integer"},
        {"{\"model\":\"m\",\"max_tokens\":0," MSGS "}", "max_tokens", "greater than or equal"},
        {"{\"model\":\"m\",\"max_tokens\":-3," MSGS "}", "max_tokens", NULL},
        {"{\"model\":\"m\",\"max_tokens\":32769," MSGS "}", "max_tokens", "32768"},
        {"{\"model\":\"m\",\"max_tokens\":5}", "messages", "Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}", "messages", "an array"},
        {M5 "[]}", "messages", "at least one"},
        {M5 "[\"hi\"]}", "messages.0", "an object"},
        {M5 "[{\"content\":\"x\"}]}", "messages.0.role", "Field required"},
        {M5 "[{\"role\":\"system\",\"content\":\"x\"}]}", "messages.0.role", "top-level `system`"},
        {M5 "[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages.0.role", "'user' or 'assistant'"},
        {M5 "[{\"role\":1,\"content\":\"x\"}]}", "messages.0.role", "a string"},
        {M5 "[{\"role\":\"user\"}]}", "messages.0.content", "Field required"},
        {M5 "[{\"role\":\"user\",\"content\":3}]}", "messages.0.content", "a string or an array"},
        {M5 "[{\"role\":\"user\",\"content\":\"\"}]}", "messages.0", "non-empty content"},
        {M5 "[{\"role\":\"user\",\"content\":[]}]}", "messages.0", "non-empty content"},
        {M5 "[{\"role\":\"assistant\",\"content\":\"\"},"
            "{\"role\":\"user\",\"content\":\"x\"}]}",
         "messages.0", "non-empty content"},
        {M5 "[{\"role\":\"user\",\"content\":[\"x\"]}]}", "messages.0.content.0", "an object"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"text\":"
            "\"x\"}]}]}",
         "messages.0.content.0.type", "Field required"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"text\"}]}]}",
         "messages.0.content.0.text", "Field required"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"text\",\"text\":5}]}]}",
         "messages.0.content.0.text", "a string"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"text\",\"text\":\"\"}]}]}",
         "messages.0.content.0.text", "non-empty"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"text\",\"text\":\"a\"},{\"type\":\"image\",\"source\":{}}]}]}",
         "messages.0.content.1.type", "'image' are not supported"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"document\"}]}]}",
         "messages.0.content.0.type", "'document' are not supported"},
        {M5
         "[{\"role\":\"user\",\"content\":\"q\"},"
         "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
         "\"input\":{}}]}]}",
         "messages.1.content.0.type", "'tool_use' are not supported"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"tool_result\",\"tool_use_id\":\"t\"}]}]}",
         "messages.0.content.0.type", "'tool_result' are not supported"},
        {M5 "[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"banana\"}]}]}",
         "messages.0.content.0.type", "expected tags"},
        {"{" BASE ",\"system\":5}", "system", "a string or an array"},
        {"{" BASE ",\"system\":[{\"type\":\"image\"}]}", "system.0.type", "not supported"},
        {"{" BASE ",\"system\":[{\"type\":\"text\"}]}", "system.0.text", "Field required"},
        {"{" BASE ",\"stop_sequences\":\"END\"}", "stop_sequences", "an array"},
        {"{" BASE ",\"stop_sequences\":[\"a\",7]}", "stop_sequences.1", "a string"},
        {"{" BASE ",\"stop_sequences\":[\"\"]}", "stop_sequences.0", "non-empty"},
        {"{" BASE ",\"temperature\":1.5}", "temperature", "between 0 and 1"},
        {"{" BASE ",\"temperature\":-0.1}", "temperature", "between 0 and 1"},
        {"{" BASE ",\"temperature\":\"hot\"}", "temperature", "a number"},
        {"{" BASE ",\"top_p\":1.01}", "top_p", "between 0 and 1"},
        {"{" BASE ",\"top_k\":-1}", "top_k", "greater than or equal"},
        {"{" BASE ",\"top_k\":2.5}", "top_k", "an integer"},
        {"{" BASE ",\"stream\":\"yes\"}", "stream", "a boolean"},
        {"{" BASE ",\"metadata\":\"u\"}", "metadata", "an object"},
        {"{" BASE ",\"metadata\":{\"user_id\":5}}", "metadata.user_id", "a string"},
        {"{" BASE ",\"tools\":[{\"name\":\"f\",\"input_schema\":{}}]}", "tools", "not supported"},
        {"{" BASE ",\"tools\":{}}", "tools", "not supported"},
        {"{" BASE ",\"tool_choice\":{\"type\":\"any\"}}", "tool_choice.type", "needs tools"},
        {"{" BASE ",\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}", "tool_choice.type",
         "needs tools"},
        {"{" BASE ",\"tool_choice\":\"auto\"}", "tool_choice", "an object"},
        {"{" BASE ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}", "thinking.type",
         "not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (expect_err(cases[i].body, 400, cases[i].param, cases[i].needle, NULL))
            test__fail(__FILE__, __LINE__, "bad case %zu not rejected as expected", i);
}

TEST(anthropic_parse_limits)
{
    struct api_limits lim = {0};
    lim.max_tokens = 100;
    CHECK_EQ_INT(
        expect_err("{\"model\":\"m\",\"max_tokens\":101," MSGS "}", 400, "max_tokens", "100", &lim),
        0);
    /* The system prompt counts as a message against max_messages. */
    lim.max_messages = 2;
    const char *three =
        M5 "["
           "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":"
           "\"b\"},{\"role\":\"user\",\"content\":\"c\"}]}";
    CHECK_EQ_INT(expect_err(three, 400, "messages", "at most 2", &lim), 0);
    const char *two_sys = "{\"model\":\"m\",\"max_tokens\":5,\"system\":\"s\",\"messages\":["
                          "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\","
                          "\"content\":\"b\"}]}";
    CHECK_EQ_INT(expect_err(two_sys, 400, "messages", "at most 1", &lim), 0);
    struct api_request r;
    struct api_error e;
    REQUIRE(api_anthropic_parse(&r, two_sys + 0, strlen(two_sys), NULL, &e) == 0);
    api_request_free(&r);

    /* Too much text is 413 request_too_large, counted over system, messages and stops. */
    struct api_limits small = {0};
    small.max_text_bytes = 10;
    CHECK_EQ_INT(expect_err(M5 "[{\"role\":\"user\","
                               "\"content\":\"0123456789A\"}]}",
                            413, "messages.0.content", "too much text", &small),
                 0);
    CHECK_EQ_INT(
        expect_err("{\"model\":\"m\",\"max_tokens\":5,\"system\":\"01234\",\"messages\":"
                   "[{\"role\":\"user\",\"content\":\"0123\"}],\"stop_sequences\":[\"xy\"]}",
                   413, "stop_sequences.0", "too much text", &small),
        0);
    const char *fits = "{\"model\":\"m\",\"max_tokens\":5,\"system\":\"01234\",\"messages\":"
                       "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"12\"},"
                       "{\"type\":\"text\",\"text\":\"3\"}]}],\"stop_sequences\":[\"x\"]}";
    REQUIRE(api_anthropic_parse(&r, fits, strlen(fits), &small, &e) == 0);
    CHECK_STR(r.messages[1].content, "12\n3");
    api_request_free(&r);
}

TEST(anthropic_parse_null_args)
{
    struct api_error e;
    CHECK_EQ_INT(api_anthropic_parse(NULL, "{}", 2, NULL, &e), -1);
    CHECK_EQ_INT(e.status, 500);
    struct api_request r;
    CHECK_EQ_INT(api_anthropic_parse(&r, NULL, 5, NULL, &e), -1);
    CHECK_EQ_INT(e.status, 400);
    /* A NULL err is allowed. */
    CHECK_EQ_INT(api_anthropic_parse(&r, "{}", 2, NULL, NULL), -1);
    CHECK(r.priv == NULL);
}

/* ---- documents ---- */

/* Loads s as JSON (NULL when it is not). */
static json_t *load(const char *s)
{
    json_error_t je;
    json_t *v = s ? json_loads(s, 0, &je) : NULL;
    if (s && !v)
        fprintf(stderr, "    not JSON (%s): %s\n", je.text, s);
    return v;
}

static const char *jget_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long jget_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : -999;
}

TEST(anthropic_error_json_mapping)
{
    static const struct {
        int status;
        const char *type;
    } rows[] = {
        {400, "invalid_request_error"},
        {401, "authentication_error"},
        {403, "permission_error"},
        {404, "not_found_error"},
        {413, "request_too_large"},
        {429, "rate_limit_error"},
        {500, "api_error"},
        {503, "overloaded_error"},
        {529, "overloaded_error"},
        {422, "invalid_request_error"},
        {502, "api_error"},
        {402, "billing_error"},
        {504, "timeout_error"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct api_error e;
        api_error_set(&e, rows[i].status, "server_error", NULL, "p", "boom %d", rows[i].status);
        char *s = api_anthropic_error_json(&e);
        json_t *doc = load(s);
        REQUIRE(doc);
        CHECK_STR(jget_str(doc, "type"), "error");
        json_t *inner = json_object_get(doc, "error");
        CHECK_STR(jget_str(inner, "type"), rows[i].type);
        CHECK_STR(api_anthropic_error_type(rows[i].status), rows[i].type);
        char want[32];
        snprintf(want, sizeof(want), "boom %d", rows[i].status);
        CHECK_STR(jget_str(inner, "message"), want);
        CHECK_EQ_INT(json_object_size(inner), 2);
        CHECK_EQ_INT(json_object_size(doc), 2);
        json_decref(doc);
        free(s);
    }
    CHECK(api_anthropic_error_json(NULL) == NULL);
}

TEST(anthropic_error_json_from_parse)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, "{\"model\":\"m\"," MSGS "}", &e) == -1);
    char *s = api_anthropic_error_json(&e);
    json_t *doc = load(s);
    REQUIRE(doc);
    json_t *inner = json_object_get(doc, "error");
    CHECK_STR(jget_str(inner, "type"), "invalid_request_error");
    CHECK_STR(jget_str(inner, "message"), "max_tokens: Field required");
    json_decref(doc);
    free(s);
}

TEST(anthropic_error_message_sanitized)
{
    struct api_error e;
    api_error_set(&e, 400, "invalid_request_error", NULL, NULL, "bad \xff byte");
    char *s = api_anthropic_error_json(&e);
    json_t *doc = load(s);
    REQUIRE(doc);
    CHECK_STR(jget_str(json_object_get(doc, "error"), "message"), "bad \xef\xbf\xbd byte");
    json_decref(doc);
    free(s);
}

TEST(anthropic_response_json_fields)
{
    struct api_usage u = {.prompt_tokens = 20, .completion_tokens = 7, .cached_tokens = 12};
    struct api_anthropic_result r = {.id = "msg_abc",
                                     .model = "claude-x",
                                     .text = "Hello \"world\"\n",
                                     .text_len = 14,
                                     .finish_reason = "stop",
                                     .usage = &u};
    char *s = api_anthropic_response_json(&r);
    json_t *doc = load(s);
    REQUIRE(doc);
    CHECK_STR(jget_str(doc, "id"), "msg_abc");
    CHECK_STR(jget_str(doc, "type"), "message");
    CHECK_STR(jget_str(doc, "role"), "assistant");
    CHECK_STR(jget_str(doc, "model"), "claude-x");
    json_t *content = json_object_get(doc, "content");
    REQUIRE(json_array_size(content) == 1);
    json_t *b = json_array_get(content, 0);
    CHECK_STR(jget_str(b, "type"), "text");
    CHECK_STR(jget_str(b, "text"), "Hello \"world\"\n");
    CHECK_STR(jget_str(doc, "stop_reason"), "end_turn");
    CHECK(json_is_null(json_object_get(doc, "stop_sequence")));
    json_t *usage = json_object_get(doc, "usage");
    CHECK_EQ_INT(jget_int(usage, "input_tokens"), 8);
    CHECK_EQ_INT(jget_int(usage, "cache_read_input_tokens"), 12);
    CHECK_EQ_INT(jget_int(usage, "cache_creation_input_tokens"), 0);
    CHECK_EQ_INT(jget_int(usage, "output_tokens"), 7);
    json_decref(doc);
    free(s);
}

TEST(anthropic_response_stop_reasons)
{
    static const struct {
        const char *finish, *seq, *reason;
    } rows[] = {
        {"stop", NULL, "end_turn"},       {"stop", "END", "stop_sequence"},
        {"length", NULL, "max_tokens"},   {"length", "END", "max_tokens"},
        {"tool_calls", NULL, "tool_use"}, {"content_filter", NULL, "refusal"},
        {"weird", NULL, "end_turn"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct api_anthropic_result r = {.id = "msg_1",
                                         .model = "m",
                                         .text = "x",
                                         .text_len = 1,
                                         .finish_reason = rows[i].finish,
                                         .stop_sequence = rows[i].seq};
        CHECK_STR(api_anthropic_stop_reason(rows[i].finish, rows[i].seq), rows[i].reason);
        char *s = api_anthropic_response_json(&r);
        json_t *doc = load(s);
        REQUIRE(doc);
        CHECK_STR(jget_str(doc, "stop_reason"), rows[i].reason);
        json_t *seq = json_object_get(doc, "stop_sequence");
        if (!strcmp(rows[i].reason, "stop_sequence"))
            CHECK_STR(json_string_value(seq), rows[i].seq);
        else
            CHECK(json_is_null(seq));
        /* No usage given: zeros. */
        CHECK_EQ_INT(jget_int(json_object_get(doc, "usage"), "output_tokens"), 0);
        json_decref(doc);
        free(s);
    }
    CHECK(api_anthropic_stop_reason(NULL, NULL) == NULL);
    CHECK(api_anthropic_response_json(NULL) == NULL);
}

TEST(anthropic_response_invalid_utf8)
{
    /* A lone continuation byte, a truncated 3-byte sequence before ASCII, an overlong form, a
     * surrogate, and a sequence cut off at the end. */
    const char text[] = "a\x80"
                        "b\xe2\x82"
                        "c\xc0\xaf"
                        "d\xed\xa0\x80"
                        "e\xf0\x9f\x98";
    struct api_anthropic_result r = {.id = "msg_1",
                                     .model = "m\xff",
                                     .text = text,
                                     .text_len = sizeof(text) - 1,
                                     .finish_reason = "stop"};
    char *s = api_anthropic_response_json(&r);
    json_t *doc = load(s);
    REQUIRE(doc);
    const char *want = "a\xef\xbf\xbd"
                       "b\xef\xbf\xbd"
                       "c\xef\xbf\xbd\xef\xbf\xbd"
                       "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                       "e\xef\xbf\xbd";
    CHECK_STR(jget_str(json_array_get(json_object_get(doc, "content"), 0), "text"), want);
    CHECK_STR(jget_str(doc, "model"), "m\xef\xbf\xbd");
    json_decref(doc);
    free(s);

    /* The same in a streamed delta; valid multi-byte text passes through untouched. */
    r.text = "ok \xc3\xa9\xf0\x9f\x98\x80 \xfe";
    r.text_len = strlen(r.text);
    s = api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_DELTA, &r);
    REQUIRE(s);
    const char *data = strstr(s, "data: ");
    REQUIRE(data);
    doc = load(data + 6);
    REQUIRE(doc);
    CHECK_STR(jget_str(json_object_get(doc, "delta"), "text"),
              "ok \xc3\xa9\xf0\x9f\x98\x80 \xef\xbf\xbd");
    json_decref(doc);
    free(s);
}

/* Splits one SSE event into its name and parsed data; checks the framing. */
static json_t *event_data(const char *ev, char *name, size_t name_cap)
{
    if (!ev || strncmp(ev, "event: ", 7))
        return NULL;
    const char *nl = strchr(ev + 7, '\n');
    if (!nl || (size_t)(nl - (ev + 7)) >= name_cap)
        return NULL;
    memcpy(name, ev + 7, (size_t)(nl - (ev + 7)));
    name[nl - (ev + 7)] = 0;
    if (strncmp(nl + 1, "data: ", 6))
        return NULL;
    const char *data = nl + 7;
    size_t n = strlen(data);
    /* Exactly one event: the data line ends with the blank line and holds no other newline. */
    if (n < 2 || strcmp(data + n - 2, "\n\n") || memchr(data, '\n', n - 2))
        return NULL;
    json_error_t je;
    return json_loadb(data, n - 2, 0, &je);
}

TEST(anthropic_events_fields)
{
    struct api_usage u = {.prompt_tokens = 25, .completion_tokens = 0, .cached_tokens = 5};
    struct api_anthropic_result r = {.id = "msg_s1", .model = "claude-x", .usage = &u};
    char name[32];

    char *s = api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_START, &r);
    json_t *d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "message_start");
    CHECK_STR(jget_str(d, "type"), "message_start");
    json_t *m = json_object_get(d, "message");
    CHECK_STR(jget_str(m, "id"), "msg_s1");
    CHECK_STR(jget_str(m, "type"), "message");
    CHECK_STR(jget_str(m, "role"), "assistant");
    CHECK_STR(jget_str(m, "model"), "claude-x");
    CHECK(json_is_array(json_object_get(m, "content")));
    CHECK_EQ_INT(json_array_size(json_object_get(m, "content")), 0);
    CHECK(json_is_null(json_object_get(m, "stop_reason")));
    CHECK(json_is_null(json_object_get(m, "stop_sequence")));
    json_t *usage = json_object_get(m, "usage");
    CHECK_EQ_INT(jget_int(usage, "input_tokens"), 20);
    CHECK_EQ_INT(jget_int(usage, "cache_read_input_tokens"), 5);
    CHECK_EQ_INT(jget_int(usage, "output_tokens"), 0);
    json_decref(d);
    free(s);

    s = api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_START, NULL);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "content_block_start");
    CHECK_STR(jget_str(d, "type"), "content_block_start");
    CHECK_EQ_INT(jget_int(d, "index"), 0);
    json_t *cb = json_object_get(d, "content_block");
    CHECK_STR(jget_str(cb, "type"), "text");
    CHECK_STR(jget_str(cb, "text"), "");
    json_decref(d);
    free(s);

    s = api_anthropic_event_sse(API_ANTHROPIC_PING, NULL);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "ping");
    CHECK_STR(jget_str(d, "type"), "ping");
    CHECK_EQ_INT(json_object_size(d), 1);
    json_decref(d);
    free(s);

    r.text = "Hel\nlo";
    r.text_len = 6;
    s = api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_DELTA, &r);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "content_block_delta");
    CHECK_STR(jget_str(d, "type"), "content_block_delta");
    CHECK_EQ_INT(jget_int(d, "index"), 0);
    json_t *delta = json_object_get(d, "delta");
    CHECK_STR(jget_str(delta, "type"), "text_delta");
    CHECK_STR(jget_str(delta, "text"), "Hel\nlo");
    json_decref(d);
    free(s);

    s = api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_STOP, &r);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "content_block_stop");
    CHECK_STR(jget_str(d, "type"), "content_block_stop");
    CHECK_EQ_INT(jget_int(d, "index"), 0);
    CHECK_EQ_INT(json_object_size(d), 2);
    json_decref(d);
    free(s);

    u.completion_tokens = 9;
    r.finish_reason = "stop";
    r.stop_sequence = "END";
    s = api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_DELTA, &r);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "message_delta");
    CHECK_STR(jget_str(d, "type"), "message_delta");
    delta = json_object_get(d, "delta");
    CHECK_STR(jget_str(delta, "stop_reason"), "stop_sequence");
    CHECK_STR(jget_str(delta, "stop_sequence"), "END");
    CHECK_EQ_INT(jget_int(json_object_get(d, "usage"), "output_tokens"), 9);
    json_decref(d);
    free(s);

    r.finish_reason = "length";
    s = api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_DELTA, &r);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(jget_str(json_object_get(d, "delta"), "stop_reason"), "max_tokens");
    CHECK(json_is_null(json_object_get(json_object_get(d, "delta"), "stop_sequence")));
    json_decref(d);
    free(s);

    s = api_anthropic_event_sse(API_ANTHROPIC_MESSAGE_STOP, NULL);
    d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "message_stop");
    CHECK_STR(jget_str(d, "type"), "message_stop");
    CHECK_EQ_INT(json_object_size(d), 1);
    json_decref(d);
    free(s);

    CHECK(api_anthropic_event_sse((enum api_anthropic_event)99, &r) == NULL);
}

TEST(anthropic_error_event)
{
    struct api_error e;
    api_error_set(&e, 529, "overloaded_error", NULL, NULL, "Overloaded");
    char *s = api_anthropic_error_sse(&e);
    char name[32];
    json_t *d = event_data(s, name, sizeof(name));
    REQUIRE(d);
    CHECK_STR(name, "error");
    CHECK_STR(jget_str(d, "type"), "error");
    CHECK_STR(jget_str(json_object_get(d, "error"), "type"), "overloaded_error");
    CHECK_STR(jget_str(json_object_get(d, "error"), "message"), "Overloaded");
    json_decref(d);
    free(s);
    CHECK(api_anthropic_error_sse(NULL) == NULL);
}

/* A whole stream, concatenated, reads like Anthropic's documented order, and its deltas add up
 * to the message that the non-streamed response would carry. */
TEST(anthropic_stream_sequence)
{
    struct api_usage u = {.prompt_tokens = 10, .completion_tokens = 0};
    struct api_anthropic_result r = {.id = "msg_seq", .model = "m", .usage = &u};
    static const char *const pieces[] = {"Hello", ", ", "world", "!"};
    char all[4096] = "";
    size_t used = 0;
#define APPEND(ev)                                                                                 \
    do {                                                                                           \
        char *s_ = api_anthropic_event_sse(ev, &r);                                                \
        REQUIRE(s_);                                                                               \
        size_t n_ = strlen(s_);                                                                    \
        REQUIRE(used + n_ < sizeof(all));                                                          \
        memcpy(all + used, s_, n_ + 1);                                                            \
        used += n_;                                                                                \
        free(s_);                                                                                  \
    } while (0)
    APPEND(API_ANTHROPIC_MESSAGE_START);
    APPEND(API_ANTHROPIC_CONTENT_BLOCK_START);
    APPEND(API_ANTHROPIC_PING);
    for (size_t i = 0; i < 4; i++) {
        r.text = pieces[i];
        r.text_len = strlen(pieces[i]);
        APPEND(API_ANTHROPIC_CONTENT_BLOCK_DELTA);
    }
    APPEND(API_ANTHROPIC_CONTENT_BLOCK_STOP);
    u.completion_tokens = 4;
    r.finish_reason = "stop";
    APPEND(API_ANTHROPIC_MESSAGE_DELTA);
    APPEND(API_ANTHROPIC_MESSAGE_STOP);
#undef APPEND

    /* Split on the blank lines and walk the events in order. */
    static const char *const order[] = {
        "message_start",       "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop",  "message_delta",
        "message_stop",
    };
    char text[64] = "";
    size_t k = 0;
    char *p = all;
    while (*p) {
        char *end = strstr(p, "\n\n");
        REQUIRE(end);
        char save = end[2];
        end[2] = 0;
        char name[32];
        json_t *d = event_data(p, name, sizeof(name));
        REQUIRE(d);
        REQUIRE(k < sizeof(order) / sizeof(order[0]));
        CHECK_STR(name, order[k]);
        CHECK_STR(jget_str(d, "type"), order[k]);
        if (!strcmp(name, "content_block_delta"))
            strncat(text, jget_str(json_object_get(d, "delta"), "text"),
                    sizeof(text) - strlen(text) - 1);
        if (!strcmp(name, "message_delta")) {
            CHECK_STR(jget_str(json_object_get(d, "delta"), "stop_reason"), "end_turn");
            CHECK_EQ_INT(jget_int(json_object_get(d, "usage"), "output_tokens"), 4);
        }
        json_decref(d);
        end[2] = save;
        p = end + 2;
        k++;
    }
    CHECK_EQ_INT(k, sizeof(order) / sizeof(order[0]));
    CHECK_STR(text, "Hello, world!");
}
