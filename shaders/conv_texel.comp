#version 450
#extension GL_GOOGLE_include_directive : require
// Convolution (forward, backward data or backward filter, see conv_params.glsl) as a
// register-blocked implicit GEMM reading through texel buffers: the fast form on
// lavapipe, where texel fetches are vectorised gathers (LAVAPIPE.md).
// Each invocation computes TM output rows x TN output columns.
// Built twice (meson.build): conv_texel reads A and B one float a texel (R32F views);
// conv_texel4 (VEC4_OPERANDS defined) reads RGBA32F views: of operands packed by
// conv_pack.comp so that each texel holds four consecutive terms of the reduction
// (channels for modes 0 and 3, images for mode 2; DIRECT below reads them unpacked); the
// host passes the packed dim's count of vec4s in its place (C for mode 0, K for mode 3,
// N for mode 2). A fetch then brings four terms, and the gathers, which bound the speed
// on lavapipe, fall 4x. A and B are storage texel buffers read with imageLoad, which
// lavapipe compiles inline; a texelFetch is a call to a generated function
// (docs/lavapipe.md: 7-10% on the 3x3 layers).
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"
#include "conv_params.glsl"

layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 4;
layout(constant_id = 2) const bool FLIP = false;
#ifdef RAW_TAPS
#define VEC4_OPERANDS
#endif
#ifdef VEC4_OPERANDS
const bool VEC4 = true;
#define FMT rgba32f
#else
const bool VEC4 = false;
#define FMT r32f
#endif
// SHARE_A (VEC4 only): every invocation of a workgroup (one row, LY = 1) has the same TM
// rows of A, so the SG lanes of a subgroup fetch them TM / SG rows each and pass them
// round with subgroupShuffle instead of all fetching all TM (TM a multiple of SG, the
// subgroup size; the whole subgroup stays active through the loop).
layout(constant_id = 3) const bool SHARE_A = false;
layout(constant_id = 4) const uint SG = 8;
const uint NA = SHARE_A ? TM / SG : 1;
// OUT4 (specialisation constant 5): the host has checked that every invocation's TN
// columns are consecutive floats of the output starting on a vec4 (TN % 4 == 0), so it
// stores them a vec4 at a time. ACC (6): beta != 0, the output is read and added to.
// On lavapipe every store or load is a loop over the lanes, run whether or not a lane
// takes that path, so both choices are made when the pipeline is built.
layout(constant_id = 5) const bool OUT4 = false;
layout(constant_id = 6) const bool ACC = false;
// WIN (specialisation constant 7; mode 2, VEC4, SHARE_A, PADDED, a 3x3 kernel at stride 1,
// TN = 9): each invocation's columns are the nine taps of one input channel, so for a
// reduction step (n, p, q) it needs the 3x3 window of x around (p, q), and the step to
// q + 1 shares six of those nine vec4s: the window slides along each row, three fetches
// a step instead of nine.
layout(constant_id = 7) const bool WIN = false;
// DIRECT (specialisation constant 8; mode 2 in the packed build, SHARE_A, a 3x3 kernel at
// stride 1 and padding 1, W a multiple of 4, TN = 9): dy and x read as they are, not
// packed: a texel is four consecutive positions of one row (dy (N, K, P, Q) and x
// (N, C, H, W) through RGBA32F views). A reduction step is a segment of QW texels of a row
// of dy (n, p, q/4 .. q/4 + QW - 1) against the three rows of x around it, read once with
// the texels on either side; the taps s = 0, 1, 2 take x at q - 1, q, q + 1 by swizzles
// of neighbouring texels, and each accumulator takes QW vec4 terms a trip. No packs (a
// fifth of the packed backward filter's time).
// In mode 0 (forward; backward data at stride 1 as the forward convolution of dy with
// the flipped weights), DIRECT reads x unpacked the same way: each invocation's TN = 4 or
// 8 columns are a run of consecutive positions q0 .. q0 + TN - 1 of one output row (W a
// multiple of TN), a loop trip is one input channel with its nine taps, B the TN / 4 + 2
// texels of x around the run on each of three rows, and A the weights as one vec4 of
// three taps per kernel row (conv_taps4.comp), or, in the build conv_direct3 (RAW_TAPS),
// w itself through an R32F view, a float a tap (FLIP, specialisation constant 2: the
// backward data's flipped weights w[c, k, 2 - r, 2 - s] of the transposed shape).
layout(constant_id = 8) const bool DIRECT = false;
const uint E = TN / 4u;
// ROW1 (specialisation constant 9; DIRECT, mode 0, W = 4): rows of one texel, so the run
// of TN = 4E positions spans E rows of the plane (H * 4 a multiple of TN), and a trip
// reads the E + 2 input rows around them, a texel each, with nothing beside them.
layout(constant_id = 9) const bool ROW1 = false;
// SEG (specialisation constant 12; DIRECT, mode 2): QW, the texels of a row a reduction
// step takes (the row's texels are a multiple of it).
layout(constant_id = 12) const uint SEG = 1;
const uint QW = SEG;
// STRIDE2 (specialisation constant 13; DIRECT, modes 0 and 2): a 3x3 kernel at stride 2 and
// padding 1, input rows a multiple of eight positions: output position q reads x at
// 2q - 1 .. 2q + 1, so a run of E output texels reads 2E + 1 texels of each input row
// (tq - 1 .. tq + 2E - 1 for the texel tq = q0 / 2 of position 2 q0), and the taps take
// the odd and even positions of neighbouring texels by swizzles. The backward filter's
// segment of QW texels of dy likewise reads 2 QW + 1 texels of each of x's rows.
layout(constant_id = 13) const bool STRIDE2 = false;
const uint ST = STRIDE2 ? 2u : 1u;
// UP2 (specialisation constant 14; DIRECT, mode 0, TN = 16): the backward data of a 3x3
// kernel at stride 2 and padding 1 (dx's rows a multiple of eight, its height even) as a
// transposed convolution of dy: the host passes dy as x (H, W its plane), dx's plane as
// (P, Q) = (2H, 2W), and the weights flipped as for the stride-1 backward data. Each
// invocation computes the rows 2l and 2l + 1 of dx at eight positions 8g .. 8g + 7 from
// dy's rows l and l + 1 at positions 4g .. 4g + 4: even rows take kernel row 1 from dy's
// row l, odd rows rows 0 and 2 from l + 1 and l; even positions tap 1, odd positions taps
// 0 and 2 likewise. Only the taps that reach each position are summed (a quarter of a
// stride-1 convolution's), and no lane of a subgroup takes another path.
layout(constant_id = 14) const bool UP2 = false;
// K1 (specialisation constant 15; DIRECT, STRIDE2, conv_texel4): a 1x1 kernel at stride
// 2 without padding (the ResNets' projection shortcuts): output position q reads x at 2q,
// the even positions of two texels of input row 2 h0. Forward (C a multiple of four): a
// loop trip is four input channels, A one vec4 of their weights (w as it is). Backward
// filter: each invocation's TN columns are TN channels, a step dy's segment against
// their rows 2v.
layout(constant_id = 15) const bool K1 = false;
// RUNS (specialisation constant 16; DIRECT, mode 0, stride 1, not ROW1): rows whose W / 4
// texels are not a whole number of runs of E = TN / 4: each row is RUNS = ceil(W4 / E)
// runs, invocation x taking run x % RUNS of output row x / RUNS, the last starting at
// W4 - E, and of it storing only the texels the run before did not (0: runs of TN
// positions that tile the rows).
layout(constant_id = 16) const uint RUNS = 0;

