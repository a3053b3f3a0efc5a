/* SNL itself (Algorithm 1 of the paper with the reference code's defaults): the mask
 * phase trains weights and masks with Adam on CE + KD + lambda*sum|c| while a host-side
 * controller reads the ReLU count back every epoch (or every --check-every steps) and
 * schedules lambda; each budget's state is snapshotted when the count first meets it,
 * binarized (threshold, or exactly the B largest) and fine-tuned with frozen masks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "nn/checkpoint.h"
#include "ops/mask.h"
#include "snl/controller.h"
#include "snl/report.h"
#include "snl/run.h"

#define MAX_BUDGETS 16
#define MAX_SITES 512

typedef struct snl_state {
    run *r;
    nn_model *m, *teacher;
    nn_trainer *t;
    snl_controller ctl;
    uint64_t total;
    uint64_t budgets[MAX_BUDGETS];
    int n_budgets, next;            /* budgets sorted descending; next = first not yet met */
    snl_budget_result res[SNL_METHODS * MAX_BUDGETS]; /* SNL's, then the baselines' */
    uint64_t site_counts[MAX_SITES];
    uint64_t count;                 /* the latest total */
    double t0;
    int teacher_said;               /* the teacher's path was named in the output */
    char init[1024];
} snl_state;

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

static snlvk_status parse_budgets(const char *spec, uint64_t total, uint64_t *out, int *n)
{
    *n = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0))
            return snlvk_fail(SNLVK_E_INVALID, "--relu-budget '%s': expected positive numbers (ReLUs, or fractions "
                              "of the total below 1) separated by commas", spec);
        if (v >= 1.0 && v != floor(v))
            return snlvk_fail(SNLVK_E_INVALID, "--relu-budget '%s': %g is neither a whole ReLU count nor a fraction "
                              "below 1", spec, v);
        uint64_t b = v < 1.0 ? (uint64_t)(v * (double)total) : (uint64_t)v;
        if (b >= total)
            return snlvk_fail(SNLVK_E_INVALID, "--relu-budget '%s': %llu is not below the model's %llu ReLUs", spec,
                              (unsigned long long)b, (unsigned long long)total);
        if (*n == MAX_BUDGETS) return snlvk_fail(SNLVK_E_INVALID, "--relu-budget: at most %d budgets", MAX_BUDGETS);
        out[(*n)++] = b;
        p = end;
        if (*p == ',') p++;
        else if (*p) return snlvk_fail(SNLVK_E_INVALID, "--relu-budget '%s': unexpected '%c'", spec, *p);
    }
    if (*n == 0) return snlvk_fail(SNLVK_E_INVALID, "--relu-budget is empty");
    qsort(out, (size_t)*n, sizeof *out, cmp_desc);
    int k = 1;
    for (int i = 1; i < *n; i++)
        if (out[i] != out[k - 1]) out[k++] = out[i];
    *n = k;
    return SNLVK_OK;
}

/* Reads every mask back: sum |c| (for the log) and the smallest value above the
 * threshold (0 when none). */
static snlvk_status mask_stats(nn_model *m, double threshold, double *l1, double *lowest)
{
    *l1 = 0;
    *lowest = 0;
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = &m->params[i];
        if (p->kind != NN_PARAM_MASK) continue;
        float *h = malloc((size_t)p->numel * 4);
        if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        snlvk_status s = vk_buf_read(m->ctx, &p->value, 0, h, (size_t)p->numel * 4);
        for (uint32_t j = 0; s == SNLVK_OK && j < p->numel; j++) {
            *l1 += fabs(h[j]);
            if (h[j] > threshold && (*lowest == 0 || h[j] < *lowest)) *lowest = h[j];
        }
        free(h);
        SNLVK_TRY(s);
    }
    return SNLVK_OK;
}

/* A NaN mask entry is not counted (NaN > eps is false), so diverged masks would look
 * like a met budget: this is checked before any budget counts as met. */
static snlvk_status masks_finite(snl_state *st, double *l1)
{
    double lowest;
    SNLVK_TRY(mask_stats(st->m, st->r->o->threshold, l1, &lowest));
    if (!isfinite(*l1))
        return snlvk_fail(SNLVK_E_NONFINITE, "mask: the masks became non-finite (lambda %.3g); lower --mask-lr or "
                          "--lambda", st->ctl.lambda);
    return SNLVK_OK;
}

static snlvk_status count_now(snl_state *st)
{
    SNLVK_TRY(nn_trainer_count_relus(st->t, (float)st->r->o->threshold, st->site_counts));
    st->count = 0;
    int sites = 0;
    for (int i = 0; i < st->m->n_ops; i++) sites += st->m->ops[i].kind == NN_MRELU;
    for (int i = 0; i < sites; i++) st->count += st->site_counts[i];
    return SNLVK_OK;
}

static void snapshot_path(const snl_state *st, uint64_t budget, char *out, size_t n)
{
    snprintf(out, n, "%s/mask-%llu.safetensors", st->r->o->out_dir, (unsigned long long)budget);
}

static void fill_meta(const snl_state *st, ckpt_meta *meta, const char *stage)
{
    const snlvk_train_opts *o = st->r->o;
    ckpt_meta_begin(meta, st->m, o->dataset, stage);
    ckpt_meta_set(meta, "teacher", "%s", st->init);
    ckpt_meta_set(meta, "threshold", "%.9g", o->threshold);
}

/* A budget's result travels in the metadata of its checkpoints (mask-B, snl-B, random-B),
 * so that --resume can skip what a killed run finished and still report it. */
