#include "nn/trainer.h"

#include <stdlib.h>
#include <string.h>

#include "ops/mask.h"
#include "ops/optim.h"

static snlvk_status record_forward_loss(nn_trainer *t, vk_seq *q, int train, uint32_t n)
{
    nn_model *m = t->model;
    SNLVK_TRY(nn_record_forward(m, q, train));
    if (t->teacher && train) {
        nn_model *tm = t->teacher;
        SNLVK_TRY(vk_seq_copy(q, &m->tensors[m->input].value, 0, &tm->tensors[tm->input].value, 0,
                              m->tensors[m->input].value.size));
        SNLVK_TRY(nn_record_forward(tm, q, 0));
    }
    loss_args la = {.logits = &m->tensors[m->logits].value, .labels = &t->labels, .teacher = train ? t->kd_logits : NULL,
                    .dlogits = train ? &m->tensors[m->logits].grad : NULL, .params = &t->params,
                    .metrics = &t->metrics, .scratch = &t->scratch, .n = n, .classes = m->classes};
    return op_classifier_loss(q, t->ctx, &la);
}

static snlvk_status record_train(nn_trainer *t)
{
    nn_model *m = t->model;
    vk_seq *q = t->train;
    SNLVK_TRY(vk_seq_begin(q, t->opts.profile));
    SNLVK_TRY(record_forward_loss(t, q, 1, m->batch));
    SNLVK_TRY(nn_record_backward(m, q, !t->opts.train_masks, &t->params, STEP_PARAMS_INDEX(snl_lambda)));
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = &m->params[i];
        int mask = p->kind == NN_PARAM_MASK;
        if (mask && !t->opts.train_masks) continue;
        uint32_t group = mask ? NN_GROUP_MASKS : NN_GROUP_WEIGHTS;
        if (t->opts.optimizer == NN_ADAM)
            SNLVK_TRY(op_adam(q, t->ctx, &t->params, group, &p->value, &p->grad, &p->state[0], &p->state[1], p->numel));
        else
            SNLVK_TRY(op_sgd(q, t->ctx, &t->params, group, &p->value, &p->grad, &p->state[0], p->numel));
    }
    return vk_seq_end(q);
}

static snlvk_status record_eval(nn_trainer *t, vk_seq *q, uint32_t n)
{
    SNLVK_TRY(vk_seq_begin(q, 0));
    SNLVK_TRY(record_forward_loss(t, q, 0, n));
    return vk_seq_end(q);
}

snlvk_status nn_trainer_create(nn_model *m, nn_model *teacher, const nn_trainer_opts *o, nn_trainer **out)
{
    *out = NULL;
    if (teacher && o->teacher_given)
        return snlvk_fail(SNLVK_E_INVALID, "internal: a trainer takes its teacher logits from a teacher model or "
                          "from the caller, not both");
    if (teacher && (teacher->batch != m->batch || teacher->classes != m->classes ||
                    teacher->tensors[teacher->input].value.size != m->tensors[m->input].value.size))
        return snlvk_fail(SNLVK_E_INVALID, "the teacher's batch, input or classes differ from the student's");
    nn_trainer *t = calloc(1, sizeof *t);
    if (!t) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    t->ctx = m->ctx;
    t->model = m;
    t->teacher = teacher;
    t->opts = *o;
    step_params_default(&t->sp);
    if (!teacher && !o->teacher_given) t->sp.kd_weight = 0;
    for (int i = 0; i < m->n_params; i++) t->n_masks += m->params[i].kind == NN_PARAM_MASK;
    const size_t kd_bytes = (size_t)m->batch * m->classes * 4;
    snlvk_status s = step_params_alloc(t->ctx, &t->params);
    if (s == SNLVK_OK && o->teacher_given) {
        s = vk_buf_alloc(t->ctx, kd_bytes, &t->kd_given);
        t->kd_logits = &t->kd_given;
        if (s == SNLVK_OK && !t->kd_given.mapped && !(t->kd_host = malloc(kd_bytes)))
            s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    } else if (teacher)
        t->kd_logits = &teacher->tensors[teacher->logits].value;
    if (s == SNLVK_OK) s = loss_metrics_alloc(t->ctx, &t->metrics);
    if (s == SNLVK_OK) s = vk_buf_alloc(t->ctx, (size_t)m->batch * 4, &t->labels);
    if (s == SNLVK_OK) s = vk_buf_alloc(t->ctx, loss_scratch_bytes(m->batch), &t->scratch);
    if (s == SNLVK_OK) s = vk_buf_alloc(t->ctx, (size_t)(t->n_masks ? t->n_masks : 1) * 4, &t->mask_counts);
    if (s == SNLVK_OK) s = vk_seq_create(t->ctx, &t->train);
    if (s == SNLVK_OK) s = vk_seq_create(t->ctx, &t->eval);
    if (s == SNLVK_OK) s = vk_seq_create(t->ctx, &t->eval_tail);
    if (s == SNLVK_OK) s = vk_seq_create(t->ctx, &t->count);
    if (s == SNLVK_OK) s = record_train(t);
    if (s == SNLVK_OK) s = record_eval(t, t->eval, m->batch);
    if (s != SNLVK_OK) {
        nn_trainer_destroy(t);
        return s;
    }
    *out = t;
    return SNLVK_OK;
}

