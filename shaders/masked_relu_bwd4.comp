#version 450
#extension GL_GOOGLE_include_directive : require
// SNL masked ReLU backward to the input with a pixel mask, four elements per invocation:
// dx = dy where x > 0, else dy*(1-c) (see masked_relu_bwd; layout as masked_relu_fwd4).
#include "common.glsl"

// (read with imageLoad: inline on lavapipe, where texelFetch is a call)
layout(binding = 0, rgba32f) uniform readonly imageBuffer DY;
layout(binding = 1, rgba32f) uniform readonly imageBuffer X;
layout(binding = 2, rgba32f) uniform readonly imageBuffer MASK;
layout(binding = 3) writeonly buffer DXbuf { vec4 dx[]; };

layout(push_constant) uniform Params { uint n, chw4; } p;

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.y; n < p.n; n += gl_NumWorkGroups.y) {
        const uint base = n * p.chw4;
        for (uint i = gl_GlobalInvocationID.x; i < p.chw4; i += stride) {
            const vec4 g = imageLoad(DY, int(base + i));
            dx[base + i] = mix(g * (1.0 - imageLoad(MASK, int(i))), g, greaterThan(imageLoad(X, int(base + i)), vec4(0.0)));
        }
    }
}
