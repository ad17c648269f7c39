/* tandem bench (placeholder until the command lands). */
#include "cli/cli.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tandem bench: not built yet\n");
    return 1;
}
