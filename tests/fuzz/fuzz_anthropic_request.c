/* libFuzzer: Anthropic Messages bodies through api_anthropic_parse, then every document. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_anthropic.h"

/* A document we produced must be one JSON object; returns it (caller decrefs). \u0000 is
 * valid JSON, so the parse allows it (model text may hold NUL bytes). */
static json_t *must_parse(const char *doc, size_t n)
{
    json_t *v = json_loadb(doc, n, JSON_ALLOW_NUL, NULL);
    if (!v || !json_is_object(v))
        abort();
    return v;
}

/* Takes (and frees) a malloc'd plain document. */
static json_t *take_doc(char *doc)
{
    if (!doc)
        abort(); /* no OOM under the fuzzer's limits */
    json_t *v = must_parse(doc, strlen(doc));
    free(doc);
    return v;
}

/* "event: NAME\ndata: {...}\n\n" with no other line break, and "type" equal to NAME. Takes
 * (and frees) ev; returns the data object. */
static json_t *take_sse(char *ev, const char *name)
{
    if (!ev)
        abort();
    char prefix[64];
    int pl = snprintf(prefix, sizeof(prefix), "event: %s\ndata: ", name);
    size_t n = strlen(ev);
    if (pl <= 0 || n < (size_t)pl + 2 || strncmp(ev, prefix, (size_t)pl) ||
        strcmp(ev + n - 2, "\n\n"))
        abort();
    const char *data = ev + pl;
    size_t dn = n - 2 - (size_t)pl;
    if (memchr(data, '\n', dn) || memchr(data, '\r', dn))
        abort();
    json_t *v = must_parse(data, dn);
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type || strcmp(type, name))
        abort();
    free(ev);
    return v;
}

/* Whether s[0..n) is UTF-8 that jansson takes as it is. */
static bool valid_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    json_decref(j);
    return j != NULL;
}

/* A string field produced from text[0..n): always a string, and the same bytes when the input
 * was valid UTF-8. */
static void check_text(json_t *s, const char *text, size_t n)
{
    if (!json_is_string(s))
        abort();
    if (valid_utf8(text, n) &&
        (json_string_length(s) != n || memcmp(json_string_value(s), text, n)))
        abort();
}

