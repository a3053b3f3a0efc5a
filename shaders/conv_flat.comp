#version 450
#extension GL_GOOGLE_include_directive : require
// A 3x3 convolution at stride 1 and padding 1 over planes whose rows are not whole vec4s
// (14x14, 7x7), reading x and dy as they are: the plane is taken as its H * W flattened
// positions, and an invocation's run is four consecutive flat positions j .. j + 3 (j a
// multiple of four; the run may span two rows). With the width W a specialisation
// constant, tap (r, s) reads x at j + (r - 1) W + s - 1 + (0 .. 3): per kernel row the six
// positions j + (r - 1) W - 1 .. j + (r - 1) W + 4, which are where the code is generated
//   - with FLAT_B4 (conv_flat4: H * W a multiple of four), components of the two or three
//     texels around them, chosen by swizzles (free), a texel outside the plane zero;
//   - without (conv_flat, conv_flat1: 7x7), single floats through an R32F view, each zero
//     outside the plane.
// A position outside the plane is exactly a tap past the top or bottom row, once the
// taps s = 0 and 2 that cross a row's ends are zeroed: their columns are a mask (a vec4
// of the run's four positions, 0 where the column is 0, resp. W - 1), multiplied in.
// MODE 0, forward (and backward data, the forward convolution of dy with the flipped
// weights): an invocation computes TM output channels (A's rows, shared across the
// subgroup as conv_texel's SHARE_A) at one run, a loop trip one input channel with its
// nine taps; A holds conv_taps4's weights, a vec4 of three taps a kernel row.
// MODE 2, backward filter: an invocation computes TM output channels x the nine taps of
// one input channel, a step one run of dy (A: dy, four positions a step) against x's taps
// at that run; with SPLIT the images are split between NS slices (invocation z), each
// writing its partial sums to the workspace, and MODE 4 adds the slices (the stem, one
// input channel: a single invocation's work otherwise).
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"

layout(constant_id = 0) const uint TM = 16;
layout(constant_id = 1) const uint SG = 16;
layout(constant_id = 2) const uint W = 14;
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const bool ACC = false;   // beta != 0: out = result + beta * out
layout(constant_id = 5) const bool OUT4 = false;  // forward: output planes whole vec4s
layout(constant_id = 6) const bool SPLIT = false; // backward filter: partial sums per slice
// S2 (specialisation constant 7): stride 2 where the input rows are whole vec4s but the
// output rows are not (28x28 -> 14x14; FLAT_B4, W = 2Q with Q even): a run is two pairs of
// output positions, each pair (c, c + 1) of one row (c even) reading x at 2c - 1 .. 2c + 3,
// the last component of one texel and the whole next one (2c a multiple of four), on each
// of its three rows: the taps are swizzles of them.
layout(constant_id = 7) const bool S2 = false;

#ifdef FLAT_B4
const bool B4 = true;
layout(binding = 1, rgba32f) uniform readonly imageBuffer B; // x (or dy for backward data)
#else
const bool B4 = false;
layout(binding = 1, r32f) uniform readonly imageBuffer B;
#endif
#ifdef FLAT_A1
const bool A4 = false;
layout(binding = 0, r32f) uniform readonly imageBuffer A; // dy (backward filter)
#else
const bool A4 = true;
layout(binding = 0, rgba32f) uniform readonly imageBuffer A; // conv_taps4's weights, or dy
#endif
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Out { vec4 O[]; };
layout(push_constant) uniform Params {
    uint N, C, HW, K; // x (N, C, H, W) with HW = H * W; K output channels
    uint has_bias, NS;
    float beta;
    uint PQ, H; // the output plane (HW at stride 1) and x's height
} p;

