/* conv2d forward, backward-data and backward-filter in both kernel variants, against the
 * double-precision C reference and against finite differences of it, at awkward shapes. */
#include "harness.h"
#include "ops/conv.h"
#include "ref/ref_ops.h"
#include "vk/vk.h"

typedef struct shape { int n, c, h, w, k, ks, st, pad; } shape;

static const shape shapes[] = {
    {1, 3, 7, 5, 5, 3, 1, 1},  {3, 5, 9, 7, 4, 3, 2, 1},  {2, 3, 8, 6, 6, 5, 2, 2},  {1, 4, 11, 9, 3, 7, 1, 3},
    {2, 17, 6, 6, 33, 1, 1, 0}, {3, 3, 7, 7, 5, 1, 2, 0}, {2, 16, 16, 16, 16, 3, 1, 1}, {1, 2, 5, 5, 3, 3, 3, 0},
    /* rows of whole vec4s (the packs' four-positions path) with every packed dim's tail */
    {3, 6, 8, 12, 5, 3, 1, 1}, {3, 6, 8, 12, 5, 3, 2, 1},
    /* backward filter's sliding window (3x3, stride 1, rows of 8 or more): image and
     * output-channel tails, odd planes, padding 1 and 0 */
    {3, 5, 7, 9, 17, 3, 1, 1}, {5, 3, 10, 11, 16, 3, 1, 0},
    /* planes of whole vec4s with rows that are not (the packs' flattened quads) */
    {3, 6, 14, 14, 5, 3, 1, 1},
    /* backward filter on unpacked dy and x (3x3, stride 1, padding 1, rows of at least
     * four whole vec4s): output-channel and channel tails, odd heights */
    {3, 5, 9, 16, 33, 3, 1, 1}, {2, 7, 5, 20, 20, 3, 1, 1},
    /* forward and backward data on unpacked x and dy (3x3, stride 1, padding 1, rows of
     * whole vec4s: runs of eight positions, or of four where rows are 12 or 20, as in the
     * shapes above): a row of one run */
    {1, 3, 5, 8, 7, 3, 1, 1},
    /* rows of one vec4 (W = 4): runs of two rows with an even height, of one otherwise */
    {2, 5, 6, 4, 18, 3, 1, 1}, {1, 3, 5, 4, 6, 3, 1, 1},
    /* backward filter by segments of a row: rows of one and two texels (the whole row a
     * step), of 32 (segments of two texels; the shapes above take one) */
    {2, 4, 7, 8, 20, 3, 1, 1}, {1, 3, 5, 32, 17, 3, 1, 1},
    /* the forward and backward data with conv_taps4's weights: more than 4096 output
     * positions (fewer read w as it is, as every shape above), runs of eight and of four */
    {2, 3, 40, 56, 5, 3, 1, 1}, {1, 4, 69, 60, 6, 3, 1, 1},
    /* every pass on unpacked x and dy at stride 2 (3x3, padding 1, rows of whole pairs of
     * vec4s; the backward data's transposed form where the height is even, phases at the
     * odd one): runs of eight and of four, an output-channel tail, and with conv_taps4's
     * weights and the filter's segments of two */
    {2, 5, 9, 16, 17, 3, 2, 1}, {1, 3, 6, 8, 16, 3, 2, 1}, {3, 3, 64, 96, 20, 3, 2, 1},
    /* the 1x1 stride-2 shortcut on unpacked x and dy (rows a multiple of eight; C of four
     * for the forward; an even height for the backward data's transposed form): odd
     * height, runs of eight and of four, output-channel and channel tails, and too few
     * output channels for the backward filter's form */
    {2, 12, 9, 16, 17, 1, 2, 0}, {1, 4, 6, 8, 16, 1, 2, 0}, {1, 4, 6, 8, 5, 1, 2, 0},
    /* flattened planes (conv_flat, 3x3, padding 1): at stride 1 rows that are not whole
     * vec4s, the plane whole vec4s (texels) or not (single floats; the 7x5 and 7x9 shapes
     * above too), with output-channel tails past one block of 16; at stride 2 input rows of
     * whole vec4s but not pairs of them, the output plane whole vec4s (the backward filter
     * too) or not, an odd height */
    {3, 5, 7, 7, 20, 3, 1, 1}, {2, 6, 14, 14, 17, 3, 1, 1}, {2, 3, 8, 20, 18, 3, 2, 1}, {3, 5, 9, 12, 17, 3, 2, 1},
    /* one input channel (the stem): the backward filter's image slices, one per image, with
     * an output-channel tail past 16, and with a plane that is not whole rows of vec4s */
    {3, 1, 12, 12, 16, 3, 1, 1}, {5, 1, 6, 14, 20, 3, 1, 1},
    /* stride 2 gathered a float at a time (conv_gather): 3x3 from rows of 14 (output plane
     * not whole vec4s, output-channel tail past 16; the backward data's dx channels past
     * 16), from rows of 28 (the backward data's rows whole vec4s; the filter's output
     * plane not), the 1x1 shortcut from rows of 14 and 28 (C not a multiple of four, dx
     * channels past 16), and with the odd 7x7 and 9x7 shapes above (forward and filter) */
    {2, 6, 14, 14, 17, 3, 2, 1}, {2, 18, 14, 14, 5, 3, 2, 1}, {2, 5, 10, 28, 17, 3, 2, 1},
    {2, 6, 14, 14, 17, 1, 2, 0}, {2, 18, 12, 28, 5, 1, 2, 0},
    /* forward and backward data at stride 1 on rows of an odd number of vec4s (12, 20 and
     * 60 above too): runs of eight positions, the last of a row overlapping the one before
     * (RUNS; beta = 1 would add the overlap twice), with an output-channel tail; one input
     * channel, a whole row of 28 an invocation, with more than 4096 output positions */
    {2, 5, 4, 28, 17, 3, 1, 1}, {6, 1, 28, 28, 16, 3, 1, 1},
};

