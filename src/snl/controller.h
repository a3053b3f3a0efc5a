/* The host-side controller of SNL's mask phase (Algorithm 1, with the reference code's
 * rule): after every epoch (or every --check-every steps) it sees the ReLU count and
 * decides whether the phase ends and how lambda moves.
 *
 * Reference rule ("fixed"): if the count fell below the lowest seen, remember it;
 * otherwise, once epoch >= 5, lambda *= kappa. Stop when count <= budget or at the cap.
 *
 * "auto" (beyond the reference): plans a geometric path of the count from its start to
 * the budget over `target_epochs` epochs and adapts lambda multiplicatively so the count
 * tracks that path: behind the plan, lambda grows (faster the further behind); ahead of
 * it, lambda shrinks. The change is a rate per epoch: a check after a fraction f of an
 * epoch moves lambda by the f-th power of the per-epoch factor, so --check-every changes
 * how smoothly lambda follows the plan, not how fast.
 *
 * Adam moves a mask by about its learning rate per step under a steady gradient, so a
 * mask needs about (1 - threshold) / lr steps to fall from 1 below the threshold: for
 * that long ("hold", in epochs) the count barely moves whatever lambda is. (A gradient
 * that grows, as when lambda rises, lets Adam's step exceed lr for a while, up to about
 * (1 - beta1) / sqrt(1 - beta2) = 3.2 lr, so some masks may cross earlier.) The auto plan
 * keeps the starting count until then; the geometric path runs from the end of the hold
 * to the budget, reached a little before the target (SNL_PLAN_MARGIN).
 *
 * The count answers lambda late: a mask crosses the threshold only after Adam has carried
 * it down, so a controller that looks only at the count is behind the plan all along and
 * overshoots the target. The auto rule therefore also looks ahead: the caller predicts
 * the count at a few horizons (from each mask's value and its present Adam step: when it
 * will cross) and the rule compares each prediction with the plan at that time; lambda
 * follows the largest lag, so it moves during the hold too, as soon as the masks' speeds
 * say the plan will be missed. */
#ifndef SNLVK_SNL_CONTROLLER_H
#define SNLVK_SNL_CONTROLLER_H

#include <stdint.h>

/* Both rules stop raising lambda here. The mask phase runs Adam, whose step does not
 * depend on the gradient's scale: once lambda dwarfs the data's mask gradients (~1e-4 to
 * 1e-2) a larger lambda changes nothing, and near 1e19 the squared gradient in Adam's
 * second moment overflows fp32 and the masks turn to NaN. */
#define SNL_LAMBDA_MAX 1e4

/* The auto rule's response: lambda changes by exp(SNL_AUTO_GAIN * lag) per epoch, lag
 * being log(count / plan), capped at 4x either way. The count answers lambda weakly (Adam's
 * step does not grow with the gradient, and a mask near the threshold meets the data's
 * pull back), so the gain is high: on Fashion-MNIST a prediction 6-9% over the budget at
 * the target held for three epochs under a gain of 4 (lambda rising just fast enough to
 * keep it there) and the budget came 5% late; 10% over now raises lambda at the cap. */
#define SNL_AUTO_GAIN 16.0
/* The plan reaches the budget this fraction of its length (hold to target) before the
 * target: a margin for the predictions' error, which is a few percent late in the tail. */
#define SNL_PLAN_MARGIN 0.05

typedef enum snl_lambda_rule { SNL_LAMBDA_FIXED = 0, SNL_LAMBDA_AUTO = 1 } snl_lambda_rule;

typedef struct snl_controller {
    snl_lambda_rule rule;
    double lambda, kappa;
    uint64_t budget, start_count, lowest;
    int epoch;              /* epochs seen so far */
    int max_epochs;
    int target_epochs;      /* auto: planned length of the phase */
    int grew;               /* lambda was raised at the last update */
    double last_progress;   /* auto: epochs seen at the last update */
    double hold;            /* auto: epochs before any mask can cross the threshold */
    double goal;            /* auto: the plan's count the last update compared with (for the log) */
} snl_controller;

/* Counts predicted ahead of now: count[i] ReLUs horizon[i] epochs ahead. */
#define SNL_LOOKAHEAD_MAX 4
typedef struct snl_lookahead {
    int n;
    double horizon[SNL_LOOKAHEAD_MAX];
    uint64_t count[SNL_LOOKAHEAD_MAX];
} snl_lookahead;

void snl_controller_init(snl_controller *c, snl_lambda_rule rule, double lambda, double kappa, uint64_t budget,
                         uint64_t start_count, int max_epochs, int target_epochs);
/* Sets the hold (see above); a target less than half an epoch past it moves to the first
 * whole epoch at least half an epoch past it. */
void snl_controller_hold(snl_controller *c, double epochs);
/* The count the plan expects after `progress` epochs (fractional for mid-epoch checks). */
double snl_controller_planned(const snl_controller *c, double progress);
/* The horizons the auto rule wants predictions at after `progress` epochs: k/4 of the
 * time left to the target (at least half an epoch), k = 1..4, with zero counts; none for
 * the reference rule (la->n = 0). The caller adds every mask with snl_lookahead_add. */
void snl_controller_lookahead(const snl_controller *c, double progress, snl_lookahead *la);

/* Adam's state as the look-ahead reads it: the masks' learning rate, betas, eps, the steps
 * taken (t >= 1), steps per epoch, and the threshold. */
typedef struct snl_adam_view {
    double lr, beta1, beta2, eps, threshold;
    double t, steps_per_epoch;
} snl_adam_view;

/* Adds n masks (values c, Adam moments m and v, each weighing `weight` ReLUs) to the
 * predictions: Adam moves a mask by lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
 * each step; one above the threshold crosses it after (c - threshold) / step more steps if
 * its present step holds, and never when it does not move down. */
void snl_lookahead_add(snl_lookahead *la, const snl_adam_view *a, const float *c, const float *m, const float *v,
                       uint32_t n, uint64_t weight);
/* A mid-epoch check (auto rule; the fixed rule ignores it): `progress` in epochs; `la`
 * the predictions (NULL: none). */
void snl_controller_check(snl_controller *c, uint64_t count, const snl_lookahead *la, double progress);
/* End of an epoch: updates lambda by the rule. Returns 1 when the phase should stop
 * (budget met or epoch cap reached). */
int snl_controller_epoch(snl_controller *c, uint64_t count, const snl_lookahead *la);
#endif
