/* `snlvk bench --ops`: every op at the layer shapes of a model, timed with GPU
 * timestamps (median of repeats), with FLOP and byte counts for throughput. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv.h"

typedef struct bench_env {
    snlvk_context *ctx;
    int reps;
    const char *filter;
    snlvk_op_bench_fn cb;
    void *user;
    vk_buf bufs[8];
    int n_bufs;
} bench_env;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A buffer of n random floats in [-1, 1), freed at the end of the case. */
static snlvk_status rand_buf(bench_env *e, size_t n, vk_buf **out)
{
    if (e->n_bufs == 8) return snlvk_fail(SNLVK_E_INVALID, "internal: too many benchmark buffers");
    vk_buf *b = &e->bufs[e->n_bufs];
    SNLVK_TRY(vk_buf_alloc(e->ctx, n * 4, b));
    e->n_bufs++;
    float *h = malloc(n * 4);
    if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    uint64_t s = 0x243f6a8885a308d3ull ^ n;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = (float)((double)(s >> 40) / (double)(1ull << 23)) - 1.0f;
    }
    snlvk_status st = vk_buf_write(e->ctx, b, 0, h, n * 4);
    free(h);
    *out = b;
    return st;
}

static void free_bufs(bench_env *e)
{
    for (int i = 0; i < e->n_bufs; i++) vk_buf_free(e->ctx, &e->bufs[i]);
    e->n_bufs = 0;
}

/* Times `seq` (recorded with timestamps, one command) and reports it. */
static snlvk_status time_and_report(bench_env *e, vk_seq *seq, snlvk_op_bench *r)
{
    double *ms = calloc((size_t)e->reps, sizeof *ms);
    if (!ms) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    snlvk_status s = vk_seq_run(seq); /* warm-up */
    for (int i = 0; i < e->reps && s == SNLVK_OK; i++) {
        double t[64];
        int n = 0;
        s = vk_seq_run(seq);
        if (s == SNLVK_OK) s = vk_seq_times(seq, t, 64, &n);
        ms[i] = 0;
        for (int k = 0; k < n; k++) ms[i] += t[k];
    }
    if (s == SNLVK_OK) {
        qsort(ms, (size_t)e->reps, sizeof *ms, cmp_double);
        r->reps = e->reps;
        r->min_ms = ms[0];
        r->median_ms = e->reps % 2 ? ms[e->reps / 2] : 0.5 * (ms[e->reps / 2 - 1] + ms[e->reps / 2]);
        e->cb(e->user, r);
    }
    free(ms);
    return s;
}

static int wanted(const bench_env *e, const char *op)
{
    return !e->filter || strstr(op, e->filter) != NULL;
}

static snlvk_status bench_conv(bench_env *e, const conv_shape *cs)
{
    static const char *ops[3] = {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter"};
    uint32_t P = conv_out_h(cs), Q = conv_out_w(cs);
    size_t nx = (size_t)cs->n * cs->c * cs->h * cs->w, nw = (size_t)cs->k * cs->c * cs->ksize * cs->ksize;
    size_t ny = (size_t)cs->n * cs->k * P * Q;
    for (int mode = 0; mode < 3; mode++) {
        if (!wanted(e, ops[mode])) continue;
        vk_buf *x, *w, *y, *ws;
        snlvk_status s = rand_buf(e, conv_workspace_bytes(cs) / 4, &ws);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 1 ? ny : nx, &x);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 2 ? ny : nw, &w);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 0 ? ny : mode == 1 ? nx : nw, &y);
        vk_seq *q = NULL;
        if (s == SNLVK_OK) s = vk_seq_create(e->ctx, &q);
        if (s == SNLVK_OK) s = vk_seq_begin(q, 1);
        if (s == SNLVK_OK) {
            if (mode == 0) s = op_conv2d_forward(q, e->ctx, cs, x, w, NULL, y, GEMM_AUTO);
            else if (mode == 1) s = op_conv2d_backward_data(q, e->ctx, cs, x, w, y, ws, 0.0f, GEMM_AUTO);
            else s = op_conv2d_backward_filter(q, e->ctx, cs, w, x, y, 0.0f, GEMM_AUTO);
        }
        if (s == SNLVK_OK) s = vk_seq_end(q);
        snlvk_op_bench r;
        memset(&r, 0, sizeof r);
        snprintf(r.op, sizeof r.op, "%s", ops[mode]);
        snprintf(r.shape, sizeof r.shape, "n%u c%u %ux%u -> k%u %ux%u s%u p%u", cs->n, cs->c, cs->h, cs->w, cs->k,
                 cs->ksize, cs->ksize, cs->stride, cs->pad);
        snprintf(r.variant, sizeof r.variant, "%s", gemm_variant_name(gemm_pick_variant(e->ctx, GEMM_AUTO)));
        r.flops = 2.0 * (double)ny * cs->c * cs->ksize * cs->ksize;
        r.bytes = 4.0 * (double)(nx + nw + ny);
        if (s == SNLVK_OK) s = time_and_report(e, q, &r);
        vk_seq_destroy(q);
        free_bufs(e);
        SNLVK_TRY(s);
    }
    return SNLVK_OK;
}

