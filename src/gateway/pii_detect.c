/* PII detectors (everything but person names) and the scan driver that resolves overlaps. */
#include <math.h>
#include <string.h>

#include "gateway/pii.h"

/* ---- character classes (ASCII only; bytes >= 0x80 count as letters of some word) ---- */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_alpha(unsigned char c) { return is_upper(c) || is_lower(c); }
static bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
/* Part of a word: letters, digits, '_' and any non-ASCII byte. */
static bool is_wordc(unsigned char c) { return is_alnum(c) || c == '_' || c >= 0x80; }

#define AT(i) ((i) < len ? (unsigned char)t[i] : 0u)

/* A number may start here: the previous byte does not continue a word, number or dotted
 * or dashed sequence. */
static bool num_boundary(const char *t, size_t i)
{
    if (i == 0)
        return true;
    unsigned char p = (unsigned char)t[i - 1];
    return !(is_wordc(p) || p == '.' || p == '-' || p == '/' || p == ',' || p == '+' ||
             p == '~' || p == '^');
}

/* A number may end here (t[e] is the byte after it). */
static bool num_end(const char *t, size_t len, size_t e)
{
    unsigned char c = AT(e);
    if (is_wordc(c))
        return false;
    if ((c == '.' || c == ',' || c == '-' || c == '/' || c == '+' || c == '~') &&
        is_alnum(AT(e + 1)))
        return false;
    return true;
}

static size_t digits_at(const char *t, size_t len, size_t i, size_t max)
{
    size_t n = 0;
    while (n < max && is_digit(AT(i + n)))
        n++;
    return n;
}

/* ---- e-mail: triggered at '@' ---- */

static bool email_local_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static size_t det_email(const char *t, size_t len, size_t at, size_t *start)
{
    size_t k = at;
    while (k > 0 && at - k < 64 && email_local_char((unsigned char)t[k - 1]))
        k--;
    if (k > 0 && (email_local_char((unsigned char)t[k - 1]) || (unsigned char)t[k - 1] >= 0x80))
        return 0; /* local part longer than 64 or glued to non-ASCII text */
    while (k < at && (t[k] == '.' || t[k] == '-' || t[k] == '+'))
        k++;
    if (k == at || t[at - 1] == '.')
        return 0;
    size_t p = at + 1, labels = 0, end = 0, last_alpha = 0;
    while (p < len && p - at <= 253) {
        size_t q = p;
        while (q < len && q - p < 63 && (is_alnum(AT(q)) || AT(q) == '-'))
            q++;
        if (q == p || t[p] == '-' || t[q - 1] == '-')
            break;
        labels++;
        size_t alpha = 0;
        for (size_t r = p; r < q; r++)
            alpha += is_alpha(AT(r));
        last_alpha = (alpha == q - p) ? q - p : 0;
        end = q;
        if (AT(q) == '.' && is_alnum(AT(q + 1))) {
            p = q + 1;
            continue;
        }
        break;
    }
    if (labels < 2 || last_alpha < 2 || is_wordc(AT(end)))
        return 0;
    *start = k;
    return end - k;
}

/* ---- phone numbers ---- */

#define PH_GROUPS 12
struct phone_run {
    int n;
    bool plus;
    size_t glen[PH_GROUPS];  /* digits in group */
    size_t gpos[PH_GROUPS];  /* offset of the group's first digit */
    size_t gend[PH_GROUPS];  /* offset after the group (after ')' for a parenthesised one) */
    char sep[PH_GROUPS];     /* separator before the group: 0, ' ', '-', '.', '/' */
    bool paren[PH_GROUPS];
};

static bool phone_sep(unsigned char c) { return c == ' ' || c == '-' || c == '.' || c == '/'; }

static void phone_parse(const char *t, size_t len, size_t s, struct phone_run *r)
{
    memset(r, 0, sizeof(*r));
    size_t p = s, total = 0;
    if (AT(p) == '+') {
        r->plus = true;
        p++;
    }
    char sep = 0;
    while (r->n < PH_GROUPS) {
        bool paren = false;
        size_t q = p;
        if (AT(q) == '(') {
            paren = true;
            q++;
        }
        size_t d = digits_at(t, len, q, 16);
        if (d == 0 || d > 15)
            break;
        size_t e = q + d;
        if (paren) {
            if (AT(e) != ')')
                break;
            e++;
        }
        total += d;
        if (total > 20)
            break;
        r->glen[r->n] = d;
        r->gpos[r->n] = q;
        r->gend[r->n] = e;
        r->sep[r->n] = sep;
        r->paren[r->n] = paren;
        r->n++;
        /* continuation: a single separator, optionally with spaces around a dash */
        sep = 0;
        p = e;
        if (AT(p) == ' ' && AT(p + 1) == '-' && AT(p + 2) == ' ') {
            sep = '-';
            p += 3;
        } else if (phone_sep(AT(p))) {
            sep = (char)AT(p);
            p++;
        } else if (AT(p) != '(' && !paren) {
            break;
        }
        if (!(is_digit(AT(p)) || (AT(p) == '(' && is_digit(AT(p + 1)))))
            break;
    }
}

