/* The matrix multiply and the elementwise kernel against plain C references, on random
 * data at sizes that are not multiples of any tile; every variant, transposes, bias,
 * accumulation and batching. Outputs are poisoned first so an unwritten element fails. */
#include "harness.h"
#include "ops/gemm.h"
#include "vk/vk.h"

static void ref_gemm(const float *a, const float *b, const float *bias, double *c, int m, int n, int k, int ta, int tb,
                     float alpha, float beta, gemm_bias bm)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int kk = 0; kk < k; kk++) {
                double x = ta ? a[kk * m + i] : a[i * k + kk];
                double y = tb ? b[j * k + kk] : b[kk * n + j];
                acc += x * y;
            }
            double v = alpha * acc + (bm == GEMM_BIAS_COL ? bias[j] : bm == GEMM_BIAS_ROW ? bias[i] : 0.0);
            c[i * n + j] = v + beta * c[i * n + j];
        }
}

static void check_gemm(int m, int n, int k, int ta, int tb, gemm_bias bm, float beta, int batch, gemm_variant v)
{
    snlvk_context *ctx = h_context();
    int nb = batch ? batch : 1;
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    float *a = malloc(sa * nb * 4), *b = malloc(sb * nb * 4), *c = malloc(sc * nb * 4), *bias = malloc((size_t)(m > n ? m : n) * 4);
    double *ref = malloc(sc * nb * sizeof(double));
    h_fill(a, sa * nb, -1, 1);
    h_fill(b, sb * nb, -1, 1);
    h_fill(bias, (size_t)(m > n ? m : n), -1, 1);
    if (beta != 0) h_fill(c, sc * nb, -1, 1);
    else for (size_t i = 0; i < sc * nb; i++) c[i] = NAN; /* poison: every element must be written */
    for (size_t i = 0; i < sc * nb; i++) ref[i] = beta != 0 ? c[i] : 0;
    for (int q = 0; q < nb; q++)
        ref_gemm(a + q * sa, b + q * sb, bias, ref + q * sc, m, n, k, ta, tb, 1.0f, beta, bm);
    vk_buf ba, bb, bc, bbias;
    CHECK_OK(vk_buf_alloc(ctx, sa * nb * 4, &ba));
    CHECK_OK(vk_buf_alloc(ctx, sb * nb * 4, &bb));
    CHECK_OK(vk_buf_alloc(ctx, sc * nb * 4, &bc));
    CHECK_OK(vk_buf_alloc(ctx, (size_t)(m > n ? m : n) * 4, &bbias));
    CHECK_OK(vk_buf_write(ctx, &ba, 0, a, sa * nb * 4));
    CHECK_OK(vk_buf_write(ctx, &bb, 0, b, sb * nb * 4));
    CHECK_OK(vk_buf_write(ctx, &bc, 0, c, sc * nb * 4));
    CHECK_OK(vk_buf_write(ctx, &bbias, 0, bias, (size_t)(m > n ? m : n) * 4));
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    gemm_args g = {.a = &ba, .b = &bb, .c = &bc, .bias = bm ? &bbias : NULL, .m = (uint32_t)m, .n = (uint32_t)n,
                   .k = (uint32_t)k, .trans_a = ta, .trans_b = tb, .alpha = 1.0f, .beta = beta, .bias_mode = bm,
                   .batch = (uint32_t)batch, .a_bs = (uint32_t)sa, .b_bs = (uint32_t)sb, .c_bs = (uint32_t)sc,
                   .variant = v};
    CHECK_OK(op_gemm(s, ctx, &g));
    CHECK_OK(vk_seq_end(s));
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_buf_read(ctx, &bc, 0, c, sc * nb * 4));
    double err = h_rel_err(c, ref, sc * nb);
    CHECK(err < 1e-5, "%s %dx%dx%d ta=%d tb=%d bias=%d beta=%g batch=%d: rel err %.3g", gemm_variant_name(v), m, n, k,
          ta, tb, bm, beta, batch, err);
    vk_seq_destroy(s);
    vk_buf_free(ctx, &ba);
    vk_buf_free(ctx, &bb);
    vk_buf_free(ctx, &bc);
    vk_buf_free(ctx, &bbias);
    free(a), free(b), free(c), free(bias), free(ref);
}

