/* batchnorm2d, the per-channel sum, the SNL masked ReLU and pooling: every output and
 * gradient against the double-precision C reference at awkward shapes, and against
 * central differences of the reference forward around the GPU gradient (a random
 * projection L = sum(r .* y)). Outputs are poisoned with NaN first so an unwritten
 * element fails. */
#include "harness.h"
#include "ops/batchnorm.h"
#include "ops/masked_relu.h"
#include "ops/pool.h"
#include "ref/ref_ops.h"
#include "vk/vk.h"

#define REL_TOL 1e-5
#define FD_TOL 1e-3
#define FD_STEP 1e-4

/* ---- helpers ---- */

static size_t pick(size_t n)
{
    size_t i = (size_t)(h_uniform(0, 1) * (float)n);
    return i < n ? i : n - 1;
}

static double rms(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s / (double)n);
}

static vk_seq *seq_begin(void)
{
    vk_seq *q = NULL;
    CHECK_OK(vk_seq_create(h_context(), &q));
    CHECK_OK(vk_seq_begin(q, 0));
    return q;
}

static void seq_finish(vk_seq *q)
{
    CHECK_OK(vk_seq_end(q));
    CHECK_OK(vk_seq_run(q));
}

static void check_rel(const char *what, const float *got, const double *ref, size_t n)
{
    double e = h_rel_err(got, ref, n);
    CHECK(e < REL_TOL, "%s: rel err %.3g", what, e);
}

/* Central differences of the double loss L around arr[idx] for `samples` random
 * coordinates of arr[0..n), against the GPU gradient g. Coordinates where
 * |avoid[idx]| < 0.01 (a kink) are not sampled (avoid may be NULL). */
typedef double (*loss_fn)(void *user);
static void fd_check(const char *what, loss_fn loss, void *user, double *arr, const float *g, size_t n, int samples,
                     const double *avoid)
{
    const double scale = rms(g, n);
    const int sweep = (size_t)samples >= n; /* few coordinates: try each once */
    if (sweep) samples = (int)n;
    int bad = 0, done = 0, tries = 0;
    for (; done < samples && tries < samples * 20; tries++) {
        size_t idx = sweep ? (size_t)tries : pick(n);
        if (sweep) done++;
        if (avoid && fabs(avoid[idx]) < 0.01) continue;
        if (!sweep) done++;
        double keep = arr[idx];
        arr[idx] = keep + FD_STEP;
        double lp = loss(user);
        arr[idx] = keep - FD_STEP;
        double lm = loss(user);
        arr[idx] = keep;
        double num = (lp - lm) / (2 * FD_STEP), ana = g[idx];
        if (!(fabs(num - ana) <= FD_TOL * fmax(fabs(num), scale))) {
            if (bad++ < 5) fprintf(stderr, "  fd %s[%zu]: numeric %.8g, GPU %.8g\n", what, idx, num, ana);
        }
    }
    CHECK(bad == 0, "%s: %d finite-difference mismatches", what, bad);
}

static double dot(const double *r, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += r[i] * y[i];
    return s;
}

/* ---- batchnorm ---- */

typedef struct bn_case {
    int n, c, h, w;
    float offset, spread; /* x = offset + spread * U(-1, 1) */
    int fd;
} bn_case;

typedef struct bn_fd {
    const bn_case *k;
    double *x, *gamma, *beta, *r, *y;
} bn_fd;

static double bn_loss(void *user)
{
    bn_fd *f = user;
    const bn_case *k = f->k;
    ref_bn_forward_train(f->x, f->gamma, f->beta, NULL, NULL, f->y, NULL, NULL, k->n, k->c, k->h, k->w, BN_MOMENTUM,
                         BN_EPS);
    return dot(f->r, f->y, (size_t)k->n * k->c * k->h * k->w);
}

