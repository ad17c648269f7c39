/* Vocabulary loading from GGUF metadata: tokens, types, scores, special ids, flags; accessors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/gguf.h"
#include "tokenizer/tok_impl.h"

#define MAX_VOCAB (16u << 20)         /* tokens */
#define MAX_TOKEN_BYTES (1u << 16)    /* one token's text */

const char *tokenizer_strerror(int err)
{
    switch (err) {
    case TOKENIZER_OK: return "success";
    case TOKENIZER_E_NOMEM: return "out of memory";
    case TOKENIZER_E_MISSING: return "missing tokenizer metadata";
    case TOKENIZER_E_TYPE: return "tokenizer metadata of the wrong type";
    case TOKENIZER_E_INVALID: return "invalid tokenizer metadata";
    case TOKENIZER_E_UNSUPPORTED: return "unsupported tokenizer";
    case TOKENIZER_E_LIMIT: return "input too large";
    case TOKENIZER_E_ARG: return "invalid argument";
    case TOKENIZER_E_REGEX: return "pre-tokenizer regex failure";
    default: return "unknown tokenizer error";
    }
}

void tok__errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Fetch an array-of-T value; E_MISSING if absent (when required), E_TYPE if not such an array. */
static int get_array(const struct gguf *g, const char *key, bool required,
                     const struct gguf_value **out, char *err, size_t errlen)
{
    const struct gguf_value *v = gguf_get(g, key);
    *out = NULL;
    if (!v) {
        if (required) {
            tok__errf(err, errlen, "%s: missing", key);
            return TOKENIZER_E_MISSING;
        }
        return 0;
    }
    if (v->type != GGUF_VTYPE_ARRAY) {
        tok__errf(err, errlen, "%s: expected an array, got %s", key, gguf_vtype_name(v->type));
        return TOKENIZER_E_TYPE;
    }
    *out = v;
    return 0;
}

static int get_bool(const struct gguf *g, const char *key, bool *val, char *err, size_t errlen)
{
    int rc = gguf_get_bool(g, key, val);
    if (rc == GGUF_E_TYPE) {
        tok__errf(err, errlen, "%s: expected a bool", key);
        return TOKENIZER_E_TYPE;
    }
    return 0;
}

/* Special token id key: absent leaves *id; -1 / 0xFFFFFFFF mean "none". Out of range is an error
 * for the ids encoding and generation rely on, and ignored (treated as none) for the others,
 * because real files ship e.g. padding_token_id == n_vocab. */
static int get_special(const struct gguf *g, const char *key, int32_t n_vocab, bool strict,
                       int32_t *id, char *err, size_t errlen)
{
    int64_t v;
    int rc = gguf_get_i64(g, key, &v);
    if (rc == GGUF_E_NOTFOUND)
        return 0;
    if (rc) {
        uint64_t u;
        if (gguf_get_u64(g, key, &u) == 0) {
            v = u > INT64_MAX ? -1 : (int64_t)u;
        } else {
            tok__errf(err, errlen, "%s: expected an integer", key);
            return TOKENIZER_E_TYPE;
        }
    }
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *id = -1;
        return 0;
    }
    if (v < 0 || v >= n_vocab) {
        if (!strict) {
            *id = -1;
            return 0;
        }
        tok__errf(err, errlen, "%s: token id %lld out of range (vocabulary of %d tokens)", key,
                  (long long)v, n_vocab);
        return TOKENIZER_E_INVALID;
    }
    *id = (int32_t)v;
    return 0;
}

static int build_table(struct tokenizer *tok)
{
    uint64_t want = (uint64_t)tok->n_vocab * 2;
    uint32_t cap = 16;
    while (cap < want)
        cap <<= 1;
    tok->slots = calloc(cap, sizeof(*tok->slots));
    if (!tok->slots)
        return TOKENIZER_E_NOMEM;
    tok->slot_mask = cap - 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const struct tok__entry *e = &tok->tokens[id];
        if (!e->len)
            continue;   /* an empty token can match nothing */
        const char *s = tok->text + e->off;
        uint64_t h = tok__hash(s, e->len);
        if (tok__lookup_h(tok, s, e->len, h) >= 0)
            continue;   /* duplicate text: the first id wins */
        uint32_t tag = (uint32_t)(h >> 32) | 1u;
        uint32_t i = (uint32_t)h & tok->slot_mask;
        while (tok->slots[i].tag)
            i = (i + 1) & tok->slot_mask;
        tok->slots[i] = (struct tok__slot){tag, id};
    }
    return 0;
}

