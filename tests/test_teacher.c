/* The teacher's logits computed once (no augmentation) against the teacher's forward in
 * every step, on a small resnet8-mini (batch 8, 1x8x8 images, 3 classes) and a synthetic
 * training split of 21 images (two full batches and a short one):
 *   a. run_teacher_logits: row i of the table is the teacher's eval-mode logits of example
 *      i, also for the short last batch (checked against a forward of the examples in
 *      reverse order, so each one sits in another row of the batch);
 *   b. steps through run_next_batch from a shuffled loader (two epochs, so two orders),
 *      gathering each batch's cached rows, against the same batches with the teacher's
 *      forward recorded in the step: the same CE and KD, the same logit gradient after
 *      every step and the same parameters after all of them, for the mask phase (Adam,
 *      masks trained, Lasso) and a fine-tune (SGD, frozen masks);
 *   c. bad uses fail with SNLVK_E_INVALID.
 * Run also with SNLVK_FORCE_STAGING=1: tensors not mapped, every transfer staged. */
#include <stdint.h>

#include "harness.h"
#include "nn/trainer.h"
#include "snl/run.h"

#define BATCH 8
#define SIZE 8
#define CLASSES 3
#define N 21

static snlvk_dataset g_data;

static void make_data(void)
{
    memset(&g_data, 0, sizeof g_data);
    snprintf(g_data.name, sizeof g_data.name, "synthetic");
    g_data.n = N;
    g_data.c = 1;
    g_data.h = g_data.w = SIZE;
    g_data.classes = CLASSES;
    g_data.images = malloc((size_t)N * SIZE * SIZE);
    g_data.labels = malloc(N * sizeof *g_data.labels);
    for (size_t i = 0; i < (size_t)N * SIZE * SIZE; i++) g_data.images[i] = (uint8_t)h_uniform(0.0f, 255.99f);
    for (int i = 0; i < N; i++) g_data.labels[i] = (int32_t)h_uniform(0.0f, (float)CLASSES - 1e-3f);
    for (int c = 0; c < 3; c++) g_data.mean[c] = 0.3f, g_data.std[c] = 0.35f;
}

static void free_data(void)
{
    free(g_data.images);
    free(g_data.labels);
    memset(&g_data, 0, sizeof g_data);
}

static nn_model *make_model(uint64_t seed)
{
    nn_model *m = NULL;
    CHECK_OK(nn_model_create(h_context(), "resnet8-mini", BATCH, 1, SIZE, SIZE, CLASSES, NN_PIXEL, &m));
    if (m) CHECK_OK(nn_model_init(m, seed));
    return m;
}

/* A run over g_data as `snlvk train` sets one up (the staging buffers included). */
static void open_run(run *r)
{
    memset(r, 0, sizeof *r);
    r->ctx = h_context();
    r->train = g_data;
    r->host_images = malloc((size_t)BATCH * SIZE * SIZE * 4);
    r->host_labels = malloc(BATCH * 4);
    r->host_indices = malloc(BATCH * 4);
}

static void close_run(run *r)
{
    snlvk_loader_destroy(r->train_loader);
    free(r->host_images);
    free(r->host_labels);
    free(r->host_indices);
    free(r->teacher_logits);
    memset(r, 0, sizeof *r);
}

static float *read_buf(const vk_buf *b, size_t n)
{
    float *h = malloc(n * sizeof *h);
    CHECK_OK(vk_buf_read(h_context(), b, 0, h, n * sizeof *h));
    return h;
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *scale)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d || e != e ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    if (scale) *scale = s;
    return d;
}

/* Example i normalised, as the loader gives it. */
static void example(int i, float *dst)
{
    for (int k = 0; k < SIZE * SIZE; k++)
        dst[k] = ((float)g_data.images[(size_t)i * SIZE * SIZE + k] / 255.0f - g_data.mean[0]) / g_data.std[0];
}

