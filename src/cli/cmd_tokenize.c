/* tandem tokenize: text to token ids with a GGUF file's tokenizer (vocab-only files work too). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "engine/gguf.h"
#include "tokenizer/tokenizer.h"

#define MAX_INPUT (64u << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem tokenize -m MODEL [--file F | TEXT] [--ids] [--no-bos] [--parse-special]\n"
               "  Prints one line per token (id, then the piece quoted), or with --ids the ids\n"
               "  space-separated on one line. BOS/EOS are added as the model's metadata says\n"
               "  unless --no-bos; --parse-special turns control-token text into those tokens.\n");
}

/* Reads a whole file ("-" = stdin) up to MAX_INPUT bytes. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "tandem tokenize: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            if (cap >= MAX_INPUT) {
                fprintf(stderr, "tandem tokenize: %s: larger than %u MiB\n", path, MAX_INPUT >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        fprintf(stderr, "tandem tokenize: %s: read error\n", path);
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static void print_quoted(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *text = NULL;
    int ids_only = 0, no_bos = 0, parse_special = 0, rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = args_value("tokenize", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--file") || !strcmp(a, "-f")) {
            if (!(file = args_value("tokenize", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--ids")) {
            ids_only = 1;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = 1;
        } else if (a[0] == '-' && a[1] && strcmp(a, "--")) {
            fprintf(stderr, "tandem tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            if (!strcmp(a, "--") && i + 1 < argc)
                a = argv[++i];
            if (text) {
                fprintf(stderr, "tandem tokenize: give the text as one argument (quote it)\n");
                return 2;
            }
            text = a;
        }
    }
    if (!model || (!file == !text)) {
        usage(stderr);
        return 2;
    }
    struct gguf *g = NULL;
    struct tokenizer *tok = NULL;
    char *buf = NULL;
    int32_t *ids = NULL;
    char err[512];
    size_t len = 0;
    if (file) {
        if (!(buf = read_all(file, &len)))
            goto out;
        text = buf;
    } else {
        len = strlen(text);
    }
    if (gguf_open(&g, model, err, sizeof(err))) {
        fprintf(stderr, "tandem tokenize: %s\n", err);
        goto out;
    }
    if (tokenizer_from_gguf(&tok, g, err, sizeof(err))) {
        fprintf(stderr, "tandem tokenize: %s\n", err);
        goto out;
    }
    const unsigned flags = (no_bos ? 0 : TOKENIZER_ADD_SPECIAL) | (parse_special ? TOKENIZER_PARSE_SPECIAL : 0);
    size_t cap = len + 16;
    ids = malloc(cap * sizeof(int32_t));
    if (!ids)
        goto out;
    int n = tokenizer_encode(tok, text, len, ids, cap, flags);
    if (n > (int)cap) {
        cap = (size_t)n;
        int32_t *p = realloc(ids, cap * sizeof(int32_t));
        if (!p)
            goto out;
        ids = p;
        n = tokenizer_encode(tok, text, len, ids, cap, flags);
    }
    if (n < 0) {
        fprintf(stderr, "tandem tokenize: %s\n", tokenizer_strerror(n));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        size_t plen = 0;
        const char *piece = tokenizer_piece_ref(tok, ids[i], &plen, TOKENIZER_DECODE_SPECIAL);
        printf("%6d ", ids[i]);
        print_quoted(piece ? piece : "", piece ? plen : 0);
        putchar('\n');
    }
    if (ids_only)
        putchar('\n');
    rc = fflush(stdout) ? 1 : 0;
out:
    free(ids);
    free(buf);
    tokenizer_free(tok);
    gguf_close(g);
    return rc;
}
