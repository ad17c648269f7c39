/* tandem quantize: convert a GGUF model's weights to another tensor type or mix. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "tandem.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem quantize [-t THREADS] [-q] IN.gguf OUT.gguf TYPE\n"
               "  TYPE: %s\n", tandem_quantize_types());
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0, n_threads = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = args_value("quantize", argc, argv, &i)) ||
                args_int("quantize", a, v, 1, 1024, &n_threads))
                return 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tandem quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(pos[0], pos[1])) {
        fprintf(stderr, "tandem quantize: input and output are the same file\n");
        return 2;
    }
    char err[512] = "";
    int rc = tandem_model_quantize(pos[0], pos[1], pos[2], n_threads, !quiet, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tandem quantize: %s\n", err[0] ? err : tandem_strerror(rc));
        return rc == TANDEM_E_ARG ? 2 : 1;
    }
    return 0;
}