static void run_bn(const bn_case *k)
{
    snlvk_context *ctx = h_context();
    const size_t nx = (size_t)k->n * k->c * k->h * k->w, C = (size_t)k->c;
    char tag[96];
    snprintf(tag, sizeof tag, "bn n%d c%d %dx%d", k->n, k->c, k->h, k->w);
    float *x = malloc(nx * 4), *r = malloc(nx * 4), *gamma = malloc(C * 4), *beta = malloc(C * 4);
    float *rm = malloc(C * 4), *rv = malloc(C * 4);
    for (size_t i = 0; i < nx; i++) x[i] = k->offset + k->spread * h_uniform(-1, 1);
    h_fill(r, nx, -1, 1);
    h_fill(gamma, C, 0.5f, 1.5f);
    h_fill(beta, C, -0.5f, 0.5f);
    h_fill(rm, C, -0.2f, 0.2f);
    h_fill(rv, C, 0.5f, 1.5f);
    double *xd = h_to_double(x, nx), *rd = h_to_double(r, nx), *gd = h_to_double(gamma, C), *bd = h_to_double(beta, C);
    double *rmd = h_to_double(rm, C), *rvd = h_to_double(rv, C);
    double *yr = malloc(nx * 8), *ye = malloc(nx * 8), *dxr = malloc(nx * 8), *smr = malloc(C * 8), *sir = malloc(C * 8);
    double *dgr = malloc(C * 8), *dbr = malloc(C * 8);
    ref_bn_forward_train(xd, gd, bd, rmd, rvd, yr, smr, sir, k->n, k->c, k->h, k->w, BN_MOMENTUM, BN_EPS);
    ref_bn_backward(rd, xd, gd, smr, sir, dxr, dgr, dbr, k->n, k->c, k->h, k->w);
    ref_bn_forward_eval(xd, gd, bd, rmd, rvd, ye, k->n, k->c, k->h, k->w, BN_EPS);

    vk_buf bx = h_upload(x, nx), br = h_upload(r, nx), bg = h_upload(gamma, C), bb = h_upload(beta, C);
    vk_buf brm = h_upload(rm, C), brv = h_upload(rv, C);
    vk_buf by = h_alloc_nan(nx), bye = h_alloc_nan(nx), bdx = h_alloc_nan(nx);
    vk_buf bsm = h_alloc_nan(C), bsi = h_alloc_nan(C);
    vk_buf bdg = h_alloc_nan(C), bdb = h_alloc_nan(C);
    bn_shape s = {(uint32_t)k->n, (uint32_t)k->c, (uint32_t)k->h, (uint32_t)k->w};
    vk_seq *q = seq_begin();
    CHECK_OK(op_bn_forward_train(q, ctx, &s, &bx, &bg, &bb, &brm, &brv, &by, &bsm, &bsi, BN_MOMENTUM, BN_EPS));
    CHECK_OK(op_bn_backward(q, ctx, &s, &br, &bx, &bg, &bsm, &bsi, &bdx, &bdg, &bdb, 0.0f));
    CHECK_OK(op_bn_forward_eval(q, ctx, &s, &bx, &bg, &bb, &brm, &brv, &bye, BN_EPS));
    seq_finish(q);
    float *y = h_download(&by, nx), *yev = h_download(&bye, nx), *dx = h_download(&bdx, nx);
    float *sm = h_download(&bsm, C), *si = h_download(&bsi, C), *rm2 = h_download(&brm, C), *rv2 = h_download(&brv, C);
    float *dg = h_download(&bdg, C), *db = h_download(&bdb, C);
    char what[160];
#define REL(name, got, ref, n) (snprintf(what, sizeof what, "%s %s", tag, name), check_rel(what, got, ref, n))
    REL("y (train)", y, yr, nx);
    REL("save_mean", sm, smr, C);
    REL("save_invstd", si, sir, C);
    REL("running_mean", rm2, rmd, C);
    REL("running_var", rv2, rvd, C);
    REL("dx", dx, dxr, nx);
    REL("dgamma", dg, dgr, C);
    REL("dbeta", db, dbr, C);
    REL("y (eval)", yev, ye, nx);

    /* beta_dx = 1 accumulates into dx */
    CHECK_OK(vk_seq_begin(q, 0));
    CHECK_OK(op_bn_backward(q, ctx, &s, &br, &bx, &bg, &bsm, &bsi, &bdx, &bdg, &bdb, 1.0f));
    seq_finish(q);
    float *dx2 = h_download(&bdx, nx);
    for (size_t i = 0; i < nx; i++) dxr[i] *= 2;
    REL("dx accumulated", dx2, dxr, nx);
#undef REL

    if (k->fd) {
        bn_fd f = {k, xd, gd, bd, rd, yr};
        snprintf(what, sizeof what, "%s dx", tag);
        fd_check(what, bn_loss, &f, xd, dx, nx, 30, NULL);
        snprintf(what, sizeof what, "%s dgamma", tag);
        fd_check(what, bn_loss, &f, gd, dg, C, 8, NULL);
        snprintf(what, sizeof what, "%s dbeta", tag);
        fd_check(what, bn_loss, &f, bd, db, C, 8, NULL);
    }

    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx, &br, &bg, &bb, &brm, &brv, &by, &bye, &bdx, &bsm, &bsi, &bdg, &bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    void *mem[] = {x, r, gamma, beta, rm, rv, xd, rd, gd, bd, rmd, rvd, yr, ye, dxr, smr, sir, dgr, dbr,
                   y, yev, dx, sm, si, rm2, rv2, dg, db, dx2};
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) free(mem[i]);
}

