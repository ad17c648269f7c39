/* The OpenAI chat completions wire format (OpenAI, Mistral and OpenAI-compatible servers such
 * as vLLM, Ollama, llama.cpp or another tandem): request body, answer and stream chunks. */
#include "gateway/upstream_impl.h"

#include <stdio.h>
#include <string.h>

static const char *map_role(const struct up_call *c, const char *role)
{
    /* Tools are not translated: a tool result (it has no tool_call_id here) is sent as user
     * text. Only OpenAI itself knows "developer"; the others get "system". */
    if (!strcmp(role, "tool"))
        return "user";
    if (!strcmp(role, "developer") && c->up->provider != GW_PROVIDER_OPENAI)
        return "system";
    return role;
}

static json_t *message(const char *role, const char *content, const char *name)
{
    json_t *m = json_object();
    if (!m || !up__json_set(m, "role", json_string(role)) ||
        !up__json_set(m, "content", json_string(content)) ||
        (name && name[0] && !up__json_set(m, "name", json_string(name)))) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static int build_messages(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    json_t *msgs = json_array();
    if (!up__json_set(doc, "messages", msgs))
        return UPSTREAM_E_NOMEM;
    if (r->kind == API_COMPLETION) {
        /* A legacy completion goes out as a chat with one user message holding the prompt. */
        const char *prompt;
        int rc = up__completion_prompt(c, &prompt);
        if (rc)
            return rc;
        return json_array_append_new(msgs, message("user", prompt, NULL)) ? UPSTREAM_E_NOMEM : 0;
    }
    if (!r->n_messages)
        return up__bad_request(c, "messages", "The request has no messages.");
    bool names = c->up->provider == GW_PROVIDER_OPENAI;
    for (size_t i = 0; i < r->n_messages; i++) {
        const struct api_message *m = &r->messages[i];
        const char *role = map_role(c, m->role ? m->role : "user");
        const char *name = names ? m->name : NULL;
        if (json_array_append_new(msgs, message(role, m->content ? m->content : "", name)))
            return UPSTREAM_E_NOMEM;
    }
    return 0;
}

static int build_params(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    enum gw_provider p = c->up->provider;
    bool ok = true;
    /* Defaults (temperature 1, top_p 1, penalties 0) are left out: the same for the server,
     * and accepted by models that refuse any sampling parameter. */
    if (r->temperature != 1.0f)
        ok = ok && up__json_set(doc, "temperature", up__json_num(r->temperature));
    if (r->top_p != 1.0f)
        ok = ok && up__json_set(doc, "top_p", up__json_num(r->top_p));
    if (r->max_tokens >= 0)
        /* OpenAI's reasoning models refuse max_tokens; others know only max_tokens. */
        ok = ok && up__json_set(doc, p == GW_PROVIDER_OPENAI ? "max_completion_tokens"
                                                             : "max_tokens",
                                json_integer(r->max_tokens));
    if (r->n_stop > 0) {
        json_t *stop = json_array();
        ok = ok && up__json_set(doc, "stop", stop);
        for (int i = 0; ok && i < r->n_stop && i < API_MAX_STOP; i++)
            ok = r->stop[i] && !json_array_append_new(stop, json_string(r->stop[i]));
    }
    if (r->has_seed)
        ok = ok && up__json_set(doc, p == GW_PROVIDER_MISTRAL ? "random_seed" : "seed",
                                json_integer((json_int_t)(r->seed & 0x7fffffffffffffffULL)));
    if (r->presence_penalty != 0.0f)
        ok = ok && up__json_set(doc, "presence_penalty", up__json_num(r->presence_penalty));
    if (r->frequency_penalty != 0.0f)
        ok = ok && up__json_set(doc, "frequency_penalty", up__json_num(r->frequency_penalty));
    if (r->format == API_FORMAT_JSON_OBJECT) {
        ok = ok && up__json_set(doc, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (r->format == API_FORMAT_JSON_SCHEMA && r->schema_json) {
        json_t *schema = json_loads(r->schema_json, 0, NULL);
        if (!schema)
            return up__bad_request(c, "response_format", "The JSON schema is not valid JSON.");
        ok = ok && up__json_set(doc, "response_format",
                                json_pack("{s:s,s:{s:s,s:o}}", "type", "json_schema",
                                          "json_schema", "name",
                                          r->schema_name ? r->schema_name : "response",
                                          "schema", schema));
    }
    if (r->stream) {
        ok = ok && up__json_set(doc, "stream", json_true());
        /* Mistral always puts usage in its last chunk and does not take stream_options. */
        if (p != GW_PROVIDER_MISTRAL)
            ok = ok && up__json_set(doc, "stream_options",
                                    json_pack("{s:b}", "include_usage", 1));
    }
    return ok ? 0 : UPSTREAM_E_NOMEM;
}

static int openai_build(struct up_call *c, struct up_http *h)
{
    int n = snprintf(h->url, sizeof(h->url), "%s/chat/completions", c->up->base_url);
    if (n < 0 || (size_t)n >= sizeof(h->url))
        return up__bad_request(c, NULL, "The upstream base_url is too long.");
    c->stream = c->req->stream;
    if (c->up->api_key && c->up->api_key[0]) {
        char auth[4096];
        n = snprintf(auth, sizeof(auth), "Bearer %s", c->up->api_key);
        int rc = n < 0 || (size_t)n >= sizeof(auth) ? UPSTREAM_E_ARG
                                                    : up__header(h, "Authorization", auth);
        explicit_bzero(auth, sizeof(auth));
        if (rc)
            return rc;
    }
    json_t *doc = json_object();
    int rc = doc && up__json_set(doc, "model", json_string(c->up->model)) ? 0 : UPSTREAM_E_NOMEM;
    if (!rc)
        rc = build_messages(c, doc);
    if (!rc)
        rc = build_params(c, doc);
    if (!rc)
        rc = up__body(h, doc);
    json_decref(doc);
    return rc;
}

static void set_finish(struct up_call *c, json_t *fr)
{
    if (!json_is_string(fr))
        return;
    /* content_filter, tool_calls, function_call: the text simply ended. */
    c->finish = !strcmp(json_string_value(fr), "length") ? "length" : "stop";
}

static void set_usage(struct up_call *c, json_t *usage)
{
    if (!json_is_object(usage))
        return;
    c->prompt_tokens = up__json_count(usage, "prompt_tokens");
    c->completion_tokens = up__json_count(usage, "completion_tokens");
    c->cached_tokens = up__json_count(json_object_get(usage, "prompt_tokens_details"),
                                      "cached_tokens");
}

static void emit_string(struct up_call *c, json_t *s)
{
    if (json_is_string(s))
        up__emit(c, json_string_value(s), json_string_length(s));
}

static int upstream_error(struct up_call *c, json_t *root)
{
    json_t *e = json_object_get(root, "error");
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: %s reported: %s",
                    gw_provider_name(c->up->provider),
                    json_is_string(m) ? json_string_value(m) : "an error");
}

static int openai_parse(struct up_call *c, json_t *root)
{
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    if (!json_is_object(choice)) {
        if (json_object_get(root, "error"))
            return upstream_error(c, root);
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: answer without choices");
    }
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    if (!json_is_string(content))
        content = json_object_get(msg, "refusal");
    if (!json_is_string(content)) /* a completions-style server */
        content = json_object_get(choice, "text");
    emit_string(c, content);
    set_finish(c, json_object_get(choice, "finish_reason"));
    set_usage(c, json_object_get(root, "usage"));
    return 0;
}

static int openai_event(struct up_call *c, const char *event, const char *data, size_t len)
{
    (void)event;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        c->terminal = true;
        return 0;
    }
    json_t *root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: a stream chunk is not JSON");
    }
    int rc = 0;
    if (json_object_get(root, "error")) {
        rc = upstream_error(c, root);
        goto out;
    }
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    if (json_is_object(choice)) {
        json_t *delta = json_object_get(choice, "delta");
        json_t *content = json_object_get(delta, "content");
        if (!json_is_string(content))
            content = json_object_get(delta, "refusal");
        if (!json_is_string(content))
            content = json_object_get(choice, "text");
        emit_string(c, content);
        set_finish(c, json_object_get(choice, "finish_reason"));
    }
    set_usage(c, json_object_get(root, "usage"));
out:
    json_decref(root);
    return rc;
}

const struct up_provider up__openai = {
    .name = "openai",
    .build = openai_build,
    .parse = openai_parse,
    .event = openai_event,
};
