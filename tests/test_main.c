/* Test runner: runs each registered test in a forked child, prints one line per test. */
#include "test.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 4096

struct test_case {
    const char *name;
    const char *file;
    test_fn fn;
};

static struct test_case tests[MAX_TESTS];
static int n_tests;
static int n_failures_in_child;
static char tmpdir[256];

void test__register(const char *name, const char *file, test_fn fn)
{
    if (n_tests < MAX_TESTS)
        tests[n_tests++] = (struct test_case){name, file, fn};
}

void test__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    n_failures_in_child++;
}

char *test_shared_path(const char *rel)
{
    const char *root = getenv("TANDEM_SHARED");
    if (!root)
        root = "../shared";
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", root, rel);
    return p;
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/tandem-test-XXXXXX");
        if (!mkdtemp(tmpdir))
            tmpdir[0] = 0;
    }
    return tmpdir;
}

static int cmp_case(const void *a, const void *b)
{
    const struct test_case *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Usage: unit [PATTERN...]  (shell glob on test names; default all). Set TEST_NOFORK=1 to run
 * in-process (for a debugger). */
int main(int argc, char **argv)
{
    qsort(tests, n_tests, sizeof(tests[0]), cmp_case);
    int passed = 0, failed = 0;
    const int nofork = getenv("TEST_NOFORK") != NULL;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1) {
            int match = 0;
            for (int a = 1; a < argc && !match; a++)
                match = fnmatch(argv[a], tests[i].name, 0) == 0;
            if (!match)
                continue;
        }
        double t0 = now();
        int ok;
        if (nofork) {
            n_failures_in_child = 0;
            tests[i].fn();
            ok = n_failures_in_child == 0;
        } else {
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) {
                n_failures_in_child = 0;
                tests[i].fn();
                if (tmpdir[0]) {
                    char cmd[300];
                    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                    if (system(cmd) != 0)
                        fprintf(stderr, "    could not remove %s\n", tmpdir);
                }
                fflush(stdout);
                fflush(stderr);
                _exit(n_failures_in_child ? 1 : 0);
            }
            int status = 0;
            if (pid < 0 || waitpid(pid, &status, 0) < 0) {
                ok = 0;
            } else if (WIFSIGNALED(status)) {
                fprintf(stderr, "    crashed with signal %d\n", WTERMSIG(status));
                ok = 0;
            } else {
                ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            }
        }
        printf("%s %s (%.2fs)\n", ok ? "ok  " : "FAIL", tests[i].name, now() - t0);
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
