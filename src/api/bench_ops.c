/* `snlvk bench --ops`: every op family of the training step at the layer shapes of a
 * model, timed with GPU timestamps (median of repeats), with FLOP and byte counts for
 * throughput. Memory-bound ops report flops = 0 and, as `bytes`, the tensors they must
 * read and write once (a lower bound on their traffic). tools/bench_torch.py times the
 * same ops under the same op names and shape strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/batchnorm.h"
#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/loss.h"
#include "ops/mask.h"
#include "ops/masked_relu.h"
#include "ops/optim.h"
#include "ops/pool.h"
#include "ops/step_params.h"

typedef struct bench_env {
    snlvk_context *ctx;
    int reps;
    const char *filter;
    snlvk_op_bench_fn cb;
    void *user;
    vk_buf bufs[12];
    int n_bufs;
} bench_env;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The next free buffer slot of the case (freed at its end). */
static snlvk_status next_buf(bench_env *e, vk_buf **out)
{
    *out = NULL;
    if (e->n_bufs == (int)(sizeof e->bufs / sizeof *e->bufs))
        return snlvk_fail(SNLVK_E_INVALID, "internal: too many benchmark buffers");
    *out = &e->bufs[e->n_bufs];
    return SNLVK_OK;
}

/* A zeroed buffer of `bytes`, freed at the end of the case. */
static snlvk_status zero_buf(bench_env *e, size_t bytes, vk_buf **out)
{
    vk_buf *b = NULL;
    SNLVK_TRY(next_buf(e, &b));
    SNLVK_TRY(vk_buf_alloc(e->ctx, bytes, b));
    e->n_bufs++;
    *out = b;
    return vk_buf_fill(e->ctx, b, 0);
}

/* A buffer of n random floats in [lo, hi), freed at the end of the case. */
static snlvk_status rand_buf_in(bench_env *e, size_t n, float lo, float hi, vk_buf **out)
{
    vk_buf *b = NULL;
    SNLVK_TRY(next_buf(e, &b));
    SNLVK_TRY(vk_buf_alloc(e->ctx, n * 4, b));
    e->n_bufs++;
    float *h = malloc(n * 4);
    if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    uint64_t s = 0x243f6a8885a308d3ull ^ n ^ ((uint64_t)e->n_bufs << 32);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = lo + (hi - lo) * (float)((double)(s >> 40) / (double)(1ull << 24));
    }
    snlvk_status st = vk_buf_write(e->ctx, b, 0, h, n * 4);
    free(h);
    *out = b;
    return st;
}

static snlvk_status rand_buf(bench_env *e, size_t n, vk_buf **out) { return rand_buf_in(e, n, -1.0f, 1.0f, out); }

/* A step-params block as a training step would have it: Adam's defaults at t = 10, SGD
 * momentum 0.9 past its first step, a Lasso lambda, KD at T = 4. */
