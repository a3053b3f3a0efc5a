/* Device memory: large blocks suballocated into tensors (drivers cap the number of
 * allocations), direct mapping on unified-memory devices, a staging path elsewhere. */
#include "vk/mem.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE ((VkDeviceSize)64 << 20)
#define STAGING_SIZE ((VkDeviceSize)16 << 20)

typedef struct range { VkDeviceSize off, size; } range;

struct vk_block {
    VkBuffer buffer;
    VkDeviceMemory memory;
    VkDeviceSize size;
    void *mapped;
    range *free_list;     /* sorted by offset, coalesced */
    int n_free, cap_free;
    int host;             /* a staging block: not a tensor block */
    vk_block *next;
};

static const VkBufferUsageFlags TENSOR_USAGE =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
    VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

static int find_type(const snlvk_context *ctx, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < ctx->mem_props.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = ctx->mem_props.memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & want) == want && !(f & avoid)) return (int)i;
    }
    return -1;
}

static snlvk_status block_create(snlvk_context *ctx, VkDeviceSize size, int host, vk_block **out)
{
    vk_block *b = calloc(1, sizeof *b);
    if (!b) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    b->size = size;
    b->host = host;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = host ? VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT
                                            : TENSOR_USAGE,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    snlvk_status s = SNLVK_OK;
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &b->buffer);
    if (r != VK_SUCCESS) { s = vk_fail(r, "vkCreateBuffer", __FILE__, __LINE__); goto fail; }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type;
    if (host) type = find_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    else if (ctx->info.unified_memory) type = find_type(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | hv, 0);
    else type = find_type(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0 && host) type = find_type(ctx, req.memoryTypeBits, hv, 0);
    if (type < 0) {
        s = snlvk_fail(SNLVK_E_UNSUPPORTED, "no suitable Vulkan memory type for %s buffers",
                       host ? "staging" : "tensor");
        goto fail;
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    r = vkAllocateMemory(ctx->device, &ai, NULL, &b->memory);
    if (r != VK_SUCCESS) {
        s = vk_fail(r, "vkAllocateMemory", __FILE__, __LINE__);
        if (s == SNLVK_E_OOM)
            s = snlvk_fail(SNLVK_E_OOM, "out of device memory allocating %.1f MiB on %s", (double)size / 1048576.0,
                           ctx->info.name);
        goto fail;
    }
    r = vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0);
    if (r != VK_SUCCESS) { s = vk_fail(r, "vkBindBufferMemory", __FILE__, __LINE__); goto fail; }
    if (host || ctx->info.unified_memory) {
        r = vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
        if (r != VK_SUCCESS) { s = vk_fail(r, "vkMapMemory", __FILE__, __LINE__); goto fail; }
    }
    b->free_list = malloc(sizeof(range) * 8);
    if (!b->free_list) { s = snlvk_fail(SNLVK_E_OOM, "out of host memory"); goto fail; }
    b->cap_free = 8;
    b->n_free = 1;
    b->free_list[0] = (range){0, size};
    *out = b;
    return SNLVK_OK;
fail:
    if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, NULL);
    if (b->memory) vkFreeMemory(ctx->device, b->memory, NULL);
    free(b->free_list);
    free(b);
    return s;
}

static void block_destroy(snlvk_context *ctx, vk_block *b)
{
    vkDestroyBuffer(ctx->device, b->buffer, NULL);
    vkFreeMemory(ctx->device, b->memory, NULL); /* unmaps too */
    free(b->free_list);
    free(b);
}

/* First fit; returns 1 and the offset when the block has room. Offsets and sizes are
 * multiples of the alignment, so the start of a free range is always aligned. */
static int block_take(vk_block *b, VkDeviceSize size, VkDeviceSize *off)
{
    for (int i = 0; i < b->n_free; i++) {
        range *r = &b->free_list[i];
        VkDeviceSize start = r->off;
        if (size > r->size) continue;
        VkDeviceSize end = r->off + r->size;
        if (start + size == end) {
            memmove(r, r + 1, sizeof(range) * (size_t)(b->n_free - i - 1));
            b->n_free--;
        } else {
            r->size = end - (start + size);
            r->off = start + size;
        }
        *off = start;
        return 1;
    }
    return 0;
}

