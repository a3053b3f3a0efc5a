#version 450
#extension GL_GOOGLE_include_directive : require
// Elementwise y = alpha * a + beta * b over n floats (the residual join is alpha = beta = 1).
#include "common.glsl"

layout(binding = 0) readonly buffer Abuf { float a[]; };
layout(binding = 1) readonly buffer Bbuf { float b[]; };
layout(binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform Params { uint n; float alpha, beta; } p;

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) y[i] = p.alpha * a[i] + p.beta * b[i];
}
