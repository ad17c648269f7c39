/* tandem chat: an interactive terminal chat using the model's chat template. */
#include <editline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/generate.h"
#include "cli/sampling_args.h"
#include "engine/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem chat -m MODEL [--system TEXT] [--template NAME|JINJA] [-n N] [-c CTX]\n"
               "                   [-t THREADS] [sampling options]\n"
               "  Type a message and press Enter. Ctrl-C stops a reply without leaving; Ctrl-D or\n"
               "  /quit leaves. /reset starts over, /system TEXT sets the system prompt (and\n"
               "  starts over), /help lists the commands.\n"
               "  --template          chatml, llama2, llama3, mistral, zephyr, phi3, gemma, falcon,\n"
               "                      vicuna, openchat, or a Jinja template (default: the model's)\n"
               "  -n N                most tokens per reply (default: until the model stops)\n"
               SAMPLING_USAGE);
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct convo {
    struct chat_message *msgs;
    char **owned;     /* contents we allocated, parallel to msgs */
    size_t n, cap;
};

static int convo_add(struct convo *c, const char *role, const char *content)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct chat_message *m = realloc(c->msgs, cap * sizeof(*m));
        if (!m)
            return -1;
        c->msgs = m;
        char **o = realloc(c->owned, cap * sizeof(*o));
        if (!o)
            return -1;
        c->owned = o;
        c->cap = cap;
    }
    char *copy = strdup(content);
    if (!copy)
        return -1;
    c->owned[c->n] = copy;
    c->msgs[c->n++] = (struct chat_message){.role = role, .content = copy};
    return 0;
}

static void convo_clear(struct convo *c, size_t keep)
{
    while (c->n > keep)
        free(c->owned[--c->n]);
}

/* One line from the user: editline on a terminal, plain stdin otherwise. NULL at EOF. */
static char *read_line(int tty)
{
    if (tty)
        return readline("> ");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = 0;
    return line;
}

