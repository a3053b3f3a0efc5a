// Convolution as an implicit GEMM (no im2col buffer). MODE (specialisation constant 10):
//   0 forward:         y[n,k,p,q]   M = K, columns j = (n,p,q), reduction kk = (c,r,s)
//   1 backward data:  dx[n,c,h,w]   M = C, columns j = (n,h,w), reduction kk = (k,r,s)
//   2 backward filter: dw[k,c,r,s]  M = K, columns j = (c,r,s), reduction kk = (n,p,q)
//   3 backward data, one stride phase (a,b): dx[n,c,a+st*h',b+st*w'], M = C, columns
//     j = (n,h',w'), reduction kk = (k,i,j) over the kernel taps r = r0+st*i, s = t0+st*j
//     that reach this phase: no work is spent on the zeros a strided gather would test.
// Element (i,kk) of A and (kk,j) of B are computed from these shapes on the fly.
layout(constant_id = 10) const uint MODE = 0;
// PADDED (modes 0, 2, 3): B was packed with its zero margin (conv_pack.comp) and the host
// passes the grown plane in place of B's (H, W with pad 0, or P, Q with da, db moved), so
// no element of B is outside: b_addr skips the bounds tests.
layout(constant_id = 11) const bool PADDED = false;

layout(push_constant) uniform Params {
    uint N, C, H, W;     // input x
    uint K, R, S;        // filters K x C x R x S
    uint P, Q;           // output spatial size
    uint stride, pad;
    uint has_bias;       // forward only: bias[k]
    float beta;          // C = A*B + beta*C (gradient accumulation)
    // mode 3: the phase (pa, pb), its output size (ph, pw), the taps r0 + st*i (i < sr)
    // and t0 + st*j (j < ss), and the offsets da, db of dy's row and column
    uint pa, pb, ph, pw, r0, t0, sr, ss, da, db;
} p;

uint gemm_m() { return MODE == 1u || MODE == 3u ? p.C : p.K; }
uint gemm_n()
{
    if (MODE == 0u) return p.N * p.P * p.Q;
    if (MODE == 1u) return p.N * p.H * p.W;
    if (MODE == 3u) return p.N * p.ph * p.pw;
    return p.C * p.R * p.S;
}
uint gemm_k()
{
    if (MODE == 2u) return p.N * p.P * p.Q;
    if (MODE == 1u) return p.K * p.R * p.S;
    if (MODE == 3u) return p.K * p.sr * p.ss;
    return p.C * p.R * p.S;
}

// The reduction index kk is walked as (u, v, w) with dims (U, V, Wd).
uint red_v() { return MODE == 2u ? p.P : MODE == 3u ? p.sr : p.R; }
uint red_w() { return MODE == 2u ? p.Q : MODE == 3u ? p.ss : p.S; }

// Row part of A's address for output row i.
uint a_row(uint i)
{
    if (MODE == 0u) return i * p.C * p.R * p.S;          // w[k, :]
    if (MODE == 1u || MODE == 3u) return i * p.R * p.S; // w[:, c, :, :]
    return i * p.P * p.Q;                                // dy[:, k, :, :]
}
// Reduction part of A's address for kk = (u, v, w).
uint a_red(uint u, uint v, uint w)
{
    if (MODE == 0u) return (u * p.R + v) * p.S + w;                   // c*RS + r*S + s
    if (MODE == 1u) return u * p.C * p.R * p.S + v * p.S + w;         // k*CRS + r*S + s
    if (MODE == 3u) return u * p.C * p.R * p.S + (p.r0 + v * p.stride) * p.S + p.t0 + w * p.stride;
    return u * p.K * p.P * p.Q + v * p.Q + w;                         // n*KPQ + p*Q + q
}

// Per-column state of B: a base address and the column's spatial origin.
struct BCol { int base; int h0; int w0; };

