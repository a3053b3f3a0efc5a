#version 450
#extension GL_GOOGLE_include_directive : require
// torch.optim.Adam on one flat tensor (amsgrad off, maximize off, coupled L2), in
// torch's single-tensor order of operations:
//   g' = g + wd*p;  m = lerp(m, g', 1-b1);  v = v*b2 + (1-b2)*g'*g'
//   p = p - step_size * m / (sqrt(v)/sqrt(1-b2^t) + eps),  step_size = lr/(1-b1^t)
// lr, wd come from the step-params block at the group index given at record time; the
// bias corrections are derived there from t by the host (step_params_write).
#include "common.glsl"

layout(binding = 0) buffer Pbuf { float param[]; };
layout(binding = 1) readonly buffer Gbuf { float grad[]; };
layout(binding = 2) buffer Mbuf { float exp_avg[]; };
layout(binding = 3) buffer Vbuf { float exp_avg_sq[]; };
#define STEP_PARAMS_BINDING 4
#include "step_params.glsl"

layout(push_constant) uniform Params { uint n, group; } p;

void main()
{
    const float wd = sp.weight_decay[p.group];
    const float step_size = sp.adam_step_size[p.group];
    const float w1 = sp.adam_one_minus_beta1;
    const float b2 = sp.adam_beta2, w2 = sp.adam_one_minus_beta2;
    const float bc2_sqrt = sp.adam_bias_correction2_sqrt, eps = sp.adam_eps;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        const float x = param[i];
        float g = grad[i];
        if (wd != 0.0) g = g + wd * x;
        float m = exp_avg[i];
        // torch's lerp: the form that is exact at the nearer end
        m = w1 < 0.5 ? m + w1 * (g - m) : g - (g - m) * (1.0 - w1);
        const float v = exp_avg_sq[i] * b2 + w2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const float denom = sqrt(v) / bc2_sqrt + eps;
        param[i] = x - step_size * (m / denom);
    }
}
