/* tandem logits (placeholder until the command lands). */
#include "cli/cli.h"

int cmd_logits(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tandem logits: not built yet\n");
    return 1;
}
