#include "nn/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bn_act.h"
#include "ops/gemm.h"

#define GROW(arr, n, cap)                                                        \
    do {                                                                         \
        if ((n) == (cap)) {                                                      \
            int nc_ = (cap) ? (cap) * 2 : 16;                                    \
            void *np_ = realloc((arr), sizeof *(arr) * (size_t)nc_);             \
            if (!np_) return snlvk_fail(SNLVK_E_OOM, "out of host memory");     \
            (arr) = np_;                                                         \
            memset((arr) + (cap), 0, sizeof *(arr) * (size_t)(nc_ - (cap)));    \
            (cap) = nc_;                                                         \
        }                                                                        \
    } while (0)

static const char *archs[] = {"resnet18", "resnet34", "resnet8-mini", "wrn22-8"};

int nn_arch_known(const char *arch)
{
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(archs[i], arch) == 0) return 1;
    return 0;
}

const char *nn_arch_list(void) { return "resnet18, resnet34, resnet8-mini, wrn22-8"; }

/* ---- construction ---- */

static snlvk_status add_tensor(nn_model *m, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int *out)
{
    GROW(m->tensors, m->n_tensors, m->cap_tensors);
    nn_tensor *t = &m->tensors[m->n_tensors];
    t->n = n, t->c = c, t->h = h, t->w = w;
    size_t bytes = (size_t)n * c * h * w * 4;
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &t->value));
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &t->grad));
    *out = m->n_tensors++;
    return SNLVK_OK;
}

static snlvk_status add_param(nn_model *m, const char *name, nn_param_kind kind, int ndim, const uint32_t *shape,
                              int *out)
{
    GROW(m->params, m->n_params, m->cap_params);
    nn_param *p = &m->params[m->n_params];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind;
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    size_t bytes = (size_t)p->numel * 4;
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &p->value));
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &p->grad));
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &p->state[0]));
    SNLVK_TRY(vk_buf_alloc(m->ctx, bytes, &p->state[1]));
    *out = m->n_params++;
    return SNLVK_OK;
}

static snlvk_status add_buffer(nn_model *m, const char *name, uint32_t numel, int *out)
{
    GROW(m->buffers, m->n_buffers, m->cap_buffers);
    nn_buffer *b = &m->buffers[m->n_buffers];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->numel = numel;
    SNLVK_TRY(vk_buf_alloc(m->ctx, (size_t)numel * 4, &b->value));
    *out = m->n_buffers++;
    return SNLVK_OK;
}

static snlvk_status add_op(nn_model *m, nn_op_kind kind, nn_op **out)
{
    GROW(m->ops, m->n_ops, m->cap_ops);
    nn_op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in2 = op->param[0] = op->param[1] = op->buffer[0] = op->buffer[1] = -1;
    *out = op;
    return SNLVK_OK;
}

static snlvk_status conv(nn_model *m, const char *name, int in, uint32_t k, uint32_t ks, uint32_t stride,
                         uint32_t pad, int *out)
{
    const nn_tensor *x = &m->tensors[in];
    conv_shape cs = {x->n, x->c, x->h, x->w, k, ks, stride, pad};
    SNLVK_TRY(conv_check(&cs));
    char pname[NN_NAME];
    snprintf(pname, sizeof pname, "%s.weight", name);
    uint32_t shape[4] = {k, x->c, ks, ks};
    int w = -1;
    SNLVK_TRY(add_param(m, pname, NN_PARAM_WEIGHT, 4, shape, &w));
    int y = -1;
    SNLVK_TRY(add_tensor(m, cs.n, k, conv_out_h(&cs), conv_out_w(&cs), &y));
    size_t ws = conv_workspace_bytes(m->ctx, &cs, GEMM_AUTO);
    if (ws > m->conv_workspace.size) {
        vk_buf_free(m->ctx, &m->conv_workspace);
        SNLVK_TRY(vk_buf_alloc(m->ctx, ws, &m->conv_workspace));
    }
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_CONV, &op));
    op->in = in, op->out = y, op->param[0] = w, op->conv = cs;
    *out = y;
    return SNLVK_OK;
}

