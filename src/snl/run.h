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
    int32_t *host_indices;    /* the training batch's examples (positions in `train`) */
    float *teacher_logits;    /* train.n x classes: the teacher's eval-mode logits of every training
                                 example (no augmentation), computed once per run; NULL: not yet */
    FILE *log;                /* out_dir/log.jsonl */
} run;

double run_now(void);
void run_say(const run *r, const char *fmt, ...) SNLVK_PRINTF(2, 3);
void run_log(run *r, const char *json_line);
const char *dataset_default_dir(const char *kind);
double run_lr(const char *schedule, double base, int epoch, int epochs);
/* Fills the trainer's input with the next batch of `l`; *count = 0 at the end of the epoch.
 * A training batch for a trainer given its teacher's logits (opts.teacher_given) also gets
 * them, gathered from r->teacher_logits by the examples' positions. */
snlvk_status run_next_batch(run *r, nn_trainer *t, snlvk_loader *l, int *count);
/* r->teacher_logits: `teacher`'s eval-mode logits of every training example, a forward
 * per batch over the split in order (unaugmented); nothing to do when already computed. */
snlvk_status run_teacher_logits(run *r, nn_model *teacher);
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
