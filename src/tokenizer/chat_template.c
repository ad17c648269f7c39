/* Chat templates: families, detection by markers, built-in templates, fallbacks, the public API. */
#include "tokenizer/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/gguf.h"
#include "tokenizer/chat_jinja.h"

const char *chat_strerror(int err)
{
    switch (err) {
    case CHAT_OK: return "ok";
    case CHAT_E_INVALID: return "invalid argument";
    case CHAT_E_NOMEM: return "out of memory";
    case CHAT_E_SYNTAX: return "chat template syntax error";
    case CHAT_E_RUNTIME: return "chat template error while rendering";
    case CHAT_E_RAISED: return "chat template raised an exception";
    case CHAT_E_LIMIT: return "chat template exceeded a limit";
    }
    return "unknown chat template error";
}

/* ---- built-in templates ---- */

struct family_info {
    const char *name;
    const char *aliases; /* space-separated */
    bool merge_system;   /* no system role: the system message goes into the first user turn */
    const char *source;
    const char *end_of_turn; /* NULL: EOS */
};

/* Each is the family's published format written as a Jinja template that never raises. */
static const struct family_info families[CHAT_FAMILY_COUNT] = {
    [CHAT_FAMILY_NONE] = {"none", "", false, NULL},
    [CHAT_FAMILY_CHATML] = {
        "chatml", "qwen qwen2 qwen2.5 im_start hermes", false,
        "{%- for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}",
        "<|im_end|>"},
    [CHAT_FAMILY_LLAMA2] = {
        "llama2", "llama-2 llama2-chat", false,
        "{%- if messages and messages[0]['role'] == 'system' %}"
        "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
        "{%- else %}"
        "{%- set system_message = false %}{%- set loop_messages = messages %}"
        "{%- endif %}"
        "{%- for message in loop_messages %}"
        "{%- if loop.index0 == 0 and system_message != false %}"
        "{%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{%- else %}{%- set content = message['content'] %}{%- endif %}"
        "{%- if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{ ' ' + content | trim + ' ' + eos_token }}"
        "{%- endif %}"
        "{%- endfor %}",
        NULL},
    [CHAT_FAMILY_LLAMA3] = {
        "llama3", "llama-3 llama3.1 llama3.2 llama-3.1 llama-3.2", false,
        "{%- for message in messages %}"
        "{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        " + message['content'] | trim + '<|eot_id|>' %}"
        "{%- if loop.index0 == 0 %}{%- set content = bos_token + content %}{%- endif %}"
        "{{ content }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
        "{%- endif %}",
        "<|eot_id|>"},
    [CHAT_FAMILY_MISTRAL] = {
        "mistral", "mixtral mistral-instruct mistral-v1", true,
        "{{ bos_token }}"
        "{%- for message in messages %}"
        "{%- if message['role'] == 'user' %}"
        "{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token }}"
        "{%- endif %}"
        "{%- endfor %}",
        NULL},
    [CHAT_FAMILY_ZEPHYR] = {
        "zephyr", "tinyllama", false,
        "{%- for message in messages %}"
        "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- endif %}",
        NULL},
    [CHAT_FAMILY_PHI3] = {
        "phi3", "phi-3 phi3.5 phi-3.5", false,
        "{%- for message in messages %}"
        "{%- if message['role'] == 'system' and message['content'] %}"
        "{{ '<|system|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{%- elif message['role'] == 'user' %}"
        "{{ '<|user|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{ '<|assistant|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- else %}{{ eos_token }}"
        "{%- endif %}",
        "<|end|>"},
    [CHAT_FAMILY_GEMMA] = {
        "gemma", "gemma2 gemma-2", true,
        "{{ bos_token }}"
        "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' %}{%- set role = 'model' %}"
        "{%- else %}{%- set role = message['role'] %}{%- endif %}"
        "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{%- endif %}",
        "<end_of_turn>"},
    [CHAT_FAMILY_FALCON] = {
        "falcon", "falcon-chat falcon-instruct", false,
        "{%- for message in messages %}"
        "{%- if not loop.first %}{{ '\\n' }}{%- endif %}"
        "{%- if message['role'] == 'system' %}{{ 'System: ' }}"
        "{%- elif message['role'] == 'user' %}{{ 'User: ' }}"
        "{%- elif message['role'] == 'assistant' %}{{ 'Falcon: ' }}"
        "{%- endif %}"
        "{{ message['content'] }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ '\\nFalcon:' }}{%- endif %}",
        "\nUser:"},
    [CHAT_FAMILY_VICUNA] = {
        "vicuna", "vicuna-1.1", false,
        "{%- for message in messages %}"
        "{%- if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        "{%- elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + '\\n' }}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{ 'ASSISTANT: ' + message['content'] + eos_token + '\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ 'ASSISTANT:' }}{%- endif %}",
        NULL},
    [CHAT_FAMILY_OPENCHAT] = {
        "openchat", "openchat-3.5", false,
        "{{ bos_token }}"
        "{%- for message in messages %}"
        "{{ 'GPT4 Correct ' + message['role'] | title + ': ' + message['content']"
        " + '<|end_of_turn|>' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{%- endif %}",
        "<|end_of_turn|>"},
};

