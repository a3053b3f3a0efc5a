/* SNL end to end on a small resnet8-mini (batch 8, 1x8x8 random images, 3 classes):
 *   a. the mask phase (Adam on weights and masks, large lambda) drives the ReLU count
 *      below a budget within a step cap;
 *   b. binarization at eps keeps exactly the count nn_trainer_count_relus reported, and
 *      mask_keep_top keeps exactly B entries (the B largest, ties to the lowest global
 *      index), also when most mask values tie;
 *   c. a fine-tune trainer (SGD, train_masks = 0) changes weights but not one mask bit;
 *   d. with every mask 0 the net is affine in eval mode (f(a x + b y) = a f(x) + b f(y)
 *      for a + b = 1) and with every mask 1 it is not;
 *   e. every masked-ReLU output is exactly max(x, 0) with masks 1 (and exactly x with
 *      masks 0).
 * The tests share one model: b needs the masks a trained, c the masks b binarized. */
#include <stdint.h>

#include "harness.h"
#include "nn/trainer.h"
#include "ops/mask.h"

#define BATCH 8
#define SIZE 8
#define CLASSES 3
#define EPS 1e-2f
#define MAX_SITES 64

static nn_model *g_model;
static int g_sites;               /* masked-ReLU sites, in model order */
static int g_mask_param[MAX_SITES];
static uint64_t g_total;          /* all ReLUs (= mask entries: pixel masks) */
static int g_phase_done;          /* a reached the budget */
static uint64_t g_counts[MAX_SITES], g_count;  /* the count a ended with */
static float *g_soft;             /* the soft masks a ended with, all sites concatenated */

static float g_images[3][BATCH * SIZE * SIZE];
static int32_t g_labels[BATCH];

static void make_data(void)
{
    for (int b = 0; b < 3; b++) h_fill(g_images[b], BATCH * SIZE * SIZE, -1.0f, 1.0f);
    for (int i = 0; i < BATCH; i++) g_labels[i] = (int32_t)(h_uniform(0.0f, (float)CLASSES - 1e-3f));
}

static float *read_buf(const vk_buf *b, size_t n)
{
    float *h = malloc(n * sizeof *h);
    CHECK_OK(vk_buf_read(g_model->ctx, b, 0, h, n * sizeof *h));
    return h;
}

static nn_param *mask_of(int site) { return &g_model->params[g_mask_param[site]]; }

/* All masks, concatenated in model order (the global order of mask_keep_top). */
static float *read_masks(void)
{
    float *all = malloc(g_total * sizeof *all);
    uint64_t off = 0;
    for (int s = 0; s < g_sites; s++) {
        nn_param *p = mask_of(s);
        CHECK_OK(vk_buf_read(g_model->ctx, &p->value, 0, all + off, (size_t)p->numel * 4));
        off += p->numel;
    }
    return all;
}

static void write_masks(const float *all)
{
    uint64_t off = 0;
    for (int s = 0; s < g_sites; s++) {
        nn_param *p = mask_of(s);
        CHECK_OK(vk_buf_write(g_model->ctx, &p->value, 0, all + off, (size_t)p->numel * 4));
        off += p->numel;
    }
}

static void fill_masks(float v)
{
    float *all = malloc(g_total * sizeof *all);
    for (uint64_t i = 0; i < g_total; i++) all[i] = v;
    write_masks(all);
    free(all);
}

static void binarize_all(float eps)
{
    vk_seq *q = NULL;
    CHECK_OK(vk_seq_create(g_model->ctx, &q));
    if (!q) return;
    CHECK_OK(vk_seq_begin(q, 0));
    for (int s = 0; s < g_sites; s++) CHECK_OK(op_mask_binarize(q, g_model->ctx, &mask_of(s)->value, mask_of(s)->numel, eps));
    CHECK_OK(vk_seq_end(q));
    CHECK_OK(vk_seq_run(q));
    vk_seq_destroy(q);
}

static snlvk_status keep_top(uint64_t budget, mask_cut *cut)
{
    const vk_buf *masks[MAX_SITES];
    uint32_t sizes[MAX_SITES];
    for (int s = 0; s < g_sites; s++) masks[s] = &mask_of(s)->value, sizes[s] = mask_of(s)->numel;
    return mask_keep_top(g_model->ctx, masks, sizes, g_sites, budget, cut);
}

