#version 450
#extension GL_GOOGLE_include_directive : require
// Classifier loss, one invocation per batch row (classes are few: 3..1000):
//   CE   = logsumexp(z) - z[label]                          (softmax cross-entropy)
//   KD   = T^2 * sum_i pt_i (log pt_i - log ps_i),  ps = softmax(z/T), pt = softmax(t/T)
//          (PyTorch: KLDivLoss(reduction='batchmean')(log_softmax(z/T), softmax(t/T)) * T*T,
//          the batch mean is taken by loss_reduce)
//   dz   = ce_weight/N * (softmax(z) - onehot) + kd_weight*T/N * (ps - pt)   (overwritten)
// plus top-1 / top-5 flags: correct when fewer than k logits are strictly greater than
// the label's. Per-row values go to ROWS (3 words a row) for loss_reduce, which sums
// them in a fixed order (no float atomics). All max-subtracted. A label outside
// [0, classes) gives a NaN loss, no one-hot term and no top-k hit.
#include "common.glsl"

layout(constant_id = 0) const uint HAS_KD = 0;   // 0: no teacher, KD = 0
layout(constant_id = 1) const uint HAS_GRAD = 1; // 0: metrics only (evaluation)

layout(binding = 0) readonly buffer Zbuf { float z[]; };
layout(binding = 1) readonly buffer Lbuf { int labels[]; };
layout(binding = 2) readonly buffer Tbuf { float tz[]; };
layout(binding = 3) writeonly buffer DZbuf { float dz[]; };
layout(binding = 4) writeonly buffer Rbuf { uint rows[]; };
#define STEP_PARAMS_BINDING 5
#include "step_params.glsl"

layout(push_constant) uniform Params { uint n, classes; } p;

void main()
{
    const uint r = gl_GlobalInvocationID.x;
    if (r >= p.n) return;
    const uint base = r * p.classes;
    const uint C = p.classes;
    const int label = labels[r];
    const bool valid = label >= 0 && uint(label) < C;

    // cross-entropy at temperature 1
    float m = z[base];
    for (uint i = 1; i < C; i++) m = max(m, z[base + i]);
    float s = 0.0;
    for (uint i = 0; i < C; i++) s += exp(z[base + i] - m);
    const float lse = m + log(s);
    const float zl = valid ? z[base + uint(label)] : 0.0;
    const float ce = valid ? lse - zl : uintBitsToFloat(0x7fc00000u);
    // a NaN logit outranks every other (a NaN label logit is never correct)
    uint greater = 0;
    if (valid)
        for (uint i = 0; i < C; i++) greater += (z[base + i] > zl || isnan(z[base + i]) || isnan(zl)) ? 1u : 0u;
    const uint flags = valid ? (greater < 1u ? 1u : 0u) | (greater < 5u ? 2u : 0u) : 0u;

    // distillation at temperature T
    float kd = 0.0, lses = 0.0, lset = 0.0;
    const float T = sp.kd_temperature;
    if (HAS_KD != 0) {
        float ms = z[base] / T, mt = tz[base] / T;
        for (uint i = 1; i < C; i++) {
            ms = max(ms, z[base + i] / T);
            mt = max(mt, tz[base + i] / T);
        }
        float ss = 0.0, st = 0.0;
        for (uint i = 0; i < C; i++) {
            ss += exp(z[base + i] / T - ms);
            st += exp(tz[base + i] / T - mt);
        }
        lses = ms + log(ss);
        lset = mt + log(st);
        for (uint i = 0; i < C; i++) {
            const float lpt = tz[base + i] / T - lset;
            const float lps = z[base + i] / T - lses;
            const float pt = exp(lpt);
            if (pt > 0.0) kd += pt * (lpt - lps); // KLDivLoss: 0 where the target is 0
        }
        kd *= T * T;
    }

    if (HAS_GRAD != 0) {
        const float inv_n = 1.0 / float(p.n);
        const float gce = sp.ce_weight * inv_n;
        const float gkd = sp.kd_weight * T * inv_n;
        for (uint i = 0; i < C; i++) {
            float g = gce * (exp(z[base + i] - lse) - (valid && i == uint(label) ? 1.0 : 0.0));
            if (HAS_KD != 0) g += gkd * (exp(z[base + i] / T - lses) - exp(tz[base + i] / T - lset));
            dz[base + i] = g;
        }
    }
    rows[3 * r] = floatBitsToUint(ce);
    rows[3 * r + 1] = floatBitsToUint(kd);
    rows[3 * r + 2] = flags;
}
