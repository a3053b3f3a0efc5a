/* Batch norm fused with the masked ReLU (ops/bn_act.h), and with the residual add
 * between them: every output and gradient against the double-precision C reference
 * (the existing references composed) and against the unfused GPU ops, at planes that are
 * whole vec4s and planes that are not, pixel and channel masks, frozen and trained masks,
 * accumulated dx, the three shortcut kinds, training and eval; the gradients against
 * central differences of the reference forward. Outputs are poisoned with NaN first. */
#include "harness.h"
#include "ops/batchnorm.h"
#include "ops/bn_act.h"
#include "ops/gemm.h"
#include "ops/masked_relu.h"
#include "ref/ref_ops.h"
#include "vk/vk.h"

#define REL_TOL 1e-5
#define GPU_TOL 1e-6 /* fused against unfused GPU ops: the same float arithmetic */
#define FD_TOL 1e-3
#define FD_STEP 1e-4

static vk_seq *seq_begin(void)
{
    vk_seq *q = NULL;
    CHECK_OK(vk_seq_create(h_context(), &q));
    CHECK_OK(vk_seq_begin(q, 0));
    return q;
}

static void seq_run(vk_seq *q)
{
    CHECK_OK(vk_seq_end(q));
    CHECK_OK(vk_seq_run(q));
}

static double rms(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s / (double)n);
}

static size_t pick(size_t n)
{
    size_t i = (size_t)(h_uniform(0, 1) * (float)n);
    return i < n ? i : n - 1;
}

static void check_ref(const char *tag, const char *what, const float *got, const double *ref, size_t n)
{
    double e = h_rel_err(got, ref, n);
    CHECK(e < REL_TOL, "%s %s: rel err %.3g against the reference", tag, what, e);
}

static void check_gpu(const char *tag, const char *what, const float *got, const float *unfused, size_t n)
{
    double *u = h_to_double(unfused, n);
    double e = h_rel_err(got, u, n);
    CHECK(e < GPU_TOL, "%s %s: rel err %.3g against the unfused ops", tag, what, e);
    free(u);
}

/* ---- the reference: y = mrelu(bn(x) [+ r | + bn(r)]) ---- */

typedef struct fcase {
    int n, c, h, w;
    int channel; /* channel masks */
    int res;     /* 0: no add, 1: + r, 2: + bn(r) */
} fcase;

typedef struct fref {
    const fcase *k;
    double *x, *g, *b, *xr, *gr, *br, *mask, *r; /* inputs; r: the projection (dy) */
    double lambda;
    double *t, *t2, *y, *sm, *si, *rsm, *rsi;     /* outputs */
} fref;

static size_t numel(const fcase *k) { return (size_t)k->n * k->c * k->h * k->w; }
static size_t masksize(const fcase *k) { return k->channel ? (size_t)k->c : (size_t)k->c * k->h * k->w; }

static void ref_forward(fref *f)
{
    const fcase *k = f->k;
    ref_bn_forward_train(f->x, f->g, f->b, NULL, NULL, f->t, f->sm, f->si, k->n, k->c, k->h, k->w, BN_MOMENTUM,
                         BN_EPS);
    if (k->res == 1) ref_add(f->t, f->xr, f->t, (long)numel(k));
    if (k->res == 2) {
        ref_bn_forward_train(f->xr, f->gr, f->br, NULL, NULL, f->t2, f->rsm, f->rsi, k->n, k->c, k->h, k->w,
                             BN_MOMENTUM, BN_EPS);
        ref_add(f->t, f->t2, f->t, (long)numel(k));
    }
    ref_masked_relu_forward(f->t, f->mask, f->y, k->n, k->c, k->h, k->w, k->channel);
}

/* L = sum(r .* y) + lambda * sum |mask| */
static double ref_loss(void *user)
{
    fref *f = user;
    ref_forward(f);
    double l = 0;
    for (size_t i = 0; i < numel(f->k); i++) l += f->r[i] * f->y[i];
    for (size_t i = 0; i < masksize(f->k); i++) l += f->lambda * fabs(f->mask[i]);
    return l;
}

