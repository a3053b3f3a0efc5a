/* The Vulkan compute runtime: device, memory, pipelines, recorded sequences. */
#ifndef SNLVK_VK_H
#define SNLVK_VK_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <volk.h>

#include "core/error.h"
#include "snlvk/snlvk.h"

/* Converts a failed VkResult into a status with a message naming the call. */
snlvk_status vk_fail(VkResult r, const char *call, const char *file, int line);
#define VK_TRY(call)                                                            \
    do {                                                                        \
        VkResult vk_try_r_ = (call);                                            \
        if (vk_try_r_ != VK_SUCCESS) return vk_fail(vk_try_r_, #call, __FILE__, __LINE__); \
    } while (0)
const char *vk_result_name(VkResult r);

/* ---- memory ---- */
typedef struct vk_block vk_block;

/* A range of a large device buffer. Tensors are vk_bufs. */
typedef struct vk_buf {
    VkBuffer buffer;
    VkDeviceSize offset, size;
    void *mapped;         /* host pointer on unified-memory devices, else NULL */
    vk_block *block;
} vk_buf;

/* ---- pipelines ---- */
/* 't': an R32F texel view (one float per texel), 'T': an RGBA32F view (a vec4 per texel;
 * the range must be whole vec4s, which every vk_buf_alloc size is), both read with
 * texelFetch from a samplerBuffer. 'i', 'I': the same views as storage texel buffers,
 * read with imageLoad from a readonly imageBuffer declared r32f or rgba32f: lavapipe
 * compiles a texelFetch into a call to a generated function and an imageLoad inline, so
 * the kernels whose loops fetch (the convolutions, batch norm, the masked ReLU, the
 * optimisers) read through these (docs/lavapipe.md). */
enum { VK_BIND_STORAGE = 's', VK_BIND_TEXEL = 't', VK_BIND_TEXEL4 = 'T', VK_BIND_IMAGE = 'i', VK_BIND_IMAGE4 = 'I' };
/* The descriptor type of a binding kind. */
VkDescriptorType vk_bind_type(char kind);

typedef struct vk_shader {
    const char *name;
    const uint32_t *code;
    size_t size;          /* bytes */
} vk_shader;
/* Looks up an embedded shader by name (NULL if absent). */
const vk_shader *vk_shader_find(const char *name);

typedef struct vk_pipeline {
    const char *name;     /* the shader's name, for profiles */
    VkPipeline pipeline;
    VkPipelineLayout layout;
    VkDescriptorSetLayout set_layout;
    char bindings[16];    /* one VK_BIND_* char per binding */
    uint32_t push_size;
    uint32_t local_size[3];
} vk_pipeline;

#define VK_MAX_SPEC 17
typedef struct vk_pipeline_desc {
    const char *shader;
    const char *bindings;       /* e.g. "tts": texel, texel, storage */
    uint32_t push_size;
    uint32_t n_spec;
    uint32_t spec[VK_MAX_SPEC]; /* constant_id i = spec[i] (32-bit ints or float bits) */
    uint32_t local_size[3];     /* the workgroup size the shader declares (via spec ids 100..102 if 0-sized there) */
} vk_pipeline_desc;

/* ---- the context ---- */
struct snlvk_context {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkFence fence;
    VkPipelineCache pcache;
    char pcache_path[1024];
    uint32_t api_version;

    snlvk_device_info info;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    uint32_t timestamp_valid_bits;
    VkDeviceSize align;         /* offset alignment for every suballocation */
    uint32_t max_texel_elements;
    uint32_t type_device;       /* memory type for tensors */
    uint32_t type_host;         /* host-visible coherent type for staging */

    vk_block *blocks;           /* linked list of large allocations */
    vk_buf staging;             /* discrete GPUs: host-visible scratch for uploads/downloads */

    vk_pipeline **pipelines;    /* created pipelines, looked up by description */
    vk_pipeline_desc *pipeline_descs;
    int n_pipelines, cap_pipelines;

    int validation;
    atomic_int validation_count;
    snlvk_log_fn log;
    void *log_user;
};

void vk_log(snlvk_context *ctx, int level, const char *fmt, ...) SNLVK_PRINTF(3, 4);

/* Allocates `size` bytes of device memory for a tensor (zero-filled).
 * `texel`: the range will also be read through texel-buffer views. */
snlvk_status vk_buf_alloc(snlvk_context *ctx, VkDeviceSize size, vk_buf *out);
void vk_buf_free(snlvk_context *ctx, vk_buf *b);
snlvk_status vk_buf_write(snlvk_context *ctx, const vk_buf *b, VkDeviceSize off, const void *src, VkDeviceSize n);
snlvk_status vk_buf_read(snlvk_context *ctx, const vk_buf *b, VkDeviceSize off, void *dst, VkDeviceSize n);
snlvk_status vk_buf_fill(snlvk_context *ctx, const vk_buf *b, uint32_t value);
/* An op's check of a buffer argument: SNLVK_E_INVALID unless b is given and holds at
 * least `bytes`, with "WHO: WHAT is missing" or "WHO: WHAT holds N bytes, needs M". */
snlvk_status vk_buf_need(const vk_buf *b, uint64_t bytes, const char *who, const char *what);

snlvk_status vk_pipeline_get(snlvk_context *ctx, const vk_pipeline_desc *d, const vk_pipeline **out);

/* ---- recorded sequences: record once, submit many times ---- */
typedef struct vk_seq vk_seq;

typedef struct vk_binding {
    const vk_buf *buf;
    VkDeviceSize offset;  /* relative to buf */
    VkDeviceSize size;    /* 0: to the end of buf */
} vk_binding;
static inline vk_binding vk_bind(const vk_buf *b) { vk_binding r = {b, 0, 0}; return r; }

snlvk_status vk_seq_create(snlvk_context *ctx, vk_seq **out);
void vk_seq_destroy(vk_seq *s);
/* Starts (or restarts) recording. `timestamps`: write a GPU timestamp after every
 * dispatch, for per-kernel profiling. */
snlvk_status vk_seq_begin(vk_seq *s, int timestamps);
/* Records a dispatch; a barrier makes its writes visible to everything recorded after it. */
snlvk_status vk_seq_dispatch(vk_seq *s, const vk_pipeline *p, const vk_binding *binds, int n_binds,
                             const void *push, uint32_t groups_x, uint32_t groups_y, uint32_t groups_z);
snlvk_status vk_seq_fill(vk_seq *s, const vk_buf *b, uint32_t value);
snlvk_status vk_seq_copy(vk_seq *s, const vk_buf *src, VkDeviceSize src_off, const vk_buf *dst,
                         VkDeviceSize dst_off, VkDeviceSize size);
snlvk_status vk_seq_end(vk_seq *s);
/* Submits the recorded commands and waits for them. */
snlvk_status vk_seq_run(vk_seq *s);
/* Milliseconds each dispatch took in the last run (n = number of dispatches). */
snlvk_status vk_seq_times(vk_seq *s, double *ms, int max, int *n);
/* The name of the i-th timed command (a shader's name, "fill" or "copy"). */
const char *vk_seq_label(const vk_seq *s, int i);

/* A CPU device (lavapipe): texel fetches are vectorised gathers, shared memory and
 * barriers are slow, a workgroup's invocations run as coroutines (LAVAPIPE.md). */
static inline int vk_is_cpu(const snlvk_context *ctx) { return strcmp(ctx->info.type, "cpu") == 0; }

/* Ceil division for workgroup counts. */
static inline uint32_t vk_div_up(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

#endif
