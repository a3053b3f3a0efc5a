#include "snl/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes `text` to `path` atomically (temp file + rename). */
static snlvk_status write_atomic(const char *path, const char *text)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", tmp, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return SNLVK_OK;
}

typedef struct sbuf { char *s; size_t n, cap; int oom; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) SNLVK_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = cap;
    }
}

snlvk_status snl_report_sites(run *r, const nn_model *m, const uint64_t *kept, const char *path)
{
    sbuf b = {0};
    sb_printf(&b, "{\n  \"arch\": \"%s\",\n  \"sites\": [\n", m->arch);
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
        sb_printf(&b, "%s    {\"site\": \"%s\", \"shape\": [%u, %u, %u], \"kept\": %llu, \"total\": %llu}",
                  site ? ",\n" : "", op->site, x->c, x->h, x->w, (unsigned long long)k, (unsigned long long)total);
        k_all += k;
        t_all += total;
        site++;
    }
    run_say(r, "%-20s %-14s %10llu %10llu %7.2f%%", "total", "", (unsigned long long)k_all, (unsigned long long)t_all,
            100.0 * (double)k_all / (double)t_all);
    sb_printf(&b, "\n  ],\n  \"kept\": %llu,\n  \"total\": %llu\n}\n", (unsigned long long)k_all,
              (unsigned long long)t_all);
    snlvk_status s = b.oom ? snlvk_fail(SNLVK_E_OOM, "out of host memory") : path ? write_atomic(path, b.s) : SNLVK_OK;
    free(b.s);
    return s;
}

/* A small SVG plot: test accuracy against ReLU count (log x), SNL and random masks. */
static void svg_plot(sbuf *b, const snl_budget_result *res, int n, const char *title)
{
    const double W = 640, H = 420, L = 70, R = 20, T = 40, B = 60;
    double xmin = 1e300, xmax = 0, ymin = 1, ymax = 0;
    for (int i = 0; i < n; i++) {
        double x = (double)(res[i].relus ? res[i].relus : 1), y = res[i].acc_finetuned;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
    }
    double lx0 = floor(log10(xmin)), lx1 = ceil(log10(xmax));
    if (lx1 <= lx0) lx1 = lx0 + 1;
    ymin = floor(ymin * 20) / 20 - 0.05;
    ymax = ceil(ymax * 20) / 20;
    if (ymin < 0) ymin = 0;
    if (ymax <= ymin) ymax = ymin + 0.1;
#define PX(x) (L + (log10(x) - lx0) / (lx1 - lx0) * (W - L - R))
#define PY(y) (H - B - ((y) - ymin) / (ymax - ymin) * (H - T - B))
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                 "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    sb_printf(b, "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", W / 2, title);
    sb_printf(b, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    sb_printf(b, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, H - B);
    for (double e = lx0; e <= lx1; e++) {
        double x = PX(pow(10, e));
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", x, T, x, H - B);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", x, H - B + 18, pow(10, e));
    }
    for (int k = 0; k <= 5; k++) {
        double y = ymin + (ymax - ymin) * k / 5;
        sb_printf(b, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, PY(y), W - R, PY(y));
        sb_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.1f%%</text>\n", L - 6, PY(y) + 4, 100 * y);
    }
    sb_printf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">ReLU count (log scale)</text>\n", (L + W - R) / 2,
              H - 18);
    sb_printf(b, "<text x=\"18\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.0f)\">test accuracy "
                 "after fine-tune</text>\n", (T + H - B) / 2, (T + H - B) / 2);
    static const char *colors[2] = {"#1f77b4", "#d62728"};
    static const char *names[2] = {"SNL", "random masks"};
    for (int series = 0; series < 2; series++) {
        int any = 0;
        sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[series]);
        for (int i = 0; i < n; i++)
            if (res[i].random == series) {
                sb_printf(b, "%.1f,%.1f ", PX((double)(res[i].relus ? res[i].relus : 1)), PY(res[i].acc_finetuned));
                any = 1;
            }
        sb_printf(b, "\"/>\n");
        for (int i = 0; i < n; i++)
            if (res[i].random == series)
                sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n",
                          PX((double)(res[i].relus ? res[i].relus : 1)), PY(res[i].acc_finetuned), colors[series]);
        if (any) {
            double ly = T + 12 + 18 * series;
            sb_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", W - R - 130, ly - 10,
                      colors[series]);
            sb_printf(b, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", W - R - 112, ly, names[series]);
        }
    }
    sb_printf(b, "</svg>\n");