static snlvk_status params_buf(bench_env *e, vk_buf **out)
{
    vk_buf *b = NULL;
    SNLVK_TRY(next_buf(e, &b));
    SNLVK_TRY(step_params_alloc(e->ctx, b));
    e->n_bufs++;
    step_params p;
    step_params_default(&p);
    p.momentum = 0.9f;
    p.sgd_first_step = 0;
    p.adam_step = 10;
    p.snl_lambda = 1e-3f;
    *out = b;
    return step_params_write(e->ctx, b, &p);
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
        vk_buf *x = NULL, *w = NULL, *y = NULL, *ws = NULL;
        snlvk_status s = rand_buf(e, conv_workspace_bytes(e->ctx, cs, GEMM_AUTO) / 4, &ws);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 1 ? ny : nx, &x);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 2 ? ny : nw, &w);
        if (s == SNLVK_OK) s = rand_buf(e, mode == 0 ? ny : mode == 1 ? nx : nw, &y);
        vk_seq *q = NULL;
        if (s == SNLVK_OK) s = vk_seq_create(e->ctx, &q);
        if (s == SNLVK_OK) s = vk_seq_begin(q, 1);
        if (s == SNLVK_OK) {
            /* each op as models run it, with the workspace */
            if (mode == 0) s = op_conv2d_forward(q, e->ctx, cs, x, w, NULL, y, ws, GEMM_AUTO);
            else if (mode == 1) s = op_conv2d_backward_data(q, e->ctx, cs, x, w, y, ws, 0.0f, GEMM_AUTO);
            else s = op_conv2d_backward_filter(q, e->ctx, cs, w, x, y, ws, 0.0f, GEMM_AUTO);
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

/* A recorded case: a sequence with timestamps, begun. */
static snlvk_status start_case(bench_env *e, vk_seq **q)
{
    *q = NULL;
    SNLVK_TRY(vk_seq_create(e->ctx, q));
    return vk_seq_begin(*q, 1);
}

/* Ends, times and reports the case recorded into q (when s is OK), then frees its
 * sequence and buffers whatever happened. */
static snlvk_status finish_case(bench_env *e, vk_seq *q, snlvk_status s, snlvk_op_bench *r)
{
    if (s == SNLVK_OK) s = vk_seq_end(q);
    if (s == SNLVK_OK) s = time_and_report(e, q, r);
    vk_seq_destroy(q);
    free_bufs(e);
    return s;
}

static void init_result(snlvk_op_bench *r, const char *op, const char *variant, double flops, double bytes)
{
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->variant, sizeof r->variant, "%s", variant);
    r->flops = flops;
    r->bytes = bytes;
}

/* An activation shape of the model, without the batch. */
typedef struct act_shape {
    uint32_t c, h, w;
} act_shape;

static void act_str(char *dst, size_t cap, uint32_t n, const act_shape *a)
{
    snprintf(dst, cap, "n%u c%u %ux%u", n, a->c, a->h, a->w);
}

/* linear_forward Y = X W^T, linear_backward_weight dW = dY^T X, linear_backward_data
 * dX = dY W, as the model records them; `m x n x k` of the product. */
static snlvk_status bench_gemm_case(bench_env *e, const char *label, uint32_t m, uint32_t n, uint32_t k, int trans_a,
                                    int trans_b)
{
    if (!wanted(e, label)) return SNLVK_OK;
    vk_buf *a = NULL, *b = NULL, *c = NULL;
    vk_seq *q = NULL;
    snlvk_status s = rand_buf(e, (size_t)m * k, &a);
    if (s == SNLVK_OK) s = rand_buf(e, (size_t)k * n, &b);
    if (s == SNLVK_OK) s = rand_buf(e, (size_t)m * n, &c);
    if (s == SNLVK_OK) s = start_case(e, &q);
    gemm_args g = {.m = m, .n = n, .k = k, .trans_a = trans_a, .trans_b = trans_b, .alpha = 1.0f};
    if (s == SNLVK_OK) {
        g.a = a, g.b = b, g.c = c;
        s = op_gemm(q, e->ctx, &g);
    }
    snlvk_op_bench r;
    init_result(&r, label, gemm_variant_name(gemm_pick_variant(e->ctx, GEMM_AUTO)), 2.0 * m * n * (double)k,
                4.0 * ((double)m * k + (double)k * n + (double)m * n));
    snprintf(r.shape, sizeof r.shape, "%ux%ux%u", m, n, k);
    return finish_case(e, q, s, &r);
}

/* bn_forward_train (batch statistics + running-stat update), bn_forward_eval, bn_backward
 * (dx, dgamma, dbeta through the batch statistics). */
