#ifndef SNLVK_VK_MEM_H
#define SNLVK_VK_MEM_H
#include "vk/vk.h"
snlvk_status vk_mem_init(snlvk_context *ctx);
void vk_mem_destroy(snlvk_context *ctx);
/* Records into a one-off command buffer, submits it and waits. */
typedef void (*vk_record_fn)(VkCommandBuffer cb, void *user);
snlvk_status vk_run_once(snlvk_context *ctx, vk_record_fn fn, void *user);
#endif
