/* Recorded sequences: a list of dispatches with their barriers, recorded once into one
 * command buffer and submitted as often as needed (DESIGN.md, "record once, replay"). */
#include <stdlib.h>
#include <string.h>

#include "vk/vk.h"

#define SETS_PER_POOL 256
#define MAX_QUERIES 4096

struct vk_seq {
    snlvk_context *ctx;
    VkCommandBuffer cb;
    VkDescriptorPool *pools;
    int n_pools, cap_pools;
    VkBufferView *views;
    int n_views, cap_views;
    VkQueryPool queries;
    const char **labels;  /* per timed command */
    int timestamps;
    int n_dispatch;
    int recording, recorded;
};

snlvk_status vk_seq_create(snlvk_context *ctx, vk_seq **out)
{
    vk_seq *s = calloc(1, sizeof *s);
    if (!s) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    s->ctx = ctx;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = ctx->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkResult r = vkAllocateCommandBuffers(ctx->device, &ai, &s->cb);
    if (r != VK_SUCCESS) {
        free(s);
        return vk_fail(r, "vkAllocateCommandBuffers", __FILE__, __LINE__);
    }
    *out = s;
    return SNLVK_OK;
}

static void release_recording(vk_seq *s)
{
    VkDevice dev = s->ctx->device;
    for (int i = 0; i < s->n_views; i++) vkDestroyBufferView(dev, s->views[i], NULL);
    s->n_views = 0;
    for (int i = 0; i < s->n_pools; i++) vkDestroyDescriptorPool(dev, s->pools[i], NULL);
    s->n_pools = 0;
}

void vk_seq_destroy(vk_seq *s)
{
    if (!s) return;
    VkDevice dev = s->ctx->device;
    vkQueueWaitIdle(s->ctx->queue);
    release_recording(s);
    free(s->views);
    free(s->pools);
    if (s->queries) vkDestroyQueryPool(dev, s->queries, NULL);
    free(s->labels);
    vkFreeCommandBuffers(dev, s->ctx->cmd_pool, 1, &s->cb);
    free(s);
}

static snlvk_status add_pool(vk_seq *s)
{
    if (s->n_pools == s->cap_pools) {
        int cap = s->cap_pools ? s->cap_pools * 2 : 4;
        VkDescriptorPool *np = realloc(s->pools, sizeof *np * (size_t)cap);
        if (!np) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        s->pools = np;
        s->cap_pools = cap;
    }
    VkDescriptorPoolSize sizes[3] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * 8},
                                     {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * 8},
                                     {VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, SETS_PER_POOL * 8}};
    VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = SETS_PER_POOL,
                                     .poolSizeCount = 3,
                                     .pPoolSizes = sizes};
    VK_TRY(vkCreateDescriptorPool(s->ctx->device, &ci, NULL, &s->pools[s->n_pools]));
    s->n_pools++;
    return SNLVK_OK;
}

static snlvk_status alloc_set(vk_seq *s, VkDescriptorSetLayout layout, VkDescriptorSet *set)
{
    if (s->n_pools == 0) SNLVK_TRY(add_pool(s));
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = s->pools[s->n_pools - 1],
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &layout};
    VkResult r = vkAllocateDescriptorSets(s->ctx->device, &ai, set);
    if (r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL) {
        SNLVK_TRY(add_pool(s));
        ai.descriptorPool = s->pools[s->n_pools - 1];
        r = vkAllocateDescriptorSets(s->ctx->device, &ai, set);
    }
    VK_TRY(r);
    return SNLVK_OK;
}

snlvk_status vk_seq_begin(vk_seq *s, int timestamps)
{
    snlvk_context *ctx = s->ctx;
    release_recording(s);
    VK_TRY(vkResetCommandBuffer(s->cb, 0));
    s->timestamps = timestamps && ctx->info.timestamps;
    if (timestamps && !ctx->info.timestamps)
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "%s has no timestamp queries on its compute queue", ctx->info.name);
    if (s->timestamps && !s->labels) {
        s->labels = calloc(MAX_QUERIES, sizeof *s->labels);
        if (!s->labels) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    if (s->timestamps && !s->queries) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = MAX_QUERIES};
        VK_TRY(vkCreateQueryPool(ctx->device, &qi, NULL, &s->queries));
    }
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VK_TRY(vkBeginCommandBuffer(s->cb, &bi));
    s->n_dispatch = 0;
    s->recording = 1;
    s->recorded = 0;
    if (s->timestamps) {
        vkCmdResetQueryPool(s->cb, s->queries, 0, MAX_QUERIES);
        vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->queries, 0);
    }
    return SNLVK_OK;
}