static snlvk_status block_give(vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    int i = 0;
    while (i < b->n_free && b->free_list[i].off < off) i++;
    if (b->n_free == b->cap_free) {
        range *nf = realloc(b->free_list, sizeof(range) * (size_t)b->cap_free * 2);
        if (!nf) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        b->free_list = nf;
        b->cap_free *= 2;
    }
    memmove(&b->free_list[i + 1], &b->free_list[i], sizeof(range) * (size_t)(b->n_free - i));
    b->free_list[i] = (range){off, size};
    b->n_free++;
    /* merge with the next, then the previous neighbour */
    if (i + 1 < b->n_free && b->free_list[i].off + b->free_list[i].size == b->free_list[i + 1].off) {
        b->free_list[i].size += b->free_list[i + 1].size;
        memmove(&b->free_list[i + 1], &b->free_list[i + 2], sizeof(range) * (size_t)(b->n_free - i - 2));
        b->n_free--;
    }
    if (i > 0 && b->free_list[i - 1].off + b->free_list[i - 1].size == b->free_list[i].off) {
        b->free_list[i - 1].size += b->free_list[i].size;
        memmove(&b->free_list[i], &b->free_list[i + 1], sizeof(range) * (size_t)(b->n_free - i - 1));
        b->n_free--;
    }
    return SNLVK_OK;
}

snlvk_status vk_mem_init(snlvk_context *ctx)
{
    VkDeviceSize a = ctx->props.limits.minStorageBufferOffsetAlignment;
    if (ctx->props.limits.minTexelBufferOffsetAlignment > a) a = ctx->props.limits.minTexelBufferOffsetAlignment;
    if (a < 256) a = 256;
    ctx->align = a;
    ctx->max_texel_elements = ctx->props.limits.maxTexelBufferElements;
    return SNLVK_OK;
}

void vk_mem_destroy(snlvk_context *ctx)
{
    if (ctx->staging.block) block_destroy(ctx, ctx->staging.block);
    ctx->staging.block = NULL;
    for (vk_block *b = ctx->blocks, *next; b; b = next) {
        next = b->next;
        block_destroy(ctx, b);
    }
    ctx->blocks = NULL;
}

snlvk_status vk_buf_alloc(snlvk_context *ctx, VkDeviceSize size, vk_buf *out)
{
    memset(out, 0, sizeof *out);
    if (size == 0) size = 4;
    VkDeviceSize want = size;
    /* Blocks hand out whole alignment units, so every free range starts aligned. */
    size = (size + ctx->align - 1) / ctx->align * ctx->align;
    VkDeviceSize off = 0;
    vk_block *b = ctx->blocks;
    for (; b; b = b->next)
        if (block_take(b, size, &off)) break;
    if (!b) {
        VkDeviceSize bs = size > BLOCK_SIZE ? size : BLOCK_SIZE;
        SNLVK_TRY(block_create(ctx, bs, 0, &b));
        b->next = ctx->blocks;
        ctx->blocks = b;
        if (!block_take(b, size, &off))
            return snlvk_fail(SNLVK_E_OOM, "internal: a new block could not hold %llu bytes",
                              (unsigned long long)size);
    }
    out->buffer = b->buffer;
    out->offset = off;
    out->size = (want + 15) / 16 * 16; /* whole vec4s: kernels may access a tensor as vec4 */
    out->block = b;
    out->mapped = b->mapped ? (char *)b->mapped + off : NULL;
    return vk_buf_fill(ctx, out, 0);
}

void vk_buf_free(snlvk_context *ctx, vk_buf *buf)
{
    if (!buf || !buf->block) return;
    block_give(buf->block, buf->offset, (buf->size + ctx->align - 1) / ctx->align * ctx->align);
    memset(buf, 0, sizeof *buf);
}

snlvk_status vk_run_once(snlvk_context *ctx, vk_record_fn fn, void *user)
{
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = ctx->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkCommandBuffer cb;
    VK_TRY(vkAllocateCommandBuffers(ctx->device, &ai, &cb));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VkResult r = vkBeginCommandBuffer(cb, &bi);
    if (r == VK_SUCCESS) {
        fn(cb, user);
        r = vkEndCommandBuffer(cb);
    }
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
        r = vkResetFences(ctx->device, 1, &ctx->fence);
        if (r == VK_SUCCESS) r = vkQueueSubmit(ctx->queue, 1, &si, ctx->fence);
        if (r == VK_SUCCESS) r = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
    }
    vkFreeCommandBuffers(ctx->device, ctx->cmd_pool, 1, &cb);
    if (r != VK_SUCCESS) return vk_fail(r, "one-off submit", __FILE__, __LINE__);
    return SNLVK_OK;
}

