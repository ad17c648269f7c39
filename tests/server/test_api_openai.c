/* OpenAI wire format: request validation (every rejected case names its param) and responses
 * re-parsed with jansson field by field. */
#include "test.h"

#include <jansson.h>
#include <stdint.h>

#include "server/api_openai.h"

/* Parses body as kind with default limits. */
static int parse(struct api_request *r, enum api_kind kind, const char *body, struct api_error *err)
{
    return api_request_parse(r, kind, body, strlen(body), NULL, err);
}

/* Checks that body is rejected with 400 invalid_request_error naming param (NULL: no param).
 * Returns the number of failed checks so a table loop can report which row failed. */
static int expect_400(enum api_kind kind, const char *body, const char *param,
                      const struct api_limits *lim)
{
    struct api_request r;
    struct api_error e;
    memset(&e, 0, sizeof(e));
    int rc = api_request_parse(&r, kind, body, strlen(body), lim, &e);
    int bad = 0;
    if (rc != -1 || e.status != 400 || !e.type || strcmp(e.type, "invalid_request_error"))
        bad = 1;
    else if (param ? (!e.param || strcmp(e.param, param)) : e.param != NULL)
        bad = 1;
    else if (!e.message[0])
        bad = 1;
    /* A failed parse leaves nothing to free. */
    if (rc == -1 && (r.priv || r.model || r.messages))
        bad = 1;
    if (bad)
        fprintf(stderr, "    row failed: %s -> rc %d status %d param %s msg %s\n", body, rc,
                e.status, e.param ? e.param : "(null)", e.message);
    if (rc == 0)
        api_request_free(&r);
    return bad;
}

struct bad_case {
    const char *body;
    const char *param;
};

static void run_bad_cases(enum api_kind kind, const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (expect_400(kind, cases[i].body, cases[i].param, NULL))
            test__fail(__FILE__, __LINE__, "bad case %zu not rejected as expected", i);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

TEST(api_chat_parse_all_fields)
{
    const char *body =
        "{\"model\":\"m1\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"developer\",\"content\":\"dev\"},"
        "{\"role\":\"user\",\"content\":\"hello\",\"name\":\"bob\"},"
        "{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"x\"}],"
        "\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"n\":1,"
        "\"presence_penalty\":1.5,\"frequency_penalty\":-0.5,\"seed\":1234,"
        "\"stop\":[\"END\",\"\",\"##\"],\"logit_bias\":{\"50256\":-100,\"7\":2.5},"
        "\"logprobs\":true,\"top_logprobs\":5,"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"person\","
        "\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
        "\"string\"}}}}},"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u-1\","
        "\"some_future_field\":{\"x\":[1,2]},\"tools\":[]}";
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_CHAT, body, &e) == 0);
    CHECK_EQ_INT(r.kind, API_CHAT);
    CHECK_STR(r.model, "m1");
    REQUIRE(r.n_messages == 5);
    CHECK_STR(r.messages[0].role, "system");
    CHECK_STR(r.messages[0].content, "be brief");
    CHECK_STR(r.messages[1].role, "developer");
    CHECK_STR(r.messages[2].role, "user");
    CHECK_STR(r.messages[2].content, "hello");
    CHECK_STR(r.messages[2].name, "bob");
    CHECK(r.messages[0].name == NULL);
    CHECK_STR(r.messages[3].role, "assistant");
    CHECK_STR(r.messages[3].content, "");
    CHECK_STR(r.messages[4].role, "tool");
    CHECK_STR(r.messages[4].content, "42");
    CHECK_EQ_INT(r.max_tokens, 100);
    CHECK_NEAR(r.temperature, 0.5, 1e-6);
    CHECK_NEAR(r.top_p, 0.9, 1e-6);
    CHECK_NEAR(r.presence_penalty, 1.5, 1e-6);
    CHECK_NEAR(r.frequency_penalty, -0.5, 1e-6);
    CHECK(r.has_seed);
    CHECK(r.seed == 1234);
    REQUIRE(r.n_stop == 2);
    CHECK_STR(r.stop[0], "END");
    CHECK_STR(r.stop[1], "##");
    REQUIRE(r.n_logit_bias == 2);
    /* jansson keeps insertion order */
    CHECK_EQ_INT(r.logit_bias[0].token, 50256);
    CHECK_NEAR(r.logit_bias[0].bias, -100, 0);
    CHECK_EQ_INT(r.logit_bias[1].token, 7);
    CHECK_NEAR(r.logit_bias[1].bias, 2.5, 0);
    CHECK(r.logprobs);
    CHECK_EQ_INT(r.top_logprobs, 5);
    CHECK_EQ_INT(r.format, API_FORMAT_JSON_SCHEMA);
    CHECK_STR(r.schema_name, "person");
    CHECK_STR(r.schema_json, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
    CHECK(r.stream);
    CHECK(r.include_usage);
    CHECK_STR(r.user, "u-1");
    api_request_free(&r);
    CHECK(r.priv == NULL && r.model == NULL);
    api_request_free(&r); /* twice is fine: the struct is zeroed */
}

TEST(api_chat_defaults)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG "}", &e) == 0);
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK_NEAR(r.temperature, 1, 0);
    CHECK_NEAR(r.top_p, 1, 0);
    CHECK_NEAR(r.presence_penalty, 0, 0);
    CHECK(!r.has_seed);
    CHECK_EQ_INT(r.n_stop, 0);
    CHECK(!r.logprobs);
    CHECK(!r.stream);
    CHECK(!r.include_usage);
    CHECK_EQ_INT(r.format, API_FORMAT_TEXT);
    CHECK(r.schema_json == NULL);
    CHECK(r.user == NULL);
    api_request_free(&r);
}

TEST(api_chat_nulls_mean_absent)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_CHAT,
                  "{\"model\":\"m\"," MSG ",\"temperature\":null,\"max_tokens\":null,\"n\":null,"
                  "\"stop\":null,\"seed\":null,\"logit_bias\":null,\"top_logprobs\":null,"
                  "\"response_format\":null,\"stream_options\":null,\"tools\":null,"
                  "\"tool_choice\":\"none\",\"user\":null}",
                  &e) == 0);
    CHECK_EQ_INT(r.max_tokens, -1);
    CHECK_NEAR(r.temperature, 1, 0);
    CHECK(!r.has_seed);
    CHECK_EQ_INT(r.n_stop, 0);
    api_request_free(&r);
}

