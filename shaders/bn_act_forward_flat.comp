#version 450
#extension GL_GOOGLE_include_directive : require
// bn_act_forward (batch norm + masked ReLU, the shortcut as RES says) for planes of more
// than four floats in images of whole vec4s (7x7 planes of 49 floats too): the image is
// read and written as flattened vec4s, each invocation a vec4 at a time, instead of a
// plane's grid (a float at a time where planes are not whole vec4s; idle lanes where a
// plane's vec4s do not fill the workgroup). On lavapipe a store is a loop over the lanes.
// A vec4's elements lie in channel c0 = 4v / HW, the last ones possibly in c0 + 1 (HW > 4:
// at most one plane boundary in four elements); HW is a specialisation constant, so the
// division is a multiply when the code is generated. The channels' coefficients are read
// through R32F storage texel views (imageLoad, inline on lavapipe) and chosen per element.
// Grid: x strides over an image's C*H*W/4 vec4s, z strides over the batch.
#include "common.glsl"

layout(constant_id = 0) const uint EVAL = 0;
layout(constant_id = 1) const uint CHANNEL = 0;
layout(constant_id = 2) const uint RES = 0;
layout(constant_id = 3) const uint SAVE = 0;
layout(constant_id = 4) const uint HW = 49;

layout(binding = 0, rgba32f) uniform readonly imageBuffer X;
layout(binding = 1, r32f) uniform readonly imageBuffer GAMMA;
layout(binding = 2, r32f) uniform readonly imageBuffer BETA;
layout(binding = 3, r32f) uniform readonly imageBuffer MEAN;
layout(binding = 4, r32f) uniform readonly imageBuffer SCALE;   // invstd (training) or running_var (eval)
layout(binding = 5, rgba32f) uniform readonly imageBuffer R;
layout(binding = 6, r32f) uniform readonly imageBuffer RGAMMA;
layout(binding = 7, r32f) uniform readonly imageBuffer RBETA;
layout(binding = 8, r32f) uniform readonly imageBuffer RMEAN;
layout(binding = 9, r32f) uniform readonly imageBuffer RSCALE;
layout(binding = 10, r32f) uniform readonly imageBuffer MASK; // C*H*W entries (CHANNEL 0) or C
layout(binding = 11) writeonly buffer Tbuf { vec4 t_out[]; };
layout(binding = 12) writeonly buffer Ybuf { vec4 y[]; };

layout(push_constant) uniform Params {
    uint n, c, units;  // units: vec4s per image (C*H*W/4)
    float eps;
} p;

// channel ch's mean, scale * gamma and beta: t = (x - mean) * sg + beta, as bn_act_forward
// (a macro: image parameters cannot carry their format)
#define COEFFS(g_, b_, m_, s_, ch) \
    vec3(imageLoad(m_, ch).x, \
         (EVAL != 0u ? 1.0 / sqrt(imageLoad(s_, ch).x + p.eps) : imageLoad(s_, ch).x) * imageLoad(g_, ch).x, \
         imageLoad(b_, ch).x)

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint v = gl_GlobalInvocationID.x; v < p.units; v += stride) {
        const uint c0 = 4u * v / HW;
        const uint pos = 4u * v - c0 * HW;
        const int c1 = int(min(c0 + 1u, p.c - 1u));
        // elements at or past the plane's end belong to c0 + 1
        const bvec4 next = greaterThanEqual(uvec4(pos) + uvec4(0u, 1u, 2u, 3u), uvec4(HW));
        const vec3 k0 = COEFFS(GAMMA, BETA, MEAN, SCALE, int(c0)), k1 = COEFFS(GAMMA, BETA, MEAN, SCALE, c1);
        const vec4 m = mix(vec4(k0.x), vec4(k1.x), next), sg = mix(vec4(k0.y), vec4(k1.y), next);
        const vec4 b = mix(vec4(k0.z), vec4(k1.z), next);
        vec4 rm = vec4(0.0), rsg = vec4(0.0), rb = vec4(0.0);
        if (RES == 2u) {
            const vec3 r0 = COEFFS(RGAMMA, RBETA, RMEAN, RSCALE, int(c0)), r1 = COEFFS(RGAMMA, RBETA, RMEAN, RSCALE, c1);
            rm = mix(vec4(r0.x), vec4(r1.x), next);
            rsg = mix(vec4(r0.y), vec4(r1.y), next);
            rb = mix(vec4(r0.z), vec4(r1.z), next);
        }
        vec4 c;
        if (CHANNEL != 0u)
            c = mix(vec4(imageLoad(MASK, int(c0)).x), vec4(imageLoad(MASK, c1).x), next);
        else
            c = vec4(imageLoad(MASK, int(4u * v)).x, imageLoad(MASK, int(4u * v + 1u)).x,
                     imageLoad(MASK, int(4u * v + 2u)).x, imageLoad(MASK, int(4u * v + 3u)).x);
        for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
            const uint j = n * p.units + v;
            vec4 t = (imageLoad(X, int(j)) - m) * sg + b;
            if (RES == 1u) t += imageLoad(R, int(j));
            if (RES == 2u) t += (imageLoad(R, int(j)) - rm) * rsg + rb;
            if (SAVE != 0u) t_out[j] = t;
            y[j] = mix((1.0 - c) * t, t, greaterThan(t, vec4(0.0)));
        }
    }
}
