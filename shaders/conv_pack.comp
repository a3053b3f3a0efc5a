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
// FORM (specialisation constant 1), how invocations map to the output:
//   0 a 3-D grid (x, y, plane), one output vec4 an invocation;
//   1 QUAD (W % 4 == 0): the same grid over rows of the input, four consecutive positions
//     an invocation: four vec4 fetches (one per blocked index) transposed into four output
//     vec4s, a quarter of the fetches. It writes the interior only; the host zeroes the
//     margin first;
//   3 QUAD over the flattened plane (H * W % 4 == 0 but not W, W >= 4: 14x14, 28x28 with
//     padding): four consecutive positions of the plane an invocation, as in QUAD, each
//     written to its own row and column (a quad spans at most two rows);
//   2 FLAT, for small planes (the weights' taps): a 1-D grid-stride loop over every output
//     vec4, whose index is split by divisions. On lavapipe a division is a scalar loop over
//     the SIMD lanes, which bounds forms 0 and 1 on large planes; a workgroup per small
//     plane would instead be bound by the workgroups' own cost (65536 for 512x512 weights).
layout(constant_id = 1) const uint FORM = 0;

// Built twice (meson.build): conv_pack4 (QUAD_INPUT defined, forms 1 and 3) reads vec4s
// with imageLoad from an RGBA32F storage texel buffer, which lavapipe compiles inline
// (resnet8-mini at batch 64, interleaved: 14x14 and 28x28 layers up to 10% faster);
// conv_pack (forms 0 and 2) gathers single floats with texelFetch from an R32F view,
// where imageLoad was slower (the 7x7 layers 13%: the gather's four conditional loads).
#ifdef QUAD_INPUT
layout(binding = 0, rgba32f) uniform readonly imageBuffer X;
#define FETCHX imageLoad
#else
layout(binding = 0) uniform samplerBuffer X;
#define FETCHX texelFetch
#endif
layout(binding = 1) writeonly buffer Out { vec4 O[]; };
layout(push_constant) uniform Params { uint D0, D1, H, W, HP, WP, M, plane0; } p;

// The input plane (d0, d1) that blocked index e of output plane (o0, o1) reads, as
// d0 * D1 + d1, or ~0 past the blocked dim.
uint src_plane(uint o0, uint o1, uint e)
{
    const uint d0 = BLOCK == 0u ? 4u * o0 + e : o0, d1 = BLOCK == 1u ? 4u * o1 + e : o1;
    return d0 < p.D0 && d1 < p.D1 ? d0 * p.D1 + d1 : ~0u;
}

// Output vec4 of plane (o0, o1) at input row y, column x: zero outside the input and
// past the blocked dim.
vec4 gather(uint o0, uint o1, uint y, uint x)
{
    const bool inside = y < p.H && x < p.W;
    vec4 v;
    [[unroll]] for (uint e = 0; e < 4u; e++) {
        const uint s = src_plane(o0, o1, e);
        v[e] = inside && s != ~0u ? FETCHX(X, int((s * p.H + y) * p.W + x)).x : 0.0;
    }
    return v;
}

// The output vec4s of positions 4g .. 4g + 3 of the flattened input plane (the plane whole
// vec4s): one fetch per blocked index, transposed.
void quad(uint o0, uint o1, uint g, out vec4 q[4])
{
    vec4 t[4];
    [[unroll]] for (uint e = 0; e < 4u; e++) {
        const uint s = src_plane(o0, o1, e);
        t[e] = s != ~0u ? FETCHX(X, int(s * (p.H * p.W / 4u) + g)) : vec4(0.0);
    }
    [[unroll]] for (uint j = 0; j < 4u; j++) q[j] = vec4(t[0][j], t[1][j], t[2][j], t[3][j]);
}

void main()
{
    const uint B1 = BLOCK == 1u ? (p.D1 + 3u) / 4u : p.D1;
    if (FORM == 2u) {
        const uint B0 = BLOCK == 0u ? (p.D0 + 3u) / 4u : p.D0, SP = p.HP * p.WP, total = B0 * B1 * SP;
        const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
        for (uint g = gl_GlobalInvocationID.x; g < total; g += stride) {
            const uint sp = g % SP, t = g / SP;
            O[g] = gather(t / B1, t % B1, sp / p.WP - p.M, sp % p.WP - p.M); // wrap past the top: large
        }
        return;
    }
    const uint plane = p.plane0 + gl_WorkGroupID.z;
    const uint o1 = plane % B1, o0 = plane / B1;
    if (FORM == 3u) {
        const uint g = gl_GlobalInvocationID.x;
        if (g >= p.H * p.W / 4u) return;
        vec4 q[4];
        quad(o0, o1, g, q);
        const uint y0 = 4u * g / p.W, x0 = 4u * g % p.W;
        [[unroll]] for (uint j = 0; j < 4u; j++) {
            const uint wrap = x0 + j >= p.W ? 1u : 0u, y = y0 + wrap, x = x0 + j - wrap * p.W;
            O[(plane * p.HP + y + p.M) * p.WP + x + p.M] = q[j];
        }
        return;
    }
    if (FORM == 1u) {
        const uint qx = gl_GlobalInvocationID.x, y = gl_GlobalInvocationID.y, W4 = p.W / 4u;
        if (qx >= W4 || y >= p.H) return;
        vec4 q[4];
        quad(o0, o1, y * W4 + qx, q);
        const uint o = (plane * p.HP + y + p.M) * p.WP + 4u * qx + p.M;
        [[unroll]] for (uint j = 0; j < 4u; j++) O[o + j] = q[j];
        return;
    }
    const uint xo = gl_GlobalInvocationID.x, yo = gl_GlobalInvocationID.y;
    if (xo >= p.WP || yo >= p.HP) return;
    O[(plane * p.HP + yo) * p.WP + xo] = gather(o0, o1, yo - p.M, xo - p.M); // wrap past the top: large
}
