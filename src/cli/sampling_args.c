/* Parsing of the sampling options shared by the generating commands. */
#include "cli/sampling_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static int parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi,
                       float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "tandem %s: %s: '%s' is not a number in [%g, %g]\n", cmd, opt, s, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int sampling_arg(const char *cmd, int argc, char **argv, int *i, struct sampler_config *cfg)
{
    const char *a = argv[*i];
    static const struct {
        const char *name;
        size_t off;
        double lo, hi;
    } floats[] = {
        {"--temp", offsetof(struct sampler_config, temperature), 0, 100},
        {"--top-p", offsetof(struct sampler_config, top_p), 0, 1},
        {"--min-p", offsetof(struct sampler_config, min_p), 0, 1},
        {"--repeat-penalty", offsetof(struct sampler_config, repeat_penalty), 0.01, 100},
        {"--frequency-penalty", offsetof(struct sampler_config, frequency_penalty), -2, 2},
        {"--presence-penalty", offsetof(struct sampler_config, presence_penalty), -2, 2},
    };
    for (size_t k = 0; k < sizeof(floats) / sizeof(floats[0]); k++)
        if (!strcmp(a, floats[k].name)) {
            const char *v = args_value(cmd, argc, argv, i);
            return v && !parse_float(cmd, a, v, floats[k].lo, floats[k].hi,
                                     (float *)((char *)cfg + floats[k].off)) ? 1 : -1;
        }
    int iv;
    if (!strcmp(a, "--top-k") || !strcmp(a, "--repeat-last-n")) {
        const char *v = args_value(cmd, argc, argv, i);
        if (!v || args_int(cmd, a, v, 0, SAMPLER_MAX_LAST_N, &iv))
            return -1;
        if (!strcmp(a, "--top-k"))
            cfg->top_k = iv;
        else
            cfg->repeat_last_n = iv;
        return 1;
    }
    if (!strcmp(a, "--seed")) {
        const char *v = args_value(cmd, argc, argv, i);
        char *end;
        errno = 0;
        unsigned long long s = v ? strtoull(v, &end, 10) : 0;
        if (!v || errno || end == v || *end || v[0] == '-' || s == SAMPLER_SEED_RANDOM) {
            fprintf(stderr, "tandem %s: --seed: '%s' is not a seed (0 .. 2^64-2)\n", cmd,
                    v ? v : "");
            return -1;
        }
        cfg->seed = s;
        return 1;
    }
    return 0;
}