static uint64_t sum_counts(const uint64_t *c)
{
    uint64_t t = 0;
    for (int s = 0; s < g_sites; s++) t += c[s];
    return t;
}

static void setup(void)
{
    snlvk_context *ctx = h_context();
    make_data();
    CHECK_OK(nn_model_create(ctx, "resnet8-mini", BATCH, 1, SIZE, SIZE, CLASSES, NN_PIXEL, &g_model));
    if (!g_model) return;
    CHECK_OK(nn_model_init(g_model, 7));
    g_model->store_relu_inputs = 1; /* check_sites reads every masked ReLU's input */
    for (int i = 0; i < g_model->n_ops; i++)
        if (g_model->ops[i].kind == NN_MRELU && g_sites < MAX_SITES) g_mask_param[g_sites++] = g_model->ops[i].param[0];
    g_total = nn_total_relus(g_model);
    uint64_t entries = 0;
    for (int s = 0; s < g_sites; s++) entries += mask_of(s)->numel;
    /* stem 16x8x8, layer1 2x16x8x8, layer2 2x32x4x4, layer3 2x64x2x2 */
    CHECK(g_sites == 7, "resnet8-mini has %d masked-ReLU sites, expected 7", g_sites);
    CHECK(g_total == 4608 && entries == g_total, "resnet8-mini at 8x8: %llu ReLUs, %llu mask entries, expected 4608",
          (unsigned long long)g_total, (unsigned long long)entries);
}

/* a. Adam on weights (lr 1e-3) and masks (lr 0.05) with lambda 1e-2, several times the
 * data's mask gradient here (~1e-3): every mask falls towards 0 (Adam moves each by about
 * the lr per step, so ~20 steps from 1 to eps), the ones the loss needs more slowly, and
 * the count must reach 30% of the total within the step cap. The count is read after
 * every step, as SNL's --check-every does: with a Lasso term that dominates completely
 * (lambda 1) every mask crosses eps in the same step (4608 -> 0), and with lambda 1e-3
 * the budget takes ~90 steps. */
static void test_mask_phase_reaches_budget(void)
{
    if (!g_model) setup();
    if (!g_model) return;
    const uint64_t budget = g_total * 3 / 10;
    const int cap = 200;
    nn_trainer_opts to = {.optimizer = NN_ADAM, .train_masks = 1};
    nn_trainer *t = NULL;
    CHECK_OK(nn_trainer_create(g_model, NULL, &to, &t));
    if (!t) return;
    t->sp.lr[NN_GROUP_WEIGHTS] = 1e-3f;
    t->sp.lr[NN_GROUP_MASKS] = 0.05f;
    t->sp.snl_lambda = 1e-2f;
    CHECK_OK(nn_trainer_count_relus(t, EPS, g_counts));
    g_count = sum_counts(g_counts);
    CHECK(g_count == g_total, "masks start at 1: %llu of %llu ReLUs counted", (unsigned long long)g_count,
          (unsigned long long)g_total);
    int step = 0;
    while (step < cap && g_count > budget) {
        CHECK_OK(nn_trainer_upload(t, g_images[step % 2], g_labels, BATCH));
        CHECK_OK(nn_trainer_step(t));
        step++;
        CHECK_OK(nn_trainer_count_relus(t, EPS, g_counts));
        g_count = sum_counts(g_counts);
    }
    printf("     mask phase: %llu of %llu ReLUs (budget %llu) after %d steps\n", (unsigned long long)g_count,
           (unsigned long long)g_total, (unsigned long long)budget, step);
    g_phase_done = g_count <= budget;
    CHECK(g_phase_done, "the count is still %llu > budget %llu after %d steps", (unsigned long long)g_count,
          (unsigned long long)budget, cap);
    CHECK(g_count > 0, "every ReLU is gone: the test of b needs some kept");
    loss_metrics mt;
    CHECK_OK(nn_trainer_metrics(t, &mt));
    CHECK(isfinite(mt.last_ce), "the loss is not finite: %g", mt.last_ce);
    nn_trainer_destroy(t);
    g_soft = read_masks();
    /* the count agrees with the masks read back */
    uint64_t host = 0;
    for (uint64_t i = 0; i < g_total; i++) host += g_soft[i] > EPS;
    CHECK(host == g_count, "the device counted %llu ReLUs, the host %llu", (unsigned long long)g_count,
          (unsigned long long)host);
}