static void test_bn(void)
{
    static const bn_case cases[] = {
        {1, 3, 7, 5, 0.0f, 1.0f, 1},    {3, 5, 7, 5, 0.3f, 2.0f, 1},    {3, 17, 5, 7, -1.0f, 0.5f, 1},
        {1, 5, 1, 1, 0.0f, 1.0f, 0},    /* N*H*W = 1: variance 0, running_var takes the biased 0 */
        /* (N*H*W = 2 is left out: there dx = (dy1-dy2)/2 * eps/(var+eps), all cancellation,
         * which fp32 cannot give to 1e-5, PyTorch's fp32 kernels neither) */
        {2, 3, 2, 1, 0.0f, 1.0f, 1},    {8, 16, 16, 16, 0.5f, 1.0f, 1}, {3, 5, 2, 6, 0.2f, 1.5f, 1}, {4, 32, 4, 4, 0.1f, 1.0f, 1}, {4, 8, 2, 2, 0.1f, 1.0f, 1},
        /* N*H*W = 131072 per channel around a mean of 20 (E[x^2]-E[x]^2 in fp32 would fail) */
        {128, 2, 32, 32, 20.0f, 0.5f, 0},
        /* 7x7 planes in images of whole vec4s (bn_backward_flat), two rows of images */
        {11, 8, 7, 7, 0.3f, 1.0f, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_bn(&cases[i]);
}

/* affine=False (gamma, beta NULL) and no running statistics */
static void test_bn_no_affine(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 3, C = 5, H = 7, W = 5, NX = N * C * H * W };
    float x[NX], r[NX];
    h_fill(x, NX, -2, 1);
    h_fill(r, NX, -1, 1);
    double *xd = h_to_double(x, NX), *rd = h_to_double(r, NX), yr[NX], dxr[NX], sm[C], si[C], dg[C], db[C];
    ref_bn_forward_train(xd, NULL, NULL, NULL, NULL, yr, sm, si, N, C, H, W, BN_MOMENTUM, BN_EPS);
    ref_bn_backward(rd, xd, NULL, sm, si, dxr, dg, db, N, C, H, W);
    vk_buf bx = h_upload(x, NX), br = h_upload(r, NX), by = h_alloc_nan(NX), bdx = h_alloc_nan(NX);
    vk_buf bsm = h_alloc_nan(C), bsi = h_alloc_nan(C), bdg = h_alloc_nan(C), bdb = h_alloc_nan(C);
    bn_shape s = {N, C, H, W};
    vk_seq *q = seq_begin();
    CHECK_OK(op_bn_forward_train(q, ctx, &s, &bx, NULL, NULL, NULL, NULL, &by, &bsm, &bsi, BN_MOMENTUM, BN_EPS));
    CHECK_OK(op_bn_backward(q, ctx, &s, &br, &bx, NULL, &bsm, &bsi, &bdx, &bdg, &bdb, 0.0f));
    seq_finish(q);
    float *y = h_download(&by, NX), *dx = h_download(&bdx, NX), *g = h_download(&bdg, C), *b = h_download(&bdb, C);
    check_rel("no-affine y", y, yr, NX);
    check_rel("no-affine dx", dx, dxr, NX);
    check_rel("no-affine dgamma", g, dg, C);
    check_rel("no-affine dbeta", b, db, C);
    /* a missing running_var with a running_mean is refused */
    CHECK(op_bn_forward_train(q, ctx, &s, &bx, NULL, NULL, &bsm, NULL, &by, &bsm, &bsi, 0.1f, 1e-5f) ==
              SNLVK_E_INVALID,
          "running_mean without running_var was accepted");
    bn_shape bad = {0, C, H, W};
    CHECK(bn_check(&bad) == SNLVK_E_INVALID, "an empty batch was accepted");
    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx, &br, &by, &bdx, &bsm, &bsi, &bdg, &bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    free(xd), free(rd), free(y), free(dx), free(g), free(b);
}

static void test_channel_sum(void)
{
    snlvk_context *ctx = h_context();
    static const int shapes[][4] = {{1, 3, 7, 5}, {3, 17, 5, 7}, {8, 17, 1, 1}, {128, 3, 32, 32}};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        const int N = shapes[t][0], C = shapes[t][1], H = shapes[t][2], W = shapes[t][3];
        const size_t nx = (size_t)N * C * H * W;
        float *x = malloc(nx * 4), prev[17];
        for (size_t i = 0; i < nx; i++) x[i] = 3.0f + h_uniform(-1, 1);
        h_fill(prev, (size_t)C, -1, 1);
        double ref[17] = {0}, acc[17];
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < H * W; i++) ref[c] += x[((size_t)n * C + c) * H * W + i];
        for (int c = 0; c < C; c++) acc[c] = ref[c] + prev[c];
        vk_buf bx = h_upload(x, nx), bo = h_alloc_nan((size_t)C), ba = h_upload(prev, (size_t)C);
        bn_shape s = {(uint32_t)N, (uint32_t)C, (uint32_t)H, (uint32_t)W};
        vk_seq *q = seq_begin();
        CHECK_OK(op_channel_sum(q, ctx, &s, &bx, &bo, 0.0f));
        CHECK_OK(op_channel_sum(q, ctx, &s, &bx, &ba, 1.0f));
        seq_finish(q);
        float *o = h_download(&bo, (size_t)C), *a = h_download(&ba, (size_t)C);
        char what[96];
        snprintf(what, sizeof what, "channel sum n%d c%d %dx%d", N, C, H, W);
        check_rel(what, o, ref, (size_t)C);
        snprintf(what, sizeof what, "channel sum accumulate n%d c%d %dx%d", N, C, H, W);
        check_rel(what, a, acc, (size_t)C);
        vk_seq_destroy(q);
        vk_buf_free(ctx, &bx), vk_buf_free(ctx, &bo), vk_buf_free(ctx, &ba);
        free(x), free(o), free(a);
    }
}