static void meta_put_result(ckpt_meta *meta, const snl_budget_result *br)
{
    ckpt_meta_set(meta, "budget", "%llu", (unsigned long long)br->budget);
    ckpt_meta_set(meta, "met", "%d", br->met);
    ckpt_meta_set(meta, "mask_epochs", "%.6f", br->mask_epochs);
    ckpt_meta_set(meta, "lambda", "%.9g", br->lambda);
    ckpt_meta_set(meta, "soft_count", "%llu", (unsigned long long)br->soft_count);
    ckpt_meta_set(meta, "relus", "%llu", (unsigned long long)br->relus);
    ckpt_meta_set(meta, "acc_soft", "%.9g", br->acc_soft);
    ckpt_meta_set(meta, "acc_binarized", "%.9g", br->acc_binarized);
    ckpt_meta_set(meta, "test_acc", "%.9g", br->acc_finetuned);
    ckpt_meta_set(meta, "finetune_best_epoch", "%d", br->finetune_best_epoch);
    ckpt_meta_set(meta, "seconds", "%.3f", br->seconds);
}

/* Reads a result back from `path`'s metadata; 0 when the file or a field is missing or
 * the file is of another budget. */
static int meta_get_result(const char *path, uint64_t budget, snl_budget_result *br)
{
    ckpt_meta meta;
    int ndim;
    uint32_t shape[4];
    if (ckpt_peek(path, &meta, "conv1.weight", &ndim, shape) != SNLVK_OK) return 0;
    static const char *keys[] = {"budget", "met", "mask_epochs", "lambda", "soft_count", "relus", "acc_soft",
                                 "acc_binarized", "test_acc", "finetune_best_epoch", "seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!ckpt_meta_get(&meta, keys[i])) return 0;
    if (strtoull(ckpt_meta_get(&meta, "budget"), NULL, 10) != budget) return 0;
    br->budget = budget;
    br->met = atoi(ckpt_meta_get(&meta, "met"));
    br->mask_epochs = atof(ckpt_meta_get(&meta, "mask_epochs"));
    br->lambda = atof(ckpt_meta_get(&meta, "lambda"));
    br->soft_count = strtoull(ckpt_meta_get(&meta, "soft_count"), NULL, 10);
    br->relus = strtoull(ckpt_meta_get(&meta, "relus"), NULL, 10);
    br->acc_soft = atof(ckpt_meta_get(&meta, "acc_soft"));
    br->acc_binarized = atof(ckpt_meta_get(&meta, "acc_binarized"));
    br->acc_finetuned = atof(ckpt_meta_get(&meta, "test_acc"));
    br->finetune_best_epoch = atoi(ckpt_meta_get(&meta, "finetune_best_epoch"));
    br->seconds = atof(ckpt_meta_get(&meta, "seconds"));
    return 1;
}

/* The stage a result's training is logged and its checkpoint tagged under. */
static const char *const method_stage[SNL_METHODS] = {"finetune", "random-mask", "whole-layers"};

/* A result's checkpoint (<method>-B.safetensors) and per-site table (relus-B.json for
 * SNL, relus-<method>-B.json for a baseline). */
static void result_paths(const snl_state *st, const snl_budget_result *br, char *ckpt, char *table, size_t n)
{
    const char *dir = st->r->o->out_dir, *name = snl_method_names[br->method];
    unsigned long long b = (unsigned long long)br->budget;
    snprintf(ckpt, n, "%s/%s-%llu.safetensors", dir, name, b);
    if (br->method == SNL_METHOD_SNL) snprintf(table, n, "%s/relus-%llu.json", dir, b);
    else snprintf(table, n, "%s/relus-%s-%llu.json", dir, name, b);
}

/* --resume: a budget whose fine-tune (or random-mask training) finished before. Its
 * per-site table is written last and removed when the fine-tune starts, so it marks a
 * finished one. */
static int finished_before(snl_state *st, snl_budget_result *br)
{
    char ckpt[1100], table[1100];
    result_paths(st, br, ckpt, table, sizeof ckpt);
    snl_budget_result got = *br;
    if (!snlvk_file_exists(table) || !meta_get_result(ckpt, br->budget, &got)) return 0;
    got.method = br->method;
    snprintf(got.checkpoint, sizeof got.checkpoint, "%s", ckpt);
    *br = got;
    run_say(st->r, "resume: %s %llu finished before (%llu ReLUs, accuracy %.4f): %s",
            method_stage[br->method], (unsigned long long)br->budget, (unsigned long long)br->relus,
            br->acc_finetuned, ckpt);
    return 1;
}

/* --resume: the mask phase finished before when every budget has its snapshot (the phase
 * removes them when it starts); their results are read back. */
static int mask_phase_finished(snl_state *st)
{
    snl_budget_result got[MAX_BUDGETS];
    for (int i = 0; i < st->n_budgets; i++) {
        char path[1100];
        snapshot_path(st, st->budgets[i], path, sizeof path);
        if (!meta_get_result(path, st->budgets[i], &got[i])) return 0;
    }
    for (int i = 0; i < st->n_budgets; i++) {
        snl_budget_result *br = &st->res[i];
        br->met = got[i].met;
        br->mask_epochs = got[i].mask_epochs;
        br->lambda = got[i].lambda;
        br->soft_count = got[i].soft_count;
        br->acc_soft = got[i].acc_soft;
    }
    return 1;
}

/* --lambda auto's look-ahead: the count predicted at each horizon the controller asks for,
 * from every mask's value and Adam moments (channel masks weigh H*W ReLUs). */
static snlvk_status predict_counts(snl_state *st, double progress, snl_lookahead *la)
{
    snl_controller_lookahead(&st->ctl, progress, la);
    nn_trainer *t = st->t;
    long per_epoch = snlvk_loader_batches_per_epoch(st->r->train_loader);
    if (t->steps < 1 || per_epoch < 1) la->n = 0;
    if (!la->n) return SNLVK_OK;
    const step_params *sp = &t->sp;
    snl_adam_view a = {.lr = sp->lr[NN_GROUP_MASKS], .beta1 = sp->adam_beta1, .beta2 = sp->adam_beta2,
                       .eps = sp->adam_eps, .threshold = st->r->o->threshold, .t = (double)t->steps,
                       .steps_per_epoch = (double)per_epoch};
    nn_model *m = st->m;
    for (int i = 0; i < m->n_ops; i++) {
        if (m->ops[i].kind != NN_MRELU) continue;
        nn_param *p = &m->params[m->ops[i].param[0]];
        const nn_tensor *x = &m->tensors[m->ops[i].in];
        float *h = malloc((size_t)p->numel * 12);
        if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        float *mv = h + p->numel, *vv = mv + p->numel;
        snlvk_status s = vk_buf_read(m->ctx, &p->value, 0, h, (size_t)p->numel * 4);
        if (s == SNLVK_OK) s = vk_buf_read(m->ctx, &p->state[0], 0, mv, (size_t)p->numel * 4);
        if (s == SNLVK_OK) s = vk_buf_read(m->ctx, &p->state[1], 0, vv, (size_t)p->numel * 4);
        if (s == SNLVK_OK)
            snl_lookahead_add(la, &a, h, mv, vv, p->numel,
                              m->granularity == NN_CHANNEL ? (uint64_t)x->h * x->w : 1);
        free(h);
        SNLVK_TRY(s);
    }
    return SNLVK_OK;
}

/* The count now, and for --lambda auto its predictions. */
static snlvk_status count_now_ahead(snl_state *st, double progress, snl_lookahead *la)
{
    SNLVK_TRY(count_now(st));
    return predict_counts(st, progress, la);
}

/* A mask-check line in the log: the count, the plan value the controller compared with,
 * lambda before and after, and the predictions ([horizon, count]). */
static void log_check(snl_state *st, double progress, const snl_lookahead *la, double lambda_before)
{
    if (!la->n) return;
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof line,
                                "{\"stage\": \"mask-check\", \"progress\": %.4f, \"relus\": %llu, \"goal\": %.1f, "
                                "\"lambda\": %.6g, \"lambda_next\": %.6g, \"predicted\": [",
                                progress, (unsigned long long)st->count, st->ctl.goal, lambda_before, st->ctl.lambda);
    for (int i = 0; i < la->n && n < sizeof line; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s[%.4g, %llu]", i ? ", " : "",
                              la->horizon[i], (unsigned long long)la->count[i]);
    if (n < sizeof line) snprintf(line + n, sizeof line - n, "]}");
    run_log(st->r, line);
}

