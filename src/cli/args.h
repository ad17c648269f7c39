/* Small, strict command-line parsing helpers shared by the subcommands. */
#ifndef TANDEM_CLI_ARGS_H
#define TANDEM_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* Parse a whole decimal integer in [lo, hi]; prints "tandem CMD: OPT: ..." and returns -1 on
 * error. */
int args_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
/* The option's value: argv[*i + 1] (advancing *i), or an error message and NULL. */
const char *args_value(const char *cmd, int argc, char **argv, int *i);

/* Read whitespace-separated token ids from a file ("-" = stdin). Returns the count, or -1
 * with a message. *ids is malloc'd. */
int args_read_tokens(const char *cmd, const char *path, int32_t **ids);

#endif
