/* A training step recorded once and replayed per batch (DESIGN.md): forward (training
 * mode), the teacher's forward (eval mode) when distilling from a teacher model, the loss,
 * backward and one optimiser update of every parameter, in one command buffer and one
 * submit. The loss reads the teacher's logits from a buffer: the teacher model's logits,
 * written by its forward in the step, or logits the caller gathers for each batch from
 * ones computed before (nn_trainer_gather_teacher: without augmentation an example's
 * teacher logits never change, so they are computed once per run). Per-step
 * scalars (learning rates, lambda, Adam's t) go through the step-params buffer; loss and
 * accuracy accumulate on the device and are read when the caller asks. */
#ifndef SNLVK_NN_TRAINER_H
#define SNLVK_NN_TRAINER_H

#include "nn/model.h"
#include "ops/loss.h"
#include "ops/step_params.h"

typedef enum nn_optimizer { NN_SGD = 0, NN_ADAM = 1 } nn_optimizer;

/* Parameter groups of the step-params block. */
enum { NN_GROUP_WEIGHTS = 0, NN_GROUP_MASKS = 1 };

typedef struct nn_trainer_opts {
    nn_optimizer optimizer;
    int train_masks;      /* masks are trained (SNL's mask phase) instead of frozen */
    int profile;          /* time every kernel of the training step (GPU timestamps) */
    int teacher_given;    /* distil from teacher logits the caller gives each batch (nn_trainer_gather_teacher)
                             instead of a teacher's forward in the step; nn_trainer_create's teacher is NULL */
} nn_trainer_opts;

typedef struct nn_trainer {
    snlvk_context *ctx;
    nn_model *model;
    nn_model *teacher;    /* not owned; its forward runs in every step; NULL: none */
    const vk_buf *kd_logits; /* [batch, classes] the teacher logits the loss reads: the teacher's logits tensor,
                                kd_given, or NULL (no distillation) */
    vk_buf kd_given;      /* teacher_given: written by nn_trainer_gather_teacher */
    float *kd_host;       /* teacher_given on a device without mapped memory: the gather's staging */
    nn_trainer_opts opts;
    step_params sp;       /* the caller sets lr, wd, lambda, ...; adam_step is counted here */
    vk_buf params, metrics, labels, scratch, mask_counts;
    vk_seq *train, *eval, *eval_tail, *count;
    uint32_t eval_tail_n;
    int n_masks;
    int64_t steps;        /* optimiser steps taken */
} nn_trainer;

snlvk_status nn_trainer_create(nn_model *m, nn_model *teacher, const nn_trainer_opts *o, nn_trainer **out);
void nn_trainer_destroy(nn_trainer *t);

/* Host pointers where the next batch goes: the model's input tensor and the labels,
 * mapped on unified-memory devices, else NULL (then pass arrays to nn_trainer_upload). */
float *nn_trainer_input_ptr(nn_trainer *t);
int32_t *nn_trainer_labels_ptr(nn_trainer *t);
snlvk_status nn_trainer_upload(nn_trainer *t, const float *images, const int32_t *labels, uint32_t count);
/* opts.teacher_given: the uploaded batch's teacher logits, rows indices[0..count) of `table`
 * (rows x classes floats: the teacher's logits of every example of the dataset the batch
 * was drawn from), row j for the batch's row j. */
snlvk_status nn_trainer_gather_teacher(nn_trainer *t, const float *table, uint32_t rows, const int32_t *indices,
                                       uint32_t count);

/* One optimiser step on the uploaded batch (a full batch). */
snlvk_status nn_trainer_step(nn_trainer *t);
/* Evaluation of the uploaded batch (count <= batch rows), accumulated into the metrics. */
snlvk_status nn_trainer_eval(nn_trainer *t, uint32_t count);

snlvk_status nn_trainer_metrics(nn_trainer *t, loss_metrics *out);
snlvk_status nn_trainer_reset_metrics(nn_trainer *t);

/* Kept entries (> eps, weighted by H*W for channel masks) of every mask, counted on the
 * device: counts[i] for the i-th masked-ReLU site in model order. */
snlvk_status nn_trainer_count_relus(nn_trainer *t, float eps, uint64_t *counts);
#endif
