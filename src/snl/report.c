#include "snl/report.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/strbuf.h"
#include "io/atomic_file.h"
#include "io/svg.h"

snlvk_status snl_report_sites(run *r, const nn_model *m, const uint64_t *kept, const char *path)
{
    snlvk_strbuf b = {0};
    snlvk_sb_printf(&b, "{\n  \"arch\": \"%s\",\n  \"sites\": [\n", m->arch);
    run_say(r, "%-20s %-14s %10s %10s %8s", "site", "shape", "kept", "total", "percent");
    uint64_t k_all = 0, t_all = 0;
    int site = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const nn_op *op = &m->ops[i];
        if (op->kind != NN_MRELU) continue;
        const nn_tensor *x = &m->tensors[op->in];
        uint64_t total = (uint64_t)x->c * x->h * x->w, k = kept[site];
        char shape[32];
        snprintf(shape, sizeof shape, "%ux%ux%u", x->c, x->h, x->w);
        run_say(r, "%-20s %-14s %10llu %10llu %7.2f%%", op->site, shape, (unsigned long long)k,
                (unsigned long long)total, 100.0 * (double)k / (double)total);
        snlvk_sb_printf(&b, "%s    {\"site\": \"%s\", \"shape\": [%u, %u, %u], \"kept\": %llu, \"total\": %llu}",
                        site ? ",\n" : "", op->site, x->c, x->h, x->w, (unsigned long long)k,
                        (unsigned long long)total);
        k_all += k;
        t_all += total;
        site++;
    }
    run_say(r, "%-20s %-14s %10llu %10llu %7.2f%%", "total", "", (unsigned long long)k_all, (unsigned long long)t_all,
            100.0 * (double)k_all / (double)t_all);
    snlvk_sb_printf(&b, "\n  ],\n  \"kept\": %llu,\n  \"total\": %llu\n}\n", (unsigned long long)k_all,
                    (unsigned long long)t_all);
    snlvk_status s = b.oom  ? snlvk_fail(SNLVK_E_OOM, "out of host memory")
                     : path ? snlvk_atomic_write(path, b.s, b.n)
                            : SNLVK_OK;
    snlvk_sb_free(&b);
    return s;
}

const char *const snl_method_names[SNL_METHODS] = {"snl", "random", "layers"};

typedef struct point { double x, y; } point;