BCol b_col(uint j)
{
    BCol c;
    if (MODE == 0u) {        // j = (n, p, q): x[n, :, p*st - pad + r, q*st - pad + s]
        uint q = j % p.Q, t = j / p.Q, pp = t % p.P, n = t / p.P;
        c.h0 = int(pp * p.stride) - int(p.pad);
        c.w0 = int(q * p.stride) - int(p.pad);
        c.base = int(n * p.C * p.H * p.W);
    } else if (MODE == 3u) { // j = (n, h', w'): dy[n, :, h' + da - i, w' + db - j]
        uint w = j % p.pw, t = j / p.pw, h = t % p.ph, n = t / p.ph;
        c.h0 = int(h + p.da);
        c.w0 = int(w + p.db);
        c.base = int(n * p.K * p.P * p.Q);
    } else if (MODE == 1u) { // j = (n, h, w): dy[n, :, (h + pad - r)/st, (w + pad - s)/st]
        uint w = j % p.W, t = j / p.W, h = t % p.H, n = t / p.H;
        c.h0 = int(h + p.pad);
        c.w0 = int(w + p.pad);
        c.base = int(n * p.K * p.P * p.Q);
    } else {                 // j = (c, r, s): x[:, c, p*st + r - pad, q*st + s - pad]
        uint s = j % p.S, t = j / p.S, r = t % p.R, ch = t / p.R;
        c.h0 = int(r) - int(p.pad);
        c.w0 = int(s) - int(p.pad);
        c.base = int(ch * p.H * p.W);
    }
    return c;
}

// Address of B(kk, j) for kk = (u, v, w), or -1 where the element is zero (padding,
// or for backward data a position the stride skips).
int b_addr(BCol c, uint u, uint v, uint w)
{
    if (MODE == 3u) {        // (u, v, w) = (k, i, j)
        int ph = c.h0 - int(v), pw = c.w0 - int(w);
        if (!PADDED && (ph < 0 || pw < 0 || ph >= int(p.P) || pw >= int(p.Q))) return -1;
        return c.base + int(u * p.P * p.Q) + ph * int(p.Q) + pw;
    }
    if (MODE == 1u) {        // (u, v, w) = (k, r, s)
        int ph = c.h0 - int(v), pw = c.w0 - int(w);
        if (ph < 0 || pw < 0) return -1;
        uint uh = uint(ph), uw = uint(pw);
        if (uh % p.stride != 0u || uw % p.stride != 0u) return -1;
        uh /= p.stride;
        uw /= p.stride;
        if (uh >= p.P || uw >= p.Q) return -1;
        return c.base + int((u * p.P + uh) * p.Q + uw);
    }
    int h, w2, off;
    if (MODE == 0u) {        // (u, v, w) = (c, r, s)
        h = c.h0 + int(v);
        w2 = c.w0 + int(w);
        off = int(u * p.H * p.W);
    } else {                 // (u, v, w) = (n, p, q)
        h = c.h0 + int(v * p.stride);
        w2 = c.w0 + int(w * p.stride);
        off = int(u * p.C * p.H * p.W);
    }
    if (!PADDED && (h < 0 || w2 < 0 || h >= int(p.H) || w2 >= int(p.W))) return -1;
    return c.base + off + h * int(p.W) + w2;
}

// Address of the output element (i, j) = c_col(j) + i * c_row(): the column part holds
// the divisions (a scalar loop over the lanes on lavapipe), so kernels compute it once
// per column rather than once per element.
uint c_row()
{
    if (MODE == 0u) return p.P * p.Q;
    if (MODE == 1u || MODE == 3u) return p.H * p.W;
    return p.C * p.R * p.S;
}
uint c_col(uint j)
{
    if (MODE == 0u) {
        uint pq = p.P * p.Q;
        return (j / pq) * p.K * pq + j % pq;
    }
    if (MODE == 1u) {
        uint hw = p.H * p.W;
        return (j / hw) * p.C * hw + j % hw;
    }
    if (MODE == 3u) {
        uint w = j % p.pw, t = j / p.pw, h = t % p.ph, n = t / p.ph;
        return n * p.C * p.H * p.W + (p.pa + h * p.stride) * p.W + p.pb + w * p.stride;
    }
    return j;
}
uint c_addr(uint i, uint j) { return c_col(j) + i * c_row(); }