/* Central differences of ref_loss around arr[idx] for `samples` coordinates, against g.
 * Coordinates with skip[idx] set are not sampled (a kink within reach of the step). */
static void fd_check(const char *tag, const char *what, fref *f, double *arr, const float *g, size_t n, int samples,
                     const char *skip)
{
    const double scale = rms(g, n);
    int bad = 0, done = 0;
    const int sweep = (size_t)samples >= n; /* few coordinates: each once */
    const int tries_max = sweep ? (int)n : samples * 20;
    for (int tries = 0; done < samples && tries < tries_max; tries++) {
        size_t idx = sweep ? (size_t)tries : pick(n);
        if (skip && skip[idx]) continue;
        done++;
        double keep = arr[idx];
        arr[idx] = keep + FD_STEP;
        double lp = ref_loss(f);
        arr[idx] = keep - FD_STEP;
        double lm = ref_loss(f);
        arr[idx] = keep;
        double num = (lp - lm) / (2 * FD_STEP), ana = g[idx];
        if (!(fabs(num - ana) <= FD_TOL * fmax(fabs(num), scale)) && bad++ < 5)
            fprintf(stderr, "  fd %s %s[%zu]: numeric %.8g, GPU %.8g\n", tag, what, idx, num, ana);
    }
    /* (with thousands of elements a channel, every gamma and beta may be near a kink) */
    CHECK(done > 0 || (size_t)f->k->n * f->k->h * f->k->w > 1000, "%s %s: no coordinate away from a kink", tag, what);
    CHECK(bad == 0, "%s %s: %d finite-difference mismatches", tag, what, bad);
    ref_forward(f); /* restore the outputs */
}

