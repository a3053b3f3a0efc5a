#include "ops/step_params.h"

#include <math.h>
#include <string.h>

/* The GLSL block (shaders/step_params.glsl) states the same offsets. */
_Static_assert(sizeof(step_params) == STEP_PARAMS_SIZE, "step_params size");
_Static_assert(offsetof(step_params, weight_decay) == 32, "step_params layout");
_Static_assert(offsetof(step_params, momentum) == 64, "step_params layout");
_Static_assert(offsetof(step_params, sgd_first_step) == 68, "step_params layout");
_Static_assert(offsetof(step_params, adam_beta1) == 72, "step_params layout");
_Static_assert(offsetof(step_params, adam_beta2) == 76, "step_params layout");
_Static_assert(offsetof(step_params, adam_eps) == 80, "step_params layout");
_Static_assert(offsetof(step_params, adam_step) == 84, "step_params layout");
_Static_assert(offsetof(step_params, snl_lambda) == 88, "step_params layout");
_Static_assert(offsetof(step_params, kd_temperature) == 92, "step_params layout");
_Static_assert(offsetof(step_params, ce_weight) == 96, "step_params layout");
_Static_assert(offsetof(step_params, kd_weight) == 100, "step_params layout");
_Static_assert(offsetof(step_params, adam_step_size) == 104, "step_params layout");
_Static_assert(offsetof(step_params, adam_bias_correction2_sqrt) == 136, "step_params layout");
_Static_assert(offsetof(step_params, adam_one_minus_beta1) == 140, "step_params layout");
_Static_assert(offsetof(step_params, adam_one_minus_beta2) == 144, "step_params layout");
_Static_assert(sizeof(float) == 4 && sizeof(uint32_t) == 4, "32-bit scalars");

void step_params_default(step_params *p)
{
    memset(p, 0, sizeof *p);
    for (int g = 0; g < STEP_PARAMS_GROUPS; g++) p->lr[g] = 1e-3f;
    p->sgd_first_step = 1;
    p->adam_beta1 = 0.9f;
    p->adam_beta2 = 0.999f;
    p->adam_eps = 1e-8f;
    p->adam_step = 1;
    p->kd_temperature = 4.0f;
    p->ce_weight = 1.0f;
    p->kd_weight = 1.0f;
}

snlvk_status step_params_alloc(snlvk_context *ctx, vk_buf *out)
{
    SNLVK_TRY(vk_buf_alloc(ctx, STEP_PARAMS_SIZE, out));
    step_params p;
    step_params_default(&p);
    snlvk_status s = step_params_write(ctx, out, &p);
    if (s != SNLVK_OK) vk_buf_free(ctx, out);
    return s;
}

snlvk_status step_params_write(snlvk_context *ctx, const vk_buf *buf, const step_params *p)
{
    if (p->adam_step == 0) return snlvk_fail(SNLVK_E_INVALID, "Adam's step count is 1-based; got 0");
    if (!(p->kd_temperature > 0)) return snlvk_fail(SNLVK_E_INVALID, "KD temperature must be > 0, got %g",
                                                   (double)p->kd_temperature);
    step_params d = *p;
    /* torch computes these on the host in double from its python-float hyperparameters,
     * then the fp32 tensor ops use them as scalars. Our betas are stored as fp32 (0.9f,
     * not 0.9): the bias corrections differ from torch's by ~1e-7 relative. */
    const double b1 = p->adam_beta1, b2 = p->adam_beta2, t = p->adam_step;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    for (int g = 0; g < STEP_PARAMS_GROUPS; g++) d.adam_step_size[g] = bc1 != 0 ? (float)(p->lr[g] / bc1) : 0.0f;
    d.adam_bias_correction2_sqrt = (float)sqrt(bc2);
    d.adam_one_minus_beta1 = (float)(1.0 - b1);
    d.adam_one_minus_beta2 = (float)(1.0 - b2);
    memset(d.reserved, 0, sizeof d.reserved);
    return vk_buf_write(ctx, buf, 0, &d, sizeof d);
}
