/* libFuzzer: YAML text through gw_config_parse, then the dump parsed back (round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"

/* Environment secrets the input may name (`api_key: env:OPENAI_API_KEY`). Each is parsed
 * twice, with two different values: the dump must not depend on them. */
static const char *const SECRET_VARS[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "FUZZ_KEY"};
static const char *const SECRETS[2][3] = {
    {"sk-fuzzsecret-Aa1", "sk-ant-fuzzsecret-Bb2", "fuzzsecret-Cc3"},
    {"sk-fuzzsecret-Xx9", "sk-ant-fuzzsecret-Yy8", "fuzzsecret-Zz7"},
};
#define N_SECRETS (sizeof(SECRET_VARS) / sizeof(SECRET_VARS[0]))

static void set_secrets(int which)
{
    for (size_t i = 0; i < N_SECRETS; i++)
        if (setenv(SECRET_VARS[i], SECRETS[which][i], 1))
            abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    set_secrets(0);
    /* Set but unusable: the E_ENV paths. */
    if (setenv("FUZZ_EMPTY", "", 1) || setenv("FUZZ_NEWLINE", "line1\nline2", 1))
        abort();
    return 0;
}

/* The dump of cfg as a malloc'd NUL-terminated string (*n its length). */
static char *dump(const struct gw_config *cfg, size_t *n)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    if (!f)
        abort();
    if (gw_config_dump(cfg, f))
        abort();
    if (fclose(f) || !buf)
        abort();
    return buf;
}

/* Parses text with secret set `which`; returns its dump or NULL when the text is refused (the
 * error then is a known code and one NUL-terminated line). */
static char *parse_dump(const char *text, size_t len, int which, int *rc_out, size_t *n)
{
    char err[512];
    struct gw_config *cfg = (struct gw_config *)1;
    memset(err, 'x', sizeof(err));
    set_secrets(which);
    int rc = gw_config_parse(&cfg, text, len, "fuzz.yaml", err, sizeof(err));
    *rc_out = rc;
    if (rc) {
        if (cfg || rc > 0 || rc < GW_CONFIG_E_ENV || !memchr(err, 0, sizeof(err)) ||
            strchr(err, '\n') || !gw_config_strerror(rc))
            abort();
        for (size_t i = 0; i < N_SECRETS; i++)
            if (strstr(err, SECRETS[which][i]) &&
                !memmem(text, len, SECRETS[which][i], strlen(SECRETS[which][i])))
                abort();
        return NULL;
    }
    if (!cfg || !cfg->source || !cfg->listen_host)
        abort();
    char *d = dump(cfg, n);
    gw_config_free(cfg);
    return d;
}

/* d without the "  # from env:VAR" comments, which only a dump of an `env:` key carries (the
 * dump itself says "***", so the parsed-back dump has a literal key and no comment). */
static char *strip_env_comments(const char *d, size_t n, size_t *out_n)
{
    static const char tag[] = "  # from env:";
    char *o = malloc(n + 1);
    if (!o)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= sizeof(tag) - 1 && !memcmp(d + i, tag, sizeof(tag) - 1)) {
            while (i < n && d[i] != '\n')
                i++;
            continue;
        }
        o[k++] = d[i++];
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int rc0, rc1, rc2;
    size_t n0 = 0, n1 = 0, n2 = 0, ns = 0;
    char *d0 = parse_dump(text, size, 0, &rc0, &n0);
    char *d1 = parse_dump(text, size, 1, &rc1, &n1);
    /* The secrets' values change nothing but themselves (which are never shown). */
    if (rc0 != rc1 || !d0 != !d1 || (d0 && (n0 != n1 || memcmp(d0, d1, n0))))
        abort();
    free(d1);
    if (!d0)
        return 0;
    if (strlen(d0) != n0)
        abort();
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < N_SECRETS; i++)
            if (strstr(d0, SECRETS[w][i]) &&
                !memmem(text, size, SECRETS[w][i], strlen(SECRETS[w][i])))
                abort();

    /* The dump parses again, to the same configuration. */
    char *d2 = parse_dump(d0, n0, 0, &rc2, &n2);
    if (!d2) {
        fprintf(stderr, "dump refused (%d):\n%s\n", rc2, d0);
        abort();
    }
    char *s0 = strip_env_comments(d0, n0, &ns);
    if (ns != n2 || memcmp(s0, d2, n2)) {
        fprintf(stderr, "dump changed on re-parse:\n--- first\n%s\n--- second\n%s\n", d0, d2);
        abort();
    }
    free(s0);
    free(d2);
    free(d0);
    return 0;
}