static snlvk_status bn(nn_model *m, const char *name, int in, int *out)
{
    const nn_tensor *x = &m->tensors[in];
    uint32_t c = x->c;
    char n1[NN_NAME], n2[NN_NAME];
    int gamma = -1, beta = -1, rm = -1, rv = -1, y = -1;
    snprintf(n1, sizeof n1, "%s.weight", name);
    snprintf(n2, sizeof n2, "%s.bias", name);
    SNLVK_TRY(add_param(m, n1, NN_PARAM_BN, 1, &c, &gamma));
    SNLVK_TRY(add_param(m, n2, NN_PARAM_BN, 1, &c, &beta));
    snprintf(n1, sizeof n1, "%s.running_mean", name);
    snprintf(n2, sizeof n2, "%s.running_var", name);
    SNLVK_TRY(add_buffer(m, n1, c, &rm));
    SNLVK_TRY(add_buffer(m, n2, c, &rv));
    SNLVK_TRY(add_tensor(m, x->n, x->c, x->h, x->w, &y));
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_BN, &op));
    op->in = in, op->out = y, op->param[0] = gamma, op->param[1] = beta, op->buffer[0] = rm, op->buffer[1] = rv;
    op->bn_index = m->n_bn++;
    snprintf(op->site, sizeof op->site, "%s", name);
    SNLVK_TRY(vk_buf_alloc(m->ctx, (size_t)c * 4, &op->save_mean));
    SNLVK_TRY(vk_buf_alloc(m->ctx, (size_t)c * 4, &op->save_invstd));
    *out = y;
    return SNLVK_OK;
}

static snlvk_status mrelu(nn_model *m, const char *site, int in, int *out)
{
    const nn_tensor *x = &m->tensors[in];
    char pname[NN_NAME];
    snprintf(pname, sizeof pname, "%s.alphas", site);
    uint32_t shape[4] = {1, x->c, m->granularity == NN_CHANNEL ? 1 : x->h, m->granularity == NN_CHANNEL ? 1 : x->w};
    int c = -1, y = -1;
    SNLVK_TRY(add_param(m, pname, NN_PARAM_MASK, 4, shape, &c));
    SNLVK_TRY(add_tensor(m, x->n, x->c, x->h, x->w, &y));
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_MRELU, &op));
    op->in = in, op->out = y, op->param[0] = c;
    snprintf(op->site, sizeof op->site, "%s", site);
    *out = y;
    return SNLVK_OK;
}

static snlvk_status add(nn_model *m, int a, int b, int *out)
{
    const nn_tensor *x = &m->tensors[a];
    int y = -1;
    SNLVK_TRY(add_tensor(m, x->n, x->c, x->h, x->w, &y));
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_ADD, &op));
    op->in = a, op->in2 = b, op->out = y;
    *out = y;
    return SNLVK_OK;
}

static snlvk_status gap(nn_model *m, int in, int *out)
{
    const nn_tensor *x = &m->tensors[in];
    int y = -1;
    SNLVK_TRY(add_tensor(m, x->n, x->c, 1, 1, &y));
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_GAP, &op));
    op->in = in, op->out = y;
    *out = y;
    return SNLVK_OK;
}

static snlvk_status linear(nn_model *m, const char *name, int in, uint32_t out_features, int *out)
{
    const nn_tensor *x = &m->tensors[in];
    uint32_t in_features = x->c * x->h * x->w;
    char n1[NN_NAME], n2[NN_NAME];
    snprintf(n1, sizeof n1, "%s.weight", name);
    snprintf(n2, sizeof n2, "%s.bias", name);
    uint32_t ws[2] = {out_features, in_features};
    int w = -1, b = -1, y = -1;
    SNLVK_TRY(add_param(m, n1, NN_PARAM_WEIGHT, 2, ws, &w));
    SNLVK_TRY(add_param(m, n2, NN_PARAM_BIAS, 1, &out_features, &b));
    SNLVK_TRY(add_tensor(m, x->n, out_features, 1, 1, &y));
    nn_op *op = NULL;
    SNLVK_TRY(add_op(m, NN_LINEAR, &op));
    op->in = in, op->out = y, op->param[0] = w, op->param[1] = b;
    *out = y;
    return SNLVK_OK;
}

/* The reference BasicBlock: conv3x3-BN-mask-conv3x3-BN, + shortcut, mask after the add. */
static snlvk_status basic_block(nn_model *m, const char *name, int in, uint32_t planes, uint32_t stride, int *out)
{
    char n[NN_NAME];
    int t, s;
    snprintf(n, sizeof n, "%s.conv1", name);
    SNLVK_TRY(conv(m, n, in, planes, 3, stride, 1, &t));
    snprintf(n, sizeof n, "%s.bn1", name);
    SNLVK_TRY(bn(m, n, t, &t));
    snprintf(n, sizeof n, "%s.alpha1", name);
    SNLVK_TRY(mrelu(m, n, t, &t));
    snprintf(n, sizeof n, "%s.conv2", name);
    SNLVK_TRY(conv(m, n, t, planes, 3, 1, 1, &t));
    snprintf(n, sizeof n, "%s.bn2", name);
    SNLVK_TRY(bn(m, n, t, &t));
    s = in;
    if (stride != 1 || m->tensors[in].c != planes) {
        snprintf(n, sizeof n, "%s.shortcut.0", name);
        SNLVK_TRY(conv(m, n, in, planes, 1, stride, 0, &s));
        snprintf(n, sizeof n, "%s.shortcut.1", name);
        SNLVK_TRY(bn(m, n, s, &s));
    }
    SNLVK_TRY(add(m, t, s, &t));
    snprintf(n, sizeof n, "%s.alpha2", name);
    SNLVK_TRY(mrelu(m, n, t, &t));
    *out = t;
    return SNLVK_OK;
}