const char *chat_family_name(enum chat_family f)
{
    return (unsigned)f < CHAT_FAMILY_COUNT ? families[f].name : "none";
}

const char *chat_family_end_of_turn(enum chat_family f)
{
    return (unsigned)f < CHAT_FAMILY_COUNT ? families[f].end_of_turn : NULL;
}

static bool word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && strncasecmp(p, w, n) == 0)
            return true;
        p += k;
        while (*p == ' ')
            p++;
    }
    return false;
}

enum chat_family chat_family_from_name(const char *name)
{
    if (!name || !*name)
        return CHAT_FAMILY_NONE;
    for (int f = 1; f < CHAT_FAMILY_COUNT; f++)
        if (strcasecmp(families[f].name, name) == 0 || word_in(families[f].aliases, name))
            return (enum chat_family)f;
    return CHAT_FAMILY_NONE;
}

static bool has(const char *s, size_t n, const char *marker)
{
    return memmem(s, n, marker, strlen(marker)) != NULL;
}

enum chat_family chat_family_detect(const char *s, size_t n)
{
    if (!s)
        return CHAT_FAMILY_NONE;
    if (has(s, n, "<|im_start|>"))
        return CHAT_FAMILY_CHATML;
    if (has(s, n, "<|start_header_id|>"))
        return CHAT_FAMILY_LLAMA3;
    if (has(s, n, "<start_of_turn>"))
        return CHAT_FAMILY_GEMMA;
    if (has(s, n, "GPT4 Correct "))
        return CHAT_FAMILY_OPENCHAT;
    if (has(s, n, "<|user|>"))
        return has(s, n, "<|end|>") ? CHAT_FAMILY_PHI3 : CHAT_FAMILY_ZEPHYR;
    if (has(s, n, "[INST]"))
        return has(s, n, "<<SYS>>") ? CHAT_FAMILY_LLAMA2 : CHAT_FAMILY_MISTRAL;
    if (has(s, n, "Falcon:"))
        return CHAT_FAMILY_FALCON;
    if (has(s, n, "USER:") || has(s, n, "ASSISTANT:"))
        return CHAT_FAMILY_VICUNA;
    return CHAT_FAMILY_NONE;
}

/* ---- templates ---- */

struct chat_template {
    unsigned flags;
    enum chat_family family;
    bool merge_system;               /* prog is a built-in template without a system role */
    struct jinja_program *prog;      /* what is rendered */
    struct jinja_program *fallback;  /* the built-in template used when prog fails, or NULL */
    enum chat_family fallback_family;
    char *source;                    /* the text of prog, NUL-terminated */
};

static void set_err(char *errbuf, size_t errlen, const char *fmt, const char *detail)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, fmt, detail);
}

static int parse_builtin(enum chat_family f, struct jinja_program **out)
{
    const char *src = families[f].source;
    char err[256];
    int rc = chat__jinja_parse(out, src, strlen(src), err, sizeof(err));
    /* the built-in templates are tested; only memory can make them fail */
    return rc == CHAT_E_NOMEM ? rc : rc ? CHAT_E_INVALID : 0;
}

