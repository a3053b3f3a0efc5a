#version 450
#extension GL_GOOGLE_include_directive : require
// Stride-2 convolutions (3x3 at padding 1, 1x1 at padding 0) over planes read as they lie,
// a float at a time through R32F views (each position's inputs gathered by its own
// coordinates, zero outside the plane), where conv_flat's swizzles do not apply: input
// rows of 14 floats (14x14 -> 7x7), the 1x1 shortcuts from 28x28 and 14x14, and the
// backward data from dy planes of 14x14 and 7x7. Nothing is packed first.
// MODE 0, forward: an invocation computes TM output channels (A's rows, shared across the
// subgroup as conv_texel's SHARE_A) at a run of four consecutive flat output positions
// (the run may span rows), a loop trip one input channel: KS * KS gathers a position.
// A holds conv_taps4's weights (conv_gather4, 3x3: a vec4 of three taps a kernel row) or
// w as it is (1x1, a float a channel).
// MODE 2, backward filter: an invocation computes TM output channels x the KS * KS taps of
// one input channel, a step one run of dy (A, four floats) against x's taps at that run.
// MODE 3, backward data (dx's height and width even): the transposed convolution of dy,
// an invocation two rows of dx, 2a and 2a + 1, at CB columns (4 or 8) from CB b, summing only
// the taps that reach them (as conv_texel's UP2): with a 3x3 kernel the even row takes
// kernel row 1 and dy's row a, the odd row kernel rows 0 and 2 with dy's rows a + 1 and a;
// even columns take the middle tap, odd ones the outer two, from dy's columns CB b / 2 ..
// CB b / 2 + CB / 2 (with CB 4, six gathers an output channel of dy for 18 multiply-adds of
// each of the TM rows). A holds conv_taps4's flipped weights (rows the channels of dx).
// With a 1x1 kernel only even rows and columns receive dy, A is w as it is.
#extension GL_KHR_shader_subgroup_shuffle : enable
#include "common.glsl"

layout(constant_id = 0) const uint TM = 16;
layout(constant_id = 1) const uint SG = 16;
layout(constant_id = 2) const uint MODE = 0;
layout(constant_id = 3) const uint KS = 3;       // 3 (padding 1) or 1 (padding 0)
layout(constant_id = 4) const bool ACC = false;  // beta != 0: out = result + beta * out
layout(constant_id = 5) const bool OUT4 = false; // the output's rows (MODE 3) or planes (MODE 0) whole vec4s
layout(constant_id = 6) const uint CB = 4;       // MODE 3: dx's columns an invocation, 4 or 8

#ifdef GATHER_A4
layout(binding = 0, rgba32f) uniform readonly imageBuffer A; // conv_taps4's weights
#else
layout(binding = 0, r32f) uniform readonly imageBuffer A; // w, or dy (MODE 2)
#endif
layout(binding = 1, r32f) uniform readonly imageBuffer B; // x, or dy (MODE 3)
layout(binding = 2) uniform samplerBuffer BIAS;
layout(binding = 3) buffer Out { vec4 O[]; };
layout(push_constant) uniform Params {
    uint N, C, H, W, K; // the layer: x (N, C, H, W), K output channels
    uint has_bias;
    float beta;
    uint P, Q; // its output plane
} p;

const int PAD = KS == 3u ? 1 : 0;

// The float at (h, w) of the hh x ww plane starting at float `plane`, zero outside it.
float at(uint plane, int h, int w, uint hh, uint ww)
{
    const bool in_ = h >= 0 && h < int(hh) && w >= 0 && w < int(ww);
    const float v = imageLoad(B, int(plane) + (in_ ? h * int(ww) + w : 0)).x;
    return in_ ? v : 0.0;
}

// xs[KS r + s][x]: x at the taps of output position x of the run, whose input corner
// (tap 0, 0) is (hp[x], wp[x]).
void taps(uint plane, int hp[4], int wp[4], out vec4 xs[9])
{
    [[unroll]] for (uint r = 0; r < KS; r++)
        [[unroll]] for (uint s = 0; s < KS; s++)
            [[unroll]] for (uint x = 0; x < 4u; x++)
                xs[KS * r + s][x] = at(plane, hp[x] + int(r), wp[x] + int(s), p.H, p.W);
    [[unroll]] for (uint i = KS * KS; i < 9u; i++) xs[i] = vec4(0.0);
}

// MODE 3: column x of one row of dx from a kernel row t (flipped: t.x the tap s = 2) and
// dy's columns from the invocation's first, d[i] (even x: the middle tap; odd: the outer two).
float col(vec4 t, float d[5], uint x)
{
    return x % 2u == 0u ? t.y * d[x / 2u] : fma(t.z, d[(x + 1u) / 2u], t.x * d[(x - 1u) / 2u]);
}