#ifdef RAW_TAPS
const bool RAW = true;
layout(binding = 0, r32f) uniform readonly imageBuffer A;
#else
const bool RAW = false;
layout(binding = 0, FMT) uniform readonly imageBuffer A;
#endif // weights (modes 0, 1) or dy (mode 2)
layout(binding = 1, FMT) uniform readonly imageBuffer B; // x (modes 0, 2) or dy (mode 1)
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Out { vec4 O[]; };  // floats, as vec4s (allocations are whole vec4s)

// The inputs of the kernel taps s = 0, 1, 2 for four consecutive outputs of a row, from
// three neighbouring texels of an input row: m holds the outputs' centres, l and g the
// texels on either side; x at q - 1, q, q + 1 by swizzles (free: each component is its own
// register) ...
void taps_s1(vec4 l, vec4 m, vec4 g, out vec4 t0, out vec4 t1, out vec4 t2)
{
    t0 = vec4(l.w, m.xyz);
    t1 = m;
    t2 = vec4(m.yzw, g.x);
}

// ... and at stride 2, where the four centres are the even positions of m and g: x at
// 2q - 1, 2q, 2q + 1.
void taps_s2(vec4 l, vec4 m, vec4 g, out vec4 t0, out vec4 t1, out vec4 t2)
{
    t0 = vec4(l.w, m.y, m.w, g.y);
    t1 = vec4(m.x, m.z, g.x, g.z);
    t2 = vec4(m.y, m.w, g.y, g.w);
}