/* Makes every earlier write visible to every later read or write. */
static void barrier(vk_seq *s)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
}

static snlvk_status after_command(vk_seq *s, const char *label)
{
    barrier(s);
    if (s->timestamps && s->labels && s->n_dispatch < MAX_QUERIES) s->labels[s->n_dispatch] = label;
    s->n_dispatch++;
    if (s->timestamps) {
        if (s->n_dispatch + 1 > MAX_QUERIES)
            return snlvk_fail(SNLVK_E_INVALID, "internal: more than %d timed commands in one sequence", MAX_QUERIES - 1);
        vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, (uint32_t)s->n_dispatch);
    }
    return SNLVK_OK;
}

snlvk_status vk_seq_dispatch(vk_seq *s, const vk_pipeline *p, const vk_binding *binds, int n_binds, const void *push,
                             uint32_t gx, uint32_t gy, uint32_t gz)
{
    snlvk_context *ctx = s->ctx;
    if (!s->recording) return snlvk_fail(SNLVK_E_INVALID, "internal: dispatch outside vk_seq_begin/vk_seq_end");
    if ((int)strlen(p->bindings) != n_binds)
        return snlvk_fail(SNLVK_E_INVALID, "internal: pipeline expects %zu bindings, got %d", strlen(p->bindings), n_binds);
    const uint32_t *maxg = ctx->props.limits.maxComputeWorkGroupCount;
    if (gx == 0 || gy == 0 || gz == 0) return SNLVK_OK; /* nothing to do */
    if (gx > maxg[0] || gy > maxg[1] || gz > maxg[2])
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "dispatch of %ux%ux%u workgroups exceeds the device limit %ux%ux%u", gx,
                          gy, gz, maxg[0], maxg[1], maxg[2]);
    VkDescriptorSet set;
    SNLVK_TRY(alloc_set(s, p->set_layout, &set));
    VkWriteDescriptorSet w[16];
    VkDescriptorBufferInfo bi[16];
    VkBufferView views[16];
    for (int i = 0; i < n_binds; i++) {
        const vk_buf *b = binds[i].buf;
        if (!b || !b->block) return snlvk_fail(SNLVK_E_INVALID, "internal: binding %d has no buffer", i);
        VkDeviceSize off = binds[i].offset;
        VkDeviceSize size = binds[i].size ? binds[i].size : b->size - off;
        if (off > b->size || size > b->size - off)
            return snlvk_fail(SNLVK_E_INVALID, "internal: binding %d range outside its buffer", i);
        const VkDescriptorType type = vk_bind_type(p->bindings[i]);
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = type};
        if (type != VK_DESCRIPTOR_TYPE_STORAGE_BUFFER) {
            const int vec4 = p->bindings[i] == VK_BIND_TEXEL4 || p->bindings[i] == VK_BIND_IMAGE4;
            const VkDeviceSize texel = vec4 ? 16 : 4;
            if (vec4 && size % 16)
                return snlvk_fail(SNLVK_E_INVALID, "internal: vec4 texel binding %d of %llu bytes is not whole vec4s", i,
                                  (unsigned long long)size);
            if (size / texel > ctx->max_texel_elements)
                return snlvk_fail(SNLVK_E_UNSUPPORTED, "a tensor of %llu floats exceeds %s's texel-buffer limit of %u",
                                  (unsigned long long)(size / texel), ctx->info.name, ctx->max_texel_elements);
            if ((b->offset + off) % ctx->props.limits.minTexelBufferOffsetAlignment)
                return snlvk_fail(SNLVK_E_INVALID, "internal: texel binding %d offset is not aligned", i);
            if (s->n_views == s->cap_views) {
                int cap = s->cap_views ? s->cap_views * 2 : 64;
                VkBufferView *nv = realloc(s->views, sizeof *nv * (size_t)cap);
                if (!nv) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
                s->views = nv;
                s->cap_views = cap;
            }
            VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                         .buffer = b->buffer,
                                         .format = vec4 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
                                         .offset = b->offset + off,
                                         .range = size / texel * texel};
            VK_TRY(vkCreateBufferView(ctx->device, &vi, NULL, &views[i]));
            s->views[s->n_views++] = views[i]; /* destroyed with the recording */
            /* points at this call's own array: s->views may move when it grows */
            w[i].pTexelBufferView = &views[i];
        } else {
            if (size > ctx->props.limits.maxStorageBufferRange)
                return snlvk_fail(SNLVK_E_UNSUPPORTED, "a %llu-byte tensor exceeds %s's storage-buffer range of %u bytes",
                                  (unsigned long long)size, ctx->info.name, ctx->props.limits.maxStorageBufferRange);
            if ((b->offset + off) % ctx->props.limits.minStorageBufferOffsetAlignment)
                return snlvk_fail(SNLVK_E_INVALID, "internal: storage binding %d offset is not aligned", i);
            bi[i] = (VkDescriptorBufferInfo){b->buffer, b->offset + off, size};
            w[i].pBufferInfo = &bi[i];
        }
    }
    vkUpdateDescriptorSets(ctx->device, (uint32_t)n_binds, w, 0, NULL);
    vkCmdBindPipeline(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vkCmdBindDescriptorSets(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_size) vkCmdPushConstants(s->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, push);
    vkCmdDispatch(s->cb, gx, gy, gz);
    return after_command(s, p->name);
}

