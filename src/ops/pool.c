#include "ops/pool.h"

enum { POOL_WG = 256, POOL_MAX_GROUPS = 4096 };

typedef struct pool_push {
    uint32_t nc, h, w, p, q, k, s, pad;
} pool_push;

snlvk_status pool_check(const pool_shape *s, int max_pool)
{
    const char *name = max_pool ? "max pool" : "avg pool";
    if (!s->n || !s->c || !s->h || !s->w || !s->k || !s->stride)
        return snlvk_fail(SNLVK_E_INVALID, "%s: every size must be positive", name);
    if (!max_pool && s->pad) return snlvk_fail(SNLVK_E_INVALID, "avg pool: padding is not supported");
    if (max_pool && s->pad > s->k / 2)
        return snlvk_fail(SNLVK_E_INVALID, "max pool: pad %u exceeds half the kernel size %u", s->pad, s->k);
    if (s->h + 2 * s->pad < s->k || s->w + 2 * s->pad < s->k)
        return snlvk_fail(SNLVK_E_INVALID, "%s: kernel %u is larger than the padded input %ux%u", name, s->k,
                          s->h + 2 * s->pad, s->w + 2 * s->pad);
    if ((uint64_t)s->n * s->c * s->h * s->w > INT32_MAX)
        return snlvk_fail(SNLVK_E_INVALID, "%s: more than 2^31 elements", name);
    return SNLVK_OK;
}

static snlvk_status need(const vk_buf *b, uint64_t elems, const char *what)
{
    return vk_buf_need(b, elems * 4, "pool", what);
}

/* Checks the buffer sizes and records `shader` over `work` items (outputs, input elements
 * or their vec4s: what one pass of its grid-stride loop handles); the shape is already
 * checked. spec0: its specialisation constant 0 (none if 0). */
static snlvk_status pool_dispatch(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const char *shader,
                                  const char *bindings, const vk_buf *const *bufs, const uint64_t *sizes,
                                  const char *const *names, uint64_t work, uint32_t spec0)
{
    pool_push p = {s->n * s->c, s->h, s->w, pool_out_h(s), pool_out_w(s), s->k, s->stride, s->pad};
    int nb = 0;
    vk_binding binds[3];
    for (; bindings[nb]; nb++) {
        SNLVK_TRY(need(bufs[nb], sizes[nb], names[nb]));
        binds[nb] = vk_bind(bufs[nb]);
    }
    vk_pipeline_desc d = {.shader = shader, .bindings = bindings, .push_size = sizeof p, .n_spec = spec0 ? 1 : 0,
                          .spec = {spec0}, .local_size = {POOL_WG, 1, 1}};
    const vk_pipeline *pipe;
    SNLVK_TRY(vk_pipeline_get(ctx, &d, &pipe));
    uint32_t groups = vk_div_up(work, POOL_WG);
    if (groups > POOL_MAX_GROUPS) groups = POOL_MAX_GROUPS;
    return vk_seq_dispatch(q, pipe, binds, nb, &p, groups, 1, 1);
}

static uint64_t in_size(const pool_shape *s) { return (uint64_t)s->n * s->c * s->h * s->w; }
static uint64_t out_size(const pool_shape *s) { return (uint64_t)s->n * s->c * pool_out_h(s) * pool_out_w(s); }

snlvk_status op_avgpool_forward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *x, const vk_buf *y)
{
    SNLVK_TRY(pool_check(s, 0));
    const vk_buf *bufs[2] = {x, y};
    uint64_t sizes[2] = {in_size(s), out_size(s)};
    return pool_dispatch(q, ctx, s, "avgpool_fwd", "ts", bufs, sizes, (const char *const[]){"x", "y"}, out_size(s), 0);
}

snlvk_status op_avgpool_backward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *dy,
                                 const vk_buf *dx)
{
    SNLVK_TRY(pool_check(s, 0));
    const vk_buf *bufs[2] = {dy, dx};
    uint64_t sizes[2] = {out_size(s), in_size(s)};
    /* the whole plane one window: avgpool_bwd.comp's GLOBAL (2: a vec4 an item) */
    const uint32_t hw = s->h * s->w;
    const uint32_t global = s->k == s->h && s->k == s->w ? (hw % 4 == 0 ? 2 : 1) : 0;
    return pool_dispatch(q, ctx, s, "avgpool_bwd", "ts", bufs, sizes, (const char *const[]){"dy", "dx"},
                         global == 2 ? in_size(s) / 4 : in_size(s), global);
}

snlvk_status op_maxpool_forward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *x, const vk_buf *y,
                                const vk_buf *argmax)
{
    SNLVK_TRY(pool_check(s, 1));
    const vk_buf *bufs[3] = {x, y, argmax};
    uint64_t sizes[3] = {in_size(s), out_size(s), out_size(s)};
    return pool_dispatch(q, ctx, s, "maxpool_fwd", "tss", bufs, sizes, (const char *const[]){"x", "y", "argmax"},
                         out_size(s), 0);
}

snlvk_status op_maxpool_backward(vk_seq *q, snlvk_context *ctx, const pool_shape *s, const vk_buf *dy,
                                 const vk_buf *argmax, const vk_buf *dx)
{
    SNLVK_TRY(pool_check(s, 1));
    const vk_buf *bufs[3] = {dy, argmax, dx};
    uint64_t sizes[3] = {out_size(s), out_size(s), in_size(s)};
    return pool_dispatch(q, ctx, s, "maxpool_bwd", "tss", bufs, sizes, (const char *const[]){"dy", "argmax", "dx"},
                         in_size(s), 0);
}
