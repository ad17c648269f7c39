/* Subcommands of the tandem binary; each returns the process exit status. */
#ifndef TANDEM_CLI_H
#define TANDEM_CLI_H

#include <stdio.h>

int cmd_inspect(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_usage(int argc, char **argv);

#endif
