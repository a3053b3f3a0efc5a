/* batchnorm2d over NCHW (PyTorch semantics): training forward with batch statistics
 * and the running-statistics update, eval forward, training-mode backward; and the
 * per-channel sum that conv / linear bias gradients use. Per-channel reductions run one
 * workgroup per channel (shaders/bn_reduce.comp); the variance is a second pass over
 * (x - mean)^2, so large N*H*W and large means keep fp32 accuracy. */
#ifndef SNLVK_OPS_BATCHNORM_H
#define SNLVK_OPS_BATCHNORM_H
#include "vk/vk.h"

typedef struct bn_shape {
    uint32_t n, c, h, w;
} bn_shape;

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

snlvk_status bn_check(const bn_shape *s);

/* Training forward. Per channel: mean and biased variance over N*H*W,
 *   y = (x - mean) * invstd * gamma + beta,  invstd = 1/sqrt(var + eps);
 *   save_mean[C], save_invstd[C] are written for op_bn_backward;
 *   running_mean = (1-momentum)*running_mean + momentum*mean and likewise running_var
 *   with the UNBIASED variance (the biased one when N*H*W == 1), updated in place.
 * gamma == NULL means 1 and beta == NULL means 0; running_mean and running_var are both
 * given or both NULL (no update). Two dispatches. */
snlvk_status op_bn_forward_train(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                                 const vk_buf *gamma, const vk_buf *beta, const vk_buf *running_mean,
                                 const vk_buf *running_var, const vk_buf *y, const vk_buf *save_mean,
                                 const vk_buf *save_invstd, float momentum, float eps);

/* The statistics half of the training forward (its first dispatch): save_mean,
 * save_invstd and the running statistics' update, no y. The fused ops (bn_act.h) then
 * normalise. */
snlvk_status op_bn_statistics(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                              const vk_buf *running_mean, const vk_buf *running_var, const vk_buf *save_mean,
                              const vk_buf *save_invstd, float momentum, float eps);

/* Eval forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
snlvk_status op_bn_forward_eval(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x,
                                const vk_buf *gamma, const vk_buf *beta, const vk_buf *running_mean,
                                const vk_buf *running_var, const vk_buf *y, float eps);

/* Training-mode backward (through the batch statistics), from the forward's x and
 * save_mean / save_invstd:
 *   xhat = (x - mean) * invstd;  dbeta = sum dy;  dgamma = sum dy * xhat;
 *   dx = gamma * invstd / n * (n*dy - dbeta - xhat*dgamma)  (+ beta_dx * dx; 0 overwrites).
 * dgamma and dbeta are required (dx is computed from them) and overwritten.
 * gamma == NULL means 1. Two dispatches. */
snlvk_status op_bn_backward(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *dy, const vk_buf *x,
                            const vk_buf *gamma, const vk_buf *save_mean, const vk_buf *save_invstd,
                            const vk_buf *dx, const vk_buf *dgamma, const vk_buf *dbeta, float beta_dx);

/* out[c] = sum over n,h,w of x[n,c,h,w]  (+ beta * out[c]; 0 overwrites). A [N,F] matrix
 * is the shape {N, F, 1, 1}. */
snlvk_status op_channel_sum(vk_seq *q, snlvk_context *ctx, const bn_shape *s, const vk_buf *x, const vk_buf *out,
                            float beta);

/* ---- shared by batch norm's kernels and the fused ones (bn_act.c) ---- */

/* Units an invocation of the per-channel sums takes at least on a CPU device before its
 * workgroup shrinks; images an invocation of the flattened elementwise kernels walks. */
enum { BN_RED_CPU_UNITS = 2048, BN_FLAT_IMAGES = 8 };

/* The flattened elementwise kernels (an image's C*H*W as vec4s): planes of more than four
 * floats (at most one plane boundary in a vec4) in images of whole vec4s (planes of whole
 * vec4s, or C a multiple of four). They serve planes of whole vec4s too: an invocation a
 * vec4 of an image (its coefficients read once for BN_FLAT_IMAGES images) leaves no lane
 * idle where the planes' grid did (196 vec4s a 28x28 plane in a 256-wide workgroup), and
 * took the resnet8-mini step's bn_act_forward4 27 -> 18 ms, bn_act_backward4 18 -> 10. The
 * planes' kernels keep planes of 1-4 floats. */
int bn_flat_images(uint32_t c, uint32_t hw);

/* The planes' elementwise grid: x strides over a plane of `units` (floats, or vec4s where
 * planes are whole vec4s), y = channel, z strides over the batch (at most z_max): workgroups
 * of up to 256 invocations along x, narrower for small planes, about 4096 workgroups in all
 * (lavapipe pays per workgroup). `op` names the caller in the error. */
typedef struct bn_plane_grid {
    uint32_t wg, gx, gz, units;
} bn_plane_grid;
snlvk_status bn_plane_grid_for(const snlvk_context *ctx, uint32_t n, uint32_t c, uint32_t units, uint32_t z_max,
                               const char *op, bn_plane_grid *g);
#endif
