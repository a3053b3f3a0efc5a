#version 450
#extension GL_GOOGLE_include_directive : require
// Max pool backward as a gather (windows overlap when s < k, so a scatter would race):
// one invocation per input element sums dy over the windows that contain it and whose
// argmax is this element.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) readonly buffer Ibuf { int argmax[]; };
layout(binding = 2) writeonly buffer DXbuf { float dx[]; };

layout(push_constant) uniform Params { uint nc, h, w, p, q, k, s, pad; } p;

// The outputs o whose window [o*s - pad, o*s - pad + k) holds position x: o in [lo, hi].
void window_range(uint x, uint outs, out uint lo, out uint hi)
{
    const uint xp = x + p.pad;
    lo = xp >= p.k ? (xp - p.k) / p.s + 1u : 0u;
    hi = min(xp / p.s, outs - 1u);
}

void main()
{
    const uint total = p.nc * p.h * p.w;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint e = gl_GlobalInvocationID.x; e < total; e += stride) {
        const uint w = e % p.w, r = e / p.w, h = r % p.h, nc = r / p.h;
        const int self = int(h * p.w + w);
        uint plo, phi, qlo, qhi;
        window_range(h, p.p, plo, phi);
        window_range(w, p.q, qlo, qhi);
        float acc = 0.0;
        for (uint op = plo; op <= phi; op++)
            for (uint oq = qlo; oq <= qhi; oq++) {
                const uint o = (nc * p.p + op) * p.q + oq;
                if (argmax[o] == self) acc += texelFetch(DY, int(o)).x;
            }
        dx[e] = acc;
    }
}
