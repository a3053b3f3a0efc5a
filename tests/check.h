/* The harness of the plain C tests (no Vulkan; the Vulkan tests use harness.h): every
 * check is counted, the program ends with the line "N passed, M failed" and exits 1 if
 * any failed. Two ways to report a check:
 *     check(ok, "what was checked", ...)  prints "ok   WHAT" or "FAIL WHAT";
 *     CHECK(cond, "what went wrong", ...) prints only a failure, "FAIL FILE:LINE: WHAT".
 * Tests that need files work in a fresh temporary directory (check_tmp_init), removed
 * with everything in it by check_finish. Everything is static inline so that a test
 * may use any part of it. */
#ifndef SNLVK_TEST_CHECK_H
#define SNLVK_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

static int n_passed, n_failed;

static inline void check_count(int ok)
{
    if (ok) n_passed++;
    else n_failed++;
}

static inline int check(int ok, const char *fmt, ...) SNLVK_PRINTF(2, 3);
static inline int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-4s ", ok ? "ok" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    check_count(ok);
    return ok;
}

static inline void check_quiet(int ok, const char *file, int line, const char *fmt, ...) SNLVK_PRINTF(4, 5);
static inline void check_quiet(int ok, const char *file, int line, const char *fmt, ...)
{
    check_count(ok);
    if (ok) return;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}
#define CHECK(cond, ...) check_quiet(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* The call succeeded (else the message says why). */
static inline int check_ok(snlvk_status s, const char *what)
{
    return check(s == SNLVK_OK, "%s: %s%s%s", what, snlvk_status_name(s), s ? ": " : "", s ? snlvk_last_error() : "");
}

/* ---- files ---- */

static char tmp_root[256];

/* Creates $TMPDIR/NAME.XXXXXX (TMPDIR defaults to /tmp) as tmp_root; on failure prints
 * why and the final line, and exits. */
static inline void check_tmp_init(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/%s.XXXXXX", tmp ? tmp : "/tmp", name);
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "cannot create the temporary directory %s: %s\n", tmp_root, strerror(errno));
        printf("0 passed, 1 failed\n");
        exit(1);
    }
}

/* A path under tmp_root (rotating static buffers: up to 8 live at once). */
static inline const char *P(const char *fmt, ...) SNLVK_PRINTF(1, 2);
static inline const char *P(const char *fmt, ...)
{
    static char pbuf[8][4096];
    static int pnext;
    char *b = pbuf[pnext++ % 8];
    int k = snprintf(b, sizeof pbuf[0], "%s/", tmp_root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + k, sizeof pbuf[0] - (size_t)k, fmt, ap);
    va_end(ap);
    return b;
}

/* Writes a whole file or exits. */
static inline void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fclose(f);
}

/* The whole file, NUL-terminated (malloc'd; NULL if it cannot be opened). */
static inline char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
        size_t k = fread(b + n, 1, cap - n, f);
        if (k == 0) break;
        n += k;
    }
    fclose(f);
    b[n] = '\0';
    *len = n;
    return b;
}

static inline int check_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the temporary directory (if there is one), prints "N passed, M failed" and
 * returns main's exit status. */
static inline int check_finish(void)
{
    if (tmp_root[0]) nftw(tmp_root, check_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}

#endif
