/* Tokenizers built from GGUF tokenizer.ggml.* metadata: SentencePiece-style, byte-level BPE, WordPiece. */
#ifndef TANDEM_TOKENIZER_TOKENIZER_H
#define TANDEM_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gguf;

/* Negative error codes; tokenizer_strerror names them. Loading also writes a one-line message
 * (key, offending value) into the caller's buffer. */
enum tokenizer_error {
    TOKENIZER_OK = 0,
    TOKENIZER_E_NOMEM = -1,
    TOKENIZER_E_MISSING = -2,      /* a required tokenizer.ggml.* key is absent */
    TOKENIZER_E_TYPE = -3,         /* a key has the wrong GGUF type */
    TOKENIZER_E_INVALID = -4,      /* inconsistent metadata: lengths, ids, merges */
    TOKENIZER_E_UNSUPPORTED = -5,  /* unknown tokenizer.ggml.model or tokenizer.ggml.pre */
    TOKENIZER_E_LIMIT = -6,        /* input beyond a hard cap (TOKENIZER_MAX_TEXT, ...) */
    TOKENIZER_E_ARG = -7,          /* NULL where not allowed, token id out of range */
    TOKENIZER_E_REGEX = -8,        /* PCRE2 compile or match failure */
};

const char *tokenizer_strerror(int err);

/* tokenizer.ggml.model */
enum tokenizer_kind {
    TOKENIZER_KIND_SPM,   /* "llama": score-driven merges, byte fallback, U+2581 for spaces */
    TOKENIZER_KIND_BPE,   /* "gpt2": byte-level BPE with merge ranks and a regex pre-tokenizer */
    TOKENIZER_KIND_WPM,   /* "bert": WordPiece, greedy longest match */
};

/* tokenizer.ggml.token_type values. */
enum tokenizer_token_type {
    TOKENIZER_TOKEN_UNDEFINED = 0,
    TOKENIZER_TOKEN_NORMAL = 1,
    TOKENIZER_TOKEN_UNKNOWN = 2,
    TOKENIZER_TOKEN_CONTROL = 3,       /* <s>, <|im_end|>: text recognised only with PARSE_SPECIAL */
    TOKENIZER_TOKEN_USER_DEFINED = 4,  /* added tokens: always matched verbatim in the text */
    TOKENIZER_TOKEN_UNUSED = 5,
    TOKENIZER_TOKEN_BYTE = 6,          /* <0xNN> byte fallback */
};

#define TOKENIZER_MAX_TEXT (256u << 20)   /* longest text tokenizer_encode accepts (bytes) */

struct tokenizer;  /* opaque, immutable after creation: share it between threads freely */

/* Build a tokenizer from the tokenizer.ggml.* keys of g. Everything needed is copied, so g may be
 * closed afterwards. On failure *out is NULL, a negative tokenizer_error is returned and err (if
 * not NULL) holds one line naming the key and the problem. */
int tokenizer_from_gguf(struct tokenizer **out, const struct gguf *g, char *err, size_t errlen);
/* Accepts NULL. No encode/decode call on tok may be running. */
void tokenizer_free(struct tokenizer *tok);

/* ---- encoding ---- */

#define TOKENIZER_ADD_SPECIAL   1u  /* add BOS/EOS as tokenizer.ggml.add_bos/eos_token say (WordPiece: CLS ... SEP) */
#define TOKENIZER_PARSE_SPECIAL 2u  /* recognise control-token text ("<|im_end|>") in the input */

/* Tokenize len bytes of text (need not be NUL-terminated, may hold any bytes). Writes at most
 * max_ids ids and returns how many the text has: a return value > max_ids means ids holds only
 * the first max_ids and the caller should retry with room for the returned count. Returns a
 * negative tokenizer_error on failure. Thread-safe: per-thread scratch is kept internally (and
 * freed at thread exit); steady-state calls allocate nothing. User-defined tokens are matched in
 * the text always, control tokens only with TOKENIZER_PARSE_SPECIAL (as the reference engine). */
int tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len, int32_t *ids,
                     size_t max_ids, unsigned flags);

/* ---- decoding ---- */

#define TOKENIZER_DECODE_SPECIAL        1u  /* render control/unknown tokens as their text (else "") */
#define TOKENIZER_DECODE_REMOVE_SPECIAL 2u  /* drop a leading BOS / trailing EOS the vocab adds */
#define TOKENIZER_DECODE_CLEAN_SPACES   4u  /* the reference's clean-up (" ," -> ","...) where the
                                              vocab asks for it; lossy, off by default */

