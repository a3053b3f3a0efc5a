// The per-channel sums of the fused batch norm + masked ReLU backward (bn_act_backward's
// first pass), one workgroup per channel (gl_WorkGroupID.x), walked as bn_reduce:
//   t  = (x - mean) * invstd * gamma + beta          (the masked ReLU's input, recomputed)
//   dt = dy * (t > 0 ? 1 : 1 - mask)                 (the masked ReLU's input gradient)
//   dgamma[c] = sum dt * (x - mean) * invstd,  dbeta[c] = sum dt
//   CHANNEL 1 and DC 1 (a trained channel mask): dc[c] = sum dy * (relu(t) - t) + lambda * sign(mask[c])
// VEC4 1 (H*W a multiple of four): a unit is a vec4 of one plane. Reads through storage
// texel buffers (imageLoad, inline on lavapipe).
#include "elem.glsl"
#include "common.glsl"

layout(constant_id = 0) const uint CHANNEL = 0;
layout(constant_id = 1) const uint DC = 0;

layout(binding = 0, ELEM_FMT) uniform readonly imageBuffer DY;
layout(binding = 1, ELEM_FMT) uniform readonly imageBuffer X;
layout(binding = 2, ELEM_FMT) uniform readonly imageBuffer MASK;
layout(binding = 3) uniform samplerBuffer GAMMA;
layout(binding = 4) uniform samplerBuffer BETA;
layout(binding = 5) uniform samplerBuffer MEAN;
layout(binding = 6) uniform samplerBuffer INVSTD;
layout(binding = 7) readonly buffer Lbuf { float lambda[]; };
layout(binding = 8) writeonly buffer Out0 { float dgamma[]; };
layout(binding = 9) writeonly buffer Out1 { float dbeta[]; };
layout(binding = 10) writeonly buffer DCbuf { float dc[]; };

layout(push_constant) uniform Params {
    uint n, c, units;  // units: elements (or vec4s with VEC4) per plane
    uint lambda_index, has_lambda;
} p;

shared vec3 red[gl_WorkGroupSize.x];

vec3 wg_sum(vec3 v)
{
    const uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    return red[0];
}

#if VEC4
float usum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
#else
float usum(float v) { return v; }
#endif

void main()
{
    const uint ch = gl_WorkGroupID.x, U = p.units;
    const float mean = texelFetch(MEAN, int(ch)).x, invstd = texelFetch(INVSTD, int(ch)).x;
    const float sg = invstd * texelFetch(GAMMA, int(ch)).x, b = texelFetch(BETA, int(ch)).x;
#if VEC4
    const float cc = CHANNEL != 0u ? imageLoad(MASK, int(ch >> 2))[ch & 3u] : 0.0;
#else
    const float cc = CHANNEL != 0u ? imageLoad(MASK, int(ch)).x : 0.0;
#endif
    float sdt = 0.0, sdtx = 0.0, sdc = 0.0;
    // this invocation's units n*U + i, stepping (n, i) by (WG / U, WG % U) with a carry
    const uint dn = gl_WorkGroupSize.x / U, di = gl_WorkGroupSize.x % U;
    for (uint n = gl_LocalInvocationID.x / U, i = gl_LocalInvocationID.x % U; n < p.n;) {
        const int j = int((n * p.c + ch) * U + i);
        const ELEM xm = FETCH(X, j) - mean, dy = FETCH(DY, j);
        const ELEM t = xm * sg + b;
        const ELEM c = CHANNEL != 0u ? ELEM(cc) : FETCH(MASK, int(ch * U + i));
#if VEC4
        const vec4 dt = mix(dy * (1.0 - c), dy, greaterThan(t, vec4(0.0)));
#else
        const float dt = t > 0.0 ? dy : dy * (1.0 - c);
#endif
        sdt += usum(dt);
        sdtx += usum(dt * xm);
        if (DC != 0u) sdc -= usum(dy * min(t, ELEM(0.0)));
        i += di;
        n += dn;
        if (i >= U) {
            i -= U;
            n++;
        }
    }
    const vec3 tot = wg_sum(vec3(sdtx, sdt, sdc));
    if (gl_LocalInvocationID.x == 0u) {
        dgamma[ch] = tot.x * invstd;
        dbeta[ch] = tot.y;
        if (DC != 0u) dc[ch] = tot.z + (p.has_lambda != 0u ? lambda[p.lambda_index] * sign(cc) : 0.0);
    }
}
