/* Matrix multiply C = alpha * op(A) * op(B) + beta * C (+ bias), optionally batched.
 * Matrices are row-major; transposes are strides, so op(A) may be A or A^T for free. */
#ifndef SNLVK_OPS_GEMM_H
#define SNLVK_OPS_GEMM_H
#include "vk/vk.h"

typedef enum { GEMM_BIAS_NONE = 0, GEMM_BIAS_COL = 1, GEMM_BIAS_ROW = 2 } gemm_bias;
typedef enum { GEMM_AUTO = 0, GEMM_TEXEL = 1, GEMM_TILED = 2 } gemm_variant;

typedef struct gemm_args {
    const vk_buf *a, *b, *c;
    const vk_buf *bias;     /* NULL unless bias_mode != NONE */
    uint32_t m, n, k;
    int trans_a, trans_b;   /* A is stored k x m (trans_a) or m x k; B is n x k (trans_b) or k x n */
    float alpha, beta;      /* beta != 0 accumulates into C */
    gemm_bias bias_mode;
    uint32_t batch;         /* 0 or 1: one product; else `batch` products at the strides below */
    uint32_t a_bs, b_bs, c_bs;
    gemm_variant variant;   /* GEMM_AUTO: texel on CPU devices, tiled elsewhere (SNLVK_GEMM overrides) */
} gemm_args;

gemm_variant gemm_pick_variant(const snlvk_context *ctx, gemm_variant requested);
const char *gemm_variant_name(gemm_variant v);
snlvk_status op_gemm(vk_seq *s, snlvk_context *ctx, const gemm_args *g);

/* Elementwise y = alpha * a + beta * b over n floats. */
snlvk_status op_axpby(vk_seq *s, snlvk_context *ctx, const vk_buf *a, const vk_buf *b, const vk_buf *y, uint32_t n,
                      float alpha, float beta);
#endif
