#include "ops/loss.h"

#include <stddef.h>

#include "ops/step_params.h"

_Static_assert(sizeof(loss_metrics) == LOSS_METRICS_SIZE, "loss_metrics size");
_Static_assert(offsetof(loss_metrics, top1) == 16 && offsetof(loss_metrics, last_ce) == 32,
               "loss_metrics must match shaders/loss_reduce.comp");

enum { ROW_WORDS = 3, ROWS_LOCAL = 64, REDUCE_LOCAL = 64 };

size_t loss_scratch_bytes(uint32_t n) { return (size_t)n * ROW_WORDS * 4; }

static snlvk_status need(const vk_buf *b, uint64_t bytes, const char *what)
{
    return vk_buf_need(b, bytes, "internal: loss", what);
}

snlvk_status op_classifier_loss(vk_seq *s, snlvk_context *ctx, const loss_args *a)
{
    if (a->n == 0 || a->classes == 0) return snlvk_fail(SNLVK_E_INVALID, "internal: loss over an empty batch");
    const uint64_t zbytes = (uint64_t)a->n * a->classes * 4;
    SNLVK_TRY(need(a->logits, zbytes, "logits"));
    SNLVK_TRY(need(a->labels, (uint64_t)a->n * 4, "labels"));
    if (a->teacher) SNLVK_TRY(need(a->teacher, zbytes, "teacher logits"));
    if (a->dlogits) SNLVK_TRY(need(a->dlogits, zbytes, "logit gradient"));
    SNLVK_TRY(need(a->params, STEP_PARAMS_SIZE, "step-params"));
    SNLVK_TRY(need(a->metrics, LOSS_METRICS_SIZE, "metrics"));
    SNLVK_TRY(need(a->scratch, loss_scratch_bytes(a->n), "scratch"));

    struct { uint32_t n, classes; } pr = {a->n, a->classes};
    vk_pipeline_desc d = {.shader = "loss_rows", .bindings = "ssssss", .push_size = sizeof pr, .n_spec = 2,
                          .spec = {a->teacher ? 1u : 0u, a->dlogits ? 1u : 0u}, .local_size = {ROWS_LOCAL, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    /* unused bindings get a buffer the kernel never touches in that specialisation */
    vk_binding binds[6] = {vk_bind(a->logits), vk_bind(a->labels), vk_bind(a->teacher ? a->teacher : a->logits),
                           vk_bind(a->dlogits ? a->dlogits : a->scratch), vk_bind(a->scratch), vk_bind(a->params)};
    SNLVK_TRY(vk_seq_dispatch(s, pipe, binds, 6, &pr, vk_div_up(a->n, ROWS_LOCAL), 1, 1));

    uint32_t n = a->n;
    vk_pipeline_desc dr = {.shader = "loss_reduce", .bindings = "ss", .push_size = sizeof n,
                           .local_size = {REDUCE_LOCAL, 1, 1}};
    SNLVK_TRY(vk_pipeline_get(ctx, &dr, &pipe));
    vk_binding rb[2] = {vk_bind(a->scratch), vk_bind(a->metrics)};
    return vk_seq_dispatch(s, pipe, rb, 2, &n, 1, 1, 1);
}

snlvk_status loss_metrics_alloc(snlvk_context *ctx, vk_buf *out) { return vk_buf_alloc(ctx, LOSS_METRICS_SIZE, out); }

snlvk_status loss_metrics_reset(snlvk_context *ctx, const vk_buf *metrics) { return vk_buf_fill(ctx, metrics, 0); }

snlvk_status op_loss_metrics_reset(vk_seq *s, const vk_buf *metrics) { return vk_seq_fill(s, metrics, 0); }

snlvk_status loss_metrics_read(snlvk_context *ctx, const vk_buf *metrics, loss_metrics *out)
{
    return vk_buf_read(ctx, metrics, 0, out, sizeof *out);
}