int32_t tokenizer_find(const struct tokenizer *tok, const char *text, size_t len)
{
    if (!tok || (!text && len))
        return -1;
    return tok__lookup(tok, text, len);
}

static int32_t find_cstr(const struct tokenizer *tok, const char *s)
{
    return tok__lookup(tok, s, strlen(s));
}

/* First token of names[] present in the vocabulary, or -1. */
static int32_t find_any(const struct tokenizer *tok, const char *const *names)
{
    for (; *names; names++) {
        int32_t id = find_cstr(tok, *names);
        if (id >= 0)
            return id;
    }
    return -1;
}

static void mark_control(struct tokenizer *tok, int32_t id)
{
    if (id >= 0)
        tok->tokens[id].attr |= TOK_A_CONTROL;
}

/* End-of-turn / end-of-generation detection by token text, as the reference engine does (the
 * GGUF metadata names only EOS reliably). */
static void detect_eog(struct tokenizer *tok, int32_t fim_pad, int32_t fim_rep, int32_t fim_sep)
{
    static const char *const eot_names[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
        "<end_of_utterance>", NULL};
    static const char *const eog_names[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
        "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>",
        "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
        "<|tool_response>",
        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL};
    static const char *const fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                                "[PAD]", NULL};
    static const char *const fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                                "<REPO>", "<reponame>", NULL};
    static const char *const fim_sep_names[] = {"<|file_sep|>", NULL};

    if (tok->eot < 0) {
        tok->eot = find_any(tok, eot_names);
        mark_control(tok, tok->eot);
    }
    if (tok->eom < 0) {
        tok->eom = find_cstr(tok, "<|eom_id|>");
        mark_control(tok, tok->eom);
    }
    if (fim_pad < 0)
        fim_pad = find_any(tok, fim_pad_names);
    if (fim_rep < 0)
        fim_rep = find_any(tok, fim_rep_names);
    if (fim_sep < 0)
        fim_sep = find_any(tok, fim_sep_names);
    int32_t fims[3] = {fim_pad, fim_rep, fim_sep};
    for (int i = 0; i < 3; i++) {
        if (fims[i] >= 0)
            tok->tokens[fims[i]].attr |= TOK_A_CONTROL | TOK_A_EOG;
    }
    for (const char *const *n = eog_names; *n; n++) {
        int32_t id = find_cstr(tok, *n);
        if (id >= 0)
            tok->tokens[id].attr |= TOK_A_CONTROL | TOK_A_EOG;
    }
    int32_t named[3] = {tok->eos, tok->eot, tok->eom};
    for (int i = 0; i < 3; i++) {
        if (named[i] >= 0)
            tok->tokens[named[i]].attr |= TOK_A_EOG;
    }
    /* gpt-oss style vocabularies: these are rendered, never control */
    static const char *const user_names[] = {"<|channel|>", "<|message|>", "<|start|>",
                                             "<|constrain|>", NULL};
    for (const char *const *n = user_names; *n; n++) {
        int32_t id = find_cstr(tok, *n);
        if (id >= 0)
            tok->tokens[id].attr = TOK_A_USER;
    }
    /* <|end|> is a turn separator, not the end, where <|return|> and <|call|> exist */
    int32_t end = find_cstr(tok, "<|end|>");
    if (end >= 0 && ((find_cstr(tok, "<|return|>") >= 0 && find_cstr(tok, "<|call|>") >= 0) ||
                     (find_cstr(tok, "<|calls|>") >= 0 && find_cstr(tok, "<|flush|>") >= 0))) {
        tok->tokens[end].attr = TOK_A_USER;
        if (tok->eot == end)
            tok->eot = -1;
    }
    int32_t s_end = find_cstr(tok, "</s>");
    if (s_end >= 0 && s_end != tok->eos && find_cstr(tok, "<|tool_response>") >= 0)
        tok->tokens[s_end].attr = TOK_A_NORMAL;
}