/* International format: +CC with groups, 8 to 15 digits (E.164). */
static bool phone_check_plus(const struct phone_run *r, int g, size_t d)
{
    if (d < 8 || d > 15)
        return false;
    if (g == 1)
        return d >= 10;
    if (r->paren[0] || r->glen[0] > 4)
        return false;
    for (int k = 1; k < g; k++)
        if (r->glen[k] > 8)
            return false;
    return true;
}

/* The leading digit of group k (for the NANP and national checks). */
static unsigned char phone_first(const char *t, const struct phone_run *r, int k)
{
    return (unsigned char)t[r->gpos[k]];
}

static bool phone_check_full(const char *t, const struct phone_run *r, int g)
{
    size_t d = 0;
    for (int k = 0; k < g; k++)
        d += r->glen[k];
    /* a block of 6+ digits is the subscriber number: nothing follows it ("+49 30 1234567
     * 4111 ..." is a phone number and then something else) */
    for (int k = 0; k + 1 < g; k++)
        if (r->glen[k] >= 6)
            return false;
    /* separators: spaces may mix with one other kind (e.g. "+1 555-123-4567") */
    char other = 0;
    for (int k = 1; k < g; k++) {
        char c = r->sep[k];
        if (c == 0 || c == ' ')
            continue;
        if (other && other != c)
            return false;
        other = c;
    }
    if (r->plus)
        return phone_check_plus(r, g, d);
    /* NANP */
    int b = (g == 4 && r->glen[0] == 1 && phone_first(t, r, 0) == '1' && !r->paren[0]) ? 1 : 0;
    if (g - b == 3 && r->glen[b] == 3 && r->glen[b + 1] == 3 && r->glen[b + 2] == 4 &&
        !r->paren[b + 1] && !r->paren[b + 2]) {
        unsigned char a0 = phone_first(t, r, b);
        if (a0 < '2')
            return false;
        if (r->paren[b])
            return r->sep[b + 2] == '-' || r->sep[b + 2] == ' ' || r->sep[b + 2] == '.';
        /* "555-123-4567", "555.123.4567"; with spaces only it is as often a list of numbers */
        char s1 = r->sep[b + 1], s2 = r->sep[b + 2];
        return s1 && s1 == s2 && (s1 == '-' || s1 == '.');
    }
    /* "00" international prefix: 0049 30 1234567 */
    if (r->glen[0] >= 4 && phone_first(t, r, 0) == '0' && t[r->gpos[0] + 1] == '0' && g >= 2) {
        size_t dd = d - 2;
        return dd >= 8 && dd <= 15 && t[r->gpos[0] + 2] != '0';
    }
    /* national with trunk 0: 030 1234567, 06 12 34 56 78, 020 7946 0958, (030) 123456 */
    if (g >= 2 && phone_first(t, r, 0) == '0' && t[r->gpos[0] + 1] != '0' && r->glen[0] >= 2 &&
        r->glen[0] <= 5 && d >= 9 && d <= 12) {
        if (g == 2 && r->glen[1] < 5)
            return false; /* "02110-1301" is a ZIP+4 code */
        bool pairs = true;
        for (int k = 0; k < g; k++)
            pairs &= r->glen[k] == 2;
        if (pairs && (g != 5 || (r->n > g && r->glen[g] == 2)))
            return false; /* pairs: only the French 5 x 2 layout ("01 02 03 04 05 06" is data) */
        char s = 0;
        for (int k = 1; k < g; k++) {
            if (r->glen[k] < 2 || r->paren[k])
                return false;
            if (k == 1 && r->paren[0])
                continue;
            if (s && r->sep[k] != s)
                return false;
            s = r->sep[k];
            if (!s)
                return false;
        }
        return true;
    }
    return false;
}

static size_t det_phone(const char *t, size_t len, size_t s)
{
    if (s >= 2 && t[s - 1] == ' ' && is_digit((unsigned char)t[s - 2]))
        return 0; /* inside a list of numbers ("01 02 03 04 05 06") */
    struct phone_run r;
    phone_parse(t, len, s, &r);
    if (r.n == 0)
        return 0;
    for (int g = r.n; g >= 1; g--) {
        size_t e = r.gend[g - 1];
        if (g < r.n && r.sep[g] != ' ')
            continue;
        if (!num_end(t, len, e))
            continue;
        if (phone_check_full(t, &r, g))
            return e - s;
    }
    return 0;
}

/* ---- payment cards ---- */

static bool luhn_ok(const char *digits, size_t n)
{
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned)(digits[n - 1 - k] - '0');
        if (k & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

static unsigned prefix_num(const char *d, int n)
{
    unsigned v = 0;
    for (int k = 0; k < n; k++)
        v = v * 10 + (unsigned)(d[k] - '0');
    return v;
}

/* Known issuer ranges and their lengths. */
static bool card_iin_ok(const char *d, size_t n)
{
    unsigned p1 = prefix_num(d, 1), p2 = prefix_num(d, 2), p3 = prefix_num(d, 3),
             p4 = prefix_num(d, 4);
    if (p1 == 4)
        return n == 13 || n == 16 || n == 19;                              /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16;                                                    /* Mastercard */
    if (p2 == 34 || p2 == 37)
        return n == 15;                                                    /* Amex */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))
        return n >= 16;                                                    /* Discover */
    if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39)
        return n >= 14;                                                    /* Diners */
    if (p4 >= 3528 && p4 <= 3589)
        return n >= 16;                                                    /* JCB */
    if (p4 >= 2200 && p4 <= 2204)
        return n >= 16;                                                    /* Mir */
    if (p2 == 62)
        return n >= 16;                                                    /* UnionPay */
    if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 63 || p2 == 67)
        return n >= 13;                                                    /* Maestro */
    return false;
}

