#include "snl/controller.h"

#include <math.h>

void snl_controller_init(snl_controller *c, snl_lambda_rule rule, double lambda, double kappa, uint64_t budget,
                         uint64_t start_count, int max_epochs, int target_epochs)
{
    c->rule = rule;
    c->lambda = lambda;
    c->kappa = kappa;
    c->budget = budget;
    c->start_count = start_count;
    c->lowest = start_count;
    c->epoch = 0;
    c->max_epochs = max_epochs;
    c->target_epochs = target_epochs > 0 ? target_epochs : 10;
    c->grew = 0;
    c->last_progress = 0;
    c->hold = 0;
    c->goal = (double)start_count;
}

void snl_controller_hold(snl_controller *c, double epochs)
{
    c->hold = epochs > 0 ? epochs : 0;
    if (c->target_epochs < c->hold + 0.5) c->target_epochs = (int)ceil(c->hold + 0.5);
}

double snl_controller_planned(const snl_controller *c, double progress)
{
    double s = (double)c->start_count, b = c->budget > 0 ? (double)c->budget : 1.0;
    if (s <= b) return b;
    if (progress <= c->hold) return s;
    double end = c->target_epochs - SNL_PLAN_MARGIN * (c->target_epochs - c->hold);
    double f = (progress - c->hold) / (end - c->hold);
    if (f > 1) f = 1;
    /* geometric: the same fraction of ReLUs goes each epoch */
    return s * pow(b / s, f);
}

void snl_controller_lookahead(const snl_controller *c, double progress, snl_lookahead *la)
{
    la->n = 0;
    if (c->rule != SNL_LAMBDA_AUTO) return;
    double left = c->target_epochs - progress;
    if (left < 0.5) left = 0.5;
    for (int k = 1; k <= 4; k++) {
        la->horizon[la->n] = left * k / 4.0;
        la->count[la->n++] = 0;
    }
}

void snl_lookahead_add(snl_lookahead *la, const snl_adam_view *a, const float *c, const float *m, const float *v,
                       uint32_t n, uint64_t weight)
{
    double size = a->lr / (1 - pow(a->beta1, a->t)), bc2 = sqrt(1 - pow(a->beta2, a->t));
    for (uint32_t j = 0; j < n; j++) {
        if (!(c[j] > a->threshold)) continue;
        double step = size * m[j] / (sqrt(fmax(v[j], 0.0)) / bc2 + a->eps);
        double epochs = step > 0 ? (c[j] - a->threshold) / step / a->steps_per_epoch : INFINITY;
        for (int k = 0; k < la->n; k++)
            if (epochs > la->horizon[k]) la->count[k] += weight;
    }
}

/* Multiplies lambda by a factor that grows with how far the count lags the plan
 * (in log space), now or at a predicted horizon, whichever lags most: SNL_AUTO_GAIN x the
 * lag per epoch, at most 4x (or 1/4) per epoch, scaled to the time since the last update. */
static void adapt(snl_controller *c, uint64_t count, const snl_lookahead *la, double progress)
{
    int have = 0;
    double lag = 0;
    if (progress > c->hold) { /* before, nothing can have crossed: the count says nothing */
        c->goal = snl_controller_planned(c, progress);
        lag = log((double)(count ? count : 1) / c->goal); /* > 0: behind the plan */
        have = 1;
    }
    for (int i = 0; la && i < la->n; i++) {
        double goal = snl_controller_planned(c, progress + la->horizon[i]);
        double l = log((double)(la->count[i] ? la->count[i] : 1) / goal);
        if (!have || l > lag) {
            lag = l;
            c->goal = goal;
            have = 1;
        }
    }
    double since = c->last_progress;
    if (!la && since < c->hold) since = c->hold;
    c->grew = 0;
    if (!have) {
        c->last_progress = progress;
        return;
    }
    double dt = progress - since;
    if (dt > 1) dt = 1;
    if (dt < 0) dt = 0;
    c->last_progress = progress;
    double rate = SNL_AUTO_GAIN * lag;
    if (rate > log(4.0)) rate = log(4.0);
    if (rate < -log(4.0)) rate = -log(4.0);
    double factor = exp(rate * dt);
    if (c->lambda * factor > SNL_LAMBDA_MAX) factor = SNL_LAMBDA_MAX / c->lambda;
    c->grew = factor > 1;
    c->lambda *= factor;
}

void snl_controller_check(snl_controller *c, uint64_t count, const snl_lookahead *la, double progress)
{
    if (c->rule == SNL_LAMBDA_AUTO) adapt(c, count, la, progress);
    if (count < c->lowest) c->lowest = count;
}

int snl_controller_epoch(snl_controller *c, uint64_t count, const snl_lookahead *la)
{
    c->epoch++;
    c->grew = 0;
    if (c->rule == SNL_LAMBDA_AUTO) {
        adapt(c, count, la, c->epoch);
        if (count < c->lowest) c->lowest = count;
    } else if (count < c->lowest) {
        c->lowest = count;
    } else if (c->epoch - 1 >= 5 && c->lambda * c->kappa <= SNL_LAMBDA_MAX) {
        /* the reference's epoch counter is 0-based: "epoch >= 5" is the sixth epoch */
        c->lambda *= c->kappa;
        c->grew = 1;
    }
    return count <= c->budget || c->epoch >= c->max_epochs;
}
