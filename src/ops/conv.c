#include "ops/conv.h"

typedef struct conv_push {
    uint32_t n, c, h, w, k, r, s, p, q, stride, pad, has_bias;
    float beta;
    uint32_t pa, pb, ph, pw, r0, t0, sr, ss, da, db; /* mode 3 */
} conv_push;

snlvk_status conv_check(const conv_shape *s)
{
    if (!s->n || !s->c || !s->h || !s->w || !s->k || !s->ksize || !s->stride)
        return snlvk_fail(SNLVK_E_INVALID, "conv2d: every size must be positive");
    if (s->h + 2 * s->pad < s->ksize || s->w + 2 * s->pad < s->ksize)
        return snlvk_fail(SNLVK_E_INVALID, "conv2d: kernel %u is larger than the padded input %ux%u", s->ksize,
                          s->h + 2 * s->pad, s->w + 2 * s->pad);
    return SNLVK_OK;
}

static snlvk_status conv_dispatch_push(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode,
                                       const vk_buf *a, const vk_buf *b, const vk_buf *bias, const vk_buf *out,
                                       const conv_push *pp, gemm_variant v)
{
    conv_push p = *pp;
    uint64_t m = mode == 1 || mode == 3 ? s->c : s->k;
    uint64_t ncols = mode == 0 ? (uint64_t)s->n * p.p * p.q
                   : mode == 1 ? (uint64_t)s->n * s->h * s->w
                   : mode == 3 ? (uint64_t)s->n * p.ph * p.pw
                               : (uint64_t)s->c * s->ksize * s->ksize;
    vk_binding binds[4] = {vk_bind(a), vk_bind(b), vk_bind(bias ? bias : a), vk_bind(out)};
    const vk_pipeline *pipe;
    if (gemm_pick_variant(ctx, v) == GEMM_TEXEL) {
        /* On lavapipe the gathers bound the speed: large register blocks amortise them
         * (measured on the 64->64 3x3 layer: 8x4 17, 16x8 29, 32x16 36 GFLOP/s). */
        const uint32_t TN = 16, TM = m >= 32 ? 32 : m >= 16 ? 16 : 8, LX = 16, LY = 1;
        vk_pipeline_desc d = {.shader = "conv_texel", .bindings = "ttts", .push_size = sizeof p, .n_spec = 11,
                              .spec = {TM, TN, 0, 0, 0, 0, 0, 0, 0, 0, mode}, .local_size = {LX, LY, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(vk_div_up(ncols, TN), LX), vk_div_up(vk_div_up(m, TM), LY), 1);
    }
    enum { BM = 64, BN = 64, BK = 16, TM = 4, TN = 4 };
    vk_pipeline_desc d = {.shader = "conv_tiled", .bindings = "ssss", .push_size = sizeof p, .n_spec = 11,
                          .spec = {BM, BN, BK, TM, TN, 0, 0, 0, 0, 0, mode}, .local_size = {BN / TN, BM / TM, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(ncols, BN), vk_div_up(m, BM), 1);
}

static snlvk_status conv_dispatch(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode, const vk_buf *a,
                                  const vk_buf *b, const vk_buf *bias, const vk_buf *out, float beta, gemm_variant v)
{
    SNLVK_TRY(conv_check(s));
    conv_push p = {s->n, s->c, s->h, s->w, s->k, s->ksize, s->ksize, conv_out_h(s), conv_out_w(s),
                   s->stride, s->pad, bias != NULL, beta, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    return conv_dispatch_push(q, ctx, s, mode, a, b, bias, out, &p, v);
}

/* Strided backward-data as stride^2 phase convolutions: the outputs h = a + st*h' only
 * receive the kernel taps r = r0 + st*i with r0 = (a + pad) mod st. */
static snlvk_status conv_backward_data_phases(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                              const vk_buf *w, const vk_buf *dx, float beta, gemm_variant v)
{
    uint32_t st = s->stride, ks = s->ksize;
    for (uint32_t a = 0; a < st && a < s->h; a++)
        for (uint32_t b = 0; b < st && b < s->w; b++) {
            conv_push p = {s->n, s->c, s->h, s->w, s->k, ks, ks, conv_out_h(s), conv_out_w(s), st, s->pad, 0, beta,
                           0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
            p.pa = a, p.pb = b;
            p.ph = (s->h - a + st - 1) / st;
            p.pw = (s->w - b + st - 1) / st;
            p.r0 = (a + s->pad) % st;
            p.t0 = (b + s->pad) % st;
            p.sr = p.r0 < ks ? (ks - p.r0 + st - 1) / st : 0;
            p.ss = p.t0 < ks ? (ks - p.t0 + st - 1) / st : 0;
            p.da = (a + s->pad - p.r0) / st;
            p.db = (b + s->pad - p.t0) / st;
            SNLVK_TRY(conv_dispatch_push(q, ctx, s, 3, w, dy, NULL, dx, &p, v));
        }
    return SNLVK_OK;
}

snlvk_status op_conv2d_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *x, const vk_buf *w,
                               const vk_buf *bias, const vk_buf *y, gemm_variant v)
{
    return conv_dispatch(q, ctx, s, 0, w, x, bias, y, 0.0f, v);
}

size_t conv_workspace_bytes(const conv_shape *s)
{
    return (size_t)s->k * s->c * s->ksize * s->ksize * 4;
}

snlvk_status op_conv2d_backward_data(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                     const vk_buf *w, const vk_buf *dx, const vk_buf *workspace, float beta,
                                     gemm_variant v)
{
    SNLVK_TRY(conv_check(s));
    if (s->stride > 1) return conv_backward_data_phases(q, ctx, s, dy, w, dx, beta, v);
    if (s->pad >= s->ksize || !workspace) return conv_dispatch(q, ctx, s, 1, w, dy, NULL, dx, beta, v);
    /* Stride 1: dx is the forward convolution of dy with the flipped, transposed
     * weights and padding ksize-1-pad, which wastes no work on the stride's zeros. */
    if (workspace->size < conv_workspace_bytes(s))
        return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
    struct { uint32_t k, c, rs; } fp = {s->k, s->c, s->ksize * s->ksize};
    vk_pipeline_desc d = {.shader = "conv_flip", .bindings = "ss", .push_size = sizeof fp, .local_size = {256, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[2] = {vk_bind(w), vk_bind(workspace)};
    uint32_t total = fp.k * fp.c * fp.rs, groups = vk_div_up(total, 256);
    SNLVK_TRY(vk_seq_dispatch(q, pipe, binds, 2, &fp, groups > 1024 ? 1024 : groups, 1, 1));
    conv_shape t = {s->n, s->k, conv_out_h(s), conv_out_w(s), s->c, s->ksize, 1, s->ksize - 1 - s->pad};
    return conv_dispatch(q, ctx, &t, 0, workspace, dy, NULL, dx, beta, v);
}

snlvk_status op_conv2d_backward_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                       const vk_buf *x, const vk_buf *dw, float beta, gemm_variant v)
{
    return conv_dispatch(q, ctx, s, 2, dy, x, NULL, dw, beta, v);
}
