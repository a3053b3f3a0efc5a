#version 450
#extension GL_GOOGLE_include_directive : require
// torch.optim.Adam on one flat tensor (amsgrad off, maximize off, coupled L2), in
// torch's single-tensor order of operations:
//   g' = g + wd*p;  m = lerp(m, g', 1-b1);  v = v*b2 + (1-b2)*g'*g'
//   p = p - step_size * m / (sqrt(v)/sqrt(1-b2^t) + eps),  step_size = lr/(1-b1^t)
// lr, wd come from the step-params block at the group index given at record time; the
// bias corrections are derived there from t by the host (step_params_write).
// Four floats an invocation, read through RGBA32F storage texel buffers and stored as
// vec4s, the last partial vec4 a float at a time (as sgd.comp).
#include "common.glsl"

layout(binding = 0) writeonly buffer Pbuf { vec4 param[]; };
layout(binding = 1, rgba32f) uniform readonly imageBuffer G;
layout(binding = 2) writeonly buffer Mbuf { vec4 exp_avg[]; };
layout(binding = 3) writeonly buffer Vbuf { vec4 exp_avg_sq[]; };
#define STEP_PARAMS_BINDING 4
#include "step_params.glsl"
layout(binding = 5, rgba32f) uniform readonly imageBuffer P;  // param, read
layout(binding = 6, rgba32f) uniform readonly imageBuffer M;  // exp_avg, read
layout(binding = 7, rgba32f) uniform readonly imageBuffer V;  // exp_avg_sq, read

layout(push_constant) uniform Params { uint n, group; } p;

void step4(uint i, out vec4 np, out vec4 nm, out vec4 nv)
{
    const float wd = sp.weight_decay[p.group];
    const float step_size = sp.adam_step_size[p.group];
    const float w1 = sp.adam_one_minus_beta1;
    const float b2 = sp.adam_beta2, w2 = sp.adam_one_minus_beta2;
    const float bc2_sqrt = sp.adam_bias_correction2_sqrt, eps = sp.adam_eps;
    const vec4 x = imageLoad(P, int(i));
    vec4 g = imageLoad(G, int(i));
    if (wd != 0.0) g = g + wd * x;
    const vec4 m = imageLoad(M, int(i));
    // torch's lerp: the form that is exact at the nearer end
    nm = w1 < 0.5 ? m + w1 * (g - m) : g - (g - m) * (1.0 - w1);
    nv = imageLoad(V, int(i)) * b2 + w2 * (g * g);
    const vec4 denom = sqrt(nv) / bc2_sqrt + eps;
    np = x - step_size * (nm / denom);
}

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const uint full = p.n / 4u;
    vec4 np, nm, nv;
    for (uint i = gl_GlobalInvocationID.x; i < full; i += stride) {
        step4(i, np, nm, nv);
        exp_avg[i] = nm;
        exp_avg_sq[i] = nv;
        param[i] = np;
    }
    if (gl_GlobalInvocationID.x == 0u && full * 4u < p.n) {
        step4(full, np, nm, nv);
        for (uint j = full * 4u; j < p.n; j++) {
            exp_avg[full][j & 3u] = nm[j & 3u];
            exp_avg_sq[full][j & 3u] = nv[j & 3u];
            param[full][j & 3u] = np[j & 3u];
        }
    }
}