/* Saves the soft masks and weights for every budget the count now meets. */
static snlvk_status take_snapshots(snl_state *st, double progress)
{
    double l1;
    if (st->next < st->n_budgets && st->count <= st->budgets[st->next]) SNLVK_TRY(masks_finite(st, &l1));
    while (st->next < st->n_budgets && st->count <= st->budgets[st->next]) {
        snl_budget_result *br = &st->res[st->next];
        br->met = 1;
        br->mask_epochs = progress;
        br->lambda = st->ctl.lambda;
        br->soft_count = st->count;
        /* the evaluation shares the metrics block with the running training epoch:
         * keep the epoch's sums across it */
        loss_metrics running;
        SNLVK_TRY(nn_trainer_metrics(st->t, &running));
        double loss, top5;
        SNLVK_TRY(run_evaluate(st->r, st->t, &loss, &br->acc_soft, &top5));
        SNLVK_TRY(vk_buf_write(st->m->ctx, &st->t->metrics, 0, &running, sizeof running));
        char path[1100];
        snapshot_path(st, br->budget, path, sizeof path);
        ckpt_meta meta;
        fill_meta(st, &meta, "mask");
        meta_put_result(&meta, br);
        SNLVK_TRY(ckpt_save(st->m, path, &meta, 0));
        run_say(st->r, "mask: budget %llu met after %.2f epochs (%llu ReLUs, lambda %.3g, soft-mask accuracy %.4f): %s",
                (unsigned long long)br->budget, progress, (unsigned long long)st->count, st->ctl.lambda, br->acc_soft,
                path);
        st->next++;
    }
    return SNLVK_OK;
}

static snlvk_status mask_step_hook(run *r, nn_trainer *t, int epoch, long step, long steps, void *user, int *stop)
{
    (void)r;
    (void)t;
    snl_state *st = user;
    int k = st->r->o->check_every;
    if (k <= 0 || step % k != 0 || step == steps) return SNLVK_OK;
    double progress = epoch + (double)step / steps;
    snl_lookahead la;
    SNLVK_TRY(count_now_ahead(st, progress, &la));
    SNLVK_TRY(take_snapshots(st, progress));
    if (st->ctl.rule == SNL_LAMBDA_AUTO) {
        double before = st->ctl.lambda;
        snl_controller_check(&st->ctl, st->count, &la, progress);
        log_check(st, progress, &la, before);
        st->t->sp.snl_lambda = (float)st->ctl.lambda;
    }
    *stop = st->next == st->n_budgets;
    return SNLVK_OK;
}

/* A trainer distilling from the teacher (unless --no-kd). Without augmentation an image
 * is the same every epoch and so are the teacher's logits of it: they are computed once per
 * run, for every training image (the teacher is the pretrained net throughout: the mask
 * phase, every fine-tune and the baselines), and each step reads its batch's. With
 * augmentation the teacher's forward runs in every step. */
static snlvk_status open_trainer(snl_state *st, nn_trainer_opts to, nn_trainer **out)
{
    run *r = st->r;
    nn_model *teacher = st->teacher;
    if (teacher && !r->train.augment) {
        if (!r->teacher_logits) {
            double t0 = run_now();
            SNLVK_TRY(run_teacher_logits(r, teacher));
            double secs = run_now() - t0;
            run_say(r, "teacher: logits of the %d training images computed once in %.1fs (no augmentation): the "
                       "steps read them instead of running the teacher", r->train.n, secs);
            char line[256];
            snprintf(line, sizeof line, "{\"stage\": \"teacher\", \"cached\": true, \"examples\": %d, \"seconds\": %.2f}",
                     r->train.n, secs);
            run_log(r, line);
        }
        to.teacher_given = 1;
        teacher = NULL;
    } else if (teacher && !st->teacher_said) {
        st->teacher_said = 1;
        run_say(r, "teacher: its forward runs in every training step (the training images are augmented)");
        run_log(r, "{\"stage\": \"teacher\", \"cached\": false}");
    }
    return nn_trainer_create(st->m, teacher, &to, out);
}

