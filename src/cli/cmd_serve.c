/* tandem serve: the OpenAI-compatible HTTP server over local models. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "server/server.h"

#define SERVE_MAX_MODELS 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem serve -m MODEL [-m MODEL2 ...] [--name NAME] [--host ADDR] [--port N]\n"
            "                    [--parallel N] [--ctx-size N] [-t THREADS] [options]\n"
            "  Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/embeddings,\n"
            "  /v1/models, /health) over local GGUF models with continuous batching.\n"
            "  -m, --model PATH      a GGUF model; repeat for several (clients pick by name)\n"
            "  --name NAME           the public name of the model given just before (default:\n"
            "                        the file name without .gguf)\n"
            "  --host ADDR           listen address (default 127.0.0.1)\n"
            "  --port N              listen port (default 8080; 0 picks a free one)\n"
            "  -np, --parallel N     slots: requests generated together per model (default 4)\n"
            "  -c, --ctx-size N      context positions per slot (default: the model's, at most 4096)\n"
            "  -t, --threads N       CPU threads (default: all)\n"
            "  -b, --batch N         most tokens per decode step (default 512)\n"
            "  --queue N             requests waiting for a slot before 503 (default 64)\n"
            "  --max-body BYTES      largest request body (default 4194304)\n"
            "  --max-tokens N        largest max_tokens a client may ask for (default 32768)\n"
            "  --max-messages N      most chat messages per request (default 1024)\n"
            "  --grace SECONDS       on SIGTERM, how long running streams may finish (default 10)\n"
            "  --config FILE         a gateway configuration (local and cloud models, routes,\n"
            "                        privacy; docs/config.md) instead of -m; SIGHUP reloads it\n");
}

static char *default_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf"))
        n -= 5;
    return strndup(base, n);
}

int cmd_serve(int argc, char **argv)
{
    static const char *cmd = "serve";
    struct server_config cfg;
    server_config_default(&cfg);
    struct local_config models[SERVE_MAX_MODELS];
    char *names[SERVE_MAX_MODELS] = {0};
    int n_models = 0, slots = 4, ctx = 0, threads = 0, batch = 0, queue = 0, port = 8080, v = 0;
    bool listen_given = false;
    int status = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!(val = args_value(cmd, argc, argv, &i)))
            goto out;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (n_models == SERVE_MAX_MODELS) {
                fprintf(stderr, "tandem serve: at most %d models\n", SERVE_MAX_MODELS);
                goto out;
            }
            local_config_default(&models[n_models]);
            models[n_models].path = val;
            names[n_models] = default_name(val);
            n_models++;
        } else if (!strcmp(a, "--name")) {
            if (!n_models) {
                fprintf(stderr, "tandem serve: --name names the -m given before it\n");
                goto out;
            }
            free(names[n_models - 1]);
            names[n_models - 1] = strdup(val);
        } else if (!strcmp(a, "--host")) {
            cfg.http.host = val;
            listen_given = true;
        } else if (!strcmp(a, "--port")) {
            if (args_int(cmd, a, val, 0, 65535, &port))
                goto out;
            listen_given = true;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            if (args_int(cmd, a, val, 1, 64, &slots))
                goto out;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (args_int(cmd, a, val, 16, 1 << 20, &ctx))
                goto out;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (args_int(cmd, a, val, 1, 1024, &threads))
                goto out;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (args_int(cmd, a, val, 1, 1 << 16, &batch))
                goto out;
        } else if (!strcmp(a, "--queue")) {
            if (args_int(cmd, a, val, 1, 1 << 20, &queue))
                goto out;
        } else if (!strcmp(a, "--max-body")) {
            if (args_int(cmd, a, val, 1024, 1 << 30, &v))
                goto out;
            cfg.http.max_body_bytes = (size_t)v;
        } else if (!strcmp(a, "--max-tokens")) {
            if (args_int(cmd, a, val, 1, 1 << 24, &cfg.limits.max_tokens))
                goto out;
        } else if (!strcmp(a, "--max-messages")) {
            if (args_int(cmd, a, val, 1, 1 << 20, &v))
                goto out;
            cfg.limits.max_messages = (size_t)v;
        } else if (!strcmp(a, "--grace")) {
            if (args_int(cmd, a, val, 1, 3600, &cfg.shutdown_grace_s))
                goto out;
        } else if (!strcmp(a, "--config")) {
            cfg.config_path = val;
        } else {
            fprintf(stderr, "tandem serve: unknown option %s (see tandem serve --help)\n", a);
            goto out;
        }
    }
    if (!n_models == !cfg.config_path) {
        if (n_models)
            fprintf(stderr, "tandem serve: give either -m models or --config FILE, not both\n");
        else
            usage(stderr);
        goto out;
    }
    for (int i = 0; i < n_models; i++)
        models[i].name = names[i];
    cfg.models = models;
    cfg.n_models = n_models;
    cfg.default_slots = slots;
    cfg.default_ctx = ctx;
    cfg.default_threads = threads;
    cfg.queue_max = queue;
    cfg.default_batch = batch;
    cfg.http.port = port;
    cfg.listen_override = listen_given;
    /* Signals go to the thread that waits for them, never to the server's threads. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct server *srv = NULL;
    char err[512] = "";
    if (server_start(&srv, &cfg, err, sizeof(err))) {
        fprintf(stderr, "tandem serve: %s\n", err);
        goto out;
    }
    printf("tandem serve: listening on http://%s:%d (%s)\n", server_host(srv), server_port(srv),
           cfg.config_path ? cfg.config_path : "models from the command line");
    fflush(stdout);
    int sig = 0;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            break;
        if (server_reload(srv, err, sizeof(err)))
            fprintf(stderr, "tandem serve: reload failed, keeping the running configuration: %s\n", err);
        else
            fprintf(stderr, "tandem serve: configuration reloaded from %s\n", cfg.config_path);
    }
    fprintf(stderr, "tandem serve: %s received, finishing running requests (up to %d s)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_grace_s);
    server_stop(srv);
    fprintf(stderr, "tandem serve: stopped\n");
    status = 0;
out:
    for (int i = 0; i < n_models; i++)
        free(names[i]);
    return status;
}