int cmd_chat(int argc, char **argv)
{
    const char *model_path = NULL, *system = NULL, *tmpl_override = NULL;
    int n_predict = -1, n_threads = 0, n_ctx = 0;
    struct sampler_config scfg;
    sampler_config_default(&scfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sampling_arg("chat", argc, argv, &i, &scfg);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = args_value("chat", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--system")) {
            if (!(system = args_value("chat", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--template")) {
            if (!(tmpl_override = args_value("chat", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-n")) {
            if (!(v = args_value("chat", argc, argv, &i)) || args_int("chat", a, v, -1, 1 << 24, &n_predict))
                return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = args_value("chat", argc, argv, &i)) || args_int("chat", a, v, 1, 1024, &n_threads))
                return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!(v = args_value("chat", argc, argv, &i)) || args_int("chat", a, v, 1, 1 << 20, &n_ctx))
                return 2;
        } else {
            fprintf(stderr, "tandem chat: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    char err[512] = "";
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    struct sampler_chain *smp = NULL;
    struct chat_template *tmpl = NULL;
    struct convo conv = {0};
    int32_t *cached = NULL, *ids = NULL;
    int n_cached = 0;
    char *line = NULL;
    const int tty = isatty(STDIN_FILENO);
    if (tandem_model_load(&m, model_path, err, sizeof(err))) {
        fprintf(stderr, "tandem chat: %s\n", err);
        goto out;
    }
    if (!m->tok) {
        fprintf(stderr, "tandem chat: %s\n", tandem_model_tokenizer_error(m));
        goto out;
    }
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = n_threads;
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem chat: %s\n", err);
        goto out;
    }
    const int ctx_size = tandem_ctx_n_ctx(c);
    err[0] = 0;
    if (chat_template_from_gguf(&tmpl, m->gguf, tmpl_override, err, sizeof(err))) {
        fprintf(stderr, "tandem chat: chat template: %s\n", err);
        goto out;
    }
    if (chat_template_flags(tmpl) & CHAT_TEMPLATE_UNKNOWN)
        fprintf(stderr, "warning: no usable chat template (%s); using ChatML\n",
                err[0] ? err : "none in the model");
    else if (chat_template_flags(tmpl) & CHAT_TEMPLATE_FALLBACK)
        fprintf(stderr, "warning: the model's chat template failed to parse (%s); using the built-in %s template\n",
                err, chat_family_name(chat_template_family(tmpl)));
    if (sampler_chain_new(&smp, &scfg, tandem_model_n_vocab(m))) {
        fprintf(stderr, "tandem chat: invalid sampling options\n");
        goto out;
    }
    cached = malloc(sizeof(int32_t) * (size_t)ctx_size);
    if (!cached)
        goto out;
    size_t tok_len = 0;
    const char *bos = tokenizer_token_text(m->tok, tokenizer_bos(m->tok), &tok_len);
    char bos_text[128] = "", eos_text[128] = "";
    if (bos)
        snprintf(bos_text, sizeof(bos_text), "%.*s", (int)tok_len, bos);
    const char *eos = tokenizer_token_text(m->tok, tokenizer_eos(m->tok), &tok_len);
    if (eos)
        snprintf(eos_text, sizeof(eos_text), "%.*s", (int)tok_len, eos);
    if (system && convo_add(&conv, "system", system))
        goto out;
    if (tty)
        fprintf(stderr, "tandem chat: %s, %s template. /help for commands, Ctrl-D to leave.\n",
                tandem_model_desc(m), chat_family_name(chat_template_family(tmpl)));
    while ((line = read_line(tty))) {
        if (!line[0]) {
            free(line);
            continue;
        }
        if (tty)
            add_history(line);
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
            break;
        if (!strcmp(line, "/help")) {
            printf("/reset  forget the conversation\n/system TEXT  set the system prompt and start over\n/quit  leave\n");
            free(line);
            continue;
        }
        if (!strcmp(line, "/reset") || !strncmp(line, "/system", 7)) {
            convo_clear(&conv, 0);
            if (!strncmp(line, "/system", 7)) {
                const char *s = line + 7;
                while (*s == ' ')
                    s++;
                if (*s && convo_add(&conv, "system", s))
                    goto out;
            } else if (system && convo_add(&conv, "system", system)) {
                goto out;
            }
            tandem_ctx_truncate(c, 0);
            n_cached = 0;
            sampler_reset(smp);
            printf("(conversation reset)\n");
            free(line);
            continue;
        }
        if (convo_add(&conv, "user", line))
            goto out;
        free(line);
        line = NULL;
        struct chat_apply_params ap = {.messages = conv.msgs, .n_messages = conv.n,
                                       .add_generation_prompt = true, .bos_token = bos_text,
                                       .eos_token = eos_text};
        struct chat_prompt prompt = {0};
        if (chat_template_apply(tmpl, &ap, &prompt, err, sizeof(err))) {
            fprintf(stderr, "tandem chat: chat template: %s\n", err);
            convo_clear(&conv, conv.n - 1);
            continue;
        }
        free(ids);
        ids = malloc(sizeof(int32_t) * (prompt.len + 8));
        int n = ids ? tandem_tokenize(m, prompt.text, prompt.len, ids, prompt.len + 8,
                                      !(prompt.flags & CHAT_PROMPT_HAS_BOS), true) : -1;
        chat_prompt_free(&prompt);
        if (n < 0 || n >= ctx_size - 4) {
            fprintf(stderr, "tandem chat: the conversation (%d tokens) no longer fits the context (%d); /reset\n",
                    n, ctx_size);
            convo_clear(&conv, conv.n - 1);
            continue;
        }
        /* Reuse the cached prefix: only the new part of the conversation is evaluated. */
        int common = 0;
        while (common < n_cached && common < n - 1 && cached[common] == ids[common])
            common++;
        tandem_ctx_truncate(c, common);
        memcpy(cached, ids, sizeof(int32_t) * (size_t)n);
        int32_t *gen_ids = cached + n;
        struct gen_stats st = {.ids = gen_ids, .ids_cap = ctx_size - n};
        interrupted = 0;
        signal(SIGINT, on_sigint);
        int grc = gen_run(c, m, smp, NULL, 0, ids + common, n - common, n_predict, stdout,
                          &interrupted, &st);
        signal(SIGINT, SIG_DFL);
        printf("\n");
        if (grc) {
            fprintf(stderr, "tandem chat: generation failed: %s\n", tandem_strerror(grc));
            free(st.text);
            goto out;
        }
        /* The cache now holds the prompt and every generated token but the last sampled one. */
        n_cached = tandem_ctx_n_past(c);
        if (st.interrupted)
            fprintf(stderr, "(stopped)\n");
        int add = convo_add(&conv, "assistant", st.text ? st.text : "");
        free(st.text);
        if (add)
            goto out;
    }
    rc = 0;
out:
    free(line);
    free(ids);
    free(cached);
    convo_clear(&conv, 0);
    free(conv.msgs);
    free(conv.owned);
    chat_template_free(tmpl);
    sampler_free(smp);
    tandem_ctx_free(c);
    tandem_model_free(m);
    return rc;
}