static snlvk_status bench_bn(bench_env *e, uint32_t n, const act_shape *a)
{
    static const char *ops[3] = {"bn_forward_train", "bn_forward_eval", "bn_backward"};
    bn_shape bs = {n, a->c, a->h, a->w};
    size_t nx = (size_t)n * a->c * a->h * a->w, c = a->c;
    for (int mode = 0; mode < 3; mode++) {
        if (!wanted(e, ops[mode])) continue;
        vk_buf *x = NULL, *y = NULL, *gamma = NULL, *v0 = NULL, *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL;
        vk_seq *q = NULL;
        /* train: beta, running mean/var, save mean/invstd; eval: beta, running mean/var;
         * backward: dy = y, save mean/invstd, dgamma, dbeta. */
        snlvk_status s = rand_buf(e, nx, &x);
        if (s == SNLVK_OK) s = rand_buf(e, nx, &y);
        if (s == SNLVK_OK) s = rand_buf_in(e, c, 0.5f, 1.5f, &gamma);
        if (s == SNLVK_OK) s = rand_buf(e, c, &v0);
        if (s == SNLVK_OK) s = rand_buf_in(e, c, 0.5f, 1.5f, &v1);
        if (s == SNLVK_OK) s = rand_buf_in(e, c, 0.5f, 1.5f, &v2);
        if (s == SNLVK_OK) s = rand_buf_in(e, c, 0.5f, 1.5f, &v3);
        if (s == SNLVK_OK) s = rand_buf(e, c, &v4);
        if (s == SNLVK_OK) s = start_case(e, &q);
        double bytes = 0;
        if (mode == 0) {
            /* x in, y out; gamma, beta, running mean/var in; running mean/var, save out */
            if (s == SNLVK_OK)
                s = op_bn_forward_train(q, e->ctx, &bs, x, gamma, v0, v4, v1, y, v2, v3, BN_MOMENTUM, BN_EPS);
            bytes = 4.0 * (2.0 * nx + 8.0 * c);
        } else if (mode == 1) {
            if (s == SNLVK_OK) s = op_bn_forward_eval(q, e->ctx, &bs, x, gamma, v0, v4, v1, y, BN_EPS);
            bytes = 4.0 * (2.0 * nx + 4.0 * c);
        } else {
            /* y is dy; v4, v1 the saved mean / invstd; v0, v2 receive dgamma, dbeta */
            vk_buf *dx = NULL;
            if (s == SNLVK_OK) s = zero_buf(e, nx * 4, &dx);
            if (s == SNLVK_OK) s = op_bn_backward(q, e->ctx, &bs, y, x, gamma, v4, v1, dx, v0, v2, 0.0f);
            bytes = 4.0 * (3.0 * nx + 5.0 * c);
        }
        snlvk_op_bench r;
        init_result(&r, ops[mode], "-", 0, bytes);
        act_str(r.shape, sizeof r.shape, n, a);
        SNLVK_TRY(finish_case(e, q, s, &r));
    }
    return SNLVK_OK;
}

/* The SNL masked ReLU with a pixel mask: forward, and backward with the mask gradient and
 * the Lasso term (lambda from the step-params buffer), as the mask phase records it. */
