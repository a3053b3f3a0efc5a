#version 450
#extension GL_GOOGLE_include_directive : require
// SNL masked ReLU backward, the gradient of a pixel mask (C*H*W entries): one invocation
// per mask entry m = ch*H*W + i sums over the batch (no atomics)
//   dc[m] = sum_n dy*(relu(x) - x) + lambda*sign(c[m]),  lambda = LAMBDA[lambda_index]
// (relu(x) - x = -x where x <= 0, else 0). Reads only: dx is masked_relu_bwd, a separate
// pass, because stores at the batch stride are slow on lavapipe.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) uniform samplerBuffer X;
layout(binding = 2) uniform samplerBuffer MASK;
layout(binding = 3) readonly buffer Lbuf { float lambda[]; };
layout(binding = 4) writeonly buffer DCbuf { float dc[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    uint lambda_index;
    uint has_lambda;
} p;

void main()
{
    const uint chw = p.c * p.hw;
    const float lam = p.has_lambda != 0u ? lambda[p.lambda_index] : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint m = gl_GlobalInvocationID.x; m < chw; m += stride) {
        float acc = 0.0;
        for (uint n = 0u, j = m; n < p.n; n++, j += chw) {
            const float x = texelFetch(X, int(j)).x;
            acc -= texelFetch(DY, int(j)).x * min(x, 0.0);
        }
        dc[m] = acc + lam * sign(texelFetch(MASK, int(m)).x);
    }
}
