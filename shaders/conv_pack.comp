#version 450
#extension GL_GOOGLE_include_directive : require
// Packs a (D0, D1, H, W) float tensor into vec4s of four consecutive indices of one dim,
// for conv_texel's VEC4 mode (RGBA32F fetches: four reduction terms a fetch):
//   BLOCK 1: out[d0][d1/4][y][x] = in[d0][4*(d1/4)+e][y-M][x-M], e = 0..3  (NCHW -> NC4HW4)
//   BLOCK 0: out[d0/4][d1][y][x] = in[4*(d0/4)+e][d1][y-M][x-M]            (NCHW -> N4CHW4)
// with the plane grown to HP x WP around a margin M: every element outside the input
// (the blocked dim's tail, the margin) is zero, so the kernel reads padding without
// bounds checks.
#include "common.glsl"

layout(constant_id = 0) const uint BLOCK = 1;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) writeonly buffer Out { vec4 O[]; };
layout(push_constant) uniform Params { uint D0, D1, H, W, HP, WP, M, plane0; } p;

// One invocation per output vec4: x, y from the grid, the plane (o0, o1) from its z (plus
// plane0, for dispatches split by the device's workgroup-count limit). No
// index is split by a division per element: on lavapipe an integer division is a scalar
// loop over the SIMD lanes, and with one index split into four coordinates per element
// the divisions, not the memory, bounded this kernel.
void main()
{
    const uint xo = gl_GlobalInvocationID.x, yo = gl_GlobalInvocationID.y, plane = p.plane0 + gl_WorkGroupID.z;
    if (xo >= p.WP || yo >= p.HP) return;
    const uint B1 = BLOCK == 1u ? (p.D1 + 3u) / 4u : p.D1;
    const uint o1 = plane % B1, o0 = plane / B1;
    const uint y = yo - p.M, x = xo - p.M; // wrap past the top: large
    const bool inside = y < p.H && x < p.W;
    vec4 v;
    [[unroll]] for (uint e = 0; e < 4u; e++) {
        const uint d0 = BLOCK == 0u ? 4u * o0 + e : o0, d1 = BLOCK == 1u ? 4u * o1 + e : o1;
        v[e] = inside && d0 < p.D0 && d1 < p.D1 ? texelFetch(X, int(((d0 * p.D1 + d1) * p.H + y) * p.W + x)).x : 0.0;
    }
    O[(plane * p.HP + yo) * p.WP + xo] = v;
}
