/* tandem models: list the GGUF models (and partial downloads) in the local cache. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_cache.h"

#define NAME_COL_MAX 48

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem models [--json]\n"
               "  Lists the models in $TANDEM_HOME/models (default ~/.cache/tandem/models):\n"
               "  size, architecture, type, parameters and path; partial downloads too.\n"
               "  --json prints a JSON array instead.\n");
}

/* The TYPE column: the file type, or what keeps the file from being usable. */
static void status_text(const struct model_cache_entry *e, char *buf, size_t cap)
{
    if (e->partial && e->total && e->size <= e->total)
        snprintf(buf, cap, "partial (%d%%)", (int)(e->size * 100 / e->total));
    else if (e->partial)
        snprintf(buf, cap, "partial");
    else if (e->error[0])
        snprintf(buf, cap, "invalid");
    else
        snprintf(buf, cap, "%s", e->type[0] ? e->type : "?");
}

static int print_text(const char *dir, const struct model_cache_entry *v, int n)
{
    int nw = 4;
    for (int i = 0; i < n; i++) {
        int l = (int)strlen(v[i].name);
        nw = l > nw ? (l > NAME_COL_MAX ? NAME_COL_MAX : l) : nw;
    }
    printf("%-*s  %9s  %-10s  %-14s  %7s  %s\n", nw, "NAME", "SIZE", "ARCH", "TYPE", "PARAMS",
           "PATH");
    for (int i = 0; i < n; i++) {
        const struct model_cache_entry *e = &v[i];
        char size[32], type[48], params[32];
        model_cache_format_size(e->size, size, sizeof(size));
        status_text(e, type, sizeof(type));
        if (e->n_params)
            model_cache_format_params(e->n_params, params, sizeof(params));
        else
            snprintf(params, sizeof(params), "-");
        printf("%-*s  %9s  %-10s  %-14s  %7s  %s\n", nw, e->name, size, e->arch[0] ? e->arch : "-",
               type, params, e->path);
    }
    for (int i = 0; i < n; i++)
        if (v[i].error[0])
            printf("note: %s\n", v[i].error);
    int partial = 0;
    for (int i = 0; i < n; i++)
        partial += v[i].partial;
    if (partial)
        printf("%d partial download%s in %s: run the same 'tandem pull' again to resume\n", partial,
               partial > 1 ? "s" : "", dir);
    return 0;
}

/* A JSON string of a file name or path; bytes that are not valid UTF-8 become '?'. */
static json_t *json_path(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *entry_json(const struct model_cache_entry *e)
{
    json_t *o = json_pack("{s:o?, s:o?, s:I, s:s}", "name", json_path(e->name), "path",
                          json_path(e->path), "size", (json_int_t)e->size, "status",
                          e->partial    ? "partial"
                          : e->error[0] ? "invalid"
                                        : "complete");
    if (!o)
        return NULL;
    int bad = 0;
    if (e->partial) {
        bad |= json_object_set_new(o, "expected_size",
                                   e->total ? json_integer((json_int_t)e->total) : json_null());
        bad |= json_object_set_new(o, "percent",
                                   e->total && e->size <= e->total
                                       ? json_integer((json_int_t)(e->size * 100 / e->total))
                                       : json_null());
    } else {
        bad |= json_object_set_new(o, "arch", e->arch[0] ? json_string(e->arch) : json_null());
        bad |= json_object_set_new(o, "type", e->type[0] ? json_string(e->type) : json_null());
        bad |= json_object_set_new(
            o, "n_params", e->n_params ? json_integer((json_int_t)e->n_params) : json_null());
        bad |=
            json_object_set_new(o, "sha256", e->sha256[0] ? json_string(e->sha256) : json_null());
        if (e->error[0])
            bad |= json_object_set_new(o, "error", json_string(e->error));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(const struct model_cache_entry *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *e = entry_json(&v[i]);
        if (!e || json_array_append_new(a, e)) {
            json_decref(a);
            a = NULL;
        }
    }
    if (!a) {
        fprintf(stderr, "tandem models: out of memory building JSON\n");
        return 1;
    }
    int rc =
        json_dumpf(a, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) || fputc('\n', stdout) == EOF;
    json_decref(a);
    return rc ? 1 : 0;
}

int cmd_models(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else {
            fprintf(stderr, "tandem models: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char dir[MODEL_CACHE_PATH_MAX];
    int rc = model_cache_models_dir(dir, sizeof(dir), false);
    if (rc) {
        fprintf(stderr, "tandem models: %s\n", model_cache_strerror(rc));
        return 1;
    }
    struct model_cache_entry *v = NULL;
    int n = model_cache_list(dir, &v);
    if (n < 0) {
        fprintf(stderr, "tandem models: %s: %s\n", dir,
                n == MODEL_CACHE_E_IO ? strerror(errno) : model_cache_strerror(n));
        return 1;
    }
    int status;
    if (json)
        status = print_json(v, n);
    else if (n == 0) {
        printf(
            "no models in %s yet\n"
            "  download one with: tandem pull hf://OWNER/REPO/FILE.gguf   (or an https:// URL)\n",
            dir);
        status = 0;
    } else {
        status = print_text(dir, v, n);
    }
    free(v);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "tandem models: error writing output\n");
        status = 1;
    }
    return status;
}
