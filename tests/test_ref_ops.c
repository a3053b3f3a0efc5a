/* snlvk: tests of the plain-C reference ops (tests/ref/ref_ops.c).
 *
 *  1. hand-computed values of the forwards (and a few backwards / optimiser steps);
 *  2. central finite differences (double, h = 1e-6) of every backward against its forward,
 *     on awkward shapes, with a random projection L = sum(r .* y), i.e. dy = r. The
 *     numerical derivative is formed as sum_j r_j*(y+_j - y-_j)/(2h) so that outputs the
 *     perturbation does not touch cancel exactly. Per entry:
 *         |num - ana| <= 1e-6 * max(|ana|, 1e-3) + (bound on the rounding error of num)
 *     (see fd_check);
 *  3. when /usr/bin/python3 can import torch: a cross-check against PyTorch (float64)
 *     through tools/ref_crosscheck.py and a raw file (format below), at 1e-10 relative.
 *
 * One line per check; the last line is "N passed, M failed"; exit status 1 if any failed.
 * Environment: SNLVK_PYTHON (default /usr/bin/python3), SNLVK_CROSSCHECK_SCRIPT (default:
 * tools/ref_crosscheck.py found next to this source file or from the current directory).
 */
#include "ref/ref_ops.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_FLOOR 1e-3
#define XCHECK_TOL 1e-10

/* ------------------------------------------------------------------------------ */
/* harness                                                                          */
/* ------------------------------------------------------------------------------ */

static int n_pass, n_fail;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void report(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok)
        n_pass++;
    else
        n_fail++;
}

/* every buffer a test allocates goes here and is freed at the end of main */
static void **arena;
static size_t arena_n, arena_cap;

static void *track(void *p)
{
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (arena_n == arena_cap) {
        arena_cap = arena_cap ? 2 * arena_cap : 256;
        void **a = realloc(arena, arena_cap * sizeof(void *));
        if (!a) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        arena = a;
    }
    arena[arena_n++] = p;
    return p;
}

static double *dalloc(long n) { return track(calloc((size_t)(n > 0 ? n : 1), sizeof(double))); }
static int *ialloc(long n) { return track(calloc((size_t)(n > 0 ? n : 1), sizeof(int))); }

static void arena_free(void)
{
    for (size_t i = 0; i < arena_n; i++) free(arena[i]);
    free(arena);
    arena = NULL;
    arena_n = arena_cap = 0;
}

/* splitmix64: deterministic across platforms */
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double urand01(void) { return (double)(rng_u64() >> 11) * 0x1.0p-53; }

/* uniform in [-1,1], never exactly 0, |v| >= away */
static double urand_away(double away)
{
    double v;
    do v = 2.0 * urand01() - 1.0;
    while (v == 0.0 || fabs(v) < away);
    return v;
}

static double *rnd(long n)
{
    double *a = dalloc(n);
    for (long i = 0; i < n; i++) a[i] = urand_away(0.0);
    return a;
}

static double *rnd_away(long n, double away)
{
    double *a = dalloc(n);
    for (long i = 0; i < n; i++) a[i] = urand_away(away);
    return a;
}

/* n distinct values in [-1,1], at least 2/n apart, in random order (no ties for maxpool) */
static double *rnd_distinct(long n)
{
    double *a = dalloc(n);
    for (long i = 0; i < n; i++) a[i] = -1.0 + (2.0 * (double)i + 1.0) / (double)n;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(rng_u64() % (uint64_t)(i + 1));
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
    return a;
}

static double *nanbuf(long n)
{
    double *a = dalloc(n);
    for (long i = 0; i < n; i++) a[i] = NAN;
    return a;
}

static double *copy(const double *src, long n)
{
    double *a = dalloc(n);
    memcpy(a, src, sizeof(double) * (size_t)n);
    return a;
}

/* max over i of |got-want| / max(|want|, floor); NaN anywhere gives +inf */
static double max_rel_err(const double *got, const double *want, long n, double floor)
{
    double worst = 0.0;
    for (long i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (isnan(d) || isnan(got[i]) || isnan(want[i])) d = INFINITY;
        if (d > worst) worst = d;
    }
    return worst;
}

/* value checks: relative to max(|want|, 1) */
static void check_vec(const char *name, const double *got, const double *want, long n, double tol)
{
    double e = max_rel_err(got, want, n, 1.0);
    report(e <= tol, "%s (max err %.2e)", name, e);
}

static void check_val(const char *name, double got, double want, double tol)
{
    double e = fabs(got - want) / fmax(fabs(want), 1.0);
    if (isnan(e)) e = INFINITY;
    report(e <= tol, "%s (got %.17g, want %.17g)", name, got, want);
}

/* ------------------------------------------------------------------------------ */
/* finite differences                                                               */
/* ------------------------------------------------------------------------------ */

/* computes the op's output (nout entries) from the current state of ctx */
typedef void (*fwd_fn)(void *ctx, double *out);

/* checks ana[i] == d/dparam[i] sum_j r[j]*out[j] (r NULL: all ones).
 * Entry i passes when |num - ana| <= FD_TOL*max(|ana|, FD_FLOOR) + noise_i, where noise_i
 * bounds the rounding error of the difference quotient itself:
 *     16*DBL_EPSILON * sum_j |r_j|*(|y+_j| + |y-_j|) / (2h)  over the outputs j that changed
 * (it matters only for entries whose gradient is tiny next to the outputs it moves). */
static void fd_check(const char *name, fwd_fn f, void *ctx, long nout, const double *r,
                     double *param, long n, const double *ana)
{
    double *yp = malloc(sizeof(double) * (size_t)nout);
    double *ym = malloc(sizeof(double) * (size_t)nout);
    if (!yp || !ym) exit(2);
    double worst = 0.0, worst_ratio = 0.0;
    long worst_i = -1;
    for (long i = 0; i < n; i++) {
        const double save = param[i];
        param[i] = save + FD_H;
        f(ctx, yp);
        param[i] = save - FD_H;
        f(ctx, ym);
        param[i] = save;
        double d = 0.0, mag = 0.0;
        for (long j = 0; j < nout; j++) {
            const double rj = r ? r[j] : 1.0;
            if (yp[j] == ym[j]) continue; /* untouched by the perturbation: exact 0 */
            d += rj * (yp[j] - ym[j]);
            mag += fabs(rj) * (fabs(yp[j]) + fabs(ym[j]));
        }
        const double num = d / (2.0 * FD_H);
        const double noise = 16.0 * DBL_EPSILON * mag / (2.0 * FD_H);
        const double diff = fabs(num - ana[i]);
        double e = diff / fmax(fabs(ana[i]), FD_FLOOR);
        double ratio = diff / (FD_TOL * fmax(fabs(ana[i]), FD_FLOOR) + noise);
        if (isnan(e) || isnan(ana[i]) || isnan(num)) e = ratio = INFINITY;
        if (worst_i < 0 || ratio > worst_ratio) {
            worst_ratio = ratio;
            worst_i = i;
        }
        if (e > worst) worst = e;
    }
    free(yp);
    free(ym);
    report(worst_ratio <= 1.0, "fd %s (%ld entries, max rel err %.2e, max err/bound %.2f at %ld)",
           name, n, worst, worst_ratio, worst_i);
}

/* ---- conv ---- */
typedef struct {
    double *x, *w, *b;
    int N, C, H, W, K, k, s, p;
} conv_ctx;

static void conv_fwd(void *v, double *out)
{
    conv_ctx *c = v;
    ref_conv2d_forward(c->x, c->w, c->b, out, c->N, c->C, c->H, c->W, c->K, c->k, c->s, c->p);
}

static void fd_conv(int N, int C, int H, int W, int K, int k, int s, int p, int bias)
{
    const int P = ref_out_size(H, k, s, p), Q = ref_out_size(W, k, s, p);
    conv_ctx c = {rnd((long)N * C * H * W), rnd((long)K * C * k * k), bias ? rnd(K) : NULL,
                  N, C, H, W, K, k, s, p};
    const long ny = (long)N * K * P * Q;
    double *r = rnd(ny);
    double *dx = nanbuf((long)N * C * H * W), *dw = nanbuf((long)K * C * k * k);
    double *db = bias ? nanbuf(K) : NULL;
    ref_conv2d_backward_data(r, c.w, dx, N, C, H, W, K, k, s, p);
    ref_conv2d_backward_filter(r, c.x, dw, db, N, C, H, W, K, k, s, p);
    char name[160];
    snprintf(name, sizeof name, "conv N%d C%d %dx%d K%d k%d s%d p%d%s", N, C, H, W, K, k, s, p,
             bias ? " bias" : "");
    char nm[200];
    snprintf(nm, sizeof nm, "%s dx", name);
    fd_check(nm, conv_fwd, &c, ny, r, c.x, (long)N * C * H * W, dx);
    snprintf(nm, sizeof nm, "%s dw", name);
    fd_check(nm, conv_fwd, &c, ny, r, c.w, (long)K * C * k * k, dw);
    if (bias) {
        snprintf(nm, sizeof nm, "%s db", name);
        fd_check(nm, conv_fwd, &c, ny, r, c.b, K, db);
    }
}

