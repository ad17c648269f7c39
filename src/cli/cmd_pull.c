/* tandem pull: download a GGUF model into the cache, resumable, checksummed and validated. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/model_cache.h"
#include "engine/gguf.h"

#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_BYTES 1024L /* abort when slower than this ... */
#define LOW_SPEED_TIME_S 60L  /* ... for this many seconds */
#define MAX_REDIRECTS 10L
#define CURL_BUFFER (256L * 1024)
#define HASH_CHUNK (1u << 20)
#define TTY_INTERVAL_S 0.1 /* progress bar redraws at most 10 times a second */
#define BAR_WIDTH 24

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Why the body callback stopped the transfer. */
enum pull_fail {
    PULL_FAIL_NONE = 0,
    PULL_FAIL_STATUS, /* HTTP status >= 400 */
    PULL_FAIL_IO,     /* writing the .part failed (errno in fail_errno) */
    PULL_FAIL_MAGIC,  /* the content is not GGUF */
    PULL_FAIL_RANGE,  /* 206 for a different range than asked */
    PULL_FAIL_SPACE,  /* not enough disk space for the rest */
};

struct pull {
    /* what and where */
    char url[MODEL_CACHE_URL_MAX]; /* resolved download URL */
    const char *user_url;          /* as given, for the resume hint */
    const char *name_opt;          /* --name, or NULL */
    bool is_hf;
    char name[MODEL_CACHE_NAME_MAX + 1];
    char dir[MODEL_CACHE_PATH_MAX];
    char final_path[MODEL_CACHE_PATH_MAX];
    char part_path[MODEL_CACHE_PATH_MAX];
    char info_path[MODEL_CACHE_PATH_MAX];
    char sha_path[MODEL_CACHE_PATH_MAX];
    char want[65]; /* expected sha256, "" when not given */
    bool quiet, tty;
    char resume_cmd[MODEL_CACHE_URL_MAX + 200];

    /* the .part and its running hash */
    int fd;
    EVP_MD_CTX *md;
    uint64_t have;    /* bytes in the .part when the transfer started */
    uint64_t written; /* bytes in the .part now */
    uint64_t total;   /* expected final size; 0 = unknown */
    unsigned char magic[4];
    size_t magic_len;

    /* the response */
    CURL *curl;
    bool body_started;
    long status;
    bool cr_seen;  /* Content-Range of the latest response */
    bool cr_unsat; /* "bytes * /T" form (416) */
    uint64_t cr_start, cr_total;
    char etag[256];     /* strong ETag of the latest response, "" if none */
    char if_range[256]; /* ETag the .part was downloaded under, "" if unknown */
    enum pull_fail fail;
    int fail_errno;

