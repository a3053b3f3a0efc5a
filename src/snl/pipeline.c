/* snlvk_train: the stages of a run (pretrain for now) over a dataset, with progress,
 * per-epoch evaluation, JSON-lines log and best/last checkpoints. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data/dataset.h"
#include "io/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/trainer.h"
#include "snl/run.h"

void snlvk_train_opts_default(snlvk_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = "resnet8-mini";
    o->dataset = "fashion-mnist";
    o->stage = "all";
    o->epochs = 0;             /* 0: the dataset's default */
    o->batch = 128;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->weight_decay = 5e-4;
    o->schedule = "step";
    o->seed = 1;
    o->granularity = "pixel";
    o->relu_budget = "0.1";
    o->lambda = "1e-5";
    o->kappa = 1.1;
    o->threshold = 1e-2;
    o->mask_lr = 1e-3;
    o->finetune_lr = 1e-3;
    o->kd_temperature = 4.0;
    o->max_mask_epochs = 2000;
    o->target_mask_epochs = 10;
    o->finetune_epochs = 0;   /* 0: the dataset's default */
}

double run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void run_say(const run *r, const char *fmt, ...)
{
    if (!r->cb || !r->cb->message) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->cb->message(r->cb->user, line);
}

const char *dataset_default_dir(const char *kind)
{
    if (strcmp(kind, "fashion-mnist") == 0) return "/usr/share/datasets/fashion-mnist";
    if (strcmp(kind, "mnist") == 0) return "/usr/share/datasets/mnist";
    if (strcmp(kind, "cifar10") == 0) return "data/cifar-10-batches-bin";
    if (strcmp(kind, "cifar100") == 0) return "data/cifar-100-binary";
    if (strcmp(kind, "tiny-imagenet") == 0) return "data/tiny-imagenet-200";
    return "data";
}

static snlvk_status load_data(run *r)
{
    const snlvk_train_opts *o = r->o;
    const char *dir = o->data_dir ? o->data_dir : dataset_default_dir(o->dataset);
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (strcmp(o->dataset, "fashion-mnist") == 0 && !o->data_dir)
            return snlvk_fail(SNLVK_E_IO, "%s: no such directory; install Fashion-MNIST with "
                              "'apt-get install dataset-fashion-mnist' or pass --data DIR", dir);
        return snlvk_fail(SNLVK_E_IO, "%s: %s (pass --data DIR with the %s files)", dir, strerror(errno), o->dataset);
    }
    SNLVK_TRY(snlvk_dataset_load(o->dataset, dir, 1, o->data_limit, o->image_size, &r->train));
    for (int i = 0; i < r->train.n_warnings; i++) run_say(r, "warning: %s", r->train.warnings[i]);
    SNLVK_TRY(snlvk_dataset_load(o->dataset, dir, 0, o->test_limit, r->train.h, &r->test));
    for (int i = 0; i < r->test.n_warnings; i++) run_say(r, "warning: %s", r->test.warnings[i]);
    if (r->test.classes != r->train.classes || r->test.c != r->train.c || r->test.h != r->train.h ||
        r->test.w != r->train.w)
        return snlvk_fail(SNLVK_E_INVALID, "%s: the test split (%dx%dx%d, %d classes) does not match the training split "
                          "(%dx%dx%d, %d classes)", dir, r->test.c, r->test.h, r->test.w, r->test.classes, r->train.c,
                          r->train.h, r->train.w, r->train.classes);
    run_say(r, "data: %s from %s: %d training and %d test images, %dx%dx%d, %d classes", o->dataset, dir, r->train.n,
            r->test.n, r->train.c, r->train.h, r->train.w, r->train.classes);
    return SNLVK_OK;
}

snlvk_status run_next_batch(run *r, nn_trainer *t, snlvk_loader *l, int *count)
{
    /* the cached logits are the training split's: an evaluation batch needs none */
    int32_t *idx = t->opts.teacher_given && l == r->train_loader ? r->host_indices : NULL;
    if (idx && !r->teacher_logits)
        return snlvk_fail(SNLVK_E_INVALID, "internal: a training batch needs the teacher's logits, not computed yet");
    float *in = nn_trainer_input_ptr(t);
    int32_t *lab = nn_trainer_labels_ptr(t);
    if (in && lab) SNLVK_TRY(snlvk_loader_next(l, in, lab, idx, count));
    else {
        SNLVK_TRY(snlvk_loader_next(l, r->host_images, r->host_labels, idx, count));
        if (*count > 0) SNLVK_TRY(nn_trainer_upload(t, r->host_images, r->host_labels, (uint32_t)*count));
    }
    if (idx && *count > 0)
        SNLVK_TRY(nn_trainer_gather_teacher(t, r->teacher_logits, (uint32_t)r->train.n, idx, (uint32_t)*count));
    return SNLVK_OK;
}