static void run_case(const fcase *k)
{
    snlvk_context *ctx = h_context();
    const size_t nx = numel(k), C = (size_t)k->c, nm = masksize(k);
    char tag[128];
    snprintf(tag, sizeof tag, "n%d c%d %dx%d %s res%d", k->n, k->c, k->h, k->w, k->channel ? "channel" : "pixel",
             k->res);
    mrelu_shape ms = {(uint32_t)k->n, (uint32_t)k->c, (uint32_t)k->h, (uint32_t)k->w, k->channel};
    bn_shape bs = {(uint32_t)k->n, (uint32_t)k->c, (uint32_t)k->h, (uint32_t)k->w};

    /* inputs */
    float *x = malloc(nx * 4), *xr = malloc(nx * 4), *r = malloc(nx * 4), *mask = malloc(nm * 4), *dx0 = malloc(nx * 4);
    float g[64], b[64], gr[64], br[64], rm[64], rv[64], rrm[64], rrv[64];
    h_fill(x, nx, -1.5f, 2.0f);
    h_fill(xr, nx, -1.0f, 1.0f);
    h_fill(r, nx, -1, 1);
    h_fill(dx0, nx, -1, 1);
    for (size_t i = 0; i < nm; i++) mask[i] = i % 11 == 3 ? 0.0f : i % 11 == 7 ? 1.0f : h_uniform(-0.2f, 1.2f);
    h_fill(g, C, 0.5f, 1.5f);
    h_fill(b, C, -0.5f, 0.5f);
    h_fill(gr, C, 0.5f, 1.5f);
    h_fill(br, C, -0.5f, 0.5f);
    h_fill(rm, C, -0.3f, 0.3f);
    h_fill(rv, C, 0.5f, 1.5f);
    h_fill(rrm, C, -0.3f, 0.3f);
    h_fill(rrv, C, 0.5f, 1.5f);
    const float lambdas[3] = {0.5f, 0.05f, 0.7f}; /* lambda_index 1 */

    /* the reference, training forward */
    fref f = {k, h_to_double(x, nx), h_to_double(g, C), h_to_double(b, C), h_to_double(xr, nx), h_to_double(gr, C),
              h_to_double(br, C), h_to_double(mask, nm), h_to_double(r, nx), lambdas[1],
              malloc(nx * 8), malloc(nx * 8), malloc(nx * 8), malloc(C * 8), malloc(C * 8), malloc(C * 8), malloc(C * 8)};
    ref_forward(&f);
    /* eval */
    double *ter = malloc(nx * 8), *t2e = malloc(nx * 8), *yer = malloc(nx * 8);
    {
        double *rmd = h_to_double(rm, C), *rvd = h_to_double(rv, C), *rrmd = h_to_double(rrm, C),
               *rrvd = h_to_double(rrv, C);
        ref_bn_forward_eval(f.x, f.g, f.b, rmd, rvd, ter, k->n, k->c, k->h, k->w, BN_EPS);
        if (k->res == 1) ref_add(ter, f.xr, ter, (long)nx);
        if (k->res == 2) {
            ref_bn_forward_eval(f.xr, f.gr, f.br, rrmd, rrvd, t2e, k->n, k->c, k->h, k->w, BN_EPS);
            ref_add(ter, t2e, ter, (long)nx);
        }
        ref_masked_relu_forward(ter, f.mask, yer, k->n, k->c, k->h, k->w, k->channel);
        free(rmd), free(rvd), free(rrmd), free(rrvd);
    }

    vk_buf bx = h_upload(x, nx), bxr = h_upload(xr, nx), br_ = h_upload(r, nx), bmask = h_upload(mask, nm);
    vk_buf bg = h_upload(g, C), bb = h_upload(b, C), bgr = h_upload(gr, C), bbr = h_upload(br, C);
    vk_buf brm = h_upload(rm, C), brv = h_upload(rv, C), brrm = h_upload(rrm, C), brrv = h_upload(rrv, C);
    vk_buf bl = h_upload(lambdas, 3);
    vk_buf bsm = h_alloc_nan(C), bsi = h_alloc_nan(C), brsm = h_alloc_nan(C), brsi = h_alloc_nan(C);
    vk_buf bt = h_alloc_nan(nx), by = h_alloc_nan(nx), by2 = h_alloc_nan(nx);
    vk_buf bye = h_alloc_nan(nx), bte = h_alloc_nan(nx);
    vk_buf bu1 = h_alloc_nan(nx), bu2 = h_alloc_nan(nx), bu = h_alloc_nan(nx);
    vk_buf byu = h_alloc_nan(nx), byue = h_alloc_nan(nx);
    const bn_norm nt = {&bx, &bg, &bb, &bsm, &bsi}, nrt = {&bxr, &bgr, &bbr, &brsm, &brsi};
    const bn_norm ne = {&bx, &bg, &bb, &brm, &brv}, nre = {&bxr, &bgr, &bbr, &brrm, &brrv};
    const vk_buf *res = k->res == 1 ? &bxr : NULL;

    /* fused forward: training (t stored and not), eval */
    vk_seq *q = seq_begin();
    CHECK_OK(op_bn_statistics(q, ctx, &bs, &bx, NULL, NULL, &bsm, &bsi, BN_MOMENTUM, BN_EPS));
    if (k->res == 2) CHECK_OK(op_bn_statistics(q, ctx, &bs, &bxr, NULL, NULL, &brsm, &brsi, BN_MOMENTUM, BN_EPS));
    CHECK_OK(op_bn_act_forward(q, ctx, &ms, 0, &nt, res, k->res == 2 ? &nrt : NULL, &bmask, &bt, &by, BN_EPS));
    CHECK_OK(op_bn_act_forward(q, ctx, &ms, 0, &nt, res, k->res == 2 ? &nrt : NULL, &bmask, NULL, &by2, BN_EPS));
    CHECK_OK(op_bn_act_forward(q, ctx, &ms, 1, &ne, res, k->res == 2 ? &nre : NULL, &bmask, &bte, &bye, BN_EPS));
    seq_run(q);
    /* the unfused ops */
    CHECK_OK(vk_seq_begin(q, 0));
    CHECK_OK(op_bn_forward_train(q, ctx, &bs, &bx, &bg, &bb, NULL, NULL, &bu1, &bsm, &bsi, BN_MOMENTUM, BN_EPS));
    if (k->res == 2)
        CHECK_OK(op_bn_forward_train(q, ctx, &bs, &bxr, &bgr, &bbr, NULL, NULL, &bu2, &brsm, &brsi, BN_MOMENTUM, BN_EPS));
    if (k->res) CHECK_OK(op_axpby(q, ctx, &bu1, k->res == 1 ? &bxr : &bu2, &bu, (uint32_t)nx, 1.0f, 1.0f));
    CHECK_OK(op_masked_relu_forward(q, ctx, &ms, k->res ? &bu : &bu1, &bmask, &byu));
    seq_run(q);
    CHECK_OK(vk_seq_begin(q, 0));
    CHECK_OK(op_bn_forward_eval(q, ctx, &bs, &bx, &bg, &bb, &brm, &brv, &bu1, BN_EPS));
    if (k->res == 2) CHECK_OK(op_bn_forward_eval(q, ctx, &bs, &bxr, &bgr, &bbr, &brrm, &brrv, &bu2, BN_EPS));
    if (k->res) CHECK_OK(op_axpby(q, ctx, &bu1, k->res == 1 ? &bxr : &bu2, &bu, (uint32_t)nx, 1.0f, 1.0f));
    CHECK_OK(op_masked_relu_forward(q, ctx, &ms, k->res ? &bu : &bu1, &bmask, &byue));
    seq_run(q);
    {
        float *t = h_download(&bt, nx), *y = h_download(&by, nx);
        float *y2 = h_download(&by2, nx), *ye = h_download(&bye, nx);
        float *te = h_download(&bte, nx), *yu = h_download(&byu, nx), *yue = h_download(&byue, nx);
        check_ref(tag, "t (train)", t, f.t, nx);
        check_ref(tag, "y (train)", y, f.y, nx);
        check_ref(tag, "y (train, t not stored)", y2, f.y, nx);
        check_ref(tag, "t (eval)", te, ter, nx);
        check_ref(tag, "y (eval)", ye, yer, nx);
        check_gpu(tag, "y (train)", y, yu, nx);
        check_gpu(tag, "y (train, t not stored)", y2, yu, nx);
        check_gpu(tag, "y (eval)", ye, yue, nx);
        free(t), free(y), free(y2), free(ye), free(te), free(yu), free(yue);
    }

    if (k->res == 0) {
        /* backward: the reference composes the masked ReLU's and batch norm's */
        double *dtr = malloc(nx * 8), *dxr = malloc(nx * 8), *dcr = malloc(nm * 8), *dgr = malloc(C * 8),
               *dbr = malloc(C * 8);
        ref_masked_relu_backward(f.r, f.t, f.mask, dtr, dcr, f.lambda, k->n, k->c, k->h, k->w, k->channel);
        ref_bn_backward(dtr, f.x, f.g, f.sm, f.si, dxr, dgr, dbr, k->n, k->c, k->h, k->w);
        vk_buf bdx = h_alloc_nan(nx), bdxf = h_alloc_nan(nx), bdc = h_alloc_nan(nm);
        vk_buf bdg = h_alloc_nan(C), bdb = h_alloc_nan(C);
        vk_buf bdg2 = h_alloc_nan(C), bdb2 = h_alloc_nan(C), bdxa = h_upload(dx0, nx);
        vk_buf bdt = h_alloc_nan(nx), bdxu = h_alloc_nan(nx), bdcu = h_alloc_nan(nm);
        vk_buf bdgu = h_alloc_nan(C), bdbu = h_alloc_nan(C);
        CHECK_OK(vk_seq_begin(q, 0));
        /* trained mask, dx overwritten; frozen; frozen with dx accumulated (beta 0.5) */
        CHECK_OK(op_bn_act_backward(q, ctx, &ms, &br_, &nt, &bmask, &bdx, 0.0f, &bdg, &bdb, &bdc, &bl, 1));
        CHECK_OK(op_bn_act_backward(q, ctx, &ms, &br_, &nt, &bmask, &bdxf, 0.0f, &bdg2, &bdb2, NULL, NULL, 0));
        CHECK_OK(op_bn_act_backward(q, ctx, &ms, &br_, &nt, &bmask, &bdxa, 0.5f, &bdg2, &bdb2, NULL, NULL, 0));
        seq_run(q);
        /* the unfused ops (bu1 holds the eval forward: the training one again first) */
        CHECK_OK(vk_seq_begin(q, 0));
        CHECK_OK(op_bn_forward_train(q, ctx, &bs, &bx, &bg, &bb, NULL, NULL, &bu1, &bsm, &bsi, BN_MOMENTUM, BN_EPS));
        CHECK_OK(op_masked_relu_backward(q, ctx, &ms, &br_, &bu1, &bmask, &bdt, &bdcu, &bl, 1));
        CHECK_OK(op_bn_backward(q, ctx, &bs, &bdt, &bx, &bg, &bsm, &bsi, &bdxu, &bdgu, &bdbu, 0.0f));
        seq_run(q);
        float *dx = h_download(&bdx, nx), *dxf = h_download(&bdxf, nx), *dxa = h_download(&bdxa, nx);
        float *dc = h_download(&bdc, nm), *dg = h_download(&bdg, C), *db = h_download(&bdb, C);
        float *dg2 = h_download(&bdg2, C), *db2 = h_download(&bdb2, C);
        float *dxu = h_download(&bdxu, nx), *dcu = h_download(&bdcu, nm), *dgu = h_download(&bdgu, C),
              *dbu = h_download(&bdbu, C);
        check_ref(tag, "dx (trained mask)", dx, dxr, nx);
        check_ref(tag, "dx (frozen mask)", dxf, dxr, nx);
        check_ref(tag, "dc", dc, dcr, nm);
        check_ref(tag, "dgamma", dg, dgr, C);
        check_ref(tag, "dbeta", db, dbr, C);
        check_ref(tag, "dgamma (frozen)", dg2, dgr, C);
        check_ref(tag, "dbeta (frozen)", db2, dbr, C);
        double *dxar = malloc(nx * 8);
        for (size_t i = 0; i < nx; i++) dxar[i] = 0.5 * dx0[i] + dxr[i];
        check_ref(tag, "dx accumulated", dxa, dxar, nx);
        check_gpu(tag, "dx", dx, dxu, nx);
        check_gpu(tag, "dc", dc, dcu, nm);
        check_gpu(tag, "dgamma", dg, dgu, C);
        check_gpu(tag, "dbeta", db, dbu, C);

        /* finite differences: x away from t's kink; gamma and beta where no t of the
         * channel is within reach of the step; the mask away from sign's kink */
        char *skip_x = calloc(nx, 1), *skip_c = calloc(C, 1), *skip_m = calloc(nm, 1);
        const size_t hw = (size_t)k->h * k->w;
        for (size_t i = 0; i < nx; i++) {
            skip_x[i] = fabs(f.t[i]) < 0.01;
            if (fabs(f.t[i]) < 5e-4) skip_c[i / hw % C] = 1; /* the steps move t by up to ~3e-4 */
        }
        for (size_t i = 0; i < nm; i++) skip_m[i] = fabs(f.mask[i]) < 0.01;
        fd_check(tag, "dx", &f, f.x, dx, nx, 24, skip_x);
        fd_check(tag, "dgamma", &f, f.g, dg, C, 6, skip_c);
        fd_check(tag, "dbeta", &f, f.b, db, C, 6, skip_c);
        fd_check(tag, "dc", &f, f.mask, dc, nm, 12, skip_m);
        free(skip_x), free(skip_c), free(skip_m);

        vk_buf *bufs[] = {&bdx, &bdxf, &bdc, &bdg, &bdb, &bdg2, &bdb2, &bdxa, &bdt, &bdxu, &bdcu, &bdgu, &bdbu};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
        void *mem[] = {dtr, dxr, dcr, dgr, dbr, dx, dxf, dxa, dc, dg, db, dg2, db2, dxu, dcu, dgu, dbu, dxar};
        for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) free(mem[i]);
    }

    vk_seq_destroy(q);
    vk_buf *bufs[] = {&bx,  &bxr, &br_, &bmask, &bg, &bb, &bgr, &bbr, &brm, &brv, &brrm, &brrv, &bl, &bsm,
                      &bsi, &brsm, &brsi, &bt, &by, &by2, &bye, &bte, &bu1, &bu2, &bu, &byu, &byue};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vk_buf_free(ctx, bufs[i]);
    void *mem[] = {x,   xr,  r,   mask, dx0, f.x, f.g, f.b, f.xr, f.gr, f.br, f.mask, f.r, f.t,
                   f.t2, f.y, f.sm, f.si, f.rsm, f.rsi, ter, t2e, yer};
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) free(mem[i]);
}