static int cmp_point(const void *a, const void *b)
{
    const point *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

/* The Pareto plot: test accuracy after fine-tune (percent) against the ReLU count (log
 * x; 0 ReLUs drawn at 1), a series per method, each sorted by ReLUs. */
static snlvk_status pareto_plot(const char *path, const snl_budget_result *res, int n, const char *title)
{
    static const char *colors[SNL_METHODS] = {"#1f77b4", "#d62728", "#2ca02c"};
    static const char *names[SNL_METHODS] = {"SNL", "random masks", "whole layers"};
    size_t cap = n > 0 ? (size_t)n : 1;
    point *pts = malloc(cap * sizeof *pts);
    double *xy = malloc(2 * SNL_METHODS * cap * sizeof *xy); /* x and y of each series */
    if (!pts || !xy) {
        free(pts);
        free(xy);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    snlvk_svg_series series[SNL_METHODS];
    size_t n_series = 0;
    for (int kind = 0; kind < SNL_METHODS; kind++) {
        size_t k = 0;
        for (int i = 0; i < n; i++)
            if ((int)res[i].method == kind)
                pts[k++] = (point){(double)(res[i].relus ? res[i].relus : 1), 100.0 * res[i].acc_finetuned};
        if (!k) continue; /* an empty series stays out of the legend */
        qsort(pts, k, sizeof *pts, cmp_point);
        double *x = xy + 2 * cap * (size_t)kind, *y = x + cap;
        for (size_t i = 0; i < k; i++) x[i] = pts[i].x, y[i] = pts[i].y;
        series[n_series++] = (snlvk_svg_series){.name = names[kind], .x = x, .y = y, .n = k,
                                                .style = SNLVK_SVG_LINE_MARKERS, .color = colors[kind]};
    }
    snlvk_svg_plot plot = {.title = title, .x_label = "ReLU count (log scale)",
                           .y_label = "test accuracy after fine-tune (%)", .log_x = 1, .width = 640, .height = 420,
                           .series = series, .n_series = n_series};
    snlvk_status s = snlvk_svg_write(path, &plot);
    free(pts);
    free(xy);
    return s;
}

snlvk_status snl_report_summary(run *r, const nn_model *m, const snl_budget_result *res, int n, uint64_t total,
                                double seconds)
{
    const snlvk_train_opts *o = r->o;
    run_say(r, "%s", "");
    run_say(r, "%-8s %-7s %9s %11s %9s %9s %9s %9s %9s", "method", "budget", "ReLUs", "mask ep.", "lambda", "soft acc",
            "binarized", "finetuned", "seconds");
    snlvk_strbuf b = {0};
    snlvk_sb_printf(&b, "{\n  \"arch\": \"%s\",\n  \"dataset\": \"%s\",\n  \"total_relus\": %llu,\n"
                        "  \"granularity\": \"%s\",\n  \"lambda\": \"%s\",\n  \"kappa\": %g,\n  \"threshold\": %g,\n"
                        "  \"exact_budget\": %s,\n"
                        "  \"seconds\": %.1f,\n  \"results\": [\n",
                    m->arch, o->dataset, (unsigned long long)total, m->granularity == NN_CHANNEL ? "channel" : "pixel",
                    o->lambda, o->kappa, o->threshold, o->exact_budget ? "true" : "false", seconds);
    for (int i = 0; i < n; i++) {
        const snl_budget_result *br = &res[i];
        int snl = br->method == SNL_METHOD_SNL;
        run_say(r, "%-8s %-7llu %9llu %11.2f %9.3g %9.4f %9.4f %9.4f %9.1f", snl_method_names[br->method],
                (unsigned long long)br->budget, (unsigned long long)br->relus, snl ? br->mask_epochs : 0.0,
                snl ? br->lambda : 0.0, snl ? br->acc_soft : 0.0, br->acc_binarized, br->acc_finetuned, br->seconds);
        snlvk_sb_printf(&b, "%s    {\"method\": \"%s\", \"budget\": %llu, \"met\": %s, \"relus\": %llu, "
                            "\"mask_epochs\": %.4f, \"lambda\": %.6g, \"soft_count\": %llu, \"acc_soft\": %.6f, "
                            "\"acc_binarized\": %.6f, \"acc_finetuned\": %.6f, \"finetune_best_epoch\": %d, "
                            "\"seconds\": %.1f, \"checkpoint\": \"%s\"}",
                        i ? ",\n" : "", snl_method_names[br->method], (unsigned long long)br->budget,
                        br->met || !snl ? "true" : "false", (unsigned long long)br->relus, br->mask_epochs,
                        br->lambda, (unsigned long long)br->soft_count, br->acc_soft, br->acc_binarized,
                        br->acc_finetuned, br->finetune_best_epoch, br->seconds, br->checkpoint);
    }
    snlvk_sb_printf(&b, "\n  ]\n}\n");
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", o->out_dir);
    snlvk_status s = b.oom ? snlvk_fail(SNLVK_E_OOM, "out of host memory") : snlvk_atomic_write(path, b.s, b.n);
    snlvk_sb_free(&b);
    if (s != SNLVK_OK) return s;
    char title[128];
    snprintf(title, sizeof title, "%s on %s: accuracy against ReLUs", m->arch, o->dataset);
    snprintf(path, sizeof path, "%s/pareto.svg", o->out_dir);
    s = pareto_plot(path, res, n, title);
    if (s == SNLVK_OK) run_say(r, "summary: %s/summary.json, plot: %s", o->out_dir, path);
    return s;
}