static int cmp_desc_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Checks that `got` (read back after mask_keep_top(budget) of `soft`) holds exactly
 * `budget` ones and the rest zeros, on the budget largest entries with ties going to the
 * lowest global index. */
static void check_keep_top(const char *what, const float *soft, const float *got, uint64_t budget)
{
    uint64_t ones = 0, bad = 0;
    for (uint64_t i = 0; i < g_total; i++) {
        ones += got[i] == 1.0f;
        bad += got[i] != 1.0f && got[i] != 0.0f;
    }
    CHECK(bad == 0, "%s: %llu mask entries are neither 0 nor 1", what, (unsigned long long)bad);
    CHECK(ones == budget, "%s: keep_top(%llu) kept %llu", what, (unsigned long long)budget, (unsigned long long)ones);
    /* the cut: the budget-th largest value; everything above it is kept, and of the
     * entries equal to it the first (budget - #above) in global order */
    float *sorted = malloc(g_total * sizeof *sorted);
    memcpy(sorted, soft, g_total * sizeof *sorted);
    qsort(sorted, g_total, sizeof *sorted, cmp_desc_f);
    float thr = budget ? sorted[budget - 1] : INFINITY;
    free(sorted);
    uint64_t above = 0;
    for (uint64_t i = 0; i < g_total; i++) above += soft[i] > thr;
    uint64_t ties_left = budget - above, wrong = 0;
    for (uint64_t i = 0; i < g_total; i++) {
        float want = 0.0f;
        if (soft[i] > thr) want = 1.0f;
        else if (soft[i] == thr && ties_left) want = 1.0f, ties_left--;
        wrong += got[i] != want;
    }
    CHECK(wrong == 0, "%s: %llu entries differ from the B largest (ties to the lowest index)", what,
          (unsigned long long)wrong);
}

/* b. binarization */
static void test_binarize_and_keep_top(void)
{
    if (!g_phase_done) {
        CHECK(0, "needs the mask phase of test_mask_phase_reaches_budget");
        return;
    }
    /* threshold at eps: exactly the reported count, per site too */
    binarize_all(EPS);
    float *bin = read_masks();
    uint64_t off = 0, total_ones = 0, bad = 0;
    for (int s = 0; s < g_sites; s++) {
        uint64_t ones = 0;
        for (uint32_t i = 0; i < mask_of(s)->numel; i++) {
            float v = bin[off + i];
            ones += v == 1.0f;
            bad += v != 1.0f && v != 0.0f;
            bad += (v == 1.0f) != (g_soft[off + i] > EPS);
        }
        CHECK(ones == g_counts[s], "site %d (%s): %llu ones after binarizing, %llu counted", s, mask_of(s)->name,
              (unsigned long long)ones, (unsigned long long)g_counts[s]);
        total_ones += ones;
        off += mask_of(s)->numel;
    }
    CHECK(bad == 0, "%llu entries are not the threshold of the soft masks", (unsigned long long)bad);
    CHECK(total_ones == g_count, "binarize kept %llu, the count was %llu", (unsigned long long)total_ones,
          (unsigned long long)g_count);
    free(bin);

    /* keep_top on the soft masks, with budgets below, at and above the eps count */
    const uint64_t budgets[] = {0, 1, g_count / 2 ? g_count / 2 : 1, g_count, g_count + 17, g_total};
    for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
        write_masks(g_soft);
        mask_cut cut;
        CHECK_OK(keep_top(budgets[k], &cut));
        CHECK(cut.kept == budgets[k], "keep_top(%llu): the cut says %llu kept", (unsigned long long)budgets[k],
              (unsigned long long)cut.kept);
        float *got = read_masks();
        char what[64];
        snprintf(what, sizeof what, "soft masks, B = %llu", (unsigned long long)budgets[k]);
        check_keep_top(what, g_soft, got, budgets[k]);
        free(got);
    }

    /* ties: every mask equal, then three levels with the cut inside the middle one */
    float *tied = malloc(g_total * sizeof *tied);
    for (uint64_t i = 0; i < g_total; i++) tied[i] = 0.5f;
    const uint64_t tb[] = {1, 1000, 2345, g_total - 1};
    for (size_t k = 0; k < sizeof tb / sizeof *tb; k++) {
        write_masks(tied);
        CHECK_OK(keep_top(tb[k], NULL));
        float *got = read_masks();
        char what[64];
        snprintf(what, sizeof what, "all tied, B = %llu", (unsigned long long)tb[k]);
        check_keep_top(what, tied, got, tb[k]);
        free(got);
    }
    uint64_t n_high = 0;
    for (uint64_t i = 0; i < g_total; i++) {
        float u = h_uniform(0.0f, 1.0f);
        tied[i] = u < 0.2f ? 0.9f : u < 0.8f ? 0.3f : -0.1f;
        n_high += tied[i] == 0.9f;
    }
    const uint64_t tb2[] = {n_high, n_high + 1, n_high + 1234};
    for (size_t k = 0; k < sizeof tb2 / sizeof *tb2; k++) {
        write_masks(tied);
        CHECK_OK(keep_top(tb2[k], NULL));
        float *got = read_masks();
        char what[64];
        snprintf(what, sizeof what, "three levels, B = %llu", (unsigned long long)tb2[k]);
        check_keep_top(what, tied, got, tb2[k]);
        free(got);
    }
    free(tied);
    /* leave the threshold-binarized masks for c */
    write_masks(g_soft);
    binarize_all(EPS);
}

