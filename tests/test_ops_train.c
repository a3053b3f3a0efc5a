/* The training ops against the plain C references (tests/ref/ref_ops.h) at awkward sizes:
 * the step-params block, the classifier loss (cross-entropy, distillation, top-k,
 * device-side metrics), Adam and SGD replayed from one recording with new learning rates,
 * and the mask ops (count, binarize, exact global top-B with ties). Outputs are poisoned
 * before each run so an unwritten element fails. */
#include "harness.h"
#include "ops/loss.h"
#include "ops/mask.h"
#include "ops/optim.h"
#include "ops/step_params.h"
#include "ref/ref_ops.h"
#include "vk/vk.h"

static vk_buf upload(const void *data, size_t bytes)
{
    snlvk_context *ctx = h_context();
    vk_buf b;
    memset(&b, 0, sizeof b);
    CHECK_OK(vk_buf_alloc(ctx, bytes, &b));
    if (data) CHECK_OK(vk_buf_write(ctx, &b, 0, data, bytes));
    return b;
}

static double rel1(double a, double b) { return fabs(a - b) / (fabs(b) > 0 ? fabs(b) : 1.0); }

static int rand_int(int n)
{
    int k = (int)h_uniform(0.0f, (float)n);
    return k >= n ? n - 1 : k < 0 ? 0 : k;
}

/* ---- step params ---- */

static void test_step_params(void)
{
    snlvk_context *ctx = h_context();
    CHECK(STEP_PARAMS_INDEX(snl_lambda) == 22, "lambda index %u", STEP_PARAMS_INDEX(snl_lambda));
    vk_buf b;
    CHECK_OK(step_params_alloc(ctx, &b));
    step_params p, back;
    CHECK_OK(vk_buf_read(ctx, &b, 0, &back, sizeof back));
    step_params_default(&p);
    CHECK(back.adam_step == 1 && back.lr[7] == 1e-3f && back.kd_temperature == 4.0f, "defaults not written");
    p.adam_step = 7;
    p.lr[3] = 0.02f;
    p.adam_beta1 = 0.8f;
    p.adam_beta2 = 0.99f;
    p.adam_step_size[3] = 12345.0f; /* derived: must be replaced */
    CHECK_OK(step_params_write(ctx, &b, &p));
    CHECK_OK(vk_buf_read(ctx, &b, 0, &back, sizeof back));
    double bc1 = 1.0 - pow((double)0.8f, 7), bc2 = 1.0 - pow((double)0.99f, 7);
    CHECK(back.adam_step_size[3] == (float)(0.02f / bc1), "step size %g", (double)back.adam_step_size[3]);
    CHECK(back.adam_step_size[0] == (float)(1e-3f / bc1), "step size %g", (double)back.adam_step_size[0]);
    CHECK(back.adam_bias_correction2_sqrt == (float)sqrt(bc2), "bc2 %g", (double)back.adam_bias_correction2_sqrt);
    CHECK(back.adam_one_minus_beta1 == (float)(1.0 - (double)0.8f), "1-b1");
    CHECK(back.adam_one_minus_beta2 == (float)(1.0 - (double)0.99f), "1-b2");
    CHECK(back.lr[3] == 0.02f && back.adam_step == 7, "fields");
    p.adam_step = 0;
    CHECK(step_params_write(ctx, &b, &p) != SNLVK_OK, "t = 0 accepted");
    vk_buf_free(ctx, &b);
}

/* ---- classifier loss ---- */

typedef struct loss_case {
    int n, classes;
    float *z, *t;
    int *labels;
    double *zd, *td;
} loss_case;

static void loss_case_make(loss_case *c, int n, int classes, float spread)
{
    c->n = n;
    c->classes = classes;
    size_t nc = (size_t)n * classes;
    c->z = malloc(nc * 4);
    c->t = malloc(nc * 4);
    c->labels = malloc((size_t)n * sizeof(int));
    h_fill(c->z, nc, -spread, spread);
    h_fill(c->t, nc, -spread, spread);
    for (int r = 0; r < n; r++) {
        c->labels[r] = rand_int(classes);
        /* ties with the label's logit on every other row: top-k must count them right */
        if (r % 2 == 1 && classes > 1) {
            c->z[(size_t)r * classes + (size_t)(c->labels[r] + 1) % classes] = c->z[(size_t)r * classes + c->labels[r]];
            if (classes > 3)
                c->z[(size_t)r * classes + (size_t)(c->labels[r] + 2) % classes] =
                    c->z[(size_t)r * classes + c->labels[r]];
        }
    }
    c->zd = h_to_double(c->z, nc);
    c->td = h_to_double(c->t, nc);
}

