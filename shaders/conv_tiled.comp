#version 450
#extension GL_GOOGLE_include_directive : require
// Convolution (forward, backward data or backward filter, see conv_params.glsl) as an
// implicit GEMM for GPUs: BM x BN output tiles, the A and B tiles gathered BK at a time
// into shared memory, TM x TN results per invocation in registers.
#include "common.glsl"
#include "conv_params.glsl"

layout(constant_id = 0) const uint BM = 64;
layout(constant_id = 1) const uint BN = 64;
layout(constant_id = 2) const uint BK = 16;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;

layout(binding = 0) readonly buffer Abuf { float A[]; };
layout(binding = 1) readonly buffer Bbuf { float B[]; };
layout(binding = 2) readonly buffer BiasBuf { float BIAS[]; };
layout(binding = 3) buffer Out { float O[]; };

shared float As[BK * BM];
shared float Bs[BK * BN];

void main()
{
    const uint M = gemm_m(), NC = gemm_n(), KR = gemm_k();
    const uint threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y;
    const uint tid = gl_LocalInvocationIndex;
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    const uint bi = gl_WorkGroupID.y * BM, bj = gl_WorkGroupID.x * BN;
    const uint V = red_v(), Wd = red_w();

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    for (uint k0 = 0; k0 < KR; k0 += BK) {
        for (uint e = tid; e < BK * BM; e += threads) {
            const uint r = e % BM, kk = k0 + e / BM, i = bi + r;
            float val = 0.0;
            if (i < M && kk < KR) {
                const uint w = kk % Wd, t = kk / Wd;
                val = A[a_row(i) + a_red(t / V, t % V, w)];
            }
            As[(e / BM) * BM + r] = val;
        }
        for (uint e = tid; e < BK * BN; e += threads) {
            const uint c = e % BN, kk = k0 + e / BN, j = bj + c;
            float val = 0.0;
            if (j < NC && kk < KR) {
                const uint w = kk % Wd, t = kk / Wd;
                const int addr = b_addr(b_col(j), t / V, t % V, w);
                if (addr >= 0) val = B[addr];
            }
            Bs[(e / BN) * BN + c] = val;
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
        if (i >= M) break;
        const float bias = (MODE == 0u && p.has_bias != 0u) ? BIAS[i] : 0.0;
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = bj + tx * TN + c;
            if (j >= NC) break;
            const uint o = c_addr(i, j);
            float val = acc[r * TN + c] + bias;
            if (p.beta != 0.0) val += p.beta * O[o];
            O[o] = val;
        }
    }
}
