#version 450
#extension GL_GOOGLE_include_directive : require
// Average pool backward as a gather (no races where windows overlap): one invocation per
// input element sums dy over the windows that contain it, divided by k*k. Inputs that no
// window covers (floor mode) get 0.
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) writeonly buffer DXbuf { vec4 dx[]; }; // floats, as vec4s (whole vec4s allocated)

// GLOBAL (specialisation constant 0): 1 when the window is the whole plane (k = h = w, one
// output per plane), so dx = dy[plane] / (h*w): one division an element instead of six
// (a division is a loop over the lanes on lavapipe) and no window loops; 2 when moreover
// a plane is whole vec4s, stored a vec4 at a time.
layout(constant_id = 0) const uint GLOBAL = 0;

layout(push_constant) uniform Params { uint nc, h, w, p, q, k, s, pad; } p; // pad is 0

// The outputs o whose window [o*s, o*s + k) holds position x: o in [lo, hi] (empty if lo > hi).
void window_range(uint x, uint outs, out uint lo, out uint hi)
{
    lo = x >= p.k ? (x - p.k) / p.s + 1u : 0u;
    hi = min(x / p.s, outs - 1u);
}

void main()
{
    const uint total = p.nc * p.h * p.w;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const float inv = 1.0 / float(p.k * p.k);
    if (GLOBAL != 0u) {
        const uint per = GLOBAL == 2u ? p.h * p.w / 4u : p.h * p.w, count = GLOBAL == 2u ? total / 4u : total;
        for (uint e = gl_GlobalInvocationID.x; e < count; e += stride) {
            const float g = texelFetch(DY, int(e / per)).x * inv;
            if (GLOBAL == 2u) dx[e] = vec4(g);
            else dx[e / 4u][e % 4u] = g;
        }
        return;
    }
    for (uint e = gl_GlobalInvocationID.x; e < total; e += stride) {
        const uint w = e % p.w, r = e / p.w, h = r % p.h, nc = r / p.h;
        uint plo, phi, qlo, qhi;
        window_range(h, p.p, plo, phi);
        window_range(w, p.q, qlo, qhi);
        float acc = 0.0;
        for (uint op = plo; op <= phi; op++)
            for (uint oq = qlo; oq <= qhi; oq++) acc += texelFetch(DY, int((nc * p.p + op) * p.q + oq)).x;
        dx[e / 4u][e % 4u] = acc * inv;
    }
}