/* ---- batchnorm ---- */
typedef struct {
    double *x, *g, *b, *rm, *rv, *sm, *si;
    int N, C, H, W;
} bn_ctx;

static void bn_fwd(void *v, double *out)
{
    bn_ctx *c = v;
    ref_bn_forward_train(c->x, c->g, c->b, c->rm, c->rv, out, c->sm, c->si, c->N, c->C, c->H,
                         c->W, 0.1, 1e-5);
}

static void fd_bn(int N, int C, int H, int W)
{
    const long nx = (long)N * C * H * W;
    bn_ctx c = {rnd(nx), rnd(C), rnd(C), rnd(C), rnd_away(C, 0.1), dalloc(C), dalloc(C), N, C, H, W};
    for (int i = 0; i < C; i++) c.rv[i] = fabs(c.rv[i]);
    double *y = dalloc(nx), *r = rnd(nx);
    bn_fwd(&c, y);
    double *dx = nanbuf(nx), *dg = nanbuf(C), *dbt = nanbuf(C);
    ref_bn_backward(r, c.x, c.g, c.sm, c.si, dx, dg, dbt, N, C, H, W);
    char nm[160];
    snprintf(nm, sizeof nm, "bn train N%d C%d %dx%d dx", N, C, H, W);
    fd_check(nm, bn_fwd, &c, nx, r, c.x, nx, dx);
    snprintf(nm, sizeof nm, "bn train N%d C%d %dx%d dgamma", N, C, H, W);
    fd_check(nm, bn_fwd, &c, nx, r, c.g, C, dg);
    snprintf(nm, sizeof nm, "bn train N%d C%d %dx%d dbeta", N, C, H, W);
    fd_check(nm, bn_fwd, &c, nx, r, c.b, C, dbt);
}

/* ---- masked relu ---- */
typedef struct {
    double *x, *c;
    int N, C, H, W, ch;
    long nc;
} mrelu_ctx;

/* out = [y..., sum |c|], so with r = [r..., lambda] the projection is L + lambda*|c|_1 */
static void mrelu_fwd(void *v, double *out)
{
    mrelu_ctx *c = v;
    ref_masked_relu_forward(c->x, c->c, out, c->N, c->C, c->H, c->W, c->ch);
    double s = 0.0;
    for (long i = 0; i < c->nc; i++) s += fabs(c->c[i]);
    out[(long)c->N * c->C * c->H * c->W] = s;
}

static void fd_mrelu(int N, int C, int H, int W, int ch, double lambda)
{
    const long nx = (long)N * C * H * W, nc = ch ? C : (long)C * H * W;
    /* inputs away from the kink at x = 0, masks away from the kink of |c| at 0 */
    mrelu_ctx c = {rnd_away(nx, 0.05), rnd_away(nc, 0.05), N, C, H, W, ch, nc};
    double *r = rnd(nx + 1);
    r[nx] = lambda;
    double *dx = nanbuf(nx), *dc = nanbuf(nc), *dx2 = nanbuf(nx);
    ref_masked_relu_backward(r, c.x, c.c, dx, dc, lambda, N, C, H, W, ch);
    char nm[160];
    snprintf(nm, sizeof nm, "masked relu %s N%d C%d %dx%d lambda %g dx", ch ? "channel" : "pixel",
             N, C, H, W, lambda);
    fd_check(nm, mrelu_fwd, &c, nx + 1, r, c.x, nx, dx);
    snprintf(nm, sizeof nm, "masked relu %s N%d C%d %dx%d lambda %g dc", ch ? "channel" : "pixel",
             N, C, H, W, lambda);
    fd_check(nm, mrelu_fwd, &c, nx + 1, r, c.c, nc, dc);
    ref_masked_relu_backward(r, c.x, c.c, dx2, NULL, lambda, N, C, H, W, ch);
    snprintf(nm, sizeof nm, "masked relu %s N%d C%d %dx%d frozen (dc NULL) gives the same dx",
             ch ? "channel" : "pixel", N, C, H, W);
    report(memcmp(dx, dx2, sizeof(double) * (size_t)nx) == 0, "%s", nm);
}

/* ---- pooling ---- */
typedef struct {
    double *x;
    int N, C, H, W, k, s, p;
    int *argmax;
} pool_ctx;

static void avg_fwd(void *v, double *out)
{
    pool_ctx *c = v;
    ref_avgpool_forward(c->x, out, c->N, c->C, c->H, c->W, c->k, c->s);
}

static void max_fwd(void *v, double *out)
{
    pool_ctx *c = v;
    ref_maxpool_forward(c->x, out, c->argmax, c->N, c->C, c->H, c->W, c->k, c->s, c->p);
}

static void fd_avgpool(int N, int C, int H, int W, int k, int s)
{
    const long nx = (long)N * C * H * W;
    const long ny = (long)N * C * ref_out_size(H, k, s, 0) * ref_out_size(W, k, s, 0);
    pool_ctx c = {rnd(nx), N, C, H, W, k, s, 0, NULL};
    double *r = rnd(ny), *dx = nanbuf(nx);
    ref_avgpool_backward(r, dx, N, C, H, W, k, s);
    char nm[160];
    snprintf(nm, sizeof nm, "avgpool N%d C%d %dx%d k%d s%d dx", N, C, H, W, k, s);
    fd_check(nm, avg_fwd, &c, ny, r, c.x, nx, dx);
}

static void fd_maxpool(int N, int C, int H, int W, int k, int s, int p)
{
    const long nx = (long)N * C * H * W;
    const long ny = (long)N * C * ref_out_size(H, k, s, p) * ref_out_size(W, k, s, p);
    pool_ctx c = {rnd_distinct(nx), N, C, H, W, k, s, p, ialloc(ny)};
    double *y = dalloc(ny), *r = rnd(ny), *dx = nanbuf(nx);
    max_fwd(&c, y);
    ref_maxpool_backward(r, c.argmax, dx, N, C, H, W, k, s, p);
    char nm[160];
    snprintf(nm, sizeof nm, "maxpool N%d C%d %dx%d k%d s%d p%d dx", N, C, H, W, k, s, p);
    fd_check(nm, max_fwd, &c, ny, r, c.x, nx, dx);
}

/* ---- linear ---- */
typedef struct {
    double *x, *w, *b;
    int N, I, O;
} lin_ctx;

static void lin_fwd(void *v, double *out)
{
    lin_ctx *c = v;
    ref_linear_forward(c->x, c->w, c->b, out, c->N, c->I, c->O);
}

static void fd_linear(int N, int I, int O, int bias)
{
    lin_ctx c = {rnd((long)N * I), rnd((long)O * I), bias ? rnd(O) : NULL, N, I, O};
    double *r = rnd((long)N * O);
    double *dx = nanbuf((long)N * I), *dw = nanbuf((long)O * I), *db = bias ? nanbuf(O) : NULL;
    ref_linear_backward(r, c.x, c.w, dx, dw, db, N, I, O);
    char nm[160];
    snprintf(nm, sizeof nm, "linear N%d I%d O%d%s dx", N, I, O, bias ? " bias" : "");
    fd_check(nm, lin_fwd, &c, (long)N * O, r, c.x, (long)N * I, dx);
    snprintf(nm, sizeof nm, "linear N%d I%d O%d%s dw", N, I, O, bias ? " bias" : "");
    fd_check(nm, lin_fwd, &c, (long)N * O, r, c.w, (long)O * I, dw);
    if (bias) {
        snprintf(nm, sizeof nm, "linear N%d I%d O%d bias db", N, I, O);
        fd_check(nm, lin_fwd, &c, (long)N * O, r, c.b, O, db);
    }
}

/* ---- losses ---- */
typedef struct {
    double *z, *t;
    int *labels;
    int N, classes;
    double T;
} loss_ctx;

static void ce_fwd(void *v, double *out)
{
    loss_ctx *c = v;
    out[0] = ref_cross_entropy(c->z, c->labels, NULL, c->N, c->classes);
}