    /* progress */
    double t_start, t_last;
    int last_decile;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem pull URL [--sha256 HEX] [--name FILE] [--quiet]\n"
            "  Downloads a GGUF model into $TANDEM_HOME/models (default ~/.cache/tandem/models).\n"
            "  URL: http(s)://... or hf://OWNER/REPO[@REVISION]/PATH/FILE.gguf (Hugging Face;\n"
            "       endpoint from $TANDEM_HF_ENDPOINT, token from $HF_TOKEN).\n"
            "  --sha256 HEX  expected SHA-256; a mismatch deletes the download\n"
            "  --name FILE   file name in the cache (default: the URL's last segment)\n"
            "  --quiet       print nothing but errors\n"
            "  An interrupted download resumes when the same command is run again.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(buf, cap, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- progress ---- */

static void format_eta(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 99 * 3600.0) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Redraws the bar (TTY) or prints a line per 10% (otherwise); `done` ends the display. */
static void progress(struct pull *p, bool done)
{
    if (p->quiet || !p->body_started)
        return;
    const double now = now_s(), dt = now - p->t_start;
    if (p->tty && !done && now - p->t_last < TTY_INTERVAL_S)
        return;
    p->t_last = now;
    const uint64_t got = p->written - p->have;
    const double rate = dt > 0 ? (double)got / dt : 0;
    char cur[32], tot[32], spd[32], eta[32];
    model_cache_format_size(p->written, cur, sizeof(cur));
    model_cache_format_size(p->total, tot, sizeof(tot));
    model_cache_format_size((uint64_t)rate, spd, sizeof(spd));
    if (p->tty) {
        if (p->total) {
            const double frac = p->written >= p->total ? 1.0 : (double)p->written / p->total;
            char bar[BAR_WIDTH + 1];
            int fill = (int)(frac * BAR_WIDTH);
            for (int i = 0; i < BAR_WIDTH; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[BAR_WIDTH] = 0;
            format_eta(rate > 0 ? (double)(p->total - p->written) / rate : -1, eta, sizeof(eta));
            fprintf(stderr, "\r%3d%% [%s] %s / %s  %s/s  ETA %s\033[K", (int)(frac * 100), bar, cur,
                    tot, spd, done ? "0:00" : eta);
        } else {
            fprintf(stderr, "\r%s  %s/s\033[K", cur, spd);
        }
        if (done)
            fputc('\n', stderr);
    } else if (p->total) {
        int decile = p->written >= p->total ? 10 : (int)(p->written * 10 / p->total);
        if (decile > p->last_decile) {
            p->last_decile = decile;
            fprintf(stderr, "%3d%%  %s / %s  %s/s\n", decile * 10, cur, tot, spd);
        }
    } else if (done) {
        fprintf(stderr, "%s downloaded  %s/s\n", cur, spd);
    }
    fflush(stderr);
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    progress(ud, false);
    return interrupted ? 1 : 0;
}

/* ---- response ---- */

/* Parses "bytes A-B/T" or "bytes * /T" (without the space). */
static void parse_content_range(struct pull *p, const char *v, size_t n)
{
    char buf[128];
    if (n >= sizeof(buf))
        return;
    memcpy(buf, v, n);
    buf[n] = 0;
    unsigned long long a, b, t;
    char star;
    if (sscanf(buf, " bytes %llu-%llu/%llu", &a, &b, &t) == 3 && a <= b && b < t) {
        p->cr_seen = true;
        p->cr_start = a;
        p->cr_total = t;
    } else if (sscanf(buf, " bytes %c/%llu", &star, &t) == 2 && star == '*') {
        p->cr_seen = p->cr_unsat = true;
        p->cr_total = t;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct pull *p = ud;
    const size_t n = size * nitems;
    if (n >= 5 && !memcmp(buf, "HTTP/", 5)) {
        /* A new response (after a redirect or 100-continue): forget the previous one's. */
        p->cr_seen = p->cr_unsat = false;
        p->cr_start = p->cr_total = 0;
        p->etag[0] = 0;
    } else if (n > 5 && !strncasecmp(buf, "ETag:", 5)) {
        /* Strong validators only: If-Range does not accept weak ones. */
        size_t a = 5, b = n;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t'))
            a++;
        while (b > a && (buf[b - 1] == '\r' || buf[b - 1] == '\n' || buf[b - 1] == ' '))
            b--;
        bool ok = b - a >= 2 && b - a < sizeof(p->etag) && buf[a] == '"' && buf[b - 1] == '"';
        for (size_t i = a; ok && i < b; i++)
            ok = (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f;
        if (ok) {
            memcpy(p->etag, buf + a, b - a);
            p->etag[b - a] = 0;
        }
    } else if (n > 14 && !strncasecmp(buf, "Content-Range:", 14)) {
        parse_content_range(p, buf + 14, n - 14);
    }
    return n;
}

static int reset_part(struct pull *p)
{
    if (ftruncate(p->fd, 0) || lseek(p->fd, 0, SEEK_SET) != 0 ||
        !EVP_DigestInit_ex(p->md, EVP_sha256(), NULL))
        return -1;
    p->have = p->written = 0;
    p->magic_len = 0;
    return 0;
}

/* Called with the first byte of the body: decides between appending and restarting. */
static int begin_body(struct pull *p)
{
    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &p->status);
    if (p->status >= 400) {
        p->fail = PULL_FAIL_STATUS;
        return -1;
    }
    if (p->status == 206) {
        if (!p->cr_seen || p->cr_unsat || p->cr_start != p->have) {
            p->fail = PULL_FAIL_RANGE;
            return -1;
        }
        p->total = p->cr_total;
    } else {
        if (p->have) {
            if (!p->quiet)
                fprintf(stderr, "%s; starting over\n",
                        p->if_range[0] ? "the file changed on the server (or the server cannot "
                                         "resume)"
                                       : "the server cannot resume");
            if (reset_part(p)) {
                p->fail = PULL_FAIL_IO;
                p->fail_errno = errno;
                return -1;
            }
        }
        curl_off_t len = -1;
        if (curl_easy_getinfo(p->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
            len > 0)
            p->total = (uint64_t)len;
    }
    struct statvfs vfs;
    if (p->total > p->have && fstatvfs(p->fd, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < p->total - p->have) {
        p->fail = PULL_FAIL_SPACE;
        return -1;
    }
    struct model_cache_part_info info = {.total = p->total};
    snprintf(info.url, sizeof(info.url), "%s", p->url);
    snprintf(info.etag, sizeof(info.etag), "%s", p->etag);
    model_cache_part_info_write(p->info_path, &info); /* only informs `tandem models` */
    p->body_started = true;
    p->t_start = p->t_last = now_s();
    p->last_decile = p->total ? (int)(p->have * 10 / p->total) : 0;
    return 0;
}

/* Keeps the first four bytes of the file: they must be the GGUF magic. */
static void note_magic(struct pull *p, const unsigned char *data, size_t n)
{
    for (size_t i = 0; p->magic_len < 4 && i < n; i++)
        p->magic[p->magic_len++] = data[i];
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct pull *p = ud;
    const size_t n = size * nmemb;
    if (interrupted)
        return 0;
    if (!p->body_started && begin_body(p))
        return 0;
    note_magic(p, (const unsigned char *)data, n);
    if (p->magic_len == 4 && memcmp(p->magic, "GGUF", 4)) {
        p->fail = PULL_FAIL_MAGIC;
        return 0;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(p->fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            p->fail = PULL_FAIL_IO;
            p->fail_errno = w < 0 ? errno : EIO;
            return 0;
        }
        done += (size_t)w;
    }
    if (!EVP_DigestUpdate(p->md, data, n)) {
        p->fail = PULL_FAIL_IO;
        p->fail_errno = ENOMEM;
        return 0;
    }
    p->written += n;
    return n;
}

/* ---- steps ---- */

/* Hashes what the .part already holds and positions the file at its end. */
static void part_chunk_seen(void *arg, const unsigned char *data, size_t n)
{
    struct pull *p = arg;
    note_magic(p, data, n);
    p->written += n;
}

static int hash_existing_part(struct pull *p)
{
    unsigned char *buf = malloc(HASH_CHUNK);
    int rc = -1;
    if (!buf || !EVP_DigestInit_ex(p->md, EVP_sha256(), NULL))
        goto out;
    p->have = p->written = 0;
    p->magic_len = 0;
    if (lseek(p->fd, 0, SEEK_SET) != 0 ||
        model_cache_digest_fd(p->md, p->fd, buf, HASH_CHUNK, &interrupted, part_chunk_seen, p))
        goto out;
    p->have = p->written;
    rc = 0;
out:
    free(buf);
    return rc;
}

static void remove_partial(struct pull *p)
{
    unlink(p->part_path);
    unlink(p->info_path);
}

static void print_resume_hint(struct pull *p)
{
    char got[32];
    model_cache_format_size(p->written, got, sizeof(got));
    fprintf(stderr, "tandem pull: %s kept in %s; to resume, run again:\n  %s\n", got, p->part_path,
            p->resume_cmd);
}

/* The final file exists: "already present" when it matches (or nothing is pinned). */
static int check_existing(struct pull *p)
{
    char have[65];
    if (p->want[0] || model_cache_sha256_read(p->sha_path, have)) {
        if (model_cache_sha256_file(p->final_path, have)) {
            fprintf(stderr, "tandem pull: %s: %s\n", p->final_path, strerror(errno));
            return 1;
        }
        if (p->want[0] && strcmp(have, p->want)) {
            fprintf(stderr,
                    "tandem pull: %s already exists with a different checksum\n"
                    "  expected sha256 %s\n  actual   sha256 %s\n"
                    "  delete it, or pull under another --name\n",
                    p->final_path, p->want, have);
            return 1;
        }
        model_cache_sha256_write(p->sha_path, have, p->name);
    }
    if (!p->quiet)
        printf("already present: %s\nsha256 %s\n", p->final_path, have);
    return 0;
}

/* Checks the finished .part (checksum, GGUF) and moves it into place. */
static int finish(struct pull *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char hex[65], err[512];
    if (fsync(p->fd)) {
        fprintf(stderr, "tandem pull: %s: %s\n", p->part_path, strerror(errno));
        return 1;
    }
    if (!EVP_DigestFinal_ex(p->md, md, &md_len) || md_len != 32) {
        fprintf(stderr, "tandem pull: SHA-256 failed\n");
        return 1;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (p->want[0] && strcmp(hex, p->want)) {
        remove_partial(p);
        fprintf(stderr,
                "tandem pull: %s: checksum mismatch, download deleted\n"
                "  expected sha256 %s\n  actual   sha256 %s\n",
                p->url, p->want, hex);
        return 1;
    }
    struct gguf *g = NULL;
    if (p->written < 4 || memcmp(p->magic, "GGUF", 4)) {
        remove_partial(p);
        fprintf(stderr, "tandem pull: %s: not a GGUF file (no GGUF magic); nothing kept\n", p->url);
        return 1;
    }
    if (gguf_open(&g, p->part_path, err, sizeof(err))) {
        remove_partial(p);
        fprintf(stderr, "tandem pull: %s: not a valid GGUF file; nothing kept\n  %s\n", p->url,
                err);
        return 1;
    }
    gguf_close(g);
    if (model_cache_sha256_write(p->sha_path, hex, p->name)) {
        fprintf(stderr, "tandem pull: %s: %s\n", p->sha_path, strerror(errno));
        return 1;
    }
    if (rename(p->part_path, p->final_path)) {
        fprintf(stderr, "tandem pull: rename %s -> %s: %s\n", p->part_path, p->final_path,
                strerror(errno));
        unlink(p->sha_path);
        return 1;
    }
    unlink(p->info_path);
    if (!p->quiet) {
        char sz[32];
        model_cache_format_size(p->written, sz, sizeof(sz));
        printf("saved %s (%s)\n", p->final_path, sz);
        if (p->want[0])
            printf("sha256 %s (verified)\n", hex);
        else
            printf("sha256 %s\n  pin it: tandem pull %s%s%s --sha256 %s\n", hex, p->user_url,
                   p->name_opt ? " --name " : "", p->name_opt ? p->name_opt : "", hex);
    }
    return 0;
}

static int setup_curl(struct pull *p, char *errbuf, const char *token)
{
    CURL *c = p->curl;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, p->url);
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    bad |= curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(c, CURLOPT_BUFFERSIZE, CURL_BUFFER);
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "tandem-pull/1");
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, p);
    bad |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    bad |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    bad |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    if (token && *token && p->is_hf) {
        /* libcurl sends these credentials to the original host only, not across redirects
         * (the Hub redirects downloads to a CDN). */
        bad |= curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        bad |= curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, token);
    }
    return bad ? -1 : 0;
}

/* One transfer attempt. Returns 0 when the .part is complete, 1 on a reported error, 2 when
 * it should be retried from zero. */
static int transfer(struct pull *p, const char *token)
{
    char errbuf[CURL_ERROR_SIZE] = "", range[48], if_range[300];
    struct curl_slist *headers = NULL;
    p->body_started = false;
    p->status = 0;
    p->fail = PULL_FAIL_NONE;
    p->total = 0;
    curl_easy_reset(p->curl);
    if (setup_curl(p, errbuf, token)) {
        fprintf(stderr, "tandem pull: libcurl lacks a required option (HTTP, TLS)\n");
        return 1;
    }
    if (p->have) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", p->have);
        curl_easy_setopt(p->curl, CURLOPT_RANGE, range);
        /* If the file changed on the server since, it answers 200 with the new one. */
        if (p->if_range[0] &&
            snprintf(if_range, sizeof(if_range), "If-Range: %s", p->if_range) <
                (int)sizeof(if_range) &&
            (headers = curl_slist_append(NULL, if_range)))
            curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, headers);
        if (!p->quiet) {
            char sz[32];
            model_cache_format_size(p->have, sz, sizeof(sz));
            fprintf(stderr, "resuming %s at %s\n", p->url, sz);
        }
    } else if (!p->quiet) {
        fprintf(stderr, "downloading %s\n", p->url);
    }
    CURLcode res = curl_easy_perform(p->curl);
    curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    progress(p, true);
    if (!p->status)
        curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &p->status);

    if (interrupted) {
        fprintf(stderr, "tandem pull: interrupted\n");
        if (p->written)
            print_resume_hint(p);
        else
            remove_partial(p);
        return 1;
    }
    switch (p->fail) {
    case PULL_FAIL_NONE:
        break;
    case PULL_FAIL_STATUS:
        break; /* reported below */
    case PULL_FAIL_IO:
        fprintf(stderr, "tandem pull: writing %s: %s\n", p->part_path, strerror(p->fail_errno));
        if (p->written)
            print_resume_hint(p);
        return 1;
    case PULL_FAIL_MAGIC:
        remove_partial(p);
        fprintf(stderr,
                "tandem pull: %s: the server did not send a GGUF file (it starts with "
                "\"%c%c%c%c\"); nothing kept\n",
                p->url, p->magic[0] >= 0x20 && p->magic[0] < 0x7f ? p->magic[0] : '?',
                p->magic[1] >= 0x20 && p->magic[1] < 0x7f ? p->magic[1] : '?',
                p->magic[2] >= 0x20 && p->magic[2] < 0x7f ? p->magic[2] : '?',
                p->magic[3] >= 0x20 && p->magic[3] < 0x7f ? p->magic[3] : '?');
        return 1;
    case PULL_FAIL_RANGE:
        if (!p->quiet)
            fprintf(stderr, "server answered a different range; starting over\n");
        return 2;
    case PULL_FAIL_SPACE: {
        char need[32];
        model_cache_format_size(p->total - p->have, need, sizeof(need));
        fprintf(stderr, "tandem pull: not enough disk space in %s for %s more\n", p->dir, need);
        if (p->written)
            print_resume_hint(p);
        return 1;
    }
    }
    if (p->status == 416 && p->have) {
        /* Nothing left to send: the .part is already whole if the sizes agree. */
        if (p->cr_seen && p->cr_unsat && p->cr_total == p->have) {
            p->total = p->have;
            return 0;
        }
        if (!p->quiet)
            fprintf(stderr, "server rejected the resume offset; starting over\n");
        return 2;
    }
    if (p->status >= 400) {
        fprintf(stderr, "tandem pull: %s: HTTP %ld%s\n", p->url, p->status,
                p->status == 401 || p->status == 403
                    ? (p->is_hf ? " (gated or private repository? set HF_TOKEN)" : " (forbidden)")
                : p->status == 404 ? " (not found)"
                                   : "");
        if (!p->written)
            remove_partial(p);
        return 1;
    }
    if (res != CURLE_OK) {
        fprintf(stderr, "tandem pull: %s: %s\n", p->url,
                errbuf[0] ? errbuf : curl_easy_strerror(res));
        if (p->written)
            print_resume_hint(p);
        else
            remove_partial(p);
        return 1;
    }
    if (!p->body_started && !p->have) {
        remove_partial(p);
        fprintf(stderr, "tandem pull: %s: empty response (HTTP %ld)\n", p->url, p->status);
        return 1;
    }
    if (p->total && p->written != p->total) {
        fprintf(stderr, "tandem pull: %s: transfer ended at %" PRIu64 " of %" PRIu64 " bytes\n",
                p->url, p->written, p->total);
        print_resume_hint(p);
        return 1;
    }
    return 0;
}

