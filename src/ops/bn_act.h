/* Batch norm fused with the SNL masked ReLU that follows it (and, at a residual block's
 * end, with the residual add between them): one pass over the activation where the
 * unfused ops take two or four, forward (training and eval) and backward. The per-channel
 * statistics stay a reduction of their own (op_bn_statistics). Semantics are those of
 * composing op_bn_forward_*, the add and op_masked_relu_*. */
#ifndef SNLVK_OPS_BN_ACT_H
#define SNLVK_OPS_BN_ACT_H
#include "ops/batchnorm.h"
#include "ops/masked_relu.h"

/* One batch norm's input and coefficients: training mode takes the saved batch mean and
 * invstd (op_bn_statistics), eval mode the running mean and variance. gamma and beta are
 * required. */
typedef struct bn_norm {
    const vk_buf *x, *gamma, *beta;
    const vk_buf *mean, *scale; /* save_mean, save_invstd (training) or running_mean, running_var (eval) */
} bn_norm;

/* t = bn(x) [+ res | + bn(res_bn)];  y = t where t > 0, else (1 - mask) * t.
 * res (the shortcut as it is) and res_bn (a shortcut through its own batch norm, same
 * shape) are both NULL or one given. t_out == NULL: t is not stored. One dispatch. */
snlvk_status op_bn_act_forward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, int eval, const bn_norm *bn,
                               const vk_buf *res, const bn_norm *res_bn, const vk_buf *mask, const vk_buf *t_out,
                               const vk_buf *y, float eps);

/* The backward of y = mrelu(bn(x)) in training mode, from dy and bn's forward inputs
 * (t is recomputed): dx (+ beta_dx * dx; 0 overwrites), dgamma and dbeta (overwritten),
 * and unless dc == NULL (frozen masks) the mask gradient as op_masked_relu_backward.
 * Two dispatches. */
snlvk_status op_bn_act_backward(vk_seq *q, snlvk_context *ctx, const mrelu_shape *s, const vk_buf *dy,
                                const bn_norm *bn, const vk_buf *mask, const vk_buf *dx, float beta_dx,
                                const vk_buf *dgamma, const vk_buf *dbeta, const vk_buf *dc, const vk_buf *lambda,
                                uint32_t lambda_index);
#endif
