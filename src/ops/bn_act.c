#include "ops/bn_act.h"

static snlvk_status need(const vk_buf *b, uint64_t floats, const char *what)
{
    return vk_buf_need(b, floats * 4, "bn+masked relu", what);
}

static int vec4_planes(const mrelu_shape *s) { return (s->h * s->w) % 4 == 0; }

static int flat_images(const mrelu_shape *s) { return bn_flat_images(s->c, s->h * s->w); }

static snlvk_status check_norm(const mrelu_shape *s, const bn_norm *b, const char *what)
{
    if (!b || !b->x || !b->gamma || !b->beta || !b->mean || !b->scale)
        return snlvk_fail(SNLVK_E_INVALID, "bn+masked relu: %s needs x, gamma, beta, mean and scale", what);
    SNLVK_TRY(need(b->x, (uint64_t)s->n * s->c * s->h * s->w, "x"));
    SNLVK_TRY(need(b->gamma, s->c, "gamma"));
    SNLVK_TRY(need(b->beta, s->c, "beta"));
    SNLVK_TRY(need(b->mean, s->c, "mean"));
    return need(b->scale, s->c, "scale");
}

/* bn_forward's grid (batchnorm.h); z_max caps z. */
static snlvk_status grid_for(const snlvk_context *ctx, const mrelu_shape *s, uint32_t z_max, bn_plane_grid *g)
{
    const uint32_t hw = s->h * s->w;
    return bn_plane_grid_for(ctx, s->n, s->c, vec4_planes(s) ? hw / 4 : hw, z_max, "bn+masked relu", g);
}