/* ---- masked ReLU ---- */

typedef struct mr_fd {
    const mrelu_shape *s;
    double *x, *c, *r, *y;
    double lambda;
} mr_fd;

/* L = sum(r .* y) + lambda * sum |c|: its gradient in c is exactly dc */
static double mr_loss(void *user)
{
    mr_fd *f = user;
    const mrelu_shape *s = f->s;
    ref_masked_relu_forward(f->x, f->c, f->y, (int)s->n, (int)s->c, (int)s->h, (int)s->w, s->channel_mask);
    double l = dot(f->r, f->y, (size_t)s->n * s->c * s->h * s->w);
    for (uint32_t i = 0; i < mrelu_mask_size(s); i++) l += f->lambda * fabs(f->c[i]);
    return l;
}

/* x in +-[0.02, 1] with a few exact zeros; masks in [-0.2, 1.2] with a few exact 0 and 1 */
static void mr_inputs(float *x, size_t nx, float *c, size_t nc)
{
    for (size_t i = 0; i < nx; i++) {
        float v = h_uniform(0.02f, 1.0f);
        x[i] = i % 37 == 5 ? 0.0f : h_uniform(-1, 1) < 0 ? -v : v;
    }
    for (size_t i = 0; i < nc; i++) c[i] = i % 11 == 3 ? 0.0f : i % 11 == 7 ? 1.0f : h_uniform(-0.2f, 1.2f);
}