static size_t det_card(const char *t, size_t len, size_t s)
{
    char d[24];
    size_t n = 0, p = s, glen = 0;
    size_t bend[8], bdig[8]; /* ends of digit groups: byte offset and digits so far */
    int nb = 0;
    char sep = 0;
    for (;;) {
        if (is_digit(AT(p))) {
            if (n == sizeof(d))
                return 0; /* far longer than any card */
            d[n++] = t[p++];
            glen++;
            continue;
        }
        unsigned char c = AT(p);
        if ((c == ' ' || c == '-') && is_digit(AT(p + 1)) && glen >= 3 && glen <= 6 &&
            (!sep || sep == (char)c) && nb < 7) {
            sep = (char)c;
            bend[nb] = p;
            bdig[nb++] = n;
            glen = 0;
            p++;
            continue;
        }
        break;
    }
    if (sep && (glen < 3 || glen > 6))
        return 0;
    bend[nb] = p;
    bdig[nb++] = n;
    /* the whole run, or a shorter prefix ending before a space ("4111 ... 1111 2026") */
    for (int k = nb - 1; k >= 0; k--) {
        size_t e = bend[k], nd = bdig[k];
        if (k == nb - 1 ? !num_end(t, len, e) : sep != ' ')
            continue;
        if (nd >= 13 && nd <= 19 && card_iin_ok(d, nd) && luhn_ok(d, nd))
            return e - s;
    }
    return 0;
}

/* ---- US SSN ---- */

