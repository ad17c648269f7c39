/* Chat templates: a conversation rendered into prompt text by the model's Jinja template. */
#ifndef TANDEM_TOKENIZER_CHAT_TEMPLATE_H
#define TANDEM_TOKENIZER_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gguf;

/* Negative error codes; chat_strerror names them. Functions taking an error buffer also put
 * one line there ("line 3: unknown filter 'foo'"). */
enum chat_error {
    CHAT_OK = 0,
    CHAT_E_INVALID = -1, /* bad argument: NULL message field, unknown role... */
    CHAT_E_NOMEM = -2,
    CHAT_E_SYNTAX = -3,  /* the template does not parse (unterminated tag, unknown filter...) */
    CHAT_E_RUNTIME = -4, /* the template failed while rendering (type error, unknown method) */
    CHAT_E_RAISED = -5,  /* the template called raise_exception(message) */
    CHAT_E_LIMIT = -6,   /* output size, memory, step count or nesting depth over its bound */
};

const char *chat_strerror(int err);

/* Template families with a built-in template (docs/chat-templates.md shows each format). */
enum chat_family {
    CHAT_FAMILY_NONE = 0, /* not a known family (a custom template) */
    CHAT_FAMILY_CHATML,   /* <|im_start|>role\n...<|im_end|>  (Qwen, OpenHermes, Yi...) */
    CHAT_FAMILY_LLAMA2,   /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] */
    CHAT_FAMILY_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_FAMILY_MISTRAL,  /* <s>[INST] ... [/INST]...</s>; system merged into the first turn */
    CHAT_FAMILY_ZEPHYR,   /* <|user|>\n...</s>\n */
    CHAT_FAMILY_PHI3,     /* <|user|>\n...<|end|>\n */
    CHAT_FAMILY_GEMMA,    /* <start_of_turn>user\n...<end_of_turn>\n; system merged */
    CHAT_FAMILY_FALCON,   /* System: / User: / Falcon: */
    CHAT_FAMILY_VICUNA,   /* USER: ... ASSISTANT: ...</s> */
    CHAT_FAMILY_OPENCHAT, /* GPT4 Correct User: ...<|end_of_turn|> */
    CHAT_FAMILY_COUNT
};

/* "chatml", "llama2", ...; "none" for CHAT_FAMILY_NONE. */
const char *chat_family_name(enum chat_family f);
/* A family from its name (case-insensitive; "llama-2", "qwen", "mixtral" and similar aliases
 * accepted), or CHAT_FAMILY_NONE. */
enum chat_family chat_family_from_name(const char *name);
/* The family a template's text looks like, by its distinctive markers, or CHAT_FAMILY_NONE. */
enum chat_family chat_family_detect(const char *source, size_t len);
/* The text that ends an assistant turn in the family's format, when it is not simply the EOS
 * token: "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", and
 * "\nUser:" for Falcon. NULL for families that end turns with EOS (Llama 2, Mistral, Zephyr,
 * Vicuna). Generation should stop there: as a stop token when the vocabulary has it as one
 * (the usual case), else as a stop string. */
const char *chat_family_end_of_turn(enum chat_family f);

/* Template flags. */
#define CHAT_TEMPLATE_BUILTIN 0x1u  /* the built-in template of a family is used */
#define CHAT_TEMPLATE_FALLBACK 0x2u /* the given template did not parse: the built-in template of
                                     * the family its markers suggest is used instead */
#define CHAT_TEMPLATE_UNKNOWN 0x4u  /* no template, or an unparsable one of no known family:
                                     * ChatML is used. Warn the user: output may be poor. */

struct chat_template; /* immutable once made: one may render for many threads at once */

/* A template from a template's text or a family name (chat_family_from_name). Never fails on
 * a bad template: a template that does not parse gives the built-in template of its detected
 * family (CHAT_TEMPLATE_FALLBACK) or ChatML (also CHAT_TEMPLATE_UNKNOWN), with the parse error
 * in errbuf as a warning (a text over 1 MiB counts as not parsing). NULL or "" gives ChatML
 * with CHAT_TEMPLATE_UNKNOWN. Returns 0 or CHAT_E_NOMEM. */
int chat_template_new(struct chat_template **out, const char *source, char *errbuf,
                      size_t errlen);
/* The same with an explicit length (the text need not be NUL-terminated). */
int chat_template_new_len(struct chat_template **out, const char *source, size_t len,
                          char *errbuf, size_t errlen);
/* The model's template: `override` (a name or template text) when not NULL, else the GGUF's
 * tokenizer.chat_template, else ChatML with CHAT_TEMPLATE_UNKNOWN. */
int chat_template_from_gguf(struct chat_template **out, const struct gguf *g,
                            const char *override, char *errbuf, size_t errlen);
void chat_template_free(struct chat_template *t); /* accepts NULL */

unsigned chat_template_flags(const struct chat_template *t);
/* The built-in family in use, or else the family the template's markers suggest (used for the
 * run-time fallback), or CHAT_FAMILY_NONE. */
enum chat_family chat_template_family(const struct chat_template *t);
/* The Jinja text being rendered (the built-in one for a family). Valid until free. */
const char *chat_template_source(const struct chat_template *t);

struct chat_message {
    const char *role;    /* "system", "user", "assistant" (others are passed to the template) */
    const char *content; /* NUL-terminated UTF-8 */
};

struct chat_apply_params {
    const struct chat_message *messages;
    size_t n_messages;
    bool add_generation_prompt; /* end with the header of an assistant turn */
    const char *bos_token;      /* the text of BOS/EOS as templates print them; NULL = "" */
    const char *eos_token;
    bool strict;       /* report template errors instead of falling back (see below) */
    size_t max_output; /* bytes; 0 = 1 MiB + 8 x the size of the messages */
    int64_t now;       /* Unix time for strftime_now(); 0 = the current time */
};

/* Result flags. */
#define CHAT_PROMPT_MERGED_SYSTEM 0x1u /* the template rejects a system role: the system message
                                        * was put before the first user message, "\n\n" between */
#define CHAT_PROMPT_FALLBACK 0x2u      /* the template failed while rendering: the built-in
                                        * template of its family (or ChatML) was used */
#define CHAT_PROMPT_HAS_BOS 0x4u       /* the text starts with bos_token: tokenize it without
                                        * adding another BOS */

struct chat_prompt {
    char *text; /* NUL-terminated, malloc'd; chat_prompt_free */
    size_t len;
    unsigned flags;
};

/* Renders the conversation. The caller tokenizes the text with special-token parsing on.
 * Order of attempts: the template; if it raises or fails and the first message is a system
 * message, the template again with the system message merged into the first user message
 * (Gemma, Mistral v0.1 and others have no system role); then, unless p->strict, the built-in
 * template of the family (a hostile template hitting a limit falls back too). A fallback
 * returns 0 with CHAT_PROMPT_FALLBACK set and the original error in errbuf. Errors: a negative
 * chat_error (out->text is NULL). */
int chat_template_apply(const struct chat_template *t, const struct chat_apply_params *p,
                        struct chat_prompt *out, char *errbuf, size_t errlen);
void chat_prompt_free(struct chat_prompt *p); /* accepts NULL and a zeroed prompt */

#endif
