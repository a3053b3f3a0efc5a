// The fused batch norm + masked ReLU backward, the elementwise pass (after bn_act_reduce):
//   t  = (x - mean) * invstd * gamma + beta,  dt = dy * (t > 0 ? 1 : 1 - mask)
//   dx = gamma * invstd * (dt - dbeta/n - xhat * dgamma/n)   (+ beta * dx with ACC)
// DC 1 (a trained pixel mask; the host runs one workgroup row over the batch, gl_NumWorkGroups.z
// = 1): each invocation also sums its mask entries' gradient over the batch,
//   dc[c, i] = sum_n dy * (relu(t) - t) + lambda * sign(mask[c, i]),
// so the mask gradient costs no pass of its own. Grid: x strides over H*W, y = channel,
// z strides over the batch. VEC4 1: H*W is a multiple of 4 and p.hw counts vec4s.
#include "elem.glsl"
#include "common.glsl"

layout(constant_id = 0) const bool ACC = false;
layout(constant_id = 1) const uint CHANNEL = 0;
layout(constant_id = 2) const uint DC = 0;

layout(binding = 0, ELEM_FMT) uniform readonly imageBuffer DY;
layout(binding = 1, ELEM_FMT) uniform readonly imageBuffer X;
layout(binding = 2, ELEM_FMT) uniform readonly imageBuffer MASK;
layout(binding = 3) uniform samplerBuffer GAMMA;
layout(binding = 4) uniform samplerBuffer BETA;
layout(binding = 5) uniform samplerBuffer MEAN;
layout(binding = 6) uniform samplerBuffer INVSTD;
layout(binding = 7) uniform samplerBuffer DGAMMA;
layout(binding = 8) uniform samplerBuffer DBETA;
layout(binding = 9) readonly buffer Lbuf { float lambda[]; };
layout(binding = 10) buffer DXbuf { ELEM dx[]; };
layout(binding = 11) writeonly buffer DCbuf { ELEM dc[]; };

layout(push_constant) uniform Params {
    uint n, c, hw;
    float inv_count;  // 1 / (N*H*W)
    float beta;       // ACC: dx = result + beta * dx
    uint lambda_index, has_lambda;
} p;

void main()
{
    const int ch = int(gl_WorkGroupID.y);
    const float invstd = texelFetch(INVSTD, ch).x, mean = texelFetch(MEAN, ch).x;
    const float g = texelFetch(GAMMA, ch).x, b = texelFetch(BETA, ch).x;
    const float gi = g * invstd, sg = invstd * g;
    const float mdy = texelFetch(DBETA, ch).x * p.inv_count;
    const float mdyx = texelFetch(DGAMMA, ch).x * p.inv_count;
#if VEC4
    const float cc = CHANNEL != 0u ? imageLoad(MASK, ch >> 2)[ch & 3] : 0.0;
#else
    const float cc = CHANNEL != 0u ? imageLoad(MASK, ch).x : 0.0;
#endif
    const float lam = DC != 0u && p.has_lambda != 0u ? lambda[p.lambda_index] : 0.0;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.hw; i += stride) {
        const ELEM c = CHANNEL != 0u ? ELEM(cc) : FETCH(MASK, int(uint(ch) * p.hw + i));
        ELEM acc = ELEM(0.0);
        for (uint n = gl_WorkGroupID.z; n < p.n; n += gl_NumWorkGroups.z) {
            const uint j = (n * p.c + gl_WorkGroupID.y) * p.hw + i;
            const ELEM xm = FETCH(X, int(j)) - mean, dy = FETCH(DY, int(j));
            const ELEM t = xm * sg + b;
#if VEC4
            const vec4 dt = mix(dy * (1.0 - c), dy, greaterThan(t, vec4(0.0)));
#else
            const float dt = t > 0.0 ? dy : dy * (1.0 - c);
#endif
            ELEM v = gi * (dt - mdy - (xm * invstd) * mdyx);
            if (ACC) v += p.beta * dx[j];
            dx[j] = v;
            if (DC != 0u) acc -= dy * min(t, ELEM(0.0));
        }
        if (DC != 0u) dc[uint(ch) * p.hw + i] = acc + lam * sign(c);
    }
}
