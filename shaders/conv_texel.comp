#version 450
#extension GL_GOOGLE_include_directive : require
// Convolution (forward, backward data or backward filter, see conv_params.glsl) as a
// register-blocked implicit GEMM reading through texel buffers: the fast form on
// lavapipe, where texel fetches are vectorised gathers (LAVAPIPE.md).
// Each invocation computes TM output rows x TN output columns.
// VEC4 (specialisation constant 2): A and B are RGBA32F views of operands packed by
// conv_pack.comp so that each texel holds four consecutive terms of the reduction
// (channels for modes 0 and 3, images for mode 2); the host passes the packed dim's
// count of vec4s in its place (C for mode 0, K for mode 3, N for mode 2). A fetch then
// brings four terms, and the gathers, which bound the speed on lavapipe, fall 4x.
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"
#include "conv_params.glsl"

layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 4;
layout(constant_id = 2) const bool VEC4 = false;
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
// a step instead of nine (on lavapipe a fetch is a call worth ~190 instructions).
layout(constant_id = 7) const bool WIN = false;

layout(binding = 0) uniform samplerBuffer A;     // weights (modes 0, 1) or dy (mode 2)
layout(binding = 1) uniform samplerBuffer B;     // x (modes 0, 2) or dy (mode 1)
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Out { vec4 O[]; };  // floats, as vec4s (allocations are whole vec4s)

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

    if (WIN) {
        // bc[0] is tap (0, 0) of this invocation's channel: x at (v + r, w + s) of image
        // block u is B[bc[0].base + u * C * H * W + (v + r) * W + w + s] (h0 = w0 = 0 when
        // PADDED with pad 0); A's step (u, v, w) as in the general loop
        const uint XS = p.C * p.H * p.W;
        for (uint u = 0; u < p.N; u++)
            for (uint v = 0; v < p.P; v++) {
                const int row = bc[0].base + int(u * XS + v * p.W);
                vec4 win[3][3];
                [[unroll]] for (uint r = 0; r < 3u; r++)
                    [[unroll]] for (uint s = 0; s < 2u; s++) win[r][s] = texelFetch(B, row + int(r * p.W + s));
                const uint arow0 = a_red(u, v, 0u);
                for (uint w = 0; w < p.Q; w++) {
                    [[unroll]] for (uint r = 0; r < 3u; r++) win[r][2] = texelFetch(B, row + int(r * p.W + w + 2u));
                    vec4 own[NA];
                    [[unroll]] for (uint t = 0; t < NA; t++) own[t] = texelFetch(A, int(arow_own[t] + arow0 + w));
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
                    [[unroll]] for (uint t = 0; t < NA; t++) own[t] = texelFetch(A, int(arow_own[t] + ak));
                    [[unroll]] for (uint r = 0; r < TM; r++) a[r] = subgroupShuffle(own[r / SG], r % SG);
                } else {
                    [[unroll]] for (uint r = 0; r < TM; r++) a[r] = texelFetch(A, int(arow[r] + ak));
                }
                [[unroll]] for (uint c = 0; c < TN; c++) {
                    const int addr = b_addr(bc[c], u, tv, tw);
                    b[c] = PADDED || addr >= 0 ? texelFetch(B, addr) : vec4(0.0);
                }
                [[unroll]] for (uint r = 0; r < TM; r++)
                    [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma4(a[r], b[c], acc[r * TN + c]);
            } else {
                float a[TM], b[TN];
                [[unroll]] for (uint r = 0; r < TM; r++) a[r] = texelFetch(A, int(arow[r] + ak)).x;
                [[unroll]] for (uint c = 0; c < TN; c++) {
                    const int addr = b_addr(bc[c], u, tv, tw);
                    b[c] = addr >= 0 ? texelFetch(B, addr).x : 0.0;
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

    if (j0 >= NC) return;
    uint ocol[TN];
    [[unroll]] for (uint c = 0; c < TN; c++) ocol[c] = c_col(min(j0 + c, NC - 1));
    const uint orow = c_row();
    [[unroll]] for (uint r = 0; r < TM; r++) {
        const uint i = i0 + r;
        if (i >= M) break;
        const float bias = (MODE == 0u && p.has_bias != 0u) ? texelFetch(BIAS, int(i)).x : 0.0;
        if (OUT4) {
            [[unroll]] for (uint c = 0; c < TN; c += 4u) {
                const uint o = (ocol[c] + i * orow) / 4u, x = r * TN + c;
                vec4 val = vec4(acc[x], acc[x + 1u], acc[x + 2u], acc[x + 3u]) + bias;
                if (ACC) val += p.beta * O[o];
                O[o] = val;
            }
            continue;
        }
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = j0 + c;
            if (j >= NC) break;
            const uint o = ocol[c] + i * orow;
            float val = acc[r * TN + c] + bias;
            if (ACC) val += p.beta * O[o / 4u][o % 4u];
            O[o / 4u][o % 4u] = val;
        }
    }
}
