#version 450
#extension GL_GOOGLE_include_directive : require
// SNL masked ReLU backward, the input gradient, elementwise over NCHW:
//   dx = dy * (x > 0 ? 1 : 1 - c)
// with a pixel (CHANNEL 0, C*H*W entries) or channel (CHANNEL 1, C entries) mask.
// Grid: x strides over H*W, y = channel, z strides over the batch (no divisions, see
// bn_forward). The mask gradient is masked_relu_dc (pixel) or masked_relu_bwd_channel.
#include "common.glsl"

layout(constant_id = 0) const uint CHANNEL = 0;

layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) uniform samplerBuffer X;
layout(binding = 2) uniform samplerBuffer MASK;
layout(binding = 3) writeonly buffer DXbuf { float dx[]; };

layout(push_constant) uniform Params { uint n, c, hw; } p;

void main()
{
    const uint ch = gl_WorkGroupID.y;
    const float cc = CHANNEL != 0u ? texelFetch(MASK, int(ch)).x : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
        const uint base = (n * p.c + ch) * p.hw;
        for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride) {
            const float x = texelFetch(X, int(base + i)).x, dy = texelFetch(DY, int(base + i)).x;
            const float c = CHANNEL != 0u ? cc : texelFetch(MASK, int(ch * p.hw + i)).x;
            dx[base + i] = x > 0.0 ? dy : dy * (1.0 - c);
        }
    }
}
