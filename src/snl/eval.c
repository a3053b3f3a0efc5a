/* `snlvk eval`: accuracy, loss and ReLU count per site of a checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/checkpoint.h"
#include "snl/report.h"
#include "snl/run.h"

snlvk_status snlvk_eval(snlvk_context *ctx, const snlvk_eval_opts *o, const snlvk_train_callbacks *cb,
                        snlvk_eval_result *out)
{
    memset(out, 0, sizeof *out);
    if (!o->checkpoint) return snlvk_fail(SNLVK_E_INVALID, "eval: --ckpt FILE is required");
    ckpt_meta meta;
    int ndim = 0;
    uint32_t shape[4] = {0};
    SNLVK_TRY(ckpt_peek(o->checkpoint, &meta, "conv1.weight", &ndim, shape));
    const char *arch = o->model ? o->model : ckpt_meta_get(&meta, "arch");
    const char *dataset = o->dataset ? o->dataset : ckpt_meta_get(&meta, "dataset");
    const char *gran = ckpt_meta_get(&meta, "granularity");
    if (!arch) return snlvk_fail(SNLVK_E_INVALID, "%s: no 'arch' in the metadata; pass --model", o->checkpoint);
    if (!dataset) return snlvk_fail(SNLVK_E_INVALID, "%s: no 'dataset' in the metadata; pass --dataset", o->checkpoint);
    snlvk_train_opts to;
    snlvk_train_opts_default(&to);
    to.dataset = dataset;
    to.data_dir = o->data_dir;
    to.model = arch;
    to.batch = o->batch > 0 ? o->batch : 256;
    to.test_limit = o->test_limit;
    to.threshold = o->threshold > 0 ? o->threshold : 1e-2;
    to.granularity = gran && strcmp(gran, "channel") == 0 ? "channel" : "pixel";
    run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.o = &to;
    r.cb = cb;
    const char *dir = o->data_dir ? o->data_dir : dataset_default_dir(dataset);
    snlvk_status s = snlvk_dataset_load(dataset, dir, 0, o->test_limit, 0, &r.test);
    nn_model *m = NULL;
    nn_trainer *t = NULL;
    if (s == SNLVK_OK) s = run_open_model(&r, &r.test, &m);
    if (s == SNLVK_OK) s = nn_model_init(m, 1);
    if (s == SNLVK_OK) s = ckpt_load(m, o->checkpoint, NULL, 0);
    nn_trainer_opts tro = {.optimizer = NN_SGD};
    if (s == SNLVK_OK) s = nn_trainer_create(m, NULL, &tro, &t);
    if (s == SNLVK_OK) {
        r.host_images = malloc((size_t)to.batch * r.test.c * r.test.h * r.test.w * 4);
        r.host_labels = malloc((size_t)to.batch * 4);
        if (!r.host_images || !r.host_labels) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    if (s == SNLVK_OK) {
        snlvk_loader_opts lo = {to.batch, 0, 1, 0, 0};
        s = snlvk_loader_create(&r.test, &lo, &r.test_loader);
    }
    if (s == SNLVK_OK) s = run_evaluate(&r, t, &out->loss, &out->top1, &out->top5);
    uint64_t counts[512];
    if (s == SNLVK_OK) s = nn_trainer_count_relus(t, (float)to.threshold, counts);
    if (s == SNLVK_OK) {
        out->examples = r.test.n;
        out->total_relus = nn_total_relus(m);
        int sites = 0;
        for (int i = 0; i < m->n_ops; i++) sites += m->ops[i].kind == NN_MRELU;
        for (int i = 0; i < sites; i++) out->relus += counts[i];
        run_say(&r, "%s: %s on %s (%ld test images): top-1 %.4f  top-5 %.4f  loss %.4f  ReLUs %llu of %llu (%.2f%%)",
                o->checkpoint, arch, dataset, out->examples, out->top1, out->top5, out->loss,
                (unsigned long long)out->relus, (unsigned long long)out->total_relus,
                100.0 * (double)out->relus / (double)out->total_relus);
        s = snl_report_sites(&r, m, counts, o->json_path);
    }
    snlvk_loader_destroy(r.test_loader);
    snlvk_dataset_free(&r.test);
    free(r.host_images);
    free(r.host_labels);
    nn_trainer_destroy(t);
    nn_model_destroy(m);
    return s;
}
