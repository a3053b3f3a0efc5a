#version 450
#extension GL_GOOGLE_include_directive : require
// C = alpha * op(A) * op(B) + beta * C (+ bias), reading A and B through texel buffers.
// On lavapipe texel fetches compile to vectorised gathers while storage-buffer loads
// are scalar loops (LAVAPIPE.md), so this register-blocked kernel with no shared memory
// is the fast variant there. Each invocation computes TM rows x TN columns, stepping the
// reduction four terms at a time.
// AV, BV (specialisation constants 2, 3) say how an operand is read. 0: one float a
// fetch (an R32F view). Otherwise the operand is an RGBA32F view of the same memory and
// one fetch brings four consecutive floats: AV 1 / BV 1 along the reduction (A not
// transposed, B transposed: the four terms of one row or column), AV 2 along A's rows
// (A transposed), BV 2 along B's columns (B not transposed). The host picks a vec4 form
// only where that dim is contiguous, its length and the batch strides are multiples of
// four (so a vec4 never straddles a row), and TM, TN are multiples of four; the fetches
// per multiply-add then fall 4x, and on lavapipe the fetches bound the speed.
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"
#include "gemm_params.glsl"

layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 4;
layout(constant_id = 2) const uint AV = 0;
layout(constant_id = 3) const uint BV = 0;
// SHARE_A (AV 1 only): the invocations of a workgroup row (gl_WorkGroupSize.y = 1) have
// the same TM rows of A, so the SG lanes of a subgroup fetch them TM / SG rows each and
// pass them round with subgroupShuffle (TM a multiple of SG; the whole subgroup stays
// active through the loop).
layout(constant_id = 4) const bool SHARE_A = false;
layout(constant_id = 5) const uint SG = 8;
const uint NA = SHARE_A ? TM / SG : 1;

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Cbuf { float C[]; };

// Element `e` (a float index) of an operand read as `vec` (0: R32F view, else RGBA32F).
float elem(samplerBuffer t, uint e, uint vec)
{
    return vec == 0u ? texelFetch(t, int(e)).x : texelFetch(t, int(e >> 2))[e & 3u];
}

void main()
{
    const uint j0 = gl_GlobalInvocationID.x * TN;
    const uint i0 = gl_GlobalInvocationID.y * TM;
    const uint batch = gl_GlobalInvocationID.z;
    if (!SHARE_A && (i0 >= p.M || j0 >= p.N)) return;
    const uint a_base = batch * p.a_bs, b_base = batch * p.b_bs;

    // Rows and columns past the edge read a clamped (valid) element; their results are
    // dropped. A vec4 along rows or columns is clamped as a whole (M or N % 4 == 0).
    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++) arow[r] = a_base + min(i0 + r, p.M - 1) * p.a_rs;
    uint bcol[TN];
    [[unroll]] for (uint c = 0; c < TN; c++) bcol[c] = b_base + min(j0 + c, p.N - 1) * p.b_cs;
    uint ablk[TM / 4], bblk[TN / 4]; // AV 2, BV 2: the float index of each vec4's first row / column
    [[unroll]] for (uint g = 0; g < TM / 4; g++) ablk[g] = a_base + min(i0 + 4 * g, p.M - 4);
    [[unroll]] for (uint g = 0; g < TN / 4; g++) bblk[g] = b_base + min(j0 + 4 * g, p.N - 4);
    uint aown[NA];
    [[unroll]] for (uint t = 0; t < NA; t++)
        aown[t] = a_base + min(i0 + t * SG + gl_SubgroupInvocationID, p.M - 1) * p.a_rs;

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    const uint K4 = p.K & ~3u;
    for (uint k = 0; k < K4; k += 4) {
        // a[r][e] = op(A)(i0 + r, k + e), b[c][e] = op(B)(k + e, j0 + c)
        vec4 a[TM], b[TN];
        if (AV == 1u && SHARE_A) {
            vec4 own[NA];
            [[unroll]] for (uint t = 0; t < NA; t++) own[t] = texelFetch(A, int((aown[t] + k) >> 2));
            [[unroll]] for (uint r = 0; r < TM; r++) a[r] = subgroupShuffle(own[r / SG], r % SG);
        } else if (AV == 1u) {
            [[unroll]] for (uint r = 0; r < TM; r++) a[r] = texelFetch(A, int((arow[r] + k) >> 2));
        } else if (AV == 2u) {
            [[unroll]] for (uint e = 0; e < 4; e++)
                [[unroll]] for (uint g = 0; g < TM / 4; g++) {
                    const vec4 t = texelFetch(A, int((ablk[g] + (k + e) * p.a_cs) >> 2));
                    [[unroll]] for (uint q = 0; q < 4; q++) a[4 * g + q][e] = t[q];
                }
        } else {
            [[unroll]] for (uint r = 0; r < TM; r++)
                [[unroll]] for (uint e = 0; e < 4; e++) a[r][e] = texelFetch(A, int(arow[r] + (k + e) * p.a_cs)).x;
        }
        if (BV == 1u) {
            [[unroll]] for (uint c = 0; c < TN; c++) b[c] = texelFetch(B, int((bcol[c] + k) >> 2));
        } else if (BV == 2u) {
            [[unroll]] for (uint e = 0; e < 4; e++)
                [[unroll]] for (uint g = 0; g < TN / 4; g++) {
                    const vec4 t = texelFetch(B, int((bblk[g] + (k + e) * p.b_rs) >> 2));
                    [[unroll]] for (uint q = 0; q < 4; q++) b[4 * g + q][e] = t[q];
                }
        } else {
            [[unroll]] for (uint c = 0; c < TN; c++)
                [[unroll]] for (uint e = 0; e < 4; e++) b[c][e] = texelFetch(B, int(bcol[c] + (k + e) * p.b_rs)).x;
        }
        [[unroll]] for (uint r = 0; r < TM; r++)
            [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma4(a[r], b[c], acc[r * TN + c]);
    }
    // the K % 4 tail (never with AV 1 or BV 1, which need K % 4 == 0)
    for (uint k = K4; k < p.K; k++) {
        float a[TM], b[TN];
        [[unroll]] for (uint r = 0; r < TM; r++) a[r] = elem(A, arow[r] + k * p.a_cs, AV);
        [[unroll]] for (uint c = 0; c < TN; c++) b[c] = elem(B, bcol[c] + k * p.b_rs, BV);
        [[unroll]] for (uint r = 0; r < TM; r++)
            [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma(a[r], b[c], acc[r * TN + c]);
    }

    if (i0 >= p.M || j0 >= p.N) return;
    [[unroll]] for (uint r = 0; r < TM; r++) {
        const uint i = i0 + r;
        if (i >= p.M) break;
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = j0 + c;
            if (j >= p.N) break;
            float v = p.alpha * acc[r * TN + c];
            if (p.bias_mode == 1u) v += texelFetch(BIAS, int(j)).x;
            else if (p.bias_mode == 2u) v += texelFetch(BIAS, int(i)).x;
            const uint ci = batch * p.c_bs + i * p.c_rs + j * p.c_cs;
            if (p.beta != 0.0) v += p.beta * C[ci];
            C[ci] = v;
        }
    }
}
