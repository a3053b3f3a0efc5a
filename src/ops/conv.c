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

enum { TEXEL_LX = 16 }; /* the texel kernel's workgroup: one row of 16 invocations */

/* Whether the lanes of a subgroup can share A's rows (conv_texel.comp SHARE_A) in blocks
 * of tm rows: tm a multiple of the subgroup, subgroup shuffles. */
static int share_rows(const snlvk_context *ctx, uint32_t tm)
{
    const uint32_t sg = ctx->info.subgroup_size;
    return ctx->info.subgroup_shuffle && sg && tm % sg == 0 && TEXEL_LX % sg == 0;
}

/* DIRECT forward's block: 16 rows x 8 positions, a trip the nine taps of one channel;
 * 32 rows doubled its loop body and its time (64->64: 16.9 -> 40 ms). */
enum { DIRECT_TM = 16 };

/* The DIRECT backward filter's reduction step: a segment of two texels of a row where
 * rows are 32 or more positions, else of one (interleaved at batch 32, two -> one: 32x32
 * 16.0 -> 16.5 ms, 16x16 16.2 -> 14.8, 8x8 and 4x4 even) ... */
static uint32_t filter_segment(const conv_shape *s)
{
    const uint32_t q = conv_out_w(s);
    return q % 8 == 0 && q >= 32 ? 2 : 1;
}

/* ... and its rows an invocation: as many accumulator terms a trip as 32 rows of one texel. */
static uint32_t filter_tm(const snlvk_context *ctx, const conv_shape *s)
{
    uint32_t tm, tn;
    texel_block(1, s->k, ctx->info.subgroup_size, &tm, &tn);
    return filter_segment(s) == 2 && tm > 16 ? 16 : tm;
}

/* How conv_texel's DIRECT reads (conv_direct_forward and conv_direct_filter), flags:
 * DIRECT_ON, b (and a for the backward filter) as they are, four positions of a row a
 * texel; for the forward, a holds conv_taps4's weights, or with DIRECT_RAW is w itself read
 * a float at a time (conv_direct3), DIRECT_FLIP the backward data's flipped, transposed
 * weights; DIRECT_UP2, the stride-2 backward data (conv_texel.comp UP2); DIRECT_K1, a 1x1
 * kernel at stride 2 (K1: a holds w as it is, four channels a texel). */
enum { DIRECT_NONE = 0, DIRECT_ON = 1, DIRECT_RAW = 2, DIRECT_FLIP = 4, DIRECT_UP2 = 8, DIRECT_K1 = 16 };

/* One implicit-GEMM dispatch. vec4: a and b are packed operands (conv_pack) and pp
 * carries the packed dim's count of vec4s in its place, or direct says how they are read
 * unpacked (vec4 set). */