/* The reference WideBasicBlock (pre-activation): BN-mask-conv3x3(stride)-BN-mask-conv3x3,
 * + shortcut. When the width changes the shortcut is a conv1x1 (stride) "convShortcut" of
 * the *activated* input, otherwise the block input itself. alpha1 covers the block's input
 * resolution, alpha2 its output resolution. The activated input can feed both conv1 and
 * convShortcut: their backward-data accumulates into its gradient. */
static snlvk_status wide_block(nn_model *m, const char *name, int in, uint32_t planes, uint32_t stride, int *out)
{
    char n[NN_NAME];
    int a = -1, t = -1, s = -1;
    const int equal = m->tensors[in].c == planes;
    if (equal && stride != 1)
        return snlvk_fail(SNLVK_E_INVALID, "internal: %s: identity shortcut with stride %u", name, stride);
    snprintf(n, sizeof n, "%s.bn1", name);
    SNLVK_TRY(bn(m, n, in, &a));
    snprintf(n, sizeof n, "%s.alpha1", name);
    SNLVK_TRY(mrelu(m, n, a, &a));
    snprintf(n, sizeof n, "%s.conv1", name);
    SNLVK_TRY(conv(m, n, a, planes, 3, stride, 1, &t));
    snprintf(n, sizeof n, "%s.bn2", name);
    SNLVK_TRY(bn(m, n, t, &t));
    snprintf(n, sizeof n, "%s.alpha2", name);
    SNLVK_TRY(mrelu(m, n, t, &t));
    snprintf(n, sizeof n, "%s.conv2", name);
    SNLVK_TRY(conv(m, n, t, planes, 3, 1, 1, &t));
    s = in;
    if (!equal) {
        snprintf(n, sizeof n, "%s.convShortcut", name);
        SNLVK_TRY(conv(m, n, a, planes, 1, stride, 0, &s));
    }
    SNLVK_TRY(add(m, s, t, out));
    return SNLVK_OK;
}

static int is_wrn(const char *arch) { return strcmp(arch, "wrn22-8") == 0; }

static snlvk_status build(nn_model *m)
{
    int t;
    SNLVK_TRY(add_tensor(m, m->batch, m->in_c, m->in_h, m->in_w, &m->input));
    if (strcmp(m->arch, "resnet8-mini") == 0) {
        SNLVK_TRY(conv(m, "conv1", m->input, 16, 3, 1, 1, &t));
        SNLVK_TRY(bn(m, "bn1", t, &t));
        SNLVK_TRY(mrelu(m, "alpha1", t, &t));
        static const uint32_t widths[3] = {16, 32, 64}, strides[3] = {1, 2, 2};
        for (int l = 0; l < 3; l++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.0", l + 1);
            SNLVK_TRY(basic_block(m, name, t, widths[l], strides[l], &t));
        }
    } else if (is_wrn(m->arch)) {
        /* WideResNet-22-8 of the reference: (22-4)/6 = 3 blocks per stage, widths
         * 16 -> 128/256/512; a final BN with no mask before the pool; "fc" classifier */
        static const uint32_t widths[3] = {128, 256, 512}, strides[3] = {1, 2, 2};
        SNLVK_TRY(conv(m, "conv1", m->input, 16, 3, 1, 1, &t));
        for (int l = 0; l < 3; l++)
            for (int b = 0; b < 3; b++) {
                char name[32];
                snprintf(name, sizeof name, "block%d.layer.%d", l + 1, b);
                SNLVK_TRY(wide_block(m, name, t, widths[l], b == 0 ? strides[l] : 1, &t));
            }
        SNLVK_TRY(bn(m, "bn1", t, &t));
    } else {
        /* resnet18 / resnet34 of the reference ("resnet18_in"): no ReLU after the stem */
        static const int blocks18[4] = {2, 2, 2, 2}, blocks34[4] = {3, 4, 6, 3};
        const int *blocks = strcmp(m->arch, "resnet34") == 0 ? blocks34 : blocks18;
        SNLVK_TRY(conv(m, "conv1", m->input, 64, 3, 1, 1, &t));
        SNLVK_TRY(bn(m, "bn1", t, &t));
        for (int l = 0; l < 4; l++)
            for (int b = 0; b < blocks[l]; b++) {
                char name[32];
                snprintf(name, sizeof name, "layer%d.%d", l + 1, b);
                SNLVK_TRY(basic_block(m, name, t, 64u << l, (l > 0 && b == 0) ? 2 : 1, &t));
            }
    }
    SNLVK_TRY(gap(m, t, &t));
    SNLVK_TRY(linear(m, is_wrn(m->arch) ? "fc" : "linear", t, m->classes, &m->logits));
    m->bn_batches = calloc((size_t)(m->n_bn ? m->n_bn : 1), sizeof *m->bn_batches);
    if (!m->bn_batches) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    return SNLVK_OK;
}

