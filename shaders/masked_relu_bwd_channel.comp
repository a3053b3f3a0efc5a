#version 450
#extension GL_GOOGLE_include_directive : require
// SNL masked ReLU backward for trainable channel masks: one workgroup per channel
// (gl_WorkGroupID.x) writes dx = dy * (x > 0 ? 1 : 1 - c) for the channel's N*H*W
// elements and reduces dc[ch] = sum dy*(relu(x) - x) + lambda*sign(c[ch]) through a
// shared-memory tree (the workgroup size must be a power of two). No atomics.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) uniform samplerBuffer X;
layout(binding = 2) uniform samplerBuffer MASK;
layout(binding = 3) readonly buffer Lbuf { float lambda[]; };
layout(binding = 4) writeonly buffer DXbuf { float dx[]; };
layout(binding = 5) writeonly buffer DCbuf { float dc[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    uint lambda_index;
    uint has_lambda;
} p;

shared float red[gl_WorkGroupSize.x];

void main()
{
    const uint ch = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    const float c = texelFetch(MASK, int(ch)).x;
    // this invocation's elements n*hw + i of the channel, stepping (dn, di) without divisions
    const uint dn = gl_WorkGroupSize.x / p.hw, di = gl_WorkGroupSize.x % p.hw;
    float acc = 0.0;
    for (uint n = t / p.hw, i = t % p.hw; n < p.n;) {
        const uint j = (n * p.c + ch) * p.hw + i;
        const float x = texelFetch(X, int(j)).x, dy = texelFetch(DY, int(j)).x;
        dx[j] = x > 0.0 ? dy : dy * (1.0 - c);
        if (x <= 0.0) acc -= dy * x;
        i += di;
        n += dn;
        if (i >= p.hw) {
            i -= p.hw;
            n++;
        }
    }
    red[t] = acc;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    if (t == 0u) dc[ch] = red[0] + (p.has_lambda != 0u ? lambda[p.lambda_index] * sign(c) : 0.0);
}
