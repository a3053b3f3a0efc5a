#include "ops/optim.h"

#include "ops/step_params.h"

enum { LOCAL = 256, MAX_GROUPS_X = 4096 };

static snlvk_status need(const vk_buf *b, uint64_t bytes, const char *what)
{
    return vk_buf_need(b, bytes, "internal: optimiser", what);
}

static snlvk_status check_common(const vk_buf *params, uint32_t group, const vk_buf *p, const vk_buf *g, uint32_t n)
{
    if (group >= STEP_PARAMS_GROUPS)
        return snlvk_fail(SNLVK_E_INVALID, "internal: parameter group %u (at most %d groups)", group,
                          STEP_PARAMS_GROUPS);
    SNLVK_TRY(need(params, STEP_PARAMS_SIZE, "step-params"));
    SNLVK_TRY(need(p, (uint64_t)n * 4, "parameter"));
    return need(g, (uint64_t)n * 4, "gradient");
}

static uint32_t groups_for(uint32_t n)
{
    uint32_t g = vk_div_up(n, LOCAL);
    return g > MAX_GROUPS_X ? MAX_GROUPS_X : g;
}

snlvk_status op_adam(vk_seq *s, snlvk_context *ctx, const vk_buf *params, uint32_t group, const vk_buf *p,
                     const vk_buf *g, const vk_buf *exp_avg, const vk_buf *exp_avg_sq, uint32_t n)
{
    if (n == 0) return SNLVK_OK;
    SNLVK_TRY(check_common(params, group, p, g, n));
    SNLVK_TRY(need(exp_avg, (uint64_t)n * 4, "Adam exp_avg"));
    SNLVK_TRY(need(exp_avg_sq, (uint64_t)n * 4, "Adam exp_avg_sq"));
    struct { uint32_t n, group; } pc = {n, group};
    vk_pipeline_desc d = {.shader = "adam", .bindings = "sIsssIII", .push_size = sizeof pc,
                          .local_size = {LOCAL, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    /* each tensor written through a storage buffer and read through a texel buffer */
    vk_binding binds[8] = {vk_bind(p),      vk_bind(g), vk_bind(exp_avg), vk_bind(exp_avg_sq),
                           vk_bind(params), vk_bind(p), vk_bind(exp_avg), vk_bind(exp_avg_sq)};
    return vk_seq_dispatch(s, pipe, binds, 8, &pc, groups_for(vk_div_up(n, 4)), 1, 1);
}

snlvk_status op_sgd(vk_seq *s, snlvk_context *ctx, const vk_buf *params, uint32_t group, const vk_buf *p,
                    const vk_buf *g, const vk_buf *momentum_buf, uint32_t n)
{
    if (n == 0) return SNLVK_OK;
    SNLVK_TRY(check_common(params, group, p, g, n));
    if (momentum_buf) SNLVK_TRY(need(momentum_buf, (uint64_t)n * 4, "SGD momentum"));
    struct { uint32_t n, group, has_buf; } pc = {n, group, momentum_buf ? 1u : 0u};
    vk_pipeline_desc d = {.shader = "sgd", .bindings = "sIssII", .push_size = sizeof pc, .local_size = {LOCAL, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    /* without a buffer the kernel never writes binding 2 nor uses what it reads through
     * binding 5: bind the gradient there */
    const vk_buf *mb = momentum_buf ? momentum_buf : g;
    vk_binding binds[6] = {vk_bind(p), vk_bind(g), vk_bind(mb), vk_bind(params), vk_bind(p), vk_bind(mb)};
    return vk_seq_dispatch(s, pipe, binds, 6, &pc, groups_for(vk_div_up(n, 4)), 1, 1);
}

snlvk_status op_zero(vk_seq *s, const vk_buf *b)
{
    if (!b) return snlvk_fail(SNLVK_E_INVALID, "internal: zeroing no buffer");
    return vk_seq_fill(s, b, 0);
}