/* The bytes token id stands for: the vocabulary text with the byte-level mapping undone, U+2581
 * turned back into spaces, <0xNN> as the byte. Control/unknown tokens give "" unless flags has
 * TOKENIZER_DECODE_SPECIAL. Returns the piece length (copied when <= cap; otherwise nothing is
 * copied and the caller needs that much room) or TOKENIZER_E_ARG for a bad id. */
int tokenizer_piece(const struct tokenizer *tok, int32_t id, char *buf, size_t cap, unsigned flags);
/* The same piece without copying: valid until tokenizer_free. NULL for a bad id. */
const char *tokenizer_piece_ref(const struct tokenizer *tok, int32_t id, size_t *len,
                                unsigned flags);

/* Detokenize ids into text (no NUL written). For SentencePiece vocabularies with a space prefix
 * the leading space of the first piece is dropped (as the reference engine does). Returns the
 * text length (> cap: nothing useful in out, retry with that much room) or a negative error. */
int64_t tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, char *out,
                         size_t cap, unsigned flags);

/* Streaming detokenizer for generation: feed tokens one at a time and get back only complete
 * UTF-8 characters; a multi-byte character split across tokens is held back until its last byte
 * arrives. Bytes that can never form a character come out as U+FFFD, so the output is always
 * valid UTF-8. One stream per sequence; not thread-safe itself. */
struct tokenizer_stream;

/* flags: TOKENIZER_DECODE_SPECIAL. Returns NULL when out of memory. tok must outlive it. */
struct tokenizer_stream *tokenizer_stream_new(const struct tokenizer *tok, unsigned flags);
void tokenizer_stream_free(struct tokenizer_stream *s);   /* accepts NULL */
/* Feed one token; writes the newly completed text to out and returns its length (may be 0).
 * TOKENIZER_STREAM_CAP(tok) bytes always suffice; a cap too small for the text returns
 * TOKENIZER_E_LIMIT and leaves the stream unchanged. TOKENIZER_E_ARG for a bad id. */
int tokenizer_stream_feed(struct tokenizer_stream *s, int32_t id, char *out, size_t cap);
/* End of sequence: writes what is held back (an incomplete character, as one U+FFFD) and resets
 * the stream for reuse. Returns the length (0 or 3). */
int tokenizer_stream_flush(struct tokenizer_stream *s, char *out, size_t cap);
/* Output room that always suffices for one tokenizer_stream_feed (every byte may become a
 * 3-byte U+FFFD). */
#define TOKENIZER_STREAM_CAP(tok) (3 * (tokenizer_max_piece(tok) + 4))

/* ---- vocabulary ---- */

int32_t tokenizer_n_vocab(const struct tokenizer *tok);
enum tokenizer_kind tokenizer_get_kind(const struct tokenizer *tok);
/* tokenizer.ggml.pre as given ("default" when absent); "" for SentencePiece/WordPiece. */
const char *tokenizer_pre_name(const struct tokenizer *tok);
/* Special token ids, or -1 when the vocabulary has none. */
int32_t tokenizer_bos(const struct tokenizer *tok);
int32_t tokenizer_eos(const struct tokenizer *tok);
int32_t tokenizer_eot(const struct tokenizer *tok);   /* end of turn: <|eot_id|>, <|im_end|>... */
int32_t tokenizer_unk(const struct tokenizer *tok);
int32_t tokenizer_pad(const struct tokenizer *tok);
int32_t tokenizer_sep(const struct tokenizer *tok);
bool tokenizer_add_bos(const struct tokenizer *tok);
bool tokenizer_add_eos(const struct tokenizer *tok);
/* End of generation: EOS, EOT, EOM and the other end-of-turn tokens the vocabulary names. */
bool tokenizer_is_eog(const struct tokenizer *tok, int32_t id);
/* TOKENIZER_TOKEN_UNDEFINED for an out-of-range id. */
enum tokenizer_token_type tokenizer_token_type(const struct tokenizer *tok, int32_t id);
/* The raw vocabulary text of id (not NUL-terminated), valid until tokenizer_free; NULL if bad. */
const char *tokenizer_token_text(const struct tokenizer *tok, int32_t id, size_t *len);
/* The id whose vocabulary text is exactly text[0..len), or -1. */
int32_t tokenizer_find(const struct tokenizer *tok, const char *text, size_t len);
/* Longest piece in bytes (for sizing stream buffers). */
size_t tokenizer_max_piece(const struct tokenizer *tok);

#endif