static void kd_fwd(void *v, double *out)
{
    loss_ctx *c = v;
    out[0] = ref_kd_loss(c->z, c->t, NULL, c->N, c->classes, c->T);
}

static void fd_ce(int N, int classes, double scale)
{
    loss_ctx c = {rnd((long)N * classes), NULL, ialloc(N), N, classes, 1.0};
    for (long i = 0; i < (long)N * classes; i++) c.z[i] *= scale;
    for (int n = 0; n < N; n++) c.labels[n] = (int)(rng_u64() % (uint64_t)classes);
    double *dz = nanbuf((long)N * classes);
    ref_cross_entropy(c.z, c.labels, dz, N, classes);
    char nm[160];
    snprintf(nm, sizeof nm, "cross entropy N%d classes %d scale %g dz", N, classes, scale);
    fd_check(nm, ce_fwd, &c, 1, NULL, c.z, (long)N * classes, dz);
}

static void fd_kd(int N, int classes, double T, double scale)
{
    loss_ctx c = {rnd((long)N * classes), rnd((long)N * classes), NULL, N, classes, T};
    for (long i = 0; i < (long)N * classes; i++) {
        c.z[i] *= scale;
        c.t[i] *= scale;
    }
    double *ds = nanbuf((long)N * classes);
    ref_kd_loss(c.z, c.t, ds, N, classes, T);
    char nm[160];
    snprintf(nm, sizeof nm, "kd loss N%d classes %d T %g scale %g ds", N, classes, T, scale);
    fd_check(nm, kd_fwd, &c, 1, NULL, c.z, (long)N * classes, ds);
}

static void test_fd(void)
{
    /* conv: k in {1,3,5,7}, pads 0..3, strides 1..3, odd sizes, batch 1 and 3 */
    fd_conv(1, 3, 7, 5, 5, 3, 2, 1, 1);
    fd_conv(3, 5, 7, 5, 3, 1, 1, 0, 1);
    fd_conv(1, 3, 7, 5, 3, 1, 2, 1, 0);
    fd_conv(1, 3, 9, 7, 3, 5, 2, 2, 1);
    fd_conv(3, 3, 7, 5, 5, 7, 1, 3, 0);
    fd_conv(1, 5, 5, 7, 3, 3, 2, 0, 1);
    fd_conv(3, 3, 8, 6, 5, 3, 3, 1, 1);
    fd_conv(1, 3, 7, 5, 3, 5, 1, 0, 1);
    fd_conv(1, 1, 7, 7, 1, 7, 2, 3, 1);
    /* batchnorm training */
    fd_bn(1, 3, 7, 5);
    fd_bn(3, 5, 7, 5);
    fd_bn(3, 3, 1, 1);
    fd_bn(1, 2, 1, 2);
    /* masked relu */
    fd_mrelu(1, 3, 7, 5, 0, 0.3);
    fd_mrelu(1, 3, 7, 5, 1, 0.3);
    fd_mrelu(3, 5, 3, 5, 0, 0.0);
    fd_mrelu(3, 5, 3, 5, 1, 1e-2);
    /* pooling */
    fd_avgpool(1, 3, 7, 5, 3, 2);
    fd_avgpool(3, 2, 7, 7, 7, 1);
    fd_avgpool(3, 5, 9, 7, 2, 2);
    fd_avgpool(1, 3, 7, 5, 1, 2);
    fd_avgpool(1, 2, 7, 5, 5, 1);
    fd_maxpool(1, 3, 7, 5, 3, 2, 1);
    fd_maxpool(3, 2, 9, 7, 2, 2, 0);
    fd_maxpool(1, 2, 7, 7, 3, 1, 1);
    fd_maxpool(3, 5, 7, 5, 5, 2, 2);
    fd_maxpool(1, 3, 7, 5, 7, 3, 3);
    /* linear */
    fd_linear(1, 5, 3, 1);
    fd_linear(3, 7, 5, 1);
    fd_linear(3, 4, 6, 0);
    /* losses */
    fd_ce(1, 5, 1.0);
    fd_ce(3, 7, 4.0);
    fd_ce(5, 10, 10.0);
    fd_kd(1, 5, 1.0, 1.0);
    fd_kd(3, 7, 4.0, 5.0);
    fd_kd(3, 10, 2.5, 3.0);
}

/* ------------------------------------------------------------------------------ */
/* hand-computed values                                                             */
/* ------------------------------------------------------------------------------ */

