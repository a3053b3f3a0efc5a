#include "nn/checkpoint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensorfile.h"

void ckpt_meta_set(ckpt_meta *m, const char *key, const char *fmt, ...)
{
    int i = 0;
    while (i < m->n && strcmp(m->key[i], key) != 0) i++;
    if (i == CKPT_MAX_META) return;
    if (i == m->n) m->n++;
    snprintf(m->key[i], sizeof m->key[i], "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->value[i], sizeof m->value[i], fmt, ap);
    va_end(ap);
}

const char *ckpt_meta_get(const ckpt_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) return m->value[i];
    return NULL;
}

/* One entry per tensor to save: its host copy and PyTorch shape. */
typedef struct entry { char name[NN_NAME + 16]; tf_dtype dtype; int ndim; uint64_t shape[4]; uint64_t numel; void *data; } entry;

static snlvk_status read_buf(snlvk_context *ctx, const vk_buf *b, uint64_t numel, void **out)
{
    *out = malloc(numel * 4 + 1);
    if (!*out) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    return vk_buf_read(ctx, b, 0, *out, numel * 4);
}

snlvk_status ckpt_save(nn_model *m, const char *path, const ckpt_meta *meta, int with_optim)
{
    int cap = m->n_params * 3 + m->n_buffers + m->n_bn + 1;
    entry *e = calloc((size_t)cap, sizeof *e);
    if (!e) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    int n = 0;
    snlvk_status s = SNLVK_OK;
    /* state_dict order: for each module its parameters, then buffers */
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++) {
        nn_param *p = &m->params[i];
        entry *x = &e[n++];
        snprintf(x->name, sizeof x->name, "%s", p->name);
        x->dtype = TF_F32;
        x->ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) x->shape[d] = p->shape[d];
        x->numel = p->numel;
        s = read_buf(m->ctx, &p->value, p->numel, &x->data);
        if (s == SNLVK_OK && with_optim)
            for (int k = 0; k < 2 && s == SNLVK_OK; k++) {
                entry *o = &e[n++];
                snprintf(o->name, sizeof o->name, "optim.%s.%d", p->name, k);
                o->dtype = TF_F32;
                o->ndim = 1;
                o->shape[0] = o->numel = p->numel;
                s = read_buf(m->ctx, &p->state[k], p->numel, &o->data);
            }
    }
    for (int i = 0; i < m->n_buffers && s == SNLVK_OK; i++) {
        nn_buffer *b = &m->buffers[i];
        entry *x = &e[n++];
        snprintf(x->name, sizeof x->name, "%s", b->name);
        x->dtype = TF_F32;
        x->ndim = 1;
        x->shape[0] = x->numel = b->numel;
        s = read_buf(m->ctx, &b->value, b->numel, &x->data);
    }
    for (int i = 0; i < m->n_ops && s == SNLVK_OK; i++) {
        if (m->ops[i].kind != NN_BN) continue;
        entry *x = &e[n++];
        snprintf(x->name, sizeof x->name, "%s.num_batches_tracked", m->ops[i].site);
        x->dtype = TF_I64;
        x->ndim = 0;
        x->numel = 1;
        x->data = malloc(8);
        if (!x->data) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
        else memcpy(x->data, &m->bn_batches[m->ops[i].bn_index], 8);
    }
    if (s == SNLVK_OK) {
        tf_tensor *t = calloc((size_t)n, sizeof *t);
        const char *keys[CKPT_MAX_META], *vals[CKPT_MAX_META];
        int nm = meta ? meta->n : 0;
        for (int i = 0; i < nm; i++) keys[i] = meta->key[i], vals[i] = meta->value[i];
        if (!t) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
        for (int i = 0; t && i < n; i++) {
            t[i].name = e[i].name;
            t[i].dtype = e[i].dtype;
            t[i].ndim = e[i].ndim;
            for (int d = 0; d < e[i].ndim; d++) t[i].shape[d] = e[i].shape[d];
            t[i].numel = e[i].numel;
            t[i].data = e[i].data;
        }
        if (t) s = tf_write(path, t, n, keys, vals, nm);
        free(t);
    }
    for (int i = 0; i < n; i++) free(e[i].data);
    free(e);
    return s;
}

