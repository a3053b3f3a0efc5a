/* `snlvk train --summary`: layers, output shapes, parameters, FLOPs and ReLUs per site. */
#include <stdio.h>
#include <string.h>

#include "nn/model.h"
#include "snl/run.h"

static snlvk_status input_of(const snlvk_train_opts *o, int *c, int *h, int *w, int *classes)
{
    static const struct { const char *name; int c, h, w, classes; } known[] = {
        {"fashion-mnist", 1, 28, 28, 10}, {"mnist", 1, 28, 28, 10},      {"cifar10", 3, 32, 32, 10},
        {"cifar100", 3, 32, 32, 100},     {"tiny-imagenet", 3, 64, 64, 200},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(o->dataset, known[i].name) == 0) {
            *c = known[i].c, *h = known[i].h, *w = known[i].w, *classes = known[i].classes;
            return SNLVK_OK;
        }
    snlvk_dataset d;
    const char *dir = o->data_dir ? o->data_dir : dataset_default_dir(o->dataset);
    SNLVK_TRY(snlvk_dataset_load(o->dataset, dir, 1, 1, o->image_size, &d));
    *c = d.c, *h = d.h, *w = d.w, *classes = d.classes;
    snlvk_dataset_free(&d);
    return SNLVK_OK;
}

static const char *kind_name(nn_op_kind k)
{
    static const char *n[] = {"conv", "batchnorm", "masked-relu", "add", "avgpool", "linear"};
    return n[k];
}

snlvk_status snlvk_model_summary_for_dataset(snlvk_context *ctx, const snlvk_train_opts *o,
                                             const snlvk_train_callbacks *cb)
{
    int c, h, w, classes;
    SNLVK_TRY(input_of(o, &c, &h, &w, &classes));
    nn_granularity g = strcmp(o->granularity, "channel") == 0 ? NN_CHANNEL : NN_PIXEL;
    nn_model *m;
    SNLVK_TRY(nn_model_create(ctx, o->model, 1, (uint32_t)c, (uint32_t)h, (uint32_t)w, (uint32_t)classes, g, &m));
    run r = {.ctx = ctx, .o = o, .cb = cb};
    run_say(&r, "%s on %s input %dx%dx%d, %d classes, %s masks", m->arch, o->dataset, c, h, w, classes,
            g == NN_CHANNEL ? "channel" : "pixel");
    run_say(&r, "%-28s %-12s %-16s %10s %14s %8s", "layer", "kind", "output", "params", "FLOPs", "ReLUs");
    uint64_t total_params = 0, total_relus = 0;
    double total_flops = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        const nn_tensor *y = &m->tensors[op->out], *x = &m->tensors[op->in];
        uint64_t params = 0, relus = 0;
        double flops = 0;
        char name[NN_NAME] = "";
        for (int k = 0; k < 2; k++)
            if (op->param[k] >= 0) params += m->params[op->param[k]].numel;
        if (op->param[0] >= 0) {
            snprintf(name, sizeof name, "%s", m->params[op->param[0]].name);
            char *dot = strrchr(name, '.');
            if (dot) *dot = '\0';
        } else
            snprintf(name, sizeof name, "%s", op->kind == NN_ADD ? "(residual add)" : "(pool)");
        if (op->kind == NN_CONV) flops = 2.0 * y->c * y->h * y->w * (double)op->conv.c * op->conv.ksize * op->conv.ksize;
        else if (op->kind == NN_LINEAR) flops = 2.0 * y->c * (double)x->c * x->h * x->w;
        else if (op->kind == NN_MRELU) relus = (uint64_t)y->c * y->h * y->w;
        char shape[32];
        snprintf(shape, sizeof shape, "%ux%ux%u", y->c, y->h, y->w);
        char rel[16] = "";
        if (relus) snprintf(rel, sizeof rel, "%llu", (unsigned long long)relus);
        run_say(&r, "%-28s %-12s %-16s %10llu %14.0f %8s", name, kind_name(op->kind), shape,
                (unsigned long long)params, flops, rel);
        total_params += params;
        total_relus += relus;
        total_flops += flops;
    }
    run_say(&r, "total: %llu parameters, %.1f MFLOPs per image (forward), %llu ReLUs",
            (unsigned long long)total_params, total_flops / 1e6, (unsigned long long)total_relus);
    nn_model_destroy(m);
    return SNLVK_OK;
}