// The even positions of two consecutive texels (K1: a 1x1 kernel at stride 2).
vec4 evens(vec4 lo, vec4 hi) { return vec4(lo.xz, hi.xz); }

void main()
{
    const uint M = gemm_m(), NC = gemm_n();
    const uint j0 = gl_GlobalInvocationID.x * TN;
    const uint i0 = gl_GlobalInvocationID.y * TM;
    if (!SHARE_A && (i0 >= M || j0 >= NC)) return;

    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++) arow[r] = a_row(min(i0 + r, M - 1));
    BCol bc[TN];
    [[unroll]] for (uint c = 0; c < TN; c++) bc[c] = b_col(min(j0 + c, NC - 1));

    uint arow_own[NA];
    [[unroll]] for (uint t = 0; t < NA; t++) arow_own[t] = a_row(min(i0 + t * SG + gl_SubgroupInvocationID, M - 1));

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    // jr: the invocation's first output column; skip: its leading texels another stores
    uint jr = j0, skip = 0u;
    bool gone = j0 >= NC;
    if (RUNS > 0u) {
        const uint W4 = p.W / 4u, inv = gl_GlobalInvocationID.x, rows = NC / p.Q, g = inv % RUNS;
        const uint tq = min(g * E, W4 - E);
        jr = min(inv / RUNS, rows - 1u) * p.Q + 4u * tq;
        skip = g * E - tq;
        gone = inv >= rows * RUNS;
    }

    if (DIRECT && K1 && UP2 && MODE == 0u) {
        // the 1x1 stride-2 backward data (conv_direct3, FLIP: A is w as it is, read a float
        // at a time): of the invocation's two rows of dx at eight positions only the even
        // positions of the even row receive anything, dy's texel g of row l; a loop trip
        // is four channels of dy
        const uint W4 = p.W / 4u, pair = j0 / TN / W4, g = j0 / TN % W4, n = pair / p.H, l = pair % p.H;
        const int at0 = int((n * p.C * p.H + l) * W4 + g), plane = int(p.H * W4);
        uint wrow[NA]; // w[0, c] of the rows this lane fetches
        [[unroll]] for (uint t = 0; t < NA; t++) wrow[t] = arow_own[t] / p.C;
        for (uint c = 0; c < p.C; c += 4u) {
            vec4 d[4];
            [[unroll]] for (uint i = 0; i < 4u; i++)
                d[i] = c + i < p.C ? imageLoad(B, at0 + int(c + i) * plane) : vec4(0.0);
            vec4 own[NA];
            [[unroll]] for (uint t = 0; t < NA; t++)
                [[unroll]] for (uint i = 0; i < 4u; i++)
                    own[t][i] = imageLoad(A, int(wrow[t] + min(c + i, p.C - 1u) * p.K)).x;
            [[unroll]] for (uint k = 0; k < TM; k++) {
                const vec4 a = subgroupShuffle(own[k / SG], k % SG);
                // position 2x of the even row is dy's component x
                [[unroll]] for (uint x = 0; x < 4u; x++) {
                    const uint o = k * TN + 2u * x;
                    float v = acc[o];
                    [[unroll]] for (uint i = 0; i < 4u; i++) v = fma(a[i], d[i][x], v);
                    acc[o] = v;
                }
            }
        }
    } else if (DIRECT && K1 && MODE == 0u) {
        const uint W4 = p.W / 4u, jc = min(j0, NC - TN);
        const uint q0 = jc % p.Q, h0 = jc / p.Q % p.P, n = jc / p.Q / p.P;
        const int row = int((n * p.C * p.H + 2u * h0) * W4 + q0 / 2u), plane = int(p.H * W4);
        uint arow4[NA]; // w[k, 0] of the rows this lane fetches, in texels
        [[unroll]] for (uint t = 0; t < NA; t++) arow4[t] = arow_own[t] / 4u;
        for (uint c = 0; c < p.C; c += 4u) {
            // xe[i][e]: channel c + i at the positions 2 (q0 + 4e) .. 2 (q0 + 4e + 3)
            vec4 xe[4][E];
            [[unroll]] for (uint i = 0; i < 4u; i++)
                [[unroll]] for (uint e = 0; e < E; e++) {
                    const int at = row + int(c + i) * plane + 2 * int(e);
                    xe[i][e] = evens(imageLoad(B, at), imageLoad(B, at + 1));
                }
            vec4 own[NA];
            [[unroll]] for (uint t = 0; t < NA; t++) own[t] = imageLoad(A, int(arow4[t] + c / 4u));
            [[unroll]] for (uint k = 0; k < TM; k++) {
                const vec4 a = subgroupShuffle(own[k / SG], k % SG);
                [[unroll]] for (uint e = 0; e < E; e++)
                    [[unroll]] for (uint x = 0; x < 4u; x++) {
                        const uint o = k * TN + 4u * e + x;
                        float v = acc[o];
                        [[unroll]] for (uint i = 0; i < 4u; i++) v = fma(a[i], xe[i][e][x], v);
                        acc[o] = v;
                    }
            }
        }
    } else if (DIRECT && MODE == 0u) {
        // a run of E = TN / 4 texels of output needs x's texels tq - 1 .. tq + E on rows
        // h0 - 1 .. h0 + 1 (STRIDE2: tq - 1 .. tq + 2E - 1 on rows 2 h0 - 1 .. 2 h0 + 1);
        // with ROW1 (a texel a row) it spans E rows and needs the texel of each of the
        // rows h0 - 1 .. h0 + E
        // (UP2: the texels g and g + 1 of dy's rows l and l + 1)
        const uint NR = UP2 ? 2u : ROW1 ? E + 2u : 3u, NT = UP2 ? 2u : ROW1 ? 1u : STRIDE2 ? 2u * E + 1u : E + 2u;
        const uint W4 = p.W / 4u, jc = RUNS > 0u ? jr : min(j0, NC - TN), pair = jc / TN / W4;
        // the run's first output position, row and image, and its first texel of input
        const uint q0 = UP2 ? jc / TN % W4 * 8u : jc % p.Q, h0 = UP2 ? pair % p.H * 2u : jc / p.Q % p.P,
                   n = UP2 ? pair / p.H : jc / p.Q / p.P, tq = UP2 ? q0 / 8u : q0 * ST / 4u;
        int roff[NR];
        bool rin[NR];
        [[unroll]] for (uint r = 0; r < NR; r++) {
            const int h = UP2 ? int(h0 / 2u + r) : int(h0 * ST + r) - 1;
            rin[r] = h >= 0 && h < int(p.H);
            roff[r] = clamp(h, 0, int(p.H) - 1) * int(W4);
        }
        int tx[NT]; // the texels' offsets in a row, clamped into it
        bool tin[NT];
        [[unroll]] for (uint i = 0; i < NT; i++) {
            const int q = ROW1 ? 0 : UP2 ? int(tq + i) : int(tq + i) - 1;
            tin[i] = q >= 0 && q < int(W4);
            tx[i] = clamp(q, 0, int(W4) - 1);
        }
        uint arow3[NA]; // the first texel of the rows this lane fetches (a_row / 3; RAW: float)
        [[unroll]] for (uint t = 0; t < NA; t++)
            arow3[t] = RAW ? (FLIP ? arow_own[t] / p.C : arow_own[t]) : arow_own[t] / 3u;
        const uint cstep = RAW ? (FLIP ? p.K * 9u : 9u) : 3u;
        for (uint c = 0; c < p.C; c++) {
            const int plane = int((n * p.C + c) * p.H * W4);
            vec4 T[NR][NT];
            [[unroll]] for (uint r = 0; r < NR; r++)
                [[unroll]] for (uint i = 0; i < NT; i++) {
                    const vec4 v = imageLoad(B, plane + roff[r] + tx[i]);
                    T[r][i] = rin[r] && tin[i] ? v : vec4(0.0);
                }
            // xg[r][3 * e + s]: kernel row r, tap s, for output texel e of the run: x row
            // h0 + r - 1 at q0 + 4e + s - 1 .. q0 + 4e + s + 2 (ROW1: row h0 + e + r - 1,
            // zero past its ends; STRIDE2: row 2 h0 + r - 1 at every other position from
            // 2 (q0 + 4e) + s - 1)
            vec4 xg[3][3u * E];
            [[unroll]] for (uint r = 0; r < 3u; r++)
                [[unroll]] for (uint e = 0; e < E; e++) {
                    if (UP2) continue;
                    // (the indices clamped into the arrays the other form does not use)
                    if (STRIDE2) {
                        // x at 2 (q0 + 4e) + 2i + s - 1: T[r][2e + 1] holds 2 (q0 + 4e) + 0..3
                        taps_s2(T[r][min(2u * e, NT - 1u)], T[r][min(2u * e + 1u, NT - 1u)],
                                T[r][min(2u * e + 2u, NT - 1u)], xg[r][3u * e], xg[r][3u * e + 1u], xg[r][3u * e + 2u]);
                        continue;
                    }
                    taps_s1(ROW1 ? vec4(0.0) : T[r][min(e, NT - 1u)],
                            ROW1 ? T[min(e + r, NR - 1u)][0] : T[r][min(e + 1u, NT - 1u)],
                            ROW1 ? vec4(0.0) : T[r][min(e + 2u, NT - 1u)], xg[r][3u * e], xg[r][3u * e + 1u],
                            xg[r][3u * e + 2u]);
                }
            vec4 own[3][NA];
            if (RAW) {
                [[unroll]] for (uint r = 0; r < 3u; r++)
                    [[unroll]] for (uint t = 0; t < NA; t++) {
                        const uint b = arow3[t] + c * cstep;
                        vec4 v = vec4(0.0);
                        [[unroll]] for (uint s = 0; s < 3u; s++)
                            v[s] = imageLoad(A, int(b + (FLIP ? 8u - 3u * r - s : 3u * r + s))).x;
                        own[r][t] = v;
                    }
            } else {
                [[unroll]] for (uint r = 0; r < 3u; r++)
                    [[unroll]] for (uint t = 0; t < NA; t++) own[r][t] = imageLoad(A, int(arow3[t] + c * 3u + r));
            }
            // each accumulator written once a trip (on lavapipe every write in a loop is
            // blended with the execution mask and goes through the stack)
            // UP2: d[j][e][i], dy's row l + j at position 4g + 2e + i
            vec4 d[2][2];
            [[unroll]] for (uint j = 0; j < 2u; j++) {
                const vec4 lo = T[min(j, NR - 1u)][0], hi = T[min(j, NR - 1u)][min(1u, NT - 1u)];
                d[j][0] = lo;
                d[j][1] = vec4(lo.zw, hi.xy);
            }
            [[unroll]] for (uint k = 0; k < TM; k++) {
                vec4 a[3];
                [[unroll]] for (uint r = 0; r < 3u; r++) a[r] = subgroupShuffle(own[r][k / SG], k % SG);
                if (UP2) {
                    // a holds the flipped taps: w[r][s] is a[2 - r][2 - s]
                    [[unroll]] for (uint o = 0; o < 16u; o++) {
                        const uint odd = o / 8u, e = o / 4u % 2u, x = o % 4u;
                        float v = acc[k * TN + o];
                        // (loops of constant trips: lavapipe unrolls no other kind)
                        [[unroll]] for (uint rt = 0; rt < 2u; rt++)
                            [[unroll]] for (uint ct = 0; ct < 2u; ct++) {
                                if (rt > odd || ct > x % 2u) continue;
                                // even rows: kernel row 1 from dy's row l; odd: 0 from l + 1, 2 from l
                                const uint r = odd == 0u ? 1u : rt == 0u ? 0u : 2u, j = odd == 1u && rt == 0u ? 1u : 0u;
                                // even positions: tap 1 at dy's x / 2; odd: 0 at x / 2 + 1, 2 at x / 2
                                const uint s = x % 2u == 0u ? 1u : ct == 0u ? 0u : 2u;
                                const uint i = x / 2u + (x % 2u == 1u && ct == 0u ? 1u : 0u);
                                v = fma(a[2u - r][2u - s], d[j][e][i], v);
                            }
                        acc[k * TN + o] = v;
                    }
                    continue;
                }
                [[unroll]] for (uint e = 0; e < E; e++)
                    [[unroll]] for (uint x = 0; x < 4u; x++) {
                        const uint o = k * TN + 4u * e + x;
                        float v = acc[o];
                        [[unroll]] for (uint r = 0; r < 3u; r++)
                            [[unroll]] for (uint s = 0; s < 3u; s++) v = fma(a[r][s], xg[r][3u * e + s][x], v);
                        acc[o] = v;
                    }
            }
        }
    } else if (DIRECT) {
        const uint ch = min(j0 / 9u, p.C - 1u), W4 = p.W / 4u, Q4 = p.Q / 4u, SEGS = Q4 / QW;
        const uint NX = STRIDE2 ? 2u * QW + 1u : QW + 2u; // x's texels a row a step
        uint arow4[NA]; // dy[0, k, 0, 0] of the rows this lane fetches, in texels
        [[unroll]] for (uint t = 0; t < NA; t++) arow4[t] = arow_own[t] / 4u;
        uint n = 0, v = 0, g = 0;
        for (uint step = 0; step < p.N * p.P * SEGS; step++) {
            // x rows v - 1 .. v + 1 of image n, channel ch, at texels xq - 1 .. xq + NX - 2
            // (xq = g*QW, the segment's first texel of dy; STRIDE2: rows 2v - 1 .. 2v + 1,
            // xq = 2 g*QW) as T[r][0 .. NX - 1] (zero past the plane: padding)
            const int q0 = int(g * QW), xq = q0 * int(ST);
            const bool lin = g > 0u, rin = g + 1u < SEGS;
            vec4 T[3][NX];
            [[unroll]] for (uint r = 0; r < 3u; r++) {
                const int h = int(v * ST + r) - 1;
                const bool inside = h >= 0 && h < int(p.H);
                const int row = int(((n * p.C + ch) * p.H + uint(clamp(h, 0, int(p.H) - 1))) * W4) + xq;
                [[unroll]] for (uint i = 0; i < NX; i++) {
                    // (at stride 2 the last texel is inside: x's rows are twice dy's)
                    const bool last = !STRIDE2 && i == NX - 1u;
                    const bool edge = i == 0u ? lin : last ? rin : true;
                    const int at = i == 0u ? max(xq - 1, 0) - xq
                                   : last ? int(min(uint(xq) + QW, W4 - 1u)) - xq : int(i) - 1;
                    const vec4 x = imageLoad(B, row + at);
                    T[r][i] = inside && edge ? x : vec4(0.0);
                }
            }
            // xs[c][i]: tap c = (r, s) against dy's texel i: x at 4i + s - 1 .. 4i + s + 2
            // (STRIDE2: at every other position from 2 (4i) + s - 1)
            // (K1: column c is channel j0 + c, x at 2 (4i) .. 2 (4i + 3) of its row 2v)
            vec4 xs[TN][QW];
            [[unroll]] for (uint c = 0; c < TN; c++)
                [[unroll]] for (uint i = 0; i < QW; i++) {
                    if (!K1) continue;
                    const int at = int(((n * p.C + min(j0 + c, p.C - 1u)) * p.H + 2u * v) * W4) + xq + 2 * int(i);
                    xs[c][i] = evens(imageLoad(B, at), imageLoad(B, at + 1));
                }
            [[unroll]] for (uint r = 0; r < 3u; r++)
                [[unroll]] for (uint i = 0; i < QW; i++) {
                    if (K1) continue;
                    if (STRIDE2)
                        taps_s2(T[r][2u * i], T[r][min(2u * i + 1u, NX - 1u)], T[r][min(2u * i + 2u, NX - 1u)],
                                xs[min(3u * r, TN - 1u)][i], xs[min(3u * r + 1u, TN - 1u)][i],
                                xs[min(3u * r + 2u, TN - 1u)][i]);
                    else
                        taps_s1(T[r][i], T[r][i + 1u], T[r][min(i + 2u, NX - 1u)], xs[min(3u * r, TN - 1u)][i],
                                xs[min(3u * r + 1u, TN - 1u)][i], xs[min(3u * r + 2u, TN - 1u)][i]);
                }
            vec4 own[NA][QW];
            const uint arow0 = (n * p.K * p.P + v) * Q4 + uint(q0);
            [[unroll]] for (uint t = 0; t < NA; t++)
                [[unroll]] for (uint i = 0; i < QW; i++) own[t][i] = imageLoad(A, int(arow4[t] + arow0 + i));
            [[unroll]] for (uint k = 0; k < TM; k++) {
                vec4 a[QW];
                [[unroll]] for (uint i = 0; i < QW; i++) a[i] = subgroupShuffle(own[k / SG][i], k % SG);
                [[unroll]] for (uint c = 0; c < TN; c++) {
                    float sum = acc[k * TN + c];
                    [[unroll]] for (uint i = 0; i < QW; i++) sum = fma4(a[i], xs[c][i], sum);
                    acc[k * TN + c] = sum;
                }
            }
            if (++g == SEGS) {
                g = 0;
                if (++v == p.P) { v = 0; n++; }
            }
        }
    } else if (WIN) {
        // bc[0] is tap (0, 0) of this invocation's channel: x at (v + r, w + s) of image
        // block u is B[bc[0].base + u * C * H * W + (v + r) * W + w + s] (h0 = w0 = 0 when
        // PADDED with pad 0); A's step (u, v, w) as in the general loop
        const uint XS = p.C * p.H * p.W;
        for (uint u = 0; u < p.N; u++)
            for (uint v = 0; v < p.P; v++) {
                const int row = bc[0].base + int(u * XS + v * p.W);
                vec4 win[3][3];
                [[unroll]] for (uint r = 0; r < 3u; r++)
                    [[unroll]] for (uint s = 0; s < 2u; s++) win[r][s] = imageLoad(B, row + int(r * p.W + s));
                const uint arow0 = a_red(u, v, 0u);
                for (uint w = 0; w < p.Q; w++) {
                    [[unroll]] for (uint r = 0; r < 3u; r++) win[r][2] = imageLoad(B, row + int(r * p.W + w + 2u));
                    vec4 own[NA];
                    [[unroll]] for (uint t = 0; t < NA; t++) own[t] = imageLoad(A, int(arow_own[t] + arow0 + w));
                    [[unroll]] for (uint r = 0; r < TM; r++) {
                        const vec4 ar = subgroupShuffle(own[r / SG], r % SG);
                        [[unroll]] for (uint c = 0; c < 9u; c++)
                            acc[r * TN + c] = fma4(ar, win[c / 3u][c % 3u], acc[r * TN + c]);
                    }
                    [[unroll]] for (uint r = 0; r < 3u; r++) {
                        win[r][0] = win[r][1];
                        win[r][1] = win[r][2];
                    }
                }
            }
    } else {
        const uint KR = gemm_k(), V = red_v(), Wd = red_w();
        uint u = 0, v = 0, w = 0;
        for (uint kk = 0; kk < KR; kk++) {
            // backward data walks its taps backwards, so that B's addresses rise (dy at
            // h + da - i, w + db - j)
            const uint tv = MODE == 3u ? V - 1u - v : v, tw = MODE == 3u ? Wd - 1u - w : w;
            const uint ak = a_red(u, tv, tw);
            if (VEC4) {
                vec4 a[TM], b[TN];
                if (SHARE_A) {
                    vec4 own[NA];
                    [[unroll]] for (uint t = 0; t < NA; t++) own[t] = imageLoad(A, int(arow_own[t] + ak));
                    [[unroll]] for (uint r = 0; r < TM; r++) a[r] = subgroupShuffle(own[r / SG], r % SG);
                } else {
                    [[unroll]] for (uint r = 0; r < TM; r++) a[r] = imageLoad(A, int(arow[r] + ak));
                }
                [[unroll]] for (uint c = 0; c < TN; c++) {
                    const int addr = b_addr(bc[c], u, tv, tw);
                    b[c] = PADDED || addr >= 0 ? imageLoad(B, addr) : vec4(0.0);
                }
                [[unroll]] for (uint r = 0; r < TM; r++)
                    [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma4(a[r], b[c], acc[r * TN + c]);
            } else {
                float a[TM], b[TN];
                [[unroll]] for (uint r = 0; r < TM; r++) a[r] = imageLoad(A, int(arow[r] + ak)).x;
                [[unroll]] for (uint c = 0; c < TN; c++) {
                    const int addr = b_addr(bc[c], u, tv, tw);
                    b[c] = addr >= 0 ? imageLoad(B, addr).x : 0.0;
                }
                [[unroll]] for (uint r = 0; r < TM; r++)
                    [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma(a[r], b[c], acc[r * TN + c]);
            }
            if (++w == Wd) {
                w = 0;
                if (++v == V) { v = 0; u++; }
            }
        }
    }

    if (gone) return;
    // (DIRECT's forward runs but UP2's are consecutive floats of one plane: one column's
    // divisions, a scalar loop over the lanes on lavapipe, instead of TN)
    const bool RUN = DIRECT && MODE == 0u && !UP2;
    uint ocol[TN];
    const uint ocol0 = c_col(min(jr, NC - 1));
    [[unroll]] for (uint c = 0; c < TN; c++) ocol[c] = RUN ? ocol0 + c : c == 0u ? ocol0 : c_col(min(jr + c, NC - 1));
    if (DIRECT && UP2) {
        // columns 0-7 are row 2l of dx at 8g .. 8g + 7, 8-15 row 2l + 1
        const uint W4 = p.W / 4u, pair = j0 / TN / W4, g = j0 / TN % W4, n = pair / p.H, h = pair % p.H * 2u;
        [[unroll]] for (uint c = 0; c < TN; c++) ocol[c] = c_col(((n * p.P + h + c / 8u) * p.Q) + g * 8u + c % 8u);
    }
    const uint orow = c_row();
    [[unroll]] for (uint r = 0; r < TM; r++) {
        const uint i = i0 + r;
        if (i >= M) break;
        const float bias = (MODE == 0u && p.has_bias != 0u) ? texelFetch(BIAS, int(i)).x : 0.0;
        if (OUT4) {
            [[unroll]] for (uint c = 0; c < TN; c += 4u) {
                if (RUNS > 0u && c / 4u < skip) continue;
                const uint o = (ocol[c] + i * orow) / 4u, x = r * TN + c;
                vec4 val = vec4(acc[x], acc[x + 1u], acc[x + 2u], acc[x + 3u]) + bias;
                if (ACC) val += p.beta * O[o];
                O[o] = val;
            }
            continue;
        }
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = jr + c;
            if (j >= NC) break;
            if (RUNS > 0u && c / 4u < skip) continue;
            const uint o = ocol[c] + i * orow;
            float val = acc[r * TN + c] + bias;
            if (ACC) val += p.beta * O[o / 4u][o % 4u];
            O[o / 4u][o % 4u] = val;
        }
    }
}
