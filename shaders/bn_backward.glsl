// Batchnorm training-mode backward, the elementwise part (after bn_reduce MODE 1):
//   xhat = (x - mean) * invstd
//   dx = gamma * invstd * (dy - dbeta/n - xhat * dgamma/n)   (+ beta * dx)
// Grid: x strides over H*W, y = channel, z strides over the batch (no divisions, see bn_forward).
// VEC4 1 (bn_vec4 on the host): H*W is a multiple of 4, the elementwise tensors are read
// through RGBA32F views and written as vec4, and p.hw counts vec4s.
#include "elem.glsl"
#include "common.glsl"

// ACC (specialisation constant 0): beta != 0, dx is read and added to. Chosen when the
// pipeline is built: on lavapipe a load costs its loop over the lanes even on a path no
// lane takes.
layout(constant_id = 0) const bool ACC = false;

layout(binding = 0, ELEM_FMT) uniform readonly imageBuffer DY;
layout(binding = 1, ELEM_FMT) uniform readonly imageBuffer X;
layout(binding = 2) uniform samplerBuffer GAMMA;
layout(binding = 3) uniform samplerBuffer MEAN;
layout(binding = 4) uniform samplerBuffer INVSTD;
layout(binding = 5) uniform samplerBuffer DGAMMA;
layout(binding = 6) uniform samplerBuffer DBETA;
layout(binding = 7) buffer DXbuf { ELEM dx[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    uint flags;       // bit 0: gamma given (else 1)
    float inv_count;  // 1 / (N*H*W)
    float beta;       // dx = result + beta * dx (0 overwrites)
} p;

void main()
{
    const int ch = int(gl_WorkGroupID.y);
    const float invstd = texelFetch(INVSTD, ch).x, mean = texelFetch(MEAN, ch).x;
    const float g = (p.flags & 1u) != 0u ? texelFetch(GAMMA, ch).x : 1.0;
    const float gi = g * invstd;
    const float mdy = texelFetch(DBETA, ch).x * p.inv_count;
    const float mdyx = texelFetch(DGAMMA, ch).x * p.inv_count;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
        const uint base = (n * p.c + gl_WorkGroupID.y) * p.hw;
        for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride) {
            const uint t = base + i;
            const ELEM xhat = (FETCH(X, int(t)) - mean) * invstd;
            ELEM v = gi * (FETCH(DY, int(t)) - mdy - xhat * mdyx);
            if (ACC) v += p.beta * dx[t];
            dx[t] = v;
        }
    }
}
