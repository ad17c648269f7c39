/* tandem: one binary, many subcommands. The only place that may exit(). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"inspect", cmd_inspect, "print a GGUF file's metadata and tensor table"},
    {"logits", cmd_logits, "evaluate token ids and write logits (golden-file format)"},
    {"bench", cmd_bench, "measure prompt-processing and generation speed"},
    {"quantize", cmd_quantize, "convert a GGUF model to another tensor type"},
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "chat with a model in the terminal"},
    {"tokenize", cmd_tokenize, "turn text into token ids with a model's tokenizer"},
    {"serve", cmd_serve, "serve the OpenAI API over local models"},
    {"audit", cmd_audit, "verify the audit log, print inclusion proofs, make signing keys"},
    {"pull", cmd_pull, "download a GGUF model into the local cache (resumable)"},
    {"models", cmd_models, "list the models in the local cache"},
    {"keys", cmd_keys, "create, list and revoke the gateway's API keys"},
    {"usage", cmd_usage, "requests, tokens, cost and local savings from the usage ledger"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'tandem COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tandem: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
