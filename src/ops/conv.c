#include "ops/conv.h"

typedef struct conv_push {
    uint32_t n, c, h, w, k, r, s, p, q, stride, pad, has_bias;
    float beta;
    uint32_t pa, pb, ph, pw, r0, t0, sr, ss, da, db; /* mode 3 */
} conv_push;

snlvk_status conv_check(const conv_shape *s)
{
    if (!s->n || !s->c || !s->h || !s->w || !s->k || !s->ksize || !s->stride)
        return snlvk_fail(SNLVK_E_INVALID, "conv2d: every size must be positive");
    if (s->h + 2 * s->pad < s->ksize || s->w + 2 * s->pad < s->ksize)
        return snlvk_fail(SNLVK_E_INVALID, "conv2d: kernel %u is larger than the padded input %ux%u", s->ksize,
                          s->h + 2 * s->pad, s->w + 2 * s->pad);
    return SNLVK_OK;
}

/* The texel kernel's register block: on lavapipe the gathers bound the speed, and large
 * blocks amortise them (scalar fetches, the 64->64 3x3 layer: 8x4 17, 16x8 29, 32x16 36
 * GFLOP/s). Packed (vec4) operands fetch four terms at once and share A's rows across
 * the subgroup. With 256-bit vectors (subgroups of 8) 16x8 was fastest on that layer at
 * batch 32 (forward / backward data / backward filter ms, quiet 2-core machine: 16x8
 * 37/37/46, 32x8 38/40/54, 16x16 36/43/58, 16x4 41/43/46, 8x8 43/45/53, 64x4 39/38/56);
 * with 512-bit vectors (subgroups of 16) 32x8 (GFLOP/s: 32x8 81/73/71, 16x8 68/58/59,
 * 32x16 67/64/56, 64x8 81/58/54, 32x4 78/70/68; 128@16x16 and 512@4x4 alike). */
static void texel_block(int vec4, uint64_t m, uint32_t sg, uint32_t *tm, uint32_t *tn)
{
    if (vec4) {
        *tm = m >= 32 && sg >= 16 ? 32 : m >= 16 ? 16 : m >= 8 ? 8 : 4;
        *tn = 8;
        return;
    }
    *tn = 16;
    *tm = m >= 32 ? 32 : m >= 16 ? 16 : 8;
}

/* One implicit-GEMM dispatch. vec4: a and b are packed operands (conv_pack) and pp
 * carries the packed dim's count of vec4s in its place. */