static void loss_case_free(loss_case *c)
{
    free(c->z), free(c->t), free(c->labels), free(c->zd), free(c->td);
}

/* Reference total loss w_ce*CE + w_kd*KD (kd: with a teacher) and its gradient. */
static double ref_total(const loss_case *c, const double *z, int kd, double T, double wce, double wkd, double *dz,
                        double *ce_out, double *kd_out)
{
    size_t nc = (size_t)c->n * c->classes;
    double *dce = dz ? malloc(nc * sizeof(double)) : NULL, *dkd = dz ? malloc(nc * sizeof(double)) : NULL;
    double ce = ref_cross_entropy(z, c->labels, dce, c->n, c->classes);
    double k = kd ? ref_kd_loss(z, c->td, dkd, c->n, c->classes, T) : 0.0;
    if (dz)
        for (size_t i = 0; i < nc; i++) dz[i] = wce * dce[i] + (kd ? wkd * dkd[i] : 0.0);
    free(dce), free(dkd);
    if (ce_out) *ce_out = ce;
    if (kd_out) *kd_out = k;
    return wce * ce + wkd * k;
}

typedef struct loss_gpu {
    vk_buf z, t, labels, dz, params, metrics, scratch;
    vk_seq *seq;
} loss_gpu;

/* Uploads a case and records one op_classifier_loss (grad: with d logits). */
static void loss_gpu_make(loss_gpu *g, const loss_case *c, int kd, int grad)
{
    snlvk_context *ctx = h_context();
    size_t nc = (size_t)c->n * c->classes;
    g->z = upload(c->z, nc * 4);
    g->t = upload(c->t, nc * 4);
    g->labels = upload(c->labels, (size_t)c->n * 4);
    g->dz = upload(NULL, nc * 4);
    g->scratch = upload(NULL, loss_scratch_bytes((uint32_t)c->n));
    CHECK_OK(step_params_alloc(ctx, &g->params));
    CHECK_OK(loss_metrics_alloc(ctx, &g->metrics));
    CHECK_OK(vk_seq_create(ctx, &g->seq));
    CHECK_OK(vk_seq_begin(g->seq, 0));
    loss_args a = {.logits = &g->z, .labels = &g->labels, .teacher = kd ? &g->t : NULL,
                   .dlogits = grad ? &g->dz : NULL, .params = &g->params, .metrics = &g->metrics,
                   .scratch = &g->scratch, .n = (uint32_t)c->n, .classes = (uint32_t)c->classes};
    CHECK_OK(op_classifier_loss(g->seq, ctx, &a));
    CHECK_OK(vk_seq_end(g->seq));
}

static void loss_gpu_free(loss_gpu *g)
{
    snlvk_context *ctx = h_context();
    vk_seq_destroy(g->seq);
    vk_buf_free(ctx, &g->z), vk_buf_free(ctx, &g->t), vk_buf_free(ctx, &g->labels), vk_buf_free(ctx, &g->dz);
    vk_buf_free(ctx, &g->params), vk_buf_free(ctx, &g->metrics), vk_buf_free(ctx, &g->scratch);
}

static void set_loss_params(const vk_buf *b, float T, float wce, float wkd)
{
    step_params p;
    step_params_default(&p);
    p.kd_temperature = T;
    p.ce_weight = wce;
    p.kd_weight = wkd;
    CHECK_OK(step_params_write(h_context(), b, &p));
}

