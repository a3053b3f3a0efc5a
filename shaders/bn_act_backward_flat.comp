#version 450
#extension GL_GOOGLE_include_directive : require
// bn_act_backward's elementwise pass (batch norm + masked ReLU) for planes of more than
// four floats in images of whole vec4s (7x7 planes too), read and written as flattened
// vec4s as bn_act_forward_flat: each vec4's elements lie in channel c0 = 4v / HW or c0 + 1
// (HW > 4, a specialisation constant), the channels' coefficients chosen per element.
//   t  = (x - mean) * invstd * gamma + beta,  dt = dy * (t > 0 ? 1 : 1 - mask)
//   dx = gamma * invstd * (dt - dbeta/n - xhat * dgamma/n)   (+ beta * dx with ACC)
// DC 1 (a trained pixel mask; one workgroup row over the batch): each invocation also sums
// its mask entries' gradient over the batch, dc = sum_n dy * (relu(t) - t) + lambda * sign(mask).
// Grid: x strides over an image's C*H*W/4 vec4s, z strides over the batch.
#include "common.glsl"

layout(constant_id = 0) const bool ACC = false;
layout(constant_id = 1) const uint CHANNEL = 0;
layout(constant_id = 2) const uint DC = 0;
layout(constant_id = 3) const uint HW = 49;

layout(binding = 0, rgba32f) uniform readonly imageBuffer DY;
layout(binding = 1, rgba32f) uniform readonly imageBuffer X;
layout(binding = 2, r32f) uniform readonly imageBuffer MASK; // C*H*W entries (CHANNEL 0) or C
layout(binding = 3, r32f) uniform readonly imageBuffer GAMMA;
layout(binding = 4, r32f) uniform readonly imageBuffer BETA;
layout(binding = 5, r32f) uniform readonly imageBuffer MEAN;
layout(binding = 6, r32f) uniform readonly imageBuffer INVSTD;
layout(binding = 7, r32f) uniform readonly imageBuffer DGAMMA;
layout(binding = 8, r32f) uniform readonly imageBuffer DBETA;
layout(binding = 9) readonly buffer Lbuf { float lambda[]; };
layout(binding = 10) buffer DXbuf { vec4 dx[]; };
layout(binding = 11) writeonly buffer DCbuf { vec4 dc[]; };

layout(push_constant) uniform Params {
    uint n, c, units; // units: vec4s per image
    float inv_count;  // 1 / (N*H*W)
    float beta;       // ACC: dx = result + beta * dx
    uint lambda_index, has_lambda;
} p;

// channel c0's value of b for the elements before the plane boundary, c1's after it
#define PICK(b) mix(vec4(imageLoad(b, c0).x), vec4(imageLoad(b, c1).x), next)

void main()
{
    const float lam = DC != 0u && p.has_lambda != 0u ? lambda[p.lambda_index] : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint v = gl_GlobalInvocationID.x; v < p.units; v += stride) {
        const uint e = 4u * v, ch = e / HW;
        const int c0 = int(ch), c1 = int(min(ch + 1u, p.c - 1u));
        const bvec4 next = greaterThanEqual(uvec4(e - ch * HW) + uvec4(0u, 1u, 2u, 3u), uvec4(HW));
        const vec4 invstd = PICK(INVSTD), mean = PICK(MEAN), g = PICK(GAMMA), b = PICK(BETA);
        const vec4 gi = g * invstd;
        const vec4 mdy = PICK(DBETA) * p.inv_count, mdyx = PICK(DGAMMA) * p.inv_count;
        const vec4 c = CHANNEL != 0u ? PICK(MASK)
                                     : vec4(imageLoad(MASK, int(e)).x, imageLoad(MASK, int(e + 1u)).x,
                                            imageLoad(MASK, int(e + 2u)).x, imageLoad(MASK, int(e + 3u)).x);
        vec4 acc = vec4(0.0);
        for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
            const uint j = n * p.units + v;
            const vec4 xm = imageLoad(X, int(j)) - mean, dy = imageLoad(DY, int(j));
            const vec4 t = xm * (invstd * g) + b;
            const vec4 dt = mix(dy * (1.0 - c), dy, greaterThan(t, vec4(0.0)));
            vec4 r = gi * (dt - mdy - (xm * invstd) * mdyx);
            if (ACC) r += p.beta * dx[j];
            dx[j] = r;
            if (DC != 0u) acc -= dy * min(t, vec4(0.0));
        }
        if (DC != 0u) dc[v] = acc + lam * sign(c);
    }
}