snlvk_status nn_model_create(snlvk_context *ctx, const char *arch, uint32_t batch, uint32_t in_c, uint32_t in_h,
                             uint32_t in_w, uint32_t classes, nn_granularity g, nn_model **out)
{
    *out = NULL;
    if (!nn_arch_known(arch))
        return snlvk_fail(SNLVK_E_INVALID, "model '%s': expected one of %s", arch, nn_arch_list());
    if (!batch || !in_c || !in_h || !in_w || classes < 2)
        return snlvk_fail(SNLVK_E_INVALID, "model %s: batch, input shape and classes (>= 2) must be positive", arch);
    /* two stride-2 stages (resnet8-mini, wrn22-8) or three (resnet18/34) */
    uint32_t min_size = strcmp(arch, "resnet8-mini") == 0 || is_wrn(arch) ? 4 : 8;
    if (in_h < min_size || in_w < min_size)
        return snlvk_fail(SNLVK_E_INVALID, "model %s: input %ux%u is too small (at least %ux%u)", arch, in_h, in_w,
                          min_size, min_size);
    nn_model *m = calloc(1, sizeof *m);
    if (!m) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    m->ctx = ctx;
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->batch = batch, m->in_c = in_c, m->in_h = in_h, m->in_w = in_w, m->classes = classes;
    m->granularity = g;
    snlvk_status s = build(m);
    if (s != SNLVK_OK) {
        nn_model_destroy(m);
        return s;
    }
    *out = m;
    return SNLVK_OK;
}

void nn_model_destroy(nn_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) {
        vk_buf_free(m->ctx, &m->tensors[i].value);
        vk_buf_free(m->ctx, &m->tensors[i].grad);
    }
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = &m->params[i];
        vk_buf_free(m->ctx, &p->value);
        vk_buf_free(m->ctx, &p->grad);
        vk_buf_free(m->ctx, &p->state[0]);
        vk_buf_free(m->ctx, &p->state[1]);
    }
    for (int i = 0; i < m->n_buffers; i++) vk_buf_free(m->ctx, &m->buffers[i].value);
    for (int i = 0; i < m->n_ops; i++) {
        vk_buf_free(m->ctx, &m->ops[i].save_mean);
        vk_buf_free(m->ctx, &m->ops[i].save_invstd);
    }
    vk_buf_free(m->ctx, &m->conv_workspace);
    free(m->tensors);
    free(m->params);
    free(m->buffers);
    free(m->ops);
    free(m->bn_batches);
    free(m);
}

/* ---- initialisation ---- */

typedef struct rng { uint64_t s; } rng;
static double rng_uniform(rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_normal(rng *r)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

snlvk_status nn_model_init(nn_model *m, uint64_t seed)
{
    rng r = {seed * 0x2545f4914f6cdd1dull + 1};
    size_t cap = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].numel > cap) cap = m->params[i].numel;
    for (int i = 0; i < m->n_buffers; i++)
        if (m->buffers[i].numel > cap) cap = m->buffers[i].numel;
    float *h = malloc(cap * sizeof *h);
    if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    snlvk_status s = SNLVK_OK;
    const int wrn = is_wrn(m->arch);
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++) {
        nn_param *p = &m->params[i];
        uint32_t fan_in = p->ndim >= 2 ? p->numel / p->shape[0] : 1;
        const char *last = strrchr(p->name, '.');
        for (uint32_t j = 0; j < p->numel; j++) {
            switch (p->kind) {
            case NN_PARAM_WEIGHT:
                if (!wrn)
                    h[j] = (float)(rng_normal(&r) * sqrt(2.0 / fan_in));
                else if (p->ndim == 4) /* kaiming_normal_(mode='fan_out', nonlinearity='relu') */
                    h[j] = (float)(rng_normal(&r) * sqrt(2.0 / ((double)p->shape[0] * p->shape[2] * p->shape[3])));
                else /* the Linear keeps PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
                    h[j] = (float)((2 * rng_uniform(&r) - 1) / sqrt((double)fan_in));
                break;
            case NN_PARAM_BIAS: {
                if (wrn) { /* the reference zeroes the Linear bias */
                    h[j] = 0.0f;
                    break;
                }
                /* PyTorch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of its weight */
                uint32_t wfan = 1;
                for (int q = 0; q < m->n_params; q++)
                    if (q + 1 == i && m->params[q].ndim == 2) wfan = m->params[q].shape[1];
                double bound = 1.0 / sqrt((double)wfan);
                h[j] = (float)((2 * rng_uniform(&r) - 1) * bound);
                break;
            }
            case NN_PARAM_BN: h[j] = (last && strcmp(last, ".weight") == 0) ? 1.0f : 0.0f; break;
            case NN_PARAM_MASK: h[j] = 1.0f; break;
            }
        }
        s = vk_buf_write(m->ctx, &p->value, 0, h, (size_t)p->numel * 4);
        if (s == SNLVK_OK) s = vk_buf_fill(m->ctx, &p->state[0], 0);
        if (s == SNLVK_OK) s = vk_buf_fill(m->ctx, &p->state[1], 0);
    }
    for (int i = 0; i < m->n_buffers && s == SNLVK_OK; i++) {
        nn_buffer *b = &m->buffers[i];
        float v = strstr(b->name, "running_var") ? 1.0f : 0.0f;
        for (uint32_t j = 0; j < b->numel; j++) h[j] = v;
        s = vk_buf_write(m->ctx, &b->value, 0, h, (size_t)b->numel * 4);
    }
    for (int i = 0; i < m->n_bn; i++) m->bn_batches[i] = 0;
    free(h);
    return s;
}