/* One run of the loss at (n, classes), checked against the references. */
static void check_loss(int n, int classes, int kd, float T, float wce, float wkd)
{
    snlvk_context *ctx = h_context();
    loss_case c;
    loss_case_make(&c, n, classes, 4.0f);
    loss_gpu g;
    loss_gpu_make(&g, &c, kd, 1);
    set_loss_params(&g.params, T, wce, wkd);
    size_t nc = (size_t)n * classes;
    h_poison(&g.dz, nc);
    CHECK_OK(vk_seq_run(g.seq));
    float *dz = malloc(nc * 4);
    double *ref = malloc(nc * sizeof(double));
    CHECK_OK(vk_buf_read(ctx, &g.dz, 0, dz, nc * 4));
    loss_metrics m;
    CHECK_OK(loss_metrics_read(ctx, &g.metrics, &m));
    double ce, k;
    ref_total(&c, c.zd, kd, T, wce, wkd, ref, &ce, &k);
    double err = h_rel_err(dz, ref, nc);
    CHECK(err < 1e-5, "n=%d classes=%d kd=%d T=%g w=%g/%g: d logits rel err %.3g", n, classes, kd, (double)T,
          (double)wce, (double)wkd, err);
    CHECK(rel1(m.last_ce, ce) < 1e-5, "n=%d classes=%d: CE %.9g, ref %.9g", n, classes, (double)m.last_ce, ce);
    CHECK(rel1(m.ce_sum, ce * n) < 1e-5, "n=%d classes=%d: CE sum %.9g, ref %.9g", n, classes, (double)m.ce_sum,
          ce * n);
    if (kd) {
        CHECK(rel1(m.last_kd, k) < 1e-5, "n=%d classes=%d T=%g: KD %.9g, ref %.9g", n, classes, (double)T,
              (double)m.last_kd, k);
    } else {
        CHECK(m.last_kd == 0 && m.kd_sum == 0, "KD without a teacher: %g", (double)m.last_kd);
    }
    int t1 = ref_topk_correct(c.zd, c.labels, n, classes, 1), t5 = ref_topk_correct(c.zd, c.labels, n, classes, 5);
    CHECK((int)m.top1 == t1 && (int)m.top5 == t5, "n=%d classes=%d: top1 %u top5 %u, ref %d %d", n, classes, m.top1,
          m.top5, t1, t5);
    CHECK(m.examples == (uint32_t)n && m.steps == 1, "examples %u steps %u", m.examples, m.steps);
    free(dz), free(ref);
    loss_gpu_free(&g);
    loss_case_free(&c);
}

/* NaN logits (a diverged net) are never counted correct: not when the label's logit is
 * NaN, and not when another logit is */
static void test_loss_nan_not_correct(void)
{
    snlvk_context *ctx = h_context();
    loss_case c;
    loss_case_make(&c, 3, 10, 4.0f);
    for (int i = 0; i < 10; i++) c.z[i] = NAN; /* row 0: all NaN */
    c.z[10 + c.labels[1]] = NAN;               /* row 1: the label's logit */
    c.z[20 + (c.labels[2] + 1) % 10] = NAN;     /* row 2: another logit ... */
    c.z[20 + c.labels[2]] = 1e6f;               /* ... and the label's is the largest finite one */
    loss_gpu g;
    loss_gpu_make(&g, &c, 0, 0);
    set_loss_params(&g.params, 4.0f, 1.0f, 0.0f);
    CHECK_OK(vk_seq_run(g.seq));
    loss_metrics m;
    CHECK_OK(loss_metrics_read(ctx, &g.metrics, &m));
    CHECK(m.top1 == 0, "rows with NaN logits counted %u top-1 hits", m.top1);
    CHECK(m.top5 == 1, "top-5 hits %u, expected 1 (the row whose label logit is finite and largest)", m.top5);
    loss_gpu_free(&g);
    loss_case_free(&c);
}

static const int loss_sizes[][2] = {{1, 10}, {7, 10}, {1, 100}, {7, 100}, {1, 3}, {7, 3}, {130, 10}};
enum { N_LOSS_SIZES = sizeof loss_sizes / sizeof loss_sizes[0] };

static void test_loss_ce(void)
{
    for (int i = 0; i < N_LOSS_SIZES; i++) check_loss(loss_sizes[i][0], loss_sizes[i][1], 0, 4.0f, 1.0f, 1.0f);
}

static void test_loss_kd(void)
{
    for (int i = 0; i < N_LOSS_SIZES; i++) {
        check_loss(loss_sizes[i][0], loss_sizes[i][1], 1, 4.0f, 1.0f, 1.0f);
        check_loss(loss_sizes[i][0], loss_sizes[i][1], 1, 1.5f, 1.0f, 1.0f);
    }
    /* the KD gradient alone, and weighted sums */
    check_loss(7, 100, 1, 4.0f, 0.0f, 1.0f);
    check_loss(7, 10, 1, 2.0f, 0.5f, 3.0f);
}

