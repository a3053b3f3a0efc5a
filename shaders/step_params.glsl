// The per-step scalar block the host writes before each submit (src/ops/step_params.h,
// whose struct states the same offsets). Define STEP_PARAMS_BINDING before including.
#ifndef STEP_PARAMS_BINDING
#error "define STEP_PARAMS_BINDING before including step_params.glsl"
#endif
#define STEP_PARAMS_GROUPS 8

layout(std430, binding = STEP_PARAMS_BINDING) readonly buffer StepParams {
    layout(offset = 0) float lr[STEP_PARAMS_GROUPS];
    layout(offset = 32) float weight_decay[STEP_PARAMS_GROUPS];
    layout(offset = 64) float momentum;
    layout(offset = 68) uint sgd_first_step;
    layout(offset = 72) float adam_beta1;
    layout(offset = 76) float adam_beta2;
    layout(offset = 80) float adam_eps;
    layout(offset = 84) uint adam_step;
    layout(offset = 88) float snl_lambda;
    layout(offset = 92) float kd_temperature;
    layout(offset = 96) float ce_weight;
    layout(offset = 100) float kd_weight;
    layout(offset = 104) float adam_step_size[STEP_PARAMS_GROUPS];
    layout(offset = 136) float adam_bias_correction2_sqrt;
    layout(offset = 140) float adam_one_minus_beta1;
    layout(offset = 144) float adam_one_minus_beta2;
    layout(offset = 148) uint reserved[3];
} sp;
