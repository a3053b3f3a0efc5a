#version 450
#extension GL_GOOGLE_include_directive : require
// Convolution (forward, backward data or backward filter, see conv_params.glsl) as a
// register-blocked implicit GEMM reading through texel buffers: the fast form on
// lavapipe, where texel fetches are vectorised gathers (LAVAPIPE.md).
// Each invocation computes TM output rows x TN output columns.
#include "common.glsl"
#include "conv_params.glsl"

layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 4;

layout(binding = 0) uniform samplerBuffer A;     // weights (modes 0, 1) or dy (mode 2)
layout(binding = 1) uniform samplerBuffer B;     // x (modes 0, 2) or dy (mode 1)
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Out { float O[]; };

void main()
{
    const uint M = gemm_m(), NC = gemm_n(), KR = gemm_k();
    const uint j0 = gl_GlobalInvocationID.x * TN;
    const uint i0 = gl_GlobalInvocationID.y * TM;
    if (i0 >= M || j0 >= NC) return;

    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++) arow[r] = a_row(min(i0 + r, M - 1));
    BCol bc[TN];
    [[unroll]] for (uint c = 0; c < TN; c++) bc[c] = b_col(min(j0 + c, NC - 1));

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    const uint V = red_v(), Wd = red_w();
    uint u = 0, v = 0, w = 0;
    for (uint kk = 0; kk < KR; kk++) {
        const uint ak = a_red(u, v, w);
        float a[TM], b[TN];
        [[unroll]] for (uint r = 0; r < TM; r++) a[r] = texelFetch(A, int(arow[r] + ak)).x;
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const int addr = b_addr(bc[c], u, v, w);
            b[c] = addr >= 0 ? texelFetch(B, addr).x : 0.0;
        }
        [[unroll]] for (uint r = 0; r < TM; r++)
            [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma(a[r], b[c], acc[r * TN + c]);
        if (++w == Wd) {
            w = 0;
            if (++v == V) { v = 0; u++; }
        }
    }

    [[unroll]] for (uint r = 0; r < TM; r++) {
        const uint i = i0 + r;
        if (i >= M) break;
        const float bias = (MODE == 0u && p.has_bias != 0u) ? texelFetch(BIAS, int(i)).x : 0.0;
        [[unroll]] for (uint c = 0; c < TN; c++) {
            const uint j = j0 + c;
            if (j >= NC) break;
            const uint o = c_addr(i, j);
            float val = acc[r * TN + c] + bias;
            if (p.beta != 0.0) val += p.beta * O[o];
            O[o] = val;
        }
    }
}
