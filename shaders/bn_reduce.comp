#version 450
#extension GL_GOOGLE_include_directive : require
// Per-channel reductions over N*H*W of an NCHW tensor: one workgroup per channel
// (gl_WorkGroupID.x), each invocation sums a strided share serially, then a shared-memory
// tree adds the partial sums (the workgroup size must be a power of two).
//   MODE 0, channel sum:   out0[c] = sum x  (+ beta * out0[c])
//   MODE 1, BN backward:   out0[c] = dgamma = sum dy*(x-mean)*invstd, out1[c] = dbeta = sum dy
//                          (A = dy, B = x, st0 = save_mean, st1 = save_invstd)
//   MODE 2, BN statistics: out0[c] = mean, out1[c] = 1/sqrt(var_biased + eps); with
//                          flags bit 0, st0/st1 (running mean/var) += momentum*(stat - run),
//                          the unbiased variance for the running one.
// MODE 2 reads x once: each invocation's share is summed about its own first element and
// the shares are combined by their counts, means and squared deviations, so a large mean
// costs no precision.
#include "common.glsl"

layout(constant_id = 0) const uint MODE = 0;
// Built twice (meson.build). bn_reduce4 (VEC4_UNITS defined; H*W a multiple of four): A
// and B are RGBA32F views and an invocation's unit is a vec4 of four consecutive elements
// of one plane: a quarter of the fetches (on lavapipe the fetches bound this kernel). Sums
// then run in another order, as exact. bn_reduce: R32F views, a float a unit. Both read
// with imageLoad, which lavapipe compiles inline (a texelFetch is a call).
#ifdef VEC4_UNITS
const bool VEC4 = true;
layout(binding = 0, rgba32f) uniform readonly imageBuffer A;
layout(binding = 1, rgba32f) uniform readonly imageBuffer B;
#else
const bool VEC4 = false;
layout(binding = 0, r32f) uniform readonly imageBuffer A;
layout(binding = 1, r32f) uniform readonly imageBuffer B;
#endif
layout(binding = 2) buffer Out0 { float out0[]; };
layout(binding = 3) buffer Out1 { float out1[]; };
layout(binding = 4) buffer St0 { float st0[]; };
layout(binding = 5) buffer St1 { float st1[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    uint flags;       // MODE 2: bit 0 updates the running statistics
    float beta;       // MODE 0: out0 = sum + beta * out0 (0 overwrites)
    float momentum, eps;
} p;

shared float red0[gl_WorkGroupSize.x];
shared float red1[gl_WorkGroupSize.x];

// Sums v over the workgroup; every invocation gets the result.
vec2 wg_sum(vec2 v)
{
    const uint t = gl_LocalInvocationID.x;
    red0[t] = v.x;
    red1[t] = v.y;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
        if (t < s) {
            red0[t] += red0[t + s];
            red1[t] += red1[t + s];
        }
        barrier();
    }
    const vec2 r = vec2(red0[0], red1[0]);
    barrier(); // the arrays may be reused right after
    return r;
}

// Units (elements, or vec4s with VEC4) per plane.
uint units() { return VEC4 ? p.hw / 4u : p.hw; }

// This invocation's share of a channel: the units n*U + i (i < U) of the channel's
// N planes at flat positions t, t + WG, t + 2*WG, ... Stepping (n, i) by (WG / U, WG % U)
// with a carry avoids an integer division per unit (scalarised on lavapipe).
struct Walk { uint n, i; };
Walk walk_begin() { return Walk(gl_LocalInvocationID.x / units(), gl_LocalInvocationID.x % units()); }
void walk_next(inout Walk w)
{
    w.i += gl_WorkGroupSize.x % units();
    w.n += gl_WorkGroupSize.x / units();
    if (w.i >= units()) {
        w.i -= units();
        w.n++;
    }
}
int walk_index(Walk w, uint ch) { return int((w.n * p.c + ch) * units() + w.i); }

// A unit of t: four elements (VEC4) or one, as x with the rest zero.
#define unit(t, j) (VEC4 ? imageLoad(t, j) : vec4(imageLoad(t, j).x, 0.0, 0.0, 0.0))
// The sum of a unit's elements.
float usum(vec4 v) { return VEC4 ? (v.x + v.y) + (v.z + v.w) : v.x; }

void main()
{
    const uint ch = gl_WorkGroupID.x;
    const float count = float(p.n) * float(p.hw);
    if (MODE == 0u) {
        float s = 0.0;
        for (Walk w = walk_begin(); w.n < p.n; walk_next(w)) s += usum(unit(A, walk_index(w, ch)));
        const float tot = wg_sum(vec2(s, 0.0)).x;
        if (gl_LocalInvocationID.x == 0u) out0[ch] = p.beta != 0.0 ? tot + p.beta * out0[ch] : tot;
    } else if (MODE == 1u) {
        const float mean = st0[ch], invstd = st1[ch];
        float sdy = 0.0, sdyx = 0.0;
        for (Walk w = walk_begin(); w.n < p.n; walk_next(w)) {
            const int j = walk_index(w, ch);
            const vec4 dy = unit(A, j);
            sdy += usum(dy);
            sdyx += usum(dy * (unit(B, j) - mean));
        }
        const vec2 tot = wg_sum(vec2(sdyx, sdy));
        if (gl_LocalInvocationID.x == 0u) {
            out0[ch] = tot.x * invstd;
            out1[ch] = tot.y;
        }
    } else {
        // One pass over x: each invocation sums its share about its own first unit's first
        // element (d = x - k), giving its count, mean and squared deviations (M2 = sum d^2 -
        // (sum d)^2 / count: the cancellation is only that of its share's spread about k);
        // the workgroup then combines them as Chan et al.: mean = sum(count_i * mean_i) /
        // count, M2 = sum(M2_i + count_i * (mean_i - mean)^2).
        Walk w = walk_begin();
        const float k = w.n < p.n ? imageLoad(A, walk_index(w, ch)).x : 0.0;
        float s = 0.0, q = 0.0, ni = 0.0;
        for (; w.n < p.n; walk_next(w)) {
            const vec4 d = unit(A, walk_index(w, ch)) - k;
            s += usum(d);
            q += VEC4 ? dot(d, d) : d.x * d.x;
            ni += 1.0;
        }
        if (VEC4) ni *= 4.0;
        // means about the channel's first element, which every invocation reads
        const float shift = imageLoad(A, int(ch * units())).x;
        const float mi = ni > 0.0 ? (k - shift) + s / ni : 0.0;
        const float m2 = ni > 0.0 ? max(q - s * (s / ni), 0.0) : 0.0;
        const float dmean = wg_sum(vec2(ni * mi, 0.0)).x / count;
        const float mean = shift + dmean;
        const float dm = mi - dmean;
        const float ssq = wg_sum(vec2(m2 + ni * dm * dm, 0.0)).x;
        if (gl_LocalInvocationID.x == 0u) {
            const float var = ssq / count;
            out0[ch] = mean;
            out1[ch] = 1.0 / sqrt(var + p.eps);
            if ((p.flags & 1u) != 0u) {
                const float unbiased = count > 1.0 ? ssq / (count - 1.0) : var;
                st0[ch] = (1.0 - p.momentum) * st0[ch] + p.momentum * mean;
                st1[ch] = (1.0 - p.momentum) * st1[ch] + p.momentum * unbiased;
            }
        }
    }
}
