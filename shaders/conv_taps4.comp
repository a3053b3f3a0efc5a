#version 450
#extension GL_GOOGLE_include_directive : require
// The weights of a 3x3 convolution as one vec4 per kernel row, for conv_texel's DIRECT
// forward: out[m, c, r] = (v(m, c, r, 0), v(m, c, r, 1), v(m, c, r, 2), 0) with
//   FLIP 0: v(m, c, r, s) = w[m, c, r, s]           (forward: m = k over K, c over C)
//   FLIP 1: v(m, c, r, s) = w[c, m, 2 - r, 2 - s]   (the forward convolution that computes
//           a stride-1 backward-data pass: m over the input channels, c over K)
#include "common.glsl"

layout(constant_id = 0) const bool FLIP = false;
layout(binding = 0, r32f) uniform readonly imageBuffer W; // read inline (docs/lavapipe.md)
layout(binding = 1) writeonly buffer Out { vec4 O[]; };
layout(push_constant) uniform Params { uint M, C; } p; // out is M x C x 3

void main()
{
    const uint total = p.M * p.C * 3u;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        const uint r = i % 3u, t = i / 3u, c = t % p.C, m = t / p.C;
        vec4 v = vec4(0.0);
        [[unroll]] for (uint s = 0; s < 3u; s++)
            v[s] = imageLoad(W, int(FLIP ? ((c * p.M + m) * 3u + 2u - r) * 3u + 2u - s : ((m * p.C + c) * 3u + r) * 3u + s)).x;
        O[i] = v;
    }
}