/* ---- recording ---- */

static bn_shape bn_shape_of(const nn_tensor *t) { return (bn_shape){t->n, t->c, t->h, t->w}; }

/* Where the tape fuses (ops/bn_act.h), found from its structure:
 *   BN -> MRELU, the BN output read by the masked ReLU alone: one forward pass after the
 *     statistics (the BN output is not stored unless store_relu_inputs), one fused
 *     backward (the BN is skipped);
 *   BN [+ BN'd or plain shortcut] -> ADD -> MRELU, each intermediate read once: the add
 *     normalises, adds and applies the mask in one pass, storing the add's output (the
 *     masked ReLU's backward reads it); the backward is unfused.
 * act[i] for a masked ReLU: the BN it fuses with, or -2 when the add before it applies it
 * (-1: alone). bn_of_add[i][0..1] for an add: its fused BNs (-1: the operand as it is;
 * [0] = -1 too: no fusion). stats[i] for a BN: only its statistics run at its place. */
typedef struct fuse_plan {
    int *act, *stats, *producer, *consumers, (*bn_of_add)[2];
} fuse_plan;

static void plan_free(fuse_plan *p)
{
    free(p->act), free(p->stats), free(p->producer), free(p->consumers), free(p->bn_of_add);
    memset(p, 0, sizeof *p);
}

static snlvk_status plan_make(const nn_model *m, fuse_plan *p)
{
    memset(p, 0, sizeof *p);
    const size_t no = (size_t)(m->n_ops ? m->n_ops : 1), nt = (size_t)(m->n_tensors ? m->n_tensors : 1);
    p->act = malloc(no * sizeof *p->act);
    p->stats = calloc(no, sizeof *p->stats);
    p->bn_of_add = malloc(no * sizeof *p->bn_of_add);
    p->producer = malloc(nt * sizeof *p->producer);
    p->consumers = calloc(nt, sizeof *p->consumers);
    if (!p->act || !p->stats || !p->bn_of_add || !p->producer || !p->consumers) {
        plan_free(p);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    for (size_t t = 0; t < nt; t++) p->producer[t] = -1;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        p->producer[op->out] = i;
        p->consumers[op->in]++;
        if (op->in2 >= 0) p->consumers[op->in2]++;
        p->act[i] = -1;
        p->bn_of_add[i][0] = p->bn_of_add[i][1] = -1;
    }
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        if (op->kind != NN_MRELU || p->consumers[op->in] != 1) continue;
        const int j = p->producer[op->in];
        if (j < 0) continue;
        if (m->ops[j].kind == NN_BN) {
            p->act[i] = j;
            p->stats[j] = 1;
        } else if (m->ops[j].kind == NN_ADD && m->ops[j].in != m->ops[j].in2) {
            int bn[2];
            const int in[2] = {m->ops[j].in, m->ops[j].in2};
            for (int k = 0; k < 2; k++) {
                const int pk = p->producer[in[k]];
                bn[k] = pk >= 0 && m->ops[pk].kind == NN_BN && p->consumers[in[k]] == 1 ? pk : -1;
            }
            if (bn[0] < 0 && bn[1] < 0) continue; /* an add of two plain tensors stays an add */
            if (bn[0] < 0) bn[0] = bn[1], bn[1] = -1; /* [0] is a BN'd operand */
            p->bn_of_add[j][0] = bn[0];
            p->bn_of_add[j][1] = bn[1];
            p->stats[bn[0]] = 1;
            if (bn[1] >= 0) p->stats[bn[1]] = 1;
            p->act[i] = -2;
        }
    }
    return SNLVK_OK;
}

static mrelu_shape mrelu_shape_of(const nn_model *m, const nn_tensor *t)
{
    return (mrelu_shape){t->n, t->c, t->h, t->w, m->granularity == NN_CHANNEL};
}

