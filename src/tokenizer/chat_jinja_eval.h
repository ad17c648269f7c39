/* Internal: evaluator state and the value operations shared by chat_jinja.c and chat_jinja_lib.c. */
#ifndef TANDEM_TOKENIZER_CHAT_JINJA_EVAL_H
#define TANDEM_TOKENIZER_CHAT_JINJA_EVAL_H

#include "tokenizer/chat_jinja.h"

struct jinja_list {
    struct jinja_value *v;
    size_t n, cap;
    bool tuple; /* printed as (a, b); otherwise a list in every way */
};

/* Insertion-ordered; keys compare as values. A namespace() is a dict whose entries `set`
 * may change (the only mutable value). */
struct jinja_dict {
    struct jinja_value *k, *v;
    size_t n, cap;
    bool ns;
};

struct jinja_func {
    int id;                  /* enum func_id */
    struct jinja_value self; /* the object of a method */
};

struct jinja_loop {
    const struct jinja_list *seq;
    size_t index0;
};

enum func_id {
    FN_RAISE = 1, FN_RANGE, FN_NAMESPACE, FN_STRFTIME, FN_DICT,
    M_STRIP, M_LSTRIP, M_RSTRIP, M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE, M_STARTSWITH,
    M_ENDSWITH, M_SPLIT, M_REPLACE, M_FIND, M_JOIN,
    M_ITEMS, M_KEYS, M_VALUES, M_GET,
    M_CYCLE,
};

/* Statement results besides 0 and negative errors. */
enum { CTRL_BREAK = 1, CTRL_CONTINUE = 2 };

struct var {
    const char *p;
    size_t n;
    struct jinja_value v;
};

struct frame {
    struct frame *parent;
    struct var *vars;
    size_t n, cap;
};

/* Output being built: malloc'd, NUL-terminated, at most max bytes. */
struct sink {
    char *p;
    size_t n, cap, max;
};

/* Call arguments: names[i] is NULL for a positional argument. */
struct args {
    size_t n;
    struct jinja_value *v;
    const char **names;
};

struct render {
    const struct jinja_input *in;
    struct jinja_arena arena;
    uint64_t steps;
    int depth;
    int line; /* of the node being evaluated, for messages */
    int rc;   /* the first error */
    char *err;
    size_t errlen;
    struct frame *root;
};

#define V_UNDEF ((struct jinja_value){.type = JV_UNDEF})
#define V_NONE ((struct jinja_value){.type = JV_NONE})
#define V_BOOL(x) ((struct jinja_value){.type = JV_BOOL, .u.b = (x)})
#define V_INT(x) ((struct jinja_value){.type = JV_INT, .u.i = (x)})
#define V_FLOAT(x) ((struct jinja_value){.type = JV_FLOAT, .u.f = (x)})
#define V_STR(ptr, len) ((struct jinja_value){.type = JV_STR, .u.s = {(ptr), (len)}})

