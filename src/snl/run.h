/* The state of one `snlvk train` run shared by its stages. */
#ifndef SNLVK_SNL_RUN_H
#define SNLVK_SNL_RUN_H

#include <stdio.h>

#include "data/dataset.h"
#include "nn/trainer.h"
#include "snlvk/snlvk.h"

typedef struct run {
    snlvk_context *ctx;
    const snlvk_train_opts *o;
    const snlvk_train_callbacks *cb;
    snlvk_dataset train, test;
    snlvk_loader *train_loader, *test_loader;
    float *host_images;       /* staging for devices without mapped tensors */
    int32_t *host_labels;
    FILE *log;                /* out_dir/log.jsonl */
} run;

double run_now(void);
void run_say(const run *r, const char *fmt, ...) SNLVK_PRINTF(2, 3);
void run_log(run *r, const char *json_line);
const char *dataset_default_dir(const char *kind);
double run_lr(const char *schedule, double base, int epoch, int epochs);
snlvk_status run_next_batch(run *r, nn_trainer *t, snlvk_loader *l, int *count);
snlvk_status run_evaluate(run *r, nn_trainer *t, double *loss, double *acc, double *top5);
/* Called after every training step; set *stop to end the epoch early. */
typedef snlvk_status (*run_step_hook)(run *r, nn_trainer *t, int epoch, long step, long steps, void *user, int *stop);
snlvk_status run_train_epoch(run *r, nn_trainer *t, const char *stage, int epoch, int epochs, run_step_hook hook,
                             void *hook_user, double *loss, double *acc);

/* A model for the run's options, sized by a split of the data (its image shape and classes). */
snlvk_status run_open_model(run *r, const snlvk_dataset *shape, nn_model **out);
/* Pretrains; checkpoints go to out_dir/<prefix>best and <prefix>last. */
snlvk_status run_pretrain(run *r, const char *prefix);
snlvk_status run_snl(run *r);
int run_default_epochs(const char *dataset);
#endif
