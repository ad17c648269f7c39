/* tandem run: generate a continuation of a prompt and stream it to stdout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/generate.h"
#include "cli/sampling_args.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem run -m MODEL -p PROMPT [-n N] [-t THREADS] [-c CTX] [options]\n"
               "  Streams the model's continuation of PROMPT to stdout (BOS added as the model\n"
               "  says). Timings go to stderr.\n"
               "  -n N                tokens to generate (default 128; -1 = until the end)\n"
               "  -c CTX              context size (default: the model's, at most 4096)\n"
               "  --parse-special     control-token text in the prompt becomes those tokens\n"
               "  --stop S            stop before this text (repeatable)\n"
               "  --echo              print the prompt before the continuation\n"
               SAMPLING_USAGE);
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

#define MAX_STOP 16

int cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *stops[MAX_STOP];
    int n_predict = 128, n_threads = 0, n_ctx = 0, parse_special = 0, echo = 0, n_stop = 0;
    struct sampler_config scfg;
    sampler_config_default(&scfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sampling_arg("run", argc, argv, &i, &scfg);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = args_value("run", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = args_value("run", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = args_value("run", argc, argv, &i)) || args_int("run", a, v, -1, 1 << 24, &n_predict))
                return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = args_value("run", argc, argv, &i)) || args_int("run", a, v, 1, 1024, &n_threads))
                return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!(v = args_value("run", argc, argv, &i)) || args_int("run", a, v, 1, 1 << 20, &n_ctx))
                return 2;
        } else if (!strcmp(a, "--stop")) {
            if (!(v = args_value("run", argc, argv, &i)))
                return 2;
            if (n_stop == MAX_STOP) {
                fprintf(stderr, "tandem run: at most %d --stop strings\n", MAX_STOP);
                return 2;
            }
            stops[n_stop++] = v;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = 1;
        } else if (!strcmp(a, "--echo")) {
            echo = 1;
        } else {
            fprintf(stderr, "tandem run: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !prompt) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    char err[512];
    struct tandem_model *m = NULL;
    struct tandem_ctx *c = NULL;
    struct sampler_chain *smp = NULL;
    int32_t *ids = NULL;
    struct gen_stats st = {0};
    if (tandem_model_load(&m, model_path, err, sizeof(err))) {
        fprintf(stderr, "tandem run: %s\n", err);
        goto out;
    }
    size_t len = strlen(prompt);
    ids = malloc((len + 8) * sizeof(int32_t));
    if (!ids)
        goto out;
    int n = tandem_tokenize(m, prompt, len, ids, len + 8, true, parse_special);
    if (n < 0) {
        fprintf(stderr, "tandem run: cannot tokenize: %s\n",
                n == TANDEM_E_UNSUPPORTED ? tandem_model_tokenizer_error(m) : tandem_strerror(n));
        goto out;
    }
    struct tandem_ctx_params p = tandem_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = n_threads;
    if (tandem_ctx_new(&c, m, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem run: %s\n", err);
        goto out;
    }
    if (n == 0 || n >= tandem_ctx_n_ctx(c)) {
        fprintf(stderr, "tandem run: the prompt has %d tokens; the context holds %d\n", n,
                tandem_ctx_n_ctx(c));
        goto out;
    }
    if (sampler_chain_new(&smp, &scfg, tandem_model_n_vocab(m))) {
        fprintf(stderr, "tandem run: invalid sampling options\n");
        goto out;
    }
    if (scfg.temperature > 0)
        fprintf(stderr, "seed: %llu\n", (unsigned long long)sampler_chain_seed(smp));
    if (echo) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    signal(SIGINT, on_sigint);
    int grc = gen_run(c, m, smp, stops, n_stop, ids, n, n_predict, stdout, &interrupted, &st);
    signal(SIGINT, SIG_DFL);
    putchar('\n');
    fflush(stdout);
    if (grc) {
        fprintf(stderr, "tandem run: generation failed: %s\n", tandem_strerror(grc));
        goto out;
    }
    fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s%s\n",
            st.n_prompt, st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0.0, st.n_gen,
            st.t_gen > 0 ? st.n_gen / st.t_gen : 0.0, st.interrupted ? " (interrupted)" : "");
    rc = 0;
out:
    free(st.text);
    free(ids);
    sampler_free(smp);
    tandem_ctx_free(c);
    tandem_model_free(m);
    return rc;
}