/* The GPU gradient against central differences of the double reference loss. */
static void check_finite_diff(int n, int classes, int kd, float T)
{
    snlvk_context *ctx = h_context();
    loss_case c;
    loss_case_make(&c, n, classes, 3.0f);
    loss_gpu g;
    loss_gpu_make(&g, &c, kd, 1);
    set_loss_params(&g.params, T, 1.0f, 1.0f);
    size_t nc = (size_t)n * classes;
    h_poison(&g.dz, nc);
    CHECK_OK(vk_seq_run(g.seq));
    float *dz = malloc(nc * 4);
    CHECK_OK(vk_buf_read(ctx, &g.dz, 0, dz, nc * 4));
    enum { SAMPLES = 24 };
    float got[SAMPLES];
    double fd[SAMPLES];
    double *z = malloc(nc * sizeof(double));
    memcpy(z, c.zd, nc * sizeof(double));
    const double h = 1e-5;
    for (int s = 0; s < SAMPLES; s++) {
        size_t i = s < (int)nc ? (size_t)s * 7919 % nc : (size_t)rand_int((int)nc);
        double x = z[i];
        z[i] = x + h;
        double fp = ref_total(&c, z, kd, T, 1, 1, NULL, NULL, NULL);
        z[i] = x - h;
        double fm = ref_total(&c, z, kd, T, 1, 1, NULL, NULL, NULL);
        z[i] = x;
        fd[s] = (fp - fm) / (2 * h);
        got[s] = dz[i];
    }
    double err = h_rel_err(got, fd, SAMPLES);
    CHECK(err < 1e-5, "n=%d classes=%d kd=%d T=%g: gradient vs finite differences rel err %.3g", n, classes, kd,
          (double)T, err);
    free(z), free(dz);
    loss_gpu_free(&g);
    loss_case_free(&c);
}

static void test_loss_finite_diff(void)
{
    check_finite_diff(7, 10, 0, 4.0f);
    check_finite_diff(1, 100, 0, 4.0f);
    check_finite_diff(7, 10, 1, 4.0f);
    check_finite_diff(7, 3, 1, 4.0f);
    check_finite_diff(1, 100, 1, 2.5f);
}

/* One recorded loss replayed 3 times on new batches (and a new T): the metrics
 * accumulate on the device; a host fill and a recorded fill reset them. */
static void test_loss_metrics(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 7, C = 100 };
    loss_case c[3];
    for (int r = 0; r < 3; r++) loss_case_make(&c[r], N, C, 4.0f);
    loss_gpu g;
    loss_gpu_make(&g, &c[0], 1, 1);
    const float temps[3] = {4.0f, 2.0f, 1.5f};
    double ce_sum = 0, kd_sum = 0, ce = 0, k = 0;
    int t1 = 0, t5 = 0;
    for (int r = 0; r < 3; r++) {
        CHECK_OK(vk_buf_write(ctx, &g.z, 0, c[r].z, N * C * 4));
        CHECK_OK(vk_buf_write(ctx, &g.t, 0, c[r].t, N * C * 4));
        CHECK_OK(vk_buf_write(ctx, &g.labels, 0, c[r].labels, N * 4));
        set_loss_params(&g.params, temps[r], 1.0f, 1.0f);
        CHECK_OK(vk_seq_run(g.seq));
        ref_total(&c[r], c[r].zd, 1, temps[r], 1, 1, NULL, &ce, &k);
        ce_sum += ce * N;
        kd_sum += k * N;
        t1 += ref_topk_correct(c[r].zd, c[r].labels, N, C, 1);
        t5 += ref_topk_correct(c[r].zd, c[r].labels, N, C, 5);
    }
    loss_metrics m;
    CHECK_OK(loss_metrics_read(ctx, &g.metrics, &m));
    CHECK(rel1(m.ce_sum - m.ce_comp, ce_sum) < 1e-5, "CE sum %.9g ref %.9g", (double)m.ce_sum, ce_sum);
    CHECK(rel1(m.kd_sum - m.kd_comp, kd_sum) < 1e-5, "KD sum %.9g ref %.9g", (double)m.kd_sum, kd_sum);
    CHECK(rel1(m.last_ce, ce) < 1e-5 && rel1(m.last_kd, k) < 1e-5, "last %g %g, ref %g %g", (double)m.last_ce,
          (double)m.last_kd, ce, k);
    CHECK((int)m.top1 == t1 && (int)m.top5 == t5, "top1 %u top5 %u, ref %d %d", m.top1, m.top5, t1, t5);
    CHECK(m.examples == 3 * N && m.steps == 3, "examples %u steps %u", m.examples, m.steps);

    CHECK_OK(loss_metrics_reset(ctx, &g.metrics));
    unsigned char raw[LOSS_METRICS_SIZE];
    CHECK_OK(vk_buf_read(ctx, &g.metrics, 0, raw, sizeof raw));
    int nonzero = 0;
    for (size_t i = 0; i < sizeof raw; i++) nonzero += raw[i] != 0;
    CHECK(nonzero == 0, "%d nonzero bytes after reset", nonzero);

    /* a recorded reset before the loss: every run leaves exactly one step's metrics */
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    CHECK_OK(op_loss_metrics_reset(s, &g.metrics));
    loss_args a = {.logits = &g.z, .labels = &g.labels, .teacher = NULL, .dlogits = NULL, .params = &g.params,
                   .metrics = &g.metrics, .scratch = &g.scratch, .n = N, .classes = C};
    CHECK_OK(op_classifier_loss(s, ctx, &a)); /* evaluation: no teacher, no gradient */
    CHECK_OK(vk_seq_end(s));
    h_poison(&g.dz, N * C);
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(loss_metrics_read(ctx, &g.metrics, &m));
    ce = ref_cross_entropy(c[2].zd, c[2].labels, NULL, N, C);
    CHECK(rel1(m.ce_sum, ce * N) < 1e-5 && m.kd_sum == 0, "eval CE sum %g ref %g", (double)m.ce_sum, ce * N);
    CHECK(m.examples == N && m.steps == 1 && (int)m.top1 == ref_topk_correct(c[2].zd, c[2].labels, N, C, 1),
          "eval examples %u steps %u top1 %u", m.examples, m.steps, m.top1);
    float dz0;
    CHECK_OK(vk_buf_read(ctx, &g.dz, 0, &dz0, 4));
    CHECK(isnan(dz0), "evaluation wrote the gradient");
    vk_seq_destroy(s);

    /* a label out of range makes the loss NaN and never counts as correct */
    int bad[N];
    memcpy(bad, c[2].labels, sizeof bad);
    bad[3] = C;
    CHECK_OK(vk_buf_write(ctx, &g.labels, 0, bad, sizeof bad));
    CHECK_OK(loss_metrics_reset(ctx, &g.metrics));
    CHECK_OK(vk_seq_run(g.seq));
    CHECK_OK(loss_metrics_read(ctx, &g.metrics, &m));
    CHECK(isnan(m.last_ce), "out-of-range label: CE %g", (double)m.last_ce);
    CHECK(m.top5 <= N - 1, "out-of-range label counted as correct");

    loss_gpu_free(&g);
    for (int r = 0; r < 3; r++) loss_case_free(&c[r]);
}

