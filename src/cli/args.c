/* Command-line helpers: strict integers, option values, token-id files. */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int args_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "tandem %s: %s: '%s' is not an integer in [%ld, %ld]\n", cmd, opt, s, lo,
                hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

const char *args_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "tandem %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int args_read_tokens(const char *cmd, const char *path, int32_t **ids)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    *ids = NULL;
    if (!f) {
        fprintf(stderr, "tandem %s: %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    int n = 0, cap = 0, rc = -1;
    char word[32];
    int c, len = 0;
    for (;;) {
        c = fgetc(f);
        if (c == EOF || c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',') {
            if (len) {
                word[len] = 0;
                char *end;
                errno = 0;
                long v = strtol(word, &end, 10);
                if (errno || *end || v < 0 || v > INT32_MAX) {
                    fprintf(stderr, "tandem %s: %s: '%s' is not a token id\n", cmd, path, word);
                    goto out;
                }
                if (n == cap) {
                    cap = cap ? cap * 2 : 256;
                    if (cap > (1 << 24)) {
                        fprintf(stderr, "tandem %s: %s: too many tokens\n", cmd, path);
                        goto out;
                    }
                    int32_t *p = realloc(*ids, (size_t)cap * sizeof(int32_t));
                    if (!p)
                        goto out;
                    *ids = p;
                }
                (*ids)[n++] = (int32_t)v;
                len = 0;
            }
            if (c == EOF)
                break;
        } else if (len < (int)sizeof(word) - 1) {
            word[len++] = (char)c;
        } else {
            word[len] = 0;
            fprintf(stderr, "tandem %s: %s: '%s...' is not a token id\n", cmd, path, word);
            goto out;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "tandem %s: %s: read error\n", cmd, path);
        goto out;
    }
    rc = n;
out:
    if (f != stdin)
        fclose(f);
    if (rc < 0) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}