TEST(api_chat_seed_negative_and_max_completion_tokens)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_CHAT,
                  "{\"model\":\"m\"," MSG ",\"seed\":-1,\"max_completion_tokens\":7,"
                  "\"stop\":\"\\n\",\"response_format\":{\"type\":\"json_object\"}}",
                  &e) == 0);
    CHECK(r.seed == UINT64_MAX);
    CHECK_EQ_INT(r.max_tokens, 7);
    REQUIRE(r.n_stop == 1);
    CHECK_STR(r.stop[0], "\n");
    CHECK_EQ_INT(r.format, API_FORMAT_JSON_OBJECT);
    api_request_free(&r);
}

TEST(api_chat_content_parts_join)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(
        parse(&r, API_CHAT,
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"text\",\"text\":\"first\"},{\"type\":\"text\",\"text\":\"\"},"
              "{\"type\":\"text\",\"text\":\"th\\u00e9rd\"}]},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"no\"}]},"
              "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"one\"}]}]}",
              &e) == 0);
    REQUIRE(r.n_messages == 3);
    CHECK_STR(r.messages[0].content, "first\n\nth\xc3\xa9rd");
    CHECK_STR(r.messages[1].content, "no");
    CHECK_STR(r.messages[2].content, "one");
    api_request_free(&r);
}

TEST(api_chat_invalid_requests)
{
    static const struct bad_case cases[] = {
        {"{\"model\":\"m\"", NULL},
        {"[1,2]", NULL},
        {"\"str\"", NULL},
        {"", NULL},
        {"{" MSG "}", "model"},
        {"{\"model\":5," MSG "}", "model"},
        {"{\"model\":\"\"," MSG "}", "model"},
        {"{\"model\":\"m\"}", "messages"},
        {"{\"model\":\"m\",\"messages\":{}}", "messages"},
        {"{\"model\":\"m\",\"messages\":[]}", "messages"},
        {"{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages[0]"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
         "{\"role\":\"function\",\"content\":\"x\"}]}",
         "messages[1].role"},
        {"{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":7,\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
         "messages[0].content"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
         "messages[0].content"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
         "messages[0].content"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
         "messages[0].content[1].type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"input_audio\",\"input_audio\":{}}]}]}",
         "messages[0].content[0].type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"bogus\"}]}]}",
         "messages[0].content[0].type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}]}",
         "messages[0].content[0].type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
         "messages[0].content[0].text"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":3}]}]}",
         "messages[0].content[0].text"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"a\"]}]}",
         "messages[0].content[0]"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"refusal\","
         "\"refusal\":\"x\"}]}]}",
         "messages[0].content[0].type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"name\":1}]}",
         "messages[0].name"},
        {"{\"model\":\"m\"," MSG ",\"max_tokens\":0}", "max_tokens"},
        {"{\"model\":\"m\"," MSG ",\"max_tokens\":-5}", "max_tokens"},
        {"{\"model\":\"m\"," MSG ",\"max_tokens\":32769}", "max_tokens"},
        {"{\"model\":\"m\"," MSG ",\"max_tokens\":1.5}", "max_tokens"},
        {"{\"model\":\"m\"," MSG ",\"max_tokens\":\"10\"}", "max_tokens"},
        {"{\"model\":\"m\"," MSG ",\"max_completion_tokens\":100000}", "max_completion_tokens"},
        {"{\"model\":\"m\"," MSG ",\"temperature\":2.01}", "temperature"},
        {"{\"model\":\"m\"," MSG ",\"temperature\":-0.1}", "temperature"},
        {"{\"model\":\"m\"," MSG ",\"temperature\":\"hot\"}", "temperature"},
        {"{\"model\":\"m\"," MSG ",\"top_p\":1.5}", "top_p"},
        {"{\"model\":\"m\"," MSG ",\"top_p\":-1}", "top_p"},
        {"{\"model\":\"m\"," MSG ",\"n\":2}", "n"},
        {"{\"model\":\"m\"," MSG ",\"n\":0}", "n"},
        {"{\"model\":\"m\"," MSG ",\"n\":1.0}", "n"},
        {"{\"model\":\"m\"," MSG ",\"presence_penalty\":2.5}", "presence_penalty"},
        {"{\"model\":\"m\"," MSG ",\"frequency_penalty\":-3}", "frequency_penalty"},
        {"{\"model\":\"m\"," MSG ",\"seed\":1.5}", "seed"},
        {"{\"model\":\"m\"," MSG ",\"seed\":\"1\"}", "seed"},
        {"{\"model\":\"m\"," MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop"},
        {"{\"model\":\"m\"," MSG ",\"stop\":[\"a\",1]}", "stop[1]"},
        {"{\"model\":\"m\"," MSG ",\"stop\":5}", "stop"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":[1]}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"abc\":1}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"-1\":1}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"\":1}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"1.5\":1}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"99999999999\":1}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"5\":101}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"5\":-100.5}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logit_bias\":{\"5\":\"1\"}}", "logit_bias"},
        {"{\"model\":\"m\"," MSG ",\"logprobs\":1}", "logprobs"},
        {"{\"model\":\"m\"," MSG ",\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs"},
        {"{\"model\":\"m\"," MSG ",\"logprobs\":true,\"top_logprobs\":-1}", "top_logprobs"},
        {"{\"model\":\"m\"," MSG ",\"top_logprobs\":2}", "top_logprobs"},
        {"{\"model\":\"m\"," MSG ",\"logprobs\":false,\"top_logprobs\":0}", "top_logprobs"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":\"json\"}", "response_format"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{}}", "response_format.type"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"yaml\"}}",
         "response_format.type"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"json_schema\"}}",
         "response_format.json_schema"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"schema\":{}}}}",
         "response_format.json_schema.name"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"name\":\"x\"}}}",
         "response_format.json_schema.schema"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"name\":\"x\",\"schema\":[1]}}}",
         "response_format.json_schema.schema"},
        {"{\"model\":\"m\"," MSG ",\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"name\":\"x\",\"strict\":\"yes\",\"schema\":{}}}}",
         "response_format.json_schema.strict"},
        {"{\"model\":\"m\"," MSG ",\"stream\":\"yes\"}", "stream"},
        {"{\"model\":\"m\"," MSG ",\"stream_options\":{\"include_usage\":true}}", "stream_options"},
        {"{\"model\":\"m\"," MSG ",\"stream\":false,\"stream_options\":{}}", "stream_options"},
        {"{\"model\":\"m\"," MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
         "stream_options.include_usage"},
        {"{\"model\":\"m\"," MSG ",\"user\":5}", "user"},
        {"{\"model\":\"m\"," MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
         "\"f\"}}]}",
         "tools"},
        {"{\"model\":\"m\"," MSG ",\"functions\":[{\"name\":\"f\"}]}", "functions"},
        {"{\"model\":\"m\"," MSG ",\"tool_choice\":\"required\"}", "tools"},
    };
    run_bad_cases(API_CHAT, cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(api_error_messages_are_specific)
{
    struct api_request r;
    struct api_error e;
    const char *body = "{\n  \"model\": \"m\",\n  \"messages\": [oops]\n}";
    REQUIRE(api_request_parse(&r, API_CHAT, body, strlen(body), NULL, &e) == -1);
    CHECK(strstr(e.message, "line 3") != NULL);
    CHECK(strstr(e.message, "column") != NULL);
    CHECK(e.param == NULL);

    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG ",\"n\":3}", &e) == -1);
    CHECK(strstr(e.message, "n > 1 is not supported") != NULL);

    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG ",\"tools\":[{}]}", &e) == -1);
    CHECK_STR(e.message, "tools are not supported by this model");

    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG ",\"max_tokens\":50000}", &e) == -1);
    CHECK(strstr(e.message, "32768") != NULL);
    CHECK(strstr(e.message, "50000") != NULL);

    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG ",\"temperature\":\"x\"}", &e) == -1);
    CHECK_STR(e.code, "invalid_type");
    CHECK(strstr(e.message, "a string") != NULL);

    REQUIRE(parse(&r, API_CHAT,
                  "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
                  &e) == -1);
    CHECK(strstr(e.message, "'wizard'") != NULL);

    REQUIRE(parse(&r, API_CHAT, "7", &e) == -1);
    CHECK(strstr(e.message, "JSON object") != NULL);

    /* NULL body with a length, and a NULL err pointer, are answered, not crashed on. */
    CHECK(api_request_parse(&r, API_CHAT, NULL, 5, NULL, &e) == -1);
    CHECK(api_request_parse(&r, API_CHAT, "{}", 2, NULL, NULL) == -1);
}

