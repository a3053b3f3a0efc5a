#version 450
#extension GL_GOOGLE_include_directive : require
// Elementwise y = alpha * a + beta * b over n floats (the residual join is alpha = beta = 1).
// Four floats per invocation: RGBA32F texel fetches and vec4 stores (see masked_relu_fwd4);
// the last vec4 of a length that is not a multiple of 4 is stored component by component.
// Buffers are allocated in whole vec4s, so the last vec4 is addressable.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
layout(binding = 2) writeonly buffer Ybuf { vec4 y[]; };
layout(push_constant) uniform Params { uint n; float alpha, beta; } p;

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const uint full = p.n / 4u;
    for (uint i = gl_GlobalInvocationID.x; i < full; i += stride)
        y[i] = p.alpha * texelFetch(A, int(i)) + p.beta * texelFetch(B, int(i));
    if (gl_GlobalInvocationID.x == 0u && full * 4u < p.n) {
        const vec4 v = p.alpha * texelFetch(A, int(full)) + p.beta * texelFetch(B, int(full));
        for (uint j = full * 4u; j < p.n; j++) y[full][j & 3u] = v[j & 3u];
    }
}
