#version 450
#extension GL_GOOGLE_include_directive : require
// Sums loss_rows' per-row values in a fixed order (one workgroup, deterministic) and
// accumulates them into the metrics block (src/ops/loss.h, loss_metrics): the host
// resets it with a fill once per epoch and reads it back once. The float sums carry a
// Kahan compensation so an epoch of small additions does not drift.
#include "common.glsl"

layout(binding = 0) readonly buffer Rbuf { uint rows[]; };
layout(binding = 1) buffer Mbuf {
    float ce_sum, ce_comp;
    float kd_sum, kd_comp;
    uint top1, top5;
    uint examples, steps;
    float last_ce, last_kd;
    uint reserved[2];
} mt;

layout(push_constant) uniform Params { uint n; } p;

shared float s_ce[gl_WorkGroupSize.x];
shared float s_kd[gl_WorkGroupSize.x];
shared uint s_top1[gl_WorkGroupSize.x];
shared uint s_top5[gl_WorkGroupSize.x];

void main()
{
    const uint t = gl_LocalInvocationID.x;
    float ce = 0.0, kd = 0.0;
    uint t1 = 0, t5 = 0;
    for (uint r = t; r < p.n; r += gl_WorkGroupSize.x) {
        ce += uintBitsToFloat(rows[3 * r]);
        kd += uintBitsToFloat(rows[3 * r + 1]);
        const uint f = rows[3 * r + 2];
        t1 += f & 1u;
        t5 += (f >> 1) & 1u;
    }
    s_ce[t] = ce;
    s_kd[t] = kd;
    s_top1[t] = t1;
    s_top5[t] = t5;
    barrier();
    if (t != 0) return;
    for (uint i = 1; i < gl_WorkGroupSize.x; i++) {
        ce += s_ce[i];
        kd += s_kd[i];
        t1 += s_top1[i];
        t5 += s_top5[i];
    }
    // Kahan: `precise` keeps the compiler from simplifying the compensation away
    precise float y = ce - mt.ce_comp;
    precise float s = mt.ce_sum + y;
    mt.ce_comp = (s - mt.ce_sum) - y;
    mt.ce_sum = s;
    precise float yk = kd - mt.kd_comp;
    precise float sk = mt.kd_sum + yk;
    mt.kd_comp = (sk - mt.kd_sum) - yk;
    mt.kd_sum = sk;
    mt.top1 += t1;
    mt.top5 += t5;
    mt.examples += p.n;
    mt.steps += 1u;
    mt.last_ce = ce / float(p.n);
    mt.last_kd = kd / float(p.n);
}