static snlvk_status bench_gemm_case(bench_env *e, uint32_t m, uint32_t n, uint32_t k, int trans_b, const char *label)
{
    if (!wanted(e, "linear")) return SNLVK_OK;
    vk_buf *a, *b, *c;
    SNLVK_TRY(rand_buf(e, (size_t)m * k, &a));
    SNLVK_TRY(rand_buf(e, (size_t)k * n, &b));
    SNLVK_TRY(rand_buf(e, (size_t)m * n, &c));
    vk_seq *q = NULL;
    snlvk_status s = vk_seq_create(e->ctx, &q);
    gemm_args g = {.a = a, .b = b, .c = c, .m = m, .n = n, .k = k, .trans_b = trans_b, .alpha = 1.0f};
    if (s == SNLVK_OK) s = vk_seq_begin(q, 1);
    if (s == SNLVK_OK) s = op_gemm(q, e->ctx, &g);
    if (s == SNLVK_OK) s = vk_seq_end(q);
    snlvk_op_bench r;
    memset(&r, 0, sizeof r);
    snprintf(r.op, sizeof r.op, "%s", label);
    snprintf(r.shape, sizeof r.shape, "%ux%ux%u", m, n, k);
    snprintf(r.variant, sizeof r.variant, "%s", gemm_variant_name(gemm_pick_variant(e->ctx, GEMM_AUTO)));
    r.flops = 2.0 * m * n * (double)k;
    r.bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n);
    if (s == SNLVK_OK) s = time_and_report(e, q, &r);
    vk_seq_destroy(q);
    free_bufs(e);
    return s;
}

snlvk_status snlvk_bench_ops(snlvk_context *ctx, const char *model, int batch, int reps, const char *filter,
                             snlvk_op_bench_fn cb, void *user)
{
    if (batch <= 0 || reps <= 0) return snlvk_fail(SNLVK_E_INVALID, "bench: batch and repeats must be positive");
    bench_env e = {.ctx = ctx, .reps = reps, .filter = filter, .cb = cb, .user = user};
    uint32_t n = (uint32_t)batch;
    if (strcmp(model, "resnet18") == 0) {
        const conv_shape convs[] = {
            {n, 3, 32, 32, 64, 3, 1, 1},    {n, 64, 32, 32, 64, 3, 1, 1},   {n, 64, 32, 32, 128, 3, 2, 1},
            {n, 128, 16, 16, 128, 3, 1, 1}, {n, 64, 32, 32, 128, 1, 2, 0},  {n, 256, 8, 8, 256, 3, 1, 1},
            {n, 512, 4, 4, 512, 3, 1, 1},
        };
        for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) SNLVK_TRY(bench_conv(&e, &convs[i]));
        SNLVK_TRY(bench_gemm_case(&e, n, 10, 512, 1, "linear_forward"));
    } else if (strcmp(model, "resnet8-mini") == 0) {
        const conv_shape convs[] = {
            {n, 1, 28, 28, 16, 3, 1, 1},  {n, 16, 28, 28, 16, 3, 1, 1}, {n, 16, 28, 28, 32, 3, 2, 1},
            {n, 32, 14, 14, 32, 3, 1, 1}, {n, 32, 14, 14, 64, 3, 2, 1}, {n, 64, 7, 7, 64, 3, 1, 1},
        };
        for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) SNLVK_TRY(bench_conv(&e, &convs[i]));
        SNLVK_TRY(bench_gemm_case(&e, n, 10, 64, 1, "linear_forward"));
    } else
        return snlvk_fail(SNLVK_E_INVALID, "bench: model '%s': expected resnet18 or resnet8-mini", model);
    return SNLVK_OK;
}
