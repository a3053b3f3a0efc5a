/* snlvk public API: Selective Network Linearization on Vulkan compute.
 * Every function returns a snlvk_status; on failure snlvk_last_error() says why.
 * Nothing in the library prints or exits. */
#ifndef SNLVK_SNLVK_H
#define SNLVK_SNLVK_H

#include <stddef.h>
#include <stdint.h>

#include "snlvk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SNLVK_VERSION "0.1.0"

typedef struct snlvk_context snlvk_context;

enum { SNLVK_LOG_INFO = 0, SNLVK_LOG_WARN = 1, SNLVK_LOG_ERROR = 2 };
typedef void (*snlvk_log_fn)(void *user, int level, const char *msg);

typedef struct snlvk_context_opts {
    int device_index; /* -1: SNLVK_DEVICE from the environment, else the best device */
    int validation;   /* -1: SNLVK_VALIDATION from the environment (1 = on); 0 off; 1 on */
    snlvk_log_fn log; /* warnings and validation messages; NULL: dropped */
    void *log_user;
} snlvk_context_opts;

void snlvk_context_opts_default(snlvk_context_opts *o);

typedef struct snlvk_heap_info {
    uint64_t size;
    int device_local;
} snlvk_heap_info;

typedef struct snlvk_device_info {
    int index;
    char name[256];
    char type[16];        /* "discrete", "integrated", "virtual", "cpu", "other" */
    uint32_t vendor_id, device_id;
    char vendor[32];
    char driver_name[256];
    char driver_info[256];
    char driver_version[32];
    char api_version[32];
    int n_heaps;
    snlvk_heap_info heaps[16];
    uint32_t subgroup_size;
    int subgroup_arithmetic, subgroup_shuffle, subgroup_ballot;
    uint32_t max_shared_memory;
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_size[3];
    int shader_float16;
    int push_descriptor;
    int timestamps;
    double timestamp_period_ns;
    int unified_memory;   /* device-local memory is host-visible: tensors are mapped, no staging */
    uint64_t max_storage_buffer_range;
    int usable;           /* has a compute queue and Vulkan >= 1.1 */
} snlvk_device_info;

/* Lists every Vulkan device (up to max) and which one a context would pick. */
snlvk_status snlvk_enumerate_devices(const snlvk_context_opts *opts, snlvk_device_info *out, int max,
                                     int *count, int *chosen);

snlvk_status snlvk_context_create(const snlvk_context_opts *opts, snlvk_context **out);
void snlvk_context_destroy(snlvk_context *ctx);
const snlvk_device_info *snlvk_context_device(const snlvk_context *ctx);
/* Validation messages (warnings and errors) seen since the context was created. */
int snlvk_context_validation_messages(const snlvk_context *ctx);

/* Matrix-multiply benchmark: C[M,N] = A[M,K] * B[K,N], timed with GPU timestamps. */
typedef struct snlvk_gemm_bench {
    int m, n, k;
    const char *variant;  /* kernel variant used */
    double median_ms, min_ms;
    double gflops;        /* at the median */
    int reps;
} snlvk_gemm_bench;
snlvk_status snlvk_bench_gemm(snlvk_context *ctx, int m, int n, int k, int reps, const char *variant,
                              snlvk_gemm_bench *out);

/* Per-op benchmark at the layer shapes of a model ("resnet18": CIFAR 32x32,
 * "resnet8-mini": 28x28 grey). Each result is reported through `cb` as soon as it is
 * measured. `filter`: only ops whose name contains it (NULL: all). */
typedef struct snlvk_op_bench {
    char op[48];          /* e.g. "conv2d_forward" */
    char shape[96];       /* e.g. "n32 c64 32x32 -> k64 3x3 s1 p1" */
    char variant[16];     /* kernel variant */
    double median_ms, min_ms;
    double flops;         /* floating-point operations per run (0 for memory-bound ops) */
    double bytes;         /* bytes read and written per run */
    int reps;
} snlvk_op_bench;
typedef void (*snlvk_op_bench_fn)(void *user, const snlvk_op_bench *result);
snlvk_status snlvk_bench_ops(snlvk_context *ctx, const char *model, int batch, int reps, const char *filter,
                             snlvk_op_bench_fn cb, void *user);

/* Whole training step of a model (forward, loss, backward, optimiser) on random data, as
 * one stage of the pipeline runs it:
 *   "pretrain"  SGD on CE, masks frozen
 *   "mask"      Adam on weights and masks, CE + KD (the teacher's forward in the step) + Lasso
 *   "finetune"  SGD on CE + KD (the teacher's forward in the step), masks frozen
 * With `cached_teacher` the mask and fine-tune steps read the teacher's logits from a
 * table instead of running its forward, as a run without augmentation does.
 * Median and best step time by the host's clock (submit to fence) and by the GPU
 * timestamps summed over the step's kernels; the kernels of one step are reported
 * through `cb`, each with its op family ("conv", "batchnorm", ...). */
typedef struct snlvk_step_bench {
    const char *model;
    const char *stage;
    int cached_teacher;                   /* the step read cached teacher logits */
    int batch;
    double median_ms, min_ms;             /* wall clock per step */
    double gpu_median_ms, gpu_min_ms;     /* the kernels' timestamps summed */
    double images_per_s;                  /* at the wall-clock median */
    double forward_gflop;   /* per step, forward convolutions and linear layers */
    int dispatches;
} snlvk_step_bench;
typedef struct snlvk_kernel_time {
    const char *kernel;
    const char *family;     /* "conv", "batchnorm", "masked_relu", "add", "pool", "linear", "loss", "optimizer", "other" */
    int calls;
    double ms;              /* summed over the step */
} snlvk_kernel_time;
typedef void (*snlvk_kernel_time_fn)(void *user, const snlvk_kernel_time *k);
snlvk_status snlvk_bench_step(snlvk_context *ctx, const char *model, const char *stage, int cached_teacher, int batch,
                              int reps, snlvk_kernel_time_fn cb, void *user, snlvk_step_bench *out);

