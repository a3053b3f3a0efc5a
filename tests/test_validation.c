/* The harness must catch validation errors: provoke one on purpose (a buffer with no
 * usage flags violates VUID-VkBufferCreateInfo-usage-requiredbitmask) and expect it to
 * be counted. If the layer is not active, this test fails, so the suite cannot silently
 * run without validation. */
#include "harness.h"
#include "vk/vk.h"

static void test_validation_error_is_caught(void)
{
    snlvk_context *ctx = h_context();
    int before = snlvk_context_validation_messages(ctx);
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = 256,
                              .usage = 0,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf = VK_NULL_HANDLE;
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &buf);
    if (r == VK_SUCCESS && buf) vkDestroyBuffer(ctx->device, buf, NULL);
    int after = snlvk_context_validation_messages(ctx);
    CHECK(after > before, "the deliberate validation error was not reported (validation layer inactive?)");
    /* Expected here: take it off the count so the harness does not fail this test for it. */
    atomic_store(&ctx->validation_count, before);
}

int main(void)
{
    if (getenv("SNLVK_VALIDATION") && strcmp(getenv("SNLVK_VALIDATION"), "0") == 0) {
        printf("SKIP: validation turned off with SNLVK_VALIDATION=0\n0 passed, 0 failed\n");
        return 77;
    }
    RUN(test_validation_error_is_caught);
    return h_finish();
}