static snlvk_status conv_dispatch_push(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode,
                                       vk_binding a, vk_binding b, const vk_buf *bias, const vk_buf *out,
                                       const conv_push *pp, gemm_variant v, int vec4)
{
    conv_push p = *pp;
    uint64_t m = mode == 1 || mode == 3 ? s->c : s->k;
    uint64_t ncols = mode == 0 ? (uint64_t)s->n * p.p * p.q
                   : mode == 1 ? (uint64_t)s->n * s->h * s->w
                   : mode == 3 ? (uint64_t)s->n * p.ph * p.pw
                               : (uint64_t)s->c * s->ksize * s->ksize;
    vk_binding binds[4] = {a, b, vk_bind(bias ? bias : a.buf), vk_bind(out)};
    const vk_pipeline *pipe;
    if (vec4 || gemm_pick_variant(ctx, v) == GEMM_TEXEL) {
        uint32_t TM, TN;
        const uint32_t LX = 16, LY = 1, sg = ctx->info.subgroup_size;
        texel_block(vec4, m, sg, &TM, &TN);
        /* the lanes of a subgroup share A's rows (conv_texel.comp, SHARE_A) */
        const uint32_t share = vec4 && ctx->info.subgroup_shuffle && sg && TM % sg == 0 && LX % sg == 0;
        /* backward filter of a 3x3 kernel at stride 1: a sliding window of x along rows of
         * dy (WIN), one channel's nine taps an invocation. 64->64 at 32x32, batch 32: 27.0
         * -> 23.7 ms; 128@16x16 23.5 -> 21.8; 256@8x8 even; 512@4x4 24 -> 28 (the window
         * is refilled every four steps), hence rows of at least 8 */
        const uint32_t win = mode == 2 && share && s->ksize == 3 && s->stride == 1 && p.q >= 8;
        if (win) TN = 9;
        /* OUT4: each invocation's TN columns are consecutive output floats starting on a vec4 */
        const uint64_t run = mode == 0 ? (uint64_t)p.p * p.q
                           : mode == 1 ? (uint64_t)s->h * s->w
                           : mode == 3 ? (s->stride == 1 ? (uint64_t)s->h * s->w : 1)
                                       : (uint64_t)s->c * s->ksize * s->ksize;
        const uint32_t out4 = TN % 4 == 0 && run % TN == 0;
        vk_pipeline_desc d = {.shader = "conv_texel", .bindings = vec4 ? "TTts" : "ttts", .push_size = sizeof p,
                              .n_spec = 12,
                              .spec = {TM, TN, vec4 ? 1 : 0, share, share ? sg : 8, out4, p.beta != 0.0f, win, 0, 0,
                                       mode, vec4 ? 1 : 0},
                              .local_size = {LX, LY, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(vk_div_up(ncols, TN), LX), vk_div_up(vk_div_up(m, TM), LY), 1);
    }
    enum { BM = 64, BN = 64, BK = 16, TM = 4, TN = 4 };
    vk_pipeline_desc d = {.shader = "conv_tiled", .bindings = "ssss", .push_size = sizeof p, .n_spec = 11,
                          .spec = {BM, BN, BK, TM, TN, 0, 0, 0, 0, 0, mode}, .local_size = {BN / TN, BM / TM, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(ncols, BN), vk_div_up(m, BM), 1);
}

/* ---- packed operands (the texel variant) ----
 * On lavapipe the kernel reads its operands packed four reduction terms to a vec4
 * (conv_pack.comp): forward x as N,C/4,H,W,4 and w as K,C/4,R,S,4; backward data dy as
 * N,K/4,P,Q,4 and w as K/4,C,R,S,4; backward filter dy as N/4,K,P,Q,4 and x as
 * N/4,C,H,W,4. Both live in the workspace, the second at an aligned offset. */
#define PACK_ALIGN 256

static uint64_t div4(uint64_t x) { return (x + 3) / 4; }

/* B's plane in the workspace: grown by a zero margin on every side it can be read past
 * (x by the padding; dy, for backward data, by the taps that reach past its edges). */
typedef struct plane { uint32_t h, w, hp, wp, m; } plane;

static plane packed_plane(const conv_shape *s, int mode)
{
    plane pl;
    if (mode == 3) {
        uint32_t st = s->stride, P = conv_out_h(s), Q = conv_out_w(s);
        pl.h = P, pl.w = Q;
        pl.m = (s->ksize + st - 1) / st - 1;
        /* the largest row read is (H - 1 + pad) / st (conv_backward_data_phases) */
        uint32_t lh = (s->h - 1 + s->pad) / st, lw = (s->w - 1 + s->pad) / st;
        pl.hp = pl.m + (lh + 1 > P ? lh + 1 : P);
        pl.wp = pl.m + (lw + 1 > Q ? lw + 1 : Q);
    } else {
        pl.h = s->h, pl.w = s->w, pl.m = s->pad;
        pl.hp = s->h + 2 * s->pad, pl.wp = s->w + 2 * s->pad;
    }
    return pl;
}

static void packed_sizes(const conv_shape *s, int mode, uint64_t *a, uint64_t *b)
{
    plane pl = packed_plane(s, mode);
    uint64_t rs = (uint64_t)s->ksize * s->ksize, grown = (uint64_t)pl.hp * pl.wp,
             pq = (uint64_t)conv_out_h(s) * conv_out_w(s);
    if (mode == 0) {
        *a = s->k * div4(s->c) * rs * 16;
        *b = s->n * div4(s->c) * grown * 16;
    } else if (mode == 3) {
        *a = div4(s->k) * s->c * rs * 16;
        *b = s->n * div4(s->k) * grown * 16;
    } else {
        *a = div4(s->n) * s->k * pq * 16;
        *b = div4(s->n) * s->c * grown * 16;
    }
}

static uint64_t align_up(uint64_t x) { return (x + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN; }

static int use_packed(snlvk_context *ctx, gemm_variant v, const vk_buf *workspace)
{
    return workspace && gemm_pick_variant(ctx, v) == GEMM_TEXEL;
}

/* Packs src (D0, D1, H, W) into the workspace at `off`, blocking dim `block` by four and
 * growing the plane to pl's (margin pl.m); a plane without margin passes hp = h, wp = w. */
static snlvk_status pack(vk_seq *q, snlvk_context *ctx, const vk_buf *src, uint32_t d0, uint32_t d1, plane pl,
                         uint32_t block, const vk_buf *ws, uint64_t off, uint64_t bytes)
{
    struct { uint32_t d0, d1, h, w, hp, wp, m, plane0; } pp = {d0, d1, pl.h, pl.w, pl.hp, pl.wp, pl.m, 0};
    /* conv_pack.comp FORM: small planes (under 8x8, the weights' taps) in one grid-stride
     * loop; otherwise a workgroup layer per plane, with rows of whole vec4s read four
     * positions an invocation (the margin zeroed first), or else, where the plane is whole
     * vec4s (14x14), four positions of the flattened plane an invocation: the resnet8-mini
     * step at batch 64 packs in 48 ms instead of 58 */
    const uint32_t form = (uint64_t)pl.hp * pl.wp < 64 ? 2
                        : pl.w % 4 == 0                  ? 1
                        : pl.h * pl.w % 4 == 0 && pl.w >= 4 ? 3
                                                         : 0;
    const int quad = form == 1 || form == 3;
    const uint32_t gw = form == 1 ? pl.w / 4 : form == 3 ? pl.h * pl.w / 4 : pl.wp,
                   gh = form == 1 ? pl.h : form == 3 ? 1 : pl.hp;
    const uint32_t lx = form == 2 ? 64 : form == 3 ? 32 : gw >= 8 ? 8 : 4, ly = form >= 2 ? 1 : gh >= 8 ? 8 : 4;
    vk_pipeline_desc d = {.shader = "conv_pack", .bindings = quad ? "Ts" : "ts", .push_size = sizeof pp,
                          .n_spec = 2, .spec = {block, form}, .local_size = {lx, ly, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    if (quad && pl.m > 0) {
        vk_buf region = *ws;
        region.offset += off;
        region.size = bytes;
        SNLVK_TRY(vk_seq_fill(q, &region, 0));
    }
    vk_binding binds[2] = {{src, 0, (uint64_t)d0 * d1 * pl.h * pl.w * 4}, {ws, off, bytes}};
    if (form == 2) {
        uint64_t groups = vk_div_up(bytes / 16, 64);
        return vk_seq_dispatch(q, pipe, binds, 2, &pp, (uint32_t)(groups > 4096 ? 4096 : groups), 1, 1);
    }
    /* one workgroup layer per output plane, in dispatches of at most the device's z count */
    const uint32_t planes = (uint32_t)(block == 0 ? div4(d0) * d1 : d0 * div4(d1));
    const uint32_t zmax = ctx->props.limits.maxComputeWorkGroupCount[2];
    for (uint32_t p0 = 0; p0 < planes; p0 += zmax) {
        pp.plane0 = p0;
        SNLVK_TRY(vk_seq_dispatch(q, pipe, binds, 2, &pp, vk_div_up(gw, lx), vk_div_up(gh, ly),
                                  planes - p0 < zmax ? planes - p0 : zmax));
    }
    return SNLVK_OK;
}

static plane flat(uint32_t h, uint32_t w) { plane pl = {h, w, h, w, 0}; return pl; }

/* Packs a (mode 0: w, x; mode 3: w, dy; mode 2: dy, x) and b into the workspace and
 * returns their bindings. */
static snlvk_status pack_operands(vk_seq *q, snlvk_context *ctx, const conv_shape *s, int mode, const vk_buf *a,
                                  const vk_buf *b, const vk_buf *ws, vk_binding *pa, vk_binding *pb)
{
    uint64_t sa, sb;
    packed_sizes(s, mode, &sa, &sb);
    if (ws->size < align_up(sa) + sb) return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
    plane taps = flat(s->ksize, s->ksize), pb_plane = packed_plane(s, mode);
    if (mode == 0) {
        SNLVK_TRY(pack(q, ctx, a, s->k, s->c, taps, 1, ws, 0, sa));
        SNLVK_TRY(pack(q, ctx, b, s->n, s->c, pb_plane, 1, ws, align_up(sa), sb));
    } else if (mode == 3) {
        SNLVK_TRY(pack(q, ctx, a, s->k, s->c, taps, 0, ws, 0, sa));
        SNLVK_TRY(pack(q, ctx, b, s->n, s->k, pb_plane, 1, ws, align_up(sa), sb));
    } else {
        SNLVK_TRY(pack(q, ctx, a, s->n, s->k, flat(conv_out_h(s), conv_out_w(s)), 0, ws, 0, sa));
        SNLVK_TRY(pack(q, ctx, b, s->n, s->c, pb_plane, 0, ws, align_up(sa), sb));
    }
    *pa = (vk_binding){ws, 0, sa};
    *pb = (vk_binding){ws, align_up(sa), sb};
    return SNLVK_OK;
}

/* The push constants of shape s (mode 3's phase fields zero). */
static conv_push push_of(const conv_shape *s, uint32_t has_bias, float beta)
{
    conv_push p = {s->n, s->c, s->h, s->w, s->k, s->ksize, s->ksize, conv_out_h(s), conv_out_w(s),
                   s->stride, s->pad, has_bias, beta, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    return p;
}

static snlvk_status conv_dispatch(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode, const vk_buf *a,
                                  const vk_buf *b, const vk_buf *bias, const vk_buf *out, float beta, gemm_variant v)
{
    SNLVK_TRY(conv_check(s));
    conv_push p = push_of(s, bias != NULL, beta);
    return conv_dispatch_push(q, ctx, s, mode, vk_bind(a), vk_bind(b), bias, out, &p, v, 0);
}

/* Forward (mode 0) or backward filter (mode 2) on packed operands. */
static snlvk_status conv_packed(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode, const vk_buf *a,
                                const vk_buf *b, const vk_buf *bias, const vk_buf *out, const vk_buf *ws, float beta)
{
    SNLVK_TRY(conv_check(s));
    vk_binding pa, pb;
    SNLVK_TRY(pack_operands(q, ctx, s, (int)mode, a, b, ws, &pa, &pb));
    conv_push p = push_of(s, bias != NULL, beta);
    /* the packed dim counts vec4s; B's plane is the grown one, without padding */
    plane pl = packed_plane(s, (int)mode);
    if (mode == 0) p.c = (uint32_t)div4(s->c);
    else p.n = (uint32_t)div4(s->n);
    p.h = pl.hp, p.w = pl.wp, p.pad = 0;
    return conv_dispatch_push(q, ctx, s, mode, pa, pb, bias, out, &p, GEMM_TEXEL, 1);
}

/* Backward data as stride^2 phase convolutions (one when the stride is 1): the outputs
 * h = a + st*h' only receive the kernel taps r = r0 + st*i with r0 = (a + pad) mod st.
 * With a workspace on the texel variant, w and dy are packed first. */
static snlvk_status conv_backward_data_phases(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                              const vk_buf *w, const vk_buf *dx, const vk_buf *ws, float beta,
                                              gemm_variant v)
{
    const int vec4 = use_packed(ctx, v, ws);
    vk_binding a = vk_bind(w), b = vk_bind(dy);
    if (vec4) SNLVK_TRY(pack_operands(q, ctx, s, 3, w, dy, ws, &a, &b));
    uint32_t st = s->stride, ks = s->ksize;
    const plane pl = packed_plane(s, 3); /* dy's plane grown by its margin, when packed */
    for (uint32_t pa = 0; pa < st && pa < s->h; pa++)
        for (uint32_t pb = 0; pb < st && pb < s->w; pb++) {
            conv_push p = push_of(s, 0, beta);
            if (vec4) p.k = (uint32_t)div4(s->k);
            p.pa = pa, p.pb = pb;
            p.ph = (s->h - pa + st - 1) / st;
            p.pw = (s->w - pb + st - 1) / st;
            p.r0 = (pa + s->pad) % st;
            p.t0 = (pb + s->pad) % st;
            p.sr = p.r0 < ks ? (ks - p.r0 + st - 1) / st : 0;
            p.ss = p.t0 < ks ? (ks - p.t0 + st - 1) / st : 0;
            p.da = (pa + s->pad - p.r0) / st;
            p.db = (pb + s->pad - p.t0) / st;
            if (vec4) p.p = pl.hp, p.q = pl.wp, p.da += pl.m, p.db += pl.m;
            SNLVK_TRY(conv_dispatch_push(q, ctx, s, 3, a, b, NULL, dx, &p, v, vec4));
        }
    return SNLVK_OK;
}

snlvk_status op_conv2d_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *x, const vk_buf *w,
                               const vk_buf *bias, const vk_buf *y, const vk_buf *workspace, gemm_variant v)
{
    if (use_packed(ctx, v, workspace)) return conv_packed(q, ctx, s, 0, w, x, bias, y, workspace, 0.0f);
    return conv_dispatch(q, ctx, s, 0, w, x, bias, y, 0.0f, v);
}

size_t conv_workspace_bytes(snlvk_context *ctx, const conv_shape *s, gemm_variant v)
{
    if (gemm_pick_variant(ctx, v) != GEMM_TEXEL) return (size_t)s->k * s->c * s->ksize * s->ksize * 4;
    uint64_t most = 0;
    for (int mode = 0; mode <= 3; mode++) {
        if (mode == 1) continue;
        uint64_t a, b;
        packed_sizes(s, mode, &a, &b);
        if (align_up(a) + b > most) most = align_up(a) + b;
    }
    return (size_t)most;
}

snlvk_status op_conv2d_backward_data(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                     const vk_buf *w, const vk_buf *dx, const vk_buf *workspace, float beta,
                                     gemm_variant v)
{
    SNLVK_TRY(conv_check(s));
    if (s->stride > 1 || use_packed(ctx, v, workspace))
        return conv_backward_data_phases(q, ctx, s, dy, w, dx, workspace, beta, v);
    if (s->pad >= s->ksize || !workspace) return conv_dispatch(q, ctx, s, 1, w, dy, NULL, dx, beta, v);
    /* Stride 1: dx is the forward convolution of dy with the flipped, transposed
     * weights and padding ksize-1-pad, which wastes no work on the stride's zeros. */
    if (workspace->size < conv_workspace_bytes(ctx, s, v))
        return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
    struct { uint32_t k, c, rs; } fp = {s->k, s->c, s->ksize * s->ksize};
    vk_pipeline_desc d = {.shader = "conv_flip", .bindings = "ss", .push_size = sizeof fp, .local_size = {256, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[2] = {vk_bind(w), vk_bind(workspace)};
    uint32_t total = fp.k * fp.c * fp.rs, groups = vk_div_up(total, 256);
    SNLVK_TRY(vk_seq_dispatch(q, pipe, binds, 2, &fp, groups > 1024 ? 1024 : groups, 1, 1));
    conv_shape t = {s->n, s->k, conv_out_h(s), conv_out_w(s), s->c, s->ksize, 1, s->ksize - 1 - s->pad};
    return conv_dispatch(q, ctx, &t, 0, workspace, dy, NULL, dx, beta, v);
}

snlvk_status op_conv2d_backward_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                       const vk_buf *x, const vk_buf *dw, const vk_buf *workspace, float beta,
                                       gemm_variant v)
{
    if (use_packed(ctx, v, workspace)) return conv_packed(q, ctx, s, 2, dy, x, NULL, dw, workspace, beta);
    return conv_dispatch(q, ctx, s, 2, dy, x, NULL, dw, beta, v);
}
