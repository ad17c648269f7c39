/* Chat templates: real templates of each family, built-ins, detection, the Jinja subset, limits. */
#include "test.h"

#include <time.h>

#include "engine/gguf.h"
#include "tokenizer/chat_jinja.h"
#include "tokenizer/chat_template.h"

/* 2024-07-26 12:00 UTC: the date a template prints is fixed in tests */
#define FIXED_NOW 1721995200

static const struct chat_message CONVO[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};
#define CONVO_N 4
#define NOSYS (CONVO + 1)
#define NOSYS_N 3

/* ---- helpers ---- */

static void put_escaped(const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\n')
            fputs("\\n", stderr);
        else if (*s == '\t')
            fputs("\\t", stderr);
        else
            fputc(*s, stderr);
    }
}

static void check_text(const char *got, const char *want, const char *file, int line)
{
    if (got && strcmp(got, want) == 0)
        return;
    test__fail(file, line, "rendered text differs");
    fputs("      got:  \"", stderr);
    put_escaped(got ? got : "(null)");
    fputs("\"\n      want: \"", stderr);
    put_escaped(want);
    fputs("\"\n", stderr);
}
#define CHECK_TEXT(got, want) check_text((got), (want), __FILE__, __LINE__)

struct out {
    char *text;
    unsigned flags;          /* chat_prompt flags */
    unsigned tmpl_flags;     /* chat_template flags */
    enum chat_family family; /* chat_template_family */
    int rc;
    char err[512];
};

/* Renders through the public API: strict (no built-in fallback), fixed date. */
static struct out apply(const char *tmpl, const struct chat_message *m, size_t n, bool gen,
                        const char *bos, const char *eos, bool strict)
{
    struct out o = {0};
    struct chat_template *t = NULL;
    o.rc = chat_template_new(&t, tmpl, o.err, sizeof(o.err));
    if (o.rc)
        return o;
    o.tmpl_flags = chat_template_flags(t);
    o.family = chat_template_family(t);
    struct chat_apply_params p = {.messages = m, .n_messages = n, .add_generation_prompt = gen,
                                  .bos_token = bos, .eos_token = eos, .strict = strict,
                                  .now = FIXED_NOW};
    struct chat_prompt pr = {0};
    o.rc = chat_template_apply(t, &p, &pr, o.err, sizeof(o.err));
    o.text = pr.text;
    o.flags = pr.flags;
    chat_template_free(t);
    return o;
}

/* One family: the real template with and without the generation prompt. */
static void check_family(const char *tmpl, const struct chat_message *m, size_t n,
                         const char *bos, const char *eos, const char *want_gen,
                         const char *want_nogen, unsigned want_flags, const char *file, int line)
{
    struct out a = apply(tmpl, m, n, true, bos, eos, true);
    struct out b = apply(tmpl, m, n, false, bos, eos, true);
    if (a.rc || b.rc)
        test__fail(file, line, "render failed: %s / %s", a.err, b.err);
    if (a.tmpl_flags & (CHAT_TEMPLATE_FALLBACK | CHAT_TEMPLATE_UNKNOWN))
        test__fail(file, line, "the real template did not parse: %s", a.err);
    check_text(a.text, want_gen, file, line);
    check_text(b.text, want_nogen, file, line);
    if ((a.flags & ~CHAT_PROMPT_HAS_BOS) != want_flags)
        test__fail(file, line, "prompt flags 0x%x, want 0x%x", a.flags, want_flags);
    free(a.text);
    free(b.text);
}
#define CHECK_FAMILY(tmpl, m, n, bos, eos, gen, nogen, flags)                                  \
    check_family((tmpl), (m), (n), (bos), (eos), (gen), (nogen), (flags), __FILE__, __LINE__)

/* The built-in template of a family gives the same text as the real one. */
static void check_builtin_matches(const char *name, const char *tmpl, const struct chat_message *m,
                                  size_t n, const char *bos, const char *eos, const char *file,
                                  int line)
{
    for (int gen = 0; gen < 2; gen++) {
        struct out a = apply(name, m, n, gen, bos, eos, true);
        struct out b = apply(tmpl, m, n, gen, bos, eos, true);
        if (!(a.tmpl_flags & CHAT_TEMPLATE_BUILTIN))
            test__fail(file, line, "'%s' is not a built-in name", name);
        if (!a.text || !b.text || strcmp(a.text, b.text))
            test__fail(file, line, "built-in %s differs from the real template (gen=%d)", name,
                       gen);
        if (a.text && b.text && strcmp(a.text, b.text)) {
            fputs("      builtin: \"", stderr);
            put_escaped(a.text);
            fputs("\"\n      real:    \"", stderr);
            put_escaped(b.text);
            fputs("\"\n", stderr);
        }
        free(a.text);
        free(b.text);
    }
}
#define CHECK_BUILTIN_MATCHES(name, tmpl, m, n, bos, eos)                                      \
    check_builtin_matches((name), (tmpl), (m), (n), (bos), (eos), __FILE__, __LINE__)

/* Direct interpretation (no fallbacks, no system merging) of a small template. */
static char *jinja(const char *tmpl, const struct chat_message *m, size_t n, int *rc, char *err,
                   size_t errlen)
{
    struct jinja_program *p = NULL;
    *rc = chat__jinja_parse(&p, tmpl, strlen(tmpl), err, errlen);
    if (*rc)
        return NULL;
    struct jinja_input in = {.messages = m, .n_messages = n, .bos_token = "<s>",
                             .eos_token = "</s>", .add_generation_prompt = true,
                             .max_output = 1 << 20, .max_memory = 64 << 20,
                             .max_steps = 1000000, .now = FIXED_NOW};
    char *out = NULL;
    size_t len = 0;
    *rc = chat__jinja_render(p, &in, &out, &len, err, errlen);
    chat__jinja_free(p);
    return out;
}

static void check_jinja(const char *tmpl, const char *want, const char *file, int line)
{
    int rc;
    char err[256] = "";
    char *got = jinja(tmpl, CONVO, CONVO_N, &rc, err, sizeof(err));
    if (rc)
        test__fail(file, line, "%s: %s", tmpl, err);
    else
        check_text(got, want, file, line);
    free(got);
}
#define CHECK_JINJA(tmpl, want) check_jinja((tmpl), (want), __FILE__, __LINE__)

static void check_jinja_error(const char *tmpl, int want_rc, const char *want_msg,
                              const char *file, int line)
{
    int rc;
    char err[256] = "";
    char *got = jinja(tmpl, CONVO, CONVO_N, &rc, err, sizeof(err));
    if (rc != want_rc)
        test__fail(file, line, "%.60s: rc %d (%s), want %d", tmpl, rc, err, want_rc);
    if (want_msg && !strstr(err, want_msg))
        test__fail(file, line, "%.60s: message \"%s\" lacks \"%s\"", tmpl, err, want_msg);
    free(got);
}
#define CHECK_JINJA_ERROR(tmpl, rc, msg) check_jinja_error((tmpl), (rc), (msg), __FILE__, __LINE__)

/* ---- real templates (as in the models' tokenizer_config.json / GGUF metadata) ---- */

