#include "ops/masked_relu.h"

enum { MR_WG = 256, MR_MAX_GROUPS = 4096 };

typedef struct mrelu_bwd_push {
    uint32_t n, c, hw, lambda_index, has_lambda;
} mrelu_bwd_push;

snlvk_status mrelu_check(const mrelu_shape *s)
{
    if (!s->n || !s->c || !s->h || !s->w) return snlvk_fail(SNLVK_E_INVALID, "masked relu: every size must be positive");
    if ((uint64_t)s->n * s->c * s->h * s->w > INT32_MAX)
        return snlvk_fail(SNLVK_E_INVALID, "masked relu: %ux%ux%ux%u has more than 2^31 elements", s->n, s->c, s->h,
                          s->w);
    return SNLVK_OK;
}

static snlvk_status need(const vk_buf *b, uint64_t floats, const char *what)
{
    return vk_buf_need(b, floats * 4, "masked relu", what);
}

static uint32_t groups_for(uint64_t n)
{
    uint32_t g = vk_div_up(n, MR_WG);
    return g > MR_MAX_GROUPS ? MR_MAX_GROUPS : g;
}

/* The elementwise kernels run a grid (x strides over H*W, y = channel, z strides over the
 * batch): workgroups of up to 256 invocations along x, narrower for small planes, and
 * about 4096 workgroups in all (lavapipe pays per workgroup). */
/* Pixel masks over C*H*W a multiple of 4: a vec4 per invocation (the *4 shaders), x over
 * a sample's vec4s, y over the batch; about 4096 workgroups in all. */
static snlvk_status elementwise4(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const char *shader,
                                 const char *bindings, const vk_binding *binds, int n_binds)
{
    uint32_t chw4 = s->c * s->h * s->w / 4;
    uint32_t gx = vk_div_up(chw4, MR_WG);
    if (gx > 1024) gx = 1024;
    uint32_t gy = gx >= 4096 ? 1 : 4096 / gx;
    if (gy > s->n) gy = s->n;
    if (gy > ctx->props.limits.maxComputeWorkGroupCount[1]) gy = ctx->props.limits.maxComputeWorkGroupCount[1];
    struct { uint32_t n, chw4; } p = {s->n, chw4};
    vk_pipeline_desc d = {.shader = shader, .bindings = bindings, .push_size = sizeof p, .local_size = {MR_WG, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, n_binds, &p, gx, gy, 1);
}

static int use_vec4(const mrelu_shape *s) { return !s->channel_mask && (s->c * s->h * s->w) % 4 == 0; }

static snlvk_status elementwise(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const char *shader,
                                const char *bindings, const vk_binding *binds, int n_binds)
{
    if (s->c > ctx->props.limits.maxComputeWorkGroupCount[1])
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "masked relu: %u channels exceed the workgroup-count limit", s->c);
    uint32_t hw = s->h * s->w, wg = 16;
    while (wg < hw && wg < MR_WG) wg *= 2;
    uint32_t gx = vk_div_up(hw, wg);
    if (gx > 1024) gx = 1024;
    uint64_t per_z = (uint64_t)gx * s->c;
    uint32_t gz = per_z >= 4096 ? 1 : (uint32_t)(4096 / per_z);
    if (gz > s->n) gz = s->n;
    struct { uint32_t n, c, hw; } p = {s->n, s->c, hw};
    vk_pipeline_desc d = {.shader = shader, .bindings = bindings, .push_size = sizeof p, .n_spec = 1,
                          .spec = {s->channel_mask ? 1u : 0u}, .local_size = {wg, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, n_binds, &p, gx, s->c, gz);
}

snlvk_status op_masked_relu_forward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *x,
                                    const vk_buf *mask, const vk_buf *y)
{
    SNLVK_TRY(mrelu_check(s));
    uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(need(x, total, "x"));
    SNLVK_TRY(need(y, total, "y"));
    SNLVK_TRY(need(mask, mrelu_mask_size(s), "mask"));
    vk_binding binds[3] = {vk_bind(x), vk_bind(mask), vk_bind(y)};
    if (use_vec4(s)) return elementwise4(q, ctx, s, "masked_relu_fwd4", "IIs", binds, 3);
    return elementwise(q, ctx, s, "masked_relu_fwd", "tts", binds, 3);
}

