/* SNL mask tensors: ReLU counts on the device, binarization, and keeping exactly the
 * B largest entries over all masks together (the ReLU budget). */
#ifndef SNLVK_OPS_MASK_H
#define SNLVK_OPS_MASK_H
#include "vk/vk.h"

/* counts[slot] = weight * #{c > eps} over the n entries of `mask` (uint32, overwritten).
 * weight: 1 for pixel masks, H*W for channel masks. Record one per mask into slots of
 * one buffer, then read that buffer once for every layer's count. */
snlvk_status op_mask_count(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float eps,
                           const vk_buf *counts, uint32_t slot, uint32_t weight);

/* c = c > eps ? 1 : 0 in place (NaN -> 0). */
snlvk_status op_mask_binarize(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float eps);

/* c = 1 where c > thr or (c == thr and base + i < tie_cut), else 0, in place; NaN is
 * -inf. `base` is the mask's first index in the global order over all masks. */
snlvk_status op_mask_threshold(vk_seq *s, snlvk_context *ctx, const vk_buf *mask, uint32_t n, float thr,
                               uint32_t base, uint32_t tie_cut);

/* Where the global top-B cut falls: entries > thr are kept, and entries == thr whose
 * global index is < tie_cut. */
typedef struct mask_cut {
    float thr;
    uint32_t tie_cut;
    uint64_t kept;      /* = min(B, total) */
} mask_cut;

/* Exactly min(B, total) entries become 1 and the rest 0, over all n_masks masks
 * together, in the global order mask 0 entries, then mask 1, ...: the largest values
 * win, ties go to the lowest global index, NaN counts as -inf (tests/ref/ref_ops.h,
 * ref_mask_keep_top). Done once per run, so simply: the host reads every mask back
 * (a few hundred KB), sorts a copy to find the cut, then records and runs one
 * op_mask_threshold per mask; the result is exact. `cut` may be NULL. Waits for the
 * device. Counts entries, not ReLUs (a channel mask's entry is one entry). */
snlvk_status mask_keep_top(snlvk_context *ctx, const vk_buf *const *masks, const uint32_t *sizes, int n_masks,
                           uint64_t budget, mask_cut *cut);

/* The same cut for values already on the host (exposed for tests and tools). */
snlvk_status mask_find_cut(const float *values, uint64_t total, uint64_t budget, mask_cut *out);
#endif
