/* Public benchmark entry points: timings come from GPU timestamps, medians of repeats. */
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static snlvk_status fill_random(snlvk_context *ctx, const vk_buf *b, size_t n, uint64_t seed)
{
    float *h = malloc(n * sizeof *h);
    if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = (float)((double)(seed >> 40) / (double)(1ull << 24)) - 0.5f;
    }
    snlvk_status s = vk_buf_write(ctx, b, 0, h, n * sizeof *h);
    free(h);
    return s;
}

snlvk_status snlvk_bench_gemm(snlvk_context *ctx, int m, int n, int k, int reps, const char *variant,
                              snlvk_gemm_bench *out)
{
    memset(out, 0, sizeof *out);
    if (m <= 0 || n <= 0 || k <= 0 || reps <= 0)
        return snlvk_fail(SNLVK_E_INVALID, "gemm benchmark: sizes and repeats must be positive (got %dx%dx%d, %d)", m,
                          n, k, reps);
    gemm_variant v = GEMM_AUTO;
    if (variant && strcmp(variant, "texel") == 0) v = GEMM_TEXEL;
    else if (variant && strcmp(variant, "tiled") == 0) v = GEMM_TILED;
    else if (variant && strcmp(variant, "auto") != 0)
        return snlvk_fail(SNLVK_E_INVALID, "gemm variant '%s': expected auto, texel or tiled", variant);
    v = gemm_pick_variant(ctx, v);
    if (!ctx->info.timestamps)
        return snlvk_fail(SNLVK_E_UNSUPPORTED, "%s has no timestamp queries; cannot time kernels", ctx->info.name);
    vk_buf a = {0}, b = {0}, c = {0};
    vk_seq *seq = NULL;
    double *ms = calloc((size_t)reps, sizeof *ms);
    snlvk_status s = ms ? SNLVK_OK : snlvk_fail(SNLVK_E_OOM, "out of host memory");
    if (s == SNLVK_OK) s = vk_buf_alloc(ctx, (VkDeviceSize)m * k * 4, &a);
    if (s == SNLVK_OK) s = vk_buf_alloc(ctx, (VkDeviceSize)k * n * 4, &b);
    if (s == SNLVK_OK) s = vk_buf_alloc(ctx, (VkDeviceSize)m * n * 4, &c);
    if (s == SNLVK_OK) s = fill_random(ctx, &a, (size_t)m * k, 1);
    if (s == SNLVK_OK) s = fill_random(ctx, &b, (size_t)k * n, 2);
    if (s == SNLVK_OK) s = vk_seq_create(ctx, &seq);
    if (s == SNLVK_OK) s = vk_seq_begin(seq, 1);
    gemm_args g = {.a = &a, .b = &b, .c = &c, .m = (uint32_t)m, .n = (uint32_t)n, .k = (uint32_t)k,
                   .alpha = 1.0f, .variant = v};
    if (s == SNLVK_OK) s = op_gemm(seq, ctx, &g);
    if (s == SNLVK_OK) s = vk_seq_end(seq);
    if (s == SNLVK_OK) s = vk_seq_run(seq); /* warm-up: pipeline compile, caches */
    for (int r = 0; r < reps && s == SNLVK_OK; r++) {
        int nt = 0;
        s = vk_seq_run(seq);
        if (s == SNLVK_OK) s = vk_seq_times(seq, &ms[r], 1, &nt);
    }
    if (s == SNLVK_OK) {
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        out->m = m, out->n = n, out->k = k, out->reps = reps;
        out->variant = gemm_variant_name(v);
        out->min_ms = ms[0];
        out->median_ms = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
        out->gflops = 2.0 * m * n * (double)k / (out->median_ms * 1e6);
    }
    vk_seq_destroy(seq);
    vk_buf_free(ctx, &a);
    vk_buf_free(ctx, &b);
    vk_buf_free(ctx, &c);
    free(ms);
    return s;
}
