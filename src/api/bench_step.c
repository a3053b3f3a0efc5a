/* `snlvk bench --step`: a whole recorded training step of one pipeline stage, timed by the
 * host's clock and per kernel. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/trainer.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_time(const void *a, const void *b)
{
    const snlvk_kernel_time *x = a, *y = b;
    return (x->ms < y->ms) - (x->ms > y->ms);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The op family of a kernel, from its shader's name. */
static const char *family_of(const char *kernel)
{
    static const struct { const char *prefix, *family; } map[] = {
        {"conv_", "conv"},      {"bn_", "batchnorm"}, {"masked_relu", "masked_relu"}, {"mask_", "masked_relu"},
        {"axpby", "add"},       {"avgpool", "pool"},  {"maxpool", "pool"},            {"gemm", "linear"},
        {"loss", "loss"},       {"adam", "optimizer"}, {"sgd", "optimizer"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strncmp(kernel, map[i].prefix, strlen(map[i].prefix)) == 0) return map[i].family;
    return "other";
}

/* The trainer of one stage with the reference's settings (SNL.md). */
static snlvk_status stage_trainer(nn_model *m, nn_model *teacher, const char *stage, int given, int profile,
                                  nn_trainer **out)
{
    const int mask = strcmp(stage, "mask") == 0;
    nn_trainer_opts to = {.optimizer = mask ? NN_ADAM : NN_SGD, .train_masks = mask, .profile = profile,
                          .teacher_given = given};
    SNLVK_TRY(nn_trainer_create(m, teacher, &to, out));
    nn_trainer *t = *out;
    if (mask) {
        t->sp.lr[NN_GROUP_WEIGHTS] = t->sp.lr[NN_GROUP_MASKS] = 1e-3f;
        t->sp.snl_lambda = 1e-5f;
    } else {
        t->sp.lr[NN_GROUP_WEIGHTS] = strcmp(stage, "pretrain") == 0 ? 0.1f : 1e-3f;
        t->sp.momentum = 0.9f;
        t->sp.weight_decay[NN_GROUP_WEIGHTS] = 5e-4f;
    }
    t->sp.kd_weight = teacher || given ? 1.0f : 0.0f;
    return SNLVK_OK;
}

snlvk_status snlvk_bench_step(snlvk_context *ctx, const char *model, const char *stage, int cached_teacher, int batch,
                              int reps, snlvk_kernel_time_fn cb, void *user, snlvk_step_bench *out)
{
    memset(out, 0, sizeof *out);
    if (batch <= 0 || reps <= 0) return snlvk_fail(SNLVK_E_INVALID, "bench: batch and repeats must be positive");
    if (strcmp(stage, "pretrain") && strcmp(stage, "mask") && strcmp(stage, "finetune"))
        return snlvk_fail(SNLVK_E_INVALID, "bench: stage '%s': expected pretrain, mask or finetune", stage);
    int mini = strcmp(model, "resnet8-mini") == 0;
    uint32_t ch = mini ? 1 : 3, size = mini ? 28 : 32;
    const int distil = strcmp(stage, "pretrain") != 0, given = distil && cached_teacher;
    nn_model *m = NULL, *teacher = NULL;
    nn_trainer *t = NULL, *tp = NULL;
    SNLVK_TRY(nn_model_create(ctx, model, (uint32_t)batch, ch, size, size, 10, NN_PIXEL, &m));
    snlvk_status s = nn_model_init(m, 1);
    if (s == SNLVK_OK && distil && !given)
        s = nn_model_create(ctx, model, (uint32_t)batch, ch, size, size, 10, NN_PIXEL, &teacher);
    if (s == SNLVK_OK && teacher) s = nn_model_init(teacher, 2);
    /* one trainer times steps by the host's clock, a second one (timestamps) per kernel */
    if (s == SNLVK_OK) s = stage_trainer(m, teacher, stage, given, 0, &t);
    if (s == SNLVK_OK) s = stage_trainer(m, teacher, stage, given, 1, &tp);
    float *x = malloc((size_t)batch * ch * size * size * 4);
    int32_t *y = malloc((size_t)batch * 4);
    double *wall = calloc((size_t)reps, sizeof *wall), *gpu = calloc((size_t)reps, sizeof *gpu);
    double *k = malloc(4096 * sizeof *k);
    snlvk_kernel_time *agg = calloc(4096, sizeof *agg);
    if (s == SNLVK_OK && (!x || !y || !wall || !gpu || !k || !agg)) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    if (s == SNLVK_OK) {
        uint64_t r = 7;
        for (size_t i = 0; i < (size_t)batch * ch * size * size; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(r >> 40) / (double)(1ull << 23)) - 1.0f;
        }
        for (int i = 0; i < batch; i++) y[i] = i % 10;
        s = nn_trainer_upload(t, x, y, (uint32_t)batch);
        if (s == SNLVK_OK) s = nn_trainer_upload(tp, x, y, (uint32_t)batch);
        if (given) { /* logits as a cache holds them: a row per image, gathered each step */
            float *logits = malloc((size_t)batch * 10 * sizeof *logits);
            int32_t *rows = malloc((size_t)batch * sizeof *rows);
            if (!logits || !rows) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
            for (int i = 0; s == SNLVK_OK && i < batch * 10; i++) logits[i] = (float)((i * 37) % 19) * 0.25f - 2.0f;
            for (int i = 0; s == SNLVK_OK && i < batch; i++) rows[i] = batch - 1 - i;
            if (s == SNLVK_OK) s = nn_trainer_gather_teacher(t, logits, (uint32_t)batch, rows, (uint32_t)batch);
            if (s == SNLVK_OK) s = nn_trainer_gather_teacher(tp, logits, (uint32_t)batch, rows, (uint32_t)batch);
            free(logits), free(rows);
        }
    }
    if (s == SNLVK_OK) s = nn_trainer_step(t); /* warm-up */
    for (int i = 0; i < reps && s == SNLVK_OK; i++) {
        double t0 = now_ms();
        s = nn_trainer_step(t);
        wall[i] = now_ms() - t0;
    }
    if (s == SNLVK_OK) s = nn_trainer_step(tp);
    int n = 0;
    for (int i = 0; i < reps && s == SNLVK_OK; i++) {
        s = nn_trainer_step(tp);
        if (s == SNLVK_OK) s = vk_seq_times(tp->train, k, 4096, &n);
        for (int j = 0; j < n; j++) gpu[i] += k[j];
    }
    if (s == SNLVK_OK) {
        out->model = model;
        out->stage = stage;
        out->cached_teacher = given;
        out->batch = batch;
        out->median_ms = median(wall, reps);
        out->min_ms = wall[0];
        out->gpu_median_ms = median(gpu, reps);
        out->gpu_min_ms = gpu[0];
        out->images_per_s = batch / (out->median_ms * 1e-3);
        out->forward_gflop = nn_forward_flops(m) * batch * 1e-9;
        out->dispatches = n;
        int na = 0;
        for (int j = 0; j < n; j++) { /* the last step's kernels */
            const char *label = vk_seq_label(tp->train, j);
            int a = 0;
            while (a < na && strcmp(agg[a].kernel, label) != 0) a++;
            if (a == na) {
                agg[na].kernel = label;
                agg[na++].family = family_of(label);
            }
            agg[a].calls++;
            agg[a].ms += k[j];
        }
        qsort(agg, (size_t)na, sizeof *agg, cmp_time);
        for (int a = 0; a < na && cb; a++) cb(user, &agg[a]);
    }
    free(x), free(y), free(wall), free(gpu), free(k), free(agg);
    nn_trainer_destroy(t);
    nn_trainer_destroy(tp);
    nn_model_destroy(teacher);
    nn_model_destroy(m);
    return s;
}
