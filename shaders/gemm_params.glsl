// Push constants shared by the GEMM variants (see src/ops/gemm.h: gemm_params).
// Element (i,k) of op(A) is A[a_base + i*a_rs + k*a_cs]; (k,j) of op(B) is B[k*b_rs + j*b_cs];
// C(i,j) is C[i*c_rs + j*c_cs]; gl_WorkGroupID.z selects a batch (offsets *_bs).
layout(push_constant) uniform Params {
    uint M, N, K;
    uint a_rs, a_cs, b_rs, b_cs, c_rs, c_cs;
    uint a_bs, b_bs, c_bs;
    uint bias_mode;   // 0 none, 1 bias[j] (per column), 2 bias[i] (per row)
    float alpha, beta;
} p;
