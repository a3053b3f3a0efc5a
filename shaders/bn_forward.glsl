// Batchnorm forward, elementwise over NCHW: y = (x - mean[c]) * s[c] * gamma[c] + beta[c].
// Training (EVAL 0): mean/s are the saved batch mean and invstd (bn_reduce MODE 2).
// Eval (EVAL 1): mean/s come from the running mean and s = 1/sqrt(running_var + eps).
// Grid: x strides over H*W, y = channel, z strides over the batch, so the channel is
// uniform per workgroup and no invocation divides (integer division is scalarised on lavapipe).
// VEC4 1 (bn_vec4 on the host): H*W is a multiple of 4, the elementwise tensors are read
// through RGBA32F views and written as vec4, and p.hw counts vec4s.
#include "elem.glsl"
#include "common.glsl"

layout(constant_id = 0) const uint EVAL = 0;

layout(binding = 0, ELEM_FMT) uniform readonly imageBuffer X;
layout(binding = 1) uniform samplerBuffer GAMMA;
layout(binding = 2) uniform samplerBuffer BETA;
layout(binding = 3) uniform samplerBuffer MEAN;
layout(binding = 4) uniform samplerBuffer SCALE;   // invstd (training) or running_var (eval)
layout(binding = 5) writeonly buffer Ybuf { ELEM y[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    uint flags;       // bit 0: gamma given (else 1), bit 1: beta given (else 0)
    float eps;
} p;

void main()
{
    const int ch = int(gl_WorkGroupID.y);
    const float v = texelFetch(SCALE, ch).x;
    const float s = EVAL != 0u ? 1.0 / sqrt(v + p.eps) : v;
    const float g = (p.flags & 1u) != 0u ? texelFetch(GAMMA, ch).x : 1.0;
    const float b = (p.flags & 2u) != 0u ? texelFetch(BETA, ch).x : 0.0;
    const float m = texelFetch(MEAN, ch).x, sg = s * g;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
        const uint base = (n * p.c + gl_WorkGroupID.y) * p.hw;
        for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride)
            y[base + i] = (FETCH(X, int(base + i)) - m) * sg + b;
    }
}
