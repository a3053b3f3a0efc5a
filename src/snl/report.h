/* What an SNL run reports: the per-site ReLU table (printed and relus-<B>.json), the
 * run summary (summary.json) and the Pareto table and plot of accuracy against ReLUs. */
#ifndef SNLVK_SNL_REPORT_H
#define SNLVK_SNL_REPORT_H

#include "nn/model.h"
#include "snl/run.h"

/* How a result's masks were chosen: SNL's mask phase, or one of the baselines trained
 * as long as SNL's mask phase and fine-tune together (uniformly random ReLUs; whole
 * sites kept or linearized). */
typedef enum snl_method { SNL_METHOD_SNL, SNL_METHOD_RANDOM, SNL_METHOD_LAYERS, SNL_METHODS } snl_method;

/* "snl", "random", "layers": the method in summary.json and the result files' names */
extern const char *const snl_method_names[SNL_METHODS];

typedef struct snl_budget_result {
    uint64_t budget;
    int met;                /* the mask phase reached the budget */
    double mask_epochs;     /* epochs of the mask phase until the budget was met (fractional with --check-every) */
    double lambda;          /* lambda when the budget was met */
    uint64_t soft_count;    /* ReLUs (c > threshold) at the snapshot */
    uint64_t relus;         /* ReLUs after binarizing */
    double acc_soft, acc_binarized, acc_finetuned; /* acc_soft -1: unknown (--stage finetune from a
                                                      checkpoint without its mask-phase result) */
    int finetune_best_epoch;
    double seconds;
    snl_method method;
    char checkpoint[512];
} snl_budget_result;

/* Prints the table (site, shape, kept, total, percent) and writes it as JSON to `path`
 * (unless NULL). */
snlvk_status snl_report_sites(run *r, const nn_model *m, const uint64_t *kept, const char *path);
snlvk_status snl_report_summary(run *r, const nn_model *m, const snl_budget_result *res, int n, uint64_t total,
                                double seconds);
#endif
