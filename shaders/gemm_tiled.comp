#version 450
#extension GL_GOOGLE_include_directive : require
// C = alpha * op(A) * op(B) + beta * C (+ bias) for GPUs: BM x BN output tiles staged
// through shared memory BK columns at a time, each invocation accumulating TM x TN
// results in registers. Tile sizes are specialisation constants chosen per device.
#include "common.glsl"
#include "gemm_params.glsl"

layout(constant_id = 0) const uint BM = 64;
layout(constant_id = 1) const uint BN = 64;
layout(constant_id = 2) const uint BK = 16;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;

layout(binding = 0) readonly buffer Abuf { float A[]; };
layout(binding = 1) readonly buffer Bbuf { float B[]; };
layout(binding = 2) readonly buffer BiasBuf { float BIAS[]; };
layout(binding = 3) buffer Cbuf { float C[]; };

shared float As[BK * BM];
shared float Bs[BK * BN];

void main()
{
    const uint threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y;
    const uint tid = gl_LocalInvocationIndex;
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y; // tx: columns, ty: rows
    const uint bi = gl_WorkGroupID.y * BM, bj = gl_WorkGroupID.x * BN;
    const uint batch = gl_WorkGroupID.z;
    const uint a_base = batch * p.a_bs, b_base = batch * p.b_bs;

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        for (uint e = tid; e < BK * BM; e += threads) {
            const uint r = e % BM, kk = e / BM;
            const uint i = bi + r, k = k0 + kk;
            As[kk * BM + r] = (i < p.M && k < p.K) ? A[a_base + i * p.a_rs + k * p.a_cs] : 0.0;
        }
        for (uint e = tid; e < BK * BN; e += threads) {
            const uint c = e % BN, kk = e / BN;
            const uint j = bj + c, k = k0 + kk;
            Bs[kk * BN + c] = (j < p.N && k < p.K) ? B[b_base + k * p.b_rs + j * p.b_cs] : 0.0;
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            float a[TM], b[TN];
            [[unroll]] for (uint r = 0; r < TM; r++) a[r] = As[kk * BM + ty * TM + r];
            [[unroll]] for (uint c = 0; c < TN; c++) b[c] = Bs[kk * BN + tx * TN + c];
            [[unroll]] for (uint r = 0; r < TM; r++)
                [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma(a[r], b[c], acc[r * TN + c]);
        }
        barrier();
    }

    [[unroll]] for (uint r = 0; r < TM; r++) {
        const uint i = bi + ty * TM + r;
        if (i >= p.M) break;
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = bj + tx * TN + c;
            if (j >= p.N) break;
            float v = p.alpha * acc[r * TN + c];
            if (p.bias_mode == 1u) v += BIAS[j];
            else if (p.bias_mode == 2u) v += BIAS[i];
            const uint ci = batch * p.c_bs + i * p.c_rs + j * p.c_cs;
            if (p.beta != 0.0) v += p.beta * C[ci];
            C[ci] = v;
        }
    }
}
