#version 450
#extension GL_GOOGLE_include_directive : require
// c = 1 where c > thr, or c == thr and base + i < tie_cut (ties kept by lowest global
// index, base = this tensor's first global index); else 0. NaN counts as -inf.
// Binarizing at eps is thr = eps, tie_cut = 0; keeping the global top B is the threshold
// and tie cut the host finds (src/ops/mask.c, mask_keep_top).
#include "common.glsl"

layout(binding = 0) buffer Cbuf { float c[]; };

layout(push_constant) uniform Params { uint n; float thr; uint base, tie_cut; } p;

void main()
{
    const float neg_inf = uintBitsToFloat(0xff800000u);
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        const float x = c[i];
        const float v = isnan(x) ? neg_inf : x;
        c[i] = (v > p.thr || (v == p.thr && p.base + i < p.tie_cut)) ? 1.0 : 0.0;
    }
}