int chat_template_new_len(struct chat_template **out, const char *source, size_t len,
                          char *errbuf, size_t errlen)
{
    *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = 0;
    struct chat_template *t = calloc(1, sizeof(*t));
    if (!t)
        return CHAT_E_NOMEM;
    int rc = 0;
    enum chat_family builtin = CHAT_FAMILY_NONE;
    char name[32];
    if (!source || len == 0) {
        builtin = CHAT_FAMILY_CHATML;
        t->flags = CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_UNKNOWN;
        set_err(errbuf, errlen, "%s", "no chat template: using ChatML");
    } else if (len < sizeof(name) && !memchr(source, '{', len)) {
        size_t a = 0, b = len; /* a name, give or take surrounding blanks */
        while (a < b && (source[a] == ' ' || source[a] == '\t' || source[a] == '\n'))
            a++;
        while (b > a && (source[b - 1] == ' ' || source[b - 1] == '\t' || source[b - 1] == '\n'))
            b--;
        memcpy(name, source + a, b - a);
        name[b - a] = 0;
        builtin = chat_family_from_name(name);
        if (builtin) {
            t->flags = CHAT_TEMPLATE_BUILTIN;
        } else {
            /* neither a template nor a name we know */
            builtin = CHAT_FAMILY_CHATML;
            t->flags = CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK | CHAT_TEMPLATE_UNKNOWN;
            set_err(errbuf, errlen, "unknown chat template name '%s': using ChatML", name);
        }
    } else {
        char perr[256] = "";
        t->family = chat_family_detect(source, len);
        rc = chat__jinja_parse(&t->prog, source, len, perr, sizeof(perr));
        if (rc == CHAT_E_NOMEM)
            goto fail;
        if (rc) {
            builtin = t->family ? t->family : CHAT_FAMILY_CHATML;
            t->flags = CHAT_TEMPLATE_BUILTIN | CHAT_TEMPLATE_FALLBACK |
                       (t->family ? 0 : CHAT_TEMPLATE_UNKNOWN);
            if (errbuf && errlen)
                snprintf(errbuf, errlen, "chat template does not parse (%s): using the built-in %s template",
                         perr, chat_family_name(builtin));
            rc = 0;
        } else {
            t->source = malloc(len + 1);
            if (!t->source) {
                rc = CHAT_E_NOMEM;
                goto fail;
            }
            memcpy(t->source, source, len);
            t->source[len] = 0;
            t->fallback_family = t->family ? t->family : CHAT_FAMILY_CHATML;
            if ((rc = parse_builtin(t->fallback_family, &t->fallback)))
                goto fail;
        }
    }
    if (builtin) {
        t->family = builtin;
        t->merge_system = families[builtin].merge_system;
        if ((rc = parse_builtin(builtin, &t->prog)))
            goto fail;
    }
    *out = t;
    return 0;
fail:
    chat_template_free(t);
    return rc;
}

int chat_template_new(struct chat_template **out, const char *source, char *errbuf,
                      size_t errlen)
{
    return chat_template_new_len(out, source, source ? strlen(source) : 0, errbuf, errlen);
}

int chat_template_from_gguf(struct chat_template **out, const struct gguf *g,
                            const char *override, char *errbuf, size_t errlen)
{
    if (override)
        return chat_template_new(out, override, errbuf, errlen);
    struct gguf_str s = {NULL, 0};
    if (g && gguf_get_str(g, "tokenizer.chat_template", &s) == 0 && s.len <= SIZE_MAX)
        return chat_template_new_len(out, s.ptr, (size_t)s.len, errbuf, errlen);
    return chat_template_new(out, NULL, errbuf, errlen);
}

void chat_template_free(struct chat_template *t)
{
    if (!t)
        return;
    chat__jinja_free(t->prog);
    chat__jinja_free(t->fallback);
    free(t->source);
    free(t);
}

unsigned chat_template_flags(const struct chat_template *t)
{
    return t ? t->flags : 0;
}

enum chat_family chat_template_family(const struct chat_template *t)
{
    return t ? t->family : CHAT_FAMILY_NONE;
}

const char *chat_template_source(const struct chat_template *t)
{
    if (!t)
        return NULL;
    return t->source ? t->source : families[t->family].source;
}

/* ---- rendering ---- */

/* The conversation with a leading system message folded into the first user message
 * ("system\n\nuser"); *merged is NULL when there is no leading system message. */
static int merge_system(const struct chat_message *m, size_t n, struct chat_message **merged,
                        char **text, size_t *n_out)
{
    *merged = NULL;
    *text = NULL;
    *n_out = n;
    if (n == 0 || strcmp(m[0].role, "system") != 0)
        return 0;
    size_t u = 1;
    while (u < n && strcmp(m[u].role, "user") != 0)
        u++;
    struct chat_message *out = malloc(n * sizeof(*out));
    if (!out)
        return CHAT_E_NOMEM;
    size_t k = 0;
    if (u == n) { /* no user message: the system text stands as one */
        out[k++] = (struct chat_message){"user", m[0].content};
        for (size_t i = 1; i < n; i++)
            out[k++] = m[i];
    } else {
        size_t a = strlen(m[0].content), b = strlen(m[u].content);
        char *s = malloc(a + 2 + b + 1);
        if (!s) {
            free(out);
            return CHAT_E_NOMEM;
        }
        memcpy(s, m[0].content, a);
        memcpy(s + a, "\n\n", 2);
        memcpy(s + a + 2, m[u].content, b + 1);
        for (size_t i = 1; i < n; i++)
            out[k++] = i == u ? (struct chat_message){m[u].role, s} : m[i];
        *text = s;
    }
    *merged = out;
    *n_out = k;
    return 0;
}

