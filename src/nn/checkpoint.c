#include "nn/checkpoint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

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

void ckpt_meta_begin(ckpt_meta *meta, const nn_model *m, const char *dataset, const char *stage)
{
    memset(meta, 0, sizeof *meta);
    ckpt_meta_set(meta, "format", "snlvk-1");
    ckpt_meta_set(meta, "arch", "%s", m->arch);
    ckpt_meta_set(meta, "dataset", "%s", dataset);
    ckpt_meta_set(meta, "granularity", "%s", m->granularity == NN_CHANNEL ? "channel" : "pixel");
    ckpt_meta_set(meta, "stage", "%s", stage);
}

const char *ckpt_meta_get(const ckpt_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) return m->value[i];
    return NULL;
}

/* The file's "__metadata__" into *meta (replacing what it held). */
static void meta_from_file(const snlvk_st *f, ckpt_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    for (size_t i = 0; i < f->n_meta; i++) ckpt_meta_set(meta, f->meta[i].key, "%s", f->meta[i].value);
}

/* Host copies of the device buffers being saved; freed after the write. */
typedef struct host_bufs { void **p; int n, cap; } host_bufs;

/* Reads `numel` floats of `b` into a new host buffer and adds it to the list as tensor
 * `name` (F32, the given PyTorch shape). */
static snlvk_status add_buf(snlvk_st_builder *sb, host_bufs *h, snlvk_context *ctx, const char *name, const vk_buf *b,
                            int ndim, const uint32_t *shape, uint32_t numel)
{
    if (h->n == h->cap) return snlvk_fail(SNLVK_E_INVALID, "checkpoint: more tensors than counted");
    void *data = malloc((size_t)numel * 4 + 1);
    if (!data) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    h->p[h->n++] = data;
    SNLVK_TRY(vk_buf_read(ctx, b, 0, data, (size_t)numel * 4));
    uint64_t s64[4];
    for (int d = 0; d < ndim; d++) s64[d] = shape[d];
    return snlvk_st_builder_add(sb, name, SNLVK_ST_F32, ndim, s64, data);
}

snlvk_status ckpt_save(nn_model *m, const char *path, const ckpt_meta *meta, int with_optim)
{
    host_bufs h = {NULL, 0, m->n_params * 3 + m->n_buffers};
    h.p = calloc((size_t)h.cap + 1, sizeof *h.p);
    if (!h.p) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    snlvk_st_builder sb;
    snlvk_st_builder_init(&sb);
    snlvk_status s = SNLVK_OK;
    /* state_dict order: for each module its parameters, then buffers */
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++) {
        nn_param *p = &m->params[i];
        s = add_buf(&sb, &h, m->ctx, p->name, &p->value, p->ndim, p->shape, p->numel);
        for (int k = 0; k < 2 && s == SNLVK_OK && with_optim; k++) {
            char name[NN_NAME + 16];
            snprintf(name, sizeof name, "optim.%s.%d", p->name, k);
            s = add_buf(&sb, &h, m->ctx, name, &p->state[k], 1, &p->numel, p->numel);
        }
    }
    for (int i = 0; i < m->n_buffers && s == SNLVK_OK; i++) {
        nn_buffer *b = &m->buffers[i];
        s = add_buf(&sb, &h, m->ctx, b->name, &b->value, 1, &b->numel, b->numel);
    }
    for (int i = 0; i < m->n_ops && s == SNLVK_OK; i++) {
        if (m->ops[i].kind != NN_BN) continue;
        char name[NN_NAME + 32];
        snprintf(name, sizeof name, "%s.num_batches_tracked", m->ops[i].site);
        /* a 0-dimensional int64, like PyTorch's */
        s = snlvk_st_builder_add_copy(&sb, name, SNLVK_ST_I64, 0, NULL, &m->bn_batches[m->ops[i].bn_index]);
    }
    for (int i = 0; meta && i < meta->n && s == SNLVK_OK; i++)
        s = snlvk_st_builder_meta(&sb, meta->key[i], meta->value[i]);
    if (s == SNLVK_OK) s = snlvk_st_builder_write(&sb, path);
    snlvk_st_builder_free(&sb);
    for (int i = 0; i < h.n; i++) free(h.p[i]);
    free(h.p);
    return s;
}

