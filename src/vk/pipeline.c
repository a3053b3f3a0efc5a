/* Compute pipelines from the embedded SPIR-V, one per (shader, bindings, constants). */
#include <stdlib.h>
#include <string.h>

#include "vk/vk.h"

static int desc_equal(const vk_pipeline_desc *a, const vk_pipeline_desc *b)
{
    return strcmp(a->shader, b->shader) == 0 && strcmp(a->bindings, b->bindings) == 0 &&
           a->push_size == b->push_size && a->n_spec == b->n_spec &&
           memcmp(a->spec, b->spec, sizeof(uint32_t) * a->n_spec) == 0 &&
           memcmp(a->local_size, b->local_size, sizeof a->local_size) == 0;
}

VkDescriptorType vk_bind_type(char kind)
{
    return kind == VK_BIND_TEXEL || kind == VK_BIND_TEXEL4   ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
         : kind == VK_BIND_IMAGE || kind == VK_BIND_IMAGE4 ? VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER
                                                           : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
}

static snlvk_status create_pipeline(snlvk_context *ctx, const vk_pipeline_desc *d, vk_pipeline *p)
{
    const vk_shader *sh = vk_shader_find(d->shader);
    if (!sh) return snlvk_fail(SNLVK_E_INVALID, "internal: no embedded shader named '%s'", d->shader);
    size_t nb = strlen(d->bindings);
    if (nb >= sizeof p->bindings) return snlvk_fail(SNLVK_E_INVALID, "internal: too many bindings for '%s'", d->shader);
    if (strspn(d->bindings, "stTiI") != nb)
        return snlvk_fail(SNLVK_E_INVALID, "internal: '%s' has a binding kind other than s, t, T, i, I", d->shader);
    if (d->n_spec > VK_MAX_SPEC) return snlvk_fail(SNLVK_E_INVALID, "internal: too many constants for '%s'", d->shader);
    for (int i = 0; i < 3; i++)
        if (d->local_size[i] == 0)
            return snlvk_fail(SNLVK_E_INVALID, "internal: pipeline '%s' has no workgroup size", d->shader);
    uint32_t inv = d->local_size[0] * d->local_size[1] * d->local_size[2];
    if (inv > ctx->info.max_workgroup_invocations)
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "'%s' needs %u invocations per workgroup; %s allows %u", d->shader, inv,
                          ctx->info.name, ctx->info.max_workgroup_invocations);
    p->name = sh->name;
    memcpy(p->bindings, d->bindings, nb + 1);
    p->push_size = d->push_size;
    memcpy(p->local_size, d->local_size, sizeof p->local_size);

    VkDescriptorSetLayoutBinding b[16];
    for (size_t i = 0; i < nb; i++) {
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = vk_bind_type(d->bindings[i]),
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    }
    VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = (uint32_t)nb,
                                          .pBindings = b};
    VK_TRY(vkCreateDescriptorSetLayout(ctx->device, &dl, NULL, &p->set_layout));
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size};
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &p->set_layout,
                                     .pushConstantRangeCount = d->push_size ? 1 : 0,
                                     .pPushConstantRanges = &pr};
    VK_TRY(vkCreatePipelineLayout(ctx->device, &pl, NULL, &p->layout));

    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = sh->size,
                                   .pCode = sh->code};
    VkShaderModule mod;
    VK_TRY(vkCreateShaderModule(ctx->device, &mi, NULL, &mod));
    /* constant ids 0..n_spec-1 are the shader's own; 100..102 its workgroup size */
    VkSpecializationMapEntry e[VK_MAX_SPEC + 3];
    uint32_t data[VK_MAX_SPEC + 3];
    uint32_t n = 0;
    for (; n < d->n_spec; n++) {
        e[n] = (VkSpecializationMapEntry){n, n * 4, 4};
        data[n] = d->spec[n];
    }
    for (uint32_t i = 0; i < 3; i++, n++) {
        e[n] = (VkSpecializationMapEntry){100 + i, n * 4, 4};
        data[n] = d->local_size[i];
    }
    VkSpecializationInfo si = {n, e, n * 4, data};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = p->layout};
    VkResult r = vkCreateComputePipelines(ctx->device, ctx->pcache, 1, &ci, NULL, &p->pipeline);
    vkDestroyShaderModule(ctx->device, mod, NULL);
    if (r != VK_SUCCESS) return vk_fail(r, "vkCreateComputePipelines", __FILE__, __LINE__);
    return SNLVK_OK;
}

snlvk_status vk_pipeline_get(snlvk_context *ctx, const vk_pipeline_desc *d, const vk_pipeline **out)
{
    for (int i = 0; i < ctx->n_pipelines; i++)
        if (desc_equal(&ctx->pipeline_descs[i], d)) {
            *out = ctx->pipelines[i];
            return SNLVK_OK;
        }
    if (ctx->n_pipelines == ctx->cap_pipelines) {
        int cap = ctx->cap_pipelines ? ctx->cap_pipelines * 2 : 32;
        vk_pipeline **np = realloc(ctx->pipelines, sizeof *np * (size_t)cap);
        if (!np) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        ctx->pipelines = np;
        vk_pipeline_desc *nd = realloc(ctx->pipeline_descs, sizeof *nd * (size_t)cap);
        if (!nd) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        ctx->pipeline_descs = nd;
        ctx->cap_pipelines = cap;
    }
    vk_pipeline *p = calloc(1, sizeof *p);
    if (!p) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    snlvk_status s = create_pipeline(ctx, d, p);
    if (s != SNLVK_OK) {
        if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, NULL);
        if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
        if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
        free(p);
        return s;
    }
    ctx->pipeline_descs[ctx->n_pipelines] = *d;
    /* the description keeps pointers to static strings (shader name, bindings) */
    ctx->pipelines[ctx->n_pipelines++] = p;
    *out = p;
    return SNLVK_OK;
}