/* --lambda auto: the starting lambda makes the Lasso gradient as large as the mean
 * magnitude of the data's mask gradient at the pretrained point. */
static snlvk_status auto_lambda(snl_state *st, double *lambda)
{
    nn_trainer *t = st->t;
    run *r = st->r;
    float lr_w = t->sp.lr[NN_GROUP_WEIGHTS], lr_m = t->sp.lr[NN_GROUP_MASKS];
    t->sp.lr[NN_GROUP_WEIGHTS] = t->sp.lr[NN_GROUP_MASKS] = 0;
    t->sp.snl_lambda = 0;
    SNLVK_TRY(snlvk_loader_start_epoch(r->train_loader, 0));
    int n = 0;
    SNLVK_TRY(run_next_batch(r, t, r->train_loader, &n));
    SNLVK_TRY(nn_trainer_step(t));
    double sum = 0;
    uint64_t cnt = 0;
    for (int i = 0; i < st->m->n_params; i++) {
        nn_param *p = &st->m->params[i];
        if (p->kind != NN_PARAM_MASK) continue;
        float *g = malloc((size_t)p->numel * 4);
        if (!g) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        snlvk_status s = vk_buf_read(st->m->ctx, &p->grad, 0, g, (size_t)p->numel * 4);
        for (uint32_t j = 0; s == SNLVK_OK && j < p->numel; j++) sum += fabs(g[j]);
        cnt += p->numel;
        free(g);
        SNLVK_TRY(s);
        /* this probe step must leave no trace in the optimiser */
        SNLVK_TRY(vk_buf_fill(st->m->ctx, &p->state[0], 0));
        SNLVK_TRY(vk_buf_fill(st->m->ctx, &p->state[1], 0));
    }
    for (int i = 0; i < st->m->n_params; i++) {
        SNLVK_TRY(vk_buf_fill(st->m->ctx, &st->m->params[i].state[0], 0));
        SNLVK_TRY(vk_buf_fill(st->m->ctx, &st->m->params[i].state[1], 0));
    }
    t->steps = 0;
    t->sp.lr[NN_GROUP_WEIGHTS] = lr_w;
    t->sp.lr[NN_GROUP_MASKS] = lr_m;
    *lambda = cnt ? sum / (double)cnt : 1e-5;
    if (!(*lambda > 0)) *lambda = 1e-5;
    return SNLVK_OK;
}