/* A BN op's input and coefficients for the fused ops: the batch's (train) or running statistics. */
static bn_norm norm_of(const nn_model *m, const nn_op *bn, int train)
{
    return (bn_norm){&m->tensors[bn->in].value, &m->params[bn->param[0]].value, &m->params[bn->param[1]].value,
                     train ? &bn->save_mean : &m->buffers[bn->buffer[0]].value,
                     train ? &bn->save_invstd : &m->buffers[bn->buffer[1]].value};
}

static snlvk_status record_forward(nn_model *m, vk_seq *q, int train, const fuse_plan *fp)
{
    snlvk_context *ctx = m->ctx;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        const nn_tensor *x = &m->tensors[op->in], *y = &m->tensors[op->out];
        if (op->kind == NN_BN && fp->stats[i]) {
            /* normalised by the fused op that reads it */
            bn_shape s = bn_shape_of(x);
            if (train)
                SNLVK_TRY(op_bn_statistics(q, ctx, &s, &x->value, &m->buffers[op->buffer[0]].value,
                                           &m->buffers[op->buffer[1]].value, &op->save_mean, &op->save_invstd,
                                           BN_MOMENTUM, BN_EPS));
            continue;
        }
        if (op->kind == NN_MRELU && fp->act[i] == -2) continue; /* applied by the add */
        if (op->kind == NN_MRELU && fp->act[i] >= 0) {
            const nn_op *bn = &m->ops[fp->act[i]];
            mrelu_shape s = mrelu_shape_of(m, x);
            bn_norm nb = norm_of(m, bn, train);
            SNLVK_TRY(op_bn_act_forward(q, ctx, &s, !train, &nb, NULL, NULL, &m->params[op->param[0]].value,
                                        m->store_relu_inputs ? &x->value : NULL, &y->value, BN_EPS));
            continue;
        }
        if (op->kind == NN_ADD && fp->bn_of_add[i][0] >= 0) {
            /* the masked ReLU reading the add: the op after the add's output's producer */
            int a = -1;
            for (int k = i + 1; k < m->n_ops && a < 0; k++)
                if (m->ops[k].kind == NN_MRELU && m->ops[k].in == op->out) a = k;
            if (a < 0) return snlvk_fail(SNLVK_E_INVALID, "internal: a fused add without its masked ReLU");
            const nn_op *bn0 = &m->ops[fp->bn_of_add[i][0]];
            const int b1 = fp->bn_of_add[i][1];
            const int other = bn0->out == op->in ? op->in2 : op->in;
            mrelu_shape s = mrelu_shape_of(m, y);
            bn_norm n0 = norm_of(m, bn0, train), n1 = {0};
            if (b1 >= 0) n1 = norm_of(m, &m->ops[b1], train);
            SNLVK_TRY(op_bn_act_forward(q, ctx, &s, !train, &n0, b1 >= 0 ? NULL : &m->tensors[other].value,
                                        b1 >= 0 ? &n1 : NULL, &m->params[m->ops[a].param[0]].value, &y->value,
                                        &m->tensors[m->ops[a].out].value, BN_EPS));
            continue;
        }
        switch (op->kind) {
        case NN_CONV:
            SNLVK_TRY(op_conv2d_forward(q, ctx, &op->conv, &x->value, &m->params[op->param[0]].value, NULL, &y->value,
                                        &m->conv_workspace, GEMM_AUTO));
            break;
        case NN_BN: {
            bn_shape s = bn_shape_of(x);
            const vk_buf *g = &m->params[op->param[0]].value, *b = &m->params[op->param[1]].value;
            const vk_buf *rm = &m->buffers[op->buffer[0]].value, *rv = &m->buffers[op->buffer[1]].value;
            if (train)
                SNLVK_TRY(op_bn_forward_train(q, ctx, &s, &x->value, g, b, rm, rv, &y->value, &op->save_mean,
                                              &op->save_invstd, BN_MOMENTUM, BN_EPS));
            else
                SNLVK_TRY(op_bn_forward_eval(q, ctx, &s, &x->value, g, b, rm, rv, &y->value, BN_EPS));
            break;
        }
        case NN_MRELU: {
            mrelu_shape s = {x->n, x->c, x->h, x->w, m->granularity == NN_CHANNEL};
            SNLVK_TRY(op_masked_relu_forward(q, ctx, &s, &x->value, &m->params[op->param[0]].value, &y->value));
            break;
        }
        case NN_ADD:
            SNLVK_TRY(op_axpby(q, ctx, &x->value, &m->tensors[op->in2].value, &y->value,
                               x->n * x->c * x->h * x->w, 1.0f, 1.0f));
            break;
        case NN_GAP: {
            pool_shape s = {x->n, x->c, x->h, x->w, x->h, x->h, 0};
            if (x->h != x->w) return snlvk_fail(SNLVK_E_UNSUPPORTED, "global average pool of a non-square map");
            SNLVK_TRY(op_avgpool_forward(q, ctx, &s, &x->value, &y->value));
            break;
        }
        case NN_LINEAR: {
            uint32_t in_f = x->c * x->h * x->w;
            gemm_args g = {.a = &x->value, .b = &m->params[op->param[0]].value, .c = &y->value,
                           .bias = &m->params[op->param[1]].value, .m = x->n, .n = y->c, .k = in_f,
                           .trans_b = 1, .alpha = 1.0f, .bias_mode = GEMM_BIAS_COL};
            SNLVK_TRY(op_gemm(q, ctx, &g));
            break;
        }
        }
    }
    return SNLVK_OK;
}