/* Per-model attribute fixes the reference engine applies by name (strip flags of special text). */
static void name_fixups(struct tokenizer *tok, const struct gguf *g)
{
    char name[128] = "", arch[64] = "";
    struct gguf_str s;
    if (gguf_get_str(g, "general.name", &s) == 0) {
        size_t n = s.len < sizeof(name) - 1 ? s.len : sizeof(name) - 1;
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)s.ptr[i]);
        name[n] = 0;
    }
    if (gguf_get_str(g, "general.architecture", &s) == 0) {
        size_t n = s.len < sizeof(arch) - 1 ? s.len : sizeof(arch) - 1;
        memcpy(arch, s.ptr, n);
        arch[n] = 0;
    }
    const char *pre = tok->pre_name;
    if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code") ||
        strstr(arch, "nomic-bert-moe") || strstr(arch, "jina-bert-v3")) {
        int32_t id = find_cstr(tok, "<mask>");
        if (id >= 0)
            tok->tokens[id].attr |= TOK_A_LSTRIP;
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (int32_t id = 0; id < tok->n_vocab; id++) {
            if (tok->tokens[id].attr & (TOK_A_CONTROL | TOK_A_USER | TOK_A_UNKNOWN))
                tok->tokens[id].attr |= TOK_A_RSTRIP;
        }
        int32_t id = find_cstr(tok, "</s>");
        if (id >= 0)
            tok->tokens[id].attr |= TOK_A_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
        for (const char *const *n = keep; *n; n++) {
            id = find_cstr(tok, *n);
            if (id >= 0)
                tok->tokens[id].attr &= (uint16_t)~TOK_A_RSTRIP;
        }
    } else if (strstr(name, "modern-bert")) {
        int32_t id = find_cstr(tok, "[MASK]");
        if (id >= 0)
            tok->tokens[id].attr |= TOK_A_LSTRIP;
    }
}

static uint16_t attr_of_type(int64_t type)
{
    switch (type) {
    case TOKENIZER_TOKEN_NORMAL: return TOK_A_NORMAL;
    case TOKENIZER_TOKEN_UNKNOWN: return TOK_A_UNKNOWN;
    case TOKENIZER_TOKEN_CONTROL: return TOK_A_CONTROL;
    case TOKENIZER_TOKEN_USER_DEFINED: return TOK_A_USER;
    case TOKENIZER_TOKEN_UNUSED: return TOK_A_UNUSED;
    case TOKENIZER_TOKEN_BYTE: return TOK_A_BYTE;
    default: return TOK_A_UNDEFINED;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* SentencePiece: byte-fallback tokens and the bytes that glue to a following U+2581. */
static void spm_build(struct tokenizer *tok)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        int32_t id = tok__lookup(tok, buf, 6);
        if (id < 0) {
            char c = (char)b;
            id = tok__lookup(tok, &c, 1);
        } else {
            tok->has_byte_tokens = true;
        }
        tok->byte_tok[b] = id;
    }
    memset(tok->spm_glue, 0, sizeof(tok->spm_glue));
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const struct tok__entry *e = &tok->tokens[id];
        const unsigned char *s = (const unsigned char *)tok->text + e->off;
        for (uint32_t i = 1; i + 3 <= e->len; i++) {
            if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81)
                tok->spm_glue[s[i - 1] >> 3] |= (uint8_t)(1u << (s[i - 1] & 7));
        }
    }
}

