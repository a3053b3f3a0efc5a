/* SNL's lambda controller on scripted ReLU counts: lambda grows exactly when the
 * reference's rule says, the loop stops at the budget, and the epoch cap holds; the auto
 * rule follows its plan, and its look-ahead moves lambda on predicted counts. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "snl/controller.h"

static void fixed_rule(void)
{
    snl_controller c;
    snl_controller_init(&c, SNL_LAMBDA_FIXED, 1e-5, 1.1, 100, 1000, 50, 0);
    /* epochs 0..4 (1st to 5th): no growth even when the count stalls */
    const uint64_t counts[] = {1000, 1000, 990, 990, 995, /* epoch index 5 onwards: */ 995, 980, 985, 970, 970};
    const int grows[] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 1};
    double lambda = 1e-5;
    for (int i = 0; i < 10; i++) {
        int stop = snl_controller_epoch(&c, counts[i], NULL);
        CHECK(!stop, "stopped early at epoch %d", i);
        if (grows[i]) lambda *= 1.1;
        CHECK(c.grew == grows[i], "epoch index %d: grew %d, expected %d", i, c.grew, grows[i]);
        CHECK(fabs(c.lambda - lambda) < 1e-18, "epoch index %d: lambda %g, expected %g", i, c.lambda, lambda);
    }
    CHECK(c.lowest == 970, "lowest %llu", (unsigned long long)c.lowest);
    CHECK(snl_controller_epoch(&c, 100, NULL) == 1, "the budget (count == budget) does not stop the phase");
}

static void epoch_cap(void)
{
    snl_controller c;
    snl_controller_init(&c, SNL_LAMBDA_FIXED, 1e-5, 1.1, 10, 1000, 3, 0);
    CHECK(snl_controller_epoch(&c, 900, NULL) == 0, "stopped at epoch 1");
    CHECK(snl_controller_epoch(&c, 800, NULL) == 0, "stopped at epoch 2");
    CHECK(snl_controller_epoch(&c, 700, NULL) == 1, "the cap of 3 epochs was not honoured");
}

static void auto_rule(void)
{
    snl_controller c;
    snl_controller_init(&c, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 10);
    CHECK(fabs(snl_controller_planned(&c, 0) - 10000) < 1e-6, "plan starts at the count");
    CHECK(fabs(snl_controller_planned(&c, 10) - 100) < 1e-6, "plan ends at the budget");
    /* the budget comes SNL_PLAN_MARGIN of the plan's length early: at 9.5 of 10 epochs */
    CHECK(fabs(snl_controller_planned(&c, 9.5) - 100) < 1e-6 && snl_controller_planned(&c, 9.4) > 100.5,
          "plan meets the budget at %g, %g", snl_controller_planned(&c, 9.4), snl_controller_planned(&c, 9.5));
    CHECK(fabs(snl_controller_planned(&c, 4.75) - 1000) < 1e-6, "plan is geometric: %g",
          snl_controller_planned(&c, 4.75));
    double before = c.lambda;
    snl_controller_epoch(&c, 10000, NULL); /* no progress: behind the plan */
    CHECK(c.lambda > before && c.grew, "lambda did not grow behind the plan");
    before = c.lambda;
    snl_controller_epoch(&c, 300, NULL); /* far ahead of the plan (planned ~4000 at epoch 2) */
    CHECK(c.lambda < before && !c.grew, "lambda did not shrink ahead of the plan");
    CHECK(c.lambda >= before / 4 - 1e-18, "one update changed lambda by more than 4x");
    CHECK(snl_controller_epoch(&c, 99, NULL) == 1, "the budget did not stop the auto phase");

    /* mid-epoch checks move lambda at the same rate per epoch: ten checks a tenth of an
     * epoch apart, far behind the plan, grow it no more than one end-of-epoch update */
    snl_controller a, b;
    snl_controller_init(&a, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 10);
    snl_controller_init(&b, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 10);
    for (int i = 1; i <= 10; i++) snl_controller_check(&a, 10000, NULL, 0.1 * i);
    snl_controller_epoch(&b, 10000, NULL);
    CHECK(a.lambda <= b.lambda * 1.0001 && a.lambda > 1e-4, "ten checks moved lambda to %g, one epoch to %g",
          a.lambda, b.lambda);
    CHECK(b.lambda <= 4e-4 * 1.0001, "one epoch grew lambda more than 4x: %g", b.lambda);
}

