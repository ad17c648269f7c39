/* The Anthropic Messages wire format: request body (top-level system, alternating turns),
 * answer content blocks, and the SSE event sequence of a streamed message. */
#include "gateway/upstream_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define PLACEHOLDER_TURN "."   /* Anthropic needs a first user turn, and no empty text */

/* Appends `text` to `*acc` (a JSON string or NULL) separated by a blank line. */
static int join_text(json_t **acc, const char *text)
{
    if (!*acc) {
        *acc = json_string(text);
        return *acc ? 0 : UPSTREAM_E_NOMEM;
    }
    size_t a = json_string_length(*acc), b = strlen(text);
    if (a > UP_MAX_REQUEST_BODY || b > UP_MAX_REQUEST_BODY)
        return UPSTREAM_E_ARG;
    char *s = malloc(a + b + 3);
    if (!s)
        return UPSTREAM_E_NOMEM;
    memcpy(s, json_string_value(*acc), a);
    memcpy(s + a, "\n\n", 2);
    memcpy(s + a + 2, text, b + 1);
    int rc = json_string_setn(*acc, s, a + b + 2) ? UPSTREAM_E_NOMEM : 0;
    free(s);
    return rc;
}

static json_t *turn(const char *role, json_t *content)
{
    json_t *t = json_object();
    if (!t || !up__json_set(t, "role", json_string(role)) || !up__json_set(t, "content", content)) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* System and developer messages join into the top-level system; the rest alternate
 * user/assistant, consecutive turns of one role merged (a tool result counts as user text);
 * empty texts are dropped; a conversation not opening with a user turn gets a placeholder. */
static int build_messages(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    json_t *msgs = json_array(), *system = NULL, *cur = NULL;
    const char *cur_role = NULL;
    int rc = 0;
    if (!up__json_set(doc, "messages", msgs))
        return UPSTREAM_E_NOMEM;
    if (r->kind == API_COMPLETION) {
        const char *prompt;
        if ((rc = up__completion_prompt(c, &prompt)))
            return rc;
        if (!prompt[0])
            prompt = PLACEHOLDER_TURN;
        return json_array_append_new(msgs, turn("user", json_string(prompt))) ? UPSTREAM_E_NOMEM
                                                                              : 0;
    }
    for (size_t i = 0; i < r->n_messages && !rc; i++) {
        const struct api_message *m = &r->messages[i];
        const char *role = m->role ? m->role : "user";
        const char *text = m->content ? m->content : "";
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (text[0])
                rc = join_text(&system, text);
            continue;
        }
        role = !strcmp(role, "assistant") ? "assistant" : "user";
        if (!text[0])
            continue;
        if (!cur_role && strcmp(role, "user")) {
            rc = json_array_append_new(msgs, turn("user", json_string(PLACEHOLDER_TURN)))
                     ? UPSTREAM_E_NOMEM
                     : 0;
            cur_role = "user";
        }
        if (rc)
            break;
        if (cur_role && !strcmp(cur_role, role)) {
            rc = join_text(&cur, text);
            continue;
        }
        if (cur && json_array_append_new(msgs, turn(cur_role, cur))) {
            cur = NULL;
            rc = UPSTREAM_E_NOMEM;
            break;
        }
        cur = NULL;
        cur_role = role;
        rc = join_text(&cur, text);
    }
    if (!rc && cur) {
        if (!strcmp(cur_role, "assistant")) {
            /* A last assistant turn is a prefill; Anthropic refuses trailing whitespace. */
            const char *s = json_string_value(cur);
            size_t n = json_string_length(cur);
            while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' ||
                         s[n - 1] == '\r'))
                n--;
            if (n == 0) {
                json_decref(cur);
                cur = NULL;
            } else if (json_string_setn(cur, s, n)) {
                rc = UPSTREAM_E_NOMEM;
            }
        }
        if (cur) {
            if (json_array_append_new(msgs, turn(cur_role, cur)) && !rc)
                rc = UPSTREAM_E_NOMEM;
            cur = NULL;
        }
    }
    json_decref(cur);
    if (!rc && json_array_size(msgs) == 0)
        rc = json_array_append_new(msgs, turn("user", json_string(PLACEHOLDER_TURN)))
                 ? UPSTREAM_E_NOMEM
                 : 0;
    if (!rc && system && !up__json_set(doc, "system", system))
        return UPSTREAM_E_NOMEM;
    if (rc)
        json_decref(system);
    return rc;
}

static int build_params(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    bool ok = true;
    /* Anthropic requires max_tokens. */
    int max = r->max_tokens >= 0 ? r->max_tokens : UP_ANTHROPIC_DEFAULT_MAX_TOKENS;
    ok = up__json_set(doc, "max_tokens", json_integer(max));
    /* Anthropic's temperature range is 0..1 (OpenAI's 0..2): values above 1 are clamped. The
     * default 1 and top_p 1 are left out (newer models refuse both set at once). */
    if (r->temperature != 1.0f)
        ok = ok && up__json_set(doc, "temperature",
                                up__json_num(r->temperature > 1.0f ? 1.0f : r->temperature));
    if (r->top_p != 1.0f)
        ok = ok && up__json_set(doc, "top_p", up__json_num(r->top_p));
    if (r->n_stop > 0) {
        json_t *stop = json_array();
        ok = ok && up__json_set(doc, "stop_sequences", stop);
        for (int i = 0; ok && i < r->n_stop && i < API_MAX_STOP; i++)
            ok = r->stop[i] && !json_array_append_new(stop, json_string(r->stop[i]));
    }
    if (r->stream)
        ok = ok && up__json_set(doc, "stream", json_true());
    return ok ? 0 : UPSTREAM_E_NOMEM;
}