static void check_usage(json_t *u, bool full)
{
    static const char *const keys[] = {"output_tokens", "input_tokens",
                                       "cache_creation_input_tokens", "cache_read_input_tokens"};
    for (size_t i = 0; i < (full ? 4u : 1u); i++) {
        json_t *v = json_object_get(u, keys[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            abort();
    }
}

static const char *const EVENT_NAMES[] = {
    [API_ANTHROPIC_MESSAGE_START] = "message_start",
    [API_ANTHROPIC_CONTENT_BLOCK_START] = "content_block_start",
    [API_ANTHROPIC_PING] = "ping",
    [API_ANTHROPIC_CONTENT_BLOCK_DELTA] = "content_block_delta",
    [API_ANTHROPIC_CONTENT_BLOCK_STOP] = "content_block_stop",
    [API_ANTHROPIC_MESSAGE_DELTA] = "message_delta",
    [API_ANTHROPIC_MESSAGE_STOP] = "message_stop",
};

/* The message and every stream event for r, each parsed back. */
static void format_all(const struct api_anthropic_result *r)
{
    size_t tl = r->text ? r->text_len : 0;
    const char *text = r->text ? r->text : "";
    json_t *d = take_doc(api_anthropic_response_json(r));
    json_t *block = json_array_get(json_object_get(d, "content"), 0);
    check_text(json_object_get(block, "text"), text, tl);
    if (r->model)
        check_text(json_object_get(d, "model"), r->model, strlen(r->model));
    check_usage(json_object_get(d, "usage"), true);
    const char *sr = api_anthropic_stop_reason(r->finish_reason, r->stop_sequence);
    json_t *jsr = json_object_get(d, "stop_reason");
    if (sr ? !json_is_string(jsr) || strcmp(json_string_value(jsr), sr) : !json_is_null(jsr))
        abort();
    json_decref(d);

    for (int ev = API_ANTHROPIC_MESSAGE_START; ev <= API_ANTHROPIC_MESSAGE_STOP; ev++) {
        d = take_sse(api_anthropic_event_sse((enum api_anthropic_event)ev, r), EVENT_NAMES[ev]);
        if (ev == API_ANTHROPIC_CONTENT_BLOCK_DELTA)
            check_text(json_object_get(json_object_get(d, "delta"), "text"), text, tl);
        else if (ev == API_ANTHROPIC_MESSAGE_START)
            check_usage(json_object_get(json_object_get(d, "message"), "usage"), true);
        else if (ev == API_ANTHROPIC_MESSAGE_DELTA)
            check_usage(json_object_get(d, "usage"), false);
        json_decref(d);
    }
    if (api_anthropic_event_sse((enum api_anthropic_event)(API_ANTHROPIC_MESSAGE_STOP + 1), r))
        abort();
}

/* What a successful parse promises, whatever the body was. */
static void check_request(const struct api_request *r, const struct api_limits *lim)
{
    if (r->kind != API_CHAT || !r->model || !r->model[0] || !r->priv)
        abort();
    if (r->n_messages < 1 || r->n_messages > lim->max_messages || !r->messages)
        abort();
    size_t text = 0;
    for (size_t i = 0; i < r->n_messages; i++) {
        const struct api_message *m = &r->messages[i];
        if (!m->role || !m->content)
            abort();
        bool sys = !strcmp(m->role, "system");
        if (sys ? i != 0 : strcmp(m->role, "user") && strcmp(m->role, "assistant"))
            abort();
        /* Only the final assistant turn (a prefill) may be empty. */
        if (!m->content[0] && !(i + 1 == r->n_messages && !strcmp(m->role, "assistant")))
            abort();
        text += strlen(m->content) + (m->name ? strlen(m->name) : 0);
    }
    if (!strcmp(r->messages[r->n_messages - 1].role, "system"))
        abort();
    if (r->n_stop < 0 || r->n_stop > API_MAX_STOP)
        abort();
    for (int i = 0; i < r->n_stop; i++) {
        if (!r->stop[i] || !r->stop[i][0])
            abort();
        text += strlen(r->stop[i]);
    }
    if (text > lim->max_text_bytes)
        abort();
    if (r->max_tokens < 1 || r->max_tokens > lim->max_tokens)
        abort();
    if (!(r->temperature >= 0 && r->temperature <= 1) || !(r->top_p >= 0 && r->top_p <= 1))
        abort();
    if (r->format != API_FORMAT_TEXT || r->schema_json || r->n_logit_bias || r->logprobs)
        abort();
}

/* The error contract: a status, a NUL-terminated message, one Anthropic error document. */
static void check_error(const struct api_error *e)
{
    if (e->status < 400 || e->status > 599 || !memchr(e->message, 0, sizeof(e->message)))
        abort();
    json_t *d = take_doc(api_anthropic_error_json(e));
    json_t *err = json_object_get(d, "error");
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *outer = json_string_value(json_object_get(d, "type"));
    if (!outer || strcmp(outer, "error") || !type ||
        strcmp(type, api_anthropic_error_type(e->status)) ||
        !json_is_string(json_object_get(err, "message")))
        abort();
    json_decref(d);
    json_decref(take_sse(api_anthropic_error_sse(e), "error"));
}

/* Documents built from the raw input: the text is every byte of it, the other strings are
 * NUL-separated pieces, the usage numbers come from its first bytes (negative ones too). */
static void format_raw(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *model = copy;
    const char *rest = copy + strlen(copy);
    const char *id = rest < copy + size ? rest + 1 : NULL;
    const char *seq = id ? id + strlen(id) : NULL;
    seq = seq && seq < copy + size ? seq + 1 : NULL;
    static const char *const finish[] = {NULL,         "stop",           "length",
                                         "tool_calls", "content_filter", "other"};
    unsigned b0 = size ? data[0] : 0, b1 = size > 1 ? data[1] : 0, b2 = size > 2 ? data[2] : 0;
    struct api_usage usage = {.prompt_tokens = (int)b0 - 100,
                              .completion_tokens = (int)b1 * 1000 - 50000,
                              .cached_tokens = (int)b2 - 60};
    struct api_anthropic_result r = {.id = id,
                                     .model = model,
                                     .text = (const char *)data,
                                     .text_len = size,
                                     .finish_reason = finish[b0 % 6],
                                     .stop_sequence = b1 & 1 ? seq : NULL,
                                     .usage = b2 & 1 ? &usage : NULL};
    format_all(&r);
    /* And each single byte or split piece as its own delta, as a stream sends them. */
    for (size_t i = 0; i < size && i < 64; i += 1 + data[i] % 5) {
        r.text = (const char *)data + i;
        r.text_len = 1 + data[i] % 5 < size - i ? 1 + data[i] % 5 : size - i;
        json_t *d = take_sse(api_anthropic_event_sse(API_ANTHROPIC_CONTENT_BLOCK_DELTA, &r),
                             "content_block_delta");
        check_text(json_object_get(json_object_get(d, "delta"), "text"), r.text, r.text_len);
        json_decref(d);
    }
    /* An error whose message holds raw input bytes (possibly cut mid-sequence). */
    struct api_error e = {.status = 400 + (int)(b0 % 200)};
    size_t ml = size < sizeof(e.message) - 1 ? size : sizeof(e.message) - 1;
    memcpy(e.message, data, ml);
    check_error(&e);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_limits lims[2];
    api_limits_default(&lims[0]);
    lims[1] = (struct api_limits){.max_messages = 2,
                                  .max_tokens = 16,
                                  .max_text_bytes = 48,
                                  .max_logit_bias = 2,
                                  .max_inputs = 2};
    for (size_t l = 0; l < 2; l++) {
        struct api_request req;
        struct api_error err;
        memset(&err, 0, sizeof(err));
        if (api_anthropic_parse(&req, (const char *)data, size, &lims[l], &err)) {
            check_error(&err);
            api_request_free(&req); /* holds nothing: must be harmless */
            continue;
        }
        check_request(&req, &lims[l]);
        const struct api_message *last = &req.messages[req.n_messages - 1];
        struct api_usage usage = {.prompt_tokens = (int)req.n_messages,
                                  .completion_tokens = req.max_tokens,
                                  .cached_tokens = req.n_stop};
        struct api_anthropic_result r = {.id = req.user,
                                         .model = req.model,
                                         .text = last->content,
                                         .text_len = strlen(last->content),
                                         .finish_reason = req.n_stop ? "stop" : "length",
                                         .stop_sequence = req.n_stop ? req.stop[0] : NULL,
                                         .usage = &usage};
        format_all(&r);
        api_request_free(&req);
    }
    format_raw(data, size);
    return 0;
}
