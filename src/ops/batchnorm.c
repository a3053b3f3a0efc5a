#include "ops/batchnorm.h"

enum { BN_RED_WG = 256 };

typedef struct bn_reduce_push {
    uint32_t n, c, hw, flags;
    float beta, momentum, eps;
} bn_reduce_push;

typedef struct bn_forward_push {
    uint32_t n, c, hw, flags;
    float eps;
} bn_forward_push;

typedef struct bn_backward_push {
    uint32_t n, c, hw, flags;
    float inv_count, beta;
} bn_backward_push;

snlvk_status bn_check(const bn_shape *s)
{
    if (!s->n || !s->c || !s->h || !s->w) return snlvk_fail(SNLVK_E_INVALID, "batchnorm: every size must be positive");
    if ((uint64_t)s->n * s->c * s->h * s->w > INT32_MAX)
        return snlvk_fail(SNLVK_E_INVALID, "batchnorm: %ux%ux%ux%u has more than 2^31 elements", s->n, s->c, s->h, s->w);
    return SNLVK_OK;
}

static snlvk_status need(const vk_buf *b, uint64_t floats, const char *what)
{
    return vk_buf_need(b, floats * 4, "batchnorm", what);
}

/* The vec4 kernels (bn_forward4, bn_backward4) when a channel's plane is whole vec4s. */
static int bn_vec4(const bn_shape *s) { return (s->h * s->w) % 4 == 0; }

int bn_flat_images(uint32_t c, uint32_t hw) { return hw > 4 && (hw % 4 == 0 || c % 4 == 0); }

snlvk_status bn_plane_grid_for(const snlvk_context *ctx, uint32_t n, uint32_t c, uint32_t units, uint32_t z_max,
                               const char *op, bn_plane_grid *g)
{
    if (c > ctx->props.limits.maxComputeWorkGroupCount[1])
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "%s: %u channels exceed the workgroup-count limit", op, c);
    uint32_t wg = 16;
    while (wg < units && wg < 256) wg *= 2;
    g->units = units;
    g->wg = wg;
    g->gx = vk_div_up(units, wg);
    if (g->gx > 1024) g->gx = 1024;
    uint64_t per_z = (uint64_t)g->gx * c;
    g->gz = per_z >= 4096 ? 1 : (uint32_t)(4096 / per_z);
    if (g->gz > n) g->gz = n;
    if (g->gz > z_max) g->gz = z_max;
    return SNLVK_OK;
}

/* x strides over a plane (in vec4s when bn_vec4), y = channel, z strides over the batch */
static snlvk_status grid_for(const snlvk_context *ctx, const bn_shape *s, bn_plane_grid *g)
{
    const uint32_t hw = s->h * s->w;
    return bn_plane_grid_for(ctx, s->n, s->c, bn_vec4(s) ? hw / 4 : hw, UINT32_MAX, "batchnorm", g);
}