static void test_conv_values(void)
{
    const double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    double y[9], b = 0.5;

    /* 3x3 all-ones kernel, pad 1: neighbourhood sums (+ bias 0.5) */
    const double sums[9] = {12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5};
    ref_conv2d_forward(x, ones, &b, y, 1, 1, 3, 3, 1, 3, 1, 1);
    check_vec("conv 1x1x3x3 ones kernel pad 1 + bias", y, sums, 9, 1e-15);

    /* cross-correlation, not convolution: kernel with a 1 right of the centre gives x[i][j+1] */
    const double shift[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    const double shifted[9] = {2, 3, 0, 5, 6, 0, 8, 9, 0};
    ref_conv2d_forward(x, shift, NULL, y, 1, 1, 3, 3, 1, 3, 1, 1);
    check_vec("conv is cross-correlation (no kernel flip)", y, shifted, 9, 0);

    /* stride 2, pad 1: the corners of the neighbourhood sums */
    const double s2[4] = {12, 16, 24, 28};
    ref_conv2d_forward(x, ones, NULL, y, 1, 1, 3, 3, 1, 3, 2, 1);
    check_vec("conv ones kernel stride 2 pad 1 (2x2 out)", y, s2, 4, 0);

    /* pad 0: one output, sum of everything */
    ref_conv2d_forward(x, ones, NULL, y, 1, 1, 3, 3, 1, 3, 1, 0);
    check_val("conv ones kernel pad 0 (1x1 out)", y[0], 45, 0);

    /* 1x1 kernel over two channels, two output channels: y0 = 2*x0 - x1 + 1, y1 = x1 */
    const double x2[4] = {1, 2, 3, 4};   /* [1,2,1,2]: ch0 = {1,2}, ch1 = {3,4} */
    const double w2[4] = {2, -1, 0, 1};  /* [2,2,1,1] */
    const double b2[2] = {1, 0};
    const double y2w[4] = {0, 1, 3, 4};
    double y2[4];
    ref_conv2d_forward(x2, w2, b2, y2, 1, 2, 1, 2, 2, 1, 1, 0);
    check_vec("conv 1x1 kernel, 2 in / 2 out channels", y2, y2w, 4, 0);

    /* backward data with dy = 1, ones kernel, pad 1: how many windows cover each pixel */
    double dx[9];
    const double cover[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    ref_conv2d_backward_data(ones, ones, dx, 1, 1, 3, 3, 1, 3, 1, 1);
    check_vec("conv backward data: coverage counts", dx, cover, 9, 0);

    /* backward filter with dy = 1, pad 1: dw[r][s] = sum of x over the shifted window */
    double dw[9], db;
    const double dww[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    ref_conv2d_backward_filter(ones, x, dw, &db, 1, 1, 3, 3, 1, 3, 1, 1);
    check_vec("conv backward filter: shifted window sums", dw, dww, 9, 0);
    check_val("conv backward filter: db = sum dy", db, 9, 0);

    /* stride 2 with an odd remainder: the last row/column of a 4x4 input (pad 0, k 3) is
     * covered only by windows that do not exist, so dx there is 0 */
    double x4[16], dx4[16], dy1 = 1.0;
    for (int i = 0; i < 16; i++) x4[i] = i;
    ref_conv2d_backward_data(&dy1, ones, dx4, 1, 1, 4, 4, 1, 3, 2, 0);
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= dx4[i] == ((i / 4 < 3 && i % 4 < 3) ? 1.0 : 0.0);
    report(ok, "conv stride 2 pad 0 on 4x4: uncovered last row/column get dx = 0");
    ref_conv2d_forward(x4, ones, NULL, y, 1, 1, 4, 4, 1, 3, 2, 0);
    check_val("conv stride 2 pad 0 on 4x4: single output", y[0], 0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 0);
    report(ref_out_size(7, 3, 2, 1) == 4 && ref_out_size(5, 3, 2, 1) == 3 &&
               ref_out_size(8, 3, 3, 1) == 3 && ref_out_size(7, 7, 1, 3) == 7,
           "ref_out_size floors like PyTorch");
}

static void test_bn_values(void)
{
    /* one channel, values 1,2,3,4: mean 2.5, biased var 1.25, unbiased 5/3 */
    const double x[4] = {1, 2, 3, 4};
    double g = 2.0, b = 0.5, rm = 0.0, rv = 1.0, y[4], sm, si;
    ref_bn_forward_train(x, &g, &b, &rm, &rv, y, &sm, &si, 1, 1, 2, 2, 0.1, 1e-5);
    const double is = 1.0 / sqrt(1.25 + 1e-5);
    const double yw[4] = {-1.5 * is * 2 + 0.5, -0.5 * is * 2 + 0.5, 0.5 * is * 2 + 0.5,
                          1.5 * is * 2 + 0.5};
    check_vec("bn train 1,2,3,4: y", y, yw, 4, 1e-15);
    check_val("bn train 1,2,3,4: save_mean", sm, 2.5, 0);
    check_val("bn train 1,2,3,4: save_invstd", si, is, 1e-15);
    check_val("bn train running_mean = 0.9*0 + 0.1*2.5", rm, 0.25, 1e-15);
    check_val("bn train running_var = 0.9*1 + 0.1*5/3 (unbiased)", rv, 0.9 + 0.1 * 5.0 / 3.0, 1e-15);
    /* the same values spread over the batch (N=4, 1x1) give the same statistics */
    double rm2 = 0.0, rv2 = 1.0, y2[4];
    ref_bn_forward_train(x, &g, &b, &rm2, &rv2, y2, NULL, NULL, 4, 1, 1, 1, 0.1, 1e-5);
    check_vec("bn train over the batch dim equals over H,W", y2, yw, 4, 1e-15);
    report(rm2 == rm && rv2 == rv, "bn train running stats over the batch dim");

    /* a constant channel next to a varying one: y = beta there, var 0 */
    double xc[2 * 2 * 3]; /* N=2, C=2, 1x3 */
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 3; i++) {
            xc[(n * 2 + 0) * 3 + i] = 3.0;
            xc[(n * 2 + 1) * 3 + i] = n * 3 + i;
        }
    double gc[2] = {1.5, 1.0}, bc[2] = {-0.25, 0.0}, rmc[2] = {0, 0}, rvc[2] = {1, 1}, yc[12],
           smc[2], sic[2];
    ref_bn_forward_train(xc, gc, bc, rmc, rvc, yc, smc, sic, 2, 2, 1, 3, 0.1, 1e-5);
    int ok = 1;
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 3; i++) ok &= yc[(n * 2 + 0) * 3 + i] == -0.25;
    report(ok, "bn train constant channel: y = beta");
    check_val("bn train constant channel: invstd = 1/sqrt(eps)", sic[0], 1.0 / sqrt(1e-5), 1e-15);
    check_val("bn train constant channel: running_mean 0.3", rmc[0], 0.3, 1e-15);
    check_val("bn train constant channel: running_var 0.9", rvc[0], 0.9, 1e-15);
    check_val("bn train channel 1 (0..5): running_mean 0.25", rmc[1], 0.25, 1e-15);
    check_val("bn train channel 1 (0..5): running_var 0.9+0.1*3.5", rvc[1], 0.9 + 0.35, 1e-15);
    /* backward of a constant channel: dx = 0 (xhat = 0, sum removes the mean) when dy is
     * constant too; dbeta = sum dy, dgamma = 0 */
    double dy[12], dx[12], dg[2], dbb[2];
    for (int i = 0; i < 12; i++) dy[i] = 1.0;
    ref_bn_backward(dy, xc, gc, smc, sic, dx, dg, dbb, 2, 2, 1, 3);
    ok = dbb[0] == 6.0 && dg[0] == 0.0 && dbb[1] == 6.0 && fabs(dg[1]) < 1e-14;
    for (int i = 0; i < 12; i++) ok &= fabs(dx[i]) < 1e-12;
    report(ok, "bn backward with constant dy: dx = 0, dbeta = count, dgamma = 0");

    /* eval mode */
    double rme[2] = {1.0, -2.0}, rve[2] = {4.0, 0.25}, ge[2] = {2.0, 1.0}, be[2] = {0.0, 1.0};
    const double xe[4] = {3.0, 5.0, -2.0, -1.0}; /* N=1, C=2, 1x2 */
    double ye[4];
    ref_bn_forward_eval(xe, ge, be, rme, rve, ye, 1, 2, 1, 2, 1e-5);
    const double yew[4] = {2.0 * 2.0 / sqrt(4.0 + 1e-5), 4.0 * 2.0 / sqrt(4.0 + 1e-5), 1.0,
                           1.0 + 1.0 / sqrt(0.25 + 1e-5)};
    check_vec("bn eval uses running stats", ye, yew, 4, 1e-15);
}

static void test_mrelu_values(void)
{
    const int N = 2, C = 3, H = 3, W = 5;
    const long nx = (long)N * C * H * W, np = (long)C * H * W;
    double *x = rnd(nx), *y = dalloc(nx), *relu = dalloc(nx);
    for (long i = 0; i < nx; i++) relu[i] = x[i] > 0 ? x[i] : 0;
    double *c1 = dalloc(np), *c0 = dalloc(np);
    for (long i = 0; i < np; i++) c1[i] = 1.0;
    for (int ch = 0; ch < 2; ch++) {
        ref_masked_relu_forward(x, c1, y, N, C, H, W, ch);
        report(memcmp(y, relu, sizeof(double) * (size_t)nx) == 0, "masked relu %s c=1 is relu",
               ch ? "channel" : "pixel");
        ref_masked_relu_forward(x, c0, y, N, C, H, W, ch);
        report(memcmp(y, x, sizeof(double) * (size_t)nx) == 0, "masked relu %s c=0 is identity",
               ch ? "channel" : "pixel");
    }
    /* channel masks broadcast over H,W and the batch; pixel masks over the batch */
    const double xs[4] = {-2.0, 3.0, -4.0, 1.0}; /* N=2, C=2, 1x1 */
    const double cs[2] = {0.5, 0.25};
    const double ys[4] = {-1.0, 3.0, -2.0, 1.0};
    double yy[4];
    ref_masked_relu_forward(xs, cs, yy, 2, 2, 1, 1, 1);
    check_vec("masked relu c=0.5: -2 -> -1; positive unchanged", yy, ys, 4, 0);
    /* backward by hand: dy = 1, x = {-2, 3, -4, 1}, c = {0.5, 0.25}, lambda 0.1:
     * dx = {0.5, 1, 0.5, 1}; dc0 = (0-(-2)) + (0-(-4)) + 0.1 = 6.1; dc1 = 0 + 0 + 0.1 */
    const double dys[4] = {1, 1, 1, 1};
    double dxs[4], dcs[2];
    const double dxw[4] = {0.5, 1, 0.5, 1}, dcw[2] = {6.1, 0.1};
    ref_masked_relu_backward(dys, xs, cs, dxs, dcs, 0.1, 2, 2, 1, 1, 1);
    check_vec("masked relu backward by hand: dx", dxs, dxw, 4, 0);
    check_vec("masked relu backward by hand: dc (with lambda*sign(c))", dcs, dcw, 2, 1e-15);
    /* sign(0) = 0 and negative masks: c = {0, -0.5}, x = {1, 1} (no relu gradient) */
    const double cz[2] = {0.0, -0.5}, xz[2] = {1.0, 1.0};
    double dxz[2], dcz[2];
    ref_masked_relu_backward(dys, xz, cz, dxz, dcz, 0.1, 1, 2, 1, 1, 0);
    report(dcz[0] == 0.0 && dcz[1] == -0.1, "masked relu dc: lambda*sign(c), sign(0) = 0");
    /* at x == 0 exactly: relu'(0) = 0, so dx = dy*(1-c) */
    const double x0 = 0.0, cc = 0.25, d1 = 1.0;
    double dx0, dc0;
    ref_masked_relu_backward(&d1, &x0, &cc, &dx0, &dc0, 0.0, 1, 1, 1, 1, 0);
    report(dx0 == 0.75 && dc0 == 0.0, "masked relu at x = 0: dx = 1-c, dc = 0");

    /* add */
    const double a[3] = {1, 2, 3}, bb[3] = {0.5, -2, 10}, s[3] = {1.5, 0, 13};
    double o[3];
    ref_add(a, bb, o, 3);
    check_vec("add", o, s, 3, 0);
}

static void test_pool_values(void)
{
    const double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double y[9], dx[9];
    ref_avgpool_forward(x, y, 1, 1, 3, 3, 3, 3);
    check_val("avgpool global 3x3 = mean", y[0], 5.0, 1e-15);
    const double a2[4] = {3, 4, 6, 7};
    ref_avgpool_forward(x, y, 1, 1, 3, 3, 2, 1);
    check_vec("avgpool k2 s1 on 3x3", y, a2, 4, 1e-15);
    const double dy4[4] = {4, 8, 12, 16};
    const double dxw[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    ref_avgpool_backward(dy4, dx, 1, 1, 3, 3, 2, 1);
    check_vec("avgpool k2 s1 backward by hand", dx, dxw, 9, 1e-15);
    /* k2 s2 on 3x3 drops the last row/column */
    ref_avgpool_forward(x, y, 1, 1, 3, 3, 2, 2);
    check_val("avgpool k2 s2 on 3x3: one output", y[0], 3.0, 1e-15);

    /* maxpool: all-negative input with padding: padding is -inf, never 0 */
    const double xn[9] = {-9, -8, -7, -6, -5, -4, -3, -2, -1};
    int am[9];
    ref_maxpool_forward(xn, y, am, 1, 1, 3, 3, 3, 2, 1);
    const double mw[4] = {-5, -4, -2, -1};
    const int amw[4] = {4, 5, 7, 8};
    check_vec("maxpool pad 1 on negative input: padding is -inf", y, mw, 4, 0);
    report(memcmp(am, amw, sizeof amw) == 0, "maxpool argmax = flat h*W+w in the plane");
    /* ties: first (row-major) max wins */
    const double xt[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ref_maxpool_forward(xt, y, am, 1, 1, 3, 3, 2, 1, 0);
    const int amt[4] = {0, 1, 3, 4};
    report(memcmp(am, amt, sizeof amt) == 0, "maxpool ties: first max in the window wins");
    ref_maxpool_forward(xt, y, am, 1, 1, 3, 3, 3, 2, 1);
    const int amt2[4] = {0, 1, 3, 4};
    report(memcmp(am, amt2, sizeof amt2) == 0,
           "maxpool ties with padding: first in-bounds element wins");
    /* overlapping windows: both gradients go to the shared max */
    const double xo[6] = {0, 9, 0, 1, 2, 3}; /* 2x3, k2 s1: both windows pick the 9 */
    double yo[2], dxo[6];
    int amo[2];
    ref_maxpool_forward(xo, yo, amo, 1, 1, 2, 3, 2, 1, 0);
    const double dyo[2] = {1.0, 10.0};
    ref_maxpool_backward(dyo, amo, dxo, 1, 1, 2, 3, 2, 1, 0);
    const double dxow[6] = {0, 11, 0, 0, 0, 0};
    check_vec("maxpool overlapping windows accumulate into the shared max", dxo, dxow, 6, 0);
    /* a NaN wins (as PyTorch) */
    const double xnan[4] = {1, NAN, 3, 2};
    ref_maxpool_forward(xnan, y, am, 1, 1, 2, 2, 2, 2, 0);
    report(isnan(y[0]) && am[0] == 1, "maxpool propagates NaN");
}

static void test_linear_values(void)
{
    const double x[4] = {1, 2, 3, 4};        /* [2,2] */
    const double w[6] = {1, 0, 0, 1, 1, -1}; /* [3,2] */
    const double b[3] = {0.5, 0, -1};
    const double yw[6] = {1.5, 2, -2, 3.5, 4, -2};
    double y[6];
    ref_linear_forward(x, w, b, y, 2, 2, 3);
    check_vec("linear forward by hand", y, yw, 6, 0);
    const double dy[6] = {1, 0, 0, 0, 1, 1};
    double dx[4], dw[6], db[3];
    const double dxw[4] = {1, 0, 1, 0}, dww[6] = {1, 2, 3, 4, 3, 4}, dbw[3] = {1, 1, 1};
    ref_linear_backward(dy, x, w, dx, dw, db, 2, 2, 3);
    check_vec("linear backward dx by hand", dx, dxw, 4, 0);
    check_vec("linear backward dw by hand", dw, dww, 6, 0);
    check_vec("linear backward db by hand", db, dbw, 3, 0);
}

static void test_loss_values(void)
{
    double z[20], dz[20], t[20];
    int labels[2] = {3, 0};
    for (int i = 0; i < 20; i++) z[i] = 0.7;
    check_val("cross entropy of uniform logits = log(10)", ref_cross_entropy(z, labels, dz, 2, 10),
              log(10.0), 1e-15);
    report(fabs(dz[3] - (0.1 - 1) / 2) < 1e-15 && fabs(dz[4] - 0.1 / 2) < 1e-15 &&
               fabs(dz[10] - (0.1 - 1) / 2) < 1e-15,
           "cross entropy uniform: dz = (1/C - onehot)/N");
    const double z2[2] = {0.0, log(3.0)};
    int l1 = 1, l0 = 0;
    check_val("cross entropy [0, ln3], label 1 = -ln(3/4)", ref_cross_entropy(z2, &l1, NULL, 1, 2),
              -log(0.75), 1e-15);
    check_val("cross entropy [0, ln3], label 0 = -ln(1/4)", ref_cross_entropy(z2, &l0, NULL, 1, 2),
              -log(0.25), 1e-15);
    const double zbig[2] = {1000.0, 0.0};
    check_val("cross entropy is stable for large logits", ref_cross_entropy(zbig, &l1, NULL, 1, 2),
              1000.0, 1e-15);

    /* KD */
    for (int i = 0; i < 20; i++) z[i] = t[i] = urand_away(0.0) * 3;
    double ds[20];
    double kd = ref_kd_loss(z, t, ds, 2, 10, 4.0);
    int ok = fabs(kd) < 1e-15;
    for (int i = 0; i < 20; i++) ok &= fabs(ds[i]) < 1e-15;
    report(ok, "kd loss of equal logits = 0, gradient 0 (got %.3g)", kd);
    const double s2[2] = {0.0, log(3.0)}, t2[2] = {0.0, 0.0};
    check_val("kd loss T=1 by hand: 0.5*ln(4/3)", ref_kd_loss(s2, t2, ds, 1, 2, 1.0),
              0.5 * log(4.0 / 3.0), 1e-15);
    check_val("kd ds T=1 by hand: p_s - p_t", ds[0], 0.25 - 0.5, 1e-15);
    const double s4[2] = {0.0, 2 * log(3.0)}, t4[2] = {0.0, 0.0};
    check_val("kd loss T=2 is T^2 times the T=1 loss of s/T", ref_kd_loss(s4, t4, ds, 1, 2, 2.0),
              4 * 0.5 * log(4.0 / 3.0), 1e-14);
    check_val("kd ds T=2 = T/N*(p_s - p_t)", ds[1], 2.0 * (0.75 - 0.5), 1e-15);
    /* batchmean: two identical rows give the same loss as one */
    const double s22[4] = {0.0, log(3.0), 0.0, log(3.0)}, t22[4] = {0, 0, 0, 0};
    check_val("kd loss is a mean over the batch", ref_kd_loss(s22, t22, NULL, 2, 2, 1.0),
              0.5 * log(4.0 / 3.0), 1e-15);

    /* top-k */
    const double zk[4] = {1, 3, 3, 2};
    int lk[4] = {1, 2, 3, 0};
    report(ref_topk_correct(zk, lk, 1, 4, 1) == 1 && ref_topk_correct(zk, lk + 1, 1, 4, 1) == 1,
           "topk: a label tied for the max counts for k=1");
    report(ref_topk_correct(zk, lk + 2, 1, 4, 2) == 0 && ref_topk_correct(zk, lk + 2, 1, 4, 3) == 1,
           "topk: label with 2 greater logits: wrong at k=2, right at k=3");
    report(ref_topk_correct(zk, lk + 3, 1, 4, 3) == 0 && ref_topk_correct(zk, lk + 3, 1, 4, 4) == 1,
           "topk: the smallest logit is right only at k=4");
    const double zb[8] = {1, 3, 3, 2, 0, 0, 5, 0};
    int lb[2] = {3, 0}; /* row 0: 2 logits greater, row 1: 1 greater */
    report(ref_topk_correct(zb, lb, 2, 4, 1) == 0 && ref_topk_correct(zb, lb, 2, 4, 2) == 1 &&
               ref_topk_correct(zb, lb, 2, 4, 3) == 2 && ref_topk_correct(zb, lb, 2, 4, 4) == 2,
           "topk over a batch of 2");
}

static void test_optim_values(void)
{
    /* Adam, first step: m_hat = g, v_hat = g^2, so each param moves by lr*g/(|g|+eps) */
    enum { n = 6 };
    double p[n], g[n], m[n], v[n], p0[n];
    const double lr = 1e-3;
    for (int i = 0; i < n; i++) {
        p[i] = p0[i] = urand_away(0.0);
        g[i] = urand_away(0.05) * (i + 1);
        m[i] = v[i] = 0.0;
    }
    ref_adam_step(p, g, m, v, n, lr, 0.9, 0.999, 1e-8, 0.0, 1);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        const double step = p0[i] - p[i];
        ok &= fabs(step - lr * (g[i] > 0 ? 1 : -1)) <= lr * 1e-6;
        ok &= fabs(m[i] - 0.1 * g[i]) <= 1e-15 && fabs(v[i] - 0.001 * g[i] * g[i]) <= 1e-15;
    }
    report(ok, "adam first step moves each param by ~lr*sign(g); m, v by hand");
    /* second step, by hand with torch's formula */
    double pp = 1.0, mm = 0.0, vv = 0.0, g1 = 0.5, g2 = -0.25;
    ref_adam_step(&pp, &g1, &mm, &vv, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, 1);
    ref_adam_step(&pp, &g2, &mm, &vv, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, 2);
    const double m2 = 0.9 * 0.05 + 0.1 * -0.25, v2 = 0.999 * 0.00025 + 0.001 * 0.0625;
    const double p2 = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8) -
                      0.1 / (1 - 0.81) * m2 / (sqrt(v2) / sqrt(1 - 0.999 * 0.999) + 1e-8);
    report(fabs(mm - m2) < 1e-16 && fabs(vv - v2) < 1e-16 && fabs(pp - p2) < 1e-14,
           "adam two steps by hand (p %.17g, want %.17g)", pp, p2);
    /* coupled weight decay: g' = g + wd*p; g = 0, p = 2, wd = 0.5: g' = 1 -> p -= ~lr */
    double pw = 2.0, gw = 0.0, mw = 0.0, vw = 0.0;
    ref_adam_step(&pw, &gw, &mw, &vw, 1, 0.01, 0.9, 0.999, 1e-8, 0.5, 1);
    report(fabs(pw - (2.0 - 0.01)) < 1e-9 && fabs(mw - 0.1) < 1e-16,
           "adam weight decay is coupled L2 (added to the gradient)");

    /* SGD momentum 0.9, lr 0.1: p=1, g1=0.5 -> buf 0.5, p 0.95; g2=0.25 -> buf 0.7, p 0.88 */
    double ps = 1.0, buf = 123.0, gs1 = 0.5, gs2 = 0.25;
    ref_sgd_step(&ps, &gs1, &buf, 1, 0.1, 0.9, 0.0, 1);
    ok = fabs(buf - 0.5) < 1e-16 && fabs(ps - 0.95) < 1e-16;
    ref_sgd_step(&ps, &gs2, &buf, 1, 0.1, 0.9, 0.0, 0);
    ok &= fabs(buf - 0.7) < 1e-16 && fabs(ps - 0.88) < 1e-15;
    report(ok, "sgd momentum two steps by hand (p %.17g, buf %.17g)", ps, buf);
    /* with weight decay 0.1: g1' = 0.5 + 0.1 = 0.6 -> buf 0.6, p 0.94;
     * g2' = 0.25 + 0.094 = 0.344 -> buf 0.54+0.344 = 0.884, p = 0.94 - 0.0884 = 0.8516 */
    ps = 1.0;
    ref_sgd_step(&ps, &gs1, &buf, 1, 0.1, 0.9, 0.1, 1);
    ok = fabs(buf - 0.6) < 1e-15 && fabs(ps - 0.94) < 1e-15;
    ref_sgd_step(&ps, &gs2, &buf, 1, 0.1, 0.9, 0.1, 0);
    ok &= fabs(buf - 0.884) < 1e-15 && fabs(ps - 0.8516) < 1e-15;
    report(ok, "sgd momentum + weight decay two steps by hand");
    /* no momentum: plain step, buf untouched (NULL ok) */
    ps = 1.0;
    ref_sgd_step(&ps, &gs1, NULL, 1, 0.1, 0.0, 0.0, 1);
    check_val("sgd without momentum", ps, 0.95, 1e-16);
}

static void test_mask_values(void)
{
    const double c[6] = {0.5, 0.0, -0.1, 1e-9, 2.0, 1e-3};
    report(ref_mask_count(c, 6, 0.0) == 4, "mask count > 0");
    report(ref_mask_count(c, 6, 1e-3) == 2, "mask count > 1e-3 (strict)");
    double cb[6];
    memcpy(cb, c, sizeof c);
    ref_mask_binarize(cb, 6, 1e-6);
    const double cbw[6] = {1, 0, 0, 0, 1, 1};
    check_vec("mask binarize", cb, cbw, 6, 0);

    const double ct[7] = {0.5, 0.9, 0.5, 0.1, 0.5, -1.0, 0.9};
    double k[7];
    const struct {
        long B;
        double want[7];
    } cases[] = {
        {0, {0, 0, 0, 0, 0, 0, 0}},  {1, {0, 1, 0, 0, 0, 0, 0}}, {2, {0, 1, 0, 0, 0, 0, 1}},
        {3, {1, 1, 0, 0, 0, 0, 1}},  {4, {1, 1, 1, 0, 0, 0, 1}}, {5, {1, 1, 1, 0, 1, 0, 1}},
        {7, {1, 1, 1, 1, 1, 1, 1}},  {9, {1, 1, 1, 1, 1, 1, 1}}, {-1, {0, 0, 0, 0, 0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(k, ct, sizeof ct);
        ref_mask_keep_top(k, 7, cases[i].B);
        char nm[96];
        snprintf(nm, sizeof nm, "mask keep_top B=%ld with ties (lower index first)", cases[i].B);
        check_vec(nm, k, cases[i].want, 7, 0);
    }
    /* all equal: the first B */
    double ce[100];
    for (int i = 0; i < 100; i++) ce[i] = 0.3;
    ref_mask_keep_top(ce, 100, 37);
    int ok = 1;
    for (int i = 0; i < 100; i++) ok &= ce[i] == (i < 37 ? 1.0 : 0.0);
    report(ok, "mask keep_top on 100 equal values keeps the first 37");
}

/* ------------------------------------------------------------------------------ */
/* PyTorch cross-check                                                              */
/* ------------------------------------------------------------------------------ */
/* File format (both directions), all integers and doubles little-endian:
 *   "SNLX"  u32 version (1)  u32 record count
 *   per record: u32 name length, name bytes (no NUL), u64 count, count x f64
 * Integers (dims, labels, hyper-parameters) travel as doubles. */

typedef struct {
    char name[64];
    long n;
    double *v;
} rec;

typedef struct {
    rec *r;
    int n, cap;
} recset;

static void rs_add(recset *s, const char *name, const double *v, long n)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        rec *r = realloc(s->r, sizeof(rec) * (size_t)s->cap);
        if (!r) exit(2);
        s->r = r;
    }
    rec *r = &s->r[s->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->n = n;
    r->v = copy(v, n);
}

static void rs_addi(recset *s, const char *name, const int *v, long n)
{
    double *d = dalloc(n);
    for (long i = 0; i < n; i++) d[i] = v[i];
    rs_add(s, name, d, n);
}

/* "pre" + "." + "field" */
static void rs_addf(recset *s, const char *pre, const char *field, const double *v, long n)
{
    char nm[64];
    snprintf(nm, sizeof nm, "%s.%s", pre, field);
    rs_add(s, nm, v, n);
}

static void rs_free(recset *s)
{
    free(s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}

static const rec *rs_find(const recset *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->r[i].name, name) == 0) return &s->r[i];
    return NULL;
}

static void put_u32(FILE *f, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    fwrite(b, 1, 4, f);
}

static void put_u64(FILE *f, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    fwrite(b, 1, 8, f);
}

static int get_u32(FILE *f, uint32_t *v)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return 0;
    *v = 0;
    for (int i = 0; i < 4; i++) *v |= (uint32_t)b[i] << (8 * i);
    return 1;
}