static void run_mrelu(int N, int C, int H, int W, int channel)
{
    snlvk_context *ctx = h_context();
    mrelu_shape s = {(uint32_t)N, (uint32_t)C, (uint32_t)H, (uint32_t)W, channel};
    const size_t nx = (size_t)N * C * H * W, nc = mrelu_mask_size(&s);
    char tag[96], what[160];
    snprintf(tag, sizeof tag, "masked relu %s n%d c%d %dx%d", channel ? "channel" : "pixel", N, C, H, W);
    float *x = malloc(nx * 4), *r = malloc(nx * 4), *c = malloc(nc * 4);
    mr_inputs(x, nx, c, nc);
    h_fill(r, nx, -1, 1);
    const float lambdas[3] = {0.5f, 0.05f, 0.7f}; /* lambda_index 1 */
    double *xd = h_to_double(x, nx), *rd = h_to_double(r, nx), *cd = h_to_double(c, nc);
    double *yr = malloc(nx * 8), *dxr = malloc(nx * 8), *dcr = malloc(nc * 8);
    ref_masked_relu_forward(xd, cd, yr, N, C, H, W, channel);
    ref_masked_relu_backward(rd, xd, cd, dxr, dcr, lambdas[1], N, C, H, W, channel);
    vk_buf bx = h_upload(x, nx), br = h_upload(r, nx), bc = h_upload(c, nc), bl = h_upload(lambdas, 3);
    vk_buf by = h_alloc_nan(nx), bdx = h_alloc_nan(nx), bdc = h_alloc_nan(nc);
    vk_seq *q = seq_begin();
    CHECK_OK(op_masked_relu_forward(q, ctx, &s, &bx, &bc, &by));
    CHECK_OK(op_masked_relu_backward(q, ctx, &s, &br, &bx, &bc, &bdx, &bdc, &bl, 1));
    seq_finish(q);
    float *y = h_download(&by, nx), *dx = h_download(&bdx, nx), *dc = h_download(&bdc, nc);
    snprintf(what, sizeof what, "%s y", tag);
    check_rel(what, y, yr, nx);
    snprintf(what, sizeof what, "%s dx", tag);
    check_rel(what, dx, dxr, nx);
    snprintf(what, sizeof what, "%s dc", tag);
    check_rel(what, dc, dcr, nc);

    mr_fd f = {&s, xd, cd, rd, yr, lambdas[1]};
    snprintf(what, sizeof what, "%s dx", tag);
    fd_check(what, mr_loss, &f, xd, dx, nx, 30, xd);
    snprintf(what, sizeof what, "%s dc", tag);
    fd_check(what, mr_loss, &f, cd, dc, nc, 16, cd);

    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx, &br, &bc, &bl, &by, &bdx, &bdc};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    void *mem[] = {x, r, c, xd, rd, cd, yr, dxr, dcr, y, dx, dc};
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) free(mem[i]);
}

static const int mr_shapes[][4] = {{1, 3, 7, 5}, {3, 5, 7, 5}, {3, 17, 5, 7}, {2, 3, 1, 1}, {8, 16, 16, 16},
                                      {3, 4, 3, 3} /* C*H*W a multiple of 4: the vec4 kernels */};

static void test_masked_relu_pixel(void)
{
    for (size_t i = 0; i < sizeof mr_shapes / sizeof *mr_shapes; i++)
        run_mrelu(mr_shapes[i][0], mr_shapes[i][1], mr_shapes[i][2], mr_shapes[i][3], 0);
}

static void test_masked_relu_channel(void)
{
    for (size_t i = 0; i < sizeof mr_shapes / sizeof *mr_shapes; i++)
        run_mrelu(mr_shapes[i][0], mr_shapes[i][1], mr_shapes[i][2], mr_shapes[i][3], 1);
}

/* masks all 1 are exactly ReLU, all 0 exactly the identity; frozen masks (dc NULL) give
 * the reference dx and write nothing else: the op binds dx in the unused dc slot, so a
 * stray mask-gradient write would show in dx */