/* lambda never passes SNL_LAMBDA_MAX, whatever the counts do */
static void lambda_cap(void)
{
    snl_controller f, a;
    snl_controller_init(&f, SNL_LAMBDA_FIXED, 1e3, 2.0, 10, 1000, 100, 0);
    snl_controller_init(&a, SNL_LAMBDA_AUTO, 1e3, 1.1, 10, 1000, 100, 2);
    for (int i = 0; i < 40; i++) {
        snl_controller_epoch(&f, 1000, NULL);
        snl_controller_check(&a, 1000, NULL, i + 0.5);
        snl_controller_epoch(&a, 1000, NULL);
    }
    CHECK(f.lambda <= SNL_LAMBDA_MAX && f.lambda >= 8e3 && !f.grew, "reference rule: lambda %g (cap %g)", f.lambda,
          SNL_LAMBDA_MAX);
    CHECK(fabs(a.lambda - SNL_LAMBDA_MAX) < 1e-9 && !a.grew, "auto rule: lambda %g (cap %g)", a.lambda, SNL_LAMBDA_MAX);
}

/* the hold: a flat plan until masks can reach the threshold, and the count alone does not
 * move lambda within it (predictions may: see lookahead) */
static void hold(void)
{
    snl_controller c;
    snl_controller_init(&c, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 3);
    snl_controller_hold(&c, 1.5);
    CHECK(c.target_epochs == 3, "target %d moved though it lies past the hold", c.target_epochs);
    CHECK(fabs(snl_controller_planned(&c, 1.0) - 10000) < 1e-6, "plan moved within the hold");
    CHECK(fabs(snl_controller_planned(&c, 3.0) - 100) < 1e-6, "plan does not end at the budget");
    CHECK(fabs(snl_controller_planned(&c, 2.2125) - 1000) < 1e-6, "plan after the hold is not geometric: %g",
          snl_controller_planned(&c, 2.2125));
    snl_controller_check(&c, 10000, NULL, 0.5);
    snl_controller_epoch(&c, 10000, NULL);
    CHECK(c.lambda == 1e-4 && !c.grew, "lambda moved within the hold: %g", c.lambda);
    snl_controller_epoch(&c, 10000, NULL); /* epoch 2: behind the plan */
    CHECK(c.lambda > 1e-4 && c.grew, "lambda did not grow after the hold");
    /* only the time past the hold counts: at most 4^(2 - 1.5) = 2x */
    CHECK(c.lambda <= 2e-4 * 1.0001, "lambda grew %g x over half an epoch", c.lambda / 1e-4);
    snl_controller d;
    snl_controller_init(&d, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 2);
    snl_controller_hold(&d, 2.5);
    CHECK(d.target_epochs == 3, "a target inside the hold became %d, expected 3", d.target_epochs);
}