/* c. frozen masks through a fine-tune (SGD with momentum and weight decay) */
static void test_finetune_keeps_masks(void)
{
    if (!g_phase_done) {
        CHECK(0, "needs the mask phase of test_mask_phase_reaches_budget");
        return;
    }
    float *before = read_masks();
    int w = nn_find_param(g_model, "layer2.0.conv1.weight");
    CHECK(w >= 0, "no layer2.0.conv1.weight");
    if (w < 0) {
        free(before);
        return;
    }
    nn_param *wp = &g_model->params[w];
    float *w0 = read_buf(&wp->value, wp->numel);
    nn_trainer_opts to = {.optimizer = NN_SGD, .train_masks = 0};
    nn_trainer *t = NULL;
    CHECK_OK(nn_trainer_create(g_model, NULL, &to, &t));
    if (t) {
        t->sp.lr[NN_GROUP_WEIGHTS] = 1e-2f;
        /* a mask learning rate and lambda that would move the masks if they were trained */
        t->sp.lr[NN_GROUP_MASKS] = 1.0f;
        t->sp.snl_lambda = 10.0f;
        t->sp.momentum = 0.9f;
        t->sp.weight_decay[NN_GROUP_WEIGHTS] = 5e-4f;
        t->sp.weight_decay[NN_GROUP_MASKS] = 0.5f;
        for (int i = 0; i < 4; i++) {
            CHECK_OK(nn_trainer_upload(t, g_images[i % 2], g_labels, BATCH));
            CHECK_OK(nn_trainer_step(t));
        }
        nn_trainer_destroy(t);
    }
    float *after = read_masks(), *w1 = read_buf(&wp->value, wp->numel);
    CHECK(memcmp(before, after, g_total * sizeof *after) == 0, "the masks changed during the fine-tune");
    uint32_t changed = 0;
    for (uint32_t i = 0; i < wp->numel; i++) changed += w0[i] != w1[i];
    CHECK(changed > wp->numel / 2, "only %u of %u weights of %s changed", changed, wp->numel, wp->name);
    free(before);
    free(after);
    free(w0);
    free(w1);
}

/* Eval-mode logits of the three input batches x, y and z = a x + b y. */
static void logits_xyz(nn_trainer *t, float a, float b, float *fx, float *fy, float *fz)
{
    float z[BATCH * SIZE * SIZE];
    for (size_t i = 0; i < sizeof z / sizeof *z; i++) z[i] = a * g_images[0][i] + b * g_images[1][i];
    const float *in[3] = {g_images[0], g_images[1], z};
    float *out[3] = {fx, fy, fz};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(nn_trainer_upload(t, in[k], g_labels, BATCH));
        CHECK_OK(nn_trainer_eval(t, BATCH));
        CHECK_OK(vk_buf_read(g_model->ctx, &g_model->tensors[g_model->logits].value, 0, out[k],
                             BATCH * CLASSES * sizeof(float)));
    }
}

/* ||f(z) - a f(x) - b f(y)|| / ||f(x) - f(y)||: the defect of affinity, relative to how
 * much the output moves with the input (not to the bias, which could dwarf it). */
