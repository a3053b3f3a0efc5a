#version 450
#extension GL_GOOGLE_include_directive : require
// Average pool kxk stride s, no padding (floor mode), NCHW; one invocation per output:
// y[nc,p,q] = sum of the window / (k*k). k = H = W is the global average pool.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) writeonly buffer Ybuf { float y[]; };

layout(push_constant) uniform Params { uint nc, h, w, p, q, k, s, pad; } p; // pad is 0

void main()
{
    const uint total = p.nc * p.p * p.q;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const float inv = 1.0 / float(p.k * p.k);
    for (uint o = gl_GlobalInvocationID.x; o < total; o += stride) {
        const uint oq = o % p.q, r = o / p.q, op = r % p.p, nc = r / p.p;
        uint base = (nc * p.h + op * p.s) * p.w + oq * p.s;
        float acc = 0.0;
        for (uint a = 0u; a < p.k; a++, base += p.w)
            for (uint b = 0u; b < p.k; b++) acc += texelFetch(X, int(base + b)).x;
        y[o] = acc * inv;
    }
}
