/* Stage "pretrain": ordinary training of the net (masks fixed at 1) with SGD, momentum,
 * weight decay and a step or cosine schedule, as the reference pretrains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "nn/checkpoint.h"
#include "snl/run.h"

int run_default_epochs(const char *dataset)
{
    if (strcmp(dataset, "fashion-mnist") == 0 || strcmp(dataset, "mnist") == 0) return 3;
    return 160; /* the reference's CIFAR schedule */
}

snlvk_status run_open_model(run *r, const snlvk_dataset *shape, nn_model **out)
{
    const snlvk_train_opts *o = r->o;
    nn_granularity g = strcmp(o->granularity, "channel") == 0 ? NN_CHANNEL : NN_PIXEL;
    return nn_model_create(r->ctx, o->model, (uint32_t)o->batch, (uint32_t)shape->c, (uint32_t)shape->h,
                           (uint32_t)shape->w, (uint32_t)shape->classes, g, out);
}

static snlvk_status save(run *r, nn_model *m, const char *name, int epoch, double best_acc, int with_optim)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.safetensors", r->o->out_dir, name);
    ckpt_meta meta;
    ckpt_meta_begin(&meta, m, r->o->dataset, "pretrain");
    ckpt_meta_set(&meta, "epoch", "%d", epoch);
    ckpt_meta_set(&meta, "best_acc", "%.9g", best_acc);
    ckpt_meta_set(&meta, "seed", "%llu", (unsigned long long)r->o->seed);
    return ckpt_save(m, path, &meta, with_optim);
}

snlvk_status run_pretrain(run *r, const char *prefix)
{
    const snlvk_train_opts *o = r->o;
    int epochs = o->epochs > 0 ? o->epochs : run_default_epochs(o->dataset);
    nn_model *m = NULL;
    nn_trainer *t = NULL;
    snlvk_status s = run_open_model(r, &r->train, &m);
    int start = 0;
    double best = -1;
    if (s == SNLVK_OK) s = nn_model_init(m, o->seed);
    char last[1100];
    snprintf(last, sizeof last, "%s/%slast.safetensors", o->out_dir, prefix);
    const int have_last = o->resume && snlvk_file_exists(last);
    if (o->resume && !have_last) run_say(r, "resume: no %s yet; pretraining starts from the beginning", last);
    if (s == SNLVK_OK && have_last) {
        const char *path = last;
        ckpt_meta meta;
        s = ckpt_load(m, path, &meta, 1);
        if (s == SNLVK_OK) {
            const char *e = ckpt_meta_get(&meta, "epoch"), *b = ckpt_meta_get(&meta, "best_acc");
            start = e ? atoi(e) : 0;
            best = b ? atof(b) : -1;
            run_say(r, "resume: %s after epoch %d (best test accuracy %.4f)", path, start, best);
        }
    } else if (s == SNLVK_OK && o->init) {
        s = ckpt_load(m, o->init, NULL, 0);
        if (s == SNLVK_OK) run_say(r, "init: weights from %s", o->init);
    }
    nn_trainer_opts to = {.optimizer = NN_SGD};
    if (s == SNLVK_OK) s = nn_trainer_create(m, NULL, &to, &t);
    if (s == SNLVK_OK) {
        run_say(r, "pretrain: %s, %d epochs (from epoch %d), batch %d, SGD lr %g momentum %g weight decay %g, %s "
                   "schedule, seed %llu",
                m->arch, epochs, start + 1, o->batch, o->lr, o->momentum, o->weight_decay, o->schedule,
                (unsigned long long)o->seed);
        t->sp.momentum = (float)o->momentum;
        t->sp.weight_decay[NN_GROUP_WEIGHTS] = (float)o->weight_decay;
        /* A resumed run continues SGD's momentum: not its first step. */
        t->steps = (int64_t)start * snlvk_loader_batches_per_epoch(r->train_loader);
    }
    for (int epoch = start; epoch < epochs && s == SNLVK_OK; epoch++) {
        double t0 = run_now();
        double lr = run_lr(o->schedule, o->lr, epoch, epochs);
        t->sp.lr[NN_GROUP_WEIGHTS] = (float)lr;
        double tr_loss, tr_acc, te_loss, te_acc, te_top5;
        s = run_train_epoch(r, t, "pretrain", epoch, epochs, NULL, NULL, &tr_loss, &tr_acc);
        if (s == SNLVK_OK) s = run_evaluate(r, t, &te_loss, &te_acc, &te_top5);
        if (s != SNLVK_OK) break;
        int is_best = te_acc > best;
        if (is_best) best = te_acc;
        double secs = run_now() - t0;
        char name[64];
        snprintf(name, sizeof name, "%slast", prefix);
        s = save(r, m, name, epoch + 1, best, 1);
        snprintf(name, sizeof name, "%sbest", prefix);
        if (s == SNLVK_OK && is_best) s = save(r, m, name, epoch + 1, best, 0);
        char line[512];
        snprintf(line, sizeof line,
                 "{\"stage\": \"pretrain\", \"epoch\": %d, \"epochs\": %d, \"lr\": %.6g, \"train_loss\": %.6f, "
                 "\"train_acc\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.6f, \"test_top5\": %.6f, \"seconds\": %.2f, "
                 "\"best\": %s}",
                 epoch + 1, epochs, lr, tr_loss, tr_acc, te_loss, te_acc, te_top5, secs, is_best ? "true" : "false");
        run_log(r, line);
        if (r->cb && r->cb->epoch) {
            snlvk_epoch_result er = {"pretrain", epoch + 1, epochs, lr, tr_loss, tr_acc, te_loss, te_acc, te_top5,
                                     secs, is_best};
            r->cb->epoch(r->cb->user, &er);
        }
    }
    nn_trainer_destroy(t);
    nn_model_destroy(m);
    return s;
}