// X[r][m] = x at j + (r - 1) W - 1 + m (m = 0 .. 5) of the plane starting at float `plane`
// (texel plane / 4 with FLAT_B4), zero outside it.
void rows(int plane, int j, out float X[3][6])
{
    [[unroll]] for (uint r = 0; r < 3u; r++) {
        const int rel = (int(r) - 1) * int(W) - 1; // of X[r][0], from j
        if (B4) {
            // texels j / 4 + lo .. j / 4 + lo + 2 (lo = floor(rel / 4)), whole in or out
            const int lo = rel >> 2, nt = ((rel + 5) >> 2) - lo + 1;
            vec4 T[3];
            [[unroll]] for (int i = 0; i < 3; i++) {
                T[i] = vec4(0.0);
                if (i >= nt) continue; // (a constant condition: the loop still unrolls)
                const int t = j / 4 + lo + i;
                const vec4 v = imageLoad(B, plane / 4 + clamp(t, 0, int(p.HW / 4u) - 1));
                T[i] = t >= 0 && t < int(p.HW / 4u) ? v : vec4(0.0);
            }
            [[unroll]] for (int m = 0; m < 6; m++) X[r][m] = T[(rel + m - 4 * lo) >> 2][(rel + m - 4 * lo) & 3];
        } else {
            [[unroll]] for (int m = 0; m < 6; m++) {
                const int q = j + rel + m;
                const float v = imageLoad(B, plane + clamp(q, 0, int(p.HW) - 1)).x;
                X[r][m] = q >= 0 && q < int(p.HW) ? v : 0.0;
            }
        }
    }
}

// The taps' inputs for the run's four positions, xs[3 r + s] (columns masked: cm0 zero at
// column 0, cm2 at column W - 1).
void taps(float X[3][6], vec4 cm0, vec4 cm2, out vec4 xs[9])
{
    [[unroll]] for (uint r = 0; r < 3u; r++)
        [[unroll]] for (uint s = 0; s < 3u; s++) {
            const vec4 v = vec4(X[r][s], X[r][s + 1u], X[r][s + 2u], X[r][s + 3u]);
            xs[3u * r + s] = s == 0u ? v * cm0 : s == 2u ? v * cm2 : v;
        }
}

// S2: the taps' inputs xs[3 r + s] for the run's two pairs, pair i at output row rp[i] and
// column cp[i] (even), x's plane starting at texel plane4.
void taps2(int plane4, uint rp[2], uint cp[2], out vec4 xs[9])
{
    vec4 lo[3][2], hi[3][2]; // kernel row r, pair i: the texels of 2c - 4 .. 2c - 1 and 2c .. 2c + 3
    [[unroll]] for (uint i = 0; i < 2u; i++)
        [[unroll]] for (uint r = 0; r < 3u; r++) {
            const int h = int(2u * rp[i] + r) - 1, t = (h * int(W) + 2 * int(cp[i])) / 4;
            const bool in_h = h >= 0 && h < int(p.H), last = t >= int(p.HW / 4u);
            const vec4 a = imageLoad(B, plane4 + clamp(t - 1, 0, int(p.HW / 4u) - 1));
            const vec4 b = imageLoad(B, plane4 + clamp(t, 0, int(p.HW / 4u) - 1));
            lo[r][i] = in_h && cp[i] > 0u ? a : vec4(0.0); // (column 2c - 1 of the row above past its start)
            hi[r][i] = in_h && !last ? b : vec4(0.0);
        }
    [[unroll]] for (uint r = 0; r < 3u; r++) {
        xs[3u * r] = vec4(lo[r][0].w, hi[r][0].y, lo[r][1].w, hi[r][1].y);
        xs[3u * r + 1u] = vec4(hi[r][0].xz, hi[r][1].xz);
        xs[3u * r + 2u] = vec4(hi[r][0].yw, hi[r][1].yw);
    }
}

// The column masks of the four positions from column col0 (< W).
void masks(uint col0, out vec4 cm0, out vec4 cm2)
{
    [[unroll]] for (uint x = 0; x < 4u; x++) {
        uint col = col0 + x;
        col = col >= W ? col - W : col;
        cm0[x] = col == 0u ? 0.0 : 1.0;
        cm2[x] = col == W - 1u ? 0.0 : 1.0;
    }
}