/* ---- optimisers ---- */

enum { N_TENSORS = 3 };
/* the last one needs the grid-stride loop (over 4096 x 256 invocations of four floats) */
static const uint32_t opt_sizes[N_TENSORS] = {1, 1000, 4194311};
static const float opt_wd[N_TENSORS] = {0.0f, 5e-4f, 1e-2f};

typedef struct opt_tensor {
    uint32_t n;
    float *p, *g, *s1, *s2;        /* host copies: param, grad, state */
    double *rp, *rs1, *rs2;        /* reference */
    vk_buf bp, bg, bs1, bs2;
} opt_tensor;

static void opt_make(opt_tensor *t, uint32_t n, int states)
{
    t->n = n;
    t->p = calloc(n, 4), t->g = calloc(n, 4), t->s1 = calloc(n, 4), t->s2 = calloc(n, 4);
    h_fill(t->p, n, -1, 1);
    t->rp = h_to_double(t->p, n);
    t->rs1 = calloc(n, sizeof(double)), t->rs2 = calloc(n, sizeof(double));
    t->bp = upload(t->p, (size_t)n * 4);
    t->bg = upload(NULL, (size_t)n * 4);
    /* Adam's moments start at zero; the SGD momentum buffer starts as garbage, which the
     * first step must ignore */
    for (uint32_t i = 0; i < n; i++) t->s1[i] = states == 2 ? 0.0f : NAN;
    t->bs1 = upload(t->s1, (size_t)n * 4);
    t->bs2 = upload(NULL, (size_t)n * 4);
}

static void opt_new_grad(opt_tensor *t, float scale)
{
    h_fill(t->g, t->n, -scale, scale);
    CHECK_OK(vk_buf_write(h_context(), &t->bg, 0, t->g, (size_t)t->n * 4));
}

static void opt_free(opt_tensor *t)
{
    snlvk_context *ctx = h_context();
    vk_buf_free(ctx, &t->bp), vk_buf_free(ctx, &t->bg), vk_buf_free(ctx, &t->bs1), vk_buf_free(ctx, &t->bs2);
    free(t->p), free(t->g), free(t->s1), free(t->s2), free(t->rp), free(t->rs1), free(t->rs2);
}

static void check_vec(const char *what, int tensor, const vk_buf *b, const double *ref, uint32_t n)
{
    float *x = malloc((size_t)n * 4);
    CHECK_OK(vk_buf_read(h_context(), b, 0, x, (size_t)n * 4));
    double err = h_rel_err(x, ref, n);
    CHECK(err < 1e-5, "tensor %d (%u): %s rel err %.3g", tensor, n, what, err);
    free(x);
}

/* The parameter change p - p0, which is what the update computes (p itself is dominated
 * by p0). */