static void test_cache_rows(void)
{
    make_data();
    nn_model *teacher = make_model(3);
    if (!teacher) return;
    run r;
    open_run(&r);
    CHECK_OK(run_teacher_logits(&r, teacher));
    float *table = r.teacher_logits;
    CHECK(table != NULL, "no table");
    CHECK_OK(run_teacher_logits(&r, teacher));
    CHECK(r.teacher_logits == table, "a second call computed the table again");
    /* the reference: the examples in reverse order, a batch at a time, through a forward of
     * its own */
    vk_seq *q = NULL;
    CHECK_OK(vk_seq_create(h_context(), &q));
    CHECK_OK(vk_seq_begin(q, 0));
    CHECK_OK(nn_record_forward(teacher, q, 0));
    CHECK_OK(vk_seq_end(q));
    float in[BATCH * SIZE * SIZE];
    double worst = 0, scale = 0;
    int zero_rows = 0;
    for (int start = 0; start < N && table; start += BATCH) {
        int count = N - start < BATCH ? N - start : BATCH;
        for (int j = 0; j < BATCH; j++) example(N - 1 - (start + (j < count ? j : 0)), in + j * SIZE * SIZE);
        CHECK_OK(vk_buf_write(h_context(), &teacher->tensors[teacher->input].value, 0, in, sizeof in));
        CHECK_OK(vk_seq_run(q));
        float *got = read_buf(&teacher->tensors[teacher->logits].value, BATCH * CLASSES);
        for (int j = 0; j < count; j++) {
            const float *row = table + (size_t)(N - 1 - (start + j)) * CLASSES;
            double s, d = max_abs_diff(row, got + j * CLASSES, CLASSES, &s);
            worst = d > worst || d != d ? d : worst;
            scale = s > scale ? s : scale;
            zero_rows += row[0] == 0 && row[1] == 0 && row[2] == 0;
        }
        free(got);
    }
    printf("     cached rows against a forward in another order: max |diff| %.3g (logits up to %.3g)\n", worst, scale);
    CHECK(worst <= 1e-5 * scale && scale > 0, "a cached row differs from the teacher's logits by %.3g", worst);
    CHECK(zero_rows == 0, "%d rows of the table are zero", zero_rows);
    vk_seq_destroy(q);
    close_run(&r);
    nn_model_destroy(teacher);
    free_data();
}

/* Two students from the same init, one distilling through the teacher's forward in its
 * step, the other from the cached logits, over the same shuffled batches. */
static void compare_steps(int mask_phase)
{
    make_data();
    nn_model *teacher = make_model(3), *a = make_model(11), *b = make_model(11);
    run r;
    open_run(&r);
    if (!teacher || !a || !b) goto done;
    CHECK_OK(run_teacher_logits(&r, teacher));
    nn_trainer_opts to = {.optimizer = mask_phase ? NN_ADAM : NN_SGD, .train_masks = mask_phase};
    nn_trainer *ta = NULL, *tb = NULL;
    CHECK_OK(nn_trainer_create(a, teacher, &to, &ta));
    to.teacher_given = 1;
    CHECK_OK(nn_trainer_create(b, NULL, &to, &tb));
    snlvk_loader *la = NULL;
    snlvk_loader_opts lo = {.batch = BATCH, .shuffle = 1, .seed = 5, .augment = 0, .drop_last = 1};
    CHECK_OK(snlvk_loader_create(&g_data, &lo, &la));
    CHECK_OK(snlvk_loader_create(&g_data, &lo, &r.train_loader));
    if (!ta || !tb || !la || !r.train_loader) goto done_t;
    nn_trainer *ts[2] = {ta, tb};
    for (int k = 0; k < 2; k++) {
        nn_trainer *t = ts[k];
        t->sp.kd_temperature = 4.0f;
        t->sp.kd_weight = 1.0f;
        if (mask_phase) {
            t->sp.lr[NN_GROUP_WEIGHTS] = t->sp.lr[NN_GROUP_MASKS] = 1e-2f;
            t->sp.snl_lambda = 1e-3f;
        } else {
            t->sp.lr[NN_GROUP_WEIGHTS] = 0.05f;
            t->sp.momentum = 0.9f;
            t->sp.weight_decay[NN_GROUP_WEIGHTS] = 5e-4f;
        }
    }
    const size_t nl = (size_t)BATCH * CLASSES;
    int steps = 0, kd_seen = 0;
    float img[BATCH * SIZE * SIZE];
    int32_t lab[BATCH];
    for (int epoch = 0; epoch < 2; epoch++) {
        CHECK_OK(snlvk_loader_start_epoch(la, epoch));
        CHECK_OK(snlvk_loader_start_epoch(r.train_loader, epoch));
        for (;;) {
            int ca = 0, cb = 0;
            CHECK_OK(snlvk_loader_next(la, img, lab, NULL, &ca));
            CHECK_OK(run_next_batch(&r, tb, r.train_loader, &cb));
            CHECK(ca == cb, "the two loaders gave %d and %d examples", ca, cb);
            if (ca == 0 || ca != cb) break;
            CHECK_OK(nn_trainer_upload(ta, img, lab, (uint32_t)ca));
            CHECK_OK(nn_trainer_step(ta));
            CHECK_OK(nn_trainer_step(tb));
            steps++;
            loss_metrics ma, mb;
            CHECK_OK(nn_trainer_metrics(ta, &ma));
            CHECK_OK(nn_trainer_metrics(tb, &mb));
            kd_seen += ma.last_kd > 1e-4f;
            CHECK(fabsf(ma.last_ce - mb.last_ce) <= 1e-5f * fabsf(ma.last_ce) + 1e-7f &&
                      fabsf(ma.last_kd - mb.last_kd) <= 1e-5f * fabsf(ma.last_kd) + 1e-7f,
                  "step %d: CE %.9g / %.9g, KD %.9g / %.9g (teacher's forward / cached)", steps, ma.last_ce,
                  mb.last_ce, ma.last_kd, mb.last_kd);
            float *ga = read_buf(&a->tensors[a->logits].grad, nl), *gb = read_buf(&b->tensors[b->logits].grad, nl);
            double s, d = max_abs_diff(gb, ga, nl, &s);
            CHECK(d <= 1e-5 * s && s > 0, "step %d: the logit gradients differ by %.3g (of %.3g)", steps, d, s);
            free(ga);
            free(gb);
        }
    }
    CHECK(steps == 4, "%d steps, expected 2 epochs of 2 full batches", steps);
    CHECK(kd_seen == steps, "KD was near 0 in %d of %d steps: the test needs a teacher unlike the student",
          steps - kd_seen, steps);
    loss_metrics ma, mb;
    CHECK_OK(nn_trainer_metrics(ta, &ma));
    CHECK_OK(nn_trainer_metrics(tb, &mb));
    CHECK(fabsf(ma.kd_sum - mb.kd_sum) <= 1e-5f * fabsf(ma.kd_sum) && fabsf(ma.ce_sum - mb.ce_sum) <= 1e-5f * fabsf(ma.ce_sum),
          "sums: CE %.9g / %.9g, KD %.9g / %.9g", ma.ce_sum, mb.ce_sum, ma.kd_sum, mb.kd_sum);
    double worst = 0;
    int moved = 0;
    nn_model *fresh = make_model(11);
    for (int i = 0; i < a->n_params && fresh; i++) {
        const nn_param *pa = &a->params[i], *pb = &b->params[i];
        float *va = read_buf(&pa->value, pa->numel), *vb = read_buf(&pb->value, pb->numel);
        float *v0 = read_buf(&fresh->params[i].value, pa->numel);
        double s, d = max_abs_diff(vb, va, pa->numel, &s);
        CHECK(d <= 1e-5 * s + 1e-7, "%s: the two students differ by %.3g after %d steps", pa->name, d, steps);
        worst = d > worst ? d : worst;
        moved += max_abs_diff(va, v0, pa->numel, NULL) > 0;
        free(va);
        free(vb);
        free(v0);
    }
    nn_model_destroy(fresh);
    CHECK(moved > a->n_params / 2, "only %d of %d parameters moved", moved, a->n_params);
    printf("     %s: %d steps, CE %.6f KD %.6f, parameters within %.3g\n", mask_phase ? "mask phase" : "fine-tune",
           steps, mb.ce_sum / mb.examples, mb.kd_sum / mb.examples, worst);
done_t:
    snlvk_loader_destroy(la);
    nn_trainer_destroy(ta);
    nn_trainer_destroy(tb);
done:
    close_run(&r);
    nn_model_destroy(teacher);
    nn_model_destroy(a);
    nn_model_destroy(b);
    free_data();
}

