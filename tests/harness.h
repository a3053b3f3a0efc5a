/* A tiny test harness: CHECK counts, every test runs with the Vulkan validation layer
 * on, and any validation message fails the test it happened in. Ends with the line
 * "N passed, M failed". */
#ifndef SNLVK_TEST_HARNESS_H
#define SNLVK_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snlvk/snlvk.h"
#include "vk/vk.h"

static int h_passed, h_failed, h_checks_failed;
static snlvk_context *h_ctx;


#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            h_checks_failed++;                                              \
            fprintf(stderr, "  CHECK FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                      \
    do {                                                                    \
        snlvk_status h_s_ = (expr);                                         \
        CHECK(h_s_ == SNLVK_OK, "%s -> %s: %s", #expr, snlvk_status_name(h_s_), snlvk_last_error()); \
    } while (0)

static void h_log(void *user, int level, const char *msg)
{
    (void)user;
    if (level >= SNLVK_LOG_WARN) fprintf(stderr, "  [%s] %s\n", level == SNLVK_LOG_ERROR ? "error" : "warning", msg);
}

/* The shared context of a test program, with validation on unless SNLVK_VALIDATION=0. */
static snlvk_context *h_context(void)
{
    if (h_ctx) return h_ctx;
    snlvk_context_opts o;
    snlvk_context_opts_default(&o);
    const char *v = getenv("SNLVK_VALIDATION");
    o.validation = !(v && strcmp(v, "0") == 0);
    o.log = h_log;
    snlvk_status s = snlvk_context_create(&o, &h_ctx);
    if (s != SNLVK_OK) {
        fprintf(stderr, "cannot create a Vulkan context: %s\n", snlvk_last_error());
        printf("0 passed, 1 failed\n");
        exit(1);
    }
    return h_ctx;
}

/* SNLVK_TEST_FILTER=substring runs only the tests whose name contains it. */
static void h_run(const char *name, void (*fn)(void))
{
    const char *filter = getenv("SNLVK_TEST_FILTER");
    if (filter && !strstr(name, filter)) return;
    h_checks_failed = 0;
    int before = h_ctx ? snlvk_context_validation_messages(h_ctx) : 0;
    fn();
    int after = h_ctx ? snlvk_context_validation_messages(h_ctx) : 0;
    if (after > before) {
        fprintf(stderr, "  %d Vulkan validation message(s) during this test\n", after - before);
        h_checks_failed++;
    }
    if (h_checks_failed) h_failed++;
    else h_passed++;
    printf("%-4s %s\n", h_checks_failed ? "FAIL" : "ok", name);
    fflush(stdout);
}
#define RUN(fn) h_run(#fn, fn)

static int h_finish(void)
{
    if (h_ctx) snlvk_context_destroy(h_ctx);
    printf("%d passed, %d failed\n", h_passed, h_failed);
    return h_failed ? 1 : 0;
}

/* Deterministic uniform floats in [lo, hi), never exactly zero. */
static uint64_t h_rng = 0x9e3779b97f4a7c15ull;
static inline float h_uniform(float lo, float hi)
{
    h_rng ^= h_rng << 13;
    h_rng ^= h_rng >> 7;
    h_rng ^= h_rng << 17;
    float u = (float)((double)(h_rng >> 40) / (double)(1ull << 24));
    float x = lo + (hi - lo) * u;
    return x == 0.0f ? 1e-3f : x;
}
static inline void h_fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = h_uniform(lo, hi);
}

/* ||a-b|| / ||b|| */
static inline double h_rel_err(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        if (d != d) return INFINITY;
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* A double copy of n floats (malloc'd), for the double-precision references. */
static inline double *h_to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* A device buffer holding the n floats of x. */
static inline vk_buf h_upload(const float *x, size_t n)
{
    vk_buf b;
    CHECK_OK(vk_buf_alloc(h_context(), n * 4, &b));
    CHECK_OK(vk_buf_write(h_context(), &b, 0, x, n * 4));
    return b;
}

/* A device buffer of n NaNs: every element a kernel should write must be written. */
static inline vk_buf h_alloc_nan(size_t n)
{
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    vk_buf b = h_upload(p, n);
    free(p);
    return b;
}

/* The first n floats of b, in a malloc'd array. */
static inline float *h_download(const vk_buf *b, size_t n)
{
    float *p = malloc(n * 4);
    CHECK_OK(vk_buf_read(h_context(), b, 0, p, n * 4));
    return p;
}

/* Fills the first n floats of b with NaN, so that an element a kernel fails to write
 * fails the comparison. */
static inline void h_poison(const vk_buf *b, size_t n)
{
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    CHECK_OK(vk_buf_write(h_context(), b, 0, p, n * 4));
    free(p);
}

#endif
