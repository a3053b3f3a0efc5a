/* `snlvk bench --step`: a whole recorded training step, timed per kernel. */
#include <stdlib.h>
#include <string.h>

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

snlvk_status snlvk_bench_step(snlvk_context *ctx, const char *model, int batch, int reps, int adam,
                              snlvk_kernel_time_fn cb, void *user, snlvk_step_bench *out)
{
    memset(out, 0, sizeof *out);
    if (batch <= 0 || reps <= 0) return snlvk_fail(SNLVK_E_INVALID, "bench: batch and repeats must be positive");
    int mini = strcmp(model, "resnet8-mini") == 0;
    uint32_t ch = mini ? 1 : 3, size = mini ? 28 : 32;
    nn_model *m = NULL;
    nn_trainer *t = NULL;
    SNLVK_TRY(nn_model_create(ctx, model, (uint32_t)batch, ch, size, size, 10, NN_PIXEL, &m));
    snlvk_status s = nn_model_init(m, 1);
    nn_trainer_opts to = {.optimizer = adam ? NN_ADAM : NN_SGD, .train_masks = adam, .profile = 1};
    if (s == SNLVK_OK) s = nn_trainer_create(m, NULL, &to, &t);
    float *x = malloc((size_t)batch * ch * size * size * 4);
    int32_t *y = malloc((size_t)batch * 4);
    double *ms = calloc((size_t)reps, sizeof *ms);
    double *k = malloc(4096 * sizeof *k);
    snlvk_kernel_time *agg = calloc(4096, sizeof *agg);
    if (s == SNLVK_OK && (!x || !y || !ms || !k || !agg)) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    if (s == SNLVK_OK) {
        uint64_t r = 7;
        for (size_t i = 0; i < (size_t)batch * ch * size * size; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(r >> 40) / (double)(1ull << 23)) - 1.0f;
        }
        for (int i = 0; i < batch; i++) y[i] = i % 10;
        s = nn_trainer_upload(t, x, y, (uint32_t)batch);
        t->sp.lr[0] = t->sp.lr[1] = 1e-3f;
    }
    if (s == SNLVK_OK) s = nn_trainer_step(t); /* warm-up */
    int n = 0;
    for (int i = 0; i < reps && s == SNLVK_OK; i++) {
        s = nn_trainer_step(t);
        if (s == SNLVK_OK) s = vk_seq_times(t->train, k, 4096, &n);
        for (int j = 0; j < n; j++) ms[i] += k[j];
    }
    if (s == SNLVK_OK) {
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        out->model = model;
        out->batch = batch;
        out->median_ms = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
        out->images_per_s = batch / (out->median_ms * 1e-3);
        out->forward_gflop = nn_forward_flops(m) * batch * 1e-9;
        out->dispatches = n;
        int na = 0;
        for (int j = 0; j < n; j++) {
            const char *label = vk_seq_label(t->train, j);
            int a = 0;
            while (a < na && strcmp(agg[a].kernel, label) != 0) a++;
            if (a == na) agg[na++].kernel = label;
            agg[a].calls++;
            agg[a].ms += k[j];
        }
        qsort(agg, (size_t)na, sizeof *agg, cmp_time);
        for (int a = 0; a < na && cb; a++) cb(user, &agg[a]);
    }
    free(x), free(y), free(ms), free(k), free(agg);
    nn_trainer_destroy(t);
    nn_model_destroy(m);
    return s;
}
