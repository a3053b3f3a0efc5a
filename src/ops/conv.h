/* 2-D convolution (groups 1, square kernel, equal stride and padding in both
 * dimensions), NCHW, PyTorch semantics: forward, backward-data, backward-filter.
 * All three run as one implicit-GEMM kernel in three modes (shaders/conv_params.glsl). */
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
/* y[n,k,p,q] = sum w[k,c,r,s] x[n,c,p*st+r-pad,q*st+s-pad] (+ bias[k]); bias may be NULL. */
snlvk_status op_conv2d_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *x, const vk_buf *w,
                               const vk_buf *bias, const vk_buf *y, gemm_variant v);
/* Scratch the backward-data pass uses (the flipped weights), in bytes. */
size_t conv_workspace_bytes(const conv_shape *s);
/* dx = d loss / d x (overwritten, or accumulated when beta = 1). `workspace` (at least
 * conv_workspace_bytes) lets stride-1 layers run as a forward convolution; NULL uses
 * the direct gather kernel. */
snlvk_status op_conv2d_backward_data(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                     const vk_buf *w, const vk_buf *dx, const vk_buf *workspace, float beta,
                                     gemm_variant v);
/* dw = d loss / d w (overwritten, or accumulated when beta = 1). */
snlvk_status op_conv2d_backward_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                       const vk_buf *x, const vk_buf *dw, float beta, gemm_variant v);
#endif
