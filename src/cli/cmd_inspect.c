/* tandem inspect (placeholder until the command lands). */
#include "cli/cli.h"

int cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tandem inspect: not built yet\n");
    return 1;
}