static snlvk_status mask_phase(snl_state *st)
{
    run *r = st->r;
    const snlvk_train_opts *o = r->o;
    for (int i = 0; i < st->n_budgets; i++) { /* no snapshot of an earlier phase may pass for this one's */
        char path[1100];
        snapshot_path(st, st->budgets[i], path, sizeof path);
        remove(path);
    }
    nn_trainer_opts to = {.optimizer = NN_ADAM, .train_masks = 1};
    SNLVK_TRY(open_trainer(st, to, &st->t));
    nn_trainer *t = st->t;
    t->sp.lr[NN_GROUP_WEIGHTS] = t->sp.lr[NN_GROUP_MASKS] = (float)o->mask_lr;
    t->sp.kd_temperature = (float)o->kd_temperature;
    t->sp.kd_weight = st->teacher ? 1.0f : 0.0f;
    int is_auto = strcmp(o->lambda, "auto") == 0;
    double lambda = 0;
    if (is_auto) {
        SNLVK_TRY(auto_lambda(st, &lambda));
        run_say(r, "mask: --lambda auto starts at %.3g (mean |dL/dc| at the pretrained point), plan: the budget in %d "
                   "epochs", lambda, o->target_mask_epochs);
    } else {
        char *end;
        lambda = strtod(o->lambda, &end);
        if (*end || !(lambda >= 0))
            return snlvk_fail(SNLVK_E_INVALID, "--lambda '%s': expected a non-negative number or 'auto'", o->lambda);
    }
    snl_controller_init(&st->ctl, is_auto ? SNL_LAMBDA_AUTO : SNL_LAMBDA_FIXED, lambda, o->kappa,
                        st->budgets[st->n_budgets - 1], st->total, o->max_mask_epochs, o->target_mask_epochs);
    if (is_auto && o->mask_lr > 0) {
        /* masks cross the threshold once Adam (about lr per step) has carried them down
         * to it: from the lowest mask above it, that takes the hold */
        double l1, lowest;
        SNLVK_TRY(mask_stats(st->m, o->threshold, &l1, &lowest));
        double steps = (lowest - o->threshold) / o->mask_lr;
        long per_epoch = snlvk_loader_batches_per_epoch(r->train_loader);
        int target = st->ctl.target_epochs;
        if (steps > 0 && per_epoch > 0) snl_controller_hold(&st->ctl, steps / (double)per_epoch);
        if (st->ctl.hold > 0)
            run_say(r, "mask: at --mask-lr %g a mask needs about %.0f steps (%.2f epochs) to fall to the "
                       "threshold; the plan starts there%s", o->mask_lr, steps, st->ctl.hold,
                    st->ctl.target_epochs != target ? ", and the target moves past it" : "");
        if (st->ctl.target_epochs != target)
            run_say(r, "mask: --target-mask-epochs %d is within that wait: planning for %d epochs", target,
                    st->ctl.target_epochs);
    }
    run_say(r, "mask: Adam lr %g on weights and masks, CE%s + lambda*sum|c|, lambda%s %.3g, kappa %g, threshold %g, "
               "budgets:", o->mask_lr, st->teacher ? " + KD (T=4)" : "", is_auto ? " auto from" : "", lambda, o->kappa,
            o->threshold);
    if (o->mask_lr > o->threshold)
        run_say(r, "note: --mask-lr %g is above --threshold %g: Adam moves a mask by about the learning rate each step, "
                   "so masks near 0 cross the threshold back and forth and the count is noisy", o->mask_lr,
                o->threshold);
    for (int i = 0; i < st->n_budgets; i++)
        run_say(r, "  %llu ReLUs (%.2f%% of %llu)", (unsigned long long)st->budgets[i],
                100.0 * (double)st->budgets[i] / (double)st->total, (unsigned long long)st->total);
    for (int epoch = 0; epoch < o->max_mask_epochs && st->next < st->n_budgets; epoch++) {
        double e0 = run_now();
        t->sp.snl_lambda = (float)st->ctl.lambda;
        double lambda_used = st->ctl.lambda;
        double loss, acc, te_loss, te_acc, te_top5;
        SNLVK_TRY(run_train_epoch(r, t, "mask", epoch, o->max_mask_epochs, mask_step_hook, st, &loss, &acc));
        loss_metrics mt;
        SNLVK_TRY(nn_trainer_metrics(t, &mt));
        double train_ce = mt.examples ? mt.ce_sum / mt.examples : 0, train_kd = mt.examples ? mt.kd_sum / mt.examples : 0;
        snl_lookahead la;
        SNLVK_TRY(count_now_ahead(st, epoch + 1, &la));
        SNLVK_TRY(take_snapshots(st, epoch + 1));
        double before = st->ctl.lambda;
        int stop = snl_controller_epoch(&st->ctl, st->count, &la) || st->next == st->n_budgets;
        log_check(st, epoch + 1, &la, before);
        SNLVK_TRY(run_evaluate(r, t, &te_loss, &te_acc, &te_top5));
        double secs = run_now() - e0;
        /* ReLUs per stage: sites grouped by their name's first component */
        char stages[512] = "";
        size_t len = 0;
        int site = 0;
        char cur[32] = "";
        uint64_t acc_count = 0;
        for (int i = 0; i <= st->m->n_ops; i++) {
            const char *name = NULL;
            if (i < st->m->n_ops && st->m->ops[i].kind == NN_MRELU) name = st->m->ops[i].site;
            else if (i < st->m->n_ops) continue;
            char stage[32] = "";
            if (name) {
                snprintf(stage, sizeof stage, "%s", name);
                char *dot = strchr(stage, '.');
                if (dot && strncmp(stage, "layer", 5) == 0) *dot = '\0';
                else snprintf(stage, sizeof stage, "stem");
            }
            if ((!name || strcmp(stage, cur) != 0) && cur[0] && len < sizeof stages)
                len += (size_t)snprintf(stages + len, sizeof stages - len, "%s\"%s\": %llu", len ? ", " : "", cur,
                                        (unsigned long long)acc_count);
            if (!name) break;
            if (strcmp(stage, cur) != 0) {
                snprintf(cur, sizeof cur, "%s", stage);
                acc_count = 0;
            }
            acc_count += st->site_counts[site++];
        }
        /* the loss terms of the epoch: CE and KD from the device metrics (reset by the
         * evaluation, so read before it), lambda * sum|c| from the masks read back, with the
         * lambda of the epoch's last steps (--check-every moves it within the epoch) */
        double l1 = 0;
        SNLVK_TRY(masks_finite(st, &l1));
        char line[1400];
        snprintf(line, sizeof line,
                 "{\"stage\": \"mask\", \"epoch\": %d, \"lambda\": %.6g, \"lambda_end\": %.6g, \"lambda_next\": %.6g, "
                 "\"relus\": %llu, \"relus_per_stage\": {%s}, "
                 "\"train_loss\": %.6f, \"ce\": %.6f, \"kd\": %.6f, \"lasso\": %.6f, \"sum_abs_masks\": %.3f, "
                 "\"train_acc\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.6f, \"seconds\": %.2f}",
                 epoch + 1, lambda_used, before, st->ctl.lambda, (unsigned long long)st->count, stages, loss, train_ce,
                 train_kd, before * l1, l1, acc, te_loss, te_acc, secs);
        run_log(r, line);
        run_say(r, "mask epoch %d: lambda %.3g -> %.3g  ReLUs %llu (%.2f%%) {%s}  CE %.4f KD %.4f lasso %.4f  "
                   "train acc %.4f  test acc %.4f  %.1fs",
                epoch + 1, lambda_used, before, (unsigned long long)st->count,
                100.0 * (double)st->count / (double)st->total, stages, train_ce, train_kd, before * l1, acc, te_acc, secs);
        t->sp.snl_lambda = (float)st->ctl.lambda;
        if (stop) break;
    }
    /* budgets never met: keep the final state so they are still reported */
    for (int i = st->next; i < st->n_budgets; i++) {
        snl_budget_result *br = &st->res[i];
        br->met = 0;
        br->mask_epochs = st->ctl.epoch;
        br->lambda = st->ctl.lambda;
        br->soft_count = st->count;
        double loss, top5;
        SNLVK_TRY(run_evaluate(r, t, &loss, &br->acc_soft, &top5));
        char path[1100];
        snapshot_path(st, br->budget, path, sizeof path);
        ckpt_meta meta;
        fill_meta(st, &meta, "mask");
        meta_put_result(&meta, br);
        SNLVK_TRY(ckpt_save(st->m, path, &meta, 0));
        run_say(r, "mask: budget %llu NOT met after %d epochs (the cap); %llu ReLUs remain",
                (unsigned long long)br->budget, st->ctl.epoch, (unsigned long long)st->count);
    }
    nn_trainer_destroy(st->t);
    st->t = NULL;
    return SNLVK_OK;
}