#undef PX
#undef PY
}

snlvk_status snl_report_summary(run *r, const nn_model *m, const snl_budget_result *res, int n, uint64_t total,
                                double seconds)
{
    const snlvk_train_opts *o = r->o;
    run_say(r, "%s", "");
    run_say(r, "%-8s %-7s %9s %11s %9s %9s %9s %9s %9s", "method", "budget", "ReLUs", "mask ep.", "lambda", "soft acc",
            "binarized", "finetuned", "seconds");
    sbuf b = {0};
    sb_printf(&b, "{\n  \"arch\": \"%s\",\n  \"dataset\": \"%s\",\n  \"total_relus\": %llu,\n  \"granularity\": \"%s\",\n"
                  "  \"lambda\": \"%s\",\n  \"kappa\": %g,\n  \"threshold\": %g,\n  \"exact_budget\": %s,\n"
                  "  \"seconds\": %.1f,\n  \"results\": [\n",
              m->arch, o->dataset, (unsigned long long)total, m->granularity == NN_CHANNEL ? "channel" : "pixel",
              o->lambda, o->kappa, o->threshold, o->exact_budget ? "true" : "false", seconds);
    for (int i = 0; i < n; i++) {
        const snl_budget_result *br = &res[i];
        run_say(r, "%-8s %-7llu %9llu %11.2f %9.3g %9.4f %9.4f %9.4f %9.1f", br->random ? "random" : "SNL",
                (unsigned long long)br->budget, (unsigned long long)br->relus, br->random ? 0.0 : br->mask_epochs,
                br->random ? 0.0 : br->lambda, br->random ? 0.0 : br->acc_soft, br->acc_binarized, br->acc_finetuned,
                br->seconds);
        sb_printf(&b, "%s    {\"method\": \"%s\", \"budget\": %llu, \"met\": %s, \"relus\": %llu, \"mask_epochs\": %.4f, "
                      "\"lambda\": %.6g, \"soft_count\": %llu, \"acc_soft\": %.6f, \"acc_binarized\": %.6f, "
                      "\"acc_finetuned\": %.6f, \"finetune_best_epoch\": %d, \"seconds\": %.1f, \"checkpoint\": \"%s\"}",
                  i ? ",\n" : "", br->random ? "random" : "snl", (unsigned long long)br->budget,
                  br->met || br->random ? "true" : "false", (unsigned long long)br->relus, br->mask_epochs, br->lambda,
                  (unsigned long long)br->soft_count, br->acc_soft, br->acc_binarized, br->acc_finetuned,
                  br->finetune_best_epoch, br->seconds, br->checkpoint);
    }
    sb_printf(&b, "\n  ]\n}\n");
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", o->out_dir);
    snlvk_status s = b.oom ? snlvk_fail(SNLVK_E_OOM, "out of host memory") : write_atomic(path, b.s);
    free(b.s);
    if (s != SNLVK_OK) return s;
    sbuf svg = {0};
    char title[128];
    snprintf(title, sizeof title, "%s on %s: accuracy against ReLUs", m->arch, o->dataset);
    svg_plot(&svg, res, n, title);
    snprintf(path, sizeof path, "%s/pareto.svg", o->out_dir);
    s = svg.oom ? snlvk_fail(SNLVK_E_OOM, "out of host memory") : write_atomic(path, svg.s);
    free(svg.s);
    if (s == SNLVK_OK) run_say(r, "summary: %s/summary.json, plot: %s", o->out_dir, path);
    return s;
}
