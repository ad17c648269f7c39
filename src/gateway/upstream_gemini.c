/* The Gemini generateContent / streamGenerateContent (SSE) wire format: contents with
 * user/model roles, systemInstruction, generationConfig, candidates and usageMetadata. */
#include "gateway/upstream_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static json_t *text_part(const char *text)
{
    return json_pack("{s:s}", "text", text);
}

/* System and developer messages become systemInstruction parts; assistant turns are "model",
 * everything else (tool results included) "user"; consecutive messages of one role become
 * parts of one content; empty texts are dropped. */
static int build_contents(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    json_t *contents = json_array(), *sys_parts = NULL, *cur_parts = NULL;
    const char *cur_role = NULL;
    if (!up__json_set(doc, "contents", contents))
        return UPSTREAM_E_NOMEM;
    if (r->kind == API_COMPLETION) {
        const char *prompt;
        int rc = up__completion_prompt(c, &prompt);
        if (rc)
            return rc;
        return json_array_append_new(contents,
                                     json_pack("{s:s,s:[o]}", "role", "user", "parts",
                                               text_part(prompt)))
                   ? UPSTREAM_E_NOMEM
                   : 0;
    }
    for (size_t i = 0; i < r->n_messages; i++) {
        const struct api_message *m = &r->messages[i];
        const char *role = m->role ? m->role : "user";
        const char *text = m->content ? m->content : "";
        if (!text[0])
            continue;
        json_t **parts = &cur_parts;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            parts = &sys_parts;
        } else {
            const char *g = !strcmp(role, "assistant") ? "model" : "user";
            if (!cur_role || strcmp(cur_role, g)) {
                cur_parts = json_array();
                if (json_array_append_new(contents, json_pack("{s:s,s:o}", "role", g, "parts",
                                                              cur_parts)))
                    return UPSTREAM_E_NOMEM;
                cur_role = g;
            }
        }
        if (!*parts) {
            *parts = json_array();
            if (!up__json_set(doc, "systemInstruction", json_pack("{s:o}", "parts", *parts)))
                return UPSTREAM_E_NOMEM;
        }
        if (json_array_append_new(*parts, text_part(text)))
            return UPSTREAM_E_NOMEM;
    }
    if (json_array_size(contents) == 0)
        return up__bad_request(c, "messages", "Gemini needs at least one user message.");
    return 0;
}

static int build_config(struct up_call *c, json_t *doc)
{
    const struct api_request *r = c->req;
    json_t *g = json_object();
    bool ok = up__json_set(doc, "generationConfig", g);
    ok = ok && up__json_set(g, "candidateCount", json_integer(1));
    if (r->temperature != 1.0f)
        ok = ok && up__json_set(g, "temperature", up__json_num(r->temperature));
    if (r->top_p != 1.0f)
        ok = ok && up__json_set(g, "topP", up__json_num(r->top_p));
    if (r->max_tokens >= 0)
        ok = ok && up__json_set(g, "maxOutputTokens", json_integer(r->max_tokens));
    if (r->n_stop > 0) {
        json_t *stop = json_array();
        ok = ok && up__json_set(g, "stopSequences", stop);
        for (int i = 0; ok && i < r->n_stop && i < API_MAX_STOP; i++)
            ok = r->stop[i] && !json_array_append_new(stop, json_string(r->stop[i]));
    }
    if (r->has_seed) /* Gemini's seed is an int32: the low 31 bits are sent */
        ok = ok && up__json_set(g, "seed", json_integer((json_int_t)(r->seed & 0x7fffffff)));
    if (r->presence_penalty != 0.0f)
        ok = ok && up__json_set(g, "presencePenalty", up__json_num(r->presence_penalty));
    if (r->frequency_penalty != 0.0f)
        ok = ok && up__json_set(g, "frequencyPenalty", up__json_num(r->frequency_penalty));
    if (r->format != API_FORMAT_TEXT) /* the schema itself is not translated */
        ok = ok && up__json_set(g, "responseMimeType", json_string("application/json"));
    return ok ? 0 : UPSTREAM_E_NOMEM;
}