static snlvk_status check_shape(const tf_file *f, const tf_tensor *t, const char *name, int ndim, const uint32_t *shape,
                                uint32_t numel)
{
    int ok = t->dtype == TF_F32 && t->numel == numel;
    /* masks may be stored (1,C,H,W) or flat; everything else must match exactly */
    if (ok && t->ndim == ndim)
        for (int d = 0; d < ndim; d++) ok &= t->shape[d] == shape[d];
    else if (ok && t->ndim != ndim)
        ok = 0;
    if (ok) return SNLVK_OK;
    char want[64] = "", got[64] = "";
    size_t a = 0, b = 0;
    for (int d = 0; d < ndim; d++) a += (size_t)snprintf(want + a, sizeof want - a, "%s%u", d ? ", " : "", shape[d]);
    for (int d = 0; d < t->ndim && b < sizeof got; d++)
        b += (size_t)snprintf(got + b, sizeof got - b, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': shape (%s) %s does not match the model's (%s) F32; is it a "
                      "checkpoint of another model?", f->path, name, got, tf_dtype_name(t->dtype), want);
}

snlvk_status ckpt_load(nn_model *m, const char *path, ckpt_meta *meta, int with_optim)
{
    tf_file f;
    SNLVK_TRY(tf_read(path, &f));
    snlvk_status s = SNLVK_OK;
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++) {
        nn_param *p = &m->params[i];
        const tf_tensor *t = tf_find(&f, p->name);
        if (!t) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s' is missing; is it a checkpoint of another model (%s)?",
                           path, p->name, m->arch);
            break;
        }
        s = check_shape(&f, t, p->name, p->ndim, p->shape, p->numel);
        if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &p->value, 0, t->data, (size_t)p->numel * 4);
        for (int k = 0; k < 2 && s == SNLVK_OK; k++) {
            char name[NN_NAME + 16];
            snprintf(name, sizeof name, "optim.%s.%d", p->name, k);
            const tf_tensor *o = with_optim ? tf_find(&f, name) : NULL;
            if (o) {
                s = check_shape(&f, o, name, 1, &p->numel, p->numel);
                if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &p->state[k], 0, o->data, (size_t)p->numel * 4);
            } else
                s = vk_buf_fill(m->ctx, &p->state[k], 0);
        }
    }
    for (int i = 0; i < m->n_buffers && s == SNLVK_OK; i++) {
        nn_buffer *b = &m->buffers[i];
        const tf_tensor *t = tf_find(&f, b->name);
        if (!t) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s' is missing", path, b->name);
            break;
        }
        s = check_shape(&f, t, b->name, 1, &b->numel, b->numel);
        if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &b->value, 0, t->data, (size_t)b->numel * 4);
    }
    for (int i = 0; i < m->n_ops && s == SNLVK_OK; i++) {
        if (m->ops[i].kind != NN_BN) continue;
        char name[NN_NAME + 32];
        snprintf(name, sizeof name, "%s.num_batches_tracked", m->ops[i].site);
        const tf_tensor *t = tf_find(&f, name);
        int64_t v = 0;
        if (t && t->dtype == TF_I64 && t->numel == 1) memcpy(&v, t->data, 8);
        else if (t)
            s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': expected one I64, got %llu %s", path, name,
                           (unsigned long long)t->numel, tf_dtype_name(t->dtype));
        m->bn_batches[m->ops[i].bn_index] = v;
    }
    if (s == SNLVK_OK && meta) {
        memset(meta, 0, sizeof *meta);
        for (int i = 0; i < f.n_meta; i++) ckpt_meta_set(meta, f.meta_keys[i], "%s", f.meta_values[i]);
    }
    tf_free(&f);
    return s;
}

snlvk_status ckpt_peek(const char *path, ckpt_meta *meta, const char *tensor, int *ndim, uint32_t shape[4])
{
    tf_file f;
    SNLVK_TRY(tf_read(path, &f));
    memset(meta, 0, sizeof *meta);
    for (int i = 0; i < f.n_meta; i++) ckpt_meta_set(meta, f.meta_keys[i], "%s", f.meta_values[i]);
    const tf_tensor *t = tensor ? tf_find(&f, tensor) : NULL;
    *ndim = 0;
    if (t) {
        *ndim = t->ndim < 4 ? t->ndim : 4;
        for (int d = 0; d < *ndim; d++) shape[d] = (uint32_t)t->shape[d];
    }
    tf_free(&f);
    return SNLVK_OK;
}