void nn_trainer_destroy(nn_trainer *t)
{
    if (!t) return;
    vk_seq_destroy(t->train);
    vk_seq_destroy(t->eval);
    vk_seq_destroy(t->eval_tail);
    vk_seq_destroy(t->count);
    vk_buf_free(t->ctx, &t->params);
    vk_buf_free(t->ctx, &t->metrics);
    vk_buf_free(t->ctx, &t->labels);
    vk_buf_free(t->ctx, &t->scratch);
    vk_buf_free(t->ctx, &t->mask_counts);
    vk_buf_free(t->ctx, &t->kd_given);
    free(t->kd_host);
    free(t);
}

float *nn_trainer_input_ptr(nn_trainer *t) { return t->model->tensors[t->model->input].value.mapped; }
int32_t *nn_trainer_labels_ptr(nn_trainer *t) { return t->labels.mapped; }

snlvk_status nn_trainer_upload(nn_trainer *t, const float *images, const int32_t *labels, uint32_t count)
{
    nn_model *m = t->model;
    if (count > m->batch) return snlvk_fail(SNLVK_E_INVALID, "internal: %u examples for a batch of %u", count, m->batch);
    size_t per = (size_t)m->in_c * m->in_h * m->in_w;
    SNLVK_TRY(vk_buf_write(t->ctx, &m->tensors[m->input].value, 0, images, count * per * 4));
    return vk_buf_write(t->ctx, &t->labels, 0, labels, (size_t)count * 4);
}

snlvk_status nn_trainer_gather_teacher(nn_trainer *t, const float *table, uint32_t rows, const int32_t *indices,
                                       uint32_t count)
{
    nn_model *m = t->model;
    if (!t->opts.teacher_given)
        return snlvk_fail(SNLVK_E_INVALID, "internal: teacher logits given to a trainer that runs its teacher");
    if (!table || !indices || count == 0 || count > m->batch)
        return snlvk_fail(SNLVK_E_INVALID, "internal: teacher logits of %u examples for a batch of %u", count, m->batch);
    const size_t classes = m->classes;
    float *dst = t->kd_given.mapped ? t->kd_given.mapped : t->kd_host;
    for (uint32_t j = 0; j < count; j++) {
        if (indices[j] < 0 || (uint32_t)indices[j] >= rows)
            return snlvk_fail(SNLVK_E_INVALID, "internal: row %u of the batch is example %d; the teacher's logits "
                              "cover examples 0..%u", j, (int)indices[j], rows - 1);
        memcpy(dst + j * classes, table + (size_t)indices[j] * classes, classes * 4);
    }
    if (dst == t->kd_host) return vk_buf_write(t->ctx, &t->kd_given, 0, t->kd_host, count * classes * 4);
    return SNLVK_OK;
}

snlvk_status nn_trainer_step(nn_trainer *t)
{
    t->steps++;
    t->sp.adam_step = (uint32_t)t->steps;
    t->sp.sgd_first_step = t->steps == 1;
    SNLVK_TRY(step_params_write(t->ctx, &t->params, &t->sp));
    SNLVK_TRY(vk_seq_run(t->train));
    nn_model_count_batch(t->model);
    return SNLVK_OK;
}

snlvk_status nn_trainer_eval(nn_trainer *t, uint32_t count)
{
    if (count == 0 || count > t->model->batch)
        return snlvk_fail(SNLVK_E_INVALID, "internal: evaluating %u rows with a batch of %u", count, t->model->batch);
    SNLVK_TRY(step_params_write(t->ctx, &t->params, &t->sp));
    if (count == t->model->batch) return vk_seq_run(t->eval);
    if (count != t->eval_tail_n) {
        SNLVK_TRY(record_eval(t, t->eval_tail, count));
        t->eval_tail_n = count;
    }
    return vk_seq_run(t->eval_tail);
}

snlvk_status nn_trainer_metrics(nn_trainer *t, loss_metrics *out) { return loss_metrics_read(t->ctx, &t->metrics, out); }
snlvk_status nn_trainer_reset_metrics(nn_trainer *t) { return loss_metrics_reset(t->ctx, &t->metrics); }

snlvk_status nn_trainer_count_relus(nn_trainer *t, float eps, uint64_t *counts)
{
    nn_model *m = t->model;
    SNLVK_TRY(vk_seq_begin(t->count, 0));
    int slot = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        if (op->kind != NN_MRELU) continue;
        const nn_param *p = &m->params[op->param[0]];
        const nn_tensor *x = &m->tensors[op->in];
        uint32_t weight = m->granularity == NN_CHANNEL ? x->h * x->w : 1;
        SNLVK_TRY(op_mask_count(t->count, t->ctx, &p->value, p->numel, eps, &t->mask_counts, (uint32_t)slot++, weight));
    }
    SNLVK_TRY(vk_seq_end(t->count));
    SNLVK_TRY(vk_seq_run(t->count));
    uint32_t c[512];
    if (slot > 512) return snlvk_fail(SNLVK_E_UNSUPPORTED, "more than 512 masked ReLU sites");
    SNLVK_TRY(vk_buf_read(t->ctx, &t->mask_counts, 0, c, (size_t)slot * 4));
    for (int i = 0; i < slot; i++) counts[i] = c[i];
    return SNLVK_OK;
}