static void check_delta(const char *what, int tensor, const opt_tensor *t, const float *p0)
{
    float *x = malloc((size_t)t->n * 4);
    float *dx = malloc((size_t)t->n * 4);
    double *dr = malloc((size_t)t->n * sizeof(double));
    CHECK_OK(vk_buf_read(h_context(), &t->bp, 0, x, (size_t)t->n * 4));
    for (uint32_t i = 0; i < t->n; i++) {
        dx[i] = x[i] - p0[i];
        dr[i] = t->rp[i] - p0[i];
    }
    double err = h_rel_err(dx, dr, t->n);
    CHECK(err < 2e-4, "tensor %d (%u): %s update rel err %.3g", tensor, t->n, what, err);
    free(x), free(dx), free(dr);
}

static void test_adam(void)
{
    snlvk_context *ctx = h_context();
    opt_tensor t[N_TENSORS];
    float *p0[N_TENSORS];
    for (int i = 0; i < N_TENSORS; i++) {
        opt_make(&t[i], opt_sizes[i], 2);
        p0[i] = malloc(opt_sizes[i] * 4);
        memcpy(p0[i], t[i].p, opt_sizes[i] * 4);
    }
    vk_buf params;
    CHECK_OK(step_params_alloc(ctx, &params));
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    /* tensor i in parameter group 2*i+1: the group index must be honoured */
    for (int i = 0; i < N_TENSORS; i++)
        CHECK_OK(op_adam(s, ctx, &params, (uint32_t)(2 * i + 1), &t[i].bp, &t[i].bg, &t[i].bs1, &t[i].bs2,
                         t[i].n));
    CHECK_OK(vk_seq_end(s));
    for (int step = 1; step <= 3; step++) {
        step_params sp;
        step_params_default(&sp);
        sp.adam_step = (uint32_t)step;
        for (int g = 0; g < STEP_PARAMS_GROUPS; g++) sp.lr[g] = NAN, sp.weight_decay[g] = NAN; /* unused groups */
        for (int i = 0; i < N_TENSORS; i++) {
            sp.lr[2 * i + 1] = 0.01f * (float)(i + 1) / (float)step; /* a schedule: lr changes every step */
            sp.weight_decay[2 * i + 1] = opt_wd[i];
        }
        CHECK_OK(step_params_write(ctx, &params, &sp));
        for (int i = 0; i < N_TENSORS; i++) {
            opt_new_grad(&t[i], 1.0f + (float)i);
            double *gd = h_to_double(t[i].g, t[i].n);
            ref_adam_step(t[i].rp, gd, t[i].rs1, t[i].rs2, t[i].n, sp.lr[2 * i + 1], sp.adam_beta1, sp.adam_beta2,
                          sp.adam_eps, opt_wd[i], step);
            free(gd);
        }
        CHECK_OK(vk_seq_run(s));
    }
    for (int i = 0; i < N_TENSORS; i++) {
        check_vec("param", i, &t[i].bp, t[i].rp, t[i].n);
        check_vec("exp_avg", i, &t[i].bs1, t[i].rs1, t[i].n);
        check_vec("exp_avg_sq", i, &t[i].bs2, t[i].rs2, t[i].n);
        check_delta("Adam", i, &t[i], p0[i]);
        opt_free(&t[i]);
        free(p0[i]);
    }
    vk_seq_destroy(s);
    vk_buf_free(ctx, &params);
}

