#version 450
#extension GL_GOOGLE_include_directive : require
// torch.optim.SGD on one flat tensor (dampening 0, nesterov off, coupled L2):
//   g' = g + wd*p
//   momentum != 0 and a buffer bound: buf = first step ? g' : momentum*buf + g';  g' = buf
//   p = p - lr*g'
// lr, wd come from the step-params block at the group index given at record time; the
// momentum and the first-step flag from the block too, so one recording serves every step.
#include "common.glsl"

layout(binding = 0) buffer Pbuf { float param[]; };
layout(binding = 1) readonly buffer Gbuf { float grad[]; };
layout(binding = 2) buffer Bbuf { float momentum_buf[]; };
#define STEP_PARAMS_BINDING 3
#include "step_params.glsl"

layout(push_constant) uniform Params { uint n, group, has_buf; } p;

void main()
{
    const float lr = sp.lr[p.group];
    const float wd = sp.weight_decay[p.group];
    const float mu = sp.momentum;
    const bool use_buf = p.has_buf != 0u && mu != 0.0;
    const bool first = sp.sgd_first_step != 0u;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        const float x = param[i];
        float g = grad[i];
        if (wd != 0.0) g = g + wd * x;
        if (use_buf) {
            const float b = first ? g : mu * momentum_buf[i] + g;
            momentum_buf[i] = b;
            g = b;
        }
        param[i] = x - lr * g;
    }
}
