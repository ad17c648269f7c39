/* Pre-tokenizers of byte-level BPE vocabularies: the regex sets chosen by tokenizer.ggml.pre, run with PCRE2. */
#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tok_impl.h"

/* The regexes are those of the models' tokenizer.json files (as the reference engine lists them
 * per pre-tokenizer name), in their original form: PCRE2 has the Unicode properties, lookaheads
 * and case-insensitive groups that the reference had to rewrite for std::regex. A list of several
 * is applied in sequence: every piece left by one is split again by the next, and the text
 * between matches is kept as pieces of its own. */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_CONTRACTIONS "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define RE_LLAMA3                                                                           \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                            \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"     \
                    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DEEPSEEK_CASED                                                                   \
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}" \
    "-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}" \
    "-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}" \
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}" \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}" \
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}" \
    "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}" \
    "-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}" \
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}" \
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}" \
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}" \
    "-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}" \
    "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}" \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}" \
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}" \
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}" \
    "-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}" \
    "\\x{1E900}-\\x{1E943}"
#define RE_GPT4O                                                                            \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" \
    RE_CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"             \
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" RE_CONTRACTIONS "?|\\p{N}{1,3}"                            \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN                                                                           \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

#define MAX_RE 6

struct pre_set {
    const char *re[MAX_RE];
};

enum {
    SET_DEFAULT, SET_GPT2, SET_LLAMA3, SET_QWEN2, SET_DEEPSEEK_LLM, SET_DEEPSEEK_CODER,
    SET_FALCON, SET_STARCODER, SET_GPT4O, SET_TEKKEN, SET_BLOOM, SET_VIKING, SET_BAILING,
    SET_SEED_CODER, SET_COUNT
};