static void test_sgd(void)
{
    snlvk_context *ctx = h_context();
    opt_tensor t[N_TENSORS + 1];
    float *p0[N_TENSORS + 1];
    for (int i = 0; i <= N_TENSORS; i++) {
        opt_make(&t[i], i < N_TENSORS ? opt_sizes[i] : 37, 1);
        p0[i] = malloc(t[i].n * 4);
        memcpy(p0[i], t[i].p, t[i].n * 4);
    }
    vk_buf params;
    CHECK_OK(step_params_alloc(ctx, &params));
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    for (int i = 0; i < N_TENSORS; i++)
        CHECK_OK(op_sgd(s, ctx, &params, (uint32_t)i, &t[i].bp, &t[i].bg, &t[i].bs1, t[i].n));
    /* the extra tensor has no momentum buffer: plain SGD in group 6 */
    CHECK_OK(op_sgd(s, ctx, &params, 6, &t[N_TENSORS].bp, &t[N_TENSORS].bg, NULL, t[N_TENSORS].n));
    CHECK_OK(vk_seq_end(s));
    for (int step = 1; step <= 3; step++) {
        step_params sp;
        step_params_default(&sp);
        sp.momentum = 0.9f;
        sp.sgd_first_step = step == 1;
        for (int i = 0; i < N_TENSORS; i++) {
            sp.lr[i] = 0.1f * (float)(i + 1) * (float)(4 - step); /* lr changes between replays */
            sp.weight_decay[i] = opt_wd[i];
        }
        sp.lr[6] = 0.05f * (float)step;
        sp.weight_decay[6] = 5e-4f;
        CHECK_OK(step_params_write(ctx, &params, &sp));
        for (int i = 0; i <= N_TENSORS; i++) {
            opt_new_grad(&t[i], 1.0f);
            double *gd = h_to_double(t[i].g, t[i].n);
            int grp = i < N_TENSORS ? i : 6;
            ref_sgd_step(t[i].rp, gd, i < N_TENSORS ? t[i].rs1 : NULL, t[i].n, sp.lr[grp],
                         i < N_TENSORS ? sp.momentum : 0.0, sp.weight_decay[grp], step == 1);
            free(gd);
        }
        CHECK_OK(vk_seq_run(s));
    }
    for (int i = 0; i <= N_TENSORS; i++) {
        check_vec("param", i, &t[i].bp, t[i].rp, t[i].n);
        if (i < N_TENSORS) check_vec("momentum buffer", i, &t[i].bs1, t[i].rs1, t[i].n);
        check_delta("SGD", i, &t[i], p0[i]);
        opt_free(&t[i]);
        free(p0[i]);
    }
    vk_seq_destroy(s);
    vk_buf_free(ctx, &params);
}

static void test_zero(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 1001 };
    float x[N];
    h_fill(x, N, -1, 1);
    vk_buf b = upload(x, sizeof x);
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    CHECK_OK(op_zero(s, &b));
    CHECK_OK(vk_seq_end(s));
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_buf_read(ctx, &b, 0, x, sizeof x));
    int nonzero = 0;
    for (int i = 0; i < N; i++) nonzero += x[i] != 0.0f;
    CHECK(nonzero == 0, "%d entries not zeroed", nonzero);
    vk_seq_destroy(s);
    vk_buf_free(ctx, &b);
}

/* ---- masks ---- */

static const float EPS = 1e-2f;

/* Mask values around eps: exactly eps, its neighbours, negatives, NaN, 1. */
static void mask_values(float *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        switch (rand_int(8)) {
        case 0: c[i] = EPS; break;
        case 1: c[i] = nextafterf(EPS, 1.0f); break;
        case 2: c[i] = nextafterf(EPS, 0.0f); break;
        case 3: c[i] = -h_uniform(0, 1); break;
        case 4: c[i] = i % 3 ? 1.0f : NAN; break;
        default: c[i] = h_uniform(-0.05f, 1.5f); break;
        }
    }
}

static void test_mask_count_binarize(void)
{
    snlvk_context *ctx = h_context();
    enum { M = 4 };
    const uint32_t sizes[M] = {1, 7, 1000, 70001};
    const uint32_t weights[M] = {1, 1, 1, 16};
    float *c[M];
    vk_buf b[M];
    uint32_t counts[M + 2];
    for (int i = 0; i < M + 2; i++) counts[i] = 0xdeadbeef;
    vk_buf bc = upload(counts, sizeof counts);
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    for (int i = 0; i < M; i++) {
        c[i] = malloc(sizes[i] * 4);
        mask_values(c[i], sizes[i]);
        if (i == 0) c[i][0] = EPS; /* a lone entry exactly at eps: not counted */
        b[i] = upload(c[i], sizes[i] * 4);
        /* slots out of order, one left untouched */
        CHECK_OK(op_mask_count(s, ctx, &b[i], sizes[i], EPS, &bc, (uint32_t)(M - i), weights[i]));
    }
    CHECK_OK(vk_seq_end(s));
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_seq_run(s)); /* counts overwrite: a replay gives the same numbers */
    CHECK_OK(vk_buf_read(ctx, &bc, 0, counts, sizeof counts));
    CHECK(counts[0] == 0xdeadbeef && counts[M + 1] == 0xdeadbeef, "a count outside its slot");
    for (int i = 0; i < M; i++) {
        double *d = h_to_double(c[i], sizes[i]);
        long ref = ref_mask_count(d, sizes[i], (double)EPS) * (long)weights[i];
        CHECK((long)counts[M - i] == ref, "mask %d (%u): count %u, ref %ld", i, sizes[i], counts[M - i], ref);
        free(d);
    }
    vk_seq_destroy(s);

    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    for (int i = 0; i < M; i++) CHECK_OK(op_mask_binarize(s, ctx, &b[i], sizes[i], EPS));
    CHECK_OK(vk_seq_end(s));
    CHECK_OK(vk_seq_run(s));
    for (int i = 0; i < M; i++) {
        double *d = h_to_double(c[i], sizes[i]);
        ref_mask_binarize(d, sizes[i], (double)EPS);
        CHECK_OK(vk_buf_read(ctx, &b[i], 0, c[i], sizes[i] * 4));
        long wrong = 0;
        for (uint32_t j = 0; j < sizes[i]; j++) wrong += (double)c[i][j] != d[j];
        CHECK(wrong == 0, "mask %d: %ld entries binarized wrong", i, wrong);
        free(d);
        free(c[i]);
        vk_buf_free(ctx, &b[i]);
    }
    vk_seq_destroy(s);
    vk_buf_free(ctx, &bc);
}