/* ---- training ---- */

typedef struct snlvk_train_opts {
    const char *model;          /* "resnet8-mini" (default), "resnet18", "resnet34", "wrn22-8" */
    const char *dataset;        /* "fashion-mnist" (default), "mnist", "cifar10", "cifar100", "imagefolder", "tiny-imagenet" */
    const char *data_dir;       /* NULL: the dataset's default folder */
    const char *out_dir;        /* checkpoints and logs; required */
    const char *stage;          /* "all" (default), "pretrain", "mask" or "finetune" */
    const char *init;           /* checkpoint to start from, or NULL */
    int resume;                 /* continue the run in out_dir from its last checkpoint */
    int epochs;                 /* pretrain epochs */
    int batch;
    double lr, momentum, weight_decay;
    const char *schedule;       /* "step" (x0.1 at 1/2 and 3/4) or "cosine" */
    uint64_t seed;
    long data_limit;            /* keep the first N training examples (0: all) */
    long test_limit;            /* keep the first N test examples (0: all) */
    int image_size;             /* imagefolder: resize to this (0: first image's size) */
    const char *granularity;    /* "pixel" or "channel" masks */

    /* SNL: stages "mask", "finetune" and "all" (pretrain unless init, mask, finetune) */
    const char *relu_budget;    /* "15000" (absolute), "0.05" (fraction), or a list "15000,5000,1500" */
    const char *lambda;         /* Lasso coefficient: "1e-5" (the reference) or "auto" */
    double kappa;               /* lambda *= kappa when the count stalls (reference rule) */
    double threshold;           /* a mask entry counts as a ReLU when c > threshold */
    double mask_lr;             /* Adam on weights and masks in the mask phase */
    double finetune_lr;         /* SGD in the fine-tune, cosine schedule */
    double kd_temperature;
    int max_mask_epochs;        /* cap of the mask phase */
    int target_mask_epochs;     /* --lambda auto: planned length of the mask phase */
    int finetune_epochs;
    int no_kd;                  /* no distillation from the pretrained teacher */
    int check_every;            /* also count every K steps and stop as soon as the budget is met */
    int exact_budget;           /* keep exactly the B largest mask values instead of thresholding */
    int random_mask;            /* baseline: a random mask with exactly B ReLUs, same training cost */
    const char *random_budgets; /* the baseline at these budgets only (a subset of relu_budget); NULL: all */
    const char *layer_budgets;  /* baseline: whole sites kept or linearized, at these budgets (a subset of
                                   relu_budget), same training cost; NULL: none */
} snlvk_train_opts;

void snlvk_train_opts_default(snlvk_train_opts *o);

/* What the caller hears while training runs. */
typedef struct snlvk_progress {
    const char *stage;
    int epoch, epochs;          /* 1-based */
    long step, steps;           /* within the epoch */
    double loss, accuracy;      /* running means over the epoch so far */
    double images_per_s, steps_per_s, eta_s;
} snlvk_progress;

typedef struct snlvk_epoch_result {
    const char *stage;
    int epoch, epochs;
    double lr;
    double train_loss, train_acc;
    double test_loss, test_acc, test_top5;
    double seconds;
    int best;                   /* this epoch is the best so far (saved as "best") */
} snlvk_epoch_result;

typedef struct snlvk_train_callbacks {
    void (*progress)(void *user, const snlvk_progress *p);   /* about once a second */
    void (*epoch)(void *user, const snlvk_epoch_result *r);  /* after each epoch's evaluation */
    void (*message)(void *user, const char *line);           /* choices made, warnings */
    void *user;
} snlvk_train_callbacks;

snlvk_status snlvk_train(snlvk_context *ctx, const snlvk_train_opts *o, const snlvk_train_callbacks *cb);

/* Evaluates a checkpoint on a dataset's test split: top-1, top-5, loss, and the ReLU
 * count per site (printed through cb->message; written as JSON to json_path if given). */
typedef struct snlvk_eval_opts {
    const char *checkpoint;
    const char *dataset;        /* NULL: the checkpoint's */
    const char *data_dir;
    const char *model;          /* NULL: the checkpoint's */
    int batch;
    long test_limit;
    double threshold;           /* a mask entry counts as a ReLU when c > threshold (default 1e-2) */
    const char *json_path;
} snlvk_eval_opts;
typedef struct snlvk_eval_result {
    double top1, top5, loss;
    uint64_t relus, total_relus;
    long examples;
} snlvk_eval_result;
snlvk_status snlvk_eval(snlvk_context *ctx, const snlvk_eval_opts *o, const snlvk_train_callbacks *cb,
                        snlvk_eval_result *out);

/* Reports (through cb->message) the layers, output shapes, parameters, FLOPs and ReLUs
 * per site of o->model for o->dataset's input size and classes. */
snlvk_status snlvk_model_summary_for_dataset(snlvk_context *ctx, const snlvk_train_opts *o,
                                             const snlvk_train_callbacks *cb);

#ifdef __cplusplus
}
#endif
#endif
