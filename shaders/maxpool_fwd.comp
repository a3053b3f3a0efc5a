#version 450
#extension GL_GOOGLE_include_directive : require
// Max pool kxk stride s pad pad (padding is -inf), NCHW, PyTorch semantics; one invocation
// per output. argmax = flat h*W+w within the (n,c) plane; it starts at the window's first
// in-bounds element with the value -inf and only a strictly greater value or a NaN
// replaces it (the first maximum wins, the last NaN wins).
#include "common.glsl"

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) writeonly buffer Ybuf { float y[]; };
layout(binding = 2) writeonly buffer Ibuf { int argmax[]; };

layout(push_constant) uniform Params { uint nc, h, w, p, q, k, s, pad; } p;

void main()
{
    const uint total = p.nc * p.p * p.q;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const int H = int(p.h), W = int(p.w);
    for (uint o = gl_GlobalInvocationID.x; o < total; o += stride) {
        const uint oq = o % p.q, r = o / p.q, op = r % p.p, nc = r / p.p;
        const int h0 = int(op * p.s) - int(p.pad), w0 = int(oq * p.s) - int(p.pad);
        const int hs = max(h0, 0), ws = max(w0, 0);
        const int he = min(h0 + int(p.k), H), we = min(w0 + int(p.k), W);
        const int plane = int(nc) * H * W;
        int best = hs * W + ws;
        float bv = uintBitsToFloat(0xff800000u); // -inf
        for (int hh = hs; hh < he; hh++)
            for (int ww = ws; ww < we; ww++) {
                const float v = texelFetch(X, plane + hh * W + ww).x;
                if (v > bv || isnan(v)) {
                    bv = v;
                    best = hh * W + ww;
                }
            }
        y[o] = bv;
        argmax[o] = best;
    }
}
