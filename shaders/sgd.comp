#version 450
#extension GL_GOOGLE_include_directive : require
// torch.optim.SGD on one flat tensor (dampening 0, nesterov off, coupled L2):
//   g' = g + wd*p
//   momentum != 0 and a buffer bound: buf = first step ? g' : momentum*buf + g';  g' = buf
//   p = p - lr*g'
// lr, wd come from the step-params block at the group index given at record time; the
// momentum and the first-step flag from the block too, so one recording serves every step.
// Four floats an invocation: reads through RGBA32F storage texel buffers (imageLoad,
// inline gathers on lavapipe, where a storage-buffer load is a loop over the lanes), vec4
// stores; the last vec4 of a length that is not a multiple of 4 is stored a float at a
// time by one invocation. Buffers are allocated in whole vec4s.
#include "common.glsl"

layout(binding = 0) writeonly buffer Pbuf { vec4 param[]; };
layout(binding = 1, rgba32f) uniform readonly imageBuffer G;
layout(binding = 2) writeonly buffer Bbuf { vec4 momentum_buf[]; };
#define STEP_PARAMS_BINDING 3
#include "step_params.glsl"
layout(binding = 4, rgba32f) uniform readonly imageBuffer P;  // param, read
layout(binding = 5, rgba32f) uniform readonly imageBuffer MB; // momentum_buf, read

layout(push_constant) uniform Params { uint n, group, has_buf; } p;

void step4(uint i, float lr, float wd, float mu, bool use_buf, bool first, out vec4 np, out vec4 nb)
{
    const vec4 x = imageLoad(P, int(i));
    vec4 g = imageLoad(G, int(i));
    if (wd != 0.0) g = g + wd * x;
    nb = first ? g : mu * imageLoad(MB, int(i)) + g;
    if (use_buf) g = nb;
    np = x - lr * g;
}

void main()
{
    const float lr = sp.lr[p.group];
    const float wd = sp.weight_decay[p.group];
    const float mu = sp.momentum;
    const bool use_buf = p.has_buf != 0u && mu != 0.0;
    const bool first = sp.sgd_first_step != 0u;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const uint full = p.n / 4u;
    vec4 np, nb;
    for (uint i = gl_GlobalInvocationID.x; i < full; i += stride) {
        step4(i, lr, wd, mu, use_buf, first, np, nb);
        if (use_buf) momentum_buf[i] = nb;
        param[i] = np;
    }
    if (gl_GlobalInvocationID.x == 0u && full * 4u < p.n) {
        step4(full, lr, wd, mu, use_buf, first, np, nb);
        for (uint j = full * 4u; j < p.n; j++) {
            if (use_buf) momentum_buf[full][j & 3u] = nb[j & 3u];
            param[full][j & 3u] = np[j & 3u];
        }
    }
}