static void test_mask_phase_steps(void) { compare_steps(1); }
static void test_finetune_steps(void) { compare_steps(0); }

static void test_bad_uses(void)
{
    nn_model *teacher = make_model(3), *m = make_model(11);
    if (!teacher || !m) return;
    nn_trainer_opts to = {.optimizer = NN_SGD, .teacher_given = 1};
    nn_trainer *t = NULL;
    CHECK(nn_trainer_create(m, teacher, &to, &t) == SNLVK_E_INVALID && !t, "a teacher and given logits both accepted");
    CHECK_OK(nn_trainer_create(m, NULL, &to, &t));
    float table[4 * CLASSES] = {0};
    int32_t idx[2] = {1, 4};
    CHECK(nn_trainer_gather_teacher(t, table, 4, idx, 2) == SNLVK_E_INVALID && strstr(snlvk_last_error(), "0..3"),
          "an index past the table accepted: %s", snlvk_last_error());
    idx[1] = -1;
    CHECK(nn_trainer_gather_teacher(t, table, 4, idx, 2) == SNLVK_E_INVALID, "a negative index accepted");
    idx[1] = 3;
    CHECK_OK(nn_trainer_gather_teacher(t, table, 4, idx, 2));
    CHECK(nn_trainer_gather_teacher(t, table, 4, idx, BATCH + 1) == SNLVK_E_INVALID, "more rows than the batch accepted");
    nn_trainer_destroy(t);
    to.teacher_given = 0;
    CHECK_OK(nn_trainer_create(m, teacher, &to, &t));
    CHECK(nn_trainer_gather_teacher(t, table, 4, idx, 2) == SNLVK_E_INVALID,
          "logits given to a trainer that runs its teacher accepted");
    nn_trainer_destroy(t);
    nn_model_destroy(teacher);
    nn_model_destroy(m);
}

int main(void)
{
    RUN(test_cache_rows);
    RUN(test_mask_phase_steps);
    RUN(test_finetune_steps);
    RUN(test_bad_uses);
    return h_finish();
}