/* Masks to binary: c > threshold, or exactly the B largest entries. */
static snlvk_status binarize(snl_state *st, uint64_t budget)
{
    nn_model *m = st->m;
    const snlvk_train_opts *o = st->r->o;
    if (o->exact_budget) {
        const vk_buf *masks[MAX_SITES];
        uint32_t sizes[MAX_SITES];
        int n = 0;
        uint64_t per_entry = 1;
        for (int i = 0; i < m->n_params && n < MAX_SITES; i++)
            if (m->params[i].kind == NN_PARAM_MASK) {
                masks[n] = &m->params[i].value;
                sizes[n++] = m->params[i].numel;
            }
        if (m->granularity == NN_CHANNEL) per_entry = 0; /* entries weigh H*W: see below */
        uint64_t entries = budget;
        if (!per_entry) {
            /* channel masks: an entry is H*W ReLUs, different per site; keep the B largest
             * entries by value whose ReLUs fit the budget is a knapsack: use the threshold
             * rule instead and say so */
            run_say(st->r, "note: --exact-budget applies to pixel masks; channel masks are thresholded");
        } else {
            mask_cut cut;
            return mask_keep_top(m->ctx, masks, sizes, n, entries, &cut);
        }
    }
    vk_seq *q;
    SNLVK_TRY(vk_seq_create(m->ctx, &q));
    snlvk_status s = vk_seq_begin(q, 0);
    for (int i = 0; i < m->n_params && s == SNLVK_OK; i++)
        if (m->params[i].kind == NN_PARAM_MASK)
            s = op_mask_binarize(q, m->ctx, &m->params[i].value, m->params[i].numel, (float)o->threshold);
    if (s == SNLVK_OK) s = vk_seq_end(q);
    if (s == SNLVK_OK) s = vk_seq_run(q);
    vk_seq_destroy(q);
    return s;
}

/* Saves a budget's result: its checkpoint, with the result in the metadata. */
static snlvk_status save_result(snl_state *st, snl_budget_result *br, double t0)
{
    ckpt_meta meta;
    fill_meta(st, &meta, method_stage[br->method]);
    br->seconds = run_now() - t0;
    meta_put_result(&meta, br);
    return ckpt_save(st->m, br->checkpoint, &meta, 0);
}

/* Fine-tune with frozen binary masks: SGD, cosine schedule, CE + KD; keeps the best epoch
 * (for a baseline: its whole training). `t0`: when this budget's work began (its
 * checkpoints record the seconds since). */
static snlvk_status finetune(snl_state *st, snl_budget_result *br, int epochs, double t0)
{
    const char *tag = method_stage[br->method];
    run *r = st->r;
    const snlvk_train_opts *o = r->o;
    nn_trainer_opts to = {.optimizer = NN_SGD};
    nn_trainer *t;
    SNLVK_TRY(open_trainer(st, to, &t));
    st->t = t;
    t->sp.momentum = (float)o->momentum;
    t->sp.weight_decay[NN_GROUP_WEIGHTS] = (float)o->weight_decay;
    t->sp.kd_temperature = (float)o->kd_temperature;
    t->sp.kd_weight = st->teacher ? 1.0f : 0.0f;
    snlvk_status s = count_now(st);
    if (s == SNLVK_OK) br->relus = st->count;
    double loss, top5;
    if (s == SNLVK_OK) s = run_evaluate(r, t, &loss, &br->acc_binarized, &top5);
    if (s == SNLVK_OK) {
        char soft[48] = ""; /* a baseline has no soft masks */
        if (br->method == SNL_METHOD_SNL && br->acc_soft >= 0)
            snprintf(soft, sizeof soft, " (soft masks %.4f)", br->acc_soft);
        run_say(r, "%s %llu: %llu ReLUs with binary masks, accuracy %.4f%s; %s %d epochs", tag,
                (unsigned long long)br->budget, (unsigned long long)br->relus, br->acc_binarized, soft,
                br->method == SNL_METHOD_SNL ? "fine-tuning" : "training", epochs);
    }
    br->acc_finetuned = -1;
    char table[1100];
    result_paths(st, br, br->checkpoint, table, sizeof br->checkpoint);
    remove(table); /* written again when this fine-tune finishes: the mark --resume looks for */
    for (int epoch = 0; epoch < epochs && s == SNLVK_OK; epoch++) {
        double e0 = run_now();
        double lr = run_lr("cosine", o->finetune_lr, epoch, epochs);
        t->sp.lr[NN_GROUP_WEIGHTS] = (float)lr;
        double tr_loss, tr_acc, te_loss, te_acc, te_top5;
        s = run_train_epoch(r, t, tag, epoch, epochs, NULL, NULL, &tr_loss, &tr_acc);
        if (s == SNLVK_OK) s = run_evaluate(r, t, &te_loss, &te_acc, &te_top5);
        if (s != SNLVK_OK) break;
        int best = te_acc > br->acc_finetuned;
        if (best) {
            br->acc_finetuned = te_acc;
            br->finetune_best_epoch = epoch + 1;
            s = save_result(st, br, t0);
        }
        char line[512];
        snprintf(line, sizeof line,
                 "{\"stage\": \"%s\", \"budget\": %llu, \"relus\": %llu, \"epoch\": %d, \"lr\": %.6g, \"train_loss\": "
                 "%.6f, \"train_acc\": %.6f, \"test_loss\": %.6f, \"test_acc\": %.6f, \"seconds\": %.2f, \"best\": %s}",
                 tag, (unsigned long long)br->budget, (unsigned long long)br->relus, epoch + 1, lr, tr_loss, tr_acc,
                 te_loss, te_acc, run_now() - e0, best ? "true" : "false");
        run_log(r, line);
        if (r->cb && r->cb->epoch) {
            snlvk_epoch_result er = {tag, epoch + 1, epochs, lr, tr_loss, tr_acc, te_loss, te_acc, te_top5,
                                     run_now() - e0, best};
            r->cb->epoch(r->cb->user, &er);
        }
    }
    if (epochs == 0 && s == SNLVK_OK) {
        br->acc_finetuned = br->acc_binarized;
        s = save_result(st, br, t0);
    }
    /* the per-site table of the result */
    if (s == SNLVK_OK) s = snl_report_sites(r, st->m, st->site_counts, table);
    nn_trainer_destroy(t);
    st->t = NULL;
    return s;
}

/* Uploads every site's mask from `all` (the sites' entries in order). */
static snlvk_status write_masks(nn_model *m, const float *all)
{
    uint64_t base = 0;
    for (int i = 0; i < m->n_ops; i++) {
        if (m->ops[i].kind != NN_MRELU) continue;
        nn_param *p = &m->params[m->ops[i].param[0]];
        SNLVK_TRY(vk_buf_write(m->ctx, &p->value, 0, all + base, (size_t)p->numel * 4));
        base += p->numel;
    }
    return SNLVK_OK;
}