/* Opens (or creates) the .part, locks it against a concurrent pull and hashes its contents. */
static int open_part(struct pull *p)
{
    p->fd = open(p->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (p->fd < 0) {
        fprintf(stderr, "tandem pull: %s: %s\n", p->part_path, strerror(errno));
        return 1;
    }
    if (flock(p->fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "tandem pull: %s is being written by another tandem pull\n", p->part_path);
        return 1;
    }
    if (hash_existing_part(p)) {
        fprintf(stderr, "tandem pull: reading %s: %s\n", p->part_path, strerror(errno));
        return 1;
    }
    struct model_cache_part_info info;
    if (p->have && model_cache_part_info_read(p->info_path, &info) == 0 &&
        !strcmp(info.url, p->url))
        snprintf(p->if_range, sizeof(p->if_range), "%s", info.etag);
    if (p->have >= 4 && memcmp(p->magic, "GGUF", 4)) {
        if (!p->quiet)
            fprintf(stderr, "%s does not hold GGUF data; starting over\n", p->part_path);
        if (reset_part(p)) {
            fprintf(stderr, "tandem pull: %s: %s\n", p->part_path, strerror(errno));
            return 1;
        }
    }
    return 0;
}

static int parse_args(struct pull *p, int argc, char **argv, const char **name_opt)
{
    const char *url = NULL, *sha = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sha256")) {
            if (!(sha = args_value("pull", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--name")) {
            if (!(*name_opt = args_value("pull", argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            p->quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tandem pull: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (url) {
            fprintf(stderr, "tandem pull: more than one URL given\n");
            return 2;
        } else {
            url = a;
        }
    }
    if (!url) {
        usage(stderr);
        return 2;
    }
    if (sha && !model_cache_sha256_parse(sha, p->want)) {
        fprintf(stderr, "tandem pull: --sha256: '%s' is not 64 hexadecimal digits\n", sha);
        return 2;
    }
    p->user_url = url;
    return -1;
}

int cmd_pull(int argc, char **argv)
{
    struct pull *p = calloc(1, sizeof(*p));
    const char *name_opt = NULL;
    int status = 1, rc;
    struct sigaction sa, old_int, old_term;
    bool handlers = false, curl_inited = false;
    if (!p) {
        fprintf(stderr, "tandem pull: out of memory\n");
        return 1;
    }
    p->fd = -1;
    if ((rc = parse_args(p, argc, argv, &name_opt)) >= 0) {
        status = rc;
        goto out;
    }
    if ((rc = model_cache_resolve_url(p->user_url, p->url, sizeof(p->url), &p->is_hf))) {
        fprintf(stderr,
                "tandem pull: '%s': %s (expected http(s)://HOST/PATH or "
                "hf://OWNER/REPO[@REVISION]/PATH.gguf)\n",
                p->user_url, model_cache_strerror(rc));
        if (rc == MODEL_CACHE_E_URL && getenv("TANDEM_HF_ENDPOINT"))
            fprintf(stderr, "  (TANDEM_HF_ENDPOINT must be an http(s) URL)\n");
        status = 2;
        goto out;
    }
    if (name_opt) {
        if (!model_cache_name_valid(name_opt)) {
            fprintf(stderr,
                    "tandem pull: --name '%s': a model name is a plain file name ending in "
                    ".gguf (no '/', not starting with '.')\n",
                    name_opt);
            status = 2;
            goto out;
        }
        snprintf(p->name, sizeof(p->name), "%s", name_opt);
        p->name_opt = name_opt;
    } else if (model_cache_name_from_url(p->url, p->name, sizeof(p->name))) {
        fprintf(stderr,
                "tandem pull: %s: cannot take a model file name from the URL; give one with "
                "--name FILE.gguf\n",
                p->url);
        status = 2;
        goto out;
    }
    if ((rc = model_cache_models_dir(p->dir, sizeof(p->dir), true))) {
        fprintf(stderr, "tandem pull: cache directory %s: %s\n", p->dir[0] ? p->dir : "?",
                rc == MODEL_CACHE_E_IO ? strerror(errno) : model_cache_strerror(rc));
        goto out;
    }
    if (path_join(p->final_path, sizeof(p->final_path), p->dir, p->name, "") ||
        path_join(p->part_path, sizeof(p->part_path), p->dir, p->name, MODEL_CACHE_PART) ||
        path_join(p->info_path, sizeof(p->info_path), p->dir, p->name, MODEL_CACHE_PART_INFO) ||
        path_join(p->sha_path, sizeof(p->sha_path), p->dir, p->name, MODEL_CACHE_SHA256)) {
        fprintf(stderr, "tandem pull: cache path too long: %s\n", p->dir);
        goto out;
    }
    snprintf(p->resume_cmd, sizeof(p->resume_cmd), "tandem pull %s%s%s%s%s", p->user_url,
             p->want[0] ? " --sha256 " : "", p->want, name_opt ? " --name " : "",
             name_opt ? name_opt : "");
    p->tty = isatty(STDERR_FILENO);

    struct stat st;
    if (stat(p->final_path, &st) == 0) {
        status = check_existing(p);
        goto out;
    }

    if (!(p->md = EVP_MD_CTX_new())) {
        fprintf(stderr, "tandem pull: out of memory\n");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(p->curl = curl_easy_init())) {
        fprintf(stderr, "tandem pull: cannot initialise libcurl\n");
        goto out;
    }
    curl_inited = true;
    interrupted = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    handlers = true;

    if (open_part(p))
        goto out;
    const char *token = getenv("HF_TOKEN");
    for (int attempt = 0;; attempt++) {
        rc = transfer(p, token);
        if (rc != 2)
            break;
        if (attempt == 1 || reset_part(p)) {
            fprintf(stderr, "tandem pull: %s: the server does not serve consistent ranges\n",
                    p->url);
            rc = 1;
            break;
        }
    }
    status = rc ? 1 : finish(p);
out:
    if (handlers) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (p->fd >= 0)
        close(p->fd);
    if (p->curl)
        curl_easy_cleanup(p->curl);
    if (curl_inited)
        curl_global_cleanup();
    EVP_MD_CTX_free(p->md);
    if (fflush(stdout) && status == 0) {
        fprintf(stderr, "tandem pull: error writing output\n");
        status = 1;
    }
    free(p);
    return status;
}