TEST(api_chat_limits)
{
    struct api_limits lim;
    api_limits_default(&lim);
    CHECK_EQ_INT(lim.max_messages, 1024);
    CHECK_EQ_INT(lim.max_tokens, 32768);
    CHECK_EQ_INT(lim.max_text_bytes, 1 << 20);
    CHECK_EQ_INT(lim.max_logit_bias, 300);
    CHECK_EQ_INT(lim.max_inputs, 256);

    lim.max_messages = 2;
    lim.max_text_bytes = 10;
    lim.max_logit_bias = 2;
    lim.max_tokens = 50;
    const char *two = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"12345\"},"
                      "{\"role\":\"user\",\"content\":\"12345\"}]}";
    struct api_request r;
    struct api_error e;
    REQUIRE(api_request_parse(&r, API_CHAT, two, strlen(two), &lim, &e) == 0);
    api_request_free(&r);
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"},"
                      "{\"role\":\"user\",\"content\":\"2\"},{\"role\":\"user\",\"content\":"
                      "\"3\"}]}",
                      "messages", &lim));
    /* 10 bytes: 5 + 5 fit, one more byte anywhere does not (joined parts count the "\n") */
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"12345\"},"
                      "{\"role\":\"user\",\"content\":\"123456\"}]}",
                      "messages[1].content", &lim));
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"12345\"},"
                      "{\"role\":\"user\",\"content\":\"12345\"}],\"stop\":[\"x\"]}",
                      "stop[0]", &lim));
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"text\",\"text\":\"12345\"},{\"type\":\"text\",\"text\":\"12345\"}]}]}",
                      "messages[0].content[1].text", &lim));
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"}],"
                      "\"logit_bias\":{\"1\":1,\"2\":2,\"3\":3}}",
                      "logit_bias", &lim));
    CHECK(!expect_400(API_CHAT,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"}],"
                      "\"max_tokens\":51}",
                      "max_tokens", &lim));
    const char *ok = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"}],"
                     "\"max_tokens\":50,\"logit_bias\":{\"1\":1,\"2\":2}}";
    REQUIRE(api_request_parse(&r, API_CHAT, ok, strlen(ok), &lim, &e) == 0);
    CHECK_EQ_INT(r.max_tokens, 50);
    CHECK_EQ_INT(r.n_logit_bias, 2);
    api_request_free(&r);
}

TEST(api_completion_parse)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_COMPLETION,
                  "{\"model\":\"m\",\"prompt\":\"Once upon\",\"echo\":true,\"suffix\":\"\","
                  "\"logprobs\":3,\"max_tokens\":16,\"stop\":[\"\\n\"],\"best_of\":1,"
                  "\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
                  &e) == 0);
    CHECK_EQ_INT(r.kind, API_COMPLETION);
    CHECK_STR(r.prompt, "Once upon");
    CHECK(r.prompt_tokens == NULL);
    CHECK(r.echo);
    CHECK(r.logprobs);
    CHECK_EQ_INT(r.top_logprobs, 3);
    CHECK_EQ_INT(r.max_tokens, 16);
    CHECK(r.stream);
    CHECK(!r.include_usage);
    api_request_free(&r);

    REQUIRE(parse(&r, API_COMPLETION, "{\"model\":\"m\",\"prompt\":[\"only one\"],\"logprobs\":0}",
                  &e) == 0);
    CHECK_STR(r.prompt, "only one");
    CHECK(r.logprobs);
    CHECK_EQ_INT(r.top_logprobs, 0);
    CHECK(!r.echo);
    api_request_free(&r);

    REQUIRE(parse(&r, API_COMPLETION, "{\"model\":\"m\",\"prompt\":[1,0,2147483647]}", &e) == 0);
    CHECK(r.prompt == NULL);
    REQUIRE(r.n_prompt_tokens == 3);
    CHECK_EQ_INT(r.prompt_tokens[0], 1);
    CHECK_EQ_INT(r.prompt_tokens[1], 0);
    CHECK_EQ_INT(r.prompt_tokens[2], 2147483647);
    CHECK(!r.logprobs);
    api_request_free(&r);

    REQUIRE(parse(&r, API_COMPLETION, "{\"model\":\"m\",\"prompt\":[[5,6]]}", &e) == 0);
    REQUIRE(r.n_prompt_tokens == 2);
    CHECK_EQ_INT(r.prompt_tokens[1], 6);
    api_request_free(&r);
}