static snlvk_status bench_mrelu(bench_env *e, uint32_t n, const act_shape *a)
{
    static const char *ops[2] = {"masked_relu_forward", "masked_relu_backward"};
    mrelu_shape ms = {n, a->c, a->h, a->w, 0};
    size_t nx = (size_t)n * a->c * a->h * a->w, nm = mrelu_mask_size(&ms);
    for (int mode = 0; mode < 2; mode++) {
        if (!wanted(e, ops[mode])) continue;
        vk_buf *x = NULL, *mask = NULL, *y = NULL, *dy = NULL, *dc = NULL, *params = NULL;
        vk_seq *q = NULL;
        snlvk_status s = rand_buf(e, nx, &x);
        if (s == SNLVK_OK) s = rand_buf_in(e, nm, 0.0f, 1.0f, &mask);
        if (s == SNLVK_OK) s = zero_buf(e, nx * 4, &y);
        if (mode == 1) {
            if (s == SNLVK_OK) s = rand_buf(e, nx, &dy);
            if (s == SNLVK_OK) s = zero_buf(e, nm * 4, &dc);
            if (s == SNLVK_OK) s = params_buf(e, &params);
        }
        if (s == SNLVK_OK) s = start_case(e, &q);
        if (s == SNLVK_OK) {
            if (mode == 0) s = op_masked_relu_forward(q, e->ctx, &ms, x, mask, y);
            else
                s = op_masked_relu_backward(q, e->ctx, &ms, dy, x, mask, y, dc, params,
                                            STEP_PARAMS_INDEX(snl_lambda));
        }
        snlvk_op_bench r;
        /* forward: x, mask in, y out; backward: dy, x, mask in, dx, dc out */
        init_result(&r, ops[mode], "pixel", 0, mode == 0 ? 4.0 * (2.0 * nx + nm) : 4.0 * (3.0 * nx + 2.0 * nm));
        act_str(r.shape, sizeof r.shape, n, a);
        SNLVK_TRY(finish_case(e, q, s, &r));
    }
    return SNLVK_OK;
}

/* The residual join y = a + b (op_axpby). */
static snlvk_status bench_add(bench_env *e, uint32_t n, const act_shape *a)
{
    if (!wanted(e, "add")) return SNLVK_OK;
    size_t nx = (size_t)n * a->c * a->h * a->w;
    vk_buf *x0 = NULL, *x1 = NULL, *y = NULL;
    vk_seq *q = NULL;
    snlvk_status s = rand_buf(e, nx, &x0);
    if (s == SNLVK_OK) s = rand_buf(e, nx, &x1);
    if (s == SNLVK_OK) s = zero_buf(e, nx * 4, &y);
    if (s == SNLVK_OK) s = start_case(e, &q);
    if (s == SNLVK_OK) s = op_axpby(q, e->ctx, x0, x1, y, (uint32_t)nx, 1.0f, 1.0f);
    snlvk_op_bench r;
    init_result(&r, "add", "-", 0, 4.0 * 3.0 * nx);
    act_str(r.shape, sizeof r.shape, n, a);
    return finish_case(e, q, s, &r);
}

/* The global average pool before the classifier, forward and backward. */
static snlvk_status bench_gap(bench_env *e, uint32_t n, const act_shape *a)
{
    static const char *ops[2] = {"avgpool_forward", "avgpool_backward"};
    pool_shape ps = {n, a->c, a->h, a->w, a->h, a->h, 0};
    size_t nx = (size_t)n * a->c * a->h * a->w, ny = (size_t)n * a->c;
    for (int mode = 0; mode < 2; mode++) {
        if (!wanted(e, ops[mode])) continue;
        vk_buf *x = NULL, *y = NULL;
        vk_seq *q = NULL;
        snlvk_status s = rand_buf(e, nx, &x);
        if (s == SNLVK_OK) s = rand_buf(e, ny, &y);
        if (s == SNLVK_OK) s = start_case(e, &q);
        if (s == SNLVK_OK)
            s = mode == 0 ? op_avgpool_forward(q, e->ctx, &ps, x, y) : op_avgpool_backward(q, e->ctx, &ps, y, x);
        snlvk_op_bench r;
        init_result(&r, ops[mode], "-", 0, 4.0 * (double)(nx + ny));
        act_str(r.shape, sizeof r.shape, n, a);
        SNLVK_TRY(finish_case(e, q, s, &r));
    }
    return SNLVK_OK;
}

/* Cross-entropy + KD against a teacher (T = 4), loss values and d logits, with the
 * device-side metrics. */