/* Global top-B over several masks, with ties across mask boundaries, NaN, -inf, -0. */
static void check_keep_top(int n_masks, const uint32_t *sizes, const float *values, uint64_t total,
                           const uint64_t *budgets, int n_budgets)
{
    snlvk_context *ctx = h_context();
    vk_buf b[8];
    const vk_buf *bp[8];
    for (int m = 0; m < n_masks; m++) {
        b[m] = upload(NULL, sizes[m] * 4);
        bp[m] = &b[m];
    }
    float *got = malloc(total * 4);
    double *ref = malloc(total * sizeof(double));
    for (int k = 0; k < n_budgets; k++) {
        uint64_t off = 0;
        for (int m = 0; m < n_masks; m++) {
            CHECK_OK(vk_buf_write(ctx, &b[m], 0, values + off, sizes[m] * 4));
            off += sizes[m];
        }
        mask_cut cut;
        CHECK_OK(mask_keep_top(ctx, bp, sizes, n_masks, budgets[k], &cut));
        off = 0;
        for (int m = 0; m < n_masks; m++) {
            CHECK_OK(vk_buf_read(ctx, &b[m], 0, got + off, sizes[m] * 4));
            off += sizes[m];
        }
        for (uint64_t i = 0; i < total; i++) ref[i] = values[i];
        ref_mask_keep_top(ref, (long)total, (long)budgets[k]);
        uint64_t ones = 0, wrong = 0, want = budgets[k] < total ? budgets[k] : total;
        for (uint64_t i = 0; i < total; i++) {
            ones += got[i] == 1.0f;
            wrong += (double)got[i] != ref[i];
        }
        CHECK(ones == want && wrong == 0 && cut.kept == want, "total %llu B %llu: %llu ones (want %llu), %llu wrong",
              (unsigned long long)total, (unsigned long long)budgets[k], (unsigned long long)ones,
              (unsigned long long)want, (unsigned long long)wrong);
    }
    for (int m = 0; m < n_masks; m++) vk_buf_free(ctx, &b[m]);
    free(got), free(ref);
}

static void test_mask_keep_top(void)
{
    /* few distinct values: every budget lands inside a tie group */
    {
        const uint32_t sizes[3] = {5, 130, 37};
        enum { T = 5 + 130 + 37 };
        float v[T];
        const float levels[5] = {0.0f, -0.0f, 0.25f, 0.5f, 1.0f};
        for (int i = 0; i < T; i++) v[i] = levels[rand_int(5)];
        v[3] = NAN, v[40] = NAN, v[41] = -INFINITY, v[150] = INFINITY, v[7] = 1.0f, v[170] = 1.0f;
        uint64_t budgets[] = {0, 1, 2, 3, 17, 60, 61, 100, T - 3, T - 2, T - 1, T, T + 5};
        check_keep_top(3, sizes, v, T, budgets, (int)(sizeof budgets / sizeof budgets[0]));
    }
    /* larger, many values, a budget in the middle */
    {
        const uint32_t sizes[2] = {70001, 65536};
        const uint64_t T = 70001 + 65536;
        float *v = malloc(T * 4);
        for (uint64_t i = 0; i < T; i++) v[i] = (float)rand_int(1000) / 997.0f - 0.1f;
        uint64_t budgets[] = {1, 50000, T / 2 + 1};
        check_keep_top(2, sizes, v, T, budgets, 3);
        free(v);
    }
}

int main(void)
{
    RUN(test_step_params);
    RUN(test_loss_ce);
    RUN(test_loss_nan_not_correct);
    RUN(test_loss_kd);
    RUN(test_loss_finite_diff);
    RUN(test_loss_metrics);
    RUN(test_adam);
    RUN(test_sgd);
    RUN(test_zero);
    RUN(test_mask_count_binarize);
    RUN(test_mask_keep_top);
    return h_finish();
}
