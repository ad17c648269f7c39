/* A tiny test registry: TEST(name) bodies run in their own process by tests/test_main.c. */
#ifndef TANDEM_TEST_H
#define TANDEM_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
void test__register(const char *name, const char *file, test_fn fn);
/* Record a failure of the running test (the test goes on; it fails at the end). */
void test__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Path of a file under ../shared (e.g. "fixtures/models/llama-F32.gguf"), from TANDEM_SHARED
 * or the default "../shared". Static buffer per call site is not needed: returns a malloc'd
 * string the test may leak. */
char *test_shared_path(const char *rel);
/* A fresh temporary directory for this test (removed by the runner afterwards). */
const char *test_tmpdir(void);

#define TEST(name)                                                                  \
    static void test_##name(void);                                                  \
    __attribute__((constructor)) static void test_reg_##name(void)                  \
    {                                                                               \
        test__register(#name, __FILE__, test_##name);                               \
    }                                                                               \
    static void test_##name(void)

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond))                                                                \
            test__fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                     \
    } while (0)

/* Like CHECK but stops the test. */
#define REQUIRE(cond)                                                               \
    do {                                                                            \
        if (!(cond)) {                                                              \
            test__fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                   \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                         \
        if (a_ != b_)                                                               \
            test__fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, a_, b_); \
    } while (0)

#define CHECK_STR(a, b)                                                             \
    do {                                                                            \
        const char *a_ = (a), *b_ = (b);                                            \
        if (!a_ || !b_ || strcmp(a_, b_))                                           \
            test__fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b,   \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                       \
    do {                                                                            \
        double a_ = (double)(a), b_ = (double)(b);                                  \
        if (!(fabs(a_ - b_) <= (tol)))                                              \
            test__fail(__FILE__, __LINE__, "%s ~ %s (%.9g vs %.9g, tol %g)", #a, #b, \
                       a_, b_, (double)(tol));                                      \
    } while (0)

#endif
