/* Tests of the privacy module: every detector's positives and negatives, overlaps, the vault,
 * streaming restoration over every chunk split, speed and robustness on random input. */
#include <stdint.h>
#include <time.h>

#include "gateway/pii.h"
#include "test.h"

#define MAXM 64

/* Whether scanning text finds kind with exactly value (and, if only, nothing else). */
static void check_find(const char *file, int line, const char *text, enum pii_kind kind,
                       const char *value, bool only)
{
    struct pii_match m[MAXM];
    size_t n = 0;
    int rc = pii_scan(text, strlen(text), m, MAXM, &n);
    if (rc != 0) {
        test__fail(file, line, "pii_scan(\"%s\") = %d", text, rc);
        return;
    }
    bool found = false;
    for (size_t k = 0; k < n; k++)
        if (m[k].kind == kind && m[k].len == strlen(value) &&
            memcmp(text + m[k].start, value, m[k].len) == 0)
            found = true;
    if (!found || (only && n != 1)) {
        test__fail(file, line, "expected %s \"%s\" in \"%s\"; got %zu match(es):", pii_kind_name(kind),
                   value, text, n);
        for (size_t k = 0; k < n; k++)
            test__fail(file, line, "  %s \"%.*s\"", pii_kind_name(m[k].kind), (int)m[k].len,
                       text + m[k].start);
    }
}

/* No match of kind (or of any kind when kind is PII_KIND_COUNT). */
static void check_none(const char *file, int line, const char *text, enum pii_kind kind)
{
    struct pii_match m[MAXM];
    size_t n = 0;
    int rc = pii_scan(text, strlen(text), m, MAXM, &n);
    if (rc != 0)
        test__fail(file, line, "pii_scan(\"%s\") = %d", text, rc);
    for (size_t k = 0; k < n; k++)
        if (kind == PII_KIND_COUNT || m[k].kind == kind)
            test__fail(file, line, "unexpected %s \"%.*s\" in \"%s\"", pii_kind_name(m[k].kind),
                       (int)m[k].len, text + m[k].start, text);
}

/* One scan expectation of a detector's table, or (group set) the start of a test's rows. */
struct scan_case {
    const char *group; /* GROUP rows: the test whose rows follow; NULL on other rows */
    const char *text;
    enum pii_kind kind; /* PII_KIND_COUNT (with value NULL): no match of any kind */
    const char *value;  /* the match of kind text must hold; NULL: no match of kind */
    bool only;          /* value must be the only match */
};

/* Rows: text holds kind with exactly value (and, for FIND_ONLY, nothing else); NONE: no match of
 * kind; NOTHING: no match at all. */
#define FIND(text, kind, value) {NULL, text, kind, value, false}
#define FIND_ONLY(text, kind, value) {NULL, text, kind, value, true}
#define NONE(text, kind) {NULL, text, kind, NULL, false}
#define NOTHING(text) {NULL, text, PII_KIND_COUNT, NULL, false}
#define GROUP(test) {#test, NULL, PII_KIND_COUNT, NULL, false}

/* Checks rows c[0..n) up to the next GROUP row (failures name the row's text). Returns how many
 * rows it checked. */
static size_t check_cases(const char *file, int line, const struct scan_case *c, size_t n)
{
    size_t k = 0;
    for (; k < n && !c[k].group; k++) {
        if (c[k].value)
            check_find(file, line, c[k].text, c[k].kind, c[k].value, c[k].only);
        else
            check_none(file, line, c[k].text, c[k].kind);
    }
    return k;
}
#define CHECK_CASES(cases) check_cases(__FILE__, __LINE__, cases, sizeof(cases) / sizeof((cases)[0]))

TEST(pii_kind_names)
{
    static const struct {
        enum pii_kind kind;
        const char *name;
    } names[] = {
        {PII_KIND_EMAIL, "email"},
        {PII_KIND_PHONE, "phone"},
        {PII_KIND_CARD, "card"},
        {PII_KIND_IBAN, "iban"},
        {PII_KIND_IPV4, "ipv4"},
        {PII_KIND_IPV6, "ipv6"},
        {PII_KIND_SSN, "ssn"},
        {PII_KIND_NATIONAL_ID, "national_id"},
        {PII_KIND_API_KEY, "api_key"},
        {PII_KIND_PRIVATE_KEY, "private_key"},
        {PII_KIND_PERSON, "person"},
        {PII_KIND_COUNT, "unknown"},
        {(enum pii_kind)-1, "unknown"},
    };
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        CHECK_STR(pii_kind_name(names[k].kind), names[k].name);
    CHECK(pii_kind_tag(PII_KIND_COUNT) == NULL);
    CHECK_STR(pii_strerror(PII_E_FULL), "too many detected values");
}