TEST(api_completion_invalid_requests)
{
    static const struct bad_case cases[] = {
        {"{\"model\":\"m\"}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":null}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":5}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[[1],[2]]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[[]]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[1,-2]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[1,\"a\"]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[1,2.5]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[2147483648]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[{}]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"suffix\":\"end\"}", "suffix"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"suffix\":1}", "suffix"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"echo\":1}", "echo"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":6}", "logprobs"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":-1}", "logprobs"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":true}", "logprobs"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"n\":4}", "n"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"best_of\":2}", "best_of"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"max_tokens\":0}", "max_tokens"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}",
         "stream_options"},
    };
    run_bad_cases(API_COMPLETION, cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(api_embedding_parse)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_EMBEDDING, "{\"model\":\"e\",\"input\":\"hello\",\"user\":\"u\"}", &e) ==
            0);
    CHECK_EQ_INT(r.kind, API_EMBEDDING);
    REQUIRE(r.n_inputs == 1);
    CHECK_STR(r.inputs[0], "hello");
    CHECK(!r.base64);
    CHECK_EQ_INT(r.dimensions, 0);
    CHECK_STR(r.user, "u");
    api_request_free(&r);

    REQUIRE(parse(&r, API_EMBEDDING,
                  "{\"model\":\"e\",\"input\":[\"a\",\"b\",\"c\"],\"encoding_format\":\"base64\","
                  "\"dimensions\":null,\"temperature\":99}",
                  &e) == 0);
    REQUIRE(r.n_inputs == 3);
    CHECK_STR(r.inputs[2], "c");
    CHECK(r.base64);
    api_request_free(&r);

    REQUIRE(parse(&r, API_EMBEDDING,
                  "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"float\"}", &e) == 0);
    CHECK(!r.base64);
    api_request_free(&r);
}

TEST(api_embedding_invalid_requests)
{
    static const struct bad_case cases[] = {
        {"{\"input\":\"x\"}", "model"},
        {"{\"model\":\"e\"}", "input"},
        {"{\"model\":\"e\",\"input\":\"\"}", "input"},
        {"{\"model\":\"e\",\"input\":[]}", "input"},
        {"{\"model\":\"e\",\"input\":[\"a\",\"\"]}", "input[1]"},
        {"{\"model\":\"e\",\"input\":[\"a\",5.5]}", "input[1]"},
        {"{\"model\":\"e\",\"input\":[1,2,3]}", "input"},
        {"{\"model\":\"e\",\"input\":[[1,2],[3]]}", "input"},
        {"{\"model\":\"e\",\"input\":{}}", "input"},
        {"{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"hex\"}", "encoding_format"},
        {"{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":1}", "encoding_format"},
        {"{\"model\":\"e\",\"input\":\"x\",\"dimensions\":256}", "dimensions"},
        {"{\"model\":\"e\",\"input\":\"x\",\"user\":[]}", "user"},
    };
    run_bad_cases(API_EMBEDDING, cases, sizeof(cases) / sizeof(cases[0]));

    struct api_limits lim = {.max_inputs = 2, .max_text_bytes = 4};
    CHECK(!expect_400(API_EMBEDDING, "{\"model\":\"e\",\"input\":[\"a\",\"b\",\"c\"]}", "input",
                      &lim));
    CHECK(!expect_400(API_EMBEDDING, "{\"model\":\"e\",\"input\":[\"ab\",\"cde\"]}", "input[1]",
                      &lim));
    struct api_request r;
    struct api_error e;
    const char *ok = "{\"model\":\"e\",\"input\":[\"ab\",\"cd\"]}";
    REQUIRE(api_request_parse(&r, API_EMBEDDING, ok, strlen(ok), &lim, &e) == 0);
    CHECK_EQ_INT(r.n_inputs, 2);
    api_request_free(&r);
}

TEST(api_parse_embedded_nul_and_deep_nesting_rejected)
{
    /* \u0000 would silently truncate C strings: jansson refuses it, and so do we. */
    CHECK(!expect_400(
        API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}",
        NULL, NULL));
    size_t depth = 5000;
    char *deep = malloc(depth * 2 + 64);
    REQUIRE(deep);
    size_t k = (size_t)snprintf(deep, 64, "{\"model\":\"m\",\"x\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    CHECK(!expect_400(API_CHAT, deep, NULL, NULL));
    free(deep);
}

/* ---- formatting ---- */

static json_t *load(const char *s)
{
    json_error_t je;
    json_t *j = s ? json_loads(s, 0, &je) : NULL;
    if (!j)
        fprintf(stderr, "    invalid JSON: %s\n    %s\n", s ? je.text : "(null)", s ? s : "");
    return j;
}

/* The JSON document inside one "data: {...}\n\n" event. */
static json_t *load_sse(const char *ev)
{
    if (!ev || strncmp(ev, "data: ", 6))
        return NULL;
    size_t n = strlen(ev);
    if (n < 8 || strcmp(ev + n - 2, "\n\n") || memchr(ev + 6, '\n', n - 8))
        return NULL;
    char *body = strndup(ev + 6, n - 8);
    json_t *j = load(body);
    free(body);
    return j;
}