snlvk_status nn_record_forward(nn_model *m, vk_seq *q, int train)
{
    fuse_plan fp;
    SNLVK_TRY(plan_make(m, &fp));
    snlvk_status s = record_forward(m, q, train, &fp);
    plan_free(&fp);
    return s;
}

void nn_model_count_batch(nn_model *m)
{
    for (int i = 0; i < m->n_bn; i++) m->bn_batches[i]++;
}

/* Which gradient buffer holds each tensor's gradient (owner[t]'s): an add passes its
 * output's gradient to an operand unchanged, so where that is safe the operand's gradient
 * is the output's buffer instead of a copy (below). */
typedef struct grad_map {
    int *owner;
    char *written; /* by owner: a contribution is there (later ones accumulate) */
} grad_map;

static const vk_buf *G(const nn_model *m, const grad_map *g, int t) { return &m->tensors[g->owner[t]].grad; }
static float beta_of(const grad_map *g, int t) { return g->written[g->owner[t]] ? 1.0f : 0.0f; }

/* The add at op i: operand u may take the output's gradient buffer when no gradient has
 * reached u yet and u's other consumers (which accumulate into it later in the backward)
 * all run before, in the backward, every op that reads the buffer as the add's output
 * gradient: the producer of the other operand, when that one shares it too. */
static void add_aliases(const nn_model *m, const fuse_plan *fp, const grad_map *g, int i, int alias[2])
{
    const nn_op *op = &m->ops[i];
    const int in[2] = {op->in, op->in2};
    int last_other[2]; /* the latest other consumer of each operand (-1: none) */
    for (int k = 0; k < 2; k++) {
        alias[k] = op->in != op->in2 && !g->written[g->owner[in[k]]];
        last_other[k] = -1;
        for (int j = 0; j < i; j++)
            if (m->ops[j].in == in[k] || m->ops[j].in2 == in[k]) last_other[k] = j;
    }
    for (int k = 0; k < 2; k++) {
        const int o = 1 - k; /* k's other consumers write the buffer o's producer reads */
        if (alias[k] && alias[o] && last_other[k] >= 0 && !(fp->producer[in[o]] > last_other[k])) alias[k] = 0;
    }
}