static int get_u64(FILE *f, uint64_t *v)
{
    unsigned char b[8];
    if (fread(b, 1, 8, f) != 8) return 0;
    *v = 0;
    for (int i = 0; i < 8; i++) *v |= (uint64_t)b[i] << (8 * i);
    return 1;
}

static int rs_write(const recset *s, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite("SNLX", 1, 4, f);
    put_u32(f, 1);
    put_u32(f, (uint32_t)s->n);
    for (int i = 0; i < s->n; i++) {
        const rec *r = &s->r[i];
        put_u32(f, (uint32_t)strlen(r->name));
        fwrite(r->name, 1, strlen(r->name), f);
        put_u64(f, (uint64_t)r->n);
        for (long j = 0; j < r->n; j++) {
            uint64_t u;
            memcpy(&u, &r->v[j], 8);
            put_u64(f, u);
        }
    }
    return fclose(f) == 0;
}

static int rs_read(recset *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4];
    uint32_t ver, cnt;
    int ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "SNLX", 4) == 0 && get_u32(f, &ver) &&
             ver == 1 && get_u32(f, &cnt);
    for (uint32_t i = 0; ok && i < cnt; i++) {
        uint32_t len;
        uint64_t n;
        char name[64];
        ok = get_u32(f, &len) && len < sizeof name && fread(name, 1, len, f) == len &&
             get_u64(f, &n) && n < (1u << 24);
        if (!ok) break;
        name[len] = 0;
        double *v = dalloc((long)n);
        for (uint64_t j = 0; ok && j < n; j++) {
            uint64_t u = 0;
            ok = get_u64(f, &u);
            memcpy(&v[j], &u, 8);
        }
        if (ok) rs_add(s, name, v, (long)n);
    }
    fclose(f);
    return ok;
}

