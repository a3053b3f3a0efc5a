/* Optimiser steps on one flat parameter tensor per dispatch, PyTorch semantics exactly:
 * torch.optim.Adam (amsgrad off, coupled L2) and torch.optim.SGD (momentum, dampening 0,
 * nesterov off, coupled L2). Learning rate and weight decay are read, when the sequence
 * runs, from the step-params buffer (ops/step_params.h) at the parameter group `group`
 * fixed at record time; so are Adam's betas/eps/step count and SGD's momentum and
 * first-step flag. A recorded training step is therefore replayed with new learning
 * rates (schedules), a new t, or SGD's first step, with no re-recording. */
#ifndef SNLVK_OPS_OPTIM_H
#define SNLVK_OPS_OPTIM_H
#include "vk/vk.h"

/* p, exp_avg (m), exp_avg_sq (v) updated in place; g is read only. m and v start zeroed
 * (torch's initial state). n floats each. */
snlvk_status op_adam(vk_seq *s, snlvk_context *ctx, const vk_buf *params, uint32_t group, const vk_buf *p,
                     const vk_buf *g, const vk_buf *exp_avg, const vk_buf *exp_avg_sq, uint32_t n);

/* p and momentum_buf updated in place. momentum_buf == NULL: plain SGD whatever the
 * momentum in the step params (a tensor recorded without a buffer never gets one). On the
 * step where step_params.sgd_first_step is 1 the buffer becomes g (torch's first step),
 * so its previous contents do not matter. */
snlvk_status op_sgd(vk_seq *s, snlvk_context *ctx, const vk_buf *params, uint32_t group, const vk_buf *p,
                    const vk_buf *g, const vk_buf *momentum_buf, uint32_t n);

/* Zeroes a gradient (or any) buffer as a recorded command: whole buffers only, one
 * transfer each; allocate all gradients in one buffer to zero them with one call. */
snlvk_status op_zero(vk_seq *s, const vk_buf *b);
#endif
