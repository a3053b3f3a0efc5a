/* The training loss of a classifier: softmax cross-entropy with int32 labels plus, when a
 * teacher's logits are given, the distillation loss T^2 * KL(softmax(t/T) || softmax(s/T))
 * (PyTorch: KLDivLoss(reduction='batchmean')(log_softmax(s/T), softmax(t/T)) * T*T), both
 * batch means. One op writes d(ce_weight*CE + kd_weight*KD)/d logits and accumulates the
 * loss values, top-1/top-5 hits and the example count into a device "metrics" block that
 * the host resets once per epoch and reads once (no host read per step). T and the loss
 * weights come from the step-params buffer (ops/step_params.h), read when the sequence
 * runs. */
#ifndef SNLVK_OPS_LOSS_H
#define SNLVK_OPS_LOSS_H
#include "vk/vk.h"

/* The metrics block on the device (mirrors shaders/loss_reduce.comp). Per-example sums:
 * mean CE over the epoch = ce_sum / examples, accuracy = top1 / examples. The *_comp
 * fields are Kahan compensations (the exact sum is about ce_sum - ce_comp). A row whose
 * label is out of range makes the loss NaN. All zero bits = empty. */
typedef struct loss_metrics {
    float ce_sum, ce_comp;     /* sum over examples of the unweighted CE */
    float kd_sum, kd_comp;     /* sum over examples of the unweighted T^2*KL (0 without a teacher) */
    uint32_t top1, top5;       /* rows whose label is among the top 1 / top 5 logits */
    uint32_t examples, steps;  /* rows and op_classifier_loss runs accumulated */
    float last_ce, last_kd;    /* batch means of the most recent run */
    uint32_t reserved[2];
} loss_metrics;
#define LOSS_METRICS_SIZE 48u

typedef struct loss_args {
    const vk_buf *logits;   /* [n, classes] student logits */
    const vk_buf *labels;   /* [n] int32 */
    const vk_buf *teacher;  /* [n, classes] teacher logits, or NULL: no KD */
    const vk_buf *dlogits;  /* [n, classes] overwritten with the gradient, or NULL (evaluation) */
    const vk_buf *params;   /* step-params buffer: kd_temperature, ce_weight, kd_weight */
    const vk_buf *metrics;  /* loss_metrics, accumulated into */
    const vk_buf *scratch;  /* loss_scratch_bytes(n) of per-row values */
    uint32_t n, classes;
} loss_args;

size_t loss_scratch_bytes(uint32_t n);

/* Two dispatches: per-row losses and gradients, then a fixed-order batch reduction
 * into the metrics block. */
snlvk_status op_classifier_loss(vk_seq *s, snlvk_context *ctx, const loss_args *a);

/* A zeroed metrics block. */
snlvk_status loss_metrics_alloc(snlvk_context *ctx, vk_buf *out);
/* Zeroes it now (host), or as a recorded command. */
snlvk_status loss_metrics_reset(snlvk_context *ctx, const vk_buf *metrics);
snlvk_status op_loss_metrics_reset(vk_seq *s, const vk_buf *metrics);
snlvk_status loss_metrics_read(snlvk_context *ctx, const vk_buf *metrics, loss_metrics *out);
#endif