static snlvk_status bench_loss(bench_env *e, uint32_t n, uint32_t classes)
{
    if (!wanted(e, "classifier_loss")) return SNLVK_OK;
    size_t nl = (size_t)n * classes;
    vk_buf *logits = NULL, *teacher = NULL, *dlogits = NULL, *labels = NULL;
    vk_buf *params = NULL, *metrics = NULL, *scratch = NULL;
    vk_seq *q = NULL;
    snlvk_status s = rand_buf_in(e, nl, -4.0f, 4.0f, &logits);
    if (s == SNLVK_OK) s = rand_buf_in(e, nl, -4.0f, 4.0f, &teacher);
    if (s == SNLVK_OK) s = zero_buf(e, nl * 4, &dlogits);
    if (s == SNLVK_OK) s = zero_buf(e, (size_t)n * 4, &labels);
    if (s == SNLVK_OK) {
        int32_t *h = malloc((size_t)n * 4);
        if (!h) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
        for (uint32_t i = 0; h && i < n; i++) h[i] = (int32_t)((i * 7u + 3u) % classes);
        if (h) s = vk_buf_write(e->ctx, labels, 0, h, (size_t)n * 4);
        free(h);
    }
    if (s == SNLVK_OK) s = params_buf(e, &params);
    if (s == SNLVK_OK) s = zero_buf(e, LOSS_METRICS_SIZE, &metrics);
    if (s == SNLVK_OK) s = zero_buf(e, loss_scratch_bytes(n), &scratch);
    if (s == SNLVK_OK) s = start_case(e, &q);
    if (s == SNLVK_OK) {
        loss_args la = {.logits = logits, .labels = labels, .teacher = teacher, .dlogits = dlogits, .params = params,
                        .metrics = metrics, .scratch = scratch, .n = n, .classes = classes};
        s = op_classifier_loss(q, e->ctx, &la);
    }
    snlvk_op_bench r;
    init_result(&r, "classifier_loss", "ce+kd", 0, 4.0 * (3.0 * nl + n));
    snprintf(r.shape, sizeof r.shape, "%ux%u", n, classes);
    return finish_case(e, q, s, &r);
}

/* Adam and SGD (momentum 0.9) over the whole model's parameters as one flat tensor. */
static snlvk_status bench_optim(bench_env *e, uint32_t count)
{
    static const char *ops[2] = {"adam_step", "sgd_step"};
    for (int mode = 0; mode < 2; mode++) {
        if (!wanted(e, ops[mode])) continue;
        vk_buf *p = NULL, *g = NULL, *m = NULL, *v = NULL, *params = NULL;
        vk_seq *q = NULL;
        snlvk_status s = rand_buf(e, count, &p);
        if (s == SNLVK_OK) s = rand_buf_in(e, count, -1e-2f, 1e-2f, &g);
        if (s == SNLVK_OK) s = rand_buf_in(e, count, -1e-2f, 1e-2f, &m);
        if (s == SNLVK_OK && mode == 0) s = rand_buf_in(e, count, 0.0f, 1e-4f, &v);
        if (s == SNLVK_OK) s = params_buf(e, &params);
        if (s == SNLVK_OK) s = start_case(e, &q);
        if (s == SNLVK_OK)
            s = mode == 0 ? op_adam(q, e->ctx, params, 0, p, g, m, v, count)
                          : op_sgd(q, e->ctx, params, 0, p, g, m, count);
        snlvk_op_bench r;
        /* Adam: p, g, m, v in, p, m, v out; SGD: p, g, buf in, p, buf out */
        init_result(&r, ops[mode], "-", 0, 4.0 * (mode == 0 ? 7.0 : 5.0) * count);
        snprintf(r.shape, sizeof r.shape, "%u", count);
        SNLVK_TRY(finish_case(e, q, s, &r));
    }
    return SNLVK_OK;
}