snlvk_status nn_record_backward(nn_model *m, vk_seq *q, int frozen_masks, const vk_buf *lambda, uint32_t lambda_index)
{
    snlvk_context *ctx = m->ctx;
    /* A tensor read by two ops (a block input: conv1 and the shortcut) receives two
     * gradient contributions: the first overwrites, the second accumulates. */
    fuse_plan fp;
    SNLVK_TRY(plan_make(m, &fp));
    grad_map gm = {malloc((size_t)m->n_tensors * sizeof *gm.owner), calloc((size_t)m->n_tensors, 1)};
    char *skip = calloc((size_t)(m->n_ops ? m->n_ops : 1), 1);
    if (!gm.owner || !gm.written || !skip) {
        free(gm.owner), free(gm.written), free(skip);
        plan_free(&fp);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    for (int t = 0; t < m->n_tensors; t++) gm.owner[t] = t;
    gm.written[m->logits] = 1;
    snlvk_status s = SNLVK_OK;
    for (int i = m->n_ops - 1; i >= 0 && s == SNLVK_OK; i--) {
        const nn_op *op = &m->ops[i];
        const nn_tensor *x = &m->tensors[op->in], *y = &m->tensors[op->out];
        if (skip[i] || !gm.written[gm.owner[op->out]]) continue; /* fused, or no gradient reaches this op */
        int need_dx = op->in != m->input;
        float beta = beta_of(&gm, op->in);
        const vk_buf *dx = G(m, &gm, op->in), *dy = G(m, &gm, op->out);
        switch (op->kind) {
        case NN_CONV: {
            nn_param *w = &m->params[op->param[0]];
            s = op_conv2d_backward_filter(q, ctx, &op->conv, dy, &x->value, &w->grad, &m->conv_workspace, 0.0f,
                                          GEMM_AUTO);
            if (s == SNLVK_OK && need_dx)
                s = op_conv2d_backward_data(q, ctx, &op->conv, dy, &w->value, dx, &m->conv_workspace, beta,
                                            GEMM_AUTO);
            break;
        }
        case NN_BN: {
            bn_shape bs = bn_shape_of(x);
            s = op_bn_backward(q, ctx, &bs, dy, &x->value, &m->params[op->param[0]].value, &op->save_mean,
                               &op->save_invstd, dx, &m->params[op->param[0]].grad, &m->params[op->param[1]].grad,
                               beta);
            break;
        }
        case NN_MRELU: {
            mrelu_shape ms = mrelu_shape_of(m, x);
            nn_param *c = &m->params[op->param[0]];
            if (fp.act[i] >= 0) {
                /* with its BN: the gradient goes to the BN's input */
                const int j = fp.act[i];
                const nn_op *bn = &m->ops[j];
                bn_norm nb = norm_of(m, bn, 1);
                s = op_bn_act_backward(q, ctx, &ms, dy, &nb, &c->value, G(m, &gm, bn->in), beta_of(&gm, bn->in),
                                       &m->params[bn->param[0]].grad, &m->params[bn->param[1]].grad,
                                       frozen_masks ? NULL : &c->grad, lambda, lambda_index);
                gm.written[gm.owner[bn->in]] = 1;
                skip[j] = 1;
                break;
            }
            if (beta != 0.0f) {
                s = snlvk_fail(SNLVK_E_INVALID, "internal: masked ReLU input with two consumers");
                break;
            }
            s = op_masked_relu_backward(q, ctx, &ms, dy, &x->value, &c->value, dx, frozen_masks ? NULL : &c->grad,
                                        lambda, lambda_index);
            break;
        }
        case NN_ADD: {
            uint32_t n = x->n * x->c * x->h * x->w;
            int alias[2];
            add_aliases(m, &fp, &gm, i, alias);
            const int in[2] = {op->in, op->in2};
            for (int k = 0; k < 2 && s == SNLVK_OK; k++) {
                if (alias[k]) {
                    gm.owner[in[k]] = gm.owner[op->out];
                    continue;
                }
                s = op_axpby(q, ctx, dy, G(m, &gm, in[k]), G(m, &gm, in[k]), n, 1.0f, beta_of(&gm, in[k]));
                gm.written[gm.owner[in[k]]] = 1;
            }
            break;
        }
        case NN_GAP: {
            pool_shape ps = {x->n, x->c, x->h, x->w, x->h, x->h, 0};
            if (beta != 0.0f) {
                s = snlvk_fail(SNLVK_E_INVALID, "internal: pooled tensor with two consumers");
                break;
            }
            s = op_avgpool_backward(q, ctx, &ps, dy, dx);
            break;
        }
        case NN_LINEAR: {
            uint32_t in_f = x->c * x->h * x->w;
            nn_param *w = &m->params[op->param[0]], *b = &m->params[op->param[1]];
            /* dW[O,I] = dY^T X ; db = column sums of dY ; dX = dY W */
            gemm_args gw = {.a = dy, .b = &x->value, .c = &w->grad, .m = y->c, .n = in_f, .k = x->n,
                            .trans_a = 1, .alpha = 1.0f};
            s = op_gemm(q, ctx, &gw);
            bn_shape cs = {y->n, y->c, 1, 1};
            if (s == SNLVK_OK) s = op_channel_sum(q, ctx, &cs, dy, &b->grad, 0.0f);
            if (s == SNLVK_OK && need_dx) {
                gemm_args gx = {.a = dy, .b = &w->value, .c = dx, .m = x->n, .n = in_f, .k = y->c,
                                .alpha = 1.0f, .beta = beta};
                s = op_gemm(q, ctx, &gx);
            }
            break;
        }
        }
        gm.written[gm.owner[op->in]] = 1;
    }
    free(gm.owner), free(gm.written), free(skip);
    plan_free(&fp);
    return s;
}

int nn_find_param(const nn_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

int nn_find_buffer(const nn_model *m, const char *name)
{
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0) return i;
    return -1;
}

uint64_t nn_total_relus(const nn_model *m)
{
    uint64_t total = 0;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == NN_MRELU) {
            const nn_tensor *x = &m->tensors[m->ops[i].in];
            total += (uint64_t)x->c * x->h * x->w;
        }
    return total;
}

double nn_forward_flops(const nn_model *m)
{
    double f = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        const nn_tensor *y = &m->tensors[op->out], *x = &m->tensors[op->in];
        if (op->kind == NN_CONV) f += 2.0 * y->c * y->h * y->w * (double)op->conv.c * op->conv.ksize * op->conv.ksize;
        else if (op->kind == NN_LINEAR) f += 2.0 * y->c * (double)x->c * x->h * x->w;
    }
    return f;
}
