#include "ops/mask.h"

#include <math.h>
#include <stdlib.h>

enum { COUNT_LOCAL = 256, LOCAL = 256, MAX_GROUPS_X = 4096 };

static snlvk_status need(const vk_buf *b, uint64_t bytes, const char *what)
{
    return vk_buf_need(b, bytes, "internal: mask op", what);
}

snlvk_status op_mask_count(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float eps,
                           const vk_buf *counts, uint32_t slot, uint32_t weight)
{
    SNLVK_TRY(need(counts, ((uint64_t)slot + 1) * 4, "counts"));
    if (n == 0) return snlvk_fail(SNLVK_E_INVALID, "internal: counting an empty mask");
    SNLVK_TRY(need(mask, (uint64_t)n * 4, "mask"));
    struct { uint32_t n; float eps; uint32_t slot, weight; } pc = {n, eps, slot, weight};
    vk_pipeline_desc d = {.shader = "mask_count", .bindings = "ss", .push_size = sizeof pc,
                          .local_size = {COUNT_LOCAL, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding binds[2] = {vk_bind(mask), vk_bind(counts)};
    return vk_seq_dispatch(s, pipe, binds, 2, &pc, 1, 1, 1);
}

snlvk_status op_mask_threshold(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float thr,
                               uint32_t base, uint32_t tie_cut)
{
    if (n == 0) return SNLVK_OK;
    SNLVK_TRY(need(mask, (uint64_t)n * 4, "mask"));
    struct { uint32_t n; float thr; uint32_t base, tie_cut; } pc = {n, thr, base, tie_cut};
    vk_pipeline_desc d = {.shader = "mask_binarize", .bindings = "s", .push_size = sizeof pc,
                          .local_size = {LOCAL, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    vk_binding b = vk_bind(mask);
    uint32_t groups = vk_div_up(n, LOCAL);
    return vk_seq_dispatch(s, pipe, &b, 1, &pc, groups > MAX_GROUPS_X ? MAX_GROUPS_X : groups, 1, 1);
}

snlvk_status op_mask_binarize(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float eps)
{
    return op_mask_threshold(s, ctx, mask, n, eps, 0, 0);
}

/* descending */
static int cmp_desc(const void *pa, const void *pb)
{
    const float a = *(const float *)pa, b = *(const float *)pb;
    return (a < b) - (a > b);
}

static float key(float x) { return isnan(x) ? -INFINITY : x; }

snlvk_status mask_find_cut(const float *values, uint64_t total, uint64_t budget, mask_cut *out)
{
    mask_cut c = {INFINITY, 0, 0};
    if (budget > total) budget = total;
    c.kept = budget;
    if (budget == 0) { /* nothing is > +inf, and no index is < 0 */
        *out = c;
        return SNLVK_OK;
    }
    float *v = malloc(sizeof(float) * (size_t)total);
    if (!v) return snlvk_fail(SNLVK_E_OOM, "out of host memory sorting %llu mask entries", (unsigned long long)total);
    for (uint64_t i = 0; i < total; i++) v[i] = key(values[i]);
    qsort(v, (size_t)total, sizeof(float), cmp_desc);
    c.thr = v[budget - 1];
    uint64_t greater = 0;
    while (v[greater] > c.thr) greater++;
    free(v);
    /* keep the first (budget - greater) entries equal to thr in global order; at least
     * one, v[budget-1] itself */
    uint64_t ties = budget - greater, seen = 0;
    for (uint64_t i = 0; i < total; i++)
        if (key(values[i]) == c.thr && ++seen == ties) {
            c.tie_cut = (uint32_t)(i + 1);
            break;
        }
    *out = c;
    return SNLVK_OK;
}

snlvk_status mask_keep_top(snlvk_context *ctx, const vk_buf *const *masks, const uint32_t *sizes, int n_masks,
                           uint64_t budget, mask_cut *cut)
{
    uint64_t total = 0;
    for (int m = 0; m < n_masks; m++) {
        SNLVK_TRY(need(masks[m], (uint64_t)sizes[m] * 4, "mask"));
        total += sizes[m];
    }
    if (total > UINT32_MAX) return snlvk_fail(SNLVK_E_UNSUPPORTED, "more than 2^32 mask entries in all");
    float *values = malloc(sizeof(float) * (size_t)(total ? total : 1));
    if (!values) return snlvk_fail(SNLVK_E_OOM, "out of host memory reading %llu mask entries",
                                   (unsigned long long)total);
    snlvk_status st = SNLVK_OK;
    uint64_t off = 0;
    for (int m = 0; m < n_masks && st == SNLVK_OK; m++) {
        if (sizes[m]) st = vk_buf_read(ctx, masks[m], 0, values + off, (VkDeviceSize)sizes[m] * 4);
        off += sizes[m];
    }
    mask_cut c = {0, 0, 0};
    if (st == SNLVK_OK) st = mask_find_cut(values, total, budget, &c);
    free(values);
    if (st != SNLVK_OK) return st;
    vk_seq *s;
    SNLVK_TRY(vk_seq_create(ctx, &s));
    st = vk_seq_begin(s, 0);
    off = 0;
    for (int m = 0; m < n_masks && st == SNLVK_OK; m++) {
        st = op_mask_threshold(s, ctx, masks[m], sizes[m], c.thr, (uint32_t)off, c.tie_cut);
        off += sizes[m];
    }
    if (st == SNLVK_OK) st = vk_seq_end(s);
    if (st == SNLVK_OK) st = vk_seq_run(s);
    vk_seq_destroy(s);
    if (st == SNLVK_OK && cut) *cut = c;
    return st;
}