static double affine_defect(float mask_value, float a, float b)
{
    nn_trainer_opts to = {.optimizer = NN_SGD};
    nn_trainer *t = NULL;
    CHECK_OK(nn_trainer_create(g_model, NULL, &to, &t));
    if (!t) return INFINITY;
    fill_masks(mask_value);
    float fx[BATCH * CLASSES], fy[BATCH * CLASSES], fz[BATCH * CLASSES];
    logits_xyz(t, a, b, fx, fy, fz);
    nn_trainer_destroy(t);
    double num = 0, den = 0;
    for (int i = 0; i < BATCH * CLASSES; i++) {
        double d = (double)fz[i] - ((double)a * fx[i] + (double)b * fy[i]), e = (double)fx[i] - fy[i];
        num += d * d;
        den += e * e;
    }
    return den > 0 ? sqrt(num / den) : INFINITY;
}

/* d. Every mask 0 removes every ReLU: in eval mode each layer is then affine (conv and
 * linear weights, BN with running statistics, the residual adds and the average pool are
 * all affine maps), so the whole net is f(x) = A x + c. Then
 *     f(a x + b y) = a A x + b A y + c,   a f(x) + b f(y) = a A x + b A y + (a + b) c,
 * equal exactly when a + b = 1: the bias terms cancel. With masks 1 (ReLUs everywhere)
 * the same identity fails by far more, so this check can fail. */
static void test_linearized_net_is_affine(void)
{
    if (!g_model) setup();
    if (!g_model) return;
    float *keep = read_masks();
    const float a = 0.3f, b = 0.7f;
    double lin = affine_defect(0.0f, a, b), relu = affine_defect(1.0f, a, b);
    printf("     affine defect: %.3g with masks 0, %.3g with masks 1\n", lin, relu);
    CHECK(lin < 1e-4, "masks 0: f(a x + b y) differs from a f(x) + b f(y) by %.3g (relative)", lin);
    CHECK(relu > 1e-2 && relu > 100 * lin, "masks 1: the ReLU net looks affine (defect %.3g, linearized %.3g)", relu,
          lin);
    write_masks(keep);
    free(keep);
}

/* e. masks 1: every masked-ReLU output is exactly max(x, 0); masks 0: exactly x. */
static void check_sites(float mask_value)
{
    nn_trainer_opts to = {.optimizer = NN_SGD};
    nn_trainer *t = NULL;
    CHECK_OK(nn_trainer_create(g_model, NULL, &to, &t));
    if (!t) return;
    fill_masks(mask_value);
    CHECK_OK(nn_trainer_upload(t, g_images[2], g_labels, BATCH));
    CHECK_OK(nn_trainer_eval(t, BATCH));
    for (int i = 0; i < g_model->n_ops; i++) {
        const nn_op *op = &g_model->ops[i];
        if (op->kind != NN_MRELU) continue;
        const nn_tensor *x = &g_model->tensors[op->in], *y = &g_model->tensors[op->out];
        size_t n = (size_t)x->n * x->c * x->h * x->w;
        float *hx = read_buf(&x->value, n), *hy = read_buf(&y->value, n);
        size_t wrong = 0, neg = 0, pos = 0;
        for (size_t k = 0; k < n; k++) {
            float want = mask_value == 1.0f ? (hx[k] > 0 ? hx[k] : 0.0f) : hx[k];
            wrong += hy[k] != want;
            neg += hx[k] < 0, pos += hx[k] > 0;
        }
        CHECK(wrong == 0, "masks %g, site %s: %zu of %zu outputs differ from %s", mask_value, op->site, wrong, n,
              mask_value == 1.0f ? "max(x, 0)" : "x");
        CHECK(neg > 0 && pos > 0, "site %s: the input has %zu negative and %zu positive entries; the check needs both",
              op->site, neg, pos);
        free(hx);
        free(hy);
    }
    nn_trainer_destroy(t);
}

static void test_masks_one_is_relu(void)
{
    if (!g_model) setup();
    if (!g_model) return;
    float *keep = read_masks();
    check_sites(1.0f);
    check_sites(0.0f);
    write_masks(keep);
    free(keep);
}

int main(void)
{
    RUN(test_mask_phase_reaches_budget);
    RUN(test_binarize_and_keep_top);
    RUN(test_finetune_keeps_masks);
    RUN(test_linearized_net_is_affine);
    RUN(test_masks_one_is_relu);
    free(g_soft);
    nn_model_destroy(g_model);
    return h_finish();
}
