// Batch norm followed by the SNL masked ReLU in one pass (and, at a residual block's end,
// batch norm + residual add + masked ReLU), elementwise over NCHW:
//   t = (x - mean[c]) * s[c] * gamma[c] + beta[c]            (batch norm, as bn_forward)
//   RES 1: t += r                                              (the shortcut as it is)
//   RES 2: t += (r - rmean[c]) * rs[c] * rgamma[c] + rbeta[c] (the shortcut's batch norm)
//   y = t where t > 0, else (1 - mask) * t                    (as masked_relu_fwd)
// SAVE 1 also stores t (the masked ReLU's input, which its backward reads); SAVE 0 stores
// only y, and the backward recomputes t from x (bn_act_backward).
// EVAL 0: mean/s are the saved batch mean and invstd; EVAL 1: the running mean and var.
// The mask has C*H*W entries (CHANNEL 0) or C (CHANNEL 1). Grid as bn_forward: x strides
// over H*W, y = channel, z strides over the batch. VEC4 1: H*W is a multiple of 4 and
// p.hw counts vec4s.
#include "elem.glsl"
#include "common.glsl"

layout(constant_id = 0) const uint EVAL = 0;
layout(constant_id = 1) const uint CHANNEL = 0;
layout(constant_id = 2) const uint RES = 0;
layout(constant_id = 3) const uint SAVE = 0;

layout(binding = 0, ELEM_FMT) uniform readonly imageBuffer X;
layout(binding = 1) uniform samplerBuffer GAMMA;
layout(binding = 2) uniform samplerBuffer BETA;
layout(binding = 3) uniform samplerBuffer MEAN;
layout(binding = 4) uniform samplerBuffer SCALE;   // invstd (training) or running_var (eval)
layout(binding = 5, ELEM_FMT) uniform readonly imageBuffer R;
layout(binding = 6) uniform samplerBuffer RGAMMA;
layout(binding = 7) uniform samplerBuffer RBETA;
layout(binding = 8) uniform samplerBuffer RMEAN;
layout(binding = 9) uniform samplerBuffer RSCALE;
layout(binding = 10, ELEM_FMT) uniform readonly imageBuffer MASK;
layout(binding = 11) writeonly buffer Tbuf { ELEM t_out[]; };
layout(binding = 12) writeonly buffer Ybuf { ELEM y[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    float eps;
} p;

// A channel's normalisation as y = x * a + b: s * gamma and the shift.
void coeffs(samplerBuffer g_, samplerBuffer b_, samplerBuffer m_, samplerBuffer s_, int ch, out float m, out float sg,
            out float b)
{
    const float v = texelFetch(s_, ch).x;
    const float s = EVAL != 0u ? 1.0 / sqrt(v + p.eps) : v;
    m = texelFetch(m_, ch).x;
    sg = s * texelFetch(g_, ch).x;
    b = texelFetch(b_, ch).x;
}

void main()
{
    const int ch = int(gl_WorkGroupID.y);
    float m, sg, b, rm = 0.0, rsg = 0.0, rb = 0.0;
    coeffs(GAMMA, BETA, MEAN, SCALE, ch, m, sg, b);
    if (RES == 2u) coeffs(RGAMMA, RBETA, RMEAN, RSCALE, ch, rm, rsg, rb);
    // a channel mask: the channel's entry (a vec4 view holds four channels a texel)
#if VEC4
    const float cc = CHANNEL != 0u ? imageLoad(MASK, ch >> 2)[ch & 3] : 0.0;
#else
    const float cc = CHANNEL != 0u ? imageLoad(MASK, ch).x : 0.0;
#endif
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
        const uint base = (n * p.c + gl_WorkGroupID.y) * p.hw;
        for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride) {
            ELEM t = (FETCH(X, int(base + i)) - m) * sg + b;
            if (RES == 1u) t += FETCH(R, int(base + i));
            if (RES == 2u) t += (FETCH(R, int(base + i)) - rm) * rsg + rb;
            const ELEM c = CHANNEL != 0u ? ELEM(cc) : FETCH(MASK, int(uint(ch) * p.hw + i));
            if (SAVE != 0u) t_out[base + i] = t;
#if VEC4
            y[base + i] = mix((1.0 - c) * t, t, greaterThan(t, vec4(0.0)));
#else
            y[base + i] = t > 0.0 ? t : (1.0 - c) * t;
#endif
        }
    }
}
