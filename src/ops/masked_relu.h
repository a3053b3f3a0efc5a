/* The SNL masked ReLU over NCHW: y = c*relu(x) + (1-c)*x with a mask c of C*H*W entries
 * ("pixel" masks) or C entries (channel masks), shared over the batch (../shared/SNL.md).
 * No float atomics: the mask gradient is a reduction over the batch per mask entry. */
#ifndef SNLVK_OPS_MASKED_RELU_H
#define SNLVK_OPS_MASKED_RELU_H
#include "vk/vk.h"

typedef struct mrelu_shape {
    uint32_t n, c, h, w;
    int channel_mask;      /* 0: mask[C*H*W] (pixel), 1: mask[C] */
} mrelu_shape;

snlvk_status mrelu_check(const mrelu_shape *s);
static inline uint32_t mrelu_mask_size(const mrelu_shape *s) { return s->channel_mask ? s->c : s->c * s->h * s->w; }

/* y = x where x > 0, else (1 - c) * x. */
snlvk_status op_masked_relu_forward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *x,
                                    const vk_buf *mask, const vk_buf *y);

/* dx = dy * (x > 0 ? 1 : 1 - c)   (overwritten), and unless dc == NULL (frozen masks):
 * dc = sum over the batch (and H,W for channel masks) of dy*(relu(x) - x) + lambda*sign(c)
 * (overwritten), where lambda is the float at index lambda_index of the device buffer
 * `lambda` (read when the sequence runs, so the host may change it between runs without
 * re-recording); lambda == NULL means 0. One dispatch (two for trainable pixel masks). */
snlvk_status op_masked_relu_backward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *dy,
                                     const vk_buf *x, const vk_buf *mask, const vk_buf *dx, const vk_buf *dc,
                                     const vk_buf *lambda, uint32_t lambda_index);
#endif