/* Qwen/Qwen2-7B-Instruct */
static const char QWEN2[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/* Qwen/Qwen2.5-7B-Instruct (tool-aware) */
static const char QWEN25[] =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == "
    "'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are "
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- "
    "\"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user "
    "query.\\n\\nYou are provided with function signatures within <tools></tools> XML "
    "tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool "
    "| tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a "
    "json object with function name and arguments within <tool_call></tool_call> XML "
    "tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if "
    "messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + "
    "messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- "
    "'<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages "
    "%}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) "
    "or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- "
    "'<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- "
    "elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        "
    "{%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif "
    "%}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function "
    "is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- "
    "endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name "
    "}}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson "
    "}}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- "
    "'<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 "
    "== 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' "
    "}}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content "
    "}}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or "
    "(messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        "
    "{%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- "
    "'<|im_start|>assistant\\n' }}\n{%- endif %}\n";

/* meta-llama/Llama-2-7b-chat-hf */
static const char LLAMA2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] "
    "== 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != "
    "false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% "
    "endfor %}";

/* meta-llama/Meta-Llama-3-8B-Instruct */
static const char LLAMA3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/* meta-llama/Llama-3.2-3B-Instruct (tools, dates) */
static const char LLAMA32[] =
    "{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- "
    "endif %}\n{%- if not tools_in_user_message is defined %}\n    {%- set tools_in_user_message = "
    "true %}\n{%- endif %}\n{%- if not date_string is defined %}\n    {%- if strftime_now is "
    "defined %}\n        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n    "
    "    {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n{%- if not "
    "tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n\n{#- This block extracts the "
    "system message, so we can slot it into the right place. #}\n{%- if messages[0]['role'] == "
    "'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set "
    "messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif "
    "%}\n\n{#- System message #}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- "
    "if tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n{{- \"Cutting "
    "Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{%- "
    "if tools is not none and not tools_in_user_message %}\n    {{- \"You have access to the "
    "following functions. To call a function, please respond with JSON for a function call.\" "
    "}}\n    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of "
    "argument name and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t "
    "in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor "
    "%}\n{%- endif %}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n\n{#- Custom tools are passed "
    "in a user message with some extra guidance #}\n{%- if tools_in_user_message and not tools is "
    "none %}\n    {#- Extract the first user message so we can plug it in here #}\n    {%- if "
    "messages | length != 0 %}\n        {%- set first_user_message = messages[0]['content']|trim "
    "%}\n        {%- set messages = messages[1:] %}\n    {%- else %}\n        {{- "
    "raise_exception(\"Cannot put tools in the first user message when there's no first user "
    "message!\") }}\n{%- endif %}\n    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n  "
    "  {{- \"Given the following functions, please respond with a JSON for a function call \" }}\n "
    "   {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n    {{- "
    "'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name "
    "and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n  "
    "      {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor %}\n    {{- "
    "first_user_message + \"<|eot_id|>\"}}\n{%- endif %}\n\n{%- for message in messages %}\n    "
    "{%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) "
    "%}\n        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
    "message['content'] | trim + '<|eot_id|>' }}\n    {%- elif 'tool_calls' in message %}\n      "
    "  {%- if not message.tool_calls|length == 1 %}\n            {{- raise_exception(\"This model "
    "only supports single tool-calls at once!\") }}\n        {%- endif %}\n        {%- set "
    "tool_call = message.tool_calls[0].function %}\n        {{- "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n        {{- '{\"name\": \"' + "
    "tool_call.name + '\", ' }}\n        {{- '\"parameters\": ' }}\n        {{- "
    "tool_call.arguments | tojson }}\n        {{- \"}\" }}\n        {{- \"<|eot_id|>\" }}\n    {%- "
    "elif message.role == \"tool\" or message.role == \"ipython\" %}\n        {{- "
    "\"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n        {%- if message.content is "
    "mapping or message.content is iterable %}\n            {{- message.content | tojson }}\n     "
    "   {%- else %}\n            {{- message.content }}\n        {%- endif %}\n        {{- "
    "\"<|eot_id|>\" }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n";

/* mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1 (original: no system role) */
static const char MISTRAL_V1[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] "
    "' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}";

/* mistralai v1 template with a system prompt (Mistral-7B-Instruct-v0.2/Mixtral, updated) */
static const char MISTRAL_V1_SYS[] =
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = "
    "messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- "
    "set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in "
    "loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n      "
    "  {{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == "
    "'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' "
    "[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else "
    "%}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n   "
    " {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + "
    "eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are "
    "supported, with the exception of an initial optional system message!') }}\n    {%- endif "
    "%}\n{%- endfor %}\n";

/* mistralai/Mistral-Nemo-Instruct-2407 ("v3-tekken": system prompt in the last user turn) */
static const char MISTRAL_NEMO[] =
    "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = "
    "messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    "
    "{%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- "
    "set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | "
    "selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating "
    "user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- "
    "set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == "
    "\"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and "
    "message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != "
    "(ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, "
    "conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif "
    "%}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- "
    "bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" "
    "%}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- "
    "\"[AVAILABLE_TOOLS][\" }}\n            {%- for tool in tools %}\n                {%- set tool "
    "= tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n       "
    "         {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if "
    "val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n         "
    "           {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n     "
    "               {%- endif %}\n                    {%- if not loop.last %}\n                    "
    "    {{- \", \" }}\n                    {%- endif %}\n                {%- endfor %}\n          "
    "      {{- \"}}\" }}\n                {%- if not loop.last %}\n                    {{- \", \" "
    "}}\n                {%- else %}\n                    {{- \"]\" }}\n                {%- endif "
    "%}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n            {%- "
    "endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- "
    "\"[INST]\" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- "
    "else %}\n            {{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}\n        {%- "
    "endif %}\n    {%- elif (message.tool_calls is defined and message.tool_calls is not none) "
    "%}\n        {{- \"[TOOL_CALLS][\" }}\n        {%- for tool_call in message.tool_calls %}\n    "
    "        {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            "
    "{%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- "
    "raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n        "
    "    {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- "
    "if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n                "
    "{{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif "
    "message[\"role\"] == \"assistant\" %}\n        {{- message[\"content\"] + eos_token}}\n    "
    "{%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n        "
    "{%- if message.content is defined and message.content.content is defined %}\n            {%- "
    "set content = message.content.content %}\n        {%- else %}\n            {%- set content = "
    "message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS]{\"content\": ' + "
    "content|string + \", \" }}\n        {%- if not message.tool_call_id is defined or "
    "message.tool_call_id|length != 9 %}\n            {{- raise_exception(\"Tool call IDs should "
    "be alphanumeric strings with length 9!\") }}\n        {%- endif %}\n        {{- "
    "'\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        "
    "{{- raise_exception(\"Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n";

/* TinyLlama/TinyLlama-1.1B-Chat-v1.0 and HuggingFaceH4/zephyr-7b-beta */
static const char ZEPHYR[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' "
    "+ message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
    "'<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/* microsoft/Phi-3.5-mini-instruct */
static const char PHI35[] =
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] "
    "%}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' "
    "%}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' "
    "%}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/* microsoft/Phi-3-mini-4k-instruct (first release: no system role, drops it) */
static const char PHI3_MINI[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
    "%}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + "
    "'\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + "
    "'\n'}}{% endif %}{% endfor %}";

/* google/gemma-2-9b-it (raises on a system message) */
static const char GEMMA2[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% "
    "set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
    "'<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor "
    "%}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

/* tiiuae/falcon-11B */
static const char FALCON2[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ 'User: \n' + "
    "message['content'] }}\n{% elif message['role'] == 'system' %}\n{{ 'System: ' + "
    "message['content'] }}\n{% elif message['role'] == 'assistant' %}\n{{ 'Falcon:\n'  + "
    "message['content']}}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ "
    "'Falcon:' }}\n{% endif %}\n{% endfor %}";

/* Vicuna v1.1 (eachadea/vicuna-13b-1.1 ships none; the common community template) */
static const char VICUNA[] =
    "{%- for message in messages %}{%- if message['role'] == 'system' -%}{{- '' + "
    "message['content'] + '\n\n' -}}{%- else -%}{%- if message['role'] == 'user' -%}{{-'USER: ' + "
    "message['content'] + '\n'-}}{%- else -%}{{-'ASSISTANT: ' + message['content'] + '</s>\n' "
    "-}}{%- endif -%}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt "
    "-%}{{-'ASSISTANT:'-}}{%- endif -%}";

/* openchat/openchat-3.5-0106 */
static const char OPENCHAT[] =
    "{{ bos_token }}{% for message in messages %}{{ 'GPT4 Correct ' + message['role'].title() + "
    "': ' + message['content'] + '<|end_of_turn|>'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'GPT4 Correct Assistant:' }}{% endif %}";

/* deepseek-ai/deepseek-coder-33b-instruct (namespace, whitespace control) */
static const char DEEPSEEK_CODER[] =
    "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% "
    "endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n    {%- if "
    "message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n    {%- endif -%}\n{%- "
    "endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI programming assistant, "
    "utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer "
    "questions related to computer science. For politically sensitive questions, security and "
    "privacy issues, and other non-computer science questions, you will refuse to "
    "answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == "
    "'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == "
    "'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else "
    "%}\n{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    "
    "{%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}";

/* CohereForAI/c4ai-command-r-plus */
static const char COMMAND_R[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] "
    "%}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set "
    "loop_messages = messages %}{% set system_message = 'You are Command-R, a brilliant, "
    "sophisticated, AI-assistant trained to assist human users by providing thorough responses. "
    "You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% if system_message != false %}{{ "
    "'<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% "
    "endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % "
    "2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if "
    "message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + "
    "'<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ "
    "'<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% "
    "endif %}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}";

/* ---- families ---- */

TEST(chat_chatml_qwen)
{
    const char *body = "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                       "<|im_start|>user\nHello<|im_end|>\n"
                       "<|im_start|>assistant\nHi there<|im_end|>\n"
                       "<|im_start|>user\nWho are you<|im_end|>\n";
    char gen[512];
    snprintf(gen, sizeof(gen), "%s<|im_start|>assistant\n", body);
    CHECK_FAMILY(QWEN2, CONVO, CONVO_N, "", "<|im_end|>", gen, body, 0);
    CHECK_FAMILY(QWEN25, CONVO, CONVO_N, "", "<|im_end|>", gen, body, 0);
    /* without a system message the Qwen templates add their default one */
    CHECK_FAMILY(QWEN25, NOSYS, NOSYS_N, "", "<|im_end|>",
                 "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                 "assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
                 "Hi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
                 "<|im_start|>assistant\n",
                 "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                 "assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
                 "Hi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n", 0);
    CHECK_FAMILY(QWEN2, NOSYS, NOSYS_N, "", "<|im_end|>",
                 "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                 "Hello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\n"
                 "Who are you<|im_end|>\n<|im_start|>assistant\n",
                 "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                 "Hello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\n"
                 "Who are you<|im_end|>\n", 0);
    /* by name */
    CHECK_FAMILY("chatml", CONVO, CONVO_N, "", "", gen, body, 0);
}

TEST(chat_fixture_qwen2_gguf)
{
    char *path = test_shared_path("fixtures/models/qwen2-F16.gguf");
    struct gguf *g = NULL;
    char err[256];
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    struct chat_template *t = NULL;
    REQUIRE(chat_template_from_gguf(&t, g, NULL, err, sizeof(err)) == 0);
    CHECK_EQ_INT(chat_template_flags(t), 0);
    CHECK_EQ_INT(chat_template_family(t), CHAT_FAMILY_CHATML);
    CHECK(strstr(chat_template_source(t), "<|im_start|>") != NULL);
    struct chat_apply_params p = {.messages = CONVO, .n_messages = CONVO_N,
                                  .add_generation_prompt = true, .strict = true};
    struct chat_prompt pr;
    REQUIRE(chat_template_apply(t, &p, &pr, err, sizeof(err)) == 0);
    CHECK_TEXT(pr.text, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                        "<|im_start|>user\nHello<|im_end|>\n"
                        "<|im_start|>assistant\nHi there<|im_end|>\n"
                        "<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n");
    CHECK_EQ_INT(pr.len, strlen(pr.text));
    chat_prompt_free(&pr);
    CHECK(pr.text == NULL);
    chat_template_free(t);
    /* the override wins over the file's template */
    REQUIRE(chat_template_from_gguf(&t, g, "llama3", err, sizeof(err)) == 0);
    CHECK_EQ_INT(chat_template_family(t), CHAT_FAMILY_LLAMA3);
    chat_template_free(t);
    gguf_close(g);

    /* a model without a template: ChatML, flagged */
    path = test_shared_path("fixtures/models/llama-F32.gguf");
    REQUIRE(gguf_open(&g, path, err, sizeof(err)) == 0);
    REQUIRE(chat_template_from_gguf(&t, g, NULL, err, sizeof(err)) == 0);
    CHECK(chat_template_flags(t) & CHAT_TEMPLATE_UNKNOWN);
    CHECK_EQ_INT(chat_template_family(t), CHAT_FAMILY_CHATML);
    chat_template_free(t);
    gguf_close(g);
}

TEST(chat_llama2)
{
    const char *want = "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]"
                       " Hi there </s><s>[INST] Who are you [/INST]";
    /* Llama 2 has no generation prompt: the prompt ends with [/INST] either way */
    CHECK_FAMILY(LLAMA2, CONVO, CONVO_N, "<s>", "</s>", want, want, 0);
    CHECK_FAMILY(LLAMA2, NOSYS, NOSYS_N, "<s>", "</s>",
                 "<s>[INST] Hello [/INST] Hi there </s><s>[INST] Who are you [/INST]",
                 "<s>[INST] Hello [/INST] Hi there </s><s>[INST] Who are you [/INST]", 0);
    CHECK_BUILTIN_MATCHES("llama2", LLAMA2, CONVO, CONVO_N, "<s>", "</s>");
    CHECK_BUILTIN_MATCHES("llama2", LLAMA2, NOSYS, NOSYS_N, "<s>", "</s>");
}

TEST(chat_llama3)
{
    const char *body =
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
        "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>";
    char gen[1024];
    snprintf(gen, sizeof(gen), "%s<|start_header_id|>assistant<|end_header_id|>\n\n", body);
    CHECK_FAMILY(LLAMA3, CONVO, CONVO_N, "<|begin_of_text|>", "<|eot_id|>", gen, body, 0);
    CHECK_BUILTIN_MATCHES("llama3", LLAMA3, CONVO, CONVO_N, "<|begin_of_text|>", "<|eot_id|>");

    /* Llama 3.2: date line from strftime_now, system message trimmed into its block */
    char date[64];
    time_t now = FIXED_NOW;
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d %b %Y", &tm);
    char want32[1200], want32_nogen[1024];
    snprintf(want32_nogen, sizeof(want32_nogen),
             "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
             "Date: December 2023\nToday Date: %s\n\nYou are a helpful assistant<|eot_id|>"
             "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
             "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>",
             date);
    snprintf(want32, sizeof(want32), "%s<|start_header_id|>assistant<|end_header_id|>\n\n",
             want32_nogen);
    CHECK_FAMILY(LLAMA32, CONVO, CONVO_N, "<|begin_of_text|>", "<|eot_id|>", want32,
                 want32_nogen, 0);
}

TEST(chat_mistral_without_system_role)
{
    /* the original template raises on a system message: it is merged into the first turn */
    CHECK_FAMILY(MISTRAL_V1, CONVO, CONVO_N, "<s>", "</s>",
                 "<s>[INST] You are a helpful assistant\n\nHello [/INST]Hi there</s>"
                 "[INST] Who are you [/INST]",
                 "<s>[INST] You are a helpful assistant\n\nHello [/INST]Hi there</s>"
                 "[INST] Who are you [/INST]",
                 CHAT_PROMPT_MERGED_SYSTEM);
    CHECK_FAMILY(MISTRAL_V1, NOSYS, NOSYS_N, "<s>", "</s>",
                 "<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]",
                 "<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]", 0);
    CHECK_BUILTIN_MATCHES("mistral", MISTRAL_V1, CONVO, CONVO_N, "<s>", "</s>");
    CHECK_BUILTIN_MATCHES("mixtral", MISTRAL_V1, NOSYS, NOSYS_N, "<s>", "</s>");
}

TEST(chat_mistral_with_system_handling)
{
    /* the updated v1 template puts the system prompt into the first user turn itself */
    CHECK_FAMILY(MISTRAL_V1_SYS, CONVO, CONVO_N, "<s>", "</s>",
                 "<s> [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s>"
                 " [INST] Who are you [/INST]",
                 "<s> [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s>"
                 " [INST] Who are you [/INST]",
                 0);
    /* Nemo ("v3-tekken") puts it into the last user turn */
    CHECK_FAMILY(MISTRAL_NEMO, CONVO, CONVO_N, "<s>", "</s>",
                 "<s>[INST]Hello[/INST]Hi there</s>[INST]You are a helpful assistant\n\n"
                 "Who are you[/INST]",
                 "<s>[INST]Hello[/INST]Hi there</s>[INST]You are a helpful assistant\n\n"
                 "Who are you[/INST]",
                 0);
    CHECK_FAMILY(MISTRAL_NEMO, NOSYS, NOSYS_N, "<s>", "</s>",
                 "<s>[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]",
                 "<s>[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]", 0);
    /* roles that do not alternate: the template's own exception, reported in strict mode */
    const struct chat_message bad[] = {{"user", "a"}, {"user", "b"}};
    struct out o = apply(MISTRAL_NEMO, bad, 2, true, "<s>", "</s>", true);
    CHECK_EQ_INT(o.rc, CHAT_E_RAISED);
    CHECK(strstr(o.err, "conversation roles must alternate") != NULL);
    CHECK(o.text == NULL);
    /* and a fallback to the built-in Mistral template otherwise */
    o = apply(MISTRAL_NEMO, bad, 2, true, "<s>", "</s>", false);
    CHECK_EQ_INT(o.rc, 0);
    CHECK(o.flags & CHAT_PROMPT_FALLBACK);
    CHECK_TEXT(o.text, "<s>[INST] a [/INST][INST] b [/INST]");
    CHECK(strstr(o.err, "alternate") != NULL); /* the reason, for the caller to log */
    free(o.text);
}

TEST(chat_zephyr)
{
    const char *body = "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n"
                       "<|assistant|>\nHi there</s>\n<|user|>\nWho are you</s>\n";
    char gen[512];
    snprintf(gen, sizeof(gen), "%s<|assistant|>\n", body);
    CHECK_FAMILY(ZEPHYR, CONVO, CONVO_N, "<s>", "</s>", gen, body, 0);
    CHECK_BUILTIN_MATCHES("zephyr", ZEPHYR, CONVO, CONVO_N, "<s>", "</s>");
}

TEST(chat_phi3)
{
    const char *body = "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n"
                       "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n";
    char gen[512], nogen[512];
    snprintf(gen, sizeof(gen), "%s<|assistant|>\n", body);
    snprintf(nogen, sizeof(nogen), "%s<|endoftext|>", body);
    CHECK_FAMILY(PHI35, CONVO, CONVO_N, "<s>", "<|endoftext|>", gen, nogen, 0);
    CHECK_BUILTIN_MATCHES("phi3", PHI35, CONVO, CONVO_N, "<s>", "<|endoftext|>");
    /* the first Phi-3-mini template ignores system messages and opens the assistant turn */
    const char *mini = "<s><|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\n"
                       "Who are you<|end|>\n<|assistant|>\n";
    CHECK_FAMILY(PHI3_MINI, CONVO, CONVO_N, "<s>", "<|endoftext|>", mini, mini, 0);
}

TEST(chat_gemma_merges_system)
{
    const char *body = "<bos><start_of_turn>user\nYou are a helpful assistant\n\nHello"
                       "<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
                       "<start_of_turn>user\nWho are you<end_of_turn>\n";
    char gen[512];
    snprintf(gen, sizeof(gen), "%s<start_of_turn>model\n", body);
    CHECK_FAMILY(GEMMA2, CONVO, CONVO_N, "<bos>", "<eos>", gen, body,
                 CHAT_PROMPT_MERGED_SYSTEM);
    CHECK_BUILTIN_MATCHES("gemma", GEMMA2, CONVO, CONVO_N, "<bos>", "<eos>");
    CHECK_BUILTIN_MATCHES("gemma", GEMMA2, NOSYS, NOSYS_N, "<bos>", "<eos>");
    /* the built-in merges too */
    struct out o = apply("gemma", CONVO, CONVO_N, true, "<bos>", "<eos>", true);
    CHECK(o.flags & CHAT_PROMPT_MERGED_SYSTEM);
    CHECK(o.flags & CHAT_PROMPT_HAS_BOS);
    free(o.text);
    /* a lone system message becomes the user turn */
    o = apply(GEMMA2, CONVO, 1, true, "<bos>", "<eos>", true);
    CHECK_TEXT(o.text, "<bos><start_of_turn>user\nYou are a helpful assistant<end_of_turn>\n"
                       "<start_of_turn>model\n");
    free(o.text);
}

TEST(chat_falcon)
{
    CHECK_FAMILY(FALCON2, CONVO, CONVO_N, "", "<|endoftext|>",
                 "System: You are a helpful assistant\nUser: \nHello\nFalcon:\nHi there\n"
                 "User: \nWho are you\nFalcon:\n",
                 "System: You are a helpful assistant\nUser: \nHello\nFalcon:\nHi there\n"
                 "User: \nWho are you\n",
                 0);
    /* the built-in follows Falcon-180B-chat's documented format */
    CHECK_FAMILY("falcon", CONVO, CONVO_N, "", "<|endoftext|>",
                 "System: You are a helpful assistant\nUser: Hello\nFalcon: Hi there\n"
                 "User: Who are you\nFalcon:",
                 "System: You are a helpful assistant\nUser: Hello\nFalcon: Hi there\n"
                 "User: Who are you",
                 0);
}

TEST(chat_vicuna_and_openchat)
{
    CHECK_FAMILY(VICUNA, CONVO, CONVO_N, "<s>", "</s>",
                 "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\n"
                 "USER: Who are you\nASSISTANT:",
                 "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\n"
                 "USER: Who are you\n",
                 0);
    CHECK_BUILTIN_MATCHES("vicuna", VICUNA, CONVO, CONVO_N, "<s>", "</s>");
    CHECK_FAMILY(OPENCHAT, CONVO, CONVO_N, "<s>", "<|end_of_turn|>",
                 "<s>GPT4 Correct System: You are a helpful assistant<|end_of_turn|>GPT4 Correct "
                 "User: Hello<|end_of_turn|>GPT4 Correct Assistant: Hi there<|end_of_turn|>"
                 "GPT4 Correct User: Who are you<|end_of_turn|>GPT4 Correct Assistant:",
                 "<s>GPT4 Correct System: You are a helpful assistant<|end_of_turn|>GPT4 Correct "
                 "User: Hello<|end_of_turn|>GPT4 Correct Assistant: Hi there<|end_of_turn|>"
                 "GPT4 Correct User: Who are you<|end_of_turn|>",
                 0);
    CHECK_BUILTIN_MATCHES("openchat", OPENCHAT, CONVO, CONVO_N, "<s>", "<|end_of_turn|>");
}

TEST(chat_other_real_templates)
{
    CHECK_FAMILY(DEEPSEEK_CODER, CONVO, CONVO_N, "", "<|EOT|>",
                 "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n"
                 "<|EOT|>\n### Instruction:\nWho are you\n### Response:\n",
                 "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n"
                 "<|EOT|>\n### Instruction:\nWho are you\n",
                 0);
    CHECK_FAMILY(COMMAND_R, CONVO, CONVO_N, "", "",
                 "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
                 "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there"
                 "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you"
                 "<|END_OF_TURN_TOKEN|>",
                 0);
}

/* ---- names, detection, fallbacks ---- */

TEST(chat_family_names_and_detection)
{
    for (int f = 1; f < CHAT_FAMILY_COUNT; f++) {
        const char *name = chat_family_name((enum chat_family)f);
        CHECK_EQ_INT(chat_family_from_name(name), f);
        struct out o = apply(name, CONVO, CONVO_N, true, "<s>", "</s>", true);
        CHECK_EQ_INT(o.rc, 0);
        CHECK(o.text && o.text[0]);
        CHECK_EQ_INT(o.family, f);
        CHECK_EQ_INT(o.tmpl_flags, CHAT_TEMPLATE_BUILTIN);
        free(o.text);
    }
    CHECK_STR(chat_family_end_of_turn(CHAT_FAMILY_CHATML), "<|im_end|>");
    CHECK_STR(chat_family_end_of_turn(CHAT_FAMILY_LLAMA3), "<|eot_id|>");
    CHECK_STR(chat_family_end_of_turn(CHAT_FAMILY_GEMMA), "<end_of_turn>");
    CHECK(chat_family_end_of_turn(CHAT_FAMILY_LLAMA2) == NULL);
    CHECK(chat_family_end_of_turn(CHAT_FAMILY_NONE) == NULL);
    struct out named = apply(" gemma\n", NOSYS, NOSYS_N, true, "", "", true);
    CHECK_EQ_INT(named.family, CHAT_FAMILY_GEMMA);
    CHECK_EQ_INT(named.tmpl_flags, CHAT_TEMPLATE_BUILTIN);
    free(named.text);
    CHECK_EQ_INT(chat_family_from_name("LLAMA-3"), CHAT_FAMILY_LLAMA3);
    CHECK_EQ_INT(chat_family_from_name("Qwen"), CHAT_FAMILY_CHATML);
    CHECK_EQ_INT(chat_family_from_name("mixtral"), CHAT_FAMILY_MISTRAL);
    CHECK_EQ_INT(chat_family_from_name("nonesuch"), CHAT_FAMILY_NONE);
    CHECK_EQ_INT(chat_family_from_name(""), CHAT_FAMILY_NONE);
    CHECK_STR(chat_family_name(CHAT_FAMILY_NONE), "none");
    CHECK_STR(chat_family_name((enum chat_family)99), "none");

    const struct {
        const char *tmpl;
        enum chat_family f;
    } det[] = {
        {QWEN2, CHAT_FAMILY_CHATML},     {QWEN25, CHAT_FAMILY_CHATML},
        {LLAMA2, CHAT_FAMILY_LLAMA2},    {LLAMA3, CHAT_FAMILY_LLAMA3},
        {LLAMA32, CHAT_FAMILY_LLAMA3},   {MISTRAL_V1, CHAT_FAMILY_MISTRAL},
        {MISTRAL_NEMO, CHAT_FAMILY_MISTRAL}, {ZEPHYR, CHAT_FAMILY_ZEPHYR},
        {PHI35, CHAT_FAMILY_PHI3},       {GEMMA2, CHAT_FAMILY_GEMMA},
        {FALCON2, CHAT_FAMILY_FALCON},   {VICUNA, CHAT_FAMILY_VICUNA},
        {OPENCHAT, CHAT_FAMILY_OPENCHAT}, {COMMAND_R, CHAT_FAMILY_NONE},
    };
    for (size_t i = 0; i < sizeof(det) / sizeof(det[0]); i++) {
        CHECK_EQ_INT(chat_family_detect(det[i].tmpl, strlen(det[i].tmpl)), det[i].f);
        /* a template that parses keeps its detected family for the run-time fallback */
        struct chat_template *t = NULL;
        char err[256];
        REQUIRE(chat_template_new(&t, det[i].tmpl, err, sizeof(err)) == 0);
        CHECK_EQ_INT(chat_template_flags(t), 0);
        CHECK_EQ_INT(chat_template_family(t), det[i].f);
        CHECK_STR(chat_template_source(t), det[i].tmpl);
        chat_template_free(t);
    }
}

TEST(chat_malformed_templates_fall_back)
{
    const struct {
        const char *tmpl;
        const char *msg;
        enum chat_family family;
        unsigned flags;
    } cases[] = {
        /* unterminated tags, with family markers: the family's built-in */
        {"{% for message in messages %}<|im_start|>{{ message['content'] }}", "missing 'endfor'",
         CHAT_FAMILY_CHATML, CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK},
        {"<start_of_turn>{{ message['content'] ", "unterminated", CHAT_FAMILY_GEMMA,
         CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK},
        /* an unknown filter */
        {"[INST] {{ messages[0]['content'] | frobnicate }} [/INST]", "unknown filter 'frobnicate'",
         CHAT_FAMILY_MISTRAL, CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK},
        /* no markers at all: ChatML with the warning flag */
        {"{% if x %}hello", "missing 'endif'", CHAT_FAMILY_CHATML,
         CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK | CHAT_TEMPLATE_UNKNOWN},
        {"{{ x | }}", "filter name", CHAT_FAMILY_CHATML,
         CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK | CHAT_TEMPLATE_UNKNOWN},
        /* a name that is no family */
        {"pirate", "unknown chat template name", CHAT_FAMILY_CHATML,
         CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK | CHAT_TEMPLATE_UNKNOWN},
        {"", "no chat template", CHAT_FAMILY_CHATML,
         CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct out o = apply(cases[i].tmpl, CONVO, CONVO_N, true, "<s>", "</s>", false);
        CHECK_EQ_INT(o.rc, 0);
        CHECK_EQ_INT(o.family, cases[i].family);
        CHECK_EQ_INT(o.tmpl_flags, cases[i].flags);
        CHECK(o.text && o.text[0]);
        free(o.text);
        struct chat_template *t = NULL;
        char err[256] = "";
        REQUIRE(chat_template_new(&t, cases[i].tmpl, err, sizeof(err)) == 0);
        if (!strstr(err, cases[i].msg))
            test__fail(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].msg);
        chat_template_free(t);
    }
    struct chat_template *t = NULL;
    REQUIRE(chat_template_new(&t, NULL, NULL, 0) == 0);
    CHECK(chat_template_flags(t) & CHAT_TEMPLATE_UNKNOWN);
    chat_template_free(t);
    chat_template_free(NULL);
    chat_prompt_free(NULL);
}

TEST(chat_runtime_errors)
{
    /* strict: the error; otherwise the family's built-in, flagged */
    const char *tmpl = "{% for m in messages %}<|im_start|>{{ m.content + 1 }}{% endfor %}";
    struct out o = apply(tmpl, CONVO, CONVO_N, true, "", "", true);
    CHECK_EQ_INT(o.rc, CHAT_E_RUNTIME);
    CHECK(strstr(o.err, "line 1") && strstr(o.err, "unsupported operand types for +"));
    o = apply(tmpl, CONVO, CONVO_N, true, "", "", false);
    CHECK_EQ_INT(o.rc, 0);
    CHECK(o.flags & CHAT_PROMPT_FALLBACK);
    CHECK(strstr(o.text, "<|im_start|>assistant\n") != NULL);
    free(o.text);
    /* raise_exception with a message */
    o = apply("{{ raise_exception('no ' + 'way') }}", NOSYS, NOSYS_N, true, "", "", true);
    CHECK_EQ_INT(o.rc, CHAT_E_RAISED);
    CHECK(strstr(o.err, "no way") != NULL);
    /* bad arguments */
    struct chat_template *t = NULL;
    REQUIRE(chat_template_new(&t, "chatml", NULL, 0) == 0);
    const struct chat_message bad[] = {{"user", NULL}};
    struct chat_apply_params p = {.messages = bad, .n_messages = 1};
    struct chat_prompt pr = {0};
    CHECK_EQ_INT(chat_template_apply(t, &p, &pr, NULL, 0), CHAT_E_INVALID);
    CHECK_EQ_INT(chat_template_apply(t, NULL, &pr, NULL, 0), CHAT_E_INVALID);
    /* no messages is fine */
    p = (struct chat_apply_params){.add_generation_prompt = true};
    REQUIRE(chat_template_apply(t, &p, &pr, NULL, 0) == 0);
    CHECK_TEXT(pr.text, "<|im_start|>assistant\n");
    chat_prompt_free(&pr);
    chat_template_free(t);
    CHECK_STR(chat_strerror(CHAT_E_RAISED), "chat template raised an exception");
}

/* ---- the Jinja subset ---- */

TEST(chat_jinja_whitespace_control)
{
    CHECK_JINJA("a  {{- 'b' -}}  c", "abc");
    CHECK_JINJA("a\n  {%- if true %}b{% endif -%}\n  c", "abc");
    /* trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it */
    CHECK_JINJA("{% if true %}\nx\n{% endif %}\ny", "x\ny");
    CHECK_JINJA("  {% if true %}x{% endif %}", "x");
    CHECK_JINJA("a\n    {% if true %}\n    b\n    {% endif %}\nc", "a\n    b\nc");
    /* not after an expression on the same line, and {%+ keeps the indentation */
    CHECK_JINJA("{{ 'x' }}  {% if true %}y{% endif %}", "x  y");
    CHECK_JINJA("  {%+ if true %}y{% endif %}", "  y");
    /* variable tags keep their newline; comments are removed like blocks */
    CHECK_JINJA("{{ 'x' }}\ny", "x\ny");
    CHECK_JINJA("a {# note #}\nb", "a b");
    CHECK_JINJA("a\n  {#- note -#}\n  b", "ab");
    CHECK_JINJA("{% raw %}{{ not evaluated }}{% endraw %}", "{{ not evaluated }}");
    CHECK_JINJA("{{ {'a': {'b': 1}}['a']['b'] }}", "1");
    CHECK_JINJA("{{- \"}}\" }}", "}}");
}

TEST(chat_jinja_expressions)
{
    CHECK_JINJA("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} "
                "{{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }}",
                "7 9 3 -4 1 2 1024 3.5 2.0");
    CHECK_JINJA("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2, 3] }}", "a1None ababab [1, 2, 3]");
    CHECK_JINJA("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }}",
                "True False True True");
    CHECK_JINJA("{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} "
                "{{ 'x' not in 'abc' }}",
                "True True True True");
    CHECK_JINJA("{{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ 0 or [] }}",
                "x y True []");
    CHECK_JINJA("{{ 'yes' if 1 > 0 else 'no' }}{{ 'never' if false }}", "yes");
    CHECK_JINJA("{{ messages[-1]['content'] }} {{ messages[1].role }} {{ messages[9] }}.",
                "Who are you user .");
    CHECK_JINJA("{{ messages[1:3] | length }} {{ 'hello'[1:4] }} {{ 'hello'[::-1] }} "
                "{{ [1,2,3,4][::2] }} {{ 'héllo'[1] }} {{ 'abc'[-1] }}",
                "2 ell olleh [1, 3] é c");
    CHECK_JINJA("{{ none }} {{ true }} {{ 1.5 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ [1, 'a', none] }} "
                "{{ {'k': \"it's\"} }}",
                "None True 1.5 1e+20 0.30000000000000004 [1, 'a', None] {'k': \"it's\"}");
    CHECK_JINJA("{{ 'a\\tb\\n' | length }} {{ '\\u00e9' }} {{ \"q\\\"\" }} {{ 'x' 'y' }}",
                "4 é q\" xy");
    CHECK_JINJA("{{ undefined_name }}|{{ undefined_name.attr.deeper }}|{{ messages[0].nope }}", "||");
    /* invalid UTF-8 (found by fuzzing): a leading run of continuation bytes is one character,
     * the same for counting, indexing, slicing and iterating */
    CHECK_JINJA("{% set s = '\xaa\xaa" "b\xc3' %}{{ s | length }} {{ s | list | length }} "
                "{% for c in s %}[{{ c | length }}]{% endfor %} {{ s[1] }} {{ s[-1:] | length }} "
                "{{ s | reverse | length }}",
                "3 3 [1][1][1] b 1 2"); /* reversed, the stray bytes follow 'b': 2 characters */
}

TEST(chat_jinja_statements)
{
    CHECK_JINJA("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first | int }}"
                "{{ loop.last | int }}{{ loop.length }}{{ loop.revindex }} {% endfor %}",
                "101044 210043 320042 430141 ");
    CHECK_JINJA("{% for m in messages if m.role == 'user' %}{{ loop.index }}{{ m.content }};"
                "{% else %}none{% endfor %}",
                "1Hello;2Who are you;");
    CHECK_JINJA("{% for x in [] %}a{% else %}empty{% endfor %}", "empty");
    CHECK_JINJA("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}"
                "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
                "13");
    CHECK_JINJA("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}",
                "a=1,b=2,");
    CHECK_JINJA("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined "
                "else '-' }}{% endfor %}",
                "-systemuserassistant");
    CHECK_JINJA("{% for x in 'ab' %}{{ x }}{{ loop.cycle('+', '-') }}{% endfor %}", "a+b-");
    /* a loop's assignments stay inside it; a namespace carries state out */
    CHECK_JINJA("{% set n = 0 %}{% for m in messages %}{% set n = n + 1 %}{% endfor %}{{ n }}",
                "0");
    CHECK_JINJA("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                "{% endfor %}{{ ns.n }}",
                "4");
    CHECK_JINJA("{% if false %}a{% elif 0 %}b{% elif 'x' %}c{% else %}d{% endif %}", "c");
    CHECK_JINJA("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]", "[inner 2]");
    CHECK_JINJA("{% set x | upper %}abc{% endset %}{{ x }}", "ABC");
    CHECK_JINJA("{% filter upper %}shout {{ 'it' }}{% endfilter %}", "SHOUT IT");
    CHECK_JINJA("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                "{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy') }}",
                "Hi Bob! Hi Al? Hi Cy!");
    CHECK_JINJA("{% generation %}kept{% endgeneration %}", "kept");
    CHECK_JINJA("{% set a = 1, 2 %}{{ a }} {{ (1,) }} {{ () }}", "(1, 2) (1,) ()");
}

TEST(chat_jinja_filters_tests_methods)
{
    CHECK_JINJA("{{ '  x  ' | trim }}|{{ 'aXb' | upper }}|{{ 'AbC' | lower }}|"
                "{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ 'xxhixx' | trim('x') }}",
                "x|AXB|abc|Hello World|Hello|hi");
    CHECK_JINJA("{{ messages | length }} {{ 'héllo' | length }} {{ undefined_x | length }} "
                "{{ {'a': 1} | count }}",
                "4 5 0 1");
    CHECK_JINJA("{{ undefined_x | default('d') }} {{ '' | default('e', true) }} "
                "{{ 'v' | d('x') }}",
                "d e v");
    CHECK_JINJA("{{ [1, 2, 3] | join('-') }} {{ messages | map(attribute='role') | join(',') }}",
                "1-2-3 system,user,assistant,user");
    CHECK_JINJA("{{ messages | selectattr('role', 'equalto', 'user') | list | length }} "
                "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | "
                "join(' ') }} {{ [0, 1, 2, 3] | select('odd') | list }} "
                "{{ [0, '', 'a'] | select | list }}{{ [] | select | list }}",
                "2 system assistant [1, 3] ['a'][]");
    CHECK_JINJA("{{ messages | first | attr('role') }} {{ (messages | last).content }} "
                "{{ 'abc' | first }} {{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} "
                "{{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 2] | reverse | list }}",
                "system Who are you a [1, 2, 3] ['A', 'b', 'c'] [3, 2, 1] [2, 1]");
    CHECK_JINJA("{{ {'b': 1, 'a': 2} | dictsort }} {{ {'a': 1} | items | list }} "
                "{{ [1, 2, 2, 'A', 'a'] | unique | list }} {{ [4, 9, 2] | max }} "
                "{{ [4, 9, 2] | min }} {{ [1, 2, 3] | sum }}",
                "[('a', 2), ('b', 1)] [('a', 1)] [1, 2, 'A'] 9 2 6");
    CHECK_JINJA("{{ 'a-b-c' | replace('-', '+') }} {{ '3' | int + 1 }} {{ '2.5' | float }} "
                "{{ 'x' | int }} {{ 3.7 | int }} {{ -3 | abs }} {{ 2.567 | round(2) }} "
                "{{ 42 | string | length }} {{ '<a>' | e }} {{ 'two words' | wordcount }}",
                "a+b+c 4 2.5 0 3 3 2.57 2 &lt;a&gt; 2");
    CHECK_JINJA("{{ {'a': [1, 2.5, true, none], 'b': 'q\"\\n\u00e9'} | tojson }}",
                "{\"a\": [1, 2.5, true, null], \"b\": \"q\\\"\\n\u00e9\"}");
    CHECK_JINJA("{{ {'a': [1, {}], 'b': []} | tojson(indent=2) }}",
                "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
    CHECK_JINJA("{{ 'line1\\nline2' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}",
                "line1\n  line2|  a\n  b");
    CHECK_JINJA("{{ x is defined }} {{ messages is defined }} {{ none is none }} "
                "{{ 'a' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} "
                "{{ {} is mapping }} {{ [] is iterable }} {{ 3 is odd }} {{ 4 is even }} "
                "{{ 9 is divisibleby 3 }} {{ 'x' is not none }} {{ 2 is gt(1) }} "
                "{{ true is boolean }} {{ 'ab' is lower }} {{ messages is sequence }} "
                "{{ raise_exception is callable }}",
                "False True True True True True True True True True True True True True True "
                "True True True");
    CHECK_JINJA("{{ '  a b  '.strip() }}|{{ 'xay'.lstrip('x') }}|{{ 'ab'.upper() }}|"
                "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|"
                "{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}|"
                "{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'hello'.find('l') }}|{{ '-'.join(['a', 'b']) }}|"
                "{{ 'user'.title() }}",
                "a b|ay|AB|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|True|True|bba|2|a-b|User");
    CHECK_JINJA("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('z', 'dflt') }} {{ {'a': 1}.keys() | list }} "
                "{{ {'a': 1}.values() | list }} {{ range(3) | list }} {{ range(1, 7, 2) | list }} "
                "{{ range(3, 0, -1) | list }} {{ dict(a=1) }} {{ namespace(a=1).a }}",
                "1 dflt ['a'] [1] [0, 1, 2] [1, 3, 5] [3, 2, 1] {'a': 1} 1");
    CHECK_JINJA("{{ strftime_now('%Y') | length }}", "4");
    /* arithmetic at the edges: big exponents, steps and bounds stay exact and fast */
    CHECK_JINJA("{{ 1 ** 1000000000000000000 }} {{ (-1) ** 999999999999999999 }} {{ 0 ** 0 }} "
                "{{ 3 ** 39 }} {{ 2 ** 0.5 > 1.41 }}",
                "1 -1 1 4052555153018976267 True");
    CHECK_JINJA("{{ [1, 2, 3][::9223372036854775807] }} {{ [1, 2, 3][::-9223372036854775807] }} "
                "{{ 'abc'[-9223372036854775807:9223372036854775807] }} {{ [] < [1] }} "
                "{{ [] == [] }} {{ [1, 2] > [1] }} {{ ['a'] < ['b'] }}",
                "[1] [3] abc True True True True");
    CHECK_JINJA("{{ range(0, 9223372036854775807, 4611686018427387904) | list }} "
                "{{ range(9223372036854775806, -9223372036854775807, -9223372036854775807) | list }}",
                "[0, 4611686018427387904] [9223372036854775806, -1]");
    CHECK_JINJA("{{ range(0, 4611686018427387905, 4611686018427387904) | list }} "
                "{{ range(-9223372036854775807 - 1, 9223372036854775807, 9223372036854775807) "
                "| length }}",
                "[0, 4611686018427387904] 3");
}

TEST(chat_jinja_syntax_errors)
{
    const struct {
        const char *tmpl;
        const char *msg;
    } bad[] = {
        {"{{", "unterminated"},
        {"{{ 'abc }}", "unterminated string"},
        {"{% if %}", "expected an expression"},
        {"{% if x %}", "missing 'endif'"},
        {"{% for x in %}{% endfor %}", "expected an expression"},
        {"{% for x y %}{% endfor %}", "expected 'in'"},
        {"{% for a, b, c in x %}{% endfor %}", "at most two"},
        {"{% endif %}", "unexpected tag"},
        {"{% if x %}{% endfor %}", "unexpected tag"},
        {"{{ a[ }}", "unbalanced brackets"},
        {"{{ x | frob }}", "unknown filter 'frob'"},
        {"{{ x is frob }}", "unknown test 'frob'"},
        {"{{ x is }}", "test name"},
        {"{# comment", "unterminated comment"},
        {"{% set %}", "variable name"},
        {"{% set a, b = 1, 2 %}", "tuple assignment"},
        {"{% macro %}", "macro name"},
        {"{% macro f( %}{% endmacro %}", "parameter name"},
        {"{% break %}", "outside a loop"},
        {"{% raw %}no end", "raw"},
        {"{{ 99999999999999999999 }}", "out of range"},
        {"{{ 1 + }}", "expected an expression"},
        {"{{ f(a=1, 2) }}", "positional argument after keyword"},
        {"{% frobnicate %}", "unknown or unexpected tag"},
        {"{{ 'a' ! }}", "unexpected character"},
        {"{% for x in y recursive %}{% endfor %}", "recursive"},
        {"{{ x[1:2:3:4] }}", "bad slice"},
        {"{{ '\\x4' }}", "escape"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jinja_program *p = NULL;
        char err[256] = "";
        int rc = chat__jinja_parse(&p, bad[i].tmpl, strlen(bad[i].tmpl), err, sizeof(err));
        if (rc != CHAT_E_SYNTAX || p)
            test__fail(__FILE__, __LINE__, "%s: rc %d (%s)", bad[i].tmpl, rc, err);
        if (!strstr(err, bad[i].msg))
            test__fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", bad[i].tmpl, err,
                       bad[i].msg);
        CHECK(strncmp(err, "line ", 5) == 0);
    }
    /* the line number points at the problem */
    struct jinja_program *p = NULL;
    char err[256] = "";
    CHECK_EQ_INT(chat__jinja_parse(&p, "a\nb\n{{ x | nope }}", 17, err, sizeof(err)),
                 CHAT_E_SYNTAX);
    CHECK(strncmp(err, "line 3:", 7) == 0);
}

TEST(chat_jinja_runtime_errors)
{
    CHECK_JINJA_ERROR("{{ 'a' + 1 }}", CHAT_E_RUNTIME, "unsupported operand types for +");
    CHECK_JINJA_ERROR("{{ 1 / 0 }}", CHAT_E_RUNTIME, "division by zero");
    CHECK_JINJA_ERROR("{{ 'a' < 1 }}", CHAT_E_RUNTIME, "cannot compare");
    CHECK_JINJA_ERROR("{{ nosuch() }}", CHAT_E_RUNTIME, "'nosuch' is not a function");
    CHECK_JINJA_ERROR("{{ 'abc'.nosuch() }}", CHAT_E_RUNTIME, "unsupported method 'nosuch'");
    CHECK_JINJA_ERROR("{% for x in 5 %}{% endfor %}", CHAT_E_RUNTIME, "not iterable");
    CHECK_JINJA_ERROR("{% set x = 1 %}{% set x.a = 2 %}", CHAT_E_RUNTIME, "not a namespace");
    CHECK_JINJA_ERROR("{{ raise_exception('boom') }}", CHAT_E_RAISED, "boom");
    CHECK_JINJA_ERROR("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}", CHAT_E_RUNTIME,
                      "too many arguments");
    CHECK_JINJA_ERROR("{{ 9223372036854775807 + 1 }}", CHAT_E_RUNTIME, "overflow");
    CHECK_JINJA_ERROR("{{ range(0) | list }}{{ range(1, 2, 0) }}", CHAT_E_RUNTIME, "zero");
    CHECK_JINJA_ERROR("{{ 3 ** 40 }}", CHAT_E_RUNTIME, "overflow");
    CHECK_JINJA_ERROR("{{ [1] < ['a'] }}", CHAT_E_RUNTIME, "cannot compare");
    CHECK_JINJA_ERROR("{{ [1, 2] | map('nosuch') | list }}", CHAT_E_RUNTIME, "unknown filter");
}

/* ---- hostile templates: bounded time, memory, output and depth ---- */

TEST(chat_hostile_templates_are_bounded)
{
    const struct {
        const char *tmpl;
        const char *msg;
    } cases[] = {
        /* time: 10^10 iterations */
        {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "steps"},
        /* memory: a string doubling 64 times */
        {"{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}"
         "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
         "bytes"},
        /* output */
        {"{% for i in range(1000000) %}{{ messages[0].content }}{% endfor %}", "output longer"},
        {"{{ 'x' * 1000000000000 }}", "too long"},
        {"{{ range(1000000000) | length }}", "range"},
        /* recursion */
        {"{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}", "nested too deeply"},
        /* a cycle through a namespace */
        {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}", "nested too deeply"},
        {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "nested too deeply"},
        /* nested lists built in a loop, then printed */
        {"{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
         "{% endfor %}{{ ns.l }}",
         "nested too deeply"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct out o = apply(cases[i].tmpl, CONVO, CONVO_N, true, "", "", true);
        CHECK_EQ_INT(o.rc, CHAT_E_LIMIT);
        if (!strstr(o.err, cases[i].msg))
            test__fail(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i, o.err,
                       cases[i].msg);
        CHECK(o.text == NULL);
        /* not strict: the documented fallback (ChatML here), never a crash */
        o = apply(cases[i].tmpl, CONVO, CONVO_N, true, "", "", false);
        CHECK_EQ_INT(o.rc, 0);
        CHECK(o.flags & CHAT_PROMPT_FALLBACK);
        free(o.text);
    }
    /* a caller's output bound */
    struct chat_template *t = NULL;
    REQUIRE(chat_template_new(&t, "chatml", NULL, 0) == 0);
    struct chat_apply_params p = {.messages = CONVO, .n_messages = CONVO_N, .max_output = 20,
                                  .strict = true};
    struct chat_prompt pr;
    CHECK_EQ_INT(chat_template_apply(t, &p, &pr, NULL, 0), CHAT_E_LIMIT);
    chat_template_free(t);
}

TEST(chat_hostile_parse_depth)
{
    /* deep nesting is refused by the parser, not by the stack */
    enum { N = 200000 };
    char *s = malloc(4 * N + 16);
    REQUIRE(s);
    size_t k = 0;
    k += (size_t)snprintf(s + k, 8, "{{ ");
    for (int i = 0; i < N; i++)
        s[k++] = '(';
    s[k++] = '1';
    for (int i = 0; i < N; i++)
        s[k++] = ')';
    k += (size_t)snprintf(s + k, 8, " }}");
    struct jinja_program *p = NULL;
    char err[256];
    CHECK_EQ_INT(chat__jinja_parse(&p, s, k, err, sizeof(err)), CHAT_E_LIMIT);
    CHECK(strstr(err, "nested too deeply") != NULL);
    /* blocks too */
    k = 0;
    for (int i = 0; i < 1000; i++)
        k += (size_t)snprintf(s + k, 32, "{%% if x %%}");
    CHECK_EQ_INT(chat__jinja_parse(&p, s, k, err, sizeof(err)), CHAT_E_LIMIT);
    /* and unary chains */
    k = 0;
    k += (size_t)snprintf(s + k, 8, "{{ ");
    for (int i = 0; i < N; i++)
        k += (size_t)snprintf(s + k, 8, "not ");
    k += (size_t)snprintf(s + k, 8, "1 }}");
    CHECK_EQ_INT(chat__jinja_parse(&p, s, k, err, sizeof(err)), CHAT_E_LIMIT);
    free(s);
    /* the public constructor falls back on it */
    struct chat_template *t = NULL;
    REQUIRE(chat_template_new(&t, "{{ ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
                                  "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
                                  "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
                                  "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((( }}",
                              err, sizeof(err)) == 0);
    CHECK(chat_template_flags(t) & CHAT_TEMPLATE_FALLBACK);
    chat_template_free(t);
}

TEST(chat_jinja_fuzz_smoke)
{
    /* Mutations of real templates: whatever they become, parse and render return cleanly. */
    const char *seeds[] = {QWEN25, LLAMA32, MISTRAL_NEMO, GEMMA2, DEEPSEEK_CODER, ZEPHYR};
    uint64_t s = 12345;
    char *buf = malloc(16384);
    REQUIRE(buf);
    int rendered = 0;
    for (int iter = 0; iter < 3000; iter++) {
        const char *seed = seeds[iter % 6];
        size_t n = strlen(seed);
        if (n >= 16384)
            n = 16383;
        memcpy(buf, seed, n);
        for (int m = 0; m < 1 + iter % 4; m++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(s >> 33) % n;
            const char pool[] = "{}%#-+()[]'\"|.,:~ \nxnot in is if for endfor endif";
            buf[at] = pool[(s >> 20) % (sizeof(pool) - 1)];
        }
        buf[n] = 0;
        struct out o = apply(buf, CONVO, CONVO_N, iter & 1, "<s>", "</s>", false);
        CHECK(o.rc == 0 || o.rc == CHAT_E_NOMEM);
        rendered += o.rc == 0;
        free(o.text);
    }
    CHECK_EQ_INT(rendered, 3000);
    free(buf);
}
