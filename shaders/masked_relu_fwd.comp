#version 450
#extension GL_GOOGLE_include_directive : require
// SNL masked ReLU forward, elementwise over NCHW: y = c*relu(x) + (1-c)*x, i.e.
// y = x where x > 0, else (1-c)*x. The mask has C*H*W entries (CHANNEL 0, "pixel") or
// C entries (CHANNEL 1), shared over the batch.
// Grid: x strides over H*W, y = channel, z strides over the batch (no divisions, see bn_forward).
#include "common.glsl"

layout(constant_id = 0) const uint CHANNEL = 0;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer MASK;
layout(binding = 2) writeonly buffer Ybuf { float y[]; };

layout(push_constant) uniform Params { uint n, c, hw; } p;

void main()
{
    const uint ch = gl_WorkGroupID.y;
    const float cc = CHANNEL != 0u ? texelFetch(MASK, int(ch)).x : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
        const uint base = (n * p.c + ch) * p.hw;
        for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride) {
            const float x = texelFetch(X, int(base + i)).x;
            const float c = CHANNEL != 0u ? cc : texelFetch(MASK, int(ch * p.hw + i)).x;
            y[base + i] = x > 0.0 ? x : (1.0 - c) * x;
        }
    }
}