/* The model id as one URL path segment ("models/x" is accepted as "x"). */
static int model_segment(const char *model, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (!strncmp(model, "models/", 7))
        model += 7;
    if (!model[0])
        return UPSTREAM_E_ARG;
    for (const unsigned char *p = (const unsigned char *)model; *p; p++) {
        if (o + 4 > cap)
            return UPSTREAM_E_ARG;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

static int gemini_build(struct up_call *c, struct up_http *h)
{
    char model[1024];
    if (model_segment(c->up->model, model, sizeof(model)))
        return up__bad_request(c, "model", "The upstream model id is empty or too long.");
    c->stream = c->req->stream;
    int n = snprintf(h->url, sizeof(h->url), "%s/v1beta/models/%s:%s", c->up->base_url, model,
                     c->stream ? "streamGenerateContent?alt=sse" : "generateContent");
    if (n < 0 || (size_t)n >= sizeof(h->url))
        return up__bad_request(c, NULL, "The upstream base_url is too long.");
    int rc = 0;
    if (c->up->api_key && c->up->api_key[0])
        rc = up__header(h, "x-goog-api-key", c->up->api_key);
    if (rc)
        return rc;
    json_t *doc = json_object();
    rc = doc ? build_contents(c, doc) : UPSTREAM_E_NOMEM;
    if (!rc)
        rc = build_config(c, doc);
    if (!rc)
        rc = up__body(h, doc);
    json_decref(doc);
    return rc;
}

static void set_usage(struct up_call *c, json_t *u)
{
    if (!json_is_object(u))
        return;
    c->prompt_tokens = up__json_count(u, "promptTokenCount");
    /* Thinking tokens are billed as output: they count as completion tokens. */
    long long out = (long long)up__json_count(u, "candidatesTokenCount") +
                    up__json_count(u, "thoughtsTokenCount");
    c->completion_tokens = out > INT32_MAX ? INT32_MAX : (int)out;
    c->cached_tokens = up__json_count(u, "cachedContentTokenCount");
}

/* One GenerateContentResponse (the whole answer, or one stream chunk). */
static int take_response(struct up_call *c, json_t *root)
{
    json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
    set_usage(c, json_object_get(root, "usageMetadata"));
    if (!json_is_object(cand)) {
        if (json_object_get(root, "error")) {
            json_t *m = json_object_get(json_object_get(root, "error"), "message");
            return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: gemini reported: %s",
                            json_is_string(m) ? json_string_value(m) : "an error");
        }
        /* A prompt blocked by safety filters has no candidates: an empty, finished answer. */
        if (json_object_get(json_object_get(root, "promptFeedback"), "blockReason")) {
            c->finish = "stop";
            c->terminal = true;
        }
        return 0;
    }
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t) && !json_is_true(json_object_get(part, "thought")))
            up__emit(c, json_string_value(t), json_string_length(t));
    }
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr && fr[0] && strcmp(fr, "FINISH_REASON_UNSPECIFIED")) {
        /* SAFETY, RECITATION, BLOCKLIST, OTHER ...: the text stopped; only MAX_TOKENS is a
         * length cut. */
        c->finish = !strcmp(fr, "MAX_TOKENS") ? "length" : "stop";
        c->terminal = true;
    }
    return 0;
}

static int gemini_parse(struct up_call *c, json_t *root)
{
    if (!json_object_get(root, "candidates") && !json_object_get(root, "promptFeedback") &&
        !json_object_get(root, "error"))
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: gemini answer without candidates");
    return take_response(c, root);
}

static int gemini_event(struct up_call *c, const char *event, const char *data, size_t len)
{
    (void)event;
    json_t *root = json_loadb(data, len, 0, NULL);
    if (json_is_array(root)) { /* errors may come wrapped in an array */
        json_t *first = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = first;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return up__fail(c, UPSTREAM_E_PROTOCOL, "upstream error: a gemini chunk is not JSON");
    }
    int rc = take_response(c, root);
    json_decref(root);
    return rc;
}

const struct up_provider up__gemini = {
    .name = "gemini",
    .build = gemini_build,
    .parse = gemini_parse,
    .event = gemini_event,
};
