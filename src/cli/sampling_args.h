/* Sampling options shared by `tandem run` and `tandem chat`. */
#ifndef TANDEM_CLI_SAMPLING_ARGS_H
#define TANDEM_CLI_SAMPLING_ARGS_H

#include "engine/sampler.h"

#define SAMPLING_USAGE                                                                       \
    "  --temp T            temperature (default 0.8; 0 = greedy, deterministic)\n"           \
    "  --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"            \
    "  --top-p P           nucleus sampling (default 0.95; 1 = off)\n"                       \
    "  --min-p P           drop tokens below P x the best one's probability (default 0.05)\n"\
    "  --repeat-penalty R  penalise the last --repeat-last-n tokens (default 1 = off)\n"     \
    "  --repeat-last-n N   history for the penalties (default 64)\n"                         \
    "  --frequency-penalty F, --presence-penalty P   OpenAI-style penalties (default 0)\n"   \
    "  --seed S            random seed (default: from the clock, printed to stderr)\n"

/* If argv[*i] is a sampling option, parses it (advancing *i) into cfg and returns 1; returns 0
 * when it is not one, -1 on a bad value (message printed). */
int sampling_arg(const char *cmd, int argc, char **argv, int *i, struct sampler_config *cfg);

#endif