static const char *sget(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long iget(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void check_usage(json_t *u, int p, int c, int cached)
{
    REQUIRE(json_is_object(u));
    CHECK_EQ_INT(iget(u, "prompt_tokens"), p);
    CHECK_EQ_INT(iget(u, "completion_tokens"), c);
    CHECK_EQ_INT(iget(u, "total_tokens"), p + c);
    CHECK_EQ_INT(iget(json_object_get(u, "prompt_tokens_details"), "cached_tokens"), cached);
    CHECK_EQ_INT(iget(json_object_get(u, "completion_tokens_details"), "reasoning_tokens"), 0);
}

static void check_bytes(json_t *arr, const char *raw, size_t n)
{
    REQUIRE(json_is_array(arr));
    CHECK_EQ_INT(json_array_size(arr), n);
    for (size_t i = 0; i < n && i < json_array_size(arr); i++)
        CHECK_EQ_INT(json_integer_value(json_array_get(arr, i)), (unsigned char)raw[i]);
}

TEST(api_chat_response_document)
{
    struct api_usage u = {.prompt_tokens = 12, .completion_tokens = 3, .cached_tokens = 8};
    struct api_token_logprob lp[2] = {
        {.token = "Hi",
         .token_len = 2,
         .logprob = -0.25f,
         .n_top = 2,
         .top = {{"Hi", 2, -0.25f}, {"Hello", 5, -1.5f}}},
        {.token = "\xe2\x80",
         .token_len = 2,
         .logprob = -INFINITY,
         .n_top = 1,
         .top = {{"\xe2\x80", 2, -3.0f}}},
    };
    struct api_result r = {.id = "chatcmpl-abc",
                           .created = 1700000000,
                           .model = "llama",
                           .text = "Hi \"there\"\n\xe2\x80",
                           .text_len = 13,
                           .finish_reason = "length",
                           .logprobs = lp,
                           .n_logprobs = 2,
                           .want_logprobs = true,
                           .usage = &u};
    char *s = api_chat_response_json(&r);
    json_t *j = load(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "id"), "chatcmpl-abc");
    CHECK_STR(sget(j, "object"), "chat.completion");
    CHECK_EQ_INT(iget(j, "created"), 1700000000);
    CHECK_STR(sget(j, "model"), "llama");
    CHECK_STR(sget(j, "system_fingerprint"), "tandem");
    json_t *choices = json_object_get(j, "choices");
    REQUIRE(json_array_size(choices) == 1);
    json_t *c0 = json_array_get(choices, 0);
    CHECK_EQ_INT(iget(c0, "index"), 0);
    CHECK_STR(sget(c0, "finish_reason"), "length");
    json_t *msg = json_object_get(c0, "message");
    CHECK_STR(sget(msg, "role"), "assistant");
    /* the truncated sequence at the end became U+FFFD */
    CHECK_STR(sget(msg, "content"), "Hi \"there\"\n\xef\xbf\xbd");
    CHECK(json_is_null(json_object_get(msg, "refusal")));
    json_t *lps = json_object_get(c0, "logprobs");
    REQUIRE(json_is_object(lps));
    CHECK(json_is_null(json_object_get(lps, "refusal")));
    json_t *content = json_object_get(lps, "content");
    REQUIRE(json_array_size(content) == 2);
    json_t *t0 = json_array_get(content, 0), *t1 = json_array_get(content, 1);
    CHECK_STR(sget(t0, "token"), "Hi");
    CHECK_NEAR(json_real_value(json_object_get(t0, "logprob")), -0.25, 0);
    check_bytes(json_object_get(t0, "bytes"), "Hi", 2);
    json_t *top = json_object_get(t0, "top_logprobs");
    REQUIRE(json_array_size(top) == 2);
    CHECK_STR(sget(json_array_get(top, 1), "token"), "Hello");
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(top, 1), "logprob")), -1.5, 0);
    check_bytes(json_object_get(json_array_get(top, 1), "bytes"), "Hello", 5);
    CHECK(json_object_get(json_array_get(top, 1), "top_logprobs") == NULL);
    /* partial UTF-8 token: text is sanitized, bytes keep the raw bytes, -inf is -9999 */
    CHECK_STR(sget(t1, "token"), "\xef\xbf\xbd");
    check_bytes(json_object_get(t1, "bytes"), "\xe2\x80", 2);
    CHECK_NEAR(json_number_value(json_object_get(t1, "logprob")), -9999, 0);
    check_bytes(json_object_get(json_array_get(json_object_get(t1, "top_logprobs"), 0), "bytes"),
                "\xe2\x80", 2);
    check_usage(json_object_get(j, "usage"), 12, 3, 8);
    json_decref(j);
    free(s);

    /* no logprobs asked: null; no usage: no field */
    r.want_logprobs = false;
    r.usage = NULL;
    r.finish_reason = "stop";
    s = api_chat_response_json(&r);
    j = load(s);
    REQUIRE(j);
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(json_is_null(json_object_get(c0, "logprobs")));
    CHECK_STR(sget(c0, "finish_reason"), "stop");
    CHECK(json_object_get(j, "usage") == NULL);
    json_decref(j);
    free(s);
}

TEST(api_logprob_floats_round_trip_float32)
{
    struct api_token_logprob lp = {.token = "a", .token_len = 1, .logprob = -0.1f};
    struct api_result r = {.id = "x",
                           .model = "m",
                           .text = "a",
                           .text_len = 1,
                           .finish_reason = "stop",
                           .logprobs = &lp,
                           .n_logprobs = 1,
                           .want_logprobs = true};
    char *s = api_chat_response_json(&r);
    json_t *j = load(s);
    REQUIRE(j);
    json_t *t = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs"),
            "content"),
        0);
    CHECK((float)json_real_value(json_object_get(t, "logprob")) == -0.1f);
    CHECK_EQ_INT(json_array_size(json_object_get(t, "top_logprobs")), 0);
    json_decref(j);
    free(s);
}

TEST(api_invalid_utf8_sanitized)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"ok", "ok"},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"}, /* valid 4-byte */
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},                                                    /* never-valid byte */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* 3-byte overlong */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* >10FFFF */
        {"\xe2\x82x", "\xef\xbf\xbdx"},           /* truncated: one U+FFFD */
        {"\xf0\x9f\x98", "\xef\xbf\xbd"},         /* truncated at the end */
        {"\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd"}, /* lone continuations */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct api_result r = {.id = "id\xff",
                               .model = "m",
                               .text = cases[i].in,
                               .text_len = strlen(cases[i].in),
                               .finish_reason = "stop"};
        char *s = api_chat_response_json(&r);
        json_t *j = load(s);
        if (!j) {
            test__fail(__FILE__, __LINE__, "case %zu: no valid JSON", i);
            free(s);
            continue;
        }
        const char *got =
            sget(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                 "content");
        if (!got || strcmp(got, cases[i].out))
            test__fail(__FILE__, __LINE__, "case %zu: wrong sanitized text", i);
        CHECK_STR(sget(j, "id"), "id\xef\xbf\xbd");
        json_decref(j);
        free(s);

        /* the same through the streaming and legacy paths */
        s = api_chat_chunk_sse(&r, false, false);
        j = load_sse(s);
        CHECK(j != NULL);
        json_decref(j);
        free(s);
        s = api_completion_response_json(&r);
        j = load(s);
        CHECK(j != NULL);
        json_decref(j);
        free(s);
    }
    /* an embedded NUL byte from the model is escaped, not a truncation */
    struct api_result r = {.id = "i", .model = "m", .text = "a\0b", .text_len = 3};
    char *s = api_completion_response_json(&r);
    REQUIRE(s);
    CHECK(strstr(s, "a\\u0000b") != NULL);
    free(s);
}