/* The tensor `name` of the checkpoint, which must be F32 of exactly the model's shape. */
static snlvk_status get_f32(const snlvk_st *f, const nn_model *m, const char *name, int ndim, const uint32_t *shape,
                            const snlvk_st_tensor **out)
{
    *out = NULL;
    const snlvk_st_tensor *t = snlvk_st_find(f, name);
    if (!t)
        return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s' is missing; is it a checkpoint of another model (%s)?",
                          f->path, name, m->arch);
    int ok = t->dtype == SNLVK_ST_F32 && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (ok) {
        *out = t;
        return SNLVK_OK;
    }
    uint64_t want64[4];
    for (int d = 0; d < ndim; d++) want64[d] = shape[d];
    char want[96], got[256];
    snlvk_st_shape_str(want64, ndim, want, sizeof want);
    snlvk_st_shape_str(t->shape, t->ndim, got, sizeof got);
    return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': shape %s %s does not match the model's %s F32; is it a "
                      "checkpoint of another model (%s)?", f->path, name, got, snlvk_st_dtype_name(t->dtype), want,
                      m->arch);
}

snlvk_status ckpt_load(nn_model *m, const char *path, ckpt_meta *meta, int with_optim)
{
    snlvk_st f;
    SNLVK_TRY(snlvk_st_read(path, &f));
    snlvk_status s = SNLVK_OK;
    const snlvk_st_tensor *t;
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++) {
        nn_param *p = &m->params[i];
        s = get_f32(&f, m, p->name, p->ndim, p->shape, &t);
        if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &p->value, 0, t->data, (size_t)t->nbytes);
        for (int k = 0; k < 2 && s == SNLVK_OK; k++) {
            char name[NN_NAME + 16];
            snprintf(name, sizeof name, "optim.%s.%d", p->name, k);
            if (with_optim && snlvk_st_find(&f, name)) {
                s = get_f32(&f, m, name, 1, &p->numel, &t);
                if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &p->state[k], 0, t->data, (size_t)t->nbytes);
            } else
                s = vk_buf_fill(m->ctx, &p->state[k], 0);
        }
    }
    for (int i = 0; i < m->n_buffers && s == SNLVK_OK; i++) {
        nn_buffer *b = &m->buffers[i];
        s = get_f32(&f, m, b->name, 1, &b->numel, &t);
        if (s == SNLVK_OK) s = vk_buf_write(m->ctx, &b->value, 0, t->data, (size_t)t->nbytes);
    }
    for (int i = 0; i < m->n_ops && s == SNLVK_OK; i++) {
        if (m->ops[i].kind != NN_BN) continue;
        char name[NN_NAME + 32];
        snprintf(name, sizeof name, "%s.num_batches_tracked", m->ops[i].site);
        /* optional (0 when absent); one I64, a scalar as PyTorch writes it or of shape [1] */
        int64_t v = 0;
        if ((t = snlvk_st_find(&f, name)) != NULL) {
            if (t->dtype == SNLVK_ST_I64 && t->numel == 1)
                memcpy(&v, t->data, 8); /* may be unaligned */
            else {
                char got[256];
                s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': expected one I64 (shape []), got %s of shape %s",
                               path, name, snlvk_st_dtype_name(t->dtype),
                               snlvk_st_shape_str(t->shape, t->ndim, got, sizeof got));
            }
        }
        m->bn_batches[m->ops[i].bn_index] = v;
    }
    if (s == SNLVK_OK && meta) meta_from_file(&f, meta);
    snlvk_st_free(&f);
    return s;
}

snlvk_status ckpt_peek(const char *path, ckpt_meta *meta, const char *tensor, int *ndim, uint32_t shape[4])
{
    snlvk_st f;
    SNLVK_TRY(snlvk_st_read(path, &f));
    meta_from_file(&f, meta);
    const snlvk_st_tensor *t = tensor ? snlvk_st_find(&f, tensor) : NULL;
    *ndim = 0;
    if (t) {
        *ndim = t->ndim < 4 ? t->ndim : 4;
        for (int d = 0; d < *ndim; d++) shape[d] = (uint32_t)t->shape[d];
    }
    snlvk_st_free(&f);
    return SNLVK_OK;
}