static snlvk_status conv_dispatch_push(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode,
                                       vk_binding a, vk_binding b, const vk_buf *bias, const vk_buf *out,
                                       const conv_push *pp, gemm_variant v, int vec4, int direct)
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
        const uint32_t LX = TEXEL_LX, LY = 1, sg = ctx->info.subgroup_size;
        texel_block(vec4, m, sg, &TM, &TN);
        /* ROW1: rows of one texel, a run of two rows (512@4x4 at batch 32: forward 23.3 ->
         * 15.9 ms, backward data 25.8 -> 19.2; a row a run read three texels of which
         * one was inside the plane) */
        const uint32_t up2 = (direct & DIRECT_UP2) != 0;
        const uint32_t row1 = direct && !up2 && mode == 0 && s->stride == 1 && s->w == 4 && s->h % 2 == 0;
        if (direct && mode == 0) {
            TN = up2 ? 16 : p.q % 8 == 0 || row1 ? 8 : 4;
            /* rows of an odd number of texels (12, 20, 28 positions) at stride 1: of one input
             * channel (the stem), a whole row an invocation (one trip: the fixed costs of an
             * invocation weigh more), else runs of eight (RUNS below). resnet8-mini at batch
             * 128, runs of four -> these (best ms, interleaved, lavapipe on one thread):
             * 16->16 at 28x28 forward 8.70 -> 7.77, backward data 8.62 -> 7.90; the stem's
             * forward 3.26 -> 2.77. Runs of sixteen or twelve were slower (a trip of sixteen
             * positions is past the instruction cache: 9.98 against 5.18 on two threads). */
            if (TN == 4 && !(direct & DIRECT_K1) && s->stride == 1 && p.q >= 12)
                TN = s->c == 1 && p.q <= 28 ? p.q : 8;
            TM = DIRECT_TM;
        }
        const uint32_t share = vec4 && share_rows(ctx, TM);
        if (direct && !share) return snlvk_fail(SNLVK_E_INVALID, "internal: conv DIRECT without SHARE_A");
        /* backward filter of a 3x3 kernel at stride 1: a sliding window of x along rows of
         * dy (WIN), one channel's nine taps an invocation. 64->64 at 32x32, batch 32: 27.0
         * -> 23.7 ms; 128@16x16 23.5 -> 21.8; 256@8x8 even; 512@4x4 24 -> 28 (the window
         * is refilled every four steps), hence rows of at least 8 */
        const uint32_t win = !direct && mode == 2 && share && s->ksize == 3 && s->stride == 1 && p.q >= 8;
        if (win || (direct && mode == 2)) TN = direct & DIRECT_K1 ? 8 : 9;
        const uint32_t seg = direct && mode == 2 ? filter_segment(s) : 1;
        if (direct && mode == 2) TM = filter_tm(ctx, s);
        /* OUT4: each invocation's TN columns are consecutive output floats starting on a vec4 */
        const uint64_t run = mode == 0 ? (uint64_t)p.p * p.q
                           : mode == 1 ? (uint64_t)s->h * s->w
                           : mode == 3 ? (s->stride == 1 ? (uint64_t)s->h * s->w : 1)
                                       : (uint64_t)s->c * s->ksize * s->ksize;
        /* RUNS: rows of W / 4 texels that are not whole runs of TN / 4 */
        const uint32_t runs = direct && mode == 0 && !up2 && !row1 && !(direct & DIRECT_K1) && s->stride == 1 &&
                              p.q % TN != 0 ? (p.q / 4 + TN / 4 - 1) / (TN / 4) : 0;
        const uint32_t out4 = TN % 4 == 0 && (run % TN == 0 || runs);
        /* constant 2: FLIP (conv_direct3) */
        const int raw = (direct & DIRECT_RAW) != 0;
        vk_pipeline_desc d = {.shader = raw ? "conv_direct3" : vec4 ? "conv_texel4" : "conv_texel",
                              .bindings = raw ? "iIts" : vec4 ? "IIts" : "iits",
                              .push_size = sizeof p, .n_spec = 17,
                              .spec = {TM, TN, (direct & DIRECT_FLIP) != 0, share, share ? sg : 8, out4,
                                       p.beta != 0.0f, win, direct != 0, row1, mode, vec4 ? 1 : 0, seg,
                                       direct && s->stride == 2, up2, (direct & DIRECT_K1) != 0, runs},
                              .local_size = {LX, LY, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        const uint64_t invs = runs ? (uint64_t)s->n * p.p * runs : vk_div_up(ncols, TN);
        return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(invs, LX), vk_div_up(vk_div_up(m, TM), LY), 1);
    }
    enum { BM = 64, BN = 64, BK = 16, TM = 4, TN = 4 };
    vk_pipeline_desc d = {.shader = "conv_tiled", .bindings = "ssss", .push_size = sizeof p, .n_spec = 11,
                          .spec = {BM, BN, BK, TM, TN, 0, 0, 0, 0, 0, mode}, .local_size = {BN / TN, BM / TM, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(q, pipe, binds, 4, &p, vk_div_up(ncols, BN), vk_div_up(m, BM), 1);
}

/* The 3x3 shapes DIRECT reads unpacked: padding 1, input rows of whole vec4s at stride 1,
 * of whole pairs of them at stride 2. */
static int direct_3x3(const conv_shape *s)
{
    return s->ksize == 3 && s->pad == 1 && (s->stride == 1 ? s->w % 4 == 0 : s->stride == 2 && s->w % 8 == 0);
}

/* The texel variant's backward filter reads dy and x unpacked (conv_texel.comp DIRECT):
 * a 3x3 kernel at stride 1 and padding 1 over rows of whole vec4s, with A's rows shared
 * across the subgroup. At batch 32 (ms, packed -> direct, 512-bit lavapipe, interleaved):
 * 64->64 at 32x32 21.0 -> 16.8, 128@16x16 20.5 -> 17.4, 3->64 at 32x32 6.6 -> 3.9 with a
 * window of x sliding along rows of dy; stepping by segments of a row instead (the rows
 * of x around each read once) also served short rows, where the window was refilled
 * every step or two: 256@8x8 21.9 -> 12.5, 512@4x4 21.2 -> 12.9, and took 32x32 17.1 ->
 * 16.3 and 16x16 17.9 -> 15.6 against the window. */
static int conv_direct_filter(const snlvk_context *ctx, const conv_shape *s)
{
    return direct_3x3(s) && share_rows(ctx, filter_tm(ctx, s));
}

/* The forward reads x unpacked likewise (DIRECT in mode 0) where rows are whole vec4s, in
 * runs of eight positions an invocation (at stride 1 on rows of an odd number of texels the
 * last two of a row overlap, see conv_dispatch_push; four elsewhere where rows are not
 * whole runs of eight); so
 * does backward data at stride 1, as the forward convolution of dy (its transposed shape
 * is then the same kind). Batch 32, packed -> direct (ms, 512-bit lavapipe, interleaved):
 * 64->64 at 32x32 forward 19.4 -> 16.9, backward data 20.3 -> 17.2; 128@16x16 18.9 ->
 * 17.0 and 20.2 -> 16.8; 256@8x8 31.0 -> 25.4 and 33.6 -> 25.4; runs of four: 512@4x4
 * 26.2 -> 23.0 and 27.9 -> 23.6, resnet8-mini's 16->16 at 28x28 (batch 64) 5.8 -> 2.5 and
 * 4.7 -> 2.6. (Before each accumulator was written once a trip, which took another
 * 12-20% off.) */
static int conv_direct_forward(const snlvk_context *ctx, const conv_shape *s)
{
    return direct_3x3(s) && share_rows(ctx, DIRECT_TM);
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
    vk_pipeline_desc d = {.shader = quad ? "conv_pack4" : "conv_pack", .bindings = quad ? "Is" : "ts",
                          .push_size = sizeof pp, .n_spec = 2, .spec = {block, form}, .local_size = {lx, ly, 1}};
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

/* conv_taps4: the weights of shape t (flip: the backward data's, t transposed) as a vec4
 * of three taps a kernel row, at the start of the workspace. */
static snlvk_status conv_taps(vk_seq *q, snlvk_context *ctx, const conv_shape *t, int flip, const vk_buf *w,
                              const vk_buf *ws, vk_binding *taps)
{
    const uint64_t bytes = (uint64_t)t->k * t->c * 3 * 16;
    if (ws->size < bytes) return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
    struct { uint32_t m, c; } tp = {t->k, t->c};
    vk_pipeline_desc d = {.shader = "conv_taps4", .bindings = "is", .push_size = sizeof tp, .n_spec = 1,
                          .spec = {flip != 0}, .local_size = {64, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding tb[2] = {vk_bind(w), {ws, 0, bytes}};
    const uint64_t groups = vk_div_up(bytes / 16, 64);
    SNLVK_TRY(vk_seq_dispatch(q, pipe, tb, 2, &tp, (uint32_t)(groups > 4096 ? 4096 : groups), 1, 1));
    *taps = (vk_binding){ws, 0, bytes};
    return SNLVK_OK;
}

/* Where the forward DIRECT reads w as it is (RAW): at most this many output positions
 * (N * P * Q). RAW fetches each weight as a float (nine gathers a channel against three
 * vec4s of conv_taps4's), which slows the kernel by 8-10%; conv_taps4 costs a store per
 * kernel row, ~20 ns per K * C on lavapipe, so it is worth its time on the large planes
 * only. Batch 32, TAPS -> RAW (ms, interleaved, forward / backward data): 512@4x4 15.1 ->
 * 10.8 / 17.6 -> 11.4; 256@8x8 14.1 -> 13.7 / 15.2 -> 14.0; 128@16x16 13.2 -> 14.3 / 13.5
 * -> 14.6; 64@32x32 14.1 -> 15.5 / 14.0 -> 15.5. Batch 128: 512@4x4 43.4 -> 42.5 / 47.6
 * -> 45.0; 256@8x8 53.6 -> 54.3 / 56.4 -> 55.2. */
enum { DIRECT_RAW_COLUMNS = 4096 };

/* The forward DIRECT of shape t (t->k output rows) from weights w, flipped (how has
 * DIRECT_FLIP: backward data, t is the transposed shape) or not, its output plane doubled
 * with DIRECT_UP2; w as it is on small planes, else its taps go to the workspace first. */
static snlvk_status conv_direct_run(vk_seq *q, snlvk_context *ctx, const conv_shape *t, int how, const vk_buf *w,
                                    const vk_buf *x, const vk_buf *bias, const vk_buf *y, const vk_buf *ws, float beta)
{
    SNLVK_TRY(conv_check(t));
    conv_push p = push_of(t, bias != NULL, beta);
    if (how & DIRECT_UP2) p.p = 2 * t->h, p.q = 2 * t->w;
    if ((uint64_t)t->n * p.p * p.q <= DIRECT_RAW_COLUMNS)
        return conv_dispatch_push(q, ctx, t, 0, vk_bind(w), vk_bind(x), bias, y, &p, GEMM_TEXEL, 1,
                                  DIRECT_ON | DIRECT_RAW | how);
    vk_binding taps;
    SNLVK_TRY(conv_taps(q, ctx, t, (how & DIRECT_FLIP) != 0, w, ws, &taps));
    return conv_dispatch_push(q, ctx, t, 0, taps, vk_bind(x), bias, y, &p, GEMM_TEXEL, 1, DIRECT_ON | how);
}

/* ---- flattened planes (conv_flat.comp) ----
 * A 3x3 convolution at padding 1 whose rows are not whole vec4s (14x14, 7x7) reads x and
 * dy as they are, four consecutive positions of the flattened plane a run: the forward
 * and the stride-1 backward data (conv_taps4's weights), and the backward filter; TM
 * output channels an invocation, A's rows shared across the subgroup. So do the stride-2
 * forward and backward filter from input rows of whole vec4s but not pairs of them
 * (28x28). resnet8-mini at batch 128, packed -> flat (median / best ms, interleaved,
 * loaded machine): 7x7 forward 20.6 / 13.6 -> 11.6 / 10.6, backward data 27.2 / 16.5 ->
 * 11.5 / 10.7, backward filter 23.9 / 20.4 -> 12.1 / 9.4; 14x14 10.9 / 9.7 -> 9.5 / 6.3,
 * 11.5 / 10.4 -> 10.2 / 6.0, even; 28x28 at stride 2 forward 21.8 / 14.3 -> 10.8 / 6.8,
 * backward filter 26.0 / 16.6 -> 9.9 / 6.1. */
enum { FLAT_TM = 16 };

static int conv_flat(const snlvk_context *ctx, const conv_shape *s)
{
    if (s->ksize != 3 || s->pad != 1 || s->w < 3 || !share_rows(ctx, FLAT_TM)) return 0;
    return s->stride == 1 ? s->w % 4 != 0 : s->stride == 2 && s->w % 4 == 0 && s->w % 8 != 0;
}

typedef struct flat_push { uint32_t n, c, hw, k, has_bias, ns; float beta; uint32_t pq, h; } flat_push;

static flat_push flat_push_of(const conv_shape *s, int has_bias, float beta)
{
    flat_push fp = {s->n, s->c, s->h * s->w, s->k, has_bias != 0, 1, beta, conv_out_h(s) * conv_out_w(s), s->h};
    return fp;
}

/* The forward of shape t from conv_taps4's weights (flip: backward data, t transposed). */
static snlvk_status conv_flat_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *t, int flip, const vk_buf *w,
                                      const vk_buf *x, const vk_buf *bias, const vk_buf *y, const vk_buf *ws,
                                      float beta)
{
    SNLVK_TRY(conv_check(t));
    vk_binding taps;
    SNLVK_TRY(conv_taps(q, ctx, t, flip, w, ws, &taps));
    const flat_push fp = flat_push_of(t, bias != NULL, beta);
    const uint32_t b4 = fp.hw % 4 == 0, runs = (fp.pq + 3) / 4;
    vk_pipeline_desc d = {.shader = b4 ? "conv_flat4" : "conv_flat", .bindings = b4 ? "IIts" : "Iits",
                          .push_size = sizeof fp, .n_spec = 8,
                          .spec = {FLAT_TM, ctx->info.subgroup_size, t->w, 0, beta != 0.0f, fp.pq % 4 == 0, 0,
                                   t->stride == 2},
                          .local_size = {TEXEL_LX, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[4] = {taps, vk_bind(x), vk_bind(bias ? bias : w), vk_bind(y)};
    return vk_seq_dispatch(q, pipe, binds, 4, &fp, vk_div_up((uint64_t)t->n * runs, TEXEL_LX),
                           vk_div_up(t->k, FLAT_TM), 1);
}

/* The backward filter's image slices for a layer of one input channel (the stem; the
 * DIRECT kernel takes a channel an invocation, so this is one invocation's work there), or
 * 0: every invocation takes one of NS = 64 slices of the images (one per image if fewer),
 * and MODE 4 adds the slices' partial sums. resnet8-mini's stem at batch 128 (median /
 * best ms, interleaved): DIRECT 7.3 / 6.3, slices 1.3 / 1.2. */
enum { FLAT_SLICES = 64 };

static uint32_t flat_slices(const conv_shape *s)
{
    if (s->ksize != 3 || s->pad != 1 || s->stride != 1 || s->w < 3 || s->h * s->w % 4 || s->c != 1) return 0;
    return s->n < FLAT_SLICES ? s->n : FLAT_SLICES;
}

/* The backward filter on flattened planes (conv_flat.comp MODE 2). */
static snlvk_status conv_flat_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                     const vk_buf *x, const vk_buf *dw, const vk_buf *ws, float beta)
{
    SNLVK_TRY(conv_check(s));
    flat_push fp = flat_push_of(s, 0, beta);
    const uint32_t b4 = fp.hw % 4 == 0;
    vk_pipeline_desc d = {.shader = b4 ? "conv_flat4" : "conv_flat1", .bindings = b4 ? "IIts" : "iits",
                          .push_size = sizeof fp, .n_spec = 8,
                          .spec = {FLAT_TM, ctx->info.subgroup_size, s->w, 2, beta != 0.0f, 0, 0, s->stride == 2},
                          .local_size = {TEXEL_LX, 1, 1}};
    const vk_pipeline *pipe;
    const uint32_t ns = flat_slices(s);
    if (ns) {
        /* the slices' partial sums to the workspace, then their sum to dw */
        const uint64_t bytes = (uint64_t)ns * s->k * s->c * 9 * 4;
        if (ws->size < bytes) return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
        d.spec[4] = 0, d.spec[6] = 1;
        fp.ns = ns;
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        const vk_binding part = {ws, 0, bytes};
        vk_binding binds[4] = {vk_bind(dy), vk_bind(x), vk_bind(x), part};
        SNLVK_TRY(vk_seq_dispatch(q, pipe, binds, 4, &fp, vk_div_up((uint64_t)s->c * ns, TEXEL_LX),
                                  vk_div_up(s->k, FLAT_TM), 1));
        d.spec[3] = 4, d.spec[4] = beta != 0.0f, d.spec[6] = 0;
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        vk_binding sum[4] = {vk_bind(dy), vk_bind(x), part, vk_bind(dw)};
        return vk_seq_dispatch(q, pipe, sum, 4, &fp, vk_div_up((uint64_t)s->k * s->c * 9, TEXEL_LX), 1, 1);
    }
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[4] = {vk_bind(dy), vk_bind(x), vk_bind(x), vk_bind(dw)};
    return vk_seq_dispatch(q, pipe, binds, 4, &fp, vk_div_up(s->c, TEXEL_LX), vk_div_up(s->k, FLAT_TM), 1);
}

/* ---- stride 2 from planes read a float at a time (conv_gather.comp) ----
 * The stride-2 shapes neither DIRECT nor conv_flat take (3x3 at padding 1 from input rows
 * of 14 floats, the 1x1 shortcuts from rows of 28 and 14, the backward data from dy rows
 * that are not whole vec4s) read x and dy as they lie, each position's inputs gathered by
 * its coordinates: no pack. The backward data is the transposed convolution summing only
 * the taps that reach each position (as UP2), dx's height and width even. resnet8-mini at
 * batch 128, three interleaved runs on a loaded machine (median / best ms, packed ->
 * gathered): 3x3 backward data from 28x28 31.0 / 22.1 -> 15.8 / 11.2, from 14x14 29.4 /
 * 22.0 -> 4.3 / 4.3; 3x3 from 14x14 forward 11.8 / 10.8 -> 8.1 / 4.4, backward filter
 * 17.8 / 13.2 -> 12.0 / 7.9; 1x1 from 28x28 forward 19.3 / 6.7 -> 6.8 / 1.7, backward
 * data 21.9 / 20.2 -> 5.5 / 1.8, backward filter 23.9 / 14.3 -> 1.1 / 1.1; 1x1 from 14x14
 * 5.8 / 3.3 -> 1.4 / 1.4, 6.4 / 6.0 -> 2.4 / 2.0, 10.2 / 6.2 -> 1.1 / 0.9. */
enum { GATHER_TM = 16 };

/* The backward data's columns of dx an invocation: eight where dx's rows are not whole
 * vec4s, else four (interleaved at batch 128, quiet machine, median / best ms, 4 -> 8:
 * 32->64 from 14x14 4.5 / 4.3 -> 3.8 / 3.6, the 1x1 1.9 / 1.8 -> 1.9 / 1.6; 16->32 from
 * 28x28 4.4 / 4.2 -> 4.9 / 4.5, the 1x1 1.8 / 1.8 -> 1.9 / 1.7). */
static uint32_t gather_cols(const conv_shape *s) { return s->w % 4 ? 8 : 4; }

static int conv_gather(const snlvk_context *ctx, const conv_shape *s)
{
    if (s->stride != 2 || !share_rows(ctx, GATHER_TM)) return 0;
    return (s->ksize == 3 && s->pad == 1) || (s->ksize == 1 && s->pad == 0);
}

/* mode 0: a = w, b = x; mode 2: a = dy, b = x; mode 3: a = w, b = dy. */
static snlvk_status conv_gather_run(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode,
                                    const vk_buf *a, const vk_buf *b, const vk_buf *bias, const vk_buf *out,
                                    const vk_buf *ws, float beta)
{
    SNLVK_TRY(conv_check(s));
    if (mode == 3 && (s->h % 2 || s->w % 2)) return snlvk_fail(SNLVK_E_INVALID, "internal: conv_gather dx not even");
    const uint32_t P = conv_out_h(s), Q = conv_out_w(s), ks = s->ksize;
    vk_binding ba = vk_bind(a);
    if (ks == 3 && mode != 2) {
        /* conv_taps4's weights: the forward's, or the transposed shape's flipped ones */
        const conv_shape t = {s->n, s->k, P, Q, s->c, 3, 1, 1};
        SNLVK_TRY(conv_taps(q, ctx, mode == 3 ? &t : s, mode == 3, a, ws, &ba));
    }
    struct { uint32_t n, c, h, w, k, has_bias; float beta; uint32_t p, q; } gp = {
        s->n, s->c, s->h, s->w, s->k, bias != NULL, beta, P, Q};
    const uint32_t out4 = mode == 0 ? P * Q % 4 == 0 : mode == 3 ? s->w % 4 == 0 : 0;
    const int a4 = ks == 3 && mode != 2;
    vk_pipeline_desc d = {.shader = a4 ? "conv_gather4" : "conv_gather", .bindings = a4 ? "Iits" : "iits",
                          .push_size = sizeof gp, .n_spec = 7,
                          .spec = {GATHER_TM, ctx->info.subgroup_size, mode, ks, beta != 0.0f, out4, gather_cols(s)},
                          .local_size = {TEXEL_LX, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[4] = {ba, vk_bind(b), vk_bind(bias ? bias : a), vk_bind(out)};
    const uint64_t cols = mode == 0 ? (uint64_t)s->n * ((P * Q + 3) / 4)
                        : mode == 2 ? s->c
                                    : (uint64_t)s->n * (s->h / 2) * ((s->w + gather_cols(s) - 1) / gather_cols(s));
    const uint32_t rows = mode == 3 ? s->c : s->k;
    return vk_seq_dispatch(q, pipe, binds, 4, &gp, vk_div_up(cols, TEXEL_LX), vk_div_up(rows, GATHER_TM), 1);
}

static snlvk_status conv_dispatch(vk_seq *q, snlvk_context *ctx, const conv_shape *s, uint32_t mode, const vk_buf *a,
                                  const vk_buf *b, const vk_buf *bias, const vk_buf *out, float beta, gemm_variant v)
{
    SNLVK_TRY(conv_check(s));
    conv_push p = push_of(s, bias != NULL, beta);
    return conv_dispatch_push(q, ctx, s, mode, vk_bind(a), vk_bind(b), bias, out, &p, v, 0, DIRECT_NONE);
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
    return conv_dispatch_push(q, ctx, s, mode, pa, pb, bias, out, &p, GEMM_TEXEL, 1, DIRECT_NONE);
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
            SNLVK_TRY(conv_dispatch_push(q, ctx, s, 3, a, b, NULL, dx, &p, v, vec4, DIRECT_NONE));
        }
    return SNLVK_OK;
}

/* The projection shortcuts' 1x1 convolution at stride 2 (no padding) reads x unpacked too
 * (DIRECT K1) where input rows are a multiple of eight; its forward also needs C a
 * multiple of four (w read as it is, four channels a texel). */
static int conv_k1(const conv_shape *s) { return s->ksize == 1 && s->stride == 2 && s->pad == 0 && s->w % 8 == 0; }

snlvk_status op_conv2d_forward(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *x, const vk_buf *w,
                               const vk_buf *bias, const vk_buf *y, const vk_buf *workspace, gemm_variant v)
{
    if (use_packed(ctx, v, workspace) && conv_k1(s) && s->c % 4 == 0 && share_rows(ctx, DIRECT_TM)) {
        SNLVK_TRY(conv_check(s));
        conv_push p = push_of(s, bias != NULL, 0.0f);
        return conv_dispatch_push(q, ctx, s, 0, vk_bind(w), vk_bind(x), bias, y, &p, GEMM_TEXEL, 1,
                                  DIRECT_ON | DIRECT_K1);
    }
    if (use_packed(ctx, v, workspace)) {
        if (conv_direct_forward(ctx, s))
            return conv_direct_run(q, ctx, s, DIRECT_NONE, w, x, bias, y, workspace, 0.0f);
        if (conv_flat(ctx, s)) return conv_flat_forward(q, ctx, s, 0, w, x, bias, y, workspace, 0.0f);
        if (conv_gather(ctx, s)) return conv_gather_run(q, ctx, s, 0, w, x, bias, y, workspace, 0.0f);
        return conv_packed(q, ctx, s, 0, w, x, bias, y, workspace, 0.0f);
    }
    return conv_dispatch(q, ctx, s, 0, w, x, bias, y, 0.0f, v);
}

size_t conv_workspace_bytes(snlvk_context *ctx, const conv_shape *s, gemm_variant v)
{
    if (gemm_pick_variant(ctx, v) != GEMM_TEXEL) return (size_t)s->k * s->c * s->ksize * s->ksize * 4;
    uint64_t most = (uint64_t)s->k * s->c * 3 * 16; /* conv_taps4's weights (DIRECT) */
    const uint64_t part = (uint64_t)flat_slices(s) * s->k * s->c * 9 * 4; /* conv_flat's slices */
    if (part > most) most = part;
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
    /* at stride 1, dx is the forward convolution of dy with the flipped, transposed
     * weights and padding ksize-1-pad, which wastes no work on the stride's zeros */
    const conv_shape t = {s->n, s->k, conv_out_h(s), conv_out_w(s), s->c, s->ksize, 1, s->ksize - 1 - s->pad};
    if (s->stride == 1 && use_packed(ctx, v, workspace) && conv_direct_forward(ctx, &t))
        return conv_direct_run(q, ctx, &t, DIRECT_FLIP, w, dy, NULL, dx, workspace, beta);
    if (s->stride == 1 && use_packed(ctx, v, workspace) && conv_flat(ctx, &t))
        return conv_flat_forward(q, ctx, &t, 1, w, dy, NULL, dx, workspace, beta);
    /* at stride 2 (3x3, padding 1, dx's rows a multiple of eight, its height even), the
     * transposed convolution of dy, with t's output plane doubled (conv_texel.comp UP2) */
    if (s->stride == 2 && direct_3x3(s) && s->h % 2 == 0 && use_packed(ctx, v, workspace) &&
        share_rows(ctx, DIRECT_TM))
        return conv_direct_run(q, ctx, &t, DIRECT_FLIP | DIRECT_UP2, w, dy, NULL, dx, workspace, beta);
    /* and the 1x1 kernel at stride 2 likewise (dx's height even), w read as it is */
    if (conv_k1(s) && s->h % 2 == 0 && use_packed(ctx, v, workspace) && share_rows(ctx, DIRECT_TM)) {
        conv_push p = push_of(&t, 0, beta);
        p.p = s->h, p.q = s->w;
        return conv_dispatch_push(q, ctx, &t, 0, vk_bind(w), vk_bind(dy), NULL, dx, &p, GEMM_TEXEL, 1,
                                  DIRECT_ON | DIRECT_RAW | DIRECT_FLIP | DIRECT_UP2 | DIRECT_K1);
    }
    if (conv_gather(ctx, s) && s->h % 2 == 0 && s->w % 2 == 0 && use_packed(ctx, v, workspace))
        return conv_gather_run(q, ctx, s, 3, w, dy, NULL, dx, workspace, beta);
    if (s->stride > 1 || use_packed(ctx, v, workspace))
        return conv_backward_data_phases(q, ctx, s, dy, w, dx, workspace, beta, v);
    if (s->pad >= s->ksize || !workspace) return conv_dispatch(q, ctx, s, 1, w, dy, NULL, dx, beta, v);
    if (workspace->size < conv_workspace_bytes(ctx, s, v))
        return snlvk_fail(SNLVK_E_INVALID, "internal: conv workspace too small");
    struct { uint32_t k, c, rs; } fp = {s->k, s->c, s->ksize * s->ksize};
    vk_pipeline_desc d = {.shader = "conv_flip", .bindings = "ss", .push_size = sizeof fp, .local_size = {256, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[2] = {vk_bind(w), vk_bind(workspace)};
    uint32_t total = fp.k * fp.c * fp.rs, groups = vk_div_up(total, 256);
    SNLVK_TRY(vk_seq_dispatch(q, pipe, binds, 2, &fp, groups > 1024 ? 1024 : groups, 1, 1));
    return conv_dispatch(q, ctx, &t, 0, workspace, dy, NULL, dx, beta, v);
}

snlvk_status op_conv2d_backward_filter(vk_seq *q, snlvk_context *ctx, const conv_shape *s, const vk_buf *dy,
                                       const vk_buf *x, const vk_buf *dw, const vk_buf *workspace, float beta,
                                       gemm_variant v)
{
    if (use_packed(ctx, v, workspace)) {
        const int direct = conv_k1(s) && share_rows(ctx, filter_tm(ctx, s)) ? DIRECT_ON | DIRECT_K1
                         : conv_direct_filter(ctx, s)                        ? DIRECT_ON
                                                                             : DIRECT_NONE;
        if ((direct == DIRECT_NONE && conv_flat(ctx, s) && (s->stride == 1 || conv_out_h(s) * conv_out_w(s) % 4 == 0)) ||
            (flat_slices(s) && share_rows(ctx, FLAT_TM)))
            return conv_flat_filter(q, ctx, s, dy, x, dw, workspace, beta);
        if (direct == DIRECT_NONE && conv_gather(ctx, s))
            return conv_gather_run(q, ctx, s, 2, dy, x, NULL, dw, workspace, beta);
        if (direct == DIRECT_NONE) return conv_packed(q, ctx, s, 2, dy, x, NULL, dw, workspace, beta);
        SNLVK_TRY(conv_check(s));
        conv_push p = push_of(s, 0, beta);
        return conv_dispatch_push(q, ctx, s, 2, vk_bind(dy), vk_bind(x), NULL, dw, &p, GEMM_TEXEL, 1, direct);
    }
    return conv_dispatch(q, ctx, s, 2, dy, x, NULL, dw, beta, v);
}
