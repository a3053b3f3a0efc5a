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

#ifdef __cplusplus
}
#endif
#endif