static void sizes_for(gemm_variant v)
{
    static const int sz[][3] = {{1, 1, 1}, {7, 13, 5}, {127, 255, 129}, {512, 512, 512}};
    for (int i = 0; i < 4; i++) check_gemm(sz[i][0], sz[i][1], sz[i][2], 0, 0, GEMM_BIAS_NONE, 0, 0, v);
    /* transposes, bias, accumulation, batches at awkward sizes */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_gemm(33, 17, 65, ta, tb, GEMM_BIAS_NONE, 0, 0, v);
    check_gemm(9, 70, 31, 0, 1, GEMM_BIAS_COL, 0, 0, v);
    check_gemm(70, 9, 31, 1, 0, GEMM_BIAS_ROW, 0, 0, v);
    check_gemm(45, 23, 19, 1, 1, GEMM_BIAS_NONE, 1.0f, 0, v);
    check_gemm(13, 29, 11, 0, 0, GEMM_BIAS_NONE, 0, 3, v);
    /* dims multiples of four (the texel kernel's vec4 reads, every combination of A and B
     * along k or along rows / columns), blocks cut by the edge, a K % 4 tail, batches,
     * bias with accumulation, and fewer rows than a subgroup shares */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(36, 20, 64, ta, tb, GEMM_BIAS_NONE, 0, 0, v);
            check_gemm(36, 20, 66, ta, tb, GEMM_BIAS_NONE, 0, 0, v);
            check_gemm(12, 28, 20, ta, tb, GEMM_BIAS_NONE, 0, 3, v);
        }
    check_gemm(40, 24, 16, 0, 1, GEMM_BIAS_COL, 1.0f, 0, v);
    check_gemm(4, 4, 4, 0, 0, GEMM_BIAS_ROW, 0, 0, v);
}

static void test_gemm_texel(void) { sizes_for(GEMM_TEXEL); }
static void test_gemm_tiled(void) { sizes_for(GEMM_TILED); }

static void test_axpby(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 1000003 }; /* more elements than one dispatch covers: the grid-stride loop */
    float *a = malloc(N * 4), *b = malloc(N * 4), *y = malloc(N * 4);
    double *ref = malloc(N * sizeof(double));
    h_fill(a, N, -2, 2);
    h_fill(b, N, -2, 2);
    for (int i = 0; i < N; i++) {
        y[i] = NAN;
        ref[i] = 0.5 * a[i] - 3.0 * b[i];
    }
    vk_buf ba, bb, by;
    CHECK_OK(vk_buf_alloc(ctx, N * 4, &ba));
    CHECK_OK(vk_buf_alloc(ctx, N * 4, &bb));
    CHECK_OK(vk_buf_alloc(ctx, N * 4, &by));
    CHECK_OK(vk_buf_write(ctx, &ba, 0, a, N * 4));
    CHECK_OK(vk_buf_write(ctx, &bb, 0, b, N * 4));
    CHECK_OK(vk_buf_write(ctx, &by, 0, y, N * 4));
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 0));
    CHECK_OK(op_axpby(s, ctx, &ba, &bb, &by, N, 0.5f, -3.0f));
    CHECK_OK(vk_seq_end(s));
    CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_buf_read(ctx, &by, 0, y, N * 4));
    double err = h_rel_err(y, ref, N);
    CHECK(err < 1e-6, "rel err %.3g", err);
    vk_seq_destroy(s);
    vk_buf_free(ctx, &ba);
    vk_buf_free(ctx, &bb);
    vk_buf_free(ctx, &by);
    free(a), free(b), free(y), free(ref);
}

int main(void)
{
    RUN(test_gemm_texel);
    RUN(test_gemm_tiled);
    RUN(test_axpby);
    return h_finish();
}
