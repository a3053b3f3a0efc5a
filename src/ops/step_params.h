/* The per-step scalar block: a small device buffer of 32-bit floats and uints that the
 * host writes before each submit of a recorded training step (DESIGN.md, "record once,
 * replay"). Kernels read it when the sequence runs, so learning rates, lambda, Adam's
 * step count or the KD temperature change without re-recording.
 *
 * The C struct mirrors the GLSL block in shaders/step_params.glsl byte for byte: only
 * 4-byte scalars and arrays of them, so the std430 layout is the C layout. Both sides
 * state the offsets; the static asserts in step_params.c keep them equal.
 * Kernels that take "a float buffer and an index" (op_masked_relu_backward's lambda)
 * are given this buffer and STEP_PARAMS_INDEX(field). */
#ifndef SNLVK_OPS_STEP_PARAMS_H
#define SNLVK_OPS_STEP_PARAMS_H
#include <stddef.h>

#include "vk/vk.h"

#define STEP_PARAMS_GROUPS 8   /* parameter groups (lr / weight decay pairs) */

typedef struct step_params {
    /* ---- set by the caller ---- */
    float lr[STEP_PARAMS_GROUPS];           /*   0: learning rate of each parameter group */
    float weight_decay[STEP_PARAMS_GROUPS]; /*  32: coupled L2 (g += wd * p), per group */
    float momentum;                         /*  64: SGD momentum (0: plain SGD) */
    uint32_t sgd_first_step;                /*  68: 1 on SGD's first step: momentum buffer = g */
    float adam_beta1;                       /*  72 */
    float adam_beta2;                       /*  76 */
    float adam_eps;                         /*  80 */
    uint32_t adam_step;                     /*  84: t, 1-based, already incremented for this step */
    float snl_lambda;                       /*  88: Lasso coefficient of the mask penalty */
    float kd_temperature;                   /*  92: T of the distillation loss */
    float ce_weight;                        /*  96: d logits = ce_weight * dCE + kd_weight * dKD */
    float kd_weight;                        /* 100 */
    /* ---- derived by step_params_write (in double, as torch does on the host); whatever
     * the caller put here is replaced ---- */
    float adam_step_size[STEP_PARAMS_GROUPS]; /* 104: lr[g] / (1 - beta1^t) */
    float adam_bias_correction2_sqrt;       /* 136: sqrt(1 - beta2^t) */
    float adam_one_minus_beta1;             /* 140: 1 - beta1 (torch: exp_avg.lerp_(g, 1 - beta1)) */
    float adam_one_minus_beta2;             /* 144: 1 - beta2 */
    uint32_t reserved[3];                   /* 148: pads the block to 160 bytes */
} step_params;

#define STEP_PARAMS_SIZE 160u
/* The float/uint index of a field, for kernels that read "buffer[index]". */
#define STEP_PARAMS_INDEX(field) ((uint32_t)(offsetof(step_params, field) / 4))

/* torch's defaults: Adam (1e-3, betas 0.9/0.999, eps 1e-8) on every group, no weight
 * decay, no momentum, lambda 0, T = 4, both loss weights 1, t = 1, first SGD step. */
void step_params_default(step_params *p);

/* Allocates the device buffer (STEP_PARAMS_SIZE bytes) and writes the defaults. */
snlvk_status step_params_alloc(snlvk_context *ctx, vk_buf *out);

/* Fills the derived fields of a copy of *p and writes it to `buf`. Call between submits
 * (never while a sequence that reads `buf` runs). Rejects a zero Adam step count. */
snlvk_status step_params_write(snlvk_context *ctx, const vk_buf *buf, const step_params *p);
#endif