/* The elementwise passes' kernels: the flattened ones where planes are more than four
 * floats and images whole vec4s: 11x8x7x7 (walked by two rows of images), 14x14, 4x4,
 * 3x4x5x3, 32x32; the planes' kernels elsewhere: 3x5x7x7 and 9x9 a float at a time,
 * 2x2 (whole vec4s) a vec4. The sums take a vec4 a unit where planes are whole vec4s; 9x9
 * and 32x32 have more units a plane than their workgroup. The shortcut's cases take the
 * first four. */
static const int shapes[][4] = {{11, 8, 7, 7}, {3, 5, 7, 7}, {2, 6, 14, 14}, {4, 8, 4, 4},
                                {3, 4, 5, 3},  {2, 3, 9, 9}, {2, 3, 32, 32}, {3, 8, 2, 2}};

static void run_all(int channel, int res)
{
    const size_t n = res ? 4 : sizeof shapes / sizeof *shapes;
    for (size_t i = 0; i < n; i++) {
        fcase k = {shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], channel, res};
        run_case(&k);
    }
}

static void test_bn_act_pixel(void) { run_all(0, 0); }
static void test_bn_act_channel(void) { run_all(1, 0); }
static void test_bn_add_act_pixel(void) { run_all(0, 1); }
static void test_bn_add_act_channel(void) { run_all(1, 1); }
static void test_bn_add_bn_act_pixel(void) { run_all(0, 2); }
static void test_bn_add_bn_act_channel(void) { run_all(1, 2); }

