/* Models as a tape of layers over tensors allocated once for a fixed batch size:
 * forward and backward are recorded into a sequence (record once, replay per batch).
 * Parameters and buffers carry the PyTorch state_dict names of the reference code, so
 * checkpoints convert 1:1. Every ReLU site is a masked ReLU with its own mask. */
#ifndef SNLVK_NN_MODEL_H
#define SNLVK_NN_MODEL_H

#include "ops/batchnorm.h"
#include "ops/conv.h"
#include "ops/masked_relu.h"
#include "ops/pool.h"

#define NN_NAME 96

typedef struct nn_tensor {
    vk_buf value, grad;   /* grad: allocated for activations that need one */
    uint32_t n, c, h, w;
} nn_tensor;

typedef enum nn_param_kind {
    NN_PARAM_WEIGHT,      /* conv / linear weights */
    NN_PARAM_BIAS,        /* linear bias */
    NN_PARAM_BN,          /* BN gamma and beta */
    NN_PARAM_MASK         /* SNL masks ("alphas") */
} nn_param_kind;

typedef struct nn_param {
    char name[NN_NAME];
    nn_param_kind kind;
    int ndim;
    uint32_t shape[4];    /* PyTorch shape */
    uint32_t numel;
    vk_buf value, grad;
    vk_buf state[2];      /* optimizer state: SGD momentum, or Adam m and v */
} nn_param;

/* Non-trainable state: BN running statistics (num_batches_tracked is counted on the host). */
typedef struct nn_buffer {
    char name[NN_NAME];
    uint32_t numel;
    vk_buf value;
} nn_buffer;

typedef enum nn_op_kind { NN_CONV, NN_BN, NN_MRELU, NN_ADD, NN_GAP, NN_LINEAR } nn_op_kind;

typedef struct nn_op {
    nn_op_kind kind;
    int in, in2, out;     /* tensor indices (in2: the second input of an add) */
    int param[2];         /* conv: w; bn: gamma, beta; mrelu: mask; linear: w, b */
    int buffer[2];        /* bn: running mean, running var */
    int bn_index;         /* bn: which num_batches_tracked counter */
    conv_shape conv;
    vk_buf save_mean, save_invstd; /* bn */
    char site[NN_NAME];   /* mrelu: the site name, e.g. "layer1.0.alpha1" */
} nn_op;

typedef enum nn_granularity { NN_PIXEL = 0, NN_CHANNEL = 1 } nn_granularity;

typedef struct nn_model {
    snlvk_context *ctx;
    char arch[32];
    uint32_t batch, in_c, in_h, in_w, classes;
    nn_granularity granularity;
    nn_tensor *tensors;
    int n_tensors, cap_tensors;
    nn_param *params;
    int n_params, cap_params;
    nn_buffer *buffers;
    int n_buffers, cap_buffers;
    nn_op *ops;
    int n_ops, cap_ops;
    int n_bn;
    int64_t *bn_batches;   /* num_batches_tracked of each BN, host side */
    int input, logits;     /* tensor indices */
    vk_buf conv_workspace; /* the convolutions' scratch (conv_workspace_bytes) */
    vk_buf lambda;         /* one float: the SNL lambda read by the mask gradient */
    /* The recorded passes fuse batch norm with the masked ReLU after it (ops/bn_act.h), so
     * a masked ReLU's input is not stored where its backward recomputes it (after a batch
     * norm alone; the input after a residual add is stored). Set before recording to store
     * every masked ReLU's input (tests read them). */
    int store_relu_inputs;
} nn_model;

/* The architectures: "resnet18", "resnet34", "resnet8-mini", "wrn22-8" (the reference's
 * WideResNet-22-8: pre-activation blocks, a mask after each BN but the last). */
int nn_arch_known(const char *arch);
const char *nn_arch_list(void);

snlvk_status nn_model_create(snlvk_context *ctx, const char *arch, uint32_t batch, uint32_t in_c, uint32_t in_h,
                             uint32_t in_w, uint32_t classes, nn_granularity g, nn_model **out);
void nn_model_destroy(nn_model *m);

/* The reference's init: ResNets get Kaiming-normal (fan_in) conv and linear weights and
 * PyTorch's default uniform linear bias; wrn22-8 gets Kaiming-normal (fan_out) conv
 * weights, PyTorch's default uniform linear weight and a zero bias. All: BN gamma 1
 * beta 0, running stats 0/1, masks 1. */
snlvk_status nn_model_init(nn_model *m, uint64_t seed);

/* Records the forward pass from m->tensors[m->input] to m->tensors[m->logits]:
 * train = 1 uses batch statistics (and updates the running ones), 0 the running ones. */
snlvk_status nn_record_forward(nn_model *m, vk_seq *q, int train);
/* Records the backward pass from the logits' gradient: every parameter gradient is
 * overwritten; masks get dL/dc + lambda*sign(c) unless `frozen_masks`. `lambda` is a
 * device buffer and index holding the Lasso coefficient. */
snlvk_status nn_record_backward(nn_model *m, vk_seq *q, int frozen_masks, const vk_buf *lambda,
                                uint32_t lambda_index);
/* Counts num_batches_tracked for each training forward that ran. */
void nn_model_count_batch(nn_model *m);

int nn_find_param(const nn_model *m, const char *name);
int nn_find_buffer(const nn_model *m, const char *name);
/* Total ReLUs (mask entries; a channel-mask entry counts H*W). */
uint64_t nn_total_relus(const nn_model *m);
/* FLOPs of one forward pass of one example (multiply-adds counted as 2). */
double nn_forward_flops(const nn_model *m);
#endif