snlvk_status vk_seq_fill(vk_seq *s, const vk_buf *b, uint32_t value)
{
    if (!s->recording) return snlvk_fail(SNLVK_E_INVALID, "internal: fill outside vk_seq_begin/vk_seq_end");
    vkCmdFillBuffer(s->cb, b->buffer, b->offset, (b->size + 3) & ~(VkDeviceSize)3, value);
    return after_command(s, "fill");
}

snlvk_status vk_seq_copy(vk_seq *s, const vk_buf *src, VkDeviceSize src_off, const vk_buf *dst, VkDeviceSize dst_off,
                         VkDeviceSize size)
{
    if (!s->recording) return snlvk_fail(SNLVK_E_INVALID, "internal: copy outside vk_seq_begin/vk_seq_end");
    if (src_off > src->size || size > src->size - src_off || dst_off > dst->size || size > dst->size - dst_off)
        return snlvk_fail(SNLVK_E_INVALID, "internal: copy range outside its buffers");
    VkBufferCopy r = {src->offset + src_off, dst->offset + dst_off, size};
    vkCmdCopyBuffer(s->cb, src->buffer, dst->buffer, 1, &r);
    return after_command(s, "copy");
}

snlvk_status vk_seq_end(vk_seq *s)
{
    if (!s->recording) return snlvk_fail(SNLVK_E_INVALID, "internal: vk_seq_end without vk_seq_begin");
    s->recording = 0;
    VK_TRY(vkEndCommandBuffer(s->cb));
    s->recorded = 1;
    return SNLVK_OK;
}

snlvk_status vk_seq_run(vk_seq *s)
{
    snlvk_context *ctx = s->ctx;
    if (!s->recorded) return snlvk_fail(SNLVK_E_INVALID, "internal: running a sequence that was not recorded");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &s->cb};
    VK_TRY(vkResetFences(ctx->device, 1, &ctx->fence));
    VK_TRY(vkQueueSubmit(ctx->queue, 1, &si, ctx->fence));
    VK_TRY(vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX));
    return SNLVK_OK;
}

snlvk_status vk_seq_times(vk_seq *s, double *ms, int max, int *n)
{
    if (!s->timestamps) return snlvk_fail(SNLVK_E_INVALID, "internal: sequence was recorded without timestamps");
    uint64_t ts[MAX_QUERIES];
    uint32_t count = (uint32_t)s->n_dispatch + 1;
    VK_TRY(vkGetQueryPoolResults(s->ctx->device, s->queries, 0, count, sizeof ts, ts, sizeof(uint64_t),
                                 VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    uint64_t mask = s->ctx->timestamp_valid_bits >= 64 ? ~0ull : ((1ull << s->ctx->timestamp_valid_bits) - 1);
    double period = s->ctx->info.timestamp_period_ns;
    int k = 0;
    for (int i = 0; i < s->n_dispatch && i < max; i++, k++)
        ms[i] = (double)(((ts[i + 1] & mask) - (ts[i] & mask)) & mask) * period * 1e-6;
    *n = k;
    return SNLVK_OK;
}

const char *vk_seq_label(const vk_seq *s, int i)
{
    return s->labels && i >= 0 && i < s->n_dispatch && i < MAX_QUERIES && s->labels[i] ? s->labels[i] : "?";
}