/* A uniformly random binary mask with exactly `budget` ones over all mask entries. */
static snlvk_status random_masks(snl_state *st, uint64_t budget, uint64_t seed)
{
    nn_model *m = st->m;
    uint64_t entries = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].kind == NN_PARAM_MASK) entries += m->params[i].numel;
    if (m->granularity == NN_CHANNEL) {
        /* an entry is H*W ReLUs: draw entries until the budget is spent */
        run_say(st->r, "note: with channel masks the random baseline keeps whole channels up to the budget");
    }
    uint32_t *idx = malloc(entries * sizeof *idx);
    float *all = calloc(entries, sizeof *all);
    if (!idx || !all) {
        free(idx);
        free(all);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    for (uint64_t i = 0; i < entries; i++) idx[i] = (uint32_t)i;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    for (uint64_t i = entries - 1; i > 0; i--) { /* Fisher-Yates */
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint64_t j = s % (i + 1);
        uint32_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
    /* entry weights (H*W for channel masks) */
    uint64_t kept = 0;
    for (uint64_t k = 0; k < entries; k++) {
        uint64_t e = idx[k], base = 0, w = 1;
        for (int i = 0; i < m->n_ops; i++) {
            if (m->ops[i].kind != NN_MRELU) continue;
            const nn_param *p = &m->params[m->ops[i].param[0]];
            if (e < base + p->numel) {
                const nn_tensor *x = &m->tensors[m->ops[i].in];
                w = m->granularity == NN_CHANNEL ? (uint64_t)x->h * x->w : 1;
                break;
            }
            base += p->numel;
        }
        if (kept + w > budget) continue;
        all[e] = 1.0f;
        kept += w;
        if (kept == budget) break;
    }
    snlvk_status st2 = write_masks(m, all);
    free(idx);
    free(all);
    return st2;
}

/* The whole-layer baseline: every ReLU site is kept whole (mask 1) or replaced by the
 * identity (mask 0); of the sets of sites whose ReLUs fit the budget, one with the most
 * ReLUs (an exact subset sum over the sites' sizes), the deeper sites first among equals. */
static snlvk_status layer_masks(snl_state *st, uint64_t budget)
{
    nn_model *m = st->m;
    uint64_t size[MAX_SITES], entries = 0;
    int op_of[MAX_SITES], n = 0;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == NN_MRELU) {
            if (n == MAX_SITES)
                return snlvk_fail(SNLVK_E_INVALID, "--layer-budget: %s has more than %d ReLU sites", m->arch,
                                  MAX_SITES);
            const nn_tensor *x = &m->tensors[m->ops[i].in];
            size[n] = (uint64_t)x->c * x->h * x->w;
            op_of[n++] = i;
            entries += m->params[m->ops[i].param[0]].numel;
        }
    /* via[j]: the site whose addition first reached j ReLUs (-1: unreached), sites taken
     * from the deepest, so a sum is first reached by deep sites; the chain via[j],
     * via[j - size] ... walks strictly shallower sites */
    int16_t *via = malloc((size_t)(budget + 1) * sizeof *via);
    float *all = calloc(entries ? entries : 1, sizeof *all);
    if (!via || !all) {
        free(via);
        free(all);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    for (uint64_t j = 0; j <= budget; j++) via[j] = -1;
    via[0] = (int16_t)n; /* reached by no site */
    for (int k = n - 1; k >= 0; k--)
        for (uint64_t j = budget; j >= size[k] && size[k] > 0; j--)
            if (via[j] < 0 && via[j - size[k]] >= 0) via[j] = (int16_t)k;
    uint64_t best = budget;
    while (via[best] < 0) best--;
    int keep[MAX_SITES] = {0};
    for (uint64_t j = best; j > 0; j -= size[via[j]]) keep[via[j]] = 1;
    uint64_t base = 0;
    char kept_names[512] = "";
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        const nn_op *op = &m->ops[op_of[k]];
        uint32_t numel = m->params[op->param[0]].numel;
        for (uint32_t e = 0; e < numel; e++) all[base + e] = keep[k] ? 1.0f : 0.0f;
        base += numel;
        if (keep[k] && len < sizeof kept_names)
            len += (size_t)snprintf(kept_names + len, sizeof kept_names - len, "%s%s", len ? ", " : "", op->site);
    }
    run_say(st->r, "whole-layers %llu: %llu ReLUs in the sites kept (%s); every other site is linear",
            (unsigned long long)budget, (unsigned long long)best, len ? kept_names : "none");
    free(via);
    snlvk_status s = write_masks(m, all);
    free(all);
    return s;
}

static snlvk_status load_both(snl_state *st, const char *path)
{
    SNLVK_TRY(ckpt_load(st->m, path, NULL, 0));
    if (st->teacher) SNLVK_TRY(ckpt_load(st->teacher, path, NULL, 0));
    return SNLVK_OK;
}

