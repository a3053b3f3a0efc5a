#version 450
#extension GL_GOOGLE_include_directive : require
// C = alpha * op(A) * op(B) + beta * C (+ bias), reading A and B through texel buffers.
// On lavapipe texel fetches compile to vectorised gathers while storage-buffer loads
// are scalar loops (LAVAPIPE.md), so this register-blocked kernel with no shared memory
// is the fast variant there. Each invocation computes TM rows x TN columns.
#include "common.glsl"
#include "gemm_params.glsl"

layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 4;

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Cbuf { float C[]; };

void main()
{
    const uint j0 = gl_GlobalInvocationID.x * TN;
    const uint i0 = gl_GlobalInvocationID.y * TM;
    const uint batch = gl_GlobalInvocationID.z;
    if (i0 >= p.M || j0 >= p.N) return;
    const uint a_base = batch * p.a_bs, b_base = batch * p.b_bs;

    // Rows and columns past the edge read a clamped (valid) element; their results are dropped.
    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++) arow[r] = a_base + min(i0 + r, p.M - 1) * p.a_rs;
    uint bcol[TN];
    [[unroll]] for (uint c = 0; c < TN; c++) bcol[c] = b_base + min(j0 + c, p.N - 1) * p.b_cs;

    float acc[TM * TN];
    [[unroll]] for (uint x = 0; x < TM * TN; x++) acc[x] = 0.0;

    for (uint k = 0; k < p.K; k++) {
        float a[TM], b[TN];
        [[unroll]] for (uint r = 0; r < TM; r++) a[r] = texelFetch(A, int(arow[r] + k * p.a_cs)).x;
        [[unroll]] for (uint c = 0; c < TN; c++) b[c] = texelFetch(B, int(bcol[c] + k * p.b_rs)).x;
        [[unroll]] for (uint r = 0; r < TM; r++)
            [[unroll]] for (uint c = 0; c < TN; c++) acc[r * TN + c] = fma(a[r], b[c], acc[r * TN + c]);
    }

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