/* builds the inputs (into `in`) and this implementation's results (into `mine`) */
static void xcheck_build(recset *in, recset *mine)
{
    /* conv cases: stride 2 / pad 1 / odd sizes, plus a k5 pad 2 one without bias */
    const int convs[][9] = {
        {2, 3, 7, 5, 4, 3, 2, 1, 1},
        {1, 2, 9, 6, 3, 5, 2, 2, 0},
        {3, 3, 5, 7, 2, 1, 2, 0, 1},
    };
    for (int ci = 0; ci < 3; ci++) {
        const int *d = convs[ci];
        const int N = d[0], C = d[1], H = d[2], W = d[3], K = d[4], k = d[5], s = d[6], p = d[7];
        const int P = ref_out_size(H, k, s, p), Q = ref_out_size(W, k, s, p);
        const long nx = (long)N * C * H * W, nw = (long)K * C * k * k, ny = (long)N * K * P * Q;
        char pre[32];
        snprintf(pre, sizeof pre, "conv%d", ci);
        double dims[9];
        for (int i = 0; i < 9; i++) dims[i] = d[i];
        double *x = rnd(nx), *w = rnd(nw), *b = d[8] ? rnd(K) : NULL, *r = rnd(ny);
        double *y = dalloc(ny), *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc(K);
        rs_addf(in, pre, "dims", dims, 9);
        rs_addf(in, pre, "x", x, nx);
        rs_addf(in, pre, "w", w, nw);
        if (b) rs_addf(in, pre, "b", b, K);
        rs_addf(in, pre, "r", r, ny);
        ref_conv2d_forward(x, w, b, y, N, C, H, W, K, k, s, p);
        ref_conv2d_backward_data(r, w, dx, N, C, H, W, K, k, s, p);
        ref_conv2d_backward_filter(r, x, dw, b ? db : NULL, N, C, H, W, K, k, s, p);
        rs_addf(mine, pre, "y", y, ny);
        rs_addf(mine, pre, "dx", dx, nx);
        rs_addf(mine, pre, "dw", dw, nw);
        if (b) rs_addf(mine, pre, "db", db, K);
    }
    /* batchnorm train (+ running stats, saved stats) and then eval with the new stats */
    {
        const int N = 3, C = 4, H = 5, W = 3;
        const long nx = (long)N * C * H * W;
        const double dims[6] = {N, C, H, W, 0.1, 1e-5};
        double *x = rnd(nx), *g = rnd(C), *b = rnd(C), *rm = rnd(C), *rv = rnd(C), *r = rnd(nx);
        for (int i = 0; i < nx; i++) x[i] = 3.0 * x[i] + 0.5; /* nonzero mean, var != 1 */
        for (int i = 0; i < C; i++) rv[i] = fabs(rv[i]) + 0.5;
        rs_addf(in, "bn0", "dims", dims, 6);
        rs_addf(in, "bn0", "x", x, nx);
        rs_addf(in, "bn0", "gamma", g, C);
        rs_addf(in, "bn0", "beta", b, C);
        rs_addf(in, "bn0", "rm", rm, C);
        rs_addf(in, "bn0", "rv", rv, C);
        rs_addf(in, "bn0", "r", r, nx);
        double *y = dalloc(nx), *sm = dalloc(C), *si = dalloc(C), *dx = dalloc(nx);
        double *dg = dalloc(C), *dbt = dalloc(C), *ye = dalloc(nx);
        ref_bn_forward_train(x, g, b, rm, rv, y, sm, si, N, C, H, W, 0.1, 1e-5);
        ref_bn_backward(r, x, g, sm, si, dx, dg, dbt, N, C, H, W);
        ref_bn_forward_eval(x, g, b, rm, rv, ye, N, C, H, W, 1e-5);
        rs_addf(mine, "bn0", "y", y, nx);
        rs_addf(mine, "bn0", "dx", dx, nx);
        rs_addf(mine, "bn0", "dgamma", dg, C);
        rs_addf(mine, "bn0", "dbeta", dbt, C);
        rs_addf(mine, "bn0", "rm", rm, C);
        rs_addf(mine, "bn0", "rv", rv, C);
        rs_addf(mine, "bn0", "save_mean", sm, C);
        rs_addf(mine, "bn0", "save_invstd", si, C);
        rs_addf(mine, "bn0", "y_eval", ye, nx);
    }
    /* cross entropy */
    {
        const int N = 5, K = 7;
        const double dims[2] = {N, K};
        double *z = rnd((long)N * K), *dz = dalloc((long)N * K), lab[5];
        int labels[5];
        for (int i = 0; i < N * K; i++) z[i] *= 4.0;
        for (int n = 0; n < N; n++) lab[n] = labels[n] = (int)(rng_u64() % K);
        rs_addf(in, "ce0", "dims", dims, 2);
        rs_addf(in, "ce0", "z", z, (long)N * K);
        rs_addf(in, "ce0", "labels", lab, N);
        double loss = ref_cross_entropy(z, labels, dz, N, K);
        rs_addf(mine, "ce0", "loss", &loss, 1);
        rs_addf(mine, "ce0", "dz", dz, (long)N * K);
    }
    /* kd loss */
    {
        const int N = 4, K = 6;
        const double T = 4.0, dims[3] = {N, K, T};
        double *s = rnd((long)N * K), *t = rnd((long)N * K), *ds = dalloc((long)N * K);
        for (int i = 0; i < N * K; i++) {
            s[i] *= 8.0;
            t[i] *= 8.0;
        }
        rs_addf(in, "kd0", "dims", dims, 3);
        rs_addf(in, "kd0", "s", s, (long)N * K);
        rs_addf(in, "kd0", "t", t, (long)N * K);
        double loss = ref_kd_loss(s, t, ds, N, K, T);
        rs_addf(mine, "kd0", "loss", &loss, 1);
        rs_addf(mine, "kd0", "ds", ds, (long)N * K);
    }
    /* Adam: three steps from p with fresh state */
    {
        const long n = 12;
        const int steps = 3;
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 1e-2;
        const double dims[7] = {(double)n, steps, lr, b1, b2, eps, wd};
        double *p = rnd(n), *g = rnd(n * steps), *m = dalloc(n), *v = dalloc(n);
        rs_addf(in, "adam0", "dims", dims, 7);
        rs_addf(in, "adam0", "p", p, n);
        rs_addf(in, "adam0", "g", g, n * steps);
        for (int t = 1; t <= steps; t++) ref_adam_step(p, g + (t - 1) * n, m, v, n, lr, b1, b2, eps, wd, t);
        rs_addf(mine, "adam0", "p", p, n);
        rs_addf(mine, "adam0", "m", m, n);
        rs_addf(mine, "adam0", "v", v, n);
    }
    /* SGD momentum: three steps */
    {
        const long n = 12;
        const int steps = 3;
        const double lr = 0.05, mom = 0.9, wd = 1e-3;
        const double dims[5] = {(double)n, steps, lr, mom, wd};
        double *p = rnd(n), *g = rnd(n * steps), *buf = dalloc(n);
        rs_addf(in, "sgd0", "dims", dims, 5);
        rs_addf(in, "sgd0", "p", p, n);
        rs_addf(in, "sgd0", "g", g, n * steps);
        for (int t = 0; t < steps; t++) ref_sgd_step(p, g + t * n, buf, n, lr, mom, wd, t == 0);
        rs_addf(mine, "sgd0", "p", p, n);
        rs_addf(mine, "sgd0", "buf", buf, n);
    }
    /* max pool k3 s2 p1 on odd sizes, avg pool k3 s2 and global, linear, masked relu */
    {
        const int N = 2, C = 3, H = 7, W = 5, k = 3, s = 2, p = 1;
        const long nx = (long)N * C * H * W;
        const long ny = (long)N * C * ref_out_size(H, k, s, p) * ref_out_size(W, k, s, p);
        const double dims[7] = {N, C, H, W, k, s, p};
        double *x = rnd(nx), *r = rnd(ny), *y = dalloc(ny), *dx = dalloc(nx);
        int *am = ialloc(ny);
        rs_addf(in, "maxpool0", "dims", dims, 7);
        rs_addf(in, "maxpool0", "x", x, nx);
        rs_addf(in, "maxpool0", "r", r, ny);
        ref_maxpool_forward(x, y, am, N, C, H, W, k, s, p);
        ref_maxpool_backward(r, am, dx, N, C, H, W, k, s, p);
        rs_addf(mine, "maxpool0", "y", y, ny);
        rs_addi(mine, "maxpool0.idx", am, ny);
        rs_addf(mine, "maxpool0", "dx", dx, nx);
    }
    const int avgs[][6] = {{2, 3, 7, 5, 3, 2}, {3, 2, 5, 5, 5, 5}};
    for (int ai = 0; ai < 2; ai++) {
        const int *d = avgs[ai];
        const int N = d[0], C = d[1], H = d[2], W = d[3], k = d[4], s = d[5];
        const long nx = (long)N * C * H * W;
        const long ny = (long)N * C * ref_out_size(H, k, s, 0) * ref_out_size(W, k, s, 0);
        char pre[32];
        snprintf(pre, sizeof pre, "avgpool%d", ai);
        double dims[6];
        for (int i = 0; i < 6; i++) dims[i] = d[i];
        double *x = rnd(nx), *r = rnd(ny), *y = dalloc(ny), *dx = dalloc(nx);
        rs_addf(in, pre, "dims", dims, 6);
        rs_addf(in, pre, "x", x, nx);
        rs_addf(in, pre, "r", r, ny);
        ref_avgpool_forward(x, y, N, C, H, W, k, s);
        ref_avgpool_backward(r, dx, N, C, H, W, k, s);
        rs_addf(mine, pre, "y", y, ny);
        rs_addf(mine, pre, "dx", dx, nx);
    }
    {
        const int N = 3, I = 7, O = 5;
        const double dims[3] = {N, I, O};
        double *x = rnd((long)N * I), *w = rnd((long)O * I), *b = rnd(O), *r = rnd((long)N * O);
        double *y = dalloc((long)N * O), *dx = dalloc((long)N * I), *dw = dalloc((long)O * I),
               *db = dalloc(O);
        rs_addf(in, "linear0", "dims", dims, 3);
        rs_addf(in, "linear0", "x", x, (long)N * I);
        rs_addf(in, "linear0", "w", w, (long)O * I);
        rs_addf(in, "linear0", "b", b, O);
        rs_addf(in, "linear0", "r", r, (long)N * O);
        ref_linear_forward(x, w, b, y, N, I, O);
        ref_linear_backward(r, x, w, dx, dw, db, N, I, O);
        rs_addf(mine, "linear0", "y", y, (long)N * O);
        rs_addf(mine, "linear0", "dx", dx, (long)N * I);
        rs_addf(mine, "linear0", "dw", dw, (long)O * I);
        rs_addf(mine, "linear0", "db", db, O);
    }
    for (int ch = 0; ch < 2; ch++) {
        const int N = 2, C = 3, H = 5, W = 3;
        const double lambda = 0.1;
        const long nx = (long)N * C * H * W, nc = ch ? C : (long)C * H * W;
        const double dims[6] = {N, C, H, W, ch, lambda};
        char pre[32];
        snprintf(pre, sizeof pre, "mrelu%d", ch);
        double *x = rnd(nx), *c = rnd(nc), *r = rnd(nx);
        c[0] = 0.0; /* sign(0) = 0 */
        double *y = dalloc(nx), *dx = dalloc(nx), *dc = dalloc(nc);
        rs_addf(in, pre, "dims", dims, 6);
        rs_addf(in, pre, "x", x, nx);
        rs_addf(in, pre, "c", c, nc);
        rs_addf(in, pre, "r", r, nx);
        ref_masked_relu_forward(x, c, y, N, C, H, W, ch);
        ref_masked_relu_backward(r, x, c, dx, dc, lambda, N, C, H, W, ch);
        rs_addf(mine, pre, "y", y, nx);
        rs_addf(mine, pre, "dx", dx, nx);
        rs_addf(mine, pre, "dc", dc, nc);
    }
}