static void test_masked_relu_limits_and_frozen(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 3, C = 5, H = 7, W = 5, NX = N * C * H * W, NC = C * H * W };
    float x[NX], dy[NX], ones[NC], zeros[NC], c[NC];
    h_fill(x, NX, -1, 1);
    x[4] = 0.0f;
    h_fill(dy, NX, -1, 1);
    h_fill(c, NC, 0, 1);
    for (int i = 0; i < NC; i++) ones[i] = 1.0f, zeros[i] = 0.0f;
    vk_buf bx = h_upload(x, NX), bdy = h_upload(dy, NX), bc = h_upload(c, NC);
    vk_buf b1 = h_upload(ones, NC), b0 = h_upload(zeros, NC);
    for (int channel = 0; channel < 2; channel++) {
        mrelu_shape s = {N, C, H, W, channel};
        vk_buf y1 = h_alloc_nan(NX), dx1 = h_alloc_nan(NX), y0 = h_alloc_nan(NX);
        vk_buf dx0 = h_alloc_nan(NX), dxf = h_alloc_nan(NX);
        vk_seq *q = seq_begin();
        CHECK_OK(op_masked_relu_forward(q, ctx, &s, &bx, &b1, &y1));
        CHECK_OK(op_masked_relu_backward(q, ctx, &s, &bdy, &bx, &b1, &dx1, NULL, NULL, 0));
        CHECK_OK(op_masked_relu_forward(q, ctx, &s, &bx, &b0, &y0));
        CHECK_OK(op_masked_relu_backward(q, ctx, &s, &bdy, &bx, &b0, &dx0, NULL, NULL, 0));
        /* frozen: dc NULL (a lambda buffer given anyway) */
        CHECK_OK(op_masked_relu_backward(q, ctx, &s, &bdy, &bx, &bc, &dxf, NULL, &b1, 0));
        seq_finish(q);
        float *hy1 = h_download(&y1, NX), *hdx1 = h_download(&dx1, NX), *hy0 = h_download(&y0, NX);
        float *hdx0 = h_download(&dx0, NX), *hdxf = h_download(&dxf, NX);
        int bad_relu = 0, bad_id = 0;
        for (int i = 0; i < NX; i++) {
            if (hy1[i] != (x[i] > 0 ? x[i] : 0.0f) || hdx1[i] != (x[i] > 0 ? dy[i] : 0.0f)) bad_relu++;
            if (hy0[i] != x[i] || hdx0[i] != dy[i]) bad_id++;
        }
        CHECK(bad_relu == 0, "%s masks of 1: %d elements differ from ReLU", channel ? "channel" : "pixel", bad_relu);
        CHECK(bad_id == 0, "%s masks of 0: %d elements differ from the identity", channel ? "channel" : "pixel", bad_id);
        double xd[NX], dyd[NX], cd[NC], dxr[NX];
        for (int i = 0; i < NX; i++) xd[i] = x[i], dyd[i] = dy[i];
        for (int i = 0; i < NC; i++) cd[i] = c[i];
        ref_masked_relu_backward(dyd, xd, cd, dxr, NULL, 0.0, N, C, H, W, channel);
        check_rel(channel ? "frozen channel dx" : "frozen pixel dx", hdxf, dxr, NX);
        vk_seq_destroy(q);
        vk_buf_free(ctx, &y1), vk_buf_free(ctx, &dx1), vk_buf_free(ctx, &y0), vk_buf_free(ctx, &dx0);
        vk_buf_free(ctx, &dxf);
        free(hy1), free(hdx1), free(hy0), free(hdx0), free(hdxf);
    }
    vk_buf *bufs[] = {&bx, &bdy, &b1, &b0, &bc};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
}

/* lambda is read from the device buffer when the sequence runs: record once, change the
 * float with vk_buf_write, run again */
static void test_masked_relu_lambda_buffer(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 3, C = 5, H = 7, W = 5, NX = N * C * H * W };
    float x[NX], dy[NX], c[C * H * W];
    mr_inputs(x, NX, c, C * H * W);
    h_fill(dy, NX, -1, 1);
    double xd[NX], dyd[NX], cd[C * H * W], dxr[NX], dcr[C * H * W];
    for (int i = 0; i < NX; i++) xd[i] = x[i], dyd[i] = dy[i];
    for (int i = 0; i < C * H * W; i++) cd[i] = c[i];
    for (int channel = 0; channel < 2; channel++) {
        mrelu_shape s = {N, C, H, W, channel};
        const size_t nc = mrelu_mask_size(&s);
        float lam[4] = {9, 9, 0.25f, 9};
        vk_buf bx = h_upload(x, NX), bdy = h_upload(dy, NX), bc = h_upload(c, nc), bl = h_upload(lam, 4);
        vk_buf bdx = h_alloc_nan(NX), bdc = h_alloc_nan(nc);
        vk_seq *q = seq_begin();
        CHECK_OK(op_masked_relu_backward(q, ctx, &s, &bdy, &bx, &bc, &bdx, &bdc, &bl, 2));
        seq_finish(q);
        for (int round = 0; round < 2; round++) {
            if (round == 1) {
                const float l2 = 1.5f;
                CHECK_OK(vk_buf_write(ctx, &bl, 2 * sizeof(float), &l2, sizeof l2));
                CHECK_OK(vk_seq_run(q));
            }
            float *dc = h_download(&bdc, nc);
            ref_masked_relu_backward(dyd, xd, cd, dxr, dcr, round ? 1.5 : 0.25, N, C, H, W, channel);
            char what[64];
            snprintf(what, sizeof what, "%s dc with lambda %g", channel ? "channel" : "pixel", round ? 1.5 : 0.25);
            check_rel(what, dc, dcr, nc);
            free(dc);
        }
        vk_seq_destroy(q);
        vk_buf *bufs[] = {&bx, &bdy, &bc, &bl, &bdx, &bdc};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    }
}

