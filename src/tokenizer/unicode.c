/* UTF-8 coding and the case/accent mappings over the generated tables in unicode_data.c. */
#include "tokenizer/unicode.h"

size_t tok__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

size_t tok__utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            __builtin_memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = tok__utf8_decode(s + i, n - i, &cp);
        if (!l)
            break;
        i += l;
    }
    return i;
}

size_t tok__utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static const struct tok__uni_map *find_map(const struct tok__uni_map *m, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && m[lo].cp == cp ? &m[lo] : NULL;
}

size_t tok__uni_lower(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    const struct tok__uni_map *m = find_map(tok__uni_lower_tab, tok__uni_lower_tab_n, cp);
    if (!m) {
        out[0] = cp;
        return 1;
    }
    for (uint32_t i = 0; i < m->n; i++)
        out[i] = m->to[i];
    return m->n;
}

size_t tok__uni_strip_accents(uint32_t cp, uint32_t out[3])
{
    if (cp < 0xC0) {
        out[0] = cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) {
        /* Hangul syllable: L V [T] jamo (none of them a mark) */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (s % 28) {
            out[2] = 0x11A7 + s % 28;
            return 3;
        }
        return 2;
    }
    const struct tok__uni_map *m = find_map(tok__uni_strip_tab, tok__uni_strip_tab_n, cp);
    if (!m) {
        if (tok__uni_flags(cp) & TOK_UNI_MN)
            return 0;
        out[0] = cp;
        return 1;
    }
    for (uint32_t i = 0; i < m->n; i++)
        out[i] = m->to[i];
    return m->n;
}
