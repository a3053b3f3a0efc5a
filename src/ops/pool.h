/* Pooling over NCHW, PyTorch semantics (floor mode): average pool kxk stride s without
 * padding (k = H = W: the global average pool) and max pool kxk stride s pad p with an
 * int32 argmax. Both backwards are gathers (one invocation per input element), so
 * overlapping windows (s < k) cannot race. */
#ifndef SNLVK_OPS_POOL_H
#define SNLVK_OPS_POOL_H
#include "vk/vk.h"

typedef struct pool_shape {
    uint32_t n, c, h, w;   /* input */
    uint32_t k, stride, pad;
} pool_shape;

static inline uint32_t pool_out_h(const pool_shape *s) { return (s->h + 2 * s->pad - s->k) / s->stride + 1; }
static inline uint32_t pool_out_w(const pool_shape *s) { return (s->w + 2 * s->pad - s->k) / s->stride + 1; }

/* max_pool: 1 for max pool (pad <= k/2 as PyTorch requires), 0 for average pool (pad 0). */
snlvk_status pool_check(const pool_shape *s, int max_pool);

/* y[n,c,p,q] = mean of the kxk window at (p*s, q*s). */
snlvk_status op_avgpool_forward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *x, const vk_buf *y);
/* dx = sum over the windows holding each input of dy / (k*k) (overwritten; 0 where no window reaches). */
snlvk_status op_avgpool_backward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *dy,
                                 const vk_buf *dx);

/* y = max of the window at (p*s - pad, q*s - pad), padding -inf; argmax[n,c,p,q] (int32) =
 * h*W + w of the maximum within its plane: the first maximum in row-major window order
 * wins, a NaN wins over any number (the last NaN), as PyTorch's CPU kernel. */
snlvk_status op_maxpool_forward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *x, const vk_buf *y,
                                const vk_buf *argmax);
/* dx[argmax] += dy for every output, dx overwritten (zero where no window picked it). */
snlvk_status op_maxpool_backward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *dy,
                                 const vk_buf *argmax, const vk_buf *dx);
#endif