TEST(api_completion_response_document)
{
    struct api_usage u = {.prompt_tokens = 4, .completion_tokens = 3};
    struct api_token_logprob lp[3] = {
        {.token = " h\xc3\xa9",
         .token_len = 4,
         .logprob = -0.5f,
         .n_top = 2,
         .top = {{" h\xc3\xa9", 4, -0.5f}, {" ha", 3, -2.0f}}},
        {.token = "\xe2\x82", .token_len = 2, .logprob = -1.0f, .n_top = 0},
        {.token = "\xac!", .token_len = 2, .logprob = -0.125f, .n_top = 0},
    };
    struct api_result r = {.id = "cmpl-1",
                           .created = 5,
                           .model = "m",
                           .text = " h\xc3\xa9\xe2\x82\xac!",
                           .text_len = 8,
                           .finish_reason = "stop",
                           .logprobs = lp,
                           .n_logprobs = 3,
                           .want_logprobs = true,
                           .usage = &u,
                           .text_offset = 10};
    char *s = api_completion_response_json(&r);
    json_t *j = load(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "object"), "text_completion");
    CHECK_STR(sget(j, "id"), "cmpl-1");
    CHECK_EQ_INT(iget(j, "created"), 5);
    CHECK_STR(sget(j, "model"), "m");
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    REQUIRE(c0);
    CHECK_STR(sget(c0, "text"), " h\xc3\xa9\xe2\x82\xac!");
    CHECK_EQ_INT(iget(c0, "index"), 0);
    CHECK_STR(sget(c0, "finish_reason"), "stop");
    json_t *lps = json_object_get(c0, "logprobs");
    REQUIRE(json_is_object(lps));
    json_t *toks = json_object_get(lps, "tokens"), *tlp = json_object_get(lps, "token_logprobs"),
           *tops = json_object_get(lps, "top_logprobs"),
           *offs = json_object_get(lps, "text_offset");
    REQUIRE(json_array_size(toks) == 3 && json_array_size(tlp) == 3 && json_array_size(tops) == 3 &&
            json_array_size(offs) == 3);
    CHECK_STR(json_string_value(json_array_get(toks, 0)), " h\xc3\xa9");
    CHECK_STR(json_string_value(json_array_get(toks, 1)), "bytes:\\xe2\\x82");
    CHECK_STR(json_string_value(json_array_get(toks, 2)), "bytes:\\xac\\x21");
    CHECK_NEAR(json_real_value(json_array_get(tlp, 2)), -0.125, 0);
    json_t *top0 = json_array_get(tops, 0);
    CHECK_EQ_INT(json_object_size(top0), 2);
    CHECK_NEAR(json_real_value(json_object_get(top0, " ha")), -2.0, 0);
    CHECK_EQ_INT(json_object_size(json_array_get(tops, 1)), 0);
    /* offsets in characters: " hé" is 3, the euro sign starts at 13 and is one character */
    CHECK_EQ_INT(json_integer_value(json_array_get(offs, 0)), 10);
    CHECK_EQ_INT(json_integer_value(json_array_get(offs, 1)), 13);
    CHECK_EQ_INT(json_integer_value(json_array_get(offs, 2)), 14);
    check_usage(json_object_get(j, "usage"), 4, 3, 0);
    json_decref(j);
    free(s);
}

TEST(api_chat_chunks_stream_shape)
{
    struct api_usage u = {.prompt_tokens = 5, .completion_tokens = 2, .cached_tokens = 1};
    struct api_result r = {.id = "chatcmpl-s",
                           .created = 77,
                           .model = "m",
                           .text = "",
                           .text_len = 0,
                           .usage_null = true};

    /* first: role, empty content, usage null */
    char *s = api_chat_chunk_sse(&r, true, false);
    json_t *j = load_sse(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "object"), "chat.completion.chunk");
    CHECK_STR(sget(j, "id"), "chatcmpl-s");
    CHECK_EQ_INT(iget(j, "created"), 77);
    CHECK_STR(sget(j, "system_fingerprint"), "tandem");
    json_t *u0 = json_object_get(j, "usage");
    CHECK(u0 && json_is_null(u0));
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    REQUIRE(c0);
    CHECK_EQ_INT(iget(c0, "index"), 0);
    json_t *delta = json_object_get(c0, "delta");
    CHECK_STR(sget(delta, "role"), "assistant");
    CHECK_STR(sget(delta, "content"), "");
    CHECK(json_is_null(json_object_get(c0, "finish_reason")));
    CHECK(json_is_null(json_object_get(c0, "logprobs")));
    json_decref(j);
    free(s);

    /* middle: content only, with logprobs for its token */
    struct api_token_logprob lp = {.token = "ab", .token_len = 2, .logprob = -0.5f};
    r.text = "ab";
    r.text_len = 2;
    r.logprobs = &lp;
    r.n_logprobs = 1;
    r.want_logprobs = true;
    s = api_chat_chunk_sse(&r, false, false);
    j = load_sse(s);
    REQUIRE(j);
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    delta = json_object_get(c0, "delta");
    CHECK(json_object_get(delta, "role") == NULL);
    CHECK_STR(sget(delta, "content"), "ab");
    json_t *content = json_object_get(json_object_get(c0, "logprobs"), "content");
    REQUIRE(json_array_size(content) == 1);
    CHECK_STR(sget(json_array_get(content, 0), "token"), "ab");
    json_decref(j);
    free(s);

    /* last with a finish_reason: empty delta */
    r.text = "";
    r.text_len = 0;
    r.logprobs = NULL;
    r.n_logprobs = 0;
    r.want_logprobs = false;
    r.finish_reason = "length";
    s = api_chat_chunk_sse(&r, false, false);
    j = load_sse(s);
    REQUIRE(j);
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_INT(json_object_size(json_object_get(c0, "delta")), 0);
    CHECK_STR(sget(c0, "finish_reason"), "length");
    json_decref(j);
    free(s);

    /* usage-only chunk: choices [] and usage */
    r.finish_reason = NULL;
    r.usage = &u;
    s = api_chat_chunk_sse(&r, false, true);
    j = load_sse(s);
    REQUIRE(j);
    CHECK(json_is_array(json_object_get(j, "choices")));
    CHECK_EQ_INT(json_array_size(json_object_get(j, "choices")), 0);
    check_usage(json_object_get(j, "usage"), 5, 2, 1);
    json_decref(j);
    free(s);

    /* without include_usage: no usage field at all */
    r.usage = NULL;
    r.usage_null = false;
    s = api_chat_chunk_sse(&r, false, false);
    j = load_sse(s);
    REQUIRE(j);
    CHECK(json_object_get(j, "usage") == NULL);
    json_decref(j);
    free(s);

    CHECK_STR(api_sse_done(), "data: [DONE]\n\n");
}