/* Counting the ReLUs left: every mask entry of the model as one flat mask. */
static snlvk_status bench_mask_count(bench_env *e, uint32_t count)
{
    if (!wanted(e, "mask_count")) return SNLVK_OK;
    vk_buf *mask = NULL, *counts = NULL;
    vk_seq *q = NULL;
    snlvk_status s = rand_buf(e, count, &mask);
    if (s == SNLVK_OK) s = zero_buf(e, 4, &counts);
    if (s == SNLVK_OK) s = start_case(e, &q);
    if (s == SNLVK_OK) s = op_mask_count(q, e->ctx, mask, count, 0.0f, counts, 0, 1);
    snlvk_op_bench r;
    init_result(&r, "mask_count", "-", 0, 4.0 * count + 4.0);
    snprintf(r.shape, sizeof r.shape, "%u", count);
    return finish_case(e, q, s, &r);
}

/* Every op family of one training step of a model at its shapes. The activation shapes
 * are the distinct ones (one per stage); the parameter count is the model's weights,
 * BN affine parameters and classifier (masks excluded), the ReLU count its mask entries
 * with pixel masks. */
typedef struct bench_model {
    const act_shape *acts;
    int n_acts;
    uint32_t features, classes, params, relus;
} bench_model;

static snlvk_status bench_model_ops(bench_env *e, const bench_model *bm, uint32_t n)
{
    SNLVK_TRY(bench_gemm_case(e, "linear_forward", n, bm->classes, bm->features, 0, 1));
    SNLVK_TRY(bench_gemm_case(e, "linear_backward_weight", bm->classes, bm->features, n, 1, 0));
    SNLVK_TRY(bench_gemm_case(e, "linear_backward_data", n, bm->features, bm->classes, 0, 0));
    for (int i = 0; i < bm->n_acts; i++) SNLVK_TRY(bench_bn(e, n, &bm->acts[i]));
    for (int i = 0; i < bm->n_acts; i++) SNLVK_TRY(bench_mrelu(e, n, &bm->acts[i]));
    for (int i = 0; i < bm->n_acts; i++) SNLVK_TRY(bench_add(e, n, &bm->acts[i]));
    SNLVK_TRY(bench_gap(e, n, &bm->acts[bm->n_acts - 1]));
    SNLVK_TRY(bench_loss(e, n, bm->classes));
    SNLVK_TRY(bench_optim(e, bm->params));
    SNLVK_TRY(bench_mask_count(e, bm->relus));
    return SNLVK_OK;
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
        static const act_shape acts[] = {{64, 32, 32}, {128, 16, 16}, {256, 8, 8}, {512, 4, 4}};
        /* 11,173,962 parameters; ReLUs: 4 masked ReLUs per stage = 491,520 */
        const bench_model bm = {acts, 4, 512, 10, 11173962u, 491520u};
        for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) SNLVK_TRY(bench_conv(&e, &convs[i]));
        SNLVK_TRY(bench_model_ops(&e, &bm, n));
    } else if (strcmp(model, "resnet8-mini") == 0) {
        const conv_shape convs[] = {
            {n, 1, 28, 28, 16, 3, 1, 1},  {n, 16, 28, 28, 16, 3, 1, 1}, {n, 16, 28, 28, 32, 3, 2, 1},
            {n, 32, 14, 14, 32, 3, 1, 1}, {n, 32, 14, 14, 64, 3, 2, 1}, {n, 64, 7, 7, 64, 3, 1, 1},
            {n, 16, 28, 28, 32, 1, 2, 0}, {n, 32, 14, 14, 64, 1, 2, 0},
        };
        static const act_shape acts[] = {{16, 28, 28}, {32, 14, 14}, {64, 7, 7}};
        /* 77,754 parameters; ReLUs: 3 + 2 + 2 masked ReLUs per stage = 56,448 */
        const bench_model bm = {acts, 3, 64, 10, 77754u, 56448u};
        for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) SNLVK_TRY(bench_conv(&e, &convs[i]));
        SNLVK_TRY(bench_model_ops(&e, &bm, n));
    } else
        return snlvk_fail(SNLVK_E_INVALID, "bench: model '%s': expected resnet18 or resnet8-mini", model);
    return SNLVK_OK;
}
