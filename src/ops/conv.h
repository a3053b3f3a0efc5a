/* 2-D convolution (groups 1, square kernel, equal stride and padding in both
 * dimensions), NCHW, PyTorch semantics: forward, backward-data, backward-filter.
 * All three run as one implicit-GEMM kernel in three modes (shaders/conv_params.glsl).
 * With a workspace (conv_workspace_bytes) on the texel variant, each op first packs its
 * two operands four reduction terms to a vec4, which the kernel reads a vec4 a fetch. */
#ifndef SNLVK_OPS_CONV_H
#define SNLVK_OPS_CONV_H
#include "ops/gemm.h"

typedef struct conv_shape {
    uint32_t n, c, h, w;   /* input */
    uint32_t k, ksize;     /* output channels, kernel size */
    uint32_t stride, pad;
} conv_shape;

static inline uint32_t conv_out_h(const conv_shape *s) { return (s->h + 2 * s->pad - s->ksize) / s->stride + 1; }
static inline uint32_t conv_out_w(const conv_shape *s) { return (s->w + 2 * s->pad - s->ksize) / s->stride + 1; }

snlvk_status conv_check(const conv_shape *s);
/* y[n,k,p,q] = sum w[k,c,r,s] x[n,c,p*st+r-pad,q*st+s-pad] (+ bias[k]); bias may be NULL.
 * A workspace (conv_workspace_bytes) packs the operands (texel variant; NULL: the direct
 * kernel). The packed kernel sums a reduction in another order than the direct one,
 * (c/4, r, s, c%4) against (c, r, s), equally accurate (tests/test_conv.c). */
snlvk_status op_conv2d_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *x, const vk_buf *w,
                               const vk_buf *bias, const vk_buf *y, const vk_buf *workspace, gemm_variant v);
/* Scratch the three ops use with variant v, in bytes: the packed operands (texel) or the
 * flipped weights of backward data (tiled). */
size_t conv_workspace_bytes(snlvk_context *ctx, const conv_shape *s, gemm_variant v);
/* dx = d loss / d x (overwritten, or accumulated when beta = 1). `workspace` (at least
 * conv_workspace_bytes) packs the operands (texel) or lets stride-1 layers run as a
 * forward convolution (tiled); NULL uses the direct gather kernel. */
snlvk_status op_conv2d_backward_data(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                     const vk_buf *w, const vk_buf *dx, const vk_buf *workspace, float beta,
                                     gemm_variant v);
/* dw = d loss / d w (overwritten, or accumulated when beta = 1); workspace as above. */
snlvk_status op_conv2d_backward_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                       const vk_buf *x, const vk_buf *dw, const vk_buf *workspace, float beta,
                                       gemm_variant v);
#endif