TEST(api_completion_chunks_stream_shape)
{
    struct api_usage u = {.prompt_tokens = 3, .completion_tokens = 9};
    struct api_result r = {.id = "cmpl-s",
                           .created = 1,
                           .model = "m",
                           .text = "tok\n",
                           .text_len = 4,
                           .usage_null = true};
    char *s = api_completion_chunk_sse(&r, false);
    json_t *j = load_sse(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "object"), "text_completion");
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    REQUIRE(c0);
    CHECK_STR(sget(c0, "text"), "tok\n");
    CHECK_EQ_INT(iget(c0, "index"), 0);
    CHECK(json_is_null(json_object_get(c0, "finish_reason")));
    CHECK(json_is_null(json_object_get(c0, "logprobs")));
    CHECK(json_is_null(json_object_get(j, "usage")));
    json_decref(j);
    free(s);

    r.usage = &u;
    s = api_completion_chunk_sse(&r, true);
    j = load_sse(s);
    REQUIRE(j);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "choices")), 0);
    check_usage(json_object_get(j, "usage"), 3, 9, 0);
    json_decref(j);
    free(s);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes padded base64; returns the byte count or -1. */
static long b64decode(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s), o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64val(s[i + k])) < 0 || pad) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        for (int k = 0; k < 3 - pad; k++) {
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(w >> (16 - 8 * k));
        }
    }
    return (long)o;
}

TEST(api_embeddings_document)
{
    const float a[3] = {0.1f, -1.0f / 3.0f, 1e-38f};
    const float b[3] = {123456.789f, 0.0f, -2.5f};
    const float *vecs[2] = {a, b};
    char *s = api_embeddings_json("emb\"model", vecs, 2, 3, false, 7);
    json_t *j = load(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "object"), "list");
    CHECK_STR(sget(j, "model"), "emb\"model");
    json_t *usage = json_object_get(j, "usage");
    CHECK_EQ_INT(iget(usage, "prompt_tokens"), 7);
    CHECK_EQ_INT(iget(usage, "total_tokens"), 7);
    json_t *data = json_object_get(j, "data");
    REQUIRE(json_array_size(data) == 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *d = json_array_get(data, i);
        CHECK_STR(sget(d, "object"), "embedding");
        CHECK_EQ_INT(iget(d, "index"), i);
        json_t *emb = json_object_get(d, "embedding");
        REQUIRE(json_array_size(emb) == 3);
        for (size_t k = 0; k < 3; k++) /* exact float32 round trip */
            CHECK((float)json_number_value(json_array_get(emb, k)) == vecs[i][k]);
    }
    json_decref(j);
    free(s);

    s = api_embeddings_json("m", vecs, 2, 3, true, 7);
    j = load(s);
    REQUIRE(j);
    data = json_object_get(j, "data");
    REQUIRE(json_array_size(data) == 2);
    for (size_t i = 0; i < 2; i++) {
        const char *b64 = sget(json_array_get(data, i), "embedding");
        REQUIRE(b64);
        CHECK_EQ_INT(strlen(b64), 16); /* 12 bytes -> 16 chars */
        unsigned char raw[16];
        REQUIRE(b64decode(b64, raw, sizeof(raw)) == 12);
        for (size_t k = 0; k < 3; k++) {
            uint32_t w = raw[4 * k] | raw[4 * k + 1] << 8 | raw[4 * k + 2] << 16 |
                         (uint32_t)raw[4 * k + 3] << 24;
            float f;
            memcpy(&f, &w, 4);
            CHECK(f == vecs[i][k]);
        }
    }
    json_decref(j);
    free(s);

    /* a dimension that needs padding: 1 float = 4 bytes -> "xxxxxx==" */
    const float one[1] = {1.0f};
    const float *v1[1] = {one};
    s = api_embeddings_json("m", v1, 1, 1, true, 1);
    j = load(s);
    REQUIRE(j);
    CHECK_STR(sget(json_array_get(json_object_get(j, "data"), 0), "embedding"), "AACAPw==");
    json_decref(j);
    free(s);

    /* non-finite values cannot be JSON numbers */
    const float bad[2] = {NAN, INFINITY};
    const float *vb[1] = {bad};
    s = api_embeddings_json("m", vb, 1, 2, false, 1);
    j = load(s);
    CHECK(j != NULL);
    json_decref(j);
    free(s);

    CHECK(api_embeddings_json("m", NULL, 1, 3, false, 0) == NULL);
    CHECK(api_embeddings_json("m", vecs, 1, -1, false, 0) == NULL);
    s = api_embeddings_json("m", NULL, 0, 3, false, 0);
    j = load(s);
    REQUIRE(j);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    free(s);
}

TEST(api_models_document)
{
    const char *ids[2] = {"llama-3", "qwen\xff"};
    const char *owners[2] = {"meta", NULL};
    char *s = api_models_json(ids, owners, 2, 1234);
    json_t *j = load(s);
    REQUIRE(j);
    CHECK_STR(sget(j, "object"), "list");
    json_t *data = json_object_get(j, "data");
    REQUIRE(json_array_size(data) == 2);
    json_t *m0 = json_array_get(data, 0), *m1 = json_array_get(data, 1);
    CHECK_STR(sget(m0, "id"), "llama-3");
    CHECK_STR(sget(m0, "object"), "model");
    CHECK_EQ_INT(iget(m0, "created"), 1234);
    CHECK_STR(sget(m0, "owned_by"), "meta");
    CHECK_STR(sget(m1, "id"), "qwen\xef\xbf\xbd");
    CHECK_STR(sget(m1, "owned_by"), "tandem");
    json_decref(j);
    free(s);

    s = api_models_json(NULL, NULL, 0, 0);
    j = load(s);
    REQUIRE(j);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    free(s);
}

