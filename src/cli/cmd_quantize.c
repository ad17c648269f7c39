/* tandem quantize (placeholder until the command lands). */
#include "cli/cli.h"

int cmd_quantize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tandem quantize: not built yet\n");
    return 1;
}