/* Records the first error (with the current line) and returns rc. */
int chat__jinja_fail(struct render *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define FAIL chat__jinja_fail

/* Arena allocation for values; on failure records CHAT_E_LIMIT or CHAT_E_NOMEM. */
void *chat__jinja_alloc(struct render *r, size_t n);
/* Counts a step and a nesting level (the caller decrements r->depth). */
int chat__jinja_enter(struct render *r);

int chat__jinja_put(struct render *r, struct sink *s, const char *p, size_t n);
int chat__jinja_str_new(struct render *r, const char *p, size_t n, struct jinja_value *out);
struct jinja_list *chat__jinja_list_new(struct render *r, size_t cap);
int chat__jinja_list_push(struct render *r, struct jinja_list *l, struct jinja_value v);
struct jinja_dict *chat__jinja_dict_new(struct render *r, bool ns);
struct jinja_value *chat__jinja_dict_find(const struct jinja_dict *d, const char *p, size_t n);
int chat__jinja_dict_set(struct render *r, struct jinja_dict *d, struct jinja_value key,
                         struct jinja_value v);
int chat__jinja_func(struct render *r, int id, struct jinja_value self, struct jinja_value *out);

int chat__jinja_eval(struct render *r, struct frame *f, const struct jinja_node *nd,
                     struct jinja_value *out);

/* chat_jinja_value.c and chat_jinja_filters.c */
const char *chat__jinja_type_name(struct jinja_value v);
bool chat__jinja_truthy(struct jinja_value v);
int chat__jinja_equal(struct render *r, struct jinja_value a, struct jinja_value b, int *eq);
/* str(v) (or repr(v)) appended to a sink, as Python prints it. */
int chat__jinja_write(struct render *r, struct sink *s, struct jinja_value v, bool repr);
int chat__jinja_binop(struct render *r, int op, struct jinja_value a, struct jinja_value b,
                      struct jinja_value *out);
int chat__jinja_getattr(struct render *r, struct jinja_value obj, const char *name, size_t n,
                        struct jinja_value *out);
int chat__jinja_getitem(struct render *r, struct jinja_value obj, struct jinja_value key,
                        struct jinja_value *out);
int chat__jinja_slice(struct render *r, struct jinja_value obj, struct jinja_value start,
                      struct jinja_value stop, struct jinja_value step, struct jinja_value *out);
/* The items a for loop visits: list items, dict keys, string characters; none for undefined. */
int chat__jinja_iterate(struct render *r, struct jinja_value v, struct jinja_list **out);
int chat__jinja_filter(struct render *r, int id, struct jinja_value v, const struct args *a,
                       struct jinja_value *out);
int chat__jinja_test(struct render *r, int id, struct jinja_value v, const struct args *a,
                     bool *out);
int chat__jinja_call_builtin(struct render *r, const struct jinja_func *fn, const struct args *a,
                             struct jinja_value *out);

/* helpers shared by chat_jinja_value.c and chat_jinja_filters.c */
size_t chat__jinja_cp_count(const char *p, size_t n);            /* UTF-8 code points */
size_t chat__jinja_cp_offset(const char *p, size_t n, size_t idx); /* byte offset of one */
size_t chat__jinja_cp_len_at(const char *p, size_t n, size_t off); /* its length in bytes */
int chat__jinja_put_str(struct render *r, struct sink *s, const char *z);
/* str(v) as a string value (strings as they are, undefined as ""). */
int chat__jinja_to_str(struct render *r, struct jinja_value v, struct jinja_value *out);
/* Order of numbers, strings (ci: ASCII case-insensitive) and lists; error otherwise. */
int chat__jinja_compare(struct render *r, struct jinja_value a, struct jinja_value b, bool ci,
                        int *c);
int chat__jinja_contains(struct render *r, struct jinja_value needle, struct jinja_value hay,
                         bool *res);
int chat__jinja_to_json(struct render *r, struct jinja_value v, int indent,
                        struct jinja_value *out);
/* A dotted attribute path ("function.name"; numeric parts index lists). */
int chat__jinja_attr_path(struct render *r, struct jinja_value v, const char *path, size_t n,
                          struct jinja_value *out);

/* Python's int/bool/float views of a value. */
static inline bool is_int(struct jinja_value v)
{
    return v.type == JV_INT || v.type == JV_BOOL;
}

static inline bool is_num(struct jinja_value v)
{
    return is_int(v) || v.type == JV_FLOAT;
}

static inline int64_t as_int(struct jinja_value v)
{
    return v.type == JV_BOOL ? (int64_t)v.u.b : v.u.i;
}

static inline double as_f(struct jinja_value v)
{
    return v.type == JV_FLOAT ? v.u.f : (double)as_int(v);
}

static inline struct jinja_value list_value(struct jinja_list *l)
{
    return (struct jinja_value){.type = JV_LIST, .u.list = l};
}

static inline struct jinja_value dict_value(struct jinja_dict *d)
{
    return (struct jinja_value){.type = JV_DICT, .u.dict = d};
}



#endif