TEST(api_error_document)
{
    struct api_error e;
    char param[32];
    snprintf(param, sizeof(param), "messages[%d].role", 3);
    api_error_set(&e, 400, "invalid_request_error", "invalid_value", param, "bad %s: %d", "x", 5);
    memset(param, 'z', sizeof(param) - 1); /* the error keeps its own copy */
    CHECK_EQ_INT(e.status, 400);
    CHECK_STR(e.param, "messages[3].role");
    char *s = api_error_json(&e);
    json_t *j = load(s);
    REQUIRE(j);
    CHECK_EQ_INT(json_object_size(j), 1);
    json_t *err = json_object_get(j, "error");
    REQUIRE(json_is_object(err));
    CHECK_EQ_INT(json_object_size(err), 4);
    CHECK_STR(sget(err, "message"), "bad x: 5");
    CHECK_STR(sget(err, "type"), "invalid_request_error");
    CHECK_STR(sget(err, "param"), "messages[3].role");
    CHECK_STR(sget(err, "code"), "invalid_value");
    json_decref(j);
    free(s);

    /* null param and code are JSON null, not missing; client text is sanitized */
    api_error_set(&e, 404, "not_found_error", NULL, NULL, "no model '%s'", "m\xc3");
    s = api_error_json(&e);
    j = load(s);
    REQUIRE(j);
    err = json_object_get(j, "error");
    CHECK(json_is_null(json_object_get(err, "param")));
    CHECK(json_is_null(json_object_get(err, "code")));
    CHECK_STR(sget(err, "message"), "no model 'm\xef\xbf\xbd'");
    json_decref(j);
    free(s);

    /* a message longer than the buffer is cut, still valid */
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    api_error_set(&e, 500, "server_error", NULL, NULL, "%s", big);
    CHECK_EQ_INT(strlen(e.message), sizeof(e.message) - 1);
    s = api_error_json(&e);
    j = load(s);
    CHECK(j != NULL);
    json_decref(j);
    free(s);
}

TEST(api_parse_error_round_trips_to_json)
{
    struct api_request r;
    struct api_error e;
    REQUIRE(parse(&r, API_CHAT, "{\"model\":\"m\"," MSG ",\"top_p\":7}", &e) == -1);
    char *s = api_error_json(&e);
    json_t *j = load(s);
    REQUIRE(j);
    json_t *err = json_object_get(j, "error");
    CHECK_STR(sget(err, "param"), "top_p");
    CHECK_STR(sget(err, "type"), "invalid_request_error");
    CHECK_STR(sget(err, "code"), "decimal_above_max_value");
    CHECK(strstr(sget(err, "message"), "top_p") != NULL);
    json_decref(j);
    free(s);
}

/* ---- out of memory: every jansson allocation failure is answered, nothing leaks ---- */

static long oom_budget, oom_live;

static void *oom_malloc(size_t n)
{
    if (oom_budget-- <= 0)
        return NULL;
    void *p = malloc(n);
    if (p)
        oom_live++;
    return p;
}

static void oom_free(void *p)
{
    if (p)
        oom_live--;
    free(p);
}

TEST(api_oom_is_an_error_not_a_crash)
{
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],\"stop\":[\"x\"],"
        "\"logit_bias\":{\"1\":2},\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
        "{\"name\":\"n\",\"schema\":{\"type\":\"object\"}}}}";
    struct api_token_logprob lp = {
        .token = "\xe2", .token_len = 1, .logprob = -1, .n_top = 1, .top = {{"x", 1, -2}}};
    struct api_usage u = {1, 2, 3};
    struct api_result res = {.id = "i",
                             .model = "m",
                             .text = "t\xff",
                             .text_len = 2,
                             .finish_reason = "stop",
                             .logprobs = &lp,
                             .n_logprobs = 1,
                             .want_logprobs = true,
                             .usage = &u,
                             .usage_null = true};
    const char *ids[1] = {"m"};
    struct api_error e;
    api_error_set(&e, 400, "invalid_request_error", "c", "p", "msg");
    json_set_alloc_funcs(oom_malloc, oom_free);
    int parse_ok = 0, fmt_ok = 0;
    for (long budget = 0; budget < 5000 && !(parse_ok && fmt_ok); budget++) {
        struct api_request r;
        struct api_error pe;
        oom_budget = budget;
        if (api_request_parse(&r, API_CHAT, body, strlen(body), NULL, &pe) == 0) {
            parse_ok++;
            CHECK_STR(r.schema_json, "{\"type\":\"object\"}");
            api_request_free(&r);
        } else {
            CHECK(pe.status == 500 || pe.status == 400);
        }
        CHECK_EQ_INT(oom_live, 0);

        char *docs[7];
        oom_budget = budget;
        docs[0] = api_chat_response_json(&res);
        docs[1] = api_completion_response_json(&res);
        docs[2] = api_chat_chunk_sse(&res, true, false);
        docs[3] = api_completion_chunk_sse(&res, true);
        docs[4] = api_models_json(ids, NULL, 1, 0);
        docs[5] = api_error_json(&e);
        docs[6] = api_embeddings_json("m", NULL, 0, 0, false, 0);
        CHECK_EQ_INT(oom_live, 0);
        int all = 1;
        for (int k = 0; k < 7; k++) {
            all &= docs[k] != NULL;
            free(docs[k]);
        }
        fmt_ok += all;
    }
    json_set_alloc_funcs(malloc, free);
    CHECK(parse_ok > 0); /* with enough memory it works */
    CHECK(fmt_ok > 0);
}

TEST(api_format_tolerates_missing_pointers)
{
    /* n_logprobs without an array, NULL text/id/model: valid documents, no crash */
    struct api_result r = {.n_logprobs = 3, .want_logprobs = true, .text_len = 5};
    char *docs[4] = {api_chat_response_json(&r), api_completion_response_json(&r),
                     api_chat_chunk_sse(&r, true, false), api_completion_chunk_sse(&r, false)};
    for (int k = 0; k < 4; k++) {
        json_t *j = k < 2 ? load(docs[k]) : load_sse(docs[k]);
        CHECK(j != NULL);
        json_decref(j);
        free(docs[k]);
    }
    CHECK(api_chat_response_json(NULL) == NULL);
    CHECK(api_error_json(NULL) == NULL);
}