/* The detectors' positives and negatives: each GROUP row starts the rows of the test it names. */
static const struct scan_case detector_cases[] = {
    GROUP(pii_email),
    FIND_ONLY("write to john.doe@example.com today", PII_KIND_EMAIL, "john.doe@example.com"),
    FIND_ONLY("<a+tag_1@mail.sub.example.co.uk>", PII_KIND_EMAIL, "a+tag_1@mail.sub.example.co.uk"),
    FIND_ONLY("Mail: X.Y-Z@Example.ORG.", PII_KIND_EMAIL, "X.Y-Z@Example.ORG"),
    NOTHING("user@localhost is not routable"),
    NOTHING("@example.com alone"),
    NOTHING("foo@bar.c has a one-letter TLD"),
    NOTHING("a@-bad-.com and b@.com"),
    NOTHING("decorator @property and @Override"),

    GROUP(pii_phone),
    FIND_ONLY("call +1 (555) 123-4567 now", PII_KIND_PHONE, "+1 (555) 123-4567"),
    FIND_ONLY("Tel. +49 30 1234567.", PII_KIND_PHONE, "+49 30 1234567"),
    FIND_ONLY("+33 6 12 34 56 78", PII_KIND_PHONE, "+33 6 12 34 56 78"),
    FIND_ONLY("UK: +44 20 7946 0958,", PII_KIND_PHONE, "+44 20 7946 0958"),
    FIND_ONLY("sms +4915112345678", PII_KIND_PHONE, "+4915112345678"),
    FIND_ONLY("+44 (0)20 7946 0958", PII_KIND_PHONE, "+44 (0)20 7946 0958"),
    FIND_ONLY("office (555) 123-4567", PII_KIND_PHONE, "(555) 123-4567"),
    FIND_ONLY("cell 555-123-4567", PII_KIND_PHONE, "555-123-4567"),
    FIND_ONLY("1-800-555-0199 toll free", PII_KIND_PHONE, "1-800-555-0199"),
    FIND_ONLY("portable 06 12 34 56 78", PII_KIND_PHONE, "06 12 34 56 78"),
    FIND_ONLY("06.12.34.56.78", PII_KIND_PHONE, "06.12.34.56.78"),
    FIND_ONLY("Berlin 030 1234567", PII_KIND_PHONE, "030 1234567"),
    FIND_ONLY("mobil 0171/1234567", PII_KIND_PHONE, "0171/1234567"),
    FIND_ONLY("London 020 7946 0958", PII_KIND_PHONE, "020 7946 0958"),
    FIND_ONLY("0049 30 12345678", PII_KIND_PHONE, "0049 30 12345678"),
    /* dates, versions, prices, plain numbers, times */
    NOTHING("on 2026-11-22 and 22.11.2026 and 11/22/2026"),
    NOTHING("01.02.2026 12:00"),
    NOTHING("version 1.2.3 and 10.0.19045"),
    NOTHING("it costs $1,234,567.89 or 1 234 567 EUR"),
    NOTHING("order 12345678901 shipped"),
    NOTHING("pi is 3.14159 and e 2.71828"),
    NOTHING("ISBN 978-3-16-148410-0"),
    NOTHING("call 555-1234"),
    NOTHING("Boston, MA 02110-1301 USA"),
    NOTHING("failed tests: 571 612 1056"),
    NOTHING("bytes 01 02 03 04 05 06 and 05 00 00 00 00 00"),
    NOTHING("snapshot (1:10~+20191229111838+6991d5728f1-1)"),
    NOTHING("0.5 1234567"),
    NOTHING("+12 is a score"),
    NOTHING("room 123 456 7890123"),
    FIND("+49 30 1234567 4111 1111 1111 1111", PII_KIND_PHONE, "+49 30 1234567"),
    FIND("+49 30 1234567 4111 1111 1111 1111", PII_KIND_CARD, "4111 1111 1111 1111"),

    GROUP(pii_card),
    FIND_ONLY("card 4111 1111 1111 1111 exp 12/27", PII_KIND_CARD, "4111 1111 1111 1111"),
    FIND_ONLY("4111-1111-1111-1111", PII_KIND_CARD, "4111-1111-1111-1111"),
    FIND_ONLY("pan=4111111111111111;", PII_KIND_CARD, "4111111111111111"),
    FIND_ONLY("amex 3782 822463 10005", PII_KIND_CARD, "3782 822463 10005"),
    FIND_ONLY("mc 5500 0000 0000 0004", PII_KIND_CARD, "5500 0000 0000 0004"),
    FIND_ONLY("discover 6011111111111117", PII_KIND_CARD, "6011111111111117"),
    FIND_ONLY("jcb 3530111333300000", PII_KIND_CARD, "3530111333300000"),
    FIND_ONLY("card 4111 1111 1111 1111 2026", PII_KIND_CARD, "4111 1111 1111 1111"),
    FIND("4111111111111111 192.168.0.1", PII_KIND_CARD, "4111111111111111"),
    NONE("4111 1111 1111 1112", PII_KIND_CARD),     /* Luhn fails */
    NONE("4111111111111112", PII_KIND_CARD),
    NONE("1234 5678 1234 5670", PII_KIND_CARD),     /* Luhn ok, no such issuer */
    NONE("41111111111111111111", PII_KIND_CARD),    /* 20 digits */
    NONE("4111 1111-1111 1111", PII_KIND_CARD),     /* mixed separators */
    NONE("378282246310005x", PII_KIND_CARD),
    NONE("v1.4111111111111111", PII_KIND_CARD),

    GROUP(pii_iban),
    FIND_ONLY("IBAN: DE89 3704 0044 0532 0130 00.", PII_KIND_IBAN, "DE89 3704 0044 0532 0130 00"),
    FIND_ONLY("DE89370400440532013000", PII_KIND_IBAN, "DE89370400440532013000"),
    FIND_ONLY("GB82 WEST 1234 5698 7654 32", PII_KIND_IBAN, "GB82 WEST 1234 5698 7654 32"),
    FIND_ONLY("FR14 2004 1010 0505 0001 3M02 606", PII_KIND_IBAN, "FR14 2004 1010 0505 0001 3M02 606"),
    FIND_ONLY("(NL91ABNA0417164300)", PII_KIND_IBAN, "NL91ABNA0417164300"),
    FIND_ONLY("ES91 2100 0418 4502 0005 1332", PII_KIND_IBAN, "ES91 2100 0418 4502 0005 1332"),
    FIND_ONLY("CH9300762011623852957", PII_KIND_IBAN, "CH9300762011623852957"),
    NONE("DE89 3704 0044 0532 0130 01", PII_KIND_IBAN),  /* mod 97 fails */
    NONE("DE88370400440532013000", PII_KIND_IBAN),
    NONE("DE89 3704 0044 0532 0130", PII_KIND_IBAN),     /* too short */
    NONE("DE8937040044053201300012", PII_KIND_IBAN),     /* too long */
    NONE("XX89370400440532013000", PII_KIND_IBAN),       /* no such country */
    NONE("DE89 370 40044 0532 0130 00", PII_KIND_IBAN),  /* broken grouping */

    GROUP(pii_ipv4),
    FIND_ONLY("host 192.168.1.1 is up", PII_KIND_IPV4, "192.168.1.1"),
    FIND_ONLY("10.0.0.255,", PII_KIND_IPV4, "10.0.0.255"),
    FIND_ONLY("dns=8.8.8.8.", PII_KIND_IPV4, "8.8.8.8"),
    FIND_ONLY("net 10.1.2.0/24", PII_KIND_IPV4, "10.1.2.0"),
    NOTHING("256.1.1.1 and 1.256.1.1 and 1.1.1.300"),
    NOTHING("version 1.2.3.4.5 of the tool"),
    NOTHING("v1.2.3.4"),
    NOTHING("release 1.2.3"),
    NOTHING("192.168.01.1"),
    NOTHING("1.2.3.4a"),
    NOTHING("Standards-Version: bump to 3.7.2.0."),
    NOTHING("new upstream release 4.3.99.16"),

    GROUP(pii_ipv6),
    FIND_ONLY("addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok", PII_KIND_IPV6,
              "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    FIND_ONLY("2001:db8::1", PII_KIND_IPV6, "2001:db8::1"),
    FIND_ONLY("[fe80::1ff:fe23:4567:890a]", PII_KIND_IPV6, "fe80::1ff:fe23:4567:890a"),
    FIND_ONLY("mapped ::ffff:192.168.1.1 here", PII_KIND_IPV6, "::ffff:192.168.1.1"),
    FIND_ONLY("64:ff9b::10.0.0.1", PII_KIND_IPV6, "64:ff9b::10.0.0.1"),
    FIND_ONLY("2001:db8:0:0:1:0:0:1", PII_KIND_IPV6, "2001:db8:0:0:1:0:0:1"),
    NOTHING("at 12:30:45 sharp"),
    NOTHING("2001:db8::1::2"),
    NOTHING("mac ab:cd:ef:01:23:45"),
    NOTHING("1:2:3:4:5:6:7:8:9"),
    NOTHING("std::vector<int> a; Foo::Bar"),
    NOTHING("12345::1"),
    NOTHING("dead::beef"),

    GROUP(pii_ssn),
    FIND_ONLY("SSN 123-45-6789.", PII_KIND_SSN, "123-45-6789"),
    FIND_ONLY("ssn: 078 05 1120", PII_KIND_SSN, "078 05 1120"),
    NONE("000-12-3456", PII_KIND_SSN),
    NONE("666-12-3456", PII_KIND_SSN),
    NONE("900-12-3456", PII_KIND_SSN),
    NONE("999-12-3456", PII_KIND_SSN),
    NONE("123-00-4567", PII_KIND_SSN),
    NONE("123-45-0000", PII_KIND_SSN),
    NONE("123-45-67890", PII_KIND_SSN),
    NONE("1123-45-6789", PII_KIND_SSN),
    NONE("123-45 6789", PII_KIND_SSN),

    GROUP(pii_national_id_nino),
    FIND_ONLY("NI number AB 12 34 56 C.", PII_KIND_NATIONAL_ID, "AB 12 34 56 C"),
    FIND_ONLY("AB123456C", PII_KIND_NATIONAL_ID, "AB123456C"),
    NONE("DA123456C", PII_KIND_NATIONAL_ID),  /* D never first */
    NONE("AO123456C", PII_KIND_NATIONAL_ID),  /* O never second */
    NONE("GB123456C", PII_KIND_NATIONAL_ID),  /* excluded prefix */
    NONE("TN123456C", PII_KIND_NATIONAL_ID),
    NONE("AB123456E", PII_KIND_NATIONAL_ID),  /* suffix A-D only */
    NONE("AB 12 3456 C", PII_KIND_NATIONAL_ID),

    GROUP(pii_national_id_dni_nie),
    FIND_ONLY("DNI 12345678Z", PII_KIND_NATIONAL_ID, "12345678Z"),
    FIND_ONLY("DNI 12345678-Z", PII_KIND_NATIONAL_ID, "12345678-Z"),
    FIND_ONLY("NIE X1234567L", PII_KIND_NATIONAL_ID, "X1234567L"),
    FIND_ONLY("NIE Y7654321G", PII_KIND_NATIONAL_ID, "Y7654321G"),
    NONE("DNI 12345678A", PII_KIND_NATIONAL_ID),
    NONE("NIE X1234567M", PII_KIND_NATIONAL_ID),
    NONE("12345678ZZ", PII_KIND_NATIONAL_ID),

    GROUP(pii_national_id_nir),
    FIND_ONLY("NIR 1 84 12 76 451 089 46", PII_KIND_NATIONAL_ID, "1 84 12 76 451 089 46"),
    FIND_ONLY("184127645108946", PII_KIND_NATIONAL_ID, "184127645108946"),
    FIND_ONLY("2 69 02 99 341 732 85", PII_KIND_NATIONAL_ID, "2 69 02 99 341 732 85"),
    /* Corsica: 2A counts as 19 */
    FIND_ONLY("1 85 05 2A 004 012 70", PII_KIND_NATIONAL_ID, "1 85 05 2A 004 012 70"),
    NONE("1 84 12 76 451 089 47", PII_KIND_NATIONAL_ID),
    NONE("3 84 12 76 451 089 46", PII_KIND_NATIONAL_ID),
    NONE("1 84 15 76 451 089 46", PII_KIND_NATIONAL_ID),

    GROUP(pii_national_id_codice_fiscale),
    FIND_ONLY("CF: RSSMRA85T10A562S", PII_KIND_NATIONAL_ID, "RSSMRA85T10A562S"),
    FIND_ONLY("MRTMTT25D09F205Z", PII_KIND_NATIONAL_ID, "MRTMTT25D09F205Z"),
    NONE("RSSMRA85T10A562T", PII_KIND_NATIONAL_ID),  /* check char */
    NONE("RSSMRA85Z10A562S", PII_KIND_NATIONAL_ID),  /* no such month letter */
    NONE("RSSMRA85T10A562SX", PII_KIND_NATIONAL_ID),

    GROUP(pii_national_id_steuer_id),
    FIND_ONLY("Steuer-ID: 86095742719", PII_KIND_NATIONAL_ID, "86095742719"),
    FIND_ONLY("IdNr 65929970489", PII_KIND_NATIONAL_ID, "65929970489"),
    FIND_ONLY("86 095 742 719", PII_KIND_NATIONAL_ID, "86 095 742 719"),
    NONE("Steuer-ID: 86095742718", PII_KIND_NATIONAL_ID),  /* check digit */
    NONE("Steuer-ID: 12345678903", PII_KIND_NATIONAL_ID),  /* no repeated digit */
    NONE("Steuer-ID: 06095742719", PII_KIND_NATIONAL_ID),  /* leading zero */
    NONE("order 86095742719", PII_KIND_NATIONAL_ID),       /* plain digits need context */

    GROUP(pii_api_keys),
    FIND_ONLY("key sk-proj-abc123DEF456ghi789JKL012mno", PII_KIND_API_KEY,
              "sk-proj-abc123DEF456ghi789JKL012mno"),
    FIND_ONLY("sk-ant-api03-AbCdEf123456789012345678-x", PII_KIND_API_KEY,
              "sk-ant-api03-AbCdEf123456789012345678-x"),
    FIND_ONLY("aws AKIAIOSFODNN7EXAMPLE.", PII_KIND_API_KEY, "AKIAIOSFODNN7EXAMPLE"),
    FIND_ONLY("ghp_1234567890abcdefghijABCDEFGHIJ123456", PII_KIND_API_KEY,
              "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
    FIND_ONLY("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", PII_KIND_API_KEY,
              "github_pat_11ABCDEFG0123456789_abcdefghijklmnop"),
    FIND_ONLY("xoxb-1234567890-abcdefghij", PII_KIND_API_KEY, "xoxb-1234567890-abcdefghij"),
    FIND_ONLY("AIzaSyA1234567890abcdefghijklmnopqrstu", PII_KIND_API_KEY,
              "AIzaSyA1234567890abcdefghijklmnopqrstu"),
    FIND_ONLY("glpat-abcdefghij1234567890", PII_KIND_API_KEY, "glpat-abcdefghij1234567890"),
    FIND_ONLY("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123", PII_KIND_API_KEY,
              "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123"),
    FIND_ONLY("api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee1234", PII_KIND_API_KEY,
              "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee1234"),
    FIND_ONLY("{\"client_secret\": \"Zx8Qw2Lk5Mn7Pv3Rt6Yh9Bj4Cd1Fg0Ks8Lm\"}", PII_KIND_API_KEY,
              "Zx8Qw2Lk5Mn7Pv3Rt6Yh9Bj4Cd1Fg0Ks8Lm"),
    FIND_ONLY("DB_PASSWORD=hunter22", PII_KIND_API_KEY, "hunter22"),
    FIND_ONLY("password: S3cret!pw", PII_KIND_API_KEY, "S3cret!pw"),
    NOTHING("we use sk-learn and sk-abc for ML"),
    NOTHING("the key: value pairs are sorted"),
    NOTHING("password: required"),
    NOTHING("token = ${TOKEN}"),
    NOTHING("AKIA1234 is too short"),
    NOTHING("api_key=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    NOTHING("Bearer token"),

    GROUP(pii_person),
    FIND_ONLY("I met John Smith yesterday.", PII_KIND_PERSON, "John Smith"),
    FIND_ONLY("Maria Garcia Lopez called.", PII_KIND_PERSON, "Maria Garcia Lopez"),
    FIND_ONLY("from José García", PII_KIND_PERSON, "José García"),
    FIND_ONLY("Jürgen Müller wrote", PII_KIND_PERSON, "Jürgen Müller"),
    FIND_ONLY("by Søren Kierkegaard", PII_KIND_PERSON, "Søren Kierkegaard"),
    FIND_ONLY("Ask Dr. Patel about it", PII_KIND_PERSON, "Patel"),
    FIND_ONLY("Herr Schmidt kommt", PII_KIND_PERSON, "Schmidt"),
    FIND_ONLY("Mme Dupont est là", PII_KIND_PERSON, "Dupont"),
    FIND_ONLY("selon M. Lefèvre, oui", PII_KIND_PERSON, "Lefèvre"),
    FIND_ONLY("Prof. Dr. Anna Schmidt", PII_KIND_PERSON, "Anna Schmidt"),
    FIND_ONLY("Mrs O'Brien", PII_KIND_PERSON, "O'Brien"),
    FIND_ONLY("Vincent van Gogh", PII_KIND_PERSON, "Vincent van Gogh"),
    FIND_ONLY("with Anne-Marie Dubois", PII_KIND_PERSON, "Anne-Marie Dubois"),
    FIND_ONLY("President John F. Kennedy", PII_KIND_PERSON, "John F. Kennedy"),
    FIND_ONLY("ask Ronald McDonald", PII_KIND_PERSON, "Ronald McDonald"),
    FIND_ONLY("read Igor Pavlov's notes", PII_KIND_PERSON, "Igor Pavlov"),
    FIND_ONLY("Jean-Luc Picard", PII_KIND_PERSON, "Jean-Luc Picard"),
    FIND_ONLY("yesterday Will Turner came", PII_KIND_PERSON, "Will Turner"),
    /* capitalised common words and sentence-initial ambiguous names */
    NOTHING("Will Power is a book."),
    NOTHING("May I ask a question? April Showers bring flowers."),
    NOTHING("Hope Springs eternal. Mark Twain"), /* Mark at sentence start */
    NOTHING("The United States and New York"),
    NOTHING("Meet me at Victoria Station or Jordan River."),
    NOTHING("John said hello. JOHN SMITH shouts."),
    NOTHING("Dear John, Thanks John"),
    NOTHING("Mr. and Mrs. are titles"),
    NOTHING("the Frank The tank"),
    NOTHING("a Per-head LayerNorm"),
    NOTHING("L. Keep it.\nM. Delete any section"),
    NOTHING("due in May Europe wide, by April Jones"),
    NOTHING("we will Mark Grace as done"),
};
static const size_t n_detector_cases = sizeof(detector_cases) / sizeof(detector_cases[0]);

/* Checks the rows of detector_cases under GROUP(test); a group that is missing or empty fails. */
static void check_group(const char *file, int line, const char *test)
{
    for (size_t k = 0; k < n_detector_cases; k++)
        if (detector_cases[k].group && !strcmp(detector_cases[k].group, test)) {
            if (!check_cases(file, line, detector_cases + k + 1, n_detector_cases - k - 1))
                test__fail(file, line, "group %s has no rows", test);
            return;
        }
    test__fail(file, line, "no group %s in detector_cases", test);
}
#define DETECTOR_TEST(name)                                                                        \
    TEST(name)                                                                                     \
    {                                                                                              \
        check_group(__FILE__, __LINE__, #name);                                                    \
    }

DETECTOR_TEST(pii_email)
DETECTOR_TEST(pii_phone)
DETECTOR_TEST(pii_card)
DETECTOR_TEST(pii_iban)
DETECTOR_TEST(pii_ipv4)
DETECTOR_TEST(pii_ipv6)
DETECTOR_TEST(pii_ssn)
DETECTOR_TEST(pii_national_id_nino)
DETECTOR_TEST(pii_national_id_dni_nie)
DETECTOR_TEST(pii_national_id_nir)
DETECTOR_TEST(pii_national_id_codice_fiscale)
DETECTOR_TEST(pii_national_id_steuer_id)
DETECTOR_TEST(pii_api_keys)
DETECTOR_TEST(pii_person)

TEST(pii_private_key)
{
    const char *pem = "here:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x2y3z\n"
                      "abcdEFGH+/==\n-----END RSA PRIVATE KEY-----\nthanks";
    const char *want = strstr(pem, "-----BEGIN");
    size_t wl = (size_t)(strstr(pem, "\nthanks") - want);
    char value[256];
    memcpy(value, want, wl);
    value[wl] = 0;
    const struct scan_case cases[] = {
        FIND_ONLY(pem, PII_KIND_PRIVATE_KEY, value),
        FIND_ONLY("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg==\n-----END PRIVATE KEY-----",
                  PII_KIND_PRIVATE_KEY,
                  "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg==\n-----END PRIVATE KEY-----"),
        /* a truncated block still hides its body */
        FIND_ONLY("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n", PII_KIND_PRIVATE_KEY,
                  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"),
        NOTHING("-----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY-----"),
        NOTHING("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
        NOTHING("------------------------------"),
    };
    CHECK_CASES(cases);
}

TEST(pii_given_names_sorted)
{
    REQUIRE(pii__given_names_count >= 300);
    for (size_t k = 1; k < pii__given_names_count; k++)
        if (strcmp(pii__given_names[k - 1], pii__given_names[k]) >= 0)
            test__fail(__FILE__, __LINE__, "names not sorted at %zu: %s %s", k,
                       pii__given_names[k - 1], pii__given_names[k]);
    CHECK(pii__is_given_name("Maria", 5));
    CHECK(pii__is_given_name("Søren", strlen("Søren")));
    CHECK(!pii__is_given_name("Table", 5));
}

TEST(pii_overlaps)
{
    /* a phone inside an e-mail's local part: the longer e-mail wins */
    static const struct scan_case cases[] = {
        FIND_ONLY("sms to +4915112345678@sms.example.com", PII_KIND_EMAIL,
                  "4915112345678@sms.example.com"),
        /* honorific and given-name detectors agree on one span */
        FIND_ONLY("Dr. John Smith", PII_KIND_PERSON, "John Smith"),
        /* IPv4 tail of an IPv6 address is not reported separately */
        FIND_ONLY("::ffff:10.0.0.1", PII_KIND_IPV6, "::ffff:10.0.0.1"),
        /* an e-mail whose user part looks like a name */
        FIND_ONLY("John.Smith@example.com", PII_KIND_EMAIL, "John.Smith@example.com"),
        /* a key value that is also an AWS key id */
        FIND_ONLY("aws_secret_key=AKIAIOSFODNN7EXAMPLE", PII_KIND_API_KEY, "AKIAIOSFODNN7EXAMPLE"),
    };
    CHECK_CASES(cases);

    const char *t = "a@b.com 4111111111111111 192.168.0.1";
    struct pii_match m[3];
    size_t n = 0;
    CHECK_EQ_INT(pii_scan(t, strlen(t), m, 2, &n), PII_E_FULL);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(m[0].kind, PII_KIND_EMAIL);
    CHECK_EQ_INT(m[1].kind, PII_KIND_CARD);
    CHECK_EQ_INT(pii_scan(t, strlen(t), m, 3, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(pii_scan(NULL, 5, m, 3, &n), PII_E_ARG);
    CHECK_EQ_INT(pii_scan(NULL, 0, m, 3, &n), 0);
    CHECK_EQ_INT(n, 0);
}

static const char *paragraph =
    "Hello team, this is Sarah Johnson from accounts. Please wire the refund to IBAN "
    "DE89 3704 0044 0532 0130 00 and charge card 4111 1111 1111 1111 for the rest. You can "
    "reach me at sarah.johnson@example.com or +49 30 1234567; my colleague Herr Becker "
    "(030 7654321) will help. The VPN gateway is 10.20.30.40 and the IPv6 one 2001:db8::42. "
    "Our staging key is sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12 and the meeting is on 2026-11-22 at "
    "10:30, version 2.4.1, budget $12,500.00. May the numbers add up!";

TEST(pii_mixed_paragraph)
{
    struct pii_match m[MAXM];
    size_t n = 0;
    REQUIRE(pii_scan(paragraph, strlen(paragraph), m, MAXM, &n) == 0);
    static const struct {
        enum pii_kind kind;
        const char *value;
    } want[] = {
        {PII_KIND_PERSON, "Sarah Johnson"},
        {PII_KIND_IBAN, "DE89 3704 0044 0532 0130 00"},
        {PII_KIND_CARD, "4111 1111 1111 1111"},
        {PII_KIND_EMAIL, "sarah.johnson@example.com"},
        {PII_KIND_PHONE, "+49 30 1234567"},
        {PII_KIND_PERSON, "Becker"},
        {PII_KIND_PHONE, "030 7654321"},
        {PII_KIND_IPV4, "10.20.30.40"},
        {PII_KIND_IPV6, "2001:db8::42"},
        {PII_KIND_API_KEY, "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12"},
    };
    size_t nw = sizeof(want) / sizeof(want[0]);
    CHECK_EQ_INT(n, nw);
    for (size_t k = 0; k < n && k < nw; k++) {
        const char *wv = want[k].value;
        CHECK_EQ_INT(m[k].kind, want[k].kind);
        if (m[k].len != strlen(wv) || memcmp(paragraph + m[k].start, wv, m[k].len) != 0)
            test__fail(__FILE__, __LINE__, "match %zu: \"%.*s\" vs \"%s\"", k, (int)m[k].len,
                       paragraph + m[k].start, wv);
        if (k > 0)
            CHECK(m[k].start >= m[k - 1].start + m[k - 1].len);
    }
    unsigned counts[PII_KIND_COUNT];
    REQUIRE(pii_count(paragraph, strlen(paragraph), PII_MASK_ALL, counts) == 0);
    CHECK_EQ_INT(counts[PII_KIND_PERSON], 2);
    CHECK_EQ_INT(counts[PII_KIND_PHONE], 2);
    CHECK_EQ_INT(counts[PII_KIND_SSN], 0);
    REQUIRE(pii_count(paragraph, strlen(paragraph), PII_MASK(PII_KIND_EMAIL), counts) == 0);
    CHECK_EQ_INT(counts[PII_KIND_EMAIL], 1);
    CHECK_EQ_INT(counts[PII_KIND_PERSON], 0);
}

TEST(pii_pseudonymize_round_trip)
{
    struct pii_vault *v = pii_vault_new();
    REQUIRE(v);
    char *out = NULL;
    size_t out_len = 0;
    unsigned counts[PII_KIND_COUNT];
    const char *m1 = "Mail john.doe@example.com or jane@example.org; again john.doe@example.com.";
    REQUIRE(pii_vault_pseudonymize(v, m1, strlen(m1), PII_MASK_ALL, &out, &out_len, counts) == 0);
    CHECK_STR(out, "Mail [EMAIL_1] or [EMAIL_2]; again [EMAIL_1].");
    CHECK_EQ_INT(out_len, strlen(out));
    CHECK_EQ_INT(counts[PII_KIND_EMAIL], 3);
    free(out);
    /* a second message of the same request shares the numbering */
    const char *m2 = "Is jane@example.org the same as John Smith at 192.168.1.1?";
    REQUIRE(pii_vault_pseudonymize(v, m2, strlen(m2), PII_MASK_ALL, &out, &out_len, NULL) == 0);
    CHECK_STR(out, "Is [EMAIL_2] the same as [PERSON_1] at [IPV4_1]?");
    free(out);
    CHECK_EQ_INT(pii_vault_size(v), 4);
    /* the mask limits what is replaced */
    REQUIRE(pii_vault_pseudonymize(v, m2, strlen(m2), PII_MASK(PII_KIND_IPV4), &out, &out_len,
                                   counts) == 0);
    CHECK_STR(out, "Is jane@example.org the same as John Smith at [IPV4_1]?");
    CHECK_EQ_INT(counts[PII_KIND_EMAIL], 0);
    CHECK_EQ_INT(counts[PII_KIND_IPV4], 1);
    free(out);

    size_t vl = 0;
    const char *val = pii_vault_lookup(v, "[PERSON_1]", 10, &vl);
    REQUIRE(val);
    CHECK_EQ_INT(vl, 10);
    CHECK(memcmp(val, "John Smith", 10) == 0);
    CHECK(pii_vault_lookup(v, "[PERSON_2]", 10, &vl) == NULL);
    CHECK(pii_vault_lookup(v, "[PERSON_01]", 11, &vl) == NULL);
    CHECK(pii_vault_lookup(v, "[FOO_1]", 7, &vl) == NULL);

    /* restore a whole answer at once */
    struct pii_restorer *r = pii_restore_new(v);
    REQUIRE(r);
    const char *answer = "Sure, [PERSON_1] ([EMAIL_1]) is not [EMAIL_2]; [EMAIL_9] and [SSN_1] "
                         "are unknown, [link](x) and a[1] stay.";
    const char *restored = "Sure, John Smith (john.doe@example.com) is not jane@example.org; "
                           "[EMAIL_9] and [SSN_1] are unknown, [link](x) and a[1] stay.";
    const char *o;
    size_t ol;
    char whole[512] = {0};
    REQUIRE(pii_restore_feed(r, answer, strlen(answer), &o, &ol) == 0);
    memcpy(whole, o, ol);
    size_t wl = ol;
    REQUIRE(pii_restore_flush(r, &o, &ol) == 0);
    memcpy(whole + wl, o, ol);
    CHECK_STR(whole, restored);
    pii_restore_free(r);
    pii_vault_free(v);
    pii_vault_free(NULL);
    pii_restore_free(NULL);
    CHECK(pii_restore_new(NULL) == NULL);
}

/* Feeds answer in the given chunks and checks the concatenated output. */
static bool restore_chunks(struct pii_vault *v, const char *answer, const size_t *cuts,
                           size_t ncuts, const char *want)
{
    struct pii_restorer *r = pii_restore_new(v);
    if (!r)
        return false;
    char got[1024];
    size_t gl = 0, prev = 0, len = strlen(answer);
    const char *o;
    size_t ol;
    bool ok = true;
    for (size_t k = 0; k <= ncuts && ok; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (pii_restore_feed(r, answer + prev, end - prev, &o, &ol) != 0 ||
            gl + ol >= sizeof(got) || ol > (end - prev) + 64 + 40)
            ok = false;
        else {
            memcpy(got + gl, o, ol);
            gl += ol;
        }
        prev = end;
    }
    if (ok && pii_restore_flush(r, &o, &ol) == 0 && gl + ol < sizeof(got)) {
        memcpy(got + gl, o, ol);
        gl += ol;
        got[gl] = 0;
        ok = strcmp(got, want) == 0;
    } else {
        ok = false;
    }
    pii_restore_free(r);
    return ok;
}

TEST(pii_restore_every_split)
{
    struct pii_vault *v = pii_vault_new();
    REQUIRE(v);
    const char *msg = "From Anna Schmidt <anna@example.de>, card 4111 1111 1111 1111, "
                      "call +33 6 12 34 56 78, key sk-ant-api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2 "
                      "from 10.1.2.3";
    char *out;
    size_t out_len;
    REQUIRE(pii_vault_pseudonymize(v, msg, strlen(msg), PII_MASK_ALL, &out, &out_len, NULL) == 0);
    CHECK_STR(out, "From [PERSON_1] <[EMAIL_1]>, card [CARD_1], call [PHONE_1], key [API_KEY_1] "
                   "from [IPV4_1]");
    free(out);
    const char *answer = "[[PERSON_1]] wrote from [EMAIL_1][EMAIL_1]; [CARD_1] [ [PHONE_1 "
                         "[PHONE_1] [API_KEY_1] [API_KEY_2] [IPV4_1][IPV4_0] [PERSON_1";
    const char *want = "[Anna Schmidt] wrote from anna@example.deanna@example.de; "
                       "4111 1111 1111 1111 [ [PHONE_1 +33 6 12 34 56 78 "
                       "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2 [API_KEY_2] 10.1.2.3[IPV4_0] [PERSON_1";
    size_t len = strlen(answer);
    CHECK(restore_chunks(v, answer, NULL, 0, want));
    /* every 2-way split */
    for (size_t c = 0; c <= len; c++)
        if (!restore_chunks(v, answer, &c, 1, want))
            test__fail(__FILE__, __LINE__, "split at %zu differs", c);
    /* byte by byte, and every 3-way split */
    size_t cuts[256];
    REQUIRE(len < 256);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    CHECK(restore_chunks(v, answer, cuts, len - 1, want));
    int bad = 0;
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            size_t two[2] = {a, b};
            bad += !restore_chunks(v, answer, two, 2, want);
        }
    CHECK_EQ_INT(bad, 0);
    pii_vault_free(v);
}

TEST(pii_restore_holdback_bounded)
{
    struct pii_vault *v = pii_vault_new();
    REQUIRE(v);
    struct pii_restorer *r = pii_restore_new(v);
    REQUIRE(r);
    const char *o;
    size_t ol;
    /* a long bracketed upper-case run is released once it cannot be a placeholder */
    char chunk[200];
    chunk[0] = '[';
    memset(chunk + 1, 'A', sizeof(chunk) - 1);
    REQUIRE(pii_restore_feed(r, chunk, sizeof(chunk), &o, &ol) == 0);
    CHECK(ol >= sizeof(chunk) - PII_PLACEHOLDER_MAX);
    REQUIRE(pii_restore_feed(r, "[EMA", 4, &o, &ol) == 0);
    size_t held_total = ol;
    REQUIRE(pii_restore_flush(r, &o, &ol) == 0);
    CHECK(ol <= PII_PLACEHOLDER_MAX);
    CHECK(ol >= 4);
    (void)held_total;
    /* after a flush the restorer starts fresh */
    REQUIRE(pii_restore_feed(r, "plain", 5, &o, &ol) == 0);
    CHECK_EQ_INT(ol, 5);
    pii_restore_free(r);
    pii_vault_free(v);
}

/* Deterministic pseudo-random numbers (xorshift). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "was", "for", "that", "with", "as", "on", "by", "it",
    "from", "at", "this", "are", "be", "which", "or", "an", "have", "not", "has", "but", "had",
    "they", "his", "her", "their", "one", "all", "were", "we", "when", "there", "can", "more",
    "time", "some", "new", "people", "year", "system", "market", "report", "model", "data",
    "government", "company", "between", "during", "without", "under", "against", "number",
    "world", "city", "water", "history", "research", "policy", "language", "network", "energy",
    "school", "family", "music", "science", "process", "result", "service", "table", "value",
    "version", "release", "2026", "12", "3.5", "100", "1990s", "May", "April", "Will", "Monday",
    "London", "Europe", "Paris", "English", "Python", "Linux", "Mark", "Grace", "Jack", "Hope",
    "The", "Chapter", "Section", "Figure", "Table", "New", "York", "United", "States", "$25",
    "10:30", "e.g.", "i.e.", "v1.2.3", "(see", "below)", "well-known", "state-of-the-art",
};

/* About n bytes of English-like prose with punctuation, numbers and capitalised words. */
static char *prose(size_t n)
{
    char *t = malloc(n + 64);
    if (!t)
        return NULL;
    size_t p = 0;
    bool start = true;
    while (p < n) {
        const char *w = words[rng() % (sizeof(words) / sizeof(words[0]))];
        size_t wl = strlen(w);
        memcpy(t + p, w, wl);
        if (start && w[0] >= 'a' && w[0] <= 'z')
            t[p] = (char)(w[0] - 32);
        p += wl;
        start = false;
        uint64_t x = rng() % 16;
        if (x == 0) {
            memcpy(t + p, ". ", 2);
            p += 2;
            start = true;
        } else if (x == 1) {
            memcpy(t + p, ", ", 2);
            p += 2;
        } else if (x == 2) {
            memcpy(t + p, ".\n", 2);
            p += 2;
            start = true;
        } else {
            t[p++] = ' ';
        }
    }
    t[n] = 0;
    return t;
}

TEST(pii_speed_1mb)
{
    size_t n = (size_t)1 << 20;
    char *t = prose(n);
    REQUIRE(t);
    unsigned counts[PII_KIND_COUNT];
    struct timespec a, b;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        REQUIRE(pii_count(t, n, PII_MASK_ALL, counts) == 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best)
            best = ms;
    }
    unsigned total = 0;
    for (int k = 0; k < PII_KIND_COUNT; k++)
        total += counts[k];
    printf("pii: scanned 1 MiB of prose in %.2f ms (%.0f MB/s), %u matches\n", best,
           1.048576 / (best / 1e3), total);
    CHECK(best < 1000.0); /* the goal is < 200 ms; generous for sanitizer builds */
    CHECK(total <= 5);
    if (total > 5) {
        struct pii_match m[8];
        size_t got = 0;
        pii_scan(t, n, m, 8, &got);
        for (size_t k = 0; k < got; k++)
            printf("  %s \"%.*s\"\n", pii_kind_name(m[k].kind), (int)m[k].len, t + m[k].start);
    }

    /* pseudonymising the same text changes (almost) nothing */
    struct pii_vault *v = pii_vault_new();
    char *out;
    size_t out_len;
    REQUIRE(pii_vault_pseudonymize(v, t, n, PII_MASK_ALL, &out, &out_len, NULL) == 0);
    CHECK(out_len + 64 * total >= n);
    free(out);
    pii_vault_free(v);
    free(t);
}

TEST(pii_random_bytes)
{
    static const char alphabet[] = "0123456789    ..--::@@[]()+/_ABCDEFXYZabcdefkxyz=\n\"'Ée";
    char buf[2048];
    struct pii_match m[32];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(rng() % sizeof(buf));
        bool bytes = iter % 2;
        for (size_t k = 0; k < n; k++)
            buf[k] = bytes ? (char)rng() : alphabet[rng() % (sizeof(alphabet) - 1)];
        size_t got = 0;
        int rc = pii_scan(buf, n, m, 32, &got);
        CHECK(rc == 0 || rc == PII_E_FULL);
        for (size_t k = 0; k < got; k++) {
            CHECK(m[k].start + m[k].len <= n);
            CHECK(m[k].len > 0);
            if (k)
                CHECK(m[k].start >= m[k - 1].start + m[k - 1].len);
        }
        if (iter % 10 == 0) {
            struct pii_vault *v = pii_vault_new();
            char *out;
            size_t ol;
            REQUIRE(pii_vault_pseudonymize(v, buf, n, PII_MASK_ALL, &out, &ol, NULL) == 0);
            struct pii_restorer *r = pii_restore_new(v);
            const char *o;
            size_t l1, l2;
            char *back = malloc(n + 1);
            REQUIRE(back);
            size_t bl = 0, at = 0;
            bool ok = true;
            while (at < ol && ok) {
                size_t step = 1 + (size_t)(rng() % 17);
                if (step > ol - at)
                    step = ol - at;
                ok = pii_restore_feed(r, out + at, step, &o, &l1) == 0 && bl + l1 <= n;
                if (ok) {
                    memcpy(back + bl, o, l1);
                    bl += l1;
                }
                at += step;
            }
            ok = ok && pii_restore_flush(r, &o, &l2) == 0 && bl + l2 <= n;
            if (ok) {
                memcpy(back + bl, o, l2);
                bl += l2;
            }
            /* restoring a pseudonymised text gives the original back, unless the original
             * contained something that looks like one of the vault's placeholders */
            if (!memchr(buf, '[', n))
                CHECK(ok && bl == n && memcmp(back, buf, n) == 0);
            free(back);
            free(out);
            pii_restore_free(r);
            pii_vault_free(v);
        }
    }
}

TEST(pii_vault_many_values)
{
    struct pii_vault *v = pii_vault_new();
    REQUIRE(v);
    size_t cap = 3000 * 40;
    char *text = malloc(cap);
    REQUIRE(text);
    size_t n = 0;
    for (int k = 0; k < 3000; k++)
        n += (size_t)snprintf(text + n, cap - n, "user%d@example.com, ", k % 1500);
    char *out;
    size_t out_len;
    unsigned counts[PII_KIND_COUNT];
    REQUIRE(pii_vault_pseudonymize(v, text, n, PII_MASK_ALL, &out, &out_len, counts) == 0);
    CHECK_EQ_INT(counts[PII_KIND_EMAIL], 3000);
    CHECK_EQ_INT(pii_vault_size(v), 1500);
    CHECK(strstr(out, "[EMAIL_1500], [EMAIL_1], ") != NULL);
    size_t vl;
    const char *val = pii_vault_lookup(v, "[EMAIL_1500]", 12, &vl);
    REQUIRE(val);
    CHECK(vl == strlen("user1499@example.com") && memcmp(val, "user1499@example.com", vl) == 0);
    free(out);
    free(text);
    pii_vault_free(v);
}