/* ---- pooling ---- */

typedef struct pool_case {
    int n, c, h, w, k, s, p;
} pool_case;

typedef struct pool_fd {
    const pool_case *k;
    int max;
    double *x, *r, *y;
    size_t ny;
} pool_fd;

static double pool_loss(void *user)
{
    pool_fd *f = user;
    const pool_case *k = f->k;
    if (f->max) ref_maxpool_forward(f->x, f->y, NULL, k->n, k->c, k->h, k->w, k->k, k->s, k->p);
    else ref_avgpool_forward(f->x, f->y, k->n, k->c, k->h, k->w, k->k, k->s);
    return dot(f->r, f->y, f->ny);
}

/* x: max pool: distinct values 1e-3 apart in a random order (no ties near the finite
 * difference step); ties: values on a coarse grid with ties everywhere, all <= 0, and a
 * few NaNs (compared against the reference, no finite differences) */
static void pool_inputs(float *x, size_t n, int max, int ties)
{
    if (ties) {
        for (size_t i = 0; i < n; i++) x[i] = -0.25f * (float)(int)h_uniform(0, 4);
        x[n / 3] = NAN;
        x[n / 2] = NAN;
        x[n / 2 + 1] = NAN;
    } else if (max) {
        for (size_t i = 0; i < n; i++) x[i] = ((float)i - (float)n / 2) * 1e-3f;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = pick(i + 1);
            float t = x[i];
            x[i] = x[j], x[j] = t;
        }
    } else {
        h_fill(x, n, -1, 1);
    }
}

static void run_pool(const pool_case *k, int max, int ties)
{
    snlvk_context *ctx = h_context();
    pool_shape s = {(uint32_t)k->n, (uint32_t)k->c, (uint32_t)k->h, (uint32_t)k->w, (uint32_t)k->k, (uint32_t)k->s,
                    (uint32_t)k->p};
    const int P = ref_out_size(k->h, k->k, k->s, k->p), Q = ref_out_size(k->w, k->k, k->s, k->p);
    CHECK(P == (int)pool_out_h(&s) && Q == (int)pool_out_w(&s), "output size %ux%u, reference %dx%d", pool_out_h(&s),
          pool_out_w(&s), P, Q);
    const size_t nx = (size_t)k->n * k->c * k->h * k->w, ny = (size_t)k->n * k->c * P * Q;
    char tag[128], what[192];
    snprintf(tag, sizeof tag, "%s n%d c%d %dx%d k%d s%d p%d%s", max ? "maxpool" : "avgpool", k->n, k->c, k->h, k->w,
             k->k, k->s, k->p, ties ? " (ties, NaNs)" : "");
    float *x = malloc(nx * 4), *r = malloc(ny * 4);
    pool_inputs(x, nx, max, ties);
    h_fill(r, ny, -1, 1);
    double *xd = h_to_double(x, nx), *rd = h_to_double(r, ny), *yr = malloc(ny * 8), *dxr = malloc(nx * 8);
    int *amr = malloc(ny * sizeof(int));
    vk_buf bx = h_upload(x, nx), br = h_upload(r, ny);
    vk_buf by = h_alloc_nan(ny), bdx = h_alloc_nan(nx), bam = h_alloc_nan(ny);
    vk_seq *q = seq_begin();
    if (max) {
        ref_maxpool_forward(xd, yr, amr, k->n, k->c, k->h, k->w, k->k, k->s, k->p);
        ref_maxpool_backward(rd, amr, dxr, k->n, k->c, k->h, k->w, k->k, k->s, k->p);
        CHECK_OK(op_maxpool_forward(q, ctx, &s, &bx, &by, &bam));
        CHECK_OK(op_maxpool_backward(q, ctx, &s, &br, &bam, &bdx));
    } else {
        ref_avgpool_forward(xd, yr, k->n, k->c, k->h, k->w, k->k, k->s);
        ref_avgpool_backward(rd, dxr, k->n, k->c, k->h, k->w, k->k, k->s);
        CHECK_OK(op_avgpool_forward(q, ctx, &s, &bx, &by));
        CHECK_OK(op_avgpool_backward(q, ctx, &s, &br, &bdx));
    }
    seq_finish(q);
    float *y = h_download(&by, ny), *dx = h_download(&bdx, nx);
    if (ties) {
        /* NaN outputs must be NaN; the rest exact */
        int bad = 0;
        for (size_t i = 0; i < ny; i++) bad += isnan(yr[i]) ? !isnan(y[i]) : (double)y[i] != yr[i];
        CHECK(bad == 0, "%s y: %d outputs differ", tag, bad);
    } else {
        snprintf(what, sizeof what, "%s y", tag);
        check_rel(what, y, yr, ny);
    }
    snprintf(what, sizeof what, "%s dx", tag);
    check_rel(what, dx, dxr, nx);
    if (max) {
        int32_t *am = malloc(ny * 4);
        CHECK_OK(vk_buf_read(ctx, &bam, 0, am, ny * 4));
        int bad = 0;
        for (size_t i = 0; i < ny; i++) bad += am[i] != amr[i];
        CHECK(bad == 0, "%s argmax: %d of %zu differ", tag, bad, ny);
        free(am);
    }
    if (!ties) {
        pool_fd f = {k, max, xd, rd, yr, ny};
        snprintf(what, sizeof what, "%s dx", tag);
        fd_check(what, pool_loss, &f, xd, dx, nx, 30, NULL);
    }
    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx, &br, &by, &bdx, &bam};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    free(x), free(r), free(xd), free(rd), free(yr), free(dxr), free(amr), free(y), free(dx);
}