static int anthropic_build(struct up_call *c, struct up_http *h)
{
    int n = snprintf(h->url, sizeof(h->url), "%s/v1/messages", c->up->base_url);
    if (n < 0 || (size_t)n >= sizeof(h->url))
        return up__bad_request(c, NULL, "The upstream base_url is too long.");
    c->stream = c->req->stream;
    int rc = 0;
    if (c->up->api_key && c->up->api_key[0])
        rc = up__header(h, "x-api-key", c->up->api_key);
    if (!rc)
        rc = up__header(h, "anthropic-version", ANTHROPIC_VERSION);
    if (rc)
        return rc;
    json_t *doc = json_object();
    rc = doc && up__json_set(doc, "model", json_string(c->up->model)) ? 0 : UPSTREAM_E_NOMEM;
    if (!rc)
        rc = build_messages(c, doc);
    if (!rc)
        rc = build_params(c, doc);
    if (!rc)
        rc = up__body(h, doc);
    json_decref(doc);
    return rc;
}

static void set_finish(struct up_call *c, json_t *reason)
{
    if (!json_is_string(reason))
        return;
    const char *s = json_string_value(reason);
    /* end_turn, stop_sequence, tool_use, pause_turn, refusal: the text ended. */
    c->finish = !strcmp(s, "max_tokens") || !strcmp(s, "model_context_window_exceeded")
                    ? "length"
                    : "stop";
}

/* input_tokens excludes cache reads and writes; the normalized prompt count includes them. */
static void set_usage(struct up_call *c, json_t *u, bool with_input)
{
    if (!json_is_object(u))
        return;
    if (with_input && json_object_get(u, "input_tokens")) {
        int read = up__json_count(u, "cache_read_input_tokens");
        long long p = (long long)up__json_count(u, "input_tokens") + read +
                      up__json_count(u, "cache_creation_input_tokens");
        c->prompt_tokens = p > INT32_MAX ? INT32_MAX : (int)p;
        c->cached_tokens = read;
    }
    if (json_object_get(u, "output_tokens"))
        c->completion_tokens = up__json_count(u, "output_tokens");
}

static int anthropic_parse(struct up_call *c, json_t *root)
{
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        json_t *e = json_object_get(root, "error");
        if (e)
            return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: anthropic reported: %s",
                            json_string_value(json_object_get(e, "message"))
                                ? json_string_value(json_object_get(e, "message"))
                                : "an error");
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: anthropic answer without content");
    }
    /* Text blocks only (tool_use, thinking ... are not translated), joined as one text. */
    struct up_buf text = {.max = UP_MAX_BODY};
    size_t i;
    json_t *block;
    int rc = 0;
    json_array_foreach(content, i, block)
    {
        json_t *t = json_object_get(block, "text");
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type && !strcmp(type, "text") && json_is_string(t) &&
            (rc = up__buf_put(&text, json_string_value(t), json_string_length(t))))
            break;
    }
    if (!rc) {
        up__emit(c, text.data ? text.data : "", text.len);
        set_finish(c, json_object_get(root, "stop_reason"));
        set_usage(c, json_object_get(root, "usage"), true);
    } else if (rc == UPSTREAM_E_NOMEM) {
        c->fail = rc;
    }
    up__buf_free(&text);
    return rc;
}

static int anthropic_event(struct up_call *c, const char *event, const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: an anthropic event is not JSON");
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type)
        type = event;
    int rc = 0;
    if (!strcmp(type, "message_start")) {
        set_usage(c, json_object_get(json_object_get(root, "message"), "usage"), true);
    } else if (!strcmp(type, "content_block_delta")) {
        json_t *d = json_object_get(root, "delta");
        const char *dt = json_string_value(json_object_get(d, "type"));
        json_t *t = json_object_get(d, "text");
        if (dt && !strcmp(dt, "text_delta") && json_is_string(t))
            up__emit(c, json_string_value(t), json_string_length(t));
    } else if (!strcmp(type, "content_block_start")) {
        json_t *b = json_object_get(root, "content_block");
        const char *bt = json_string_value(json_object_get(b, "type"));
        json_t *t = json_object_get(b, "text");
        if (bt && !strcmp(bt, "text") && json_is_string(t))
            up__emit(c, json_string_value(t), json_string_length(t));
    } else if (!strcmp(type, "message_delta")) {
        set_finish(c, json_object_get(json_object_get(root, "delta"), "stop_reason"));
        set_usage(c, json_object_get(root, "usage"), true);
    } else if (!strcmp(type, "message_stop")) {
        c->terminal = true;
    } else if (!strcmp(type, "error")) {
        json_t *e = json_object_get(root, "error");
        const char *et = json_string_value(json_object_get(e, "type"));
        const char *em = json_string_value(json_object_get(e, "message"));
        rc = up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: anthropic stream failed: %s: %s",
                      et ? et : "error", em ? em : "no message");
    } /* ping, content_block_stop and unknown events carry nothing we need */
    json_decref(root);
    return rc;
}

const struct up_provider up__anthropic = {
    .name = "anthropic",
    .build = anthropic_build,
    .parse = anthropic_parse,
    .event = anthropic_event,
};
