#include "ops/gemm.h"

#include <stdlib.h>
#include <string.h>

typedef struct gemm_push {
    uint32_t m, n, k;
    uint32_t a_rs, a_cs, b_rs, b_cs, c_rs, c_cs;
    uint32_t a_bs, b_bs, c_bs;
    uint32_t bias_mode;
    float alpha, beta;
} gemm_push;

const char *gemm_variant_name(gemm_variant v)
{
    return v == GEMM_TEXEL ? "texel" : v == GEMM_TILED ? "tiled" : "auto";
}

gemm_variant gemm_pick_variant(const snlvk_context *ctx, gemm_variant requested)
{
    if (requested != GEMM_AUTO) return requested;
    const char *env = getenv("SNLVK_GEMM");
    if (env && strcmp(env, "texel") == 0) return GEMM_TEXEL;
    if (env && strcmp(env, "tiled") == 0) return GEMM_TILED;
    return vk_is_cpu(ctx) ? GEMM_TEXEL : GEMM_TILED;
}

snlvk_status op_gemm(vk_seq *s, snlvk_context *ctx, const gemm_args *g)
{
    if (g->m == 0 || g->n == 0) return SNLVK_OK;
    gemm_push p = {
        .m = g->m, .n = g->n, .k = g->k,
        .a_rs = g->trans_a ? 1 : g->k, .a_cs = g->trans_a ? g->m : 1,
        .b_rs = g->trans_b ? 1 : g->n, .b_cs = g->trans_b ? g->k : 1,
        .c_rs = g->n, .c_cs = 1,
        .a_bs = g->a_bs, .b_bs = g->b_bs, .c_bs = g->c_bs,
        .bias_mode = (uint32_t)g->bias_mode,
        .alpha = g->alpha, .beta = g->beta,
    };
    uint32_t batch = g->batch ? g->batch : 1;
    const vk_buf *bias = g->bias_mode != GEMM_BIAS_NONE ? g->bias : g->b;
    if (!bias) return snlvk_fail(SNLVK_E_INVALID, "internal: gemm bias mode without a bias buffer");
    vk_binding binds[4] = {vk_bind(g->a), vk_bind(g->b), vk_bind(bias), vk_bind(g->c)};
    const vk_pipeline *pipe;
    gemm_variant v = gemm_pick_variant(ctx, g->variant);
    if (v == GEMM_TEXEL) {
        /* vec4 reads (gemm_texel.comp: AV, BV) where the contiguous dim and the batch
         * strides are multiples of four; A's rows shared across a subgroup when read along k */
        const int bat = batch > 1;
        const uint32_t av = !g->trans_a && g->k % 4 == 0 && (!bat || g->a_bs % 4 == 0)  ? 1
                          : g->trans_a && g->m % 4 == 0 && (!bat || g->a_bs % 4 == 0)   ? 2 : 0;
        const uint32_t bv = g->trans_b && g->k % 4 == 0 && (!bat || g->b_bs % 4 == 0)  ? 1
                          : !g->trans_b && g->n % 4 == 0 && (!bat || g->b_bs % 4 == 0) ? 2 : 0;
        /* register block 16x8 with subgroups of 8 (256-bit lavapipe; at 512^3: 8x4 47, 8x8 44,
         * 16x4 35, 16x16 71, 32x8 74, 16x8 76 GFLOP/s), 32x8 with 16 (512-bit: 86-94 against
         * 59-66 for 16x8) */
        const uint32_t sg = ctx->info.subgroup_size, TM = sg >= 16 ? 32 : 16, TN = 8, LX = 16;
        const uint32_t share = av == 1 && ctx->info.subgroup_shuffle && sg && TM % sg == 0 && LX % sg == 0;
        /* static strings: the pipeline cache keeps the description's pointers */
        const char *bindings = av ? (bv ? "TTts" : "Ttts") : (bv ? "tTts" : "ttts");
        vk_pipeline_desc d = {.shader = "gemm_texel", .bindings = bindings, .push_size = sizeof p, .n_spec = 6,
                              .spec = {TM, TN, av, bv, share, share ? sg : 8}, .local_size = {LX, share ? 1 : 4, 1}};
        SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
        /* a vec4 view covers whole vec4s only */
        if (av) binds[0].size = g->a->size & ~(VkDeviceSize)15;
        if (bv) binds[1].size = g->b->size & ~(VkDeviceSize)15;
        return vk_seq_dispatch(s, pipe, binds, 4, &p, vk_div_up(vk_div_up(g->n, TN), LX),
                               vk_div_up(vk_div_up(g->m, TM), d.local_size[1]), batch);
    }
    enum { BM = 64, BN = 64, BK = 16, TM = 4, TN = 4 };
    vk_pipeline_desc d = {.shader = "gemm_tiled", .bindings = "ssss", .push_size = sizeof p,
                          .n_spec = 5, .spec = {BM, BN, BK, TM, TN}, .local_size = {BN / TN, BM / TM, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    return vk_seq_dispatch(s, pipe, binds, 4, &p, vk_div_up(g->n, BN), vk_div_up(g->m, BM), batch);
}

snlvk_status op_axpby(vk_seq *s, snlvk_context *ctx, const vk_buf *a, const vk_buf *b, const vk_buf *y, uint32_t n,
                      float alpha, float beta)
{
    struct { uint32_t n; float alpha, beta; } p = {n, alpha, beta};
    vk_pipeline_desc d = {.shader = "axpby", .bindings = "TTs", .push_size = sizeof p, .local_size = {256, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[3] = {vk_bind(a), vk_bind(b), vk_bind(y)};
    SNLVK_TRY(vk_buf_need(a, (VkDeviceSize)n * 4, "axpby", "a"));
    SNLVK_TRY(vk_buf_need(b, (VkDeviceSize)n * 4, "axpby", "b"));
    SNLVK_TRY(vk_buf_need(y, (VkDeviceSize)n * 4, "axpby", "y"));
    uint32_t groups = vk_div_up(vk_div_up(n, 4), 256); /* a vec4 per invocation */
    if (groups > 4096) groups = 4096;
    return vk_seq_dispatch(s, pipe, binds, 3, &p, groups ? groups : 1, 1, 1);
}
