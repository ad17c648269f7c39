/* Internal: the Jinja-subset interpreter behind chat templates (arena, syntax tree, values). */
#ifndef TANDEM_TOKENIZER_CHAT_JINJA_H
#define TANDEM_TOKENIZER_CHAT_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/chat_template.h"

/* Hard bounds, so that no template can exhaust memory, the stack or time. */
#define JINJA_MAX_SOURCE (1u << 20)    /* bytes of template text */
#define JINJA_MAX_PARSE_DEPTH 200      /* nested expressions + blocks while parsing */
#define JINJA_MAX_EVAL_DEPTH 400       /* nested evaluation, macro calls included */
#define JINJA_MAX_RANGE (1 << 20)      /* elements of one range() */

/* ---- arena: bump allocation in chunks, with a cap on the total ---- */

struct jinja_chunk;

struct jinja_arena {
    struct jinja_chunk *head;
    size_t total; /* bytes obtained from malloc */
    size_t cap;   /* 0: no cap */
    bool hit_cap; /* an allocation was refused because of the cap (not malloc) */
};

/* 16-byte aligned; NULL when out of memory or over the cap. */
void *chat__arena_alloc(struct jinja_arena *a, size_t n);
void chat__arena_free(struct jinja_arena *a);

/* ---- syntax tree ---- */

enum jinja_node_kind {
    /* statements */
    JN_TEXT,      /* s,n: literal text */
    JN_OUTPUT,    /* a: expression */
    JN_IF,        /* kids: conditions, kids2: bodies (JN_BODY), c: else body or NULL */
    JN_FOR,       /* names[0..n_names): targets, a: iterable, b: filter or NULL,
                   * c: body, d: else body or NULL */
    JN_SET,       /* names[0] (and s,n: attribute for ns.attr), a: value */
    JN_SET_BLOCK, /* names[0], c: body, kids: filters applied to it */
    JN_MACRO,     /* names[0]: macro name, names[1..]: params, kids2: defaults (NULL entries
                   * for none), c: body */
    JN_FILTER_BLOCK, /* kids: filters (JN_FILTER with a NULL operand), c: body */
    JN_BREAK,
    JN_CONTINUE,
    JN_BODY,      /* kids: statements */
    /* expressions */
    JN_LITERAL,   /* lit */
    JN_NAME,      /* s,n */
    JN_GETATTR,   /* a: object, s,n: name */
    JN_GETITEM,   /* a: object, b: key */
    JN_SLICE,     /* a: object, b/c/d: start/stop/step or NULL */
    JN_CALL,      /* a: callee, kids: args, names: keyword names ([i] NULL for positional) */
    JN_FILTER,    /* op: filter id, a: operand, kids/names: args as for calls */
    JN_TEST,      /* op: test id, flags: negated, a: operand, kids: args */
    JN_UNARY,     /* op: '!' not, '-' or '+', a */
    JN_BINARY,    /* op: jinja_binop, a, b */
    JN_COND,      /* a: then value, b: condition, c: else value or NULL */
    JN_LIST,      /* kids; flags 1: a tuple (printed with parentheses) */
    JN_DICT,      /* kids: keys, kids2: values */
};

enum jinja_binop {
    JB_ADD = 1, JB_SUB, JB_MUL, JB_DIV, JB_FLOORDIV, JB_MOD, JB_POW, JB_CONCAT,
    JB_EQ, JB_NE, JB_LT, JB_LE, JB_GT, JB_GE, JB_IN, JB_NOTIN, JB_AND, JB_OR,
};

enum jinja_filter {
    JF_ABS = 1, JF_ATTR, JF_CAPITALIZE, JF_DEFAULT, JF_DICTSORT, JF_FIRST, JF_FLOAT, JF_INDENT,
    JF_INT, JF_ITEMS, JF_JOIN, JF_LAST, JF_LENGTH, JF_LIST, JF_LOWER, JF_MAP, JF_MAX, JF_MIN,
    JF_REJECT, JF_REJECTATTR, JF_REPLACE, JF_REVERSE, JF_ROUND, JF_SAFE, JF_SELECT,
    JF_SELECTATTR, JF_SORT, JF_STRING, JF_SUM, JF_TITLE, JF_TOJSON, JF_TRIM, JF_UNIQUE, JF_UPPER,
    JF_WORDCOUNT, JF_ESCAPE,
};