snlvk_status op_bn_act_forward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, int eval, const bn_norm *bn,
                               const vk_buf *res, const bn_norm *res_bn, const vk_buf *mask, const vk_buf *t_out,
                               const vk_buf *y, float eps)
{
    SNLVK_TRY(mrelu_check(s));
    const uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(check_norm(s, bn, "the batch norm"));
    if (res && res_bn) return snlvk_fail(SNLVK_E_INVALID, "bn+masked relu: a shortcut with and without batch norm");
    if (res) SNLVK_TRY(need(res, total, "res"));
    if (res_bn) SNLVK_TRY(check_norm(s, res_bn, "the shortcut's batch norm"));
    SNLVK_TRY(need(mask, mrelu_mask_size(s), "mask"));
    if (t_out) SNLVK_TRY(need(t_out, total, "t"));
    SNLVK_TRY(need(y, total, "y"));
    const uint32_t res_mode = res ? 1u : res_bn ? 2u : 0u;
    const bn_norm *r = res_bn ? res_bn : bn; /* unused bindings take the main norm's buffers */
    vk_binding binds[13] = {vk_bind(bn->x),    vk_bind(bn->gamma), vk_bind(bn->beta),  vk_bind(bn->mean),
                            vk_bind(bn->scale), vk_bind(res ? res : r->x), vk_bind(r->gamma), vk_bind(r->beta),
                            vk_bind(r->mean),  vk_bind(r->scale),  vk_bind(mask),      vk_bind(t_out ? t_out : y),
                            vk_bind(y)};
    if (flat_images(s)) {
        /* bn_act_forward_flat: an image's C*H*W as vec4s, each invocation walking
         * BN_FLAT_IMAGES images a vec4 of the image (its coefficients read once) */
        const uint32_t units = s->c * s->h * s->w / 4;
        const uint32_t wg = 64, gx = vk_div_up(units, wg), gz = vk_div_up(s->n, BN_FLAT_IMAGES);
        if (gx > ctx->props.limits.maxComputeWorkGroupCount[0] || gz > ctx->props.limits.maxComputeWorkGroupCount[2])
            return snlvk_fail(SNLVK_E_UNSUPPORTED, "bn+masked relu: %ux%u workgroups exceed the limits", gx, gz);
        struct { uint32_t n, c, units; float eps; } fp = {s->n, s->c, units, eps};
        vk_pipeline_desc d = {.shader = "bn_act_forward_flat", .bindings = "IiiiiIiiiiiss", .push_size = sizeof fp,
                              .n_spec = 5,
                              .spec = {eval ? 1u : 0u, s->channel_mask ? 1u : 0u, res_mode, t_out ? 1u : 0u,
                                       s->h * s->w},
                              .local_size = {wg, 1, 1}};
        const vk_pipeline *pipe;
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        return vk_seq_dispatch(q, pipe, binds, 13, &fp, gx, 1, gz);
    }
    bn_plane_grid g;
    SNLVK_TRY(grid_for(ctx, s, UINT32_MAX, &g));
    const int v4 = vec4_planes(s);
    struct { uint32_t n, c, hw; float eps; } p = {s->n, s->c, g.units, eps};
    vk_pipeline_desc d = {.shader = v4 ? "bn_act_forward4" : "bn_act_forward",
                          .bindings = v4 ? "IttttIttttIss" : "ittttittttiss", .push_size = sizeof p, .n_spec = 4,
                          .spec = {eval ? 1u : 0u, s->channel_mask ? 1u : 0u, res_mode, t_out ? 1u : 0u},
                          .local_size = {g.wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, 13, &p, g.gx, s->c, g.gz);
}

snlvk_status op_bn_act_backward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *dy,
                                const bn_norm *bn, const vk_buf *mask, const vk_buf *dx, float beta_dx,
                                const vk_buf *dgamma, const vk_buf *dbeta, const vk_buf *dc, const vk_buf *lambda,
                                uint32_t lambda_index)
{
    SNLVK_TRY(mrelu_check(s));
    const uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(check_norm(s, bn, "the batch norm"));
    SNLVK_TRY(need(dy, total, "dy"));
    SNLVK_TRY(need(dx, total, "dx"));
    SNLVK_TRY(need(mask, mrelu_mask_size(s), "mask"));
    SNLVK_TRY(need(dgamma, s->c, "dgamma"));
    SNLVK_TRY(need(dbeta, s->c, "dbeta"));
    if (dc) SNLVK_TRY(need(dc, mrelu_mask_size(s), "dc"));
    if (lambda && dc) SNLVK_TRY(need(lambda, (uint64_t)lambda_index + 1, "lambda"));
    if (s->c > ctx->props.limits.maxComputeWorkGroupCount[0])
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "bn+masked relu: %u channels exceed the workgroup-count limit", s->c);
    const int v4 = vec4_planes(s);
    const uint32_t has_lambda = lambda && dc ? 1u : 0u;
    const vk_buf *lam = has_lambda ? lambda : bn->mean;
    /* the sums: a workgroup per channel, sized as bn_reduce's */
    const uint32_t units = v4 ? s->h * s->w / 4 : s->h * s->w;
    uint32_t wg = 256;
    if (vk_is_cpu(ctx))
        while (wg > 16 && (uint64_t)s->n * units < (uint64_t)wg * BN_RED_CPU_UNITS) wg /= 2;
    const uint32_t chan_dc = dc && s->channel_mask;
    struct { uint32_t n, c, units, lambda_index, has_lambda; } rp = {s->n, s->c, units, lambda_index, has_lambda};
    vk_pipeline_desc rd = {.shader = v4 ? "bn_act_reduce4" : "bn_act_reduce", .bindings = v4 ? "IIIttttssss" : "iiittttssss",
                           .push_size = sizeof rp, .n_spec = 2, .spec = {s->channel_mask ? 1u : 0u, chan_dc},
                           .local_size = {wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &rd, &pipe));
    vk_binding rb[11] = {vk_bind(dy),       vk_bind(bn->x),   vk_bind(mask),    vk_bind(bn->gamma),
                         vk_bind(bn->beta), vk_bind(bn->mean), vk_bind(bn->scale), vk_bind(lam),
                         vk_bind(dgamma),   vk_bind(dbeta),   vk_bind(chan_dc ? dc : dgamma)};
    SNLVK_TRY(vk_seq_dispatch(q, pipe, rb, 11, &rp, s->c, 1, 1));

    /* dx; a trained pixel mask's gradient in the same pass (one workgroup row over the batch) */
    const uint32_t pix_dc = dc && !s->channel_mask;
    if (flat_images(s)) {
        const uint32_t funits = s->c * s->h * s->w / 4;
        const uint32_t fwg = 64, gx = vk_div_up(funits, fwg), gz = pix_dc ? 1u : vk_div_up(s->n, BN_FLAT_IMAGES);
        if (gx > ctx->props.limits.maxComputeWorkGroupCount[0] || gz > ctx->props.limits.maxComputeWorkGroupCount[2])
            return snlvk_fail(SNLVK_E_UNSUPPORTED, "bn+masked relu: %ux%u workgroups exceed the limits", gx, gz);
        struct { uint32_t n, c, units; float inv_count, beta; uint32_t lambda_index, has_lambda; } fp = {
            s->n, s->c, funits, (float)(1.0 / ((double)s->n * s->h * s->w)), beta_dx, lambda_index, has_lambda};
        vk_pipeline_desc fd = {.shader = "bn_act_backward_flat", .bindings = "IIiiiiiiisss", .push_size = sizeof fp,
                               .n_spec = 4, .spec = {beta_dx != 0.0f, s->channel_mask ? 1u : 0u, pix_dc, s->h * s->w},
                               .local_size = {fwg, 1, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &fd, &pipe));
        vk_binding fb[12] = {vk_bind(dy),        vk_bind(bn->x),     vk_bind(mask),  vk_bind(bn->gamma),
                             vk_bind(bn->beta),  vk_bind(bn->mean),  vk_bind(bn->scale), vk_bind(dgamma),
                             vk_bind(dbeta),     vk_bind(lam),       vk_bind(dx),    vk_bind(pix_dc ? dc : dx)};
        return vk_seq_dispatch(q, pipe, fb, 12, &fp, gx, 1, gz);
    }
    bn_plane_grid g;
    SNLVK_TRY(grid_for(ctx, s, pix_dc ? 1u : UINT32_MAX, &g));
    struct { uint32_t n, c, hw; float inv_count, beta; uint32_t lambda_index, has_lambda; } p = {
        s->n, s->c, g.units, (float)(1.0 / ((double)s->n * s->h * s->w)), beta_dx, lambda_index, has_lambda};
    vk_pipeline_desc d = {.shader = v4 ? "bn_act_backward4" : "bn_act_backward",
                          .bindings = v4 ? "IIIttttttsss" : "iiittttttsss", .push_size = sizeof p, .n_spec = 3,
                          .spec = {beta_dx != 0.0f, s->channel_mask ? 1u : 0u, pix_dc}, .local_size = {g.wg, 1, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding b[12] = {vk_bind(dy),        vk_bind(bn->x),     vk_bind(mask),  vk_bind(bn->gamma),
                        vk_bind(bn->beta),  vk_bind(bn->mean),  vk_bind(bn->scale), vk_bind(dgamma),
                        vk_bind(dbeta),     vk_bind(lam),       vk_bind(dx),    vk_bind(pix_dc ? dc : dx)};
    return vk_seq_dispatch(q, pipe, b, 12, &p, g.gx, s->c, g.gz);
}