/* The teacher's forward over the training split in order, batch by batch; row i of the
 * table is example i's logits (a short last batch leaves the input's rows past it as they
 * were: in eval mode every row is computed on its own). */
static snlvk_status teacher_pass(run *r, nn_model *teacher, snlvk_loader *l, vk_seq *q, float *stage,
                                 int32_t *labels, int32_t *idx, float *table)
{
    const vk_buf *input = &teacher->tensors[teacher->input].value, *logits = &teacher->tensors[teacher->logits].value;
    const size_t classes = teacher->classes, per = (size_t)r->train.c * r->train.h * r->train.w;
    float *rows = malloc((size_t)teacher->batch * classes * 4);
    if (!rows) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    snlvk_status s = snlvk_loader_start_epoch(l, 0);
    long done = 0;
    while (s == SNLVK_OK) {
        int count = 0;
        s = snlvk_loader_next(l, stage ? stage : input->mapped, labels, idx, &count);
        if (s != SNLVK_OK || count == 0) break;
        if (stage) s = vk_buf_write(r->ctx, input, 0, stage, count * per * 4);
        if (s == SNLVK_OK) s = vk_seq_run(q);
        if (s == SNLVK_OK) s = vk_buf_read(r->ctx, logits, 0, rows, count * classes * 4);
        for (int j = 0; j < count && s == SNLVK_OK; j++)
            memcpy(table + (size_t)idx[j] * classes, rows + j * classes, classes * 4);
        done += count;
    }
    free(rows);
    if (s == SNLVK_OK && done != r->train.n)
        s = snlvk_fail(SNLVK_E_INVALID, "internal: the teacher saw %ld of %d training examples", done, r->train.n);
    return s;
}

snlvk_status run_teacher_logits(run *r, nn_model *teacher)
{
    if (r->teacher_logits) return SNLVK_OK;
    const snlvk_dataset *d = &r->train;
    const size_t per = (size_t)d->c * d->h * d->w;
    if (teacher->classes != (uint32_t)d->classes || teacher->in_c * teacher->in_h * teacher->in_w != per)
        return snlvk_fail(SNLVK_E_INVALID, "internal: the teacher (%u classes, %ux%ux%u input) does not fit the "
                          "training split (%d classes, %dx%dx%d)", teacher->classes, teacher->in_c, teacher->in_h,
                          teacher->in_w, d->classes, d->c, d->h, d->w);
    if ((size_t)d->n > SIZE_MAX / 4 / teacher->classes)
        return snlvk_fail(SNLVK_E_OOM, "the teacher's logits of %d examples do not fit in memory", d->n);
    const int stage_input = teacher->tensors[teacher->input].value.mapped == NULL;
    float *table = malloc((size_t)d->n * teacher->classes * 4);
    float *stage = stage_input ? malloc(teacher->batch * per * 4) : NULL;
    int32_t *labels = malloc(teacher->batch * 4), *idx = malloc(teacher->batch * 4);
    if (!table || (stage_input && !stage) || !labels || !idx) {
        free(table), free(stage), free(labels), free(idx);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory for the teacher's logits of %d examples", d->n);
    }
    snlvk_loader_opts lo = {(int)teacher->batch, 0, 0, 0, 0}; /* in order, not augmented, every example */
    snlvk_loader *l = NULL;
    vk_seq *q = NULL;
    snlvk_status s = snlvk_loader_create(d, &lo, &l);
    if (s == SNLVK_OK) s = vk_seq_create(r->ctx, &q);
    if (s == SNLVK_OK) s = vk_seq_begin(q, 0);
    if (s == SNLVK_OK) s = nn_record_forward(teacher, q, 0);
    if (s == SNLVK_OK) s = vk_seq_end(q);
    if (s == SNLVK_OK) s = teacher_pass(r, teacher, l, q, stage, labels, idx, table);
    vk_seq_destroy(q);
    snlvk_loader_destroy(l);
    free(stage), free(labels), free(idx);
    if (s != SNLVK_OK) {
        free(table);
        return s;
    }
    r->teacher_logits = table;
    return SNLVK_OK;
}

snlvk_status run_evaluate(run *r, nn_trainer *t, double *loss, double *acc, double *top5)
{
    SNLVK_TRY(nn_trainer_reset_metrics(t));
    SNLVK_TRY(snlvk_loader_start_epoch(r->test_loader, 0));
    for (;;) {
        int count = 0;
        SNLVK_TRY(run_next_batch(r, t, r->test_loader, &count));
        if (count == 0) break;
        SNLVK_TRY(nn_trainer_eval(t, (uint32_t)count));
    }
    loss_metrics mt;
    SNLVK_TRY(nn_trainer_metrics(t, &mt));
    double n = mt.examples ? mt.examples : 1;
    *loss = mt.ce_sum / n;
    *acc = mt.top1 / n;
    *top5 = mt.top5 / n;
    return SNLVK_OK;
}

