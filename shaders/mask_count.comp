#version 450
#extension GL_GOOGLE_include_directive : require
// ReLU count of one mask tensor: counts[slot] = weight * #{i : c[i] > eps}, overwritten.
// One workgroup, a fixed-order shared-memory reduction: no atomics, so the host need not
// clear the counts first. `weight` is H*W for channel masks (one entry = H*W ReLUs).
#include "common.glsl"

layout(binding = 0) readonly buffer Cbuf { float c[]; };
layout(binding = 1) buffer Nbuf { uint counts[]; };

layout(push_constant) uniform Params { uint n; float eps; uint slot, weight; } p;

shared uint partial[gl_WorkGroupSize.x];

void main()
{
    const uint t = gl_LocalInvocationID.x;
    uint k = 0;
    for (uint i = t; i < p.n; i += gl_WorkGroupSize.x) k += c[i] > p.eps ? 1u : 0u;
    partial[t] = k;
    barrier();
    for (uint h = gl_WorkGroupSize.x / 2; h > 0; h >>= 1) {
        if (t < h) partial[t] += partial[t + h];
        barrier();
    }
    if (t == 0) counts[p.slot] = partial[0] * p.weight;
}