static size_t det_ssn(const char *t, size_t len, size_t s)
{
    if (digits_at(t, len, s, 4) != 3)
        return 0;
    char sep = (char)AT(s + 3);
    if (sep != '-' && sep != ' ')
        return 0;
    if (digits_at(t, len, s + 4, 3) != 2 || AT(s + 6) != (unsigned char)sep ||
        digits_at(t, len, s + 7, 5) != 4 || !num_end(t, len, s + 11))
        return 0;
    if (sep == ' ' && AT(s + 11) == ' ' && is_digit(AT(s + 12)))
        return 0;
    unsigned area = prefix_num(t + s, 3), group = prefix_num(t + s + 4, 2),
             serial = prefix_num(t + s + 7, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return 0;
    return 11;
}

/* ---- IPv4 / IPv6 ---- */

/* Parses a dotted quad at s; returns its length or 0. */
static size_t ipv4_parse(const char *t, size_t len, size_t s)
{
    size_t p = s;
    for (int k = 0; k < 4; k++) {
        if (k > 0) {
            if (AT(p) != '.')
                return 0;
            p++;
        }
        size_t d = digits_at(t, len, p, 4);
        if (d == 0 || d > 3 || (d > 1 && t[p] == '0'))
            return 0;
        if (prefix_num(t + p, (int)d) > 255)
            return 0;
        p += d;
    }
    return p - s;
}

static bool keyword_before(const char *t, size_t i, const char *const *words, size_t nw);

static size_t det_ipv4(const char *t, size_t len, size_t s)
{
    if (s > 0 && (t[s - 1] == ':' && s > 1 && is_hex((unsigned char)t[s - 2])))
        return 0; /* tail of an IPv6 address: that detector handles it */
    size_t n = ipv4_parse(t, len, s);
    if (n == 0)
        return 0;
    unsigned char c = AT(s + n);
    if (is_wordc(c) || ((c == '.' || c == '-' || c == '+' || c == '~') && is_alnum(AT(s + n + 1))))
        return 0;
    /* four-part version numbers: "bump to 3.7.2.0", "version 4.3.99.16" */
    static const char *const ver[] = {"version", "release", "bump", "update", "upgrade",
                                      "upstream", "firmware", "kernel", "build"};
    if (keyword_before(t, s, ver, sizeof(ver) / sizeof(ver[0])))
        return 0;
    return n;
}

static bool ipv6_boundary(const char *t, size_t s)
{
    if (s == 0)
        return true;
    unsigned char p = (unsigned char)t[s - 1];
    return !(is_wordc(p) || p == ':' || p == '.' || p == '-');
}

static size_t det_ipv6(const char *t, size_t len, size_t s)
{
    size_t p = s;
    int groups = 0, digits_seen = 0;
    bool dbl = false;
    if (AT(p) == ':') {
        if (AT(p + 1) != ':')
            return 0;
        dbl = true;
        p += 2;
    }
    for (;;) {
        size_t h = 0;
        while (h < 5 && is_hex(AT(p + h)))
            h++;
        if (h == 0 || h > 4)
            break;
        size_t dd = digits_at(t, len, p, 5);
        size_t n4 = (dd == h && AT(p + h) == '.' && groups <= 6) ? ipv4_parse(t, len, p) : 0;
        if (n4) {
            size_t n = n4;
            groups += 2;
            p += n;
            digits_seen = 1;
            break;
        }
        for (size_t k = 0; k < h; k++)
            digits_seen |= is_digit(AT(p + k));
        groups++;
        p += h;
        if (groups > 8)
            return 0;
        if (AT(p) == ':' && AT(p + 1) == ':') {
            if (dbl)
                return 0;
            dbl = true;
            p += 2;
            if (!is_hex(AT(p)))
                break;
            continue;
        }
        if (AT(p) == ':' && is_hex(AT(p + 1))) {
            p++;
            continue;
        }
        break;
    }
    if (dbl ? (groups > 7 || groups < 2) : groups != 8)
        return 0;
    if (!digits_seen)
        return 0;
    unsigned char c = AT(p);
    if (is_wordc(c) || c == ':' || (c == '.' && is_alnum(AT(p + 1))))
        return 0;
    return p - s;
}

/* ---- IBAN ---- */

struct iban_country {
    char cc[3];
    unsigned char len;
};
static const struct iban_country iban_countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IS", 26}, {"IT", 27},
    {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31},
    {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
    {"SM", 27}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

static size_t iban_length(unsigned char a, unsigned char b)
{
    for (size_t k = 0; k < sizeof(iban_countries) / sizeof(iban_countries[0]); k++)
        if (iban_countries[k].cc[0] == (char)a && iban_countries[k].cc[1] == (char)b)
            return iban_countries[k].len;
    return 0;
}

static bool iban_mod97_ok(const char *c, size_t n)
{
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char x = (unsigned char)c[(k + 4) % n];
        if (is_digit(x))
            rem = (rem * 10 + (x - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(x - 'A' + 10)) % 97;
    }
    return rem == 1;
}

static size_t det_iban(const char *t, size_t len, size_t s)
{
    if (!is_upper(AT(s + 1)) || !is_digit(AT(s + 2)) || !is_digit(AT(s + 3)))
        return 0;
    size_t want = iban_length(AT(s), AT(s + 1));
    if (want == 0)
        return 0;
    char c[34];
    size_t n = 0, p = s;
    bool spaced = false;
    while (n < want) {
        unsigned char x = AT(p);
        if (x == ' ' && n % 4 == 0 && n > 0 && (is_upper(AT(p + 1)) || is_digit(AT(p + 1)))) {
            if (n > 4 && !spaced)
                return 0; /* spaces must group from the start */
            spaced = true;
            p++;
            continue;
        }
        if (!(is_upper(x) || is_digit(x)))
            return 0;
        if (spaced && n % 4 == 0 && n > 0 && t[p - 1] != ' ')
            return 0;
        c[n++] = (char)x;
        p++;
    }
    if (is_wordc(AT(p)))
        return 0;
    return iban_mod97_ok(c, n) ? p - s : 0;
}

/* ---- national IDs ---- */

/* UK National Insurance number: AB 12 34 56 C, AB123456C. */
static size_t det_nino(const char *t, size_t len, size_t s)
{
    unsigned char a = AT(s), b = AT(s + 1);
    if (!is_upper(a) || !is_upper(b) || strchr("DFIQUV", a) || strchr("DFIOQUV", b))
        return 0;
    static const char *const bad[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        if (a == (unsigned char)bad[k][0] && b == (unsigned char)bad[k][1])
            return 0;
    size_t p = s + 2;
    bool spaced = AT(p) == ' ';
    for (int k = 0; k < 3; k++) {
        if (spaced) {
            if (AT(p) != ' ')
                return 0;
            p++;
        }
        if (digits_at(t, len, p, 3) < 2)
            return 0;
        p += 2;
    }
    if (is_digit(AT(p)))
        return 0;
    if (spaced) {
        if (AT(p) != ' ')
            return 0;
        p++;
    }
    unsigned char x = AT(p);
    if (x < 'A' || x > 'D' || is_wordc(AT(p + 1)))
        return 0;
    return p + 1 - s;
}

static const char dni_letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";

/* Spanish DNI: 12345678Z / 12345678-Z; NIE: X1234567L (X/Y/Z stand for 0/1/2). */
static size_t det_dni(const char *t, size_t len, size_t s)
{
    unsigned long v = 0;
    size_t p = s, nd;
    if (AT(s) == 'X' || AT(s) == 'Y' || AT(s) == 'Z') {
        v = (unsigned long)(AT(s) - 'X');
        p++;
        if (AT(p) == '-')
            p++;
        nd = 7;
    } else {
        nd = 8;
    }
    if (digits_at(t, len, p, 9) != nd)
        return 0;
    for (size_t k = 0; k < nd; k++)
        v = v * 10 + (unsigned long)(t[p + k] - '0');
    p += nd;
    if (AT(p) == '-' || AT(p) == ' ')
        p++;
    if (!is_upper(AT(p)) || is_wordc(AT(p + 1)))
        return 0;
    return (char)AT(p) == dni_letters[v % 23] ? p + 1 - s : 0;
}

/* French NIR (INSEE): 1 84 12 76 451 089 46 or 15 characters; key = 97 - (n mod 97). */
static size_t det_nir(const char *t, size_t len, size_t s)
{
    static const unsigned char group_end[] = {1, 3, 5, 7, 10, 13, 15};
    char c[15];
    size_t n = 0, p = s, g = 0;
    int spaced = -1;
    while (n < 15) {
        unsigned char x = AT(p);
        bool dept2 = (n == 6 && c[5] == '2' && (x == 'A' || x == 'B'));
        if (!is_digit(x) && !dept2)
            return 0;
        c[n++] = (char)x;
        p++;
        if (g < sizeof(group_end) && n == group_end[g]) {
            g++;
            if (n == 15)
                break;
            bool sp = AT(p) == ' ';
            if (spaced < 0)
                spaced = sp;
            if (sp != (spaced == 1))
                return 0;
            p += sp;
        }
    }
    if (!num_end(t, len, p) || (c[0] != '1' && c[0] != '2'))
        return 0;
    unsigned month = (unsigned)(c[3] - '0') * 10 + (unsigned)(c[4] - '0');
    if (month == 0 || (month > 12 && month < 20))
        return 0;
    uint64_t v = 0;
    for (size_t k = 0; k < 13; k++) {
        unsigned d;
        if (k == 5 && (c[6] == 'A' || c[6] == 'B'))
            d = 1;
        else if (k == 6 && c[6] == 'A')
            d = 9;
        else if (k == 6 && c[6] == 'B')
            d = 8;
        else
            d = (unsigned)(c[k] - '0');
        v = v * 10 + d;
    }
    unsigned key = (unsigned)(c[13] - '0') * 10 + (unsigned)(c[14] - '0');
    return key == 97 - v % 97 ? p - s : 0;
}

/* Italian codice fiscale: RSSMRA85T10A562S (omocodia letters accepted for digits). */
static int cf_digit(unsigned char x)
{
    if (is_digit(x))
        return x - '0';
    const char *o = strchr("LMNPQRSTUV", x);
    return (x && o) ? (int)(o - "LMNPQRSTUV") : -1;
}

static size_t det_codice_fiscale(const char *t, size_t len, size_t s)
{
    static const unsigned char odd[26] = {1,  0,  5,  7,  9,  13, 15, 17, 19, 21, 2,  4,  18,
                                          20, 11, 3,  6,  8,  12, 14, 16, 10, 22, 25, 24, 23};
    static const char layout[] = "LLLLLLNNLNNLNNNL"; /* L letter, N digit */
    for (size_t k = 0; k < 16; k++) {
        unsigned char x = AT(s + k);
        if (layout[k] == 'L' ? !is_upper(x) : cf_digit(x) < 0)
            return 0;
    }
    if (is_wordc(AT(s + 16)) || !strchr("ABCDEHLMPRST", AT(s + 8)))
        return 0;
    int day = cf_digit(AT(s + 9)) * 10 + cf_digit(AT(s + 10));
    if (day < 1 || (day > 31 && day < 41) || day > 71)
        return 0;
    unsigned sum = 0;
    for (size_t k = 0; k < 15; k++) {
        unsigned char x = AT(s + k);
        unsigned idx = is_digit(x) ? (unsigned)(x - '0') : (unsigned)(x - 'A');
        if (k % 2 == 0)
            sum += odd[idx];
        else
            sum += idx;
    }
    return AT(s + 15) == 'A' + sum % 26 ? 16 : 0;
}

/* Case-insensitive: one of words ends within the 48 bytes before i. */
static bool keyword_before(const char *t, size_t i, const char *const *words, size_t nw)
{
    size_t from = i > 48 ? i - 48 : 0;
    for (size_t w = 0; w < nw; w++) {
        size_t wl = strlen(words[w]);
        for (size_t p = from; p + wl <= i; p++)
            if (strncasecmp(t + p, words[w], wl) == 0)
                return true;
    }
    return false;
}

/* German tax id (Steuer-ID): 11 digits, ISO 7064 MOD 11,10 check digit; one digit repeats
 * two or three times in the first ten. */
static size_t det_steuer_id(const char *t, size_t len, size_t s)
{
    static const unsigned char group_end[] = {2, 5, 8, 11};
    char c[11];
    size_t n = 0, p = s, g = 0;
    int spaced = -1;
    while (n < 11) {
        if (!is_digit(AT(p)))
            return 0;
        c[n++] = t[p++];
        if (n == group_end[g] && n < 11) {
            g++;
            bool sp = AT(p) == ' ';
            if (spaced < 0)
                spaced = sp;
            if (sp != (spaced == 1))
                return 0;
            p += sp;
        }
    }
    if (!num_end(t, len, p) || c[0] == '0')
        return 0;
    if (spaced != 1) {
        static const char *const ctx[] = {"steuer", "idnr", "id-nr", "identifikationsnr",
                                          "identifikationsnummer", "tax id", "tin"};
        if (!keyword_before(t, s, ctx, sizeof(ctx) / sizeof(ctx[0])))
            return 0;
    }
    int count[10] = {0}, repeated = 0;
    for (int k = 0; k < 10; k++)
        count[c[k] - '0']++;
    for (int k = 0; k < 10; k++) {
        if (count[k] > 3)
            return 0;
        if (count[k] >= 2)
            repeated++;
    }
    if (repeated != 1)
        return 0;
    unsigned prod = 10;
    for (int k = 0; k < 10; k++) {
        unsigned sum = ((unsigned)(c[k] - '0') + prod) % 10;
        if (sum == 0)
            sum = 10;
        prod = (sum * 2) % 11;
    }
    unsigned check = 11 - prod;
    if (check == 10)
        check = 0;
    return (unsigned)(c[10] - '0') == check ? p - s : 0;
}

/* ---- secrets ---- */

static bool tok_char(unsigned char c) { return is_alnum(c) || c == '_' || c == '-'; }

/* Length of a run of chars accepted by cls starting at p, capped at max + 1. */
static size_t run_len(const char *t, size_t len, size_t p, bool (*cls)(unsigned char),
                      size_t max)
{
    size_t n = 0;
    while (n <= max && p + n < len && cls((unsigned char)t[p + n]))
        n++;
    return n;
}

static bool mixed_alnum(const char *t, size_t p, size_t n)
{
    bool d = false, a = false;
    for (size_t k = 0; k < n; k++) {
        d |= is_digit((unsigned char)t[p + k]);
        a |= is_alpha((unsigned char)t[p + k]);
    }
    return d && a;
}

static bool alnum_only(unsigned char c) { return is_alnum(c); }
static bool upper_digit(unsigned char c) { return is_upper(c) || is_digit(c); }
static bool tok_char_us(unsigned char c) { return is_alnum(c) || c == '_'; }
static bool bearer_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
           c == '-' || c == '=';
}

/* Shannon entropy of t[p, p+n) in bits per byte. */
static double entropy(const char *t, size_t p, size_t n)
{
    unsigned cnt[256] = {0};
    for (size_t k = 0; k < n; k++)
        cnt[(unsigned char)t[p + k]]++;
    double h = 0;
    for (int k = 0; k < 256; k++)
        if (cnt[k]) {
            double q = (double)cnt[k] / (double)n;
            h -= q * log2(q);
        }
    return h;
}

#define KEY_MAX 512

static bool starts(const char *t, size_t len, size_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s + n <= len && memcmp(t + s, lit, n) == 0;
}

/* Vendor keys with a well-known prefix. */
static size_t det_vendor_key(const char *t, size_t len, size_t s)
{
    unsigned char c = AT(s);
    size_t n;
    if (c == 's' && starts(t, len, s, "sk-")) {
        n = run_len(t, len, s + 3, tok_char, KEY_MAX);
        if (n >= 20 && n <= KEY_MAX && mixed_alnum(t, s + 3, n))
            return 3 + n;
        return 0;
    }
    if (c == 'A' && (starts(t, len, s, "AKIA") || starts(t, len, s, "ASIA"))) {
        n = run_len(t, len, s + 4, upper_digit, 20);
        return (n == 16 && !is_wordc(AT(s + 20))) ? 20 : 0;
    }
    if (c == 'A' && starts(t, len, s, "AIza")) {
        n = run_len(t, len, s + 4, tok_char, 64);
        return (n >= 30 && n <= 64) ? 4 + n : 0;
    }
    if (c == 'g' && AT(s + 1) == 'h' && strchr("pousr", AT(s + 2)) && AT(s + 2) &&
        AT(s + 3) == '_') {
        n = run_len(t, len, s + 4, alnum_only, 255);
        return (n >= 30 && n <= 255) ? 4 + n : 0;
    }
    if (c == 'g' && starts(t, len, s, "github_pat_")) {
        n = run_len(t, len, s + 11, tok_char_us, 255);
        return (n >= 22 && n <= 255) ? 11 + n : 0;
    }
    if (c == 'g' && starts(t, len, s, "glpat-")) {
        n = run_len(t, len, s + 6, tok_char, 255);
        return (n >= 20 && n <= 255) ? 6 + n : 0;
    }
    if (c == 'x' && starts(t, len, s, "xox") && AT(s + 3) && strchr("baprs", AT(s + 3)) &&
        AT(s + 4) == '-') {
        n = run_len(t, len, s + 5, tok_char, 255);
        return (n >= 10 && n <= 255 && mixed_alnum(t, s + 5, n)) ? 5 + n : 0;
    }
    return 0;
}

static bool ends_with_ci(const char *w, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && strncasecmp(w + n - m, suf, m) == 0;
}

static bool value_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '"' && c != '\'' && c != '`' && c != ',' && c != ';';
}

/* "Bearer <token>" and key=value secrets; the match is the value alone. */
static size_t det_context_secret(const char *t, size_t len, size_t s, size_t *start)
{
    size_t w = run_len(t, len, s, tok_char, 64);
    if (w == 0 || w > 64)
        return 0;
    if (w == 6 && strncasecmp(t + s, "bearer", 6) == 0 && AT(s + 6) == ' ') {
        size_t n = run_len(t, len, s + 7, bearer_char, KEY_MAX);
        if (n >= 20 && n <= KEY_MAX && mixed_alnum(t, s + 7, n)) {
            *start = s + 7;
            return n;
        }
        return 0;
    }
    bool pw = ends_with_ci(t + s, w, "password") || ends_with_ci(t + s, w, "passwd") ||
              ends_with_ci(t + s, w, "pwd");
    bool key = ends_with_ci(t + s, w, "key") || ends_with_ci(t + s, w, "secret") ||
               ends_with_ci(t + s, w, "token");
    if (!pw && !key)
        return 0;
    size_t p = s + w;
    if (AT(p) == '"' || AT(p) == '\'')
        p++;
    while (AT(p) == ' ' && p - s - w < 4)
        p++;
    unsigned char op = AT(p);
    if (op == ':' && AT(p + 1) == '=')
        p++;
    else if (op == '=' && AT(p + 1) == '>')
        p++;
    else if (op != ':' && op != '=')
        return 0;
    p++;
    while (AT(p) == ' ' && p - s - w < 8)
        p++;
    if (AT(p) == '"' || AT(p) == '\'')
        p++;
    unsigned char v0 = AT(p);
    if (v0 == '$' || v0 == '{' || v0 == '[' || v0 == '<' || v0 == '%')
        return 0; /* a template or a placeholder, not a value */
    if (key) {
        size_t n = run_len(t, len, p, bearer_char, KEY_MAX);
        if (n < 32 || n > KEY_MAX || !mixed_alnum(t, p, n) || entropy(t, p, n) < 3.3)
            return 0;
        *start = p;
        return n;
    }
    size_t n = run_len(t, len, p, value_char, 128);
    if (n < 6 || n > 128)
        return 0;
    if (op == ':') {
        bool odd = false;
        for (size_t k = 0; k < n; k++)
            odd |= !is_lower((unsigned char)t[p + k]);
        if (!odd)
            return 0; /* "password: required" is prose */
    }
    *start = p;
    return n;
}

/* -----BEGIN ... PRIVATE KEY----- through the matching END line. *next_end caches where the
 * next "-----END " is (or len when there is none), so many BEGIN lines without an END stay
 * linear. */
#define PEM_MAX ((size_t)64 << 10)
static size_t det_pem(const char *t, size_t len, size_t s, size_t *next_end)
{
    if (!starts(t, len, s, "-----BEGIN "))
        return 0;
    size_t p = s + 11, q = p;
    while (q < len && q - p < 40 && (is_upper(AT(q)) || is_digit(AT(q)) || AT(q) == ' '))
        q++;
    if (q - p < 11 || memcmp(t + q - 11, "PRIVATE KEY", 11) != 0 || !starts(t, len, q, "-----"))
        return 0;
    size_t body = q + 5, lim = len - body < PEM_MAX ? len : body + PEM_MAX;
    if (*next_end < body) {
        const char *e = memmem(t + body, len - body, "-----END ", 9);
        *next_end = e ? (size_t)(e - t) : len;
    }
    if (*next_end < lim) {
        size_t e = *next_end, ee = e + 9;
        while (ee < lim && ee - e < 60 && t[ee] != '\n') {
            if (starts(t, len, ee, "PRIVATE KEY-----"))
                return ee + 16 - s;
            ee++;
        }
    }
    /* no END line: take the base64 body that follows */
    size_t b = body;
    while (b < lim && (bearer_char(AT(b)) || AT(b) == '\n' || AT(b) == '\r' || AT(b) == ' ' ||
                       AT(b) == ':' || AT(b) == ','))
        b++;
    return b - s;
}

/* ---- the driver ---- */

/* Higher wins a tie on length: checksum-validated and structured kinds first. */
static const int kind_priority[PII_KIND_COUNT] = {
    [PII_KIND_PRIVATE_KEY] = 10, [PII_KIND_API_KEY] = 9, [PII_KIND_IBAN] = 8,
    [PII_KIND_CARD] = 7,         [PII_KIND_NATIONAL_ID] = 6, [PII_KIND_SSN] = 5,
    [PII_KIND_EMAIL] = 4,        [PII_KIND_IPV6] = 3,    [PII_KIND_IPV4] = 2,
    [PII_KIND_PHONE] = 1,        [PII_KIND_PERSON] = 0,
};

/* Farthest a detector reaches before the byte that triggers it (e-mail local part). */
#define LOOKBACK 80
#define PENDING_MAX 64

struct scan_state {
    struct pii_match pend[PENDING_MAX]; /* sorted by start, non-overlapping */
    size_t n;
    pii__emit_fn emit;
    void *ctx;
    int rc;
};

static bool beats(const struct pii_match *a, const struct pii_match *b)
{
    if (a->len != b->len)
        return a->len > b->len;
    return kind_priority[a->kind] > kind_priority[b->kind];
}

static void emit_first(struct scan_state *st)
{
    if (st->rc >= 0) {
        int rc = st->emit(st->ctx, &st->pend[0]);
        if (rc < 0)
            st->rc = rc;
    }
    memmove(st->pend, st->pend + 1, (st->n - 1) * sizeof(st->pend[0]));
    st->n--;
}

/* Emits pending matches no future candidate can overlap, given the scan is at pos. */
static void settle(struct scan_state *st, size_t pos)
{
    while (st->n > 0 && st->pend[0].start + st->pend[0].len + LOOKBACK <= pos)
        emit_first(st);
}

/* Offers a candidate found by a detector triggered at byte i. */
static void add_at(struct scan_state *st, size_t i, enum pii_kind kind, size_t start,
                   size_t mlen)
{
    if (mlen == 0)
        return;
    settle(st, i);
    struct pii_match c = {kind, start, mlen};
    size_t lo = st->n, hi = 0;
    for (size_t k = st->n; k-- > 0;) {
        struct pii_match *e = &st->pend[k];
        if (e->start >= c.start + c.len)
            continue;
        if (e->start + e->len <= c.start)
            break;
        if (!beats(&c, e))
            return;
        if (hi == 0)
            hi = k + 1;
        lo = k;
    }
    if (hi) {
        memmove(st->pend + lo, st->pend + hi, (st->n - hi) * sizeof(c));
        st->n -= hi - lo;
    }
    if (st->n == PENDING_MAX)
        emit_first(st);
    size_t at = st->n;
    while (at > 0 && st->pend[at - 1].start > c.start)
        at--;
    memmove(st->pend + at + 1, st->pend + at, (st->n - at) * sizeof(c));
    st->pend[at] = c;
    st->n++;
}

int pii__scan_run(const char *t, size_t len, unsigned mask, pii__emit_fn emit, void *ctx)
{
    if ((!t && len) || !emit)
        return PII_E_ARG;
    if (len > PII_TEXT_MAX)
        return PII_E_TOO_BIG;
    struct scan_state st = {.n = 0, .emit = emit, .ctx = ctx, .rc = 0};
    const bool m_digit = mask & (PII_MASK(PII_KIND_PHONE) | PII_MASK(PII_KIND_CARD) |
                                 PII_MASK(PII_KIND_SSN) | PII_MASK(PII_KIND_IPV4) |
                                 PII_MASK(PII_KIND_IPV6) | PII_MASK(PII_KIND_NATIONAL_ID));
    size_t s2 = 0, pem_end = 0; /* pem_end 0: not searched yet */
    size_t pem_cover = 0;       /* end of the last private key block */
    for (size_t i = 0; i < len && st.rc >= 0; i++) {
        unsigned char c = (unsigned char)t[i];
        unsigned char prev = i ? (unsigned char)t[i - 1] : ' ';
        if (c == ' ' || c == '\n' || (is_lower(c) && is_wordc(prev)))
            continue; /* the common case: nothing starts here */
        if (c == '@') {
            if (mask & PII_MASK(PII_KIND_EMAIL)) {
                size_t n = det_email(t, len, i, &s2);
                add_at(&st, i, PII_KIND_EMAIL, s2, n);
            }
            continue;
        }
        if (c == '-') {
            if ((mask & PII_MASK(PII_KIND_PRIVATE_KEY)) && AT(i + 1) == '-' && i >= pem_cover) {
                size_t n = det_pem(t, len, i, &pem_end);
                add_at(&st, i, PII_KIND_PRIVATE_KEY, i, n);
                if (n)
                    pem_cover = i + n; /* a BEGIN inside the block is part of it */
            }
            continue;
        }
        if (c == '+' || c == '(') {
            if ((mask & PII_MASK(PII_KIND_PHONE)) && is_digit(AT(i + 1)) && num_boundary(t, i))
                add_at(&st, i, PII_KIND_PHONE, i, det_phone(t, len, i));
            continue;
        }
        if (c == ':') {
            if ((mask & PII_MASK(PII_KIND_IPV6)) && AT(i + 1) == ':' && ipv6_boundary(t, i))
                add_at(&st, i, PII_KIND_IPV6, i, det_ipv6(t, len, i));
            continue;
        }
        if (is_digit(c)) {
            if (!m_digit || !num_boundary(t, i))
                continue;
            if (mask & PII_MASK(PII_KIND_PHONE))
                add_at(&st, i, PII_KIND_PHONE, i, det_phone(t, len, i));
            if (mask & PII_MASK(PII_KIND_CARD))
                add_at(&st, i, PII_KIND_CARD, i, det_card(t, len, i));
            if (mask & PII_MASK(PII_KIND_SSN))
                add_at(&st, i, PII_KIND_SSN, i, det_ssn(t, len, i));
            if (mask & PII_MASK(PII_KIND_IPV4))
                add_at(&st, i, PII_KIND_IPV4, i, det_ipv4(t, len, i));
            if ((mask & PII_MASK(PII_KIND_IPV6)) && ipv6_boundary(t, i))
                add_at(&st, i, PII_KIND_IPV6, i, det_ipv6(t, len, i));
            if (mask & PII_MASK(PII_KIND_NATIONAL_ID)) {
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_dni(t, len, i));
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_nir(t, len, i));
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_steuer_id(t, len, i));
            }
            continue;
        }
        if (!(is_alpha(c) || c >= 0xC0) || is_wordc(prev))
            continue;
        /* a word starts here */
        if (is_alpha(c) && (mask & PII_MASK(PII_KIND_API_KEY))) {
            add_at(&st, i, PII_KIND_API_KEY, i, det_vendor_key(t, len, i));
            size_t n = det_context_secret(t, len, i, &s2);
            add_at(&st, i, PII_KIND_API_KEY, s2, n);
        }
        if (is_upper(c)) {
            if (mask & PII_MASK(PII_KIND_IBAN))
                add_at(&st, i, PII_KIND_IBAN, i, det_iban(t, len, i));
            if (mask & PII_MASK(PII_KIND_NATIONAL_ID)) {
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_nino(t, len, i));
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_dni(t, len, i));
                add_at(&st, i, PII_KIND_NATIONAL_ID, i, det_codice_fiscale(t, len, i));
            }
        }
        if (is_hex(c) && (mask & PII_MASK(PII_KIND_IPV6)) && ipv6_boundary(t, i))
            add_at(&st, i, PII_KIND_IPV6, i, det_ipv6(t, len, i));
        if ((is_upper(c) || c >= 0xC0) && (mask & PII_MASK(PII_KIND_PERSON))) {
            size_t n = pii__person_at(t, len, i, &s2);
            add_at(&st, i, PII_KIND_PERSON, s2, n);
        }
    }
    while (st.n > 0 && st.rc >= 0)
        emit_first(&st);
    return st.rc < 0 ? st.rc : 0;
}