int tok__byte_of_token(const struct tokenizer *tok, int32_t id)
{
    const struct tok__entry *e = &tok->tokens[id];
    const char *s = tok->text + e->off;
    if (e->len != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int load_tokens(struct tokenizer *tok, const struct gguf *g, char *err, size_t errlen)
{
    const struct gguf_value *toks, *scores, *types;
    int rc = get_array(g, "tokenizer.ggml.tokens", true, &toks, err, errlen);
    if (rc)
        return rc;
    if (toks->v.arr.type != GGUF_VTYPE_STRING) {
        tok__errf(err, errlen, "tokenizer.ggml.tokens: expected an array of strings, got %s",
                  gguf_vtype_name(toks->v.arr.type));
        return TOKENIZER_E_TYPE;
    }
    uint64_t n = toks->v.arr.n;
    if (n == 0 || n > MAX_VOCAB) {
        tok__errf(err, errlen, "tokenizer.ggml.tokens: %llu tokens (1..%u allowed)",
                  (unsigned long long)n, MAX_VOCAB);
        return TOKENIZER_E_INVALID;
    }
    if ((rc = get_array(g, "tokenizer.ggml.scores", false, &scores, err, errlen)) ||
        (rc = get_array(g, "tokenizer.ggml.token_type", false, &types, err, errlen)))
        return rc;
    if (scores && scores->v.arr.type != GGUF_VTYPE_FLOAT32 &&
        scores->v.arr.type != GGUF_VTYPE_INT32) {
        tok__errf(err, errlen, "tokenizer.ggml.scores: expected float32 elements, got %s",
                  gguf_vtype_name(scores->v.arr.type));
        return TOKENIZER_E_TYPE;
    }
    if (scores && scores->v.arr.n != n) {
        tok__errf(err, errlen, "tokenizer.ggml.scores: %llu entries for %llu tokens",
                  (unsigned long long)scores->v.arr.n, (unsigned long long)n);
        return TOKENIZER_E_INVALID;
    }
    if (types && types->v.arr.type != GGUF_VTYPE_INT32) {
        tok__errf(err, errlen, "tokenizer.ggml.token_type: expected int32 elements, got %s",
                  gguf_vtype_name(types->v.arr.type));
        return TOKENIZER_E_TYPE;
    }
    if (types && types->v.arr.n != n) {
        tok__errf(err, errlen, "tokenizer.ggml.token_type: %llu entries for %llu tokens",
                  (unsigned long long)types->v.arr.n, (unsigned long long)n);
        return TOKENIZER_E_INVALID;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = toks->v.arr.strs[i].len;
        if (l > MAX_TOKEN_BYTES) {
            tok__errf(err, errlen, "tokenizer.ggml.tokens[%llu]: %llu bytes (max %u)",
                      (unsigned long long)i, (unsigned long long)l, MAX_TOKEN_BYTES);
            return TOKENIZER_E_INVALID;
        }
        total += l;
    }
    if (total > UINT32_MAX - 1) {
        tok__errf(err, errlen, "tokenizer.ggml.tokens: %llu bytes of text", (unsigned long long)total);
        return TOKENIZER_E_INVALID;
    }
    tok->n_vocab = (int32_t)n;
    tok->tokens = calloc(n, sizeof(*tok->tokens));
    tok->text = malloc(total + 1);
    if (!tok->tokens || !tok->text)
        return TOKENIZER_E_NOMEM;
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct tok__entry *e = &tok->tokens[i];
        const struct gguf_str *s = &toks->v.arr.strs[i];
        if (s->len)
            memcpy(tok->text + off, s->ptr, s->len);
        e->off = off;
        e->len = (uint32_t)s->len;
        off += (uint32_t)s->len;
        if (s->len > tok->max_token_len)
            tok->max_token_len = s->len;
        if (scores)
            e->score = scores->v.arr.type == GGUF_VTYPE_FLOAT32 ? gguf_arr_f32(scores, i)
                                                                : (float)gguf_arr_i64(scores, i);
        int64_t t = types ? gguf_arr_i64(types, i) : TOKENIZER_TOKEN_NORMAL;
        e->type = (t >= 0 && t <= TOKENIZER_TOKEN_BYTE) ? (uint8_t)t : TOKENIZER_TOKEN_UNDEFINED;
        e->attr = attr_of_type(t);
    }
    tok->text[off] = 0;
    return 0;
}

static int load_specials(struct tokenizer *tok, const struct gguf *g, char *err, size_t errlen)
{
    int32_t n = tok->n_vocab;
    int32_t *ids[] = {&tok->bos, &tok->eos, &tok->unk, &tok->sep, &tok->pad, &tok->mask};
    for (int i = 0; i < 6; i++) {
        if (*ids[i] >= n)
            *ids[i] = -1;   /* a default that does not fit this vocabulary */
    }
    int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1, fim_other = -1;
    const struct {
        const char *key;
        int32_t *id;
        bool strict;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", &tok->bos, true},
        {"tokenizer.ggml.eos_token_id", &tok->eos, true},
        {"tokenizer.ggml.eot_token_id", &tok->eot, true},
        {"tokenizer.ggml.eom_token_id", &tok->eom, true},
        {"tokenizer.ggml.unknown_token_id", &tok->unk, true},
        {"tokenizer.ggml.seperator_token_id", &tok->sep, false},
        {"tokenizer.ggml.padding_token_id", &tok->pad, false},
        {"tokenizer.ggml.mask_token_id", &tok->mask, false},
        {"tokenizer.ggml.fim_pad_token_id", &fim_pad, false},
        {"tokenizer.ggml.fim_rep_token_id", &fim_rep, false},
        {"tokenizer.ggml.fim_sep_token_id", &fim_sep, false},
        {"tokenizer.ggml.fim_pre_token_id", &fim_other, false},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = get_special(g, keys[i].key, n, keys[i].strict, keys[i].id, err, errlen);
        if (rc)
            return rc;
    }
    int rc;
    if ((rc = get_bool(g, "tokenizer.ggml.add_bos_token", &tok->add_bos, err, errlen)) ||
        (rc = get_bool(g, "tokenizer.ggml.add_eos_token", &tok->add_eos, err, errlen)) ||
        (rc = get_bool(g, "tokenizer.ggml.add_sep_token", &tok->add_sep, err, errlen)) ||
        (rc = get_bool(g, "tokenizer.ggml.add_space_prefix", &tok->add_space_prefix, err, errlen)))
        return rc;
    if (tok->kind == TOKENIZER_KIND_WPM) {
        if ((rc = get_bool(g, "tokenizer.ggml.normalizer.lowercase", &tok->lowercase, err,
                           errlen)))
            return rc;
        tok->strip_accents = tok->lowercase;
        if ((rc = get_bool(g, "tokenizer.ggml.normalizer.strip_accents", &tok->strip_accents,
                           err, errlen)))
            return rc;
    }
    if (tok->add_bos && tok->bos < 0) {
        tok__errf(err, errlen, "tokenizer.ggml.add_bos_token is true but there is no BOS token");
        return TOKENIZER_E_INVALID;
    }
    if (tok->add_eos && tok->eos < 0) {
        tok__errf(err, errlen, "tokenizer.ggml.add_eos_token is true but there is no EOS token");
        return TOKENIZER_E_INVALID;
    }
    if (tok->kind == TOKENIZER_KIND_WPM && tok->sep < 0) {
        tok->add_sep = false;
    }
    detect_eog(tok, fim_pad, fim_rep, fim_sep);
    return 0;
}

int tokenizer_from_gguf(struct tokenizer **out, const struct gguf *g, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out || !g) {
        tok__errf(err, errlen, "tokenizer_from_gguf: NULL argument");
        return TOKENIZER_E_ARG;
    }
    *out = NULL;
    struct gguf_str model;
    int rc = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (rc == GGUF_E_NOTFOUND) {
        tok__errf(err, errlen, "tokenizer.ggml.model: missing");
        return TOKENIZER_E_MISSING;
    }
    if (rc) {
        tok__errf(err, errlen, "tokenizer.ggml.model: expected a string");
        return TOKENIZER_E_TYPE;
    }
    struct tokenizer *tok = calloc(1, sizeof(*tok));
    if (!tok)
        return TOKENIZER_E_NOMEM;
    tok->bos = tok->eos = tok->eot = tok->eom = tok->unk = tok->sep = tok->pad = tok->mask = -1;
#define MODEL_IS(s) (model.len == strlen(s) && !memcmp(model.ptr, s, model.len))
    if (MODEL_IS("llama")) {
        tok->kind = TOKENIZER_KIND_SPM;
        tok->bos = 1, tok->eos = 2, tok->unk = 0;
        tok->add_space_prefix = true;
        tok->add_bos = true;
    } else if (MODEL_IS("gpt2")) {
        tok->kind = TOKENIZER_KIND_BPE;
        tok->clean_spaces = true;
    } else if (MODEL_IS("bert")) {
        tok->kind = TOKENIZER_KIND_WPM;
        tok->bos = 101, tok->unk = 100, tok->sep = 102, tok->pad = 0, tok->mask = 103;
        tok->add_bos = true;
        tok->add_sep = true;
        tok->clean_spaces = true;
        tok->lowercase = tok->strip_accents = true;
    } else {
        tok__errf(err, errlen, "tokenizer.ggml.model: unsupported model \"%.*s\"",
                  (int)(model.len > 64 ? 64 : model.len), model.ptr);
        rc = TOKENIZER_E_UNSUPPORTED;
        goto out;
    }
#undef MODEL_IS
    struct gguf_str pre;
    rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (rc && rc != GGUF_E_NOTFOUND) {
        tok__errf(err, errlen, "tokenizer.ggml.pre: expected a string");
        rc = TOKENIZER_E_TYPE;
        goto out;
    }
    if (rc == 0 && pre.len >= sizeof(tok->pre_name)) {
        tok__errf(err, errlen, "tokenizer.ggml.pre: unsupported pre-tokenizer \"%.*s\"", 64,
                  pre.ptr);
        rc = TOKENIZER_E_UNSUPPORTED;
        goto out;
    }
    if (rc == 0 && tok->kind == TOKENIZER_KIND_BPE)
        memcpy(tok->pre_name, pre.ptr, pre.len);
    else if (tok->kind == TOKENIZER_KIND_BPE)
        memcpy(tok->pre_name, "default", 8);
    if ((rc = load_tokens(tok, g, err, errlen)) || (rc = build_table(tok)))
        goto out;
    if (tok->kind == TOKENIZER_KIND_BPE &&
        ((rc = tok__pretok_new(tok, err, errlen)) || (rc = tok__bpe_build(tok, g, err, errlen))))
        goto out;
    if ((rc = load_specials(tok, g, err, errlen)))
        goto out;
    if (tok->kind == TOKENIZER_KIND_SPM)
        spm_build(tok);
    if (tok->kind == TOKENIZER_KIND_WPM) {
        int32_t hashes = 0, marks = 0;
        for (int32_t id = 0; id < tok->n_vocab; id++) {
            const struct tok__entry *e = &tok->tokens[id];
            const char *t = tok->text + e->off;
            hashes += e->len > 2 && t[0] == '#' && t[1] == '#';
            marks += e->len > 3 && !memcmp(t, "\xe2\x96\x81", 3);
        }
        tok->wpm_hashes = hashes > marks;
    }
    if (tok->kind != TOKENIZER_KIND_SPM)
        tok->add_space_prefix = false;   /* only SentencePiece adds one */
    name_fixups(tok, g);
    if ((rc = tok__special_build(tok)) || (rc = tok__pieces_build(tok)))
        goto out;
    tok->cache = tok__cache_new();
    if (!tok->cache) {
        rc = TOKENIZER_E_NOMEM;
        goto out;
    }
    *out = tok;
    return 0;
out:
    if (rc == TOKENIZER_E_NOMEM)
        tok__errf(err, errlen, "tokenizer: out of memory");
    tokenizer_free(tok);
    return rc;
}