static void test_avgpool(void)
{
    static const pool_case cases[] = {
        {1, 3, 7, 5, 2, 2, 0}, {3, 5, 7, 5, 3, 2, 0}, {3, 17, 9, 7, 3, 1, 0}, /* overlapping windows */
        {2, 5, 7, 7, 7, 7, 0},                                                 /* global 7x7 */
        {3, 3, 8, 8, 3, 3, 0},                                                 /* uncovered last rows */
        {3, 5, 4, 4, 4, 1, 0},                                                 /* global 4x4 */
        {8, 16, 16, 16, 2, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_pool(&cases[i], 0, 0);
}

static const pool_case max_cases[] = {
    {1, 3, 7, 5, 3, 2, 1}, {3, 5, 7, 5, 2, 2, 0}, {3, 17, 9, 7, 3, 1, 1}, /* overlapping windows */
    {2, 3, 8, 8, 3, 3, 0}, {1, 3, 6, 6, 5, 2, 2}, {3, 5, 7, 5, 2, 1, 1},  {8, 16, 16, 16, 3, 2, 1},
};

static void test_maxpool(void)
{
    for (size_t i = 0; i < sizeof max_cases / sizeof *max_cases; i++) run_pool(&max_cases[i], 1, 0);
}

static void test_maxpool_ties(void)
{
    for (size_t i = 0; i < sizeof max_cases / sizeof *max_cases; i++) run_pool(&max_cases[i], 1, 1);
}

static void test_pool_bad_shapes(void)
{
    pool_shape s = {1, 3, 4, 4, 5, 1, 0};
    CHECK(pool_check(&s, 0) == SNLVK_E_INVALID, "a 5x5 window on a 4x4 input was accepted");
    s.k = 3;
    s.pad = 1;
    CHECK(pool_check(&s, 0) == SNLVK_E_INVALID, "a padded average pool was accepted");
    CHECK(pool_check(&s, 1) == SNLVK_OK, "a 3x3 max pool with pad 1 was refused");
    s.pad = 2;
    CHECK(pool_check(&s, 1) == SNLVK_E_INVALID, "pad 2 with a 3x3 window was accepted");
    s.pad = 0;
    s.stride = 0;
    CHECK(pool_check(&s, 1) == SNLVK_E_INVALID, "stride 0 was accepted");
}

int main(void)
{
    RUN(test_bn);
    RUN(test_bn_no_affine);
    RUN(test_channel_sum);
    RUN(test_masked_relu_pixel);
    RUN(test_masked_relu_channel);
    RUN(test_masked_relu_limits_and_frozen);
    RUN(test_masked_relu_lambda_buffer);
    RUN(test_avgpool);
    RUN(test_maxpool);
    RUN(test_maxpool_ties);
    RUN(test_pool_bad_shapes);
    return h_finish();
}
