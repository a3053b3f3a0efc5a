#version 450
#extension GL_GOOGLE_include_directive : require
// wt[c, k, R-1-r, S-1-s] = w[k, c, r, s]: the weights of the forward convolution that
// computes a stride-1 convolution's backward-data pass.
#include "common.glsl"

layout(binding = 0) readonly buffer Wbuf { float w[]; };
layout(binding = 1) writeonly buffer WTbuf { float wt[]; };
layout(push_constant) uniform Params { uint K, C, RS; } p;

void main()
{
    const uint total = p.K * p.C * p.RS;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        const uint rs = i % p.RS, t = i / p.RS, c = t % p.C, k = t / p.C;
        wt[(c * p.K + k) * p.RS + (p.RS - 1u - rs)] = w[i];
    }
}