static int file_ok(const char *path, int mode) { return path && access(path, mode) == 0; }

static void test_torch_crosscheck(void)
{
    const char *py = getenv("SNLVK_PYTHON");
    if (!py || !*py) py = "/usr/bin/python3";
    char script[4096] = "";
    const char *env_script = getenv("SNLVK_CROSSCHECK_SCRIPT");
    if (env_script && *env_script) {
        snprintf(script, sizeof script, "%s", env_script);
    } else {
        /* next to this source file: <dir of __FILE__>/../tools/ref_crosscheck.py */
        char here[2048];
        snprintf(here, sizeof here, "%s", __FILE__);
        char *slash = strrchr(here, '/');
        if (slash) {
            *slash = 0;
            snprintf(script, sizeof script, "%s/../tools/ref_crosscheck.py", here);
        } else {
            snprintf(script, sizeof script, "../tools/ref_crosscheck.py");
        }
        const char *alts[] = {"tools/ref_crosscheck.py", "../tools/ref_crosscheck.py"};
        for (int i = 0; i < 2 && !file_ok(script, R_OK); i++) snprintf(script, sizeof script, "%s", alts[i]);
    }
    if (!file_ok(py, X_OK)) {
        printf("SKIP torch crosscheck: %s not found\n", py);
        return;
    }
    if (!file_ok(script, R_OK)) {
        printf("SKIP torch crosscheck: tools/ref_crosscheck.py not found (set SNLVK_CROSSCHECK_SCRIPT)\n");
        return;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/snlvk_xcheck_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        report(0, "torch crosscheck: cannot create a temporary directory");
        return;
    }
    char inpath[4200], outpath[4200], cmd[13000];
    snprintf(inpath, sizeof inpath, "%s/in.bin", dir);
    snprintf(outpath, sizeof outpath, "%s/out.bin", dir);

    recset in = {0}, mine = {0}, theirs = {0};
    xcheck_build(&in, &mine);
    if (!rs_write(&in, inpath)) {
        report(0, "torch crosscheck: cannot write %s", inpath);
        goto cleanup;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, script, inpath, outpath);
    fflush(stdout);
    int st = system(cmd);
    int rc = st == -1 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    if (rc == 77) {
        printf("SKIP torch crosscheck: %s cannot import torch\n", py);
        goto cleanup;
    }
    if (rc != 0) {
        report(0, "torch crosscheck: %s exited with status %d", script, rc);
        goto cleanup;
    }
    if (!rs_read(&theirs, outpath)) {
        report(0, "torch crosscheck: cannot read %s", outpath);
        goto cleanup;
    }
    for (int i = 0; i < mine.n; i++) {
        const rec *a = &mine.r[i];
        const rec *b = rs_find(&theirs, a->name);
        if (!b || b->n != a->n) {
            report(0, "torch crosscheck %s: %s", a->name, b ? "size differs" : "missing in torch output");
            continue;
        }
        double scale = 0.0;
        for (long j = 0; j < b->n; j++) scale = fmax(scale, fabs(b->v[j]));
        /* relative per entry, floored at 1e-3 of the largest entry (exact zeros, cancellation) */
        double e = max_rel_err(a->v, b->v, a->n, fmax(1e-3 * scale, 1e-300));
        report(e <= XCHECK_TOL, "torch crosscheck %s (%ld entries, max rel err %.2e)", a->name, a->n, e);
    }
cleanup:
    remove(inpath);
    remove(outpath);
    rmdir(dir);
    rs_free(&in);
    rs_free(&mine);
    rs_free(&theirs);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_conv_values();
    test_bn_values();
    test_mrelu_values();
    test_pool_values();
    test_linear_values();
    test_loss_values();
    test_optim_values();
    test_mask_values();
    test_fd();
    test_torch_crosscheck();
    arena_free();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