static snlvk_status staging_ensure(snlvk_context *ctx)
{
    if (ctx->staging.block) return SNLVK_OK;
    vk_block *b;
    SNLVK_TRY(block_create(ctx, STAGING_SIZE, 1, &b));
    ctx->staging.block = b;
    ctx->staging.buffer = b->buffer;
    ctx->staging.offset = 0;
    ctx->staging.size = STAGING_SIZE;
    ctx->staging.mapped = b->mapped;
    return SNLVK_OK;
}

typedef struct copy_job { VkBuffer src, dst; VkBufferCopy region; } copy_job;

static void record_copy(VkCommandBuffer cb, void *user)
{
    copy_job *j = user;
    vkCmdCopyBuffer(cb, j->src, j->dst, 1, &j->region);
}

static snlvk_status check_range(const vk_buf *b, VkDeviceSize off, VkDeviceSize n)
{
    if (!b->block || off > b->size || n > b->size - off)
        return snlvk_fail(SNLVK_E_INVALID, "buffer access [%llu, +%llu) outside a %llu-byte buffer",
                          (unsigned long long)off, (unsigned long long)n, (unsigned long long)b->size);
    return SNLVK_OK;
}

snlvk_status vk_buf_write(snlvk_context *ctx, const vk_buf *b, VkDeviceSize off, const void *src, VkDeviceSize n)
{
    SNLVK_TRY(check_range(b, off, n));
    if (b->mapped) {
        memcpy((char *)b->mapped + off, src, n);
        return SNLVK_OK;
    }
    SNLVK_TRY(staging_ensure(ctx));
    for (VkDeviceSize done = 0; done < n;) {
        VkDeviceSize chunk = n - done < STAGING_SIZE ? n - done : STAGING_SIZE;
        memcpy(ctx->staging.mapped, (const char *)src + done, chunk);
        copy_job j = {ctx->staging.buffer, b->buffer, {0, b->offset + off + done, chunk}};
        SNLVK_TRY(vk_run_once(ctx, record_copy, &j));
        done += chunk;
    }
    return SNLVK_OK;
}

snlvk_status vk_buf_read(snlvk_context *ctx, const vk_buf *b, VkDeviceSize off, void *dst, VkDeviceSize n)
{
    SNLVK_TRY(check_range(b, off, n));
    if (b->mapped) {
        memcpy(dst, (const char *)b->mapped + off, n);
        return SNLVK_OK;
    }
    SNLVK_TRY(staging_ensure(ctx));
    for (VkDeviceSize done = 0; done < n;) {
        VkDeviceSize chunk = n - done < STAGING_SIZE ? n - done : STAGING_SIZE;
        copy_job j = {b->buffer, ctx->staging.buffer, {b->offset + off + done, 0, chunk}};
        SNLVK_TRY(vk_run_once(ctx, record_copy, &j));
        memcpy((char *)dst + done, ctx->staging.mapped, chunk);
        done += chunk;
    }
    return SNLVK_OK;
}

typedef struct fill_job { VkBuffer buf; VkDeviceSize off, size; uint32_t value; } fill_job;

static void record_fill(VkCommandBuffer cb, void *user)
{
    fill_job *j = user;
    vkCmdFillBuffer(cb, j->buf, j->off, j->size, j->value);
}

snlvk_status vk_buf_fill(snlvk_context *ctx, const vk_buf *b, uint32_t value)
{
    if (b->mapped) {
        uint32_t *p = b->mapped;
        for (VkDeviceSize i = 0; i < (b->size + 3) / 4; i++) p[i] = value;
        return SNLVK_OK;
    }
    /* whole words: the allocation is rounded up to the alignment, so this stays inside it */
    fill_job j = {b->buffer, b->offset, (b->size + 3) & ~(VkDeviceSize)3, value};
    return vk_run_once(ctx, record_fill, &j);
}

snlvk_status vk_buf_need(const vk_buf *b, uint64_t bytes, const char *who, const char *what)
{
    if (!b) return snlvk_fail(SNLVK_E_INVALID, "%s: %s is missing", who, what);
    if (b->size < bytes)
        return snlvk_fail(SNLVK_E_INVALID, "%s: %s holds %llu bytes, needs %llu", who, what,
                          (unsigned long long)b->size, (unsigned long long)bytes);
    return SNLVK_OK;
}