static void run_case(const shape *sh, gemm_variant v)
{
    snlvk_context *ctx = h_context();
    conv_shape cs = {(uint32_t)sh->n, (uint32_t)sh->c, (uint32_t)sh->h, (uint32_t)sh->w,
                     (uint32_t)sh->k, (uint32_t)sh->ks, (uint32_t)sh->st, (uint32_t)sh->pad};
    int P = (int)conv_out_h(&cs), Q = (int)conv_out_w(&cs);
    size_t nx = (size_t)sh->n * sh->c * sh->h * sh->w, nw = (size_t)sh->k * sh->c * sh->ks * sh->ks;
    size_t ny = (size_t)sh->n * sh->k * P * Q;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(sh->k * 4), *dy = malloc(ny * 4);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
    h_fill(x, nx, -1, 1);
    h_fill(w, nw, -1, 1);
    h_fill(b, sh->k, -1, 1);
    h_fill(dy, ny, -1, 1);
    double *xd = h_to_double(x, nx), *wd = h_to_double(w, nw), *bd = h_to_double(b, sh->k), *dyd = h_to_double(dy, ny);
    double *yr = malloc(ny * 8), *dxr = malloc(nx * 8), *dwr = malloc(nw * 8);
    ref_conv2d_forward(xd, wd, bd, yr, sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad);
    ref_conv2d_backward_data(dyd, wd, dxr, sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad);
    ref_conv2d_backward_filter(dyd, xd, dwr, NULL, sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad);

    vk_buf bx = h_upload(x, nx), bw = h_upload(w, nw), bb = h_upload(b, sh->k), bdy = h_upload(dy, ny);
    vk_buf by, bdx, bdw, bdx2, bws, by2, bdw2;
    CHECK_OK(vk_buf_alloc(ctx, conv_workspace_bytes(ctx, &cs, v), &bws));
    CHECK_OK(vk_buf_alloc(ctx, nx * 4, &bdx2));
    h_poison(&bdx2, nx);
    CHECK_OK(vk_buf_alloc(ctx, ny * 4, &by));
    CHECK_OK(vk_buf_alloc(ctx, ny * 4, &by2));
    CHECK_OK(vk_buf_alloc(ctx, nw * 4, &bdw2));
    h_poison(&by2, ny);
    h_poison(&bdw2, nw);
    CHECK_OK(vk_buf_alloc(ctx, nx * 4, &bdx));
    CHECK_OK(vk_buf_alloc(ctx, nw * 4, &bdw));
    h_poison(&by, ny);
    h_poison(&bdx, nx);
    h_poison(&bdw, nw);
    vk_seq *q;
    CHECK_OK(vk_seq_create(ctx, &q));
    CHECK_OK(vk_seq_begin(q, 0));
    /* with the workspace (texel: packed operands), and without it (the direct kernels) */
    CHECK_OK(op_conv2d_forward(q, ctx, &cs, &bx, &bw, &bb, &by, &bws, v));
    CHECK_OK(op_conv2d_forward(q, ctx, &cs, &bx, &bw, &bb, &by2, NULL, v));
    CHECK_OK(op_conv2d_backward_data(q, ctx, &cs, &bdy, &bw, &bdx, &bws, 0.0f, v));
    CHECK_OK(op_conv2d_backward_data(q, ctx, &cs, &bdy, &bw, &bdx2, NULL, 0.0f, v));
    CHECK_OK(op_conv2d_backward_filter(q, ctx, &cs, &bdy, &bx, &bdw, &bws, 0.0f, v));
    CHECK_OK(op_conv2d_backward_filter(q, ctx, &cs, &bdy, &bx, &bdw2, NULL, 0.0f, v));
    CHECK_OK(vk_seq_end(q));
    CHECK_OK(vk_seq_run(q));
    CHECK_OK(vk_buf_read(ctx, &by, 0, y, ny * 4));
    CHECK_OK(vk_buf_read(ctx, &bdx, 0, dx, nx * 4));
    CHECK_OK(vk_buf_read(ctx, &bdw, 0, dw, nw * 4));
    const char *vn = gemm_variant_name(v);
    double e;
    float *dx2 = malloc(nx * 4);
    CHECK_OK(vk_buf_read(ctx, &bdx2, 0, dx2, nx * 4));
    CHECK((e = h_rel_err(dx2, dxr, nx)) < 1e-5, "%s bwd-data direct kernel: rel err %.3g", vn, e);
    free(dx2);
    float *y2 = malloc(ny * 4), *dw2 = malloc(nw * 4);
    CHECK_OK(vk_buf_read(ctx, &by2, 0, y2, ny * 4));
    CHECK_OK(vk_buf_read(ctx, &bdw2, 0, dw2, nw * 4));
    CHECK((e = h_rel_err(y2, yr, ny)) < 1e-5, "%s fwd direct kernel: rel err %.3g", vn, e);
    CHECK((e = h_rel_err(dw2, dwr, nw)) < 1e-5, "%s bwd-filter direct kernel: rel err %.3g", vn, e);
    free(y2), free(dw2);
    CHECK((e = h_rel_err(y, yr, ny)) < 1e-5, "%s fwd n%d c%d %dx%d k%d ks%d st%d pad%d: rel err %.3g", vn, sh->n,
          sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad, e);
    CHECK((e = h_rel_err(dx, dxr, nx)) < 1e-5, "%s bwd-data n%d c%d %dx%d k%d ks%d st%d pad%d: rel err %.3g", vn,
          sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad, e);
    CHECK((e = h_rel_err(dw, dwr, nw)) < 1e-5, "%s bwd-filter n%d c%d %dx%d k%d ks%d st%d pad%d: rel err %.3g", vn,
          sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad, e);

    /* Finite differences in double around the GPU gradients: L = sum(dy .* conv(x, w)). */
    double *yp = malloc(ny * 8), *ym = malloc(ny * 8);
    const double hstep = 1e-4;
    int bad = 0;
    for (int t = 0; t < 12; t++) {
        int which = t & 1; /* 0: a coordinate of x, 1: of w */
        size_t idx = (size_t)(h_uniform(0, 1) * (float)(which ? nw : nx));
        if (idx >= (which ? nw : nx)) idx = 0;
        double *arr = which ? wd : xd;
        double keep = arr[idx];
        arr[idx] = keep + hstep;
        ref_conv2d_forward(xd, wd, bd, yp, sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad);
        arr[idx] = keep - hstep;
        ref_conv2d_forward(xd, wd, bd, ym, sh->n, sh->c, sh->h, sh->w, sh->k, sh->ks, sh->st, sh->pad);
        arr[idx] = keep;
        double num = 0;
        for (size_t i = 0; i < ny; i++) num += dyd[i] * (yp[i] - ym[i]);
        num /= 2 * hstep;
        double ana = which ? dw[idx] : dx[idx];
        if (fabs(num - ana) > 1e-4 * (1 + fabs(num))) {
            bad++;
            fprintf(stderr, "  fd %s[%zu]: numeric %.8g, GPU %.8g\n", which ? "w" : "x", idx, num, ana);
        }
    }
    CHECK(bad == 0, "%s: %d finite-difference mismatches", vn, bad);

    /* beta = 1 accumulates into an existing gradient */
    CHECK_OK(vk_seq_begin(q, 0));
    CHECK_OK(op_conv2d_backward_filter(q, ctx, &cs, &bdy, &bx, &bdw, &bws, 1.0f, v));
    CHECK_OK(op_conv2d_backward_data(q, ctx, &cs, &bdy, &bw, &bdx, &bws, 1.0f, v));
    CHECK_OK(vk_seq_end(q));
    CHECK_OK(vk_seq_run(q));
    CHECK_OK(vk_buf_read(ctx, &bdw, 0, dw, nw * 4));
    for (size_t i = 0; i < nw; i++) dwr[i] *= 2;
    CHECK((e = h_rel_err(dw, dwr, nw)) < 1e-5, "%s bwd-filter accumulate: rel err %.3g", vn, e);
    CHECK_OK(vk_buf_read(ctx, &bdx, 0, dx, nx * 4));
    for (size_t i = 0; i < nx; i++) dxr[i] *= 2;
    CHECK((e = h_rel_err(dx, dxr, nx)) < 1e-5, "%s bwd-data accumulate: rel err %.3g", vn, e);

    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx, &bw, &bb, &bdy, &by, &bdx, &bdw, &bdx2, &bws, &by2, &bdw2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw);
    free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr), free(dwr), free(yp), free(ym);
}

static void test_conv_texel(void)
{
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) run_case(&shapes[i], GEMM_TEXEL);
}
static void test_conv_tiled(void)
{
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) run_case(&shapes[i], GEMM_TILED);
}

static void test_conv_bad_shape(void)
{
    conv_shape cs = {1, 3, 2, 2, 4, 5, 1, 0};
    CHECK(conv_check(&cs) == SNLVK_E_INVALID, "a 5x5 kernel on a 2x2 input was accepted");
    cs.ksize = 1;
    cs.stride = 0;
    CHECK(conv_check(&cs) == SNLVK_E_INVALID, "stride 0 was accepted");
}

int main(void)
{
    RUN(test_conv_texel);
    RUN(test_conv_tiled);
    RUN(test_conv_bad_shape);
    return h_finish();
}