enum jinja_test {
    JT_DEFINED = 1, JT_UNDEFINED, JT_NONE, JT_STRING, JT_NUMBER, JT_INTEGER, JT_FLOAT,
    JT_BOOLEAN, JT_TRUE, JT_FALSE, JT_MAPPING, JT_ITERABLE, JT_SEQUENCE, JT_CALLABLE, JT_ODD,
    JT_EVEN, JT_DIVISIBLEBY, JT_EQ, JT_NE, JT_LT, JT_LE, JT_GT, JT_GE, JT_IN, JT_LOWER, JT_UPPER,
    JT_SAMEAS,
};

/* Ids of filters and tests by name (0 if unknown), shared by the parser and the evaluator
 * (map('lower'), select('odd')). */
int chat__jinja_filter_id(const char *name, size_t n);
int chat__jinja_test_id(const char *name, size_t n);

enum jinja_type {
    JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC,
    JV_MACRO, JV_LOOP,
};

struct jinja_list;
struct jinja_dict;
struct jinja_func;
struct jinja_loop;
struct jinja_node;

/* A value: scalars inline, aggregates by pointer into the render arena. Strings are byte
 * ranges (not NUL-terminated). */
struct jinja_value {
    enum jinja_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct jinja_list *list;
        struct jinja_dict *dict;
        struct jinja_func *func;
        const struct jinja_node *macro;
        struct jinja_loop *loop;
    } u;
};

struct jinja_node {
    enum jinja_node_kind kind;
    int op;
    int flags;
    int line;
    const char *s;
    size_t n;
    struct jinja_value lit;
    struct jinja_node *a, *b, *c, *d;
    struct jinja_node **kids;
    size_t n_kids;
    struct jinja_node **kids2;
    size_t n_kids2;
    const char **names; /* NUL-terminated, in the program's arena */
    size_t n_names;
};

struct jinja_program {
    struct jinja_arena arena;
    struct jinja_node *root; /* JN_BODY */
};

/* ---- tokens (chat_jinja_lex.c -> chat_jinja_parse.c) ---- */

enum jinja_tok_kind {
    TK_EOF, TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END, TK_NAME, TK_STRING,
    TK_INT, TK_FLOAT, TK_OP,
};

/* multi-character operators; single characters are their own code */
enum { OP_EQ = 256, OP_NE, OP_LE, OP_GE, OP_FLOORDIV, OP_POW };

struct jinja_token {
    enum jinja_tok_kind kind;
    int op;
    int line;
    const char *s; /* TEXT, NAME, STRING (unescaped) */
    size_t n;
    int64_t i;
    double f;
};

/* Splits a template into tokens in the arena: TEXT runs with whitespace control, trim_blocks
 * and lstrip_blocks applied, tag delimiters, and the tokens inside tags; TK_EOF last. */
int chat__jinja_lex(struct jinja_arena *arena, const char *src, size_t len,
                    struct jinja_token **toks, size_t *n, char *errbuf, size_t errlen);

/* Parses a template (trim_blocks and lstrip_blocks on, as Hugging Face renders them).
 * Returns 0 or CHAT_E_SYNTAX / CHAT_E_NOMEM / CHAT_E_INVALID with a message in errbuf. */
int chat__jinja_parse(struct jinja_program **out, const char *src, size_t len, char *errbuf,
                      size_t errlen);
void chat__jinja_free(struct jinja_program *p);

struct jinja_input {
    const struct chat_message *messages;
    size_t n_messages;
    const char *bos_token, *eos_token;
    bool add_generation_prompt;
    size_t max_output;   /* bytes of the result */
    size_t max_memory;   /* bytes of the render arena */
    uint64_t max_steps;  /* evaluation steps */
    int64_t now;         /* for strftime_now */
};

/* Renders; *out is malloc'd and NUL-terminated. Returns 0 or a negative chat_error with a
 * message ("line N: ...") in errbuf. */
int chat__jinja_render(const struct jinja_program *p, const struct jinja_input *in, char **out,
                       size_t *out_len, char *errbuf, size_t errlen);

#endif