double run_lr(const char *schedule, double base, int epoch, int epochs)
{
    if (strcmp(schedule, "cosine") == 0) return 0.5 * base * (1.0 + cos(3.141592653589793 * epoch / epochs));
    double lr = base;
    if (epoch >= epochs / 2) lr *= 0.1;
    if (epoch >= (3 * epochs) / 4) lr *= 0.1;
    return lr;
}

/* One epoch of training steps with progress reports. */
snlvk_status run_train_epoch(run *r, nn_trainer *t, const char *stage, int epoch, int epochs, run_step_hook hook,
                             void *hook_user, double *loss, double *acc)
{
    SNLVK_TRY(nn_trainer_reset_metrics(t));
    SNLVK_TRY(snlvk_loader_start_epoch(r->train_loader, epoch));
    long steps = snlvk_loader_batches_per_epoch(r->train_loader);
    double t0 = run_now(), last = t0;
    long step = 0;
    loss_metrics mt = {0};
    for (;;) {
        int count = 0;
        SNLVK_TRY(run_next_batch(r, t, r->train_loader, &count));
        if (count == 0) break;
        SNLVK_TRY(nn_trainer_step(t));
        step++;
        if (hook) {
            int stop = 0;
            SNLVK_TRY(hook(r, t, epoch, step, steps, hook_user, &stop));
            if (stop) break;
        }
        double now = run_now();
        if (now - last >= 1.0 || step == steps) {
            last = now;
            SNLVK_TRY(nn_trainer_metrics(t, &mt));
            if (!isfinite(mt.ce_sum) || !isfinite(mt.kd_sum))
                return snlvk_fail(SNLVK_E_NONFINITE, "%s: the loss became %s at epoch %d, step %ld (of %ld); lower the "
                                  "learning rate", stage, isnan(mt.ce_sum) ? "NaN" : "infinite", epoch + 1, step, steps);
            if (r->cb && r->cb->progress) {
                double el = now - t0;
                snlvk_progress p = {stage, epoch + 1, epochs, step, steps,
                                    mt.examples ? (mt.ce_sum + mt.kd_sum) / mt.examples : 0,
                                    mt.examples ? (double)mt.top1 / mt.examples : 0,
                                    mt.examples / el, step / el, (steps - step) * el / step};
                r->cb->progress(r->cb->user, &p);
            }
        }
    }
    SNLVK_TRY(nn_trainer_metrics(t, &mt));
    if (!isfinite(mt.ce_sum) || !isfinite(mt.kd_sum))
        return snlvk_fail(SNLVK_E_NONFINITE, "%s: the loss became non-finite in epoch %d; lower the learning rate", stage,
                          epoch + 1);
    *loss = mt.examples ? (mt.ce_sum + mt.kd_sum) / mt.examples : 0;
    *acc = mt.examples ? (double)mt.top1 / mt.examples : 0;
    return SNLVK_OK;
}

static snlvk_status mkdir_out(const char *dir)
{
    if (snlvk_mkdirs(dir) != 0)
        return snlvk_fail(SNLVK_E_IO, "%s: cannot create the output directory: %s", dir, strerror(errno));
    return SNLVK_OK;
}

void run_log(run *r, const char *json_line)
{
    if (r->log) {
        fputs(json_line, r->log);
        fputc('\n', r->log);
        fflush(r->log);
    }
}

static void run_free(run *r)
{
    snlvk_loader_destroy(r->train_loader);
    snlvk_loader_destroy(r->test_loader);
    snlvk_dataset_free(&r->train);
    snlvk_dataset_free(&r->test);
    free(r->host_images);
    free(r->host_labels);
    free(r->host_indices);
    free(r->teacher_logits);
    if (r->log) fclose(r->log);
}