void main()
{
    const uint NA = TM / SG, lane = gl_SubgroupInvocationID;
    const uint PQ = p.P * p.Q, RUNS = (PQ + 3u) / 4u;
    if (MODE == 0u) {
        const uint NC = p.N * RUNS, run = min(gl_GlobalInvocationID.x, NC - 1u);
        const uint n = run / RUNS, j = run % RUNS * 4u, k0 = gl_GlobalInvocationID.y * TM;
        int hp[4], wp[4];
        [[unroll]] for (uint x = 0; x < 4u; x++) {
            const uint jj = min(j + x, PQ - 1u);
            hp[x] = 2 * int(jj / p.Q) - PAD;
            wp[x] = 2 * int(jj % p.Q) - PAD;
        }
        uint own[NA]; // this lane's row of A: conv_taps4's first texel, or w's first float
        [[unroll]] for (uint t = 0; t < NA; t++)
            own[t] = min(k0 + t * SG + lane, p.K - 1u) * p.C * (KS == 3u ? 3u : 1u);
        float acc[TM * 4u];
        [[unroll]] for (uint i = 0; i < TM * 4u; i++) acc[i] = 0.0;
        for (uint c = 0; c < p.C; c++) {
            vec4 xs[9];
            taps((n * p.C + c) * p.H * p.W, hp, wp, xs);
            vec4 a3[3][NA];
            [[unroll]] for (uint r = 0; r < KS; r++)
                [[unroll]] for (uint t = 0; t < NA; t++)
                    a3[r][t] = imageLoad(A, int(KS == 3u ? own[t] + c * 3u + r : own[t] + c));
            [[unroll]] for (uint k = 0; k < TM; k++) {
                vec4 a[3];
                [[unroll]] for (uint r = 0; r < KS; r++) a[r] = subgroupShuffle(a3[r][k / SG], k % SG);
                [[unroll]] for (uint x = 0; x < 4u; x++) {
                    float v = acc[4u * k + x];
                    [[unroll]] for (uint r = 0; r < KS; r++)
                        [[unroll]] for (uint s = 0; s < KS; s++) v = fma(a[r][s], xs[KS * r + s][x], v);
                    acc[4u * k + x] = v;
                }
            }
        }
        if (gl_GlobalInvocationID.x >= NC) return;
        [[unroll]] for (uint k = 0; k < TM; k++) {
            const uint kk = k0 + k;
            if (kk >= p.K) break;
            const float bias = p.has_bias != 0u ? texelFetch(BIAS, int(kk)).x : 0.0;
            const uint o = (n * p.K + kk) * PQ + j;
            if (OUT4) {
                vec4 val = vec4(acc[4u * k], acc[4u * k + 1u], acc[4u * k + 2u], acc[4u * k + 3u]) + bias;
                if (ACC) val += p.beta * O[o / 4u];
                O[o / 4u] = val;
                continue;
            }
            [[unroll]] for (uint x = 0; x < 4u; x++) {
                if (j + x >= PQ) break;
                float val = acc[4u * k + x] + bias;
                if (ACC) val += p.beta * O[(o + x) / 4u][(o + x) % 4u];
                O[(o + x) / 4u][(o + x) % 4u] = val;
            }
        }
        return;
    }
    if (MODE == 2u) {
        // channel ch, output channels k0 .. k0 + TM - 1, every image and run
        const uint ch = min(gl_GlobalInvocationID.x, p.C - 1u), k0 = gl_GlobalInvocationID.y * TM;
        uint own[NA]; // dy[0, k, 0] of the rows this lane fetches
        [[unroll]] for (uint t = 0; t < NA; t++) own[t] = min(k0 + t * SG + lane, p.K - 1u) * PQ;
        float acc[TM * 9u];
        [[unroll]] for (uint i = 0; i < TM * 9u; i++) acc[i] = 0.0;
        uint n = 0, j = 0, row = 0, col = 0; // the run's first position and its row, column
        const uint steps = p.N * RUNS;
        for (uint step = 0; step < steps; step++) {
            int hp[4], wp[4];
            uint r = row, c = col;
            [[unroll]] for (uint x = 0; x < 4u; x++) {
                hp[x] = 2 * int(r) - PAD;
                wp[x] = 2 * int(c) - PAD;
                if (++c == p.Q) {
                    c = 0;
                    r++;
                }
            }
            vec4 xs[9];
            taps((n * p.C + ch) * p.H * p.W, hp, wp, xs);
            vec4 d[NA]; // dy at the run, zero past the plane
            [[unroll]] for (uint t = 0; t < NA; t++) {
                const uint a0 = n * p.K * PQ + own[t] + j;
                [[unroll]] for (uint x = 0; x < 4u; x++)
                    d[t][x] = j + x < PQ ? imageLoad(A, int(min(a0 + x, a0 - j + PQ - 1u))).x : 0.0;
            }
            [[unroll]] for (uint k = 0; k < TM; k++) {
                const vec4 a = subgroupShuffle(d[k / SG], k % SG);
                [[unroll]] for (uint i = 0; i < KS * KS; i++) acc[9u * k + i] = fma4(a, xs[i], acc[9u * k + i]);
            }
            j += 4u;
            row = r, col = c;
            if (j >= PQ) {
                j = 0, row = 0, col = 0;
                n++;
            }
        }
        if (gl_GlobalInvocationID.x >= p.C) return;
        [[unroll]] for (uint k = 0; k < TM; k++) {
            const uint kk = k0 + k;
            if (kk >= p.K) break;
            [[unroll]] for (uint i = 0; i < KS * KS; i++) {
                const uint o = (kk * p.C + ch) * KS * KS + i;
                float val = acc[9u * k + i];
                if (ACC) val += p.beta * O[o / 4u][o % 4u];
                O[o / 4u][o % 4u] = val;
            }
        }
        return;
    }
    // MODE 3: dx rows 2a, 2a + 1 and columns CB b .. CB b + CB - 1 of image n, its channels
    // c0 .. c0 + TM - 1
    const uint WB = (p.W + CB - 1u) / CB, HA = p.H / 2u, NC = p.N * HA * WB;
    const uint g = min(gl_GlobalInvocationID.x, NC - 1u);
    const uint n = g / (HA * WB), a = g / WB % HA, b = g % WB, c0 = gl_GlobalInvocationID.y * TM;
    uint own[NA]; // this lane's row: conv_taps4's flipped taps (dx's channel), or its column of w
    [[unroll]] for (uint t = 0; t < NA; t++) {
        const uint cc = min(c0 + t * SG + lane, p.C - 1u);
        own[t] = KS == 3u ? cc * p.K * 3u : cc;
    }
    float ev[TM * CB], od[TM * CB]; // rows 2a and 2a + 1
    [[unroll]] for (uint i = 0; i < TM * CB; i++) ev[i] = od[i] = 0.0;
    for (uint k = 0; k < p.K; k++) {
        const uint plane = (n * p.K + k) * PQ;
        float d0[5], d1[5]; // dy's rows a and a + 1 at columns CB b / 2 .. CB b / 2 + CB / 2
        [[unroll]] for (uint i = 0; i < 5u; i++) {
            const int q = int(CB / 2u * b + i);
            d0[i] = i <= CB / 2u && (KS == 3u || i < CB / 2u) ? at(plane, int(a), q, p.P, p.Q) : 0.0;
            d1[i] = i <= CB / 2u && KS == 3u ? at(plane, int(a) + 1, q, p.P, p.Q) : 0.0;
        }
        vec4 t3[3][NA];
        [[unroll]] for (uint r = 0; r < KS; r++)
            [[unroll]] for (uint t = 0; t < NA; t++)
                t3[r][t] = imageLoad(A, int(KS == 3u ? own[t] + k * 3u + r : k * p.C + own[t]));
        [[unroll]] for (uint m = 0; m < TM; m++) {
            if (KS == 3u) {
                const vec4 t0 = subgroupShuffle(t3[0][m / SG], m % SG), t1 = subgroupShuffle(t3[1][m / SG], m % SG),
                           t2 = subgroupShuffle(t3[2][m / SG], m % SG);
                [[unroll]] for (uint x = 0; x < CB; x++) {
                    ev[CB * m + x] += col(t1, d0, x);
                    od[CB * m + x] += col(t2, d1, x) + col(t0, d0, x);
                }
            } else {
                const float w1 = subgroupShuffle(t3[0][m / SG].x, m % SG);
                [[unroll]] for (uint x = 0; x < CB; x += 2u) ev[CB * m + x] = fma(w1, d0[x / 2u], ev[CB * m + x]);
            }
        }
    }
    if (gl_GlobalInvocationID.x >= NC) return;
    [[unroll]] for (uint m = 0; m < TM; m++) {
        const uint cc = c0 + m;
        if (cc >= p.C) break;
        [[unroll]] for (uint h = 0; h < 2u; h++)
            [[unroll]] for (uint v4 = 0; v4 < CB; v4 += 4u) {
            const uint o = ((n * p.C + cc) * p.H + 2u * a + h) * p.W + CB * b + v4, e = CB * m + v4;
            vec4 val = h == 0u ? vec4(ev[e], ev[e + 1u], ev[e + 2u], ev[e + 3u])
                               : vec4(od[e], od[e + 1u], od[e + 2u], od[e + 3u]);
            if (OUT4) {
                if (CB * b + v4 >= p.W) break;
                if (ACC) val += p.beta * O[o / 4u];
                O[o / 4u] = val;
                continue;
            }
            [[unroll]] for (uint x = 0; x < 4u; x++) {
                if (CB * b + v4 + x >= p.W) break;
                float v = val[x];
                if (ACC) v += p.beta * O[(o + x) / 4u][(o + x) % 4u];
                O[(o + x) / 4u][(o + x) % 4u] = v;
            }
        }
    }
}
