#version 450
#extension GL_GOOGLE_include_directive : require
// The gradient of a pixel mask (see masked_relu_dc), four mask entries per invocation
// when C*H*W is a multiple of 4: RGBA32F storage texel buffers read with imageLoad (inline
// on lavapipe), a vec4 store.
//   dc[m] = sum_n dy*(relu(x) - x) + lambda*sign(c[m]),  lambda = LAMBDA[lambda_index]
#include "common.glsl"

layout(binding = 0, rgba32f) uniform readonly imageBuffer DY;
layout(binding = 1, rgba32f) uniform readonly imageBuffer X;
layout(binding = 2, rgba32f) uniform readonly imageBuffer MASK;
layout(binding = 3) readonly buffer Lbuf { float lambda[]; };
layout(binding = 4) writeonly buffer DCbuf { vec4 dc[]; };

layout(push_constant) uniform Params {
    uint n, chw4;
    uint lambda_index;
    uint has_lambda;
} p;

void main()
{
    const float lam = p.has_lambda != 0u ? lambda[p.lambda_index] : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint m = gl_GlobalInvocationID.x; m < p.chw4; m += stride) {
        vec4 acc = vec4(0.0);
        for (uint n = 0u, j = m; n < p.n; n++, j += p.chw4)
            acc -= imageLoad(DY, int(j)) * min(imageLoad(X, int(j)), vec4(0.0));
        dc[m] = acc + lam * sign(imageLoad(MASK, int(m)));
    }
}