snlvk_status run_snl(run *r)
{
    const snlvk_train_opts *o = r->o;
    snl_state *st = calloc(1, sizeof *st);
    if (!st) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    st->r = r;
    st->t0 = run_now();
    int all = strcmp(o->stage, "all") == 0, finetune_only = strcmp(o->stage, "finetune") == 0;
    snlvk_status s = SNLVK_OK;
    if (!o->relu_budget) s = snlvk_fail(SNLVK_E_INVALID, "--stage %s needs --relu-budget", o->stage);
    if (s == SNLVK_OK && !o->init && !all)
        s = snlvk_fail(SNLVK_E_INVALID, "--stage %s needs --init CKPT (a pretrained%s checkpoint)", o->stage,
                       finetune_only ? " mask-phase" : "");
    if (s == SNLVK_OK) {
        if (o->init) snprintf(st->init, sizeof st->init, "%s", o->init);
        else {
            s = run_pretrain(r, "pretrain-");
            snprintf(st->init, sizeof st->init, "%s/pretrain-best.safetensors", o->out_dir);
        }
    }
    if (s == SNLVK_OK) s = run_open_model(r, &r->train, &st->m);
    if (s == SNLVK_OK) s = nn_model_init(st->m, o->seed);
    if (s == SNLVK_OK && !o->no_kd) {
        s = run_open_model(r, &r->train, &st->teacher);
        if (s == SNLVK_OK) s = nn_model_init(st->teacher, o->seed);
    }
    const char *teacher_path = st->init;
    ckpt_meta meta = {0};
    if (s == SNLVK_OK && finetune_only) {
        /* the mask-phase checkpoint names its teacher (the pretrained net) */
        s = ckpt_load(st->m, st->init, &meta, 0);
        const char *tp = ckpt_meta_get(&meta, "teacher");
        if (s == SNLVK_OK && st->teacher) {
            if (!tp || !*tp) s = snlvk_fail(SNLVK_E_INVALID, "%s: metadata 'teacher' is missing; pass --no-kd", st->init);
            else s = ckpt_load(st->teacher, tp, NULL, 0);
            teacher_path = tp;
        }
    } else if (s == SNLVK_OK)
        s = load_both(st, st->init);
    if (s == SNLVK_OK) {
        st->total = nn_total_relus(st->m);
        s = parse_budgets(o->relu_budget, st->total, st->budgets, &st->n_budgets);
    }
    if (s == SNLVK_OK) {
        for (int i = 0; i < st->n_budgets; i++) st->res[i].budget = st->budgets[i];
        run_say(r, "snl: %s, %llu ReLUs, %s masks, teacher %s", st->m->arch, (unsigned long long)st->total,
                st->m->granularity == NN_CHANNEL ? "channel" : "pixel", st->teacher ? teacher_path : "none (--no-kd)");
    }
    int ft_epochs = o->finetune_epochs > 0 ? o->finetune_epochs : run_default_epochs(o->dataset);
    int mask_done = 0;
    if (s == SNLVK_OK && !finetune_only && o->resume) {
        mask_done = mask_phase_finished(st);
        if (mask_done) run_say(r, "resume: the mask phase finished before; its snapshots are reused");
        else run_say(r, "resume: the mask phase starts again from %s", st->init);
    }
    if (s == SNLVK_OK && !finetune_only && !mask_done) s = mask_phase(st);
    if (s == SNLVK_OK && strcmp(o->stage, "mask") != 0) {
        for (int i = 0; i < st->n_budgets && s == SNLVK_OK; i++) {
            snl_budget_result *br = &st->res[i];
            if (o->resume && finished_before(st, br)) continue;
            double b0 = run_now();
            if (!finetune_only) {
                char path[1100];
                snapshot_path(st, br->budget, path, sizeof path);
                s = ckpt_load(st->m, path, NULL, 0);
            } else {
                if (i > 0) s = ckpt_load(st->m, st->init, NULL, 0);
                /* a mask-phase snapshot of this budget carries its mask-phase result */
                snl_budget_result got;
                if (meta_get_result(st->init, br->budget, &got)) {
                    br->met = got.met, br->mask_epochs = got.mask_epochs, br->lambda = got.lambda;
                    br->soft_count = got.soft_count, br->acc_soft = got.acc_soft;
                } else {
                    br->acc_soft = -1; /* unknown */
                }
            }
            if (s == SNLVK_OK) s = binarize(st, br->budget);
            if (s == SNLVK_OK) s = finetune(st, br, ft_epochs, b0);
            br->seconds = run_now() - b0;
        }
    }
    int n_res = st->n_budgets;
    /* the baselines, trained as many epochs as SNL's mask phase and fine-tune took together:
     * random masks at every budget (--random-mask) or at those --random-budget names, whole
     * layers at those --layer-budget names */
    for (int method = SNL_METHOD_RANDOM; method < SNL_METHODS && s == SNLVK_OK; method++) {
        const char *spec = method == SNL_METHOD_RANDOM ? o->random_budgets : o->layer_budgets;
        const char *opt = method == SNL_METHOD_RANDOM ? "--random-budget" : "--layer-budget";
        uint64_t want[MAX_BUDGETS];
        int n_want = 0;
        if (spec) s = parse_budgets(spec, st->total, want, &n_want);
        else if (method == SNL_METHOD_RANDOM && o->random_mask) {
            memcpy(want, st->budgets, sizeof want);
            n_want = st->n_budgets;
        }
        for (int j = 0; j < n_want && s == SNLVK_OK; j++) {
            int i = 0;
            while (i < st->n_budgets && st->budgets[i] != want[j]) i++;
            if (i == st->n_budgets) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s '%s': %llu is not one of --relu-budget '%s'", opt, spec,
                               (unsigned long long)want[j], o->relu_budget);
                break;
            }
            if (strcmp(o->stage, "mask") == 0) continue;
            snl_budget_result *br = &st->res[n_res++];
            memset(br, 0, sizeof *br);
            br->budget = want[j];
            br->method = (snl_method)method;
            if (o->resume && finished_before(st, br)) continue;
            int epochs = (int)ceil(st->res[i].mask_epochs) + ft_epochs;
            double b0 = run_now();
            s = load_both(st, teacher_path);
            if (s == SNLVK_OK)
                s = method == SNL_METHOD_RANDOM ? random_masks(st, br->budget, o->seed + (uint64_t)i)
                                                : layer_masks(st, br->budget);
            if (s == SNLVK_OK) s = finetune(st, br, epochs, b0);
            br->seconds = run_now() - b0;
        }
    }
    if (s == SNLVK_OK && strcmp(o->stage, "mask") != 0)
        s = snl_report_summary(r, st->m, st->res, n_res, st->total, run_now() - st->t0);
    nn_trainer_destroy(st->t);
    nn_model_destroy(st->m);
    nn_model_destroy(st->teacher);
    free(st);
    return s;
}