void tokenizer_free(struct tokenizer *tok)
{
    if (!tok)
        return;
    tok__pretok_free(tok->pretok);
    tok__special_free(tok->special);
    tok__cache_free(tok->cache);
    free(tok->merges);
    free(tok->slots);
    free(tok->pieces);
    free(tok->text);
    free(tok->tokens);
    free(tok);
}

int32_t tokenizer_n_vocab(const struct tokenizer *tok) { return tok->n_vocab; }
enum tokenizer_kind tokenizer_get_kind(const struct tokenizer *tok) { return tok->kind; }
const char *tokenizer_pre_name(const struct tokenizer *tok) { return tok->pre_name; }
int32_t tokenizer_bos(const struct tokenizer *tok) { return tok->bos; }
int32_t tokenizer_eos(const struct tokenizer *tok) { return tok->eos; }
int32_t tokenizer_eot(const struct tokenizer *tok) { return tok->eot; }
int32_t tokenizer_unk(const struct tokenizer *tok) { return tok->unk; }
int32_t tokenizer_pad(const struct tokenizer *tok) { return tok->pad; }
int32_t tokenizer_sep(const struct tokenizer *tok) { return tok->sep; }
bool tokenizer_add_bos(const struct tokenizer *tok) { return tok->add_bos; }
bool tokenizer_add_eos(const struct tokenizer *tok) { return tok->add_eos; }
size_t tokenizer_max_piece(const struct tokenizer *tok) { return tok->max_piece; }

bool tokenizer_is_eog(const struct tokenizer *tok, int32_t id)
{
    return id >= 0 && id < tok->n_vocab && (tok->tokens[id].attr & TOK_A_EOG);
}

enum tokenizer_token_type tokenizer_token_type(const struct tokenizer *tok, int32_t id)
{
    if (id < 0 || id >= tok->n_vocab)
        return TOKENIZER_TOKEN_UNDEFINED;
    return (enum tokenizer_token_type)tok->tokens[id].type;
}

const char *tokenizer_token_text(const struct tokenizer *tok, int32_t id, size_t *len)
{
    if (id < 0 || id >= tok->n_vocab)
        return NULL;
    if (len)
        *len = tok->tokens[id].len;
    return tok->text + tok->tokens[id].off;
}