/* the look-ahead: horizons, and lambda moving on predictions (within the hold too) */
static void lookahead(void)
{
    snl_controller c;
    snl_lookahead la;
    snl_controller_init(&c, SNL_LAMBDA_FIXED, 1e-4, 1.1, 100, 10000, 100, 3);
    snl_controller_lookahead(&c, 1.0, &la);
    CHECK(la.n == 0, "the reference rule asked for %d predictions", la.n);
    snl_controller_init(&c, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 3);
    snl_controller_hold(&c, 1.5);
    snl_controller_lookahead(&c, 1.0, &la);
    const double want[] = {0.5, 1.0, 1.5, 2.0};
    CHECK(la.n == 4, "%d horizons, expected 4", la.n);
    for (int i = 0; i < 4; i++) CHECK(fabs(la.horizon[i] - want[i]) < 1e-12, "horizon %d: %g", i, la.horizon[i]);
    snl_controller_lookahead(&c, 2.9, &la);
    CHECK(fabs(la.horizon[3] - 0.5) < 1e-12, "near the target the horizon is %g, expected half an epoch",
          la.horizon[3]);

    /* within the hold, masks predicted not to move: 100x behind the plan at the target,
     * so lambda grows at the capped rate, 4^0.5 over half an epoch */
    snl_controller_lookahead(&c, 0.5, &la);
    for (int i = 0; i < la.n; i++) la.count[i] = 10000;
    snl_controller_check(&c, 10000, &la, 0.5);
    CHECK(fabs(c.lambda - 2e-4) < 1e-12 && c.grew, "lambda %g after a lagging prediction in the hold", c.lambda);

    /* count and predictions on the plan: lambda stays */
    double before = c.lambda;
    snl_controller_lookahead(&c, 2.0, &la);
    for (int i = 0; i < la.n; i++)
        la.count[i] = (uint64_t)llround(snl_controller_planned(&c, 2.0 + la.horizon[i]));
    snl_controller_check(&c, (uint64_t)llround(snl_controller_planned(&c, 2.0)), &la, 2.0);
    CHECK(fabs(c.lambda / before - 1) < 1e-2, "lambda moved from %g to %g on the plan", before, c.lambda);

    /* the count on the plan, but 5x the budget predicted at the target: lambda grows, and
     * the plan value it compared with is the budget */
    before = c.lambda;
    la.count[3] = 500;
    snl_controller_check(&c, (uint64_t)llround(snl_controller_planned(&c, 2.0)), &la, 2.25);
    CHECK(c.lambda > before * 1.2 && c.grew && fabs(c.goal - 100) < 1e-9, "lambda %g -> %g, goal %g", before,
          c.lambda, c.goal);

    /* the count on the plan, 10% over the budget predicted at the target: lambda grows at
     * the capped rate, 4^0.25 over a quarter epoch */
    snl_controller_lookahead(&c, 2.5, &la);
    for (int i = 0; i < la.n; i++)
        la.count[i] = (uint64_t)llround(snl_controller_planned(&c, 2.5 + la.horizon[i]));
    la.count[3] = 110;
    before = c.lambda;
    snl_controller_check(&c, (uint64_t)llround(snl_controller_planned(&c, 2.5)), &la, 2.5);
    CHECK(fabs(c.lambda / before - sqrt(2.0)) < 1e-9, "10%% late at the target: lambda x%g in a quarter epoch",
          c.lambda / before);
    /* 2% early there (and the rest on the plan): lambda falls, by exp(-gain * log(1/0.98) / 4) */
    snl_controller_lookahead(&c, 2.75, &la);
    for (int i = 0; i < la.n; i++)
        la.count[i] = (uint64_t)llround(snl_controller_planned(&c, 2.75 + la.horizon[i]) * 0.98);
    before = c.lambda;
    snl_controller_check(&c, (uint64_t)llround(snl_controller_planned(&c, 2.75)), &la, 2.75);
    CHECK(c.lambda < before && !c.grew, "lambda %g -> %g with every prediction ahead of the plan", before, c.lambda);

    /* predictions ahead of the plan do not lower lambda while the count is behind it */
    before = c.lambda;
    snl_controller_lookahead(&c, 3.0, &la);
    for (int i = 0; i < la.n; i++) la.count[i] = 1;
    snl_controller_check(&c, 2000, &la, 3.0);
    CHECK(c.lambda > before, "lambda %g -> %g with the count behind the plan", before, c.lambda);
}

/* the predictor: when each mask crosses the threshold at its present Adam step */
static void predictor(void)
{
    snl_controller c;
    snl_lookahead la;
    snl_controller_init(&c, SNL_LAMBDA_AUTO, 1e-4, 1.1, 100, 10000, 100, 10);
    snl_controller_lookahead(&c, 2.0, &la); /* horizons 2, 4, 6, 8 epochs */
    /* t large: no bias correction; m = v = 1: a step of lr = 1e-3 (less eps); 100 steps an
     * epoch, threshold 0.01 */
    snl_adam_view a = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .threshold = 0.01, .t = 1e6,
                       .steps_per_epoch = 100};
    /* crosses after 5 epochs, 1 epoch, never (moving up), already below, 10 epochs (half
     * speed), never (no gradient) */
    const float cv[] = {0.51f, 0.11f, 0.51f, 0.005f, 0.51f, 0.9f};
    const float mv[] = {1.0f, 1.0f, -1.0f, 1.0f, 0.5f, 0.0f};
    const float vv[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f};
    snl_lookahead_add(&la, &a, cv, mv, vv, 6, 3);
    const uint64_t want[] = {12, 12, 9, 9}; /* weight 3 each: >2: 4 masks; >4: 4; >6: 3; >8: 3 */
    for (int i = 0; i < 4; i++)
        CHECK(la.count[i] == want[i], "after %g epochs: %llu predicted, expected %llu", la.horizon[i],
              (unsigned long long)la.count[i], (unsigned long long)want[i]);
    /* bias correction at t = 1: m-hat = m/(1-0.9), v-hat = v/(1-0.999); m = 0.1, v = 0.001
     * give a step of lr: 0.51 crosses after 500 steps = 5 epochs, between horizons 4 and 6 */
    snl_controller_lookahead(&c, 2.0, &la);
    a.t = 1;
    const float c1[] = {0.51f}, m1[] = {0.1f}, v1[] = {0.001f};
    snl_lookahead_add(&la, &a, c1, m1, v1, 1, 1);
    CHECK(la.count[1] == 1 && la.count[2] == 0, "bias-corrected step: %llu, %llu predicted",
          (unsigned long long)la.count[1], (unsigned long long)la.count[2]);
}

int main(void)
{
    predictor();
    lookahead();
    hold();
    lambda_cap();
    fixed_rule();
    epoch_cap();
    auto_rule();
    return check_finish();
}
