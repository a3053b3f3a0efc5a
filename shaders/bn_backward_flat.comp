#version 450
#extension GL_GOOGLE_include_directive : require
// bn_backward's elementwise pass for planes of more than four floats in images of whole
// vec4s (7x7 planes too), read and written as flattened vec4s as bn_act_forward_flat:
// each vec4's elements lie in channel c0 = 4v / HW or c0 + 1 (HW > 4, a specialisation
// constant), the channels' coefficients read through R32F views and chosen per element.
//   dx = gamma * invstd * (dy - dbeta/n - xhat * dgamma/n)   (+ beta * dx with ACC)
// Grid: x strides over an image's C*H*W/4 vec4s, z strides over the batch.
#include "common.glsl"

layout(constant_id = 0) const bool ACC = false;
layout(constant_id = 1) const uint HW = 49;

layout(binding = 0, rgba32f) uniform readonly imageBuffer DY;
layout(binding = 1, rgba32f) uniform readonly imageBuffer X;
layout(binding = 2, r32f) uniform readonly imageBuffer GAMMA;
layout(binding = 3, r32f) uniform readonly imageBuffer MEAN;
layout(binding = 4, r32f) uniform readonly imageBuffer INVSTD;
layout(binding = 5, r32f) uniform readonly imageBuffer DGAMMA;
layout(binding = 6, r32f) uniform readonly imageBuffer DBETA;
layout(binding = 7) buffer DXbuf { vec4 dx[]; };

layout(push_constant) uniform Params {
    uint n, c, units; // units: vec4s per image
    uint flags;       // bit 0: gamma given (else 1)
    float inv_count;  // 1 / (N*H*W)
    float beta;       // dx = result + beta * dx (0 overwrites)
} p;

// channel c0's value of b for the elements before the plane boundary, c1's after it
#define PICK(b) mix(vec4(imageLoad(b, c0).x), vec4(imageLoad(b, c1).x), next)

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint v = gl_GlobalInvocationID.x; v < p.units; v += stride) {
        const uint e = 4u * v, ch = e / HW;
        const int c0 = int(ch), c1 = int(min(ch + 1u, p.c - 1u));
        const bvec4 next = greaterThanEqual(uvec4(e - ch * HW) + uvec4(0u, 1u, 2u, 3u), uvec4(HW));
        const vec4 invstd = PICK(INVSTD), mean = PICK(MEAN);
        const vec4 gi = ((p.flags & 1u) != 0u ? PICK(GAMMA) : vec4(1.0)) * invstd;
        const vec4 mdy = PICK(DBETA) * p.inv_count, mdyx = PICK(DGAMMA) * p.inv_count;
        for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
            const uint j = n * p.units + v;
            const vec4 xhat = (imageLoad(X, int(j)) - mean) * invstd;
            vec4 r = gi * (imageLoad(DY, int(j)) - mdy - xhat * mdyx);
            if (ACC) r += p.beta * dx[j];
            dx[j] = r;
        }
    }
}