void main()
{
    const uint NA = SPLIT ? TM : TM / SG, lane = gl_SubgroupInvocationID;
    if (MODE == 4u) {
        // out[i] = sum over the NS slices of the partials (workspace, binding 2 as floats)
        const uint total = p.K * p.C * 9u, i = gl_GlobalInvocationID.x;
        if (i >= total) return;
        float v = 0.0;
        for (uint s = 0; s < p.NS; s++) v += texelFetch(BIAS, int(s * total + i)).x;
        if (ACC) v += p.beta * O[i / 4u][i % 4u];
        O[i / 4u][i % 4u] = v;
        return;
    }
    const uint RUNS = (p.PQ + 3u) / 4u, Q = S2 ? W / 2u : W;
    if (MODE == 0u) {
        const uint NC = p.N * RUNS, run = min(gl_GlobalInvocationID.x, NC - 1u);
        const uint n = run / RUNS, j = run % RUNS * 4u, k0 = gl_GlobalInvocationID.y * TM;
        vec4 cm0, cm2;
        masks(j % W, cm0, cm2);
        uint rp[2], cp[2]; // S2: each pair's output row and column
        [[unroll]] for (uint i = 0; i < 2u; i++) {
            rp[i] = (j + 2u * i) / Q;
            cp[i] = (j + 2u * i) % Q;
        }
        uint own[NA]; // the first texel of conv_taps4's rows this lane fetches
        [[unroll]] for (uint t = 0; t < NA; t++) own[t] = min(k0 + t * SG + lane, p.K - 1u) * p.C * 3u;
        float acc[TM * 4u];
        [[unroll]] for (uint i = 0; i < TM * 4u; i++) acc[i] = 0.0;
        for (uint c = 0; c < p.C; c++) {
            vec4 xs[9];
            if (S2) {
                taps2(int((n * p.C + c) * (p.HW / 4u)), rp, cp, xs);
            } else {
                float X[3][6];
                rows(int((n * p.C + c) * p.HW), int(j), X);
                taps(X, cm0, cm2, xs);
            }
            vec4 a3[3][NA];
            [[unroll]] for (uint r = 0; r < 3u; r++)
                [[unroll]] for (uint t = 0; t < NA; t++) a3[r][t] = imageLoad(A, int(own[t] + c * 3u + r));
            [[unroll]] for (uint k = 0; k < TM; k++) {
                vec4 a[3];
                [[unroll]] for (uint r = 0; r < 3u; r++) a[r] = subgroupShuffle(a3[r][k / SG], k % SG);
                // each accumulator written once a trip (docs/lavapipe.md)
                [[unroll]] for (uint x = 0; x < 4u; x++) {
                    float v = acc[4u * k + x];
                    [[unroll]] for (uint r = 0; r < 3u; r++)
                        [[unroll]] for (uint s = 0; s < 3u; s++) v = fma(a[r][s], xs[3u * r + s][x], v);
                    acc[4u * k + x] = v;
                }
            }
        }
        if (gl_GlobalInvocationID.x >= NC) return;
        [[unroll]] for (uint k = 0; k < TM; k++) {
            const uint kk = k0 + k;
            if (kk >= p.K) break;
            const float bias = p.has_bias != 0u ? texelFetch(BIAS, int(kk)).x : 0.0;
            const uint o = (n * p.K + kk) * p.PQ + j;
            if (OUT4) {
                vec4 val = vec4(acc[4u * k], acc[4u * k + 1u], acc[4u * k + 2u], acc[4u * k + 3u]) + bias;
                if (ACC) val += p.beta * O[o / 4u];
                O[o / 4u] = val;
                continue;
            }
            [[unroll]] for (uint x = 0; x < 4u; x++) {
                if (j + x >= p.PQ) break;
                float val = acc[4u * k + x] + bias;
                if (ACC) val += p.beta * O[(o + x) / 4u][(o + x) % 4u];
                O[(o + x) / 4u][(o + x) % 4u] = val;
            }
        }
        return;
    }
    // MODE 2: channel ch, output channels k0 .. k0 + TM - 1, images slice, slice + NS, ..
    // (SPLIT: invocation x is ch + C * slice, the lanes of a subgroup different slices)
    const uint NS = SPLIT ? p.NS : 1u, gx = min(gl_GlobalInvocationID.x, p.C * NS - 1u);
    const uint ch = SPLIT ? gx % p.C : gx, slice = SPLIT ? gx / p.C : 0u, k0 = gl_GlobalInvocationID.y * TM;
    uint own[NA]; // dy[0, k, 0] of the rows this lane fetches (SPLIT: all TM, in order)
    [[unroll]] for (uint t = 0; t < NA; t++) own[t] = min(k0 + (SPLIT ? t : t * SG + lane), p.K - 1u) * p.PQ;
    float acc[TM * 9u];
    [[unroll]] for (uint i = 0; i < TM * 9u; i++) acc[i] = 0.0;
    uint n = slice, g = 0, col0 = 0, row0 = 0; // the run's first position's column and row
    const uint steps = (p.N - min(slice, p.N) + NS - 1u) / NS * RUNS;
    for (uint step = 0; step < steps; step++) {
        const uint j = 4u * g;
        vec4 cm0, cm2;
        masks(col0, cm0, cm2);
        vec4 xs[9];
        if (S2) {
            const bool wrap = col0 + 2u >= Q; // the second pair on the next row
            uint rp[2] = {row0, wrap ? row0 + 1u : row0}, cp[2] = {col0, wrap ? col0 + 2u - Q : col0 + 2u};
            taps2(int((n * p.C + ch) * (p.HW / 4u)), rp, cp, xs);
        } else {
            float X[3][6];
            rows(int((n * p.C + ch) * p.HW), int(j), X);
            taps(X, cm0, cm2, xs);
        }
        vec4 d[NA]; // dy at the run, zero past the plane
        [[unroll]] for (uint t = 0; t < NA; t++) {
            const uint at = n * p.K * p.PQ + own[t] + j;
            if (A4) {
                d[t] = imageLoad(A, int(at / 4u));
            } else {
                [[unroll]] for (uint x = 0; x < 4u; x++)
                    d[t][x] = j + x < p.PQ ? imageLoad(A, int(min(at + x, at - j + p.PQ - 1u))).x : 0.0;
            }
        }
        [[unroll]] for (uint k = 0; k < TM; k++) {
            const vec4 a = SPLIT ? d[min(k, NA - 1u)] : subgroupShuffle(d[k / SG], k % SG);
            [[unroll]] for (uint c = 0; c < 9u; c++) acc[9u * k + c] = fma4(a, xs[c], acc[9u * k + c]);
        }
        col0 += 4u;
        if (col0 >= Q) {
            col0 -= Q;
            row0++;
        }
        if (++g == RUNS) {
            g = 0;
            col0 = 0;
            row0 = 0;
            n += NS;
        }
    }
    if (gl_GlobalInvocationID.x >= p.C * NS) return;
    const uint base = SPLIT ? slice * p.K * p.C * 9u : 0u;
    [[unroll]] for (uint k = 0; k < TM; k++) {
        const uint kk = k0 + k;
        if (kk >= p.K) break;
        [[unroll]] for (uint c = 0; c < 9u; c++) {
            const uint o = base + (kk * p.C + ch) * 9u + c;
            float val = acc[9u * k + c];
            if (ACC && !SPLIT) val += p.beta * O[o / 4u][o % 4u];
            O[o / 4u][o % 4u] = val;
        }
    }
}