snlvk_status op_masked_relu_backward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *dy,
                                     const vk_buf *x, const vk_buf *mask, const vk_buf *dx, const vk_buf *dc,
                                     const vk_buf *lambda, uint32_t lambda_index)
{
    SNLVK_TRY(mrelu_check(s));
    uint64_t total = (uint64_t)s->n * s->c * s->h * s->w;
    SNLVK_TRY(need(dy, total, "dy"));
    SNLVK_TRY(need(x, total, "x"));
    SNLVK_TRY(need(dx, total, "dx"));
    SNLVK_TRY(need(mask, mrelu_mask_size(s), "mask"));
    if (dc) SNLVK_TRY(need(dc, mrelu_mask_size(s), "dc"));
    if (lambda && dc) SNLVK_TRY(need(lambda, (uint64_t)lambda_index + 1, "lambda"));
    mrelu_bwd_push p = {s->n, s->c, s->h * s->w, lambda_index, lambda && dc ? 1u : 0u};
    const vk_pipeline *pipe;
    if (dc && s->channel_mask) {
        /* one workgroup per channel writes dx and reduces dc over N*H*W */
        if (s->c > ctx->props.limits.maxComputeWorkGroupCount[0])
            return snlvk_fail(SNLVK_E_UNSUPPORTED, "masked relu: %u channels exceed the workgroup-count limit", s->c);
        vk_binding binds[6] = {vk_bind(dy), vk_bind(x), vk_bind(mask), vk_bind(lambda ? lambda : dc), vk_bind(dx),
                               vk_bind(dc)};
        vk_pipeline_desc d = {.shader = "masked_relu_bwd_channel", .bindings = "tttsss", .push_size = sizeof p,
                              .local_size = {MR_WG, 1, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        return vk_seq_dispatch(q, pipe, binds, 6, &p, s->c, 1, 1);
    }
    vk_binding binds[4] = {vk_bind(dy), vk_bind(x), vk_bind(mask), vk_bind(dx)};
    if (use_vec4(s)) SNLVK_TRY(elementwise4(q, ctx, s, "masked_relu_bwd4", "IIIs", binds, 4));
    else SNLVK_TRY(elementwise(q, ctx, s, "masked_relu_bwd", "ttts", binds, 4));
    if (!dc) return SNLVK_OK; /* frozen */
    /* pixel masks: one invocation per mask entry (or vec4 of entries) sums over the batch */
    vk_binding dbinds[5] = {vk_bind(dy), vk_bind(x), vk_bind(mask), vk_bind(lambda ? lambda : dc), vk_bind(dc)};
    if (use_vec4(s)) {
        uint32_t chw4 = s->c * s->h * s->w / 4;
        struct { uint32_t n, chw4, lambda_index, has_lambda; } p4 = {s->n, chw4, lambda_index, lambda ? 1u : 0u};
        vk_pipeline_desc d4 = {.shader = "masked_relu_dc4", .bindings = "IIIss", .push_size = sizeof p4,
                               .local_size = {MR_WG, 1, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d4, &pipe));
        return vk_seq_dispatch(q, pipe, dbinds, 5, &p4, groups_for(chw4), 1, 1);
    }
    vk_pipeline_desc d = {.shader = "masked_relu_dc", .bindings = "tttss", .push_size = sizeof p,
                          .local_size = {MR_WG, 1, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, dbinds, 5, &p, groups_for((uint64_t)s->c * s->h * s->w), 1, 1);
}