/* bn_reduce.comp: mode 0 channel sum, 1 backward sums, 2 statistics. */
static snlvk_status reduce(vk_seq *q, snlvk_context *ctx, const bn_shape *s, uint32_t mode, const vk_buf *a,
                           const vk_buf *b, const vk_buf *o0, const vk_buf *o1, const vk_buf *s0, const vk_buf *s1,
                           const bn_reduce_push *p)
{
    if (s->c > ctx->props.limits.maxComputeWorkGroupCount[0])
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "batchnorm: %u channels exceed the workgroup-count limit", s->c);
    /* vec4 fetches where a plane is whole vec4s (bn_reduce.comp VEC4: 1.5x on lavapipe) */
    const uint32_t vec4 = s->h * s->w % 4 == 0;
    /* A workgroup per channel. On a CPU device it shrinks until each invocation sums
     * BN_RED_CPU_UNITS units or it is 16 wide: there a workgroup's invocations are
     * coroutines and each barrier of the 256-wide tree switches them all, which outweighed
     * the sums on small planes (resnet18 at batch 32, 128 units: BN forward at 8x8 5.2 ->
     * 1.6 ms, at 4x4 8.2 -> 1.7). 2048 units instead of 128 (16 wide for every reduction of
     * resnet8-mini at batch 128): the step's BN sums, six interleaved rounds, median / best
     * 16.9 / 12.8 -> 12.8 / 10.4 ms. GPUs keep 256 threads a channel. */
    uint32_t wg = BN_RED_WG;
    const uint64_t units = (uint64_t)s->n * s->h * s->w / (vec4 ? 4 : 1);
    if (vk_is_cpu(ctx))
        while (wg > 16 && units < (uint64_t)wg * BN_RED_CPU_UNITS) wg /= 2;
    vk_pipeline_desc d = {.shader = vec4 ? "bn_reduce4" : "bn_reduce", .bindings = vec4 ? "IIssss" : "iissss",
                          .push_size = sizeof *p, .n_spec = 1, .spec = {mode}, .local_size = {wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[6] = {vk_bind(a), vk_bind(b ? b : a), vk_bind(o0), vk_bind(o1 ? o1 : o0),
                           vk_bind(s0 ? s0 : o0), vk_bind(s1 ? s1 : o0)};
    return vk_seq_dispatch(q, pipe, binds, 6, p, s->c, 1, 1);
}

static snlvk_status forward(vk_seq *q, snlvk_context *ctx, const bn_shape *s, uint32_t eval, const vk_buf *x,
                            const vk_buf *gamma, const vk_buf *beta, const vk_buf *mean, const vk_buf *scale,
                            const vk_buf *y, float eps)
{
    bn_plane_grid g = {0, 0, 0, 0};
    SNLVK_TRY(grid_for(ctx, s, &g));
    const int v4 = bn_vec4(s);
    bn_forward_push p = {s->n, s->c, v4 ? s->h * s->w / 4 : s->h * s->w, (gamma ? 1u : 0u) | (beta ? 2u : 0u), eps};
    vk_pipeline_desc d = {.shader = v4 ? "bn_forward4" : "bn_forward", .bindings = v4 ? "Itttts" : "itttts",
                          .push_size = sizeof p, .n_spec = 1,
                          .spec = {eval}, .local_size = {g.wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[6] = {vk_bind(x), vk_bind(gamma ? gamma : mean), vk_bind(beta ? beta : mean), vk_bind(mean),
                           vk_bind(scale), vk_bind(y)};
    return vk_seq_dispatch(q, pipe, binds, 6, &p, g.gx, s->c, g.gz);
}

static snlvk_status check_common(const bn_shape *s, const vk_buf *x, const vk_buf *gamma, const vk_buf *beta,
                                 const vk_buf *y)
{
    SNLVK_TRY(bn_check(s));
    uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(need(x, total, "x"));
    SNLVK_TRY(need(y, total, "y"));
    if (gamma) SNLVK_TRY(need(gamma, s->c, "gamma"));
    if (beta) SNLVK_TRY(need(beta, s->c, "beta"));
    return SNLVK_OK;
}

snlvk_status op_bn_forward_train(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                                 const vk_buf *gamma, const vk_buf *beta, const vk_buf *running_mean,
                                 const vk_buf *running_var, const vk_buf *y, const vk_buf *save_mean,
                                 const vk_buf *save_invstd, float momentum, float eps)
{
    SNLVK_TRY(check_common(s, x, gamma, beta, y));
    /* op_bn_statistics checks save_mean, save_invstd and the running pair */
    SNLVK_TRY(op_bn_statistics(q, ctx, s, x, running_mean, running_var, save_mean, save_invstd, momentum, eps));
    return forward(q, ctx, s, 0, x, gamma, beta, save_mean, save_invstd, y, eps);
}

snlvk_status op_bn_statistics(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                              const vk_buf *running_mean, const vk_buf *running_var, const vk_buf *save_mean,
                              const vk_buf *save_invstd, float momentum, float eps)
{
    SNLVK_TRY(bn_check(s));
    SNLVK_TRY(need(x, (uint64_t)s->n * s->c * s->h * s->w, "x"));
    SNLVK_TRY(need(save_mean, s->c, "save_mean"));
    SNLVK_TRY(need(save_invstd, s->c, "save_invstd"));
    if (!running_mean != !running_var)
        return snlvk_fail(SNLVK_E_INVALID, "batchnorm: running_mean and running_var go together");
    if (running_mean) {
        SNLVK_TRY(need(running_mean, s->c, "running_mean"));
        SNLVK_TRY(need(running_var, s->c, "running_var"));
    }
    bn_reduce_push p = {s->n, s->c, s->h * s->w, running_mean ? 1u : 0u, 0.0f, momentum, eps};
    return reduce(q, ctx, s, 2, x, NULL, save_mean, save_invstd, running_mean, running_var, &p);
}

snlvk_status op_bn_forward_eval(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                                const vk_buf *gamma, const vk_buf *beta, const vk_buf *running_mean,
                                const vk_buf *running_var, const vk_buf *y, float eps)
{
    SNLVK_TRY(check_common(s, x, gamma, beta, y));
    SNLVK_TRY(need(running_mean, s->c, "running_mean"));
    SNLVK_TRY(need(running_var, s->c, "running_var"));
    return forward(q, ctx, s, 1, x, gamma, beta, running_mean, running_var, y, eps);
}

snlvk_status op_bn_backward(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *dy, const vk_buf *x,
                            const vk_buf *gamma, const vk_buf *save_mean, const vk_buf *save_invstd,
                            const vk_buf *dx, const vk_buf *dgamma, const vk_buf *dbeta, float beta_dx)
{
    SNLVK_TRY(check_common(s, x, gamma, NULL, dx));
    uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(need(dy, total, "dy"));
    SNLVK_TRY(need(save_mean, s->c, "save_mean"));
    SNLVK_TRY(need(save_invstd, s->c, "save_invstd"));
    SNLVK_TRY(need(dgamma, s->c, "dgamma"));
    SNLVK_TRY(need(dbeta, s->c, "dbeta"));
    bn_reduce_push rp = {s->n, s->c, s->h * s->w, 0, 0.0f, 0.0f, 0.0f};
    SNLVK_TRY(reduce(q, ctx, s, 1, dy, x, dgamma, dbeta, save_mean, save_invstd, &rp));

    if (bn_flat_images(s->c, s->h * s->w)) {
        /* bn_backward_flat: an image's C*H*W as vec4s, an invocation walking BN_FLAT_IMAGES
         * images a vec4 of the image */
        const uint32_t units = s->c * s->h * s->w / 4;
        const uint32_t wg = 64, gx = vk_div_up(units, wg), gz = vk_div_up(s->n, BN_FLAT_IMAGES);
        if (gx > ctx->props.limits.maxComputeWorkGroupCount[0] || gz > ctx->props.limits.maxComputeWorkGroupCount[2])
            return snlvk_fail(SNLVK_E_UNSUPPORTED, "batchnorm: %ux%u workgroups exceed the limits", gx, gz);
        bn_backward_push fp = {s->n, s->c, units, gamma ? 1u : 0u, (float)(1.0 / ((double)s->n * s->h * s->w)),
                               beta_dx};
        vk_pipeline_desc fd = {.shader = "bn_backward_flat", .bindings = "IIiiiiis", .push_size = sizeof fp,
                               .n_spec = 2, .spec = {beta_dx != 0.0f, s->h * s->w}, .local_size = {wg, 1, 1}};
        const vk_pipeline *fpipe;
        SNLVK_TRY(vk_pipeline_get(ctx, &fd, &fpipe));
        vk_binding fb[8] = {vk_bind(dy),        vk_bind(x),      vk_bind(gamma ? gamma : save_mean),
                            vk_bind(save_mean), vk_bind(save_invstd), vk_bind(dgamma),
                            vk_bind(dbeta),     vk_bind(dx)};
        return vk_seq_dispatch(q, fpipe, fb, 8, &fp, gx, 1, gz);
    }
    bn_plane_grid g = {0, 0, 0, 0};
    SNLVK_TRY(grid_for(ctx, s, &g));
    const int v4 = bn_vec4(s);
    bn_backward_push p = {s->n, s->c, v4 ? s->h * s->w / 4 : s->h * s->w, gamma ? 1u : 0u,
                          (float)(1.0 / ((double)s->n * s->h * s->w)), beta_dx};
    vk_pipeline_desc d = {.shader = v4 ? "bn_backward4" : "bn_backward", .bindings = v4 ? "IIttttts" : "iittttts",
                          .push_size = sizeof p, .n_spec = 1, .spec = {beta_dx != 0.0f},
                          .local_size = {g.wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[8] = {vk_bind(dy),        vk_bind(x),      vk_bind(gamma ? gamma : save_mean),
                           vk_bind(save_mean), vk_bind(save_invstd), vk_bind(dgamma),
                           vk_bind(dbeta),     vk_bind(dx)};
    return vk_seq_dispatch(q, pipe, binds, 8, &p, g.gx, s->c, g.gz);
}

snlvk_status op_channel_sum(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x, const vk_buf *out,
                            float beta)
{
    SNLVK_TRY(bn_check(s));
    SNLVK_TRY(need(x, (uint64_t)s->n * s->c * s->h * s->w, "x"));
    SNLVK_TRY(need(out, s->c, "out"));
    bn_reduce_push p = {s->n, s->c, s->h * s->w, 0, beta, 0.0f, 0.0f};
    return reduce(q, ctx, s, 0, x, NULL, out, NULL, NULL, NULL, &p);
}