static int render(const struct jinja_program *prog, const struct chat_message *m, size_t n,
                  const struct jinja_input *limits,
                  struct chat_prompt *out, char *errbuf, size_t errlen)
{
    struct jinja_input in = *limits;
    in.messages = m;
    in.n_messages = n;
    return chat__jinja_render(prog, &in, &out->text, &out->len, errbuf, errlen);
}

int chat_template_apply(const struct chat_template *t, const struct chat_apply_params *p,
                        struct chat_prompt *out, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!out)
        return CHAT_E_INVALID;
    *out = (struct chat_prompt){NULL, 0, 0};
    if (!t || !p || (p->n_messages && !p->messages))
        return CHAT_E_INVALID;
    size_t bytes = 0;
    for (size_t i = 0; i < p->n_messages; i++) {
        if (!p->messages[i].role || !p->messages[i].content) {
            set_err(errbuf, errlen, "%s", "message without a role or content");
            return CHAT_E_INVALID;
        }
        bytes += strlen(p->messages[i].role) + strlen(p->messages[i].content) + 16;
    }
    struct jinja_input limits = {
        .bos_token = p->bos_token, .eos_token = p->eos_token,
        .add_generation_prompt = p->add_generation_prompt, .now = p->now,
    };
    /* bytes counts memory that exists, so these cannot overflow; a caller's bound is capped */
    limits.max_output = p->max_output ? p->max_output : ((size_t)1 << 20) + 8 * bytes;
    if (limits.max_output > SIZE_MAX / 16)
        limits.max_output = SIZE_MAX / 16;
    limits.max_memory = ((size_t)32 << 20) + 4 * limits.max_output + 4 * bytes;
    limits.max_steps = 1000000 + 200 * (uint64_t)p->n_messages;

    struct chat_message *merged = NULL;
    char *merged_text = NULL;
    size_t n_merged = 0;
    int rc = merge_system(p->messages, p->n_messages, &merged, &merged_text, &n_merged);
    if (rc)
        return rc;
    if (t->merge_system && merged) {
        rc = render(t->prog, merged, n_merged, &limits, out, errbuf, errlen);
        out->flags |= CHAT_PROMPT_MERGED_SYSTEM;
    } else {
        rc = render(t->prog, p->messages, p->n_messages, &limits, out, errbuf, errlen);
        if ((rc == CHAT_E_RAISED || rc == CHAT_E_RUNTIME) && merged) {
            /* templates without a system role raise on it: try the merged conversation */
            char err2[8];
            if (render(t->prog, merged, n_merged, &limits, out, err2, sizeof(err2)) == 0) {
                rc = 0;
                out->flags |= CHAT_PROMPT_MERGED_SYSTEM;
                if (errbuf && errlen)
                    errbuf[0] = 0;
            }
        }
    }
    if (rc && rc != CHAT_E_NOMEM && !p->strict && t->fallback) {
        bool merge = families[t->fallback_family].merge_system && merged;
        char err2[8];
        if (render(t->fallback, merge ? merged : p->messages, merge ? n_merged : p->n_messages,
                   &limits, out, err2, sizeof(err2)) == 0) {
            rc = 0;
            out->flags = CHAT_PROMPT_FALLBACK | (merge ? CHAT_PROMPT_MERGED_SYSTEM : 0);
        }
    }
    free(merged);
    free(merged_text);
    if (rc) {
        chat_prompt_free(out);
        return rc;
    }
    size_t bl = p->bos_token ? strlen(p->bos_token) : 0;
    if (bl && out->len >= bl && memcmp(out->text, p->bos_token, bl) == 0)
        out->flags |= CHAT_PROMPT_HAS_BOS;
    return 0;
}

void chat_prompt_free(struct chat_prompt *p)
{
    if (!p)
        return;
    free(p->text);
    *p = (struct chat_prompt){NULL, 0, 0};
}