static void test_bn_act_refusals(void)
{
    snlvk_context *ctx = h_context();
    float one[16] = {0};
    vk_buf a = h_upload(one, 16), c4 = h_upload(one, 4);
    mrelu_shape ms = {1, 4, 2, 2, 0};
    bn_norm nb = {&a, &c4, &c4, &c4, &c4}, bad = {&a, NULL, &c4, &c4, &c4};
    vk_seq *q = seq_begin();
    CHECK(op_bn_act_forward(q, ctx, &ms, 0, &bad, NULL, NULL, &a, NULL, &a, BN_EPS) == SNLVK_E_INVALID,
          "a batch norm without gamma was accepted");
    CHECK(op_bn_act_forward(q, ctx, &ms, 0, &nb, &a, &nb, &a, NULL, &a, BN_EPS) == SNLVK_E_INVALID,
          "two shortcuts were accepted");
    CHECK(op_bn_act_forward(q, ctx, &ms, 0, &nb, NULL, NULL, &c4, NULL, &a, BN_EPS) != SNLVK_OK,
          "a mask too small was accepted");
    CHECK(op_bn_act_backward(q, ctx, &ms, &a, &nb, &a, &a, 0.0f, &c4, &c4, &c4, NULL, 0) != SNLVK_OK,
          "a mask gradient too small was accepted");
    seq_run(q);
    vk_seq_destroy(q);
    vk_buf_free(ctx, &a);
    vk_buf_free(ctx, &c4);
}

int main(void)
{
    RUN(test_bn_act_pixel);
    RUN(test_bn_act_channel);
    RUN(test_bn_add_act_pixel);
    RUN(test_bn_add_act_channel);
    RUN(test_bn_add_bn_act_pixel);
    RUN(test_bn_add_bn_act_channel);
    RUN(test_bn_act_refusals);
    return h_finish();
}