static const struct pre_set sets[SET_COUNT] = {
    [SET_DEFAULT] = {{"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    [SET_GPT2] = {{RE_GPT2}},
    [SET_LLAMA3] = {{RE_LLAMA3}},
    [SET_QWEN2] = {{RE_QWEN2}},
    [SET_DEEPSEEK_LLM] = {{"[\\r\\n]", "\\s?[" RE_DEEPSEEK_CASED "]+",
                           "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}"
                           "\\x{3000}-\\x{3002}]+",
                           "\\s+$", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
                           "\\p{N}+"}},
    [SET_DEEPSEEK_CODER] = {{"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
                             "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
                             "\\p{N}"}},
    [SET_FALCON] = {{"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    [SET_STARCODER] = {{"\\p{N}", RE_GPT2}},
    [SET_GPT4O] = {{RE_GPT4O}},
    [SET_TEKKEN] = {{RE_TEKKEN}},
    [SET_BLOOM] = {{RE_BLOOM}},
    [SET_VIKING] = {{RE_BLOOM, "\\p{N}"}},
    [SET_BAILING] = {{"'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}"
                      "| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
    [SET_SEED_CODER] = {{RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}"
                         "| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
};

/* Pre-tokenizer names as in GGUF files, with the flags the reference sets for them. */
struct pre_name {
    const char *name;
    int set;
    bool ignore_merges, add_bos, keep_spaces;  /* keep_spaces: no decode clean-up */
};

static const struct pre_name names[] = {
    {"default", SET_DEFAULT, false, false, false},
    {"gpt-2", SET_GPT2, false, false, false},
    {"gpt2", SET_GPT2, false, false, false},
    {"gpt-neox", SET_GPT2, false, false, false},
    {"phi-2", SET_GPT2, false, false, false},
    {"jina-es", SET_GPT2, false, false, false},
    {"jina-de", SET_GPT2, false, false, false},
    {"jina-v2-es", SET_GPT2, false, false, false},
    {"jina-v2-de", SET_GPT2, false, false, false},
    {"jina-v1-en", SET_GPT2, false, false, false},
    {"jina-v2-code", SET_GPT2, false, false, false},
    {"roberta-bpe", SET_GPT2, false, false, false},
    {"gigachat", SET_GPT2, false, false, false},
    {"a.x-4.0", SET_GPT2, false, false, false},
    {"mellum", SET_GPT2, false, false, false},
    {"modern-bert", SET_GPT2, false, false, false},
    {"exaone4", SET_GPT2, false, false, false},
    {"mpt", SET_GPT2, false, false, false},
    {"olmo", SET_GPT2, false, false, false},
    {"jais", SET_GPT2, false, false, false},
    {"trillion", SET_GPT2, false, false, true},
    {"granite-docling", SET_GPT2, false, false, true},
    {"llama3", SET_LLAMA3, true, true, false},
    {"llama-v3", SET_LLAMA3, true, true, false},
    {"llama-bpe", SET_LLAMA3, true, true, false},
    {"falcon3", SET_LLAMA3, true, true, false},
    {"falcon-h1", SET_LLAMA3, true, true, false},
    {"pixtral", SET_LLAMA3, true, true, false},
    {"midm-2.0", SET_LLAMA3, true, true, false},
    {"lfm2", SET_LLAMA3, true, true, false},
    {"dbrx", SET_LLAMA3, false, false, false},
    {"smaug-bpe", SET_LLAMA3, false, false, false},
    {"chatglm-bpe", SET_LLAMA3, false, false, false},
    {"glm4", SET_LLAMA3, false, false, false},
    {"qwen2", SET_QWEN2, false, false, true},
    {"deepseek-r1-qwen", SET_QWEN2, false, false, true},
    {"stablelm2", SET_QWEN2, false, false, false},
    {"hunyuan", SET_QWEN2, false, false, true},
    {"megrez", SET_QWEN2, false, false, false},
    {"grok-2", SET_QWEN2, false, false, true},
    {"deepseek-llm", SET_DEEPSEEK_LLM, false, false, true},
    {"deepseek-coder", SET_DEEPSEEK_CODER, false, false, true},
    {"falcon", SET_FALCON, false, false, false},
    {"starcoder", SET_STARCODER, false, false, false},
    {"refact", SET_STARCODER, false, false, false},
    {"command-r", SET_STARCODER, false, false, true},
    {"smollm", SET_STARCODER, false, false, true},
    {"codeshell", SET_STARCODER, false, false, false},
    {"exaone", SET_STARCODER, false, false, false},
    {"minerva-7b", SET_STARCODER, false, false, false},
    {"gpt-4o", SET_GPT4O, false, false, true},
    {"llama4", SET_GPT4O, false, false, true},
    {"tekken", SET_TEKKEN, true, true, true},
    {"bloom", SET_BLOOM, false, false, false},
    {"poro-chat", SET_BLOOM, false, false, true},
    {"gpt3-finnish", SET_BLOOM, false, false, false},
    {"viking", SET_VIKING, false, false, true},
    {"bailingmoe", SET_BAILING, false, false, true},
    {"bailingmoe2", SET_BAILING, false, false, true},
    {"seed-coder", SET_SEED_CODER, false, false, true},
};

struct tok__pretok {
    int n;
    pcre2_code *code[MAX_RE];
};

int tok__pretok_new(struct tokenizer *tok, char *err, size_t errlen)
{
    const struct pre_name *pn = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(names[i].name, tok->pre_name)) {
            pn = &names[i];
            break;
        }
    }
    if (!pn) {
        tok__errf(err, errlen, "tokenizer.ggml.pre: unsupported pre-tokenizer \"%s\"",
                  tok->pre_name);
        return TOKENIZER_E_UNSUPPORTED;
    }
    tok->ignore_merges = pn->ignore_merges;
    tok->add_bos = pn->add_bos;
    tok->clean_spaces = !pn->keep_spaces;
    if (!strcmp(pn->name, "chatglm-bpe") || !strcmp(pn->name, "glm4"))
        tok->bos = -1;
    struct tok__pretok *p = calloc(1, sizeof(*p));
    if (!p)
        return TOKENIZER_E_NOMEM;
    tok->pretok = p;
    const struct pre_set *set = &sets[pn->set];
    for (int i = 0; i < MAX_RE && set->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        p->code[i] = pcre2_compile((PCRE2_SPTR)set->re[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            tok__errf(err, errlen, "tokenizer.ggml.pre \"%s\": regex %d: %s at %zu",
                      tok->pre_name, i, (const char *)msg, (size_t)eo);
            return TOKENIZER_E_REGEX;
        }
        p->n = i + 1;
        /* no JIT (e.g. a platform without it) only costs speed */
        (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
    }
    return 0;
}

void tok__pretok_free(struct tok__pretok *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        pcre2_code_free(p->code[i]);
    free(p);
}

static int push_span(struct tok__buf *b, size_t *n, size_t off, size_t len)
{
    if (tok__reserve(b, (*n + 1) * sizeof(struct tok__span)))
        return TOKENIZER_E_NOMEM;
    ((struct tok__span *)b->p)[(*n)++] = (struct tok__span){off, len};
    return 0;
}

/* Split every span of `in` by one regex into `out` (matches and the text between them). */
static int64_t split_stage(const pcre2_code *code, pcre2_match_data *md, const char *text,
                           const struct tok__span *in, size_t n_in, struct tok__buf *out)
{
    size_t n = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (size_t i = 0; i < n_in; i++) {
        const char *sub = text + in[i].off;
        size_t len = in[i].len, pos = 0, at = 0;
        while (at < len) {
            int rc = pcre2_match(code, (PCRE2_SPTR)sub, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0)
                return TOKENIZER_E_REGEX;
            size_t ms = ov[0], me = ov[1];
            if (me == ms) {
                /* empty match: step over one character */
                at = ms + 1;
                while (at < len && ((unsigned char)sub[at] & 0xC0) == 0x80)
                    at++;
                continue;
            }
            if (ms > pos && push_span(out, &n, in[i].off + pos, ms - pos))
                return TOKENIZER_E_NOMEM;
            if (push_span(out, &n, in[i].off + ms, me - ms))
                return TOKENIZER_E_NOMEM;
            pos = at = me;
        }
        if (pos < len && push_span(out, &n, in[i].off + pos, len - pos))
            return TOKENIZER_E_NOMEM;
    }
    return (int64_t)n;
}

int64_t tok__pretok_split(const struct tok__pretok *p, struct tok__scratch *s, const char *text,
                          size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    if (push_span(&s->spans, &n, 0, len))
        return TOKENIZER_E_NOMEM;
    for (int i = 0; i < p->n; i++) {
        int64_t m = split_stage(p->code[i], s->match_data, text, s->spans.p, n, &s->spans2);
        if (m < 0)
            return m;
        struct tok__buf t = s->spans;
        s->spans = s->spans2;
        s->spans2 = t;
        n = (size_t)m;
    }
    return (int64_t)n;
}