snlvk_status snlvk_train(snlvk_context *ctx, const snlvk_train_opts *given, const snlvk_train_callbacks *cb)
{
    /* A bare `snlvk train` on (Fashion-)MNIST is the quick demonstration that must finish
     * in minutes on a laptop CPU: a subset of the training set, a few cosine epochs and,
     * for the SNL stages, a short mask phase. Quick values replace defaults only, never a
     * value that differs from its default. */
    snlvk_train_opts quick = *given, def;
    snlvk_train_opts_default(&def);
    const snlvk_train_opts *o = &quick;
    int is_mnist = strcmp(given->dataset, "fashion-mnist") == 0 || strcmp(given->dataset, "mnist") == 0;
    int pretrain = strcmp(given->stage, "pretrain") == 0, all = strcmp(given->stage, "all") == 0;
    if (is_mnist && given->epochs == 0 && given->data_limit == 0 && !given->init && (pretrain || all)) {
        quick.epochs = all ? 2 : 3;
        quick.data_limit = 20000;
        if (all && given->test_limit == 0) quick.test_limit = 5000;
        if (strcmp(given->schedule, def.schedule) == 0) quick.schedule = "cosine";
        if (cb && cb->message) {
            char line[256];
            snprintf(line, sizeof line, "quick defaults (pass --epochs or --data-limit to choose): the first 20000 "
                     "training images%s, %d pretraining epochs, cosine schedule",
                     quick.test_limit == 5000 && given->test_limit == 0 ? " and 5000 test images" : "", quick.epochs);
            cb->message(cb->user, line);
        }
        if (all) {
            /* Adam moves a mask by at most about the learning rate per step, so the mask
             * phase needs (1 - threshold) / mask_lr steps at least: batch 64 doubles the
             * steps per image, and 3e-3 (3x the reference) keeps Adam's oscillation of
             * masks around 0 (about 2.5 x lr) below the 1e-2 threshold. */
            if (given->batch == def.batch) quick.batch = 64;
            if (strcmp(given->lambda, def.lambda) == 0) quick.lambda = "auto";
            if (given->target_mask_epochs == def.target_mask_epochs) quick.target_mask_epochs = 2;
            if (given->check_every == def.check_every) quick.check_every = 10;
            if (given->mask_lr == def.mask_lr) quick.mask_lr = 3e-3;
            if (given->finetune_epochs == def.finetune_epochs) quick.finetune_epochs = 1;
            if (cb && cb->message) {
                char line[512];
                snprintf(line, sizeof line, "quick SNL defaults: --batch %d --relu-budget %s --lambda %s "
                         "--target-mask-epochs %d --check-every %d --mask-lr %g --finetune-epochs %d", quick.batch,
                         quick.relu_budget, quick.lambda, quick.target_mask_epochs, quick.check_every, quick.mask_lr,
                         quick.finetune_epochs);
                cb->message(cb->user, line);
            }
        }
    }
    if (!o->out_dir) return snlvk_fail(SNLVK_E_INVALID, "train: an output directory (--out) is required");
    if (!nn_arch_known(o->model)) return snlvk_fail(SNLVK_E_INVALID, "--model '%s': expected one of %s", o->model, nn_arch_list());
    if (o->batch <= 0) return snlvk_fail(SNLVK_E_INVALID, "--batch must be positive");
    if (strcmp(o->granularity, "pixel") && strcmp(o->granularity, "channel"))
        return snlvk_fail(SNLVK_E_INVALID, "--granularity '%s': expected pixel or channel", o->granularity);
    if (strcmp(o->schedule, "step") && strcmp(o->schedule, "cosine"))
        return snlvk_fail(SNLVK_E_INVALID, "--schedule '%s': expected step or cosine", o->schedule);
    run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.o = o;
    r.cb = cb;
    snlvk_status s = mkdir_out(o->out_dir);
    if (s == SNLVK_OK) s = load_data(&r);
    if (s == SNLVK_OK) {
        size_t per = (size_t)r.train.c * r.train.h * r.train.w;
        r.host_images = malloc((size_t)o->batch * per * 4);
        r.host_labels = malloc((size_t)o->batch * 4);
        r.host_indices = malloc((size_t)o->batch * 4);
        if (!r.host_images || !r.host_labels || !r.host_indices) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    if (s == SNLVK_OK) {
        snlvk_loader_opts lo = {o->batch, 1, o->seed, r.train.augment, 1};
        s = snlvk_loader_create(&r.train, &lo, &r.train_loader);
    }
    if (s == SNLVK_OK) {
        snlvk_loader_opts lo = {o->batch, 0, o->seed, 0, 0};
        s = snlvk_loader_create(&r.test, &lo, &r.test_loader);
    }
    if (s == SNLVK_OK) {
        char path[1100];
        snprintf(path, sizeof path, "%s/log.jsonl", o->out_dir);
        r.log = fopen(path, o->resume ? "a" : "w");
        if (!r.log) s = snlvk_fail(SNLVK_E_IO, "%s: cannot write the log: %s", path, strerror(errno));
    }
    if (s == SNLVK_OK) {
        if (strcmp(o->stage, "pretrain") == 0) s = run_pretrain(&r, "");
        else if (strcmp(o->stage, "mask") == 0 || strcmp(o->stage, "finetune") == 0 || strcmp(o->stage, "all") == 0)
            s = run_snl(&r);
        else s = snlvk_fail(SNLVK_E_INVALID, "--stage '%s': expected pretrain, mask, finetune or all", o->stage);
    }
    run_free(&r);
    return s;
}
