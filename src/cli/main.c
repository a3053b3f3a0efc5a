/* snlvk command line: argument parsing, output and exit codes (0 ok, 1 failure, 2 usage). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snlvk/snlvk.h"

#define EXIT_USAGE 2

typedef struct command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv);
} command;

static const command *find_command(const char *name);

static void log_stderr(void *user, int level, const char *msg)
{
    (void)user;
    fprintf(stderr, "snlvk: %s: %s\n", level == SNLVK_LOG_ERROR ? "error" : level == SNLVK_LOG_WARN ? "warning" : "info",
            msg);
}

static int fail(snlvk_status s)
{
    fprintf(stderr, "snlvk: error: %s\n", snlvk_last_error());
    return s == SNLVK_OK ? 0 : 1;
}

/* ---- shared options ---- */
typedef struct common_opts {
    int device;
    int json;
} common_opts;

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "snlvk: %s expects an integer in [%d, %d], got '%s'\n", opt, lo, hi, v ? v : "");
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* Returns 1 if argv[*i] was a common option (consumed), 0 if not, -1 on error. */
static int common_option(int argc, char **argv, int *i, common_opts *o)
{
    const char *a = argv[*i];
    if (strcmp(a, "--device") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "snlvk: --device needs a device index\n");
            return -1;
        }
        return parse_int("--device", argv[++*i], 0, 1000, &o->device) ? 1 : -1;
    }
    if (strcmp(a, "--json") == 0) {
        o->json = 1;
        return 1;
    }
    return 0;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "snlvk %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    const command *c = find_command(cmd);
    if (c) fprintf(stderr, "usage: %s\n", c->usage);
    return EXIT_USAGE;
}

/* The context options the command line asks for. */
static void context_opts(const common_opts *o, snlvk_context_opts *co)
{
    snlvk_context_opts_default(co);
    co->device_index = o->device;
    co->log = log_stderr;
}

static snlvk_status open_context(const common_opts *o, snlvk_context **ctx)
{
    snlvk_context_opts co;
    context_opts(o, &co);
    return snlvk_context_create(&co, ctx);
}

/* ---- devices ---- */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void print_device_json(FILE *f, const snlvk_device_info *d, int chosen)
{
    fprintf(f, "    {\"index\": %d, \"chosen\": %s, \"name\": ", d->index, chosen ? "true" : "false");
    json_str(f, d->name);
    fprintf(f, ", \"type\": \"%s\", \"vendor\": \"%s\", \"vendor_id\": %u, \"device_id\": %u, \"driver\": ", d->type,
            d->vendor, d->vendor_id, d->device_id);
    json_str(f, d->driver_name);
    fprintf(f, ", \"driver_info\": ");
    json_str(f, d->driver_info);
    fprintf(f, ", \"driver_version\": \"%s\", \"api_version\": \"%s\", \"heaps\": [", d->driver_version,
            d->api_version);
    for (int h = 0; h < d->n_heaps; h++)
        fprintf(f, "%s{\"bytes\": %llu, \"device_local\": %s}", h ? ", " : "", (unsigned long long)d->heaps[h].size,
                d->heaps[h].device_local ? "true" : "false");
    fprintf(f,
            "], \"subgroup_size\": %u, \"subgroup_arithmetic\": %s, \"subgroup_shuffle\": %s, "
            "\"max_shared_memory\": %u, \"max_workgroup_invocations\": %u, \"shader_float16\": %s, "
            "\"push_descriptor\": %s, \"timestamps\": %s, \"timestamp_period_ns\": %g, \"unified_memory\": %s, "
            "\"usable\": %s}",
            d->subgroup_size, d->subgroup_arithmetic ? "true" : "false", d->subgroup_shuffle ? "true" : "false",
            d->max_shared_memory, d->max_workgroup_invocations, d->shader_float16 ? "true" : "false",
            d->push_descriptor ? "true" : "false", d->timestamps ? "true" : "false", d->timestamp_period_ns,
            d->unified_memory ? "true" : "false", d->usable ? "true" : "false");
}

static int cmd_devices(int argc, char **argv)
{
    common_opts o = {-1, 0};
    for (int i = 1; i < argc; i++) {
        int r = common_option(argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) return usage_error("devices", "unknown option '%s'", argv[i]);
    }
    snlvk_context_opts co;
    context_opts(&o, &co);
    snlvk_device_info devs[16];
    int n = 0, chosen = -1;
    snlvk_status s = snlvk_enumerate_devices(&co, devs, 16, &n, &chosen);
    if (s != SNLVK_OK) return fail(s);
    if (n > 16) n = 16;
    if (o.json) {
        printf("{\n  \"chosen\": %d,\n  \"devices\": [\n", chosen);
        for (int i = 0; i < n; i++) {
            print_device_json(stdout, &devs[i], i == chosen);
            printf("%s\n", i + 1 < n ? "," : "");
        }
        printf("  ]\n}\n");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const snlvk_device_info *d = &devs[i];
        printf("%s %d: %s\n", i == chosen ? "*" : " ", i, d->name);
        printf("      type %s, vendor %s (0x%04x), device 0x%04x\n", d->type, d->vendor, d->vendor_id, d->device_id);
        printf("      driver %s %s (%s), Vulkan %s\n", d->driver_name, d->driver_version, d->driver_info,
               d->api_version);
        for (int h = 0; h < d->n_heaps; h++)
            printf("      heap %d: %.2f GiB%s\n", h, (double)d->heaps[h].size / (1024.0 * 1024 * 1024),
                   d->heaps[h].device_local ? " device-local" : "");
        printf("      subgroup %u (arithmetic %s, shuffle %s), shared memory %u B, workgroup %u invocations\n",
               d->subgroup_size, d->subgroup_arithmetic ? "yes" : "no", d->subgroup_shuffle ? "yes" : "no",
               d->max_shared_memory, d->max_workgroup_invocations);
        printf("      float16 %s, push descriptors %s, timestamps %s (%g ns), %s memory%s\n",
               d->shader_float16 ? "yes" : "no", d->push_descriptor ? "yes" : "no", d->timestamps ? "yes" : "no",
               d->timestamp_period_ns, d->unified_memory ? "unified" : "discrete",
               d->usable ? "" : ", NOT USABLE (no compute queue or Vulkan < 1.1)");
    }
    if (chosen >= 0) printf("(* = the device snlvk uses; pick another with --device N or SNLVK_DEVICE=N)\n");
    return 0;
}

/* ---- bench ---- */
typedef struct ops_printer {
    int json, first;
    double peak_gflops;
} ops_printer;

static void print_op_result(void *user, const snlvk_op_bench *r)
{
    ops_printer *pr = user;
    double gflops = r->flops > 0 ? r->flops / (r->median_ms * 1e6) : 0;
    double gbs = r->bytes / (r->median_ms * 1e6);
    if (pr->json) {
        printf("%s\n    {\"op\": \"%s\", \"shape\": \"%s\", \"variant\": \"%s\", \"median_ms\": %.4f, "
               "\"min_ms\": %.4f, \"gflops\": %.3f, \"gbs\": %.3f, \"reps\": %d}",
               pr->first ? "" : ",", r->op, r->shape, r->variant, r->median_ms, r->min_ms, gflops, gbs, r->reps);
    } else {
        char peak[16] = "";
        if (pr->peak_gflops > 0 && gflops > 0) snprintf(peak, sizeof peak, "%5.1f%%", 100.0 * gflops / pr->peak_gflops);
        printf("%-24s %-34s %-6s %10.3f %9.2f %8.2f %7s\n", r->op, r->shape, r->variant, r->median_ms, gflops, gbs,
               peak);
    }
    pr->first = 0;
    fflush(stdout);
}

/* The kernels of one step, gathered per op family and printed once the step is timed. */
typedef struct step_printer {
    int json;
    snlvk_kernel_time k[256];
    int n;
} step_printer;

static void collect_kernel_time(void *user, const snlvk_kernel_time *k)
{
    step_printer *sp = user;
    if (sp->n < (int)(sizeof sp->k / sizeof *sp->k)) sp->k[sp->n++] = *k;
}

static void print_step(const step_printer *sp, const snlvk_step_bench *b, int first, int reps)
{
    const char *fams[16];
    double fms[16] = {0};
    int nf = 0, fcalls[16] = {0};
    double total = 0;
    for (int i = 0; i < sp->n; i++) {
        int f = 0;
        while (f < nf && strcmp(fams[f], sp->k[i].family) != 0) f++;
        if (f == nf && nf < 16) fams[nf++] = sp->k[i].family;
        if (f < nf) fms[f] += sp->k[i].ms, fcalls[f] += sp->k[i].calls;
        total += sp->k[i].ms;
    }
    if (sp->json) {
        printf("%s\n    {\"stage\": \"%s\", \"median_ms\": %.3f, \"min_ms\": %.3f, \"gpu_median_ms\": %.3f, "
               "\"gpu_min_ms\": %.3f, \"images_per_s\": %.1f, \"dispatches\": %d, \"reps\": %d, \"cached_teacher\": %s, "
               "\"families\": {",
               first ? "" : ",", b->stage, b->median_ms, b->min_ms, b->gpu_median_ms, b->gpu_min_ms, b->images_per_s,
               b->dispatches, reps, b->cached_teacher ? "true" : "false");
        for (int f = 0; f < nf; f++) printf("%s\"%s\": %.3f", f ? ", " : "", fams[f], fms[f]);
        printf("}, \"kernels\": [");
        for (int i = 0; i < sp->n; i++)
            printf("%s{\"kernel\": \"%s\", \"family\": \"%s\", \"calls\": %d, \"ms\": %.3f}", i ? ", " : "",
                   sp->k[i].kernel, sp->k[i].family, sp->k[i].calls, sp->k[i].ms);
        printf("]}");
        return;
    }
    printf("%s step%s of %s, batch %d: %.2f ms (best %.2f) by the clock, %.1f images/s; kernels %.2f ms (best %.2f) by "
           "GPU timestamps, %d dispatches (medians of %d)\n", b->stage, b->cached_teacher ? " (cached teacher)" : "",
           b->model, b->batch, b->median_ms, b->min_ms,
           b->images_per_s, b->gpu_median_ms, b->gpu_min_ms, b->dispatches, reps);
    for (int f = 0; f < nf; f++) {
        printf("  %-12s %5d calls %10.3f ms %6.1f%%\n", fams[f], fcalls[f], fms[f], total > 0 ? 100.0 * fms[f] / total : 0);
        for (int i = 0; i < sp->n; i++)
            if (strcmp(sp->k[i].family, fams[f]) == 0)
                printf("    %-24s %5d calls %10.3f ms\n", sp->k[i].kernel, sp->k[i].calls, sp->k[i].ms);
    }
}

static int cmd_bench(int argc, char **argv)
{
    common_opts o = {-1, 0};
    int gemm = 0, ops = 0, step = 0, reps = 10, batch = 32, n_stages = 0, cached_teacher = 0;
    const char *stages[3];
    const char *variant = "auto", *model = "resnet18", *filter = NULL;
    double peak = 0;
    for (int i = 1; i < argc; i++) {
        int r = common_option(argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r) continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--gemm") == 0) gemm = 1;
        else if (strcmp(a, "--ops") == 0) ops = 1;
        else if (strcmp(a, "--step") == 0) step = 1;
        else if (strcmp(a, "--cached-teacher") == 0) cached_teacher = 1;
        else if (strcmp(a, "--stage") == 0 && val) {
            const char *st = argv[++i];
            if (strcmp(st, "pretrain") && strcmp(st, "mask") && strcmp(st, "finetune"))
                return usage_error("bench", "--stage expects pretrain, mask or finetune, got '%s'", st);
            if (n_stages < 3) stages[n_stages++] = st;
        }
        else if (strcmp(a, "--reps") == 0) {
            if (!parse_int(a, val, 1, 10000, &reps)) return EXIT_USAGE;
            i++;
        } else if (strcmp(a, "--batch") == 0) {
            if (!parse_int(a, val, 1, 4096, &batch)) return EXIT_USAGE;
            i++;
        } else if (strcmp(a, "--model") == 0 && val) {
            model = argv[++i];
            if (strcmp(model, "resnet18") && strcmp(model, "resnet8-mini"))
                return usage_error("bench", "--model expects resnet18 or resnet8-mini, got '%s'", model);
        } else if (strcmp(a, "--filter") == 0 && val) {
            filter = argv[++i];
        } else if (strcmp(a, "--peak-gflops") == 0 && val) {
            char *end;
            peak = strtod(argv[++i], &end);
            if (*end || peak <= 0) return usage_error("bench", "--peak-gflops expects a positive number, got '%s'", argv[i]);
        } else if (strcmp(a, "--variant") == 0 && val) {
            variant = argv[++i];
            if (strcmp(variant, "auto") && strcmp(variant, "texel") && strcmp(variant, "tiled"))
                return usage_error("bench", "--variant expects auto, texel or tiled, got '%s'", variant);
        } else
            return usage_error("bench", "unknown option '%s'", a);
    }
    if (!gemm && !ops && !step) return usage_error("bench", "%snothing to benchmark: pass --gemm, --ops or --step", "");
    snlvk_context *ctx;
    snlvk_status s = open_context(&o, &ctx);
    if (s != SNLVK_OK) return fail(s);
    const snlvk_device_info *d = snlvk_context_device(ctx);
    if (o.json) {
        printf("{\"device\": ");
        json_str(stdout, d->name);
        printf(", \"driver\": ");
        json_str(stdout, d->driver_info);
        printf(", \"model\": \"%s\", \"batch\": %d", model, batch);
    }
    if (gemm) {
        static const int sizes[][3] = {{128, 128, 128}, {256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}};
        if (o.json) printf(", \"gemm\": [");
        else printf("GEMM C = A*B on %s (median of %d runs, GPU timestamps)\n%16s %8s %10s %10s\n", d->name, reps,
                    "M x N x K", "variant", "median ms", "GFLOP/s");
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && s == SNLVK_OK; i++) {
            snlvk_gemm_bench b;
            s = snlvk_bench_gemm(ctx, sizes[i][0], sizes[i][1], sizes[i][2], reps, variant, &b);
            if (s != SNLVK_OK) break;
            if (o.json)
                printf("%s{\"m\": %d, \"n\": %d, \"k\": %d, \"variant\": \"%s\", \"median_ms\": %.4f, "
                       "\"min_ms\": %.4f, \"gflops\": %.2f}",
                       i ? ", " : "", b.m, b.n, b.k, b.variant, b.median_ms, b.min_ms, b.gflops);
            else {
                char dims[32];
                snprintf(dims, sizeof dims, "%dx%dx%d", b.m, b.n, b.k);
                printf("%16s %8s %10.3f %10.2f\n", dims, b.variant, b.median_ms, b.gflops);
            }
            fflush(stdout);
        }
        if (o.json && s == SNLVK_OK) printf("]");
    }
    if (ops && s == SNLVK_OK) {
        ops_printer pr = {o.json, 1, peak};
        if (o.json) printf(", \"ops\": [");
        else printf("%sops at %s shapes, batch %d, on %s (median of %d runs, GPU timestamps)\n%-24s %-34s %-6s %10s %9s %8s %7s\n",
                    gemm ? "\n" : "", model, batch, d->name, reps, "op", "shape", "kernel", "median ms", "GFLOP/s",
                    "GB/s", "peak");
        s = snlvk_bench_ops(ctx, model, batch, reps, filter, print_op_result, &pr);
        if (o.json && s == SNLVK_OK) printf("\n  ]");
    }
    if (step && s == SNLVK_OK) {
        static const char *all[] = {"pretrain", "mask", "finetune"};
        if (!n_stages) {
            for (int i = 0; i < 3; i++) stages[i] = all[i];
            n_stages = 3;
        }
        if (o.json) printf(", \"steps\": [");
        for (int i = 0; i < n_stages && s == SNLVK_OK; i++) {
            static step_printer printer;
            step_printer *sp = &printer;
            memset(sp, 0, sizeof *sp);
            sp->json = o.json;
            snlvk_step_bench b;
            s = snlvk_bench_step(ctx, model, stages[i], cached_teacher, batch, reps, collect_kernel_time, sp, &b);
            if (s == SNLVK_OK) {
                if (!o.json && (i || gemm || ops)) printf("\n");
                print_step(sp, &b, i == 0, reps);
                fflush(stdout);
            }
        }
        if (o.json && s == SNLVK_OK) printf("\n  ]");
    }
    if (o.json && s == SNLVK_OK) printf("}\n");
    snlvk_context_destroy(ctx);
    return s == SNLVK_OK ? 0 : fail(s);
}

/* ---- train ---- */
/* Options taking a string; returns 1 when `a` is one. */
static int string_option(const char *a, const char *v, snlvk_train_opts *o)
{
    static const struct { const char *name; size_t off; } opts[] = {
        {"--model", offsetof(snlvk_train_opts, model)},       {"--dataset", offsetof(snlvk_train_opts, dataset)},
        {"--data", offsetof(snlvk_train_opts, data_dir)},     {"--out", offsetof(snlvk_train_opts, out_dir)},
        {"--stage", offsetof(snlvk_train_opts, stage)},       {"--init", offsetof(snlvk_train_opts, init)},
        {"--schedule", offsetof(snlvk_train_opts, schedule)}, {"--granularity", offsetof(snlvk_train_opts, granularity)},
        {"--relu-budget", offsetof(snlvk_train_opts, relu_budget)},
        {"--random-budget", offsetof(snlvk_train_opts, random_budgets)}, {"--lambda", offsetof(snlvk_train_opts, lambda)},
        {"--layer-budget", offsetof(snlvk_train_opts, layer_budgets)},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (strcmp(a, opts[i].name) == 0) {
            *(const char **)((char *)o + opts[i].off) = v;
            return 1;
        }
    return 0;
}

/* Integer options; returns 1 when `a` is one, *err = -1 after printing a bad value. */
static int int_option(const char *a, const char *v, snlvk_train_opts *o, int *err)
{
    static const struct { const char *name; size_t off; int lo; int is_long; } opts[] = {
        {"--epochs", offsetof(snlvk_train_opts, epochs), 1, 0},
        {"--batch", offsetof(snlvk_train_opts, batch), 1, 0},
        {"--image-size", offsetof(snlvk_train_opts, image_size), 0, 0},
        {"--max-mask-epochs", offsetof(snlvk_train_opts, max_mask_epochs), 1, 0},
        {"--target-mask-epochs", offsetof(snlvk_train_opts, target_mask_epochs), 1, 0},
        {"--finetune-epochs", offsetof(snlvk_train_opts, finetune_epochs), 0, 0},
        {"--check-every", offsetof(snlvk_train_opts, check_every), 1, 0},
        {"--data-limit", offsetof(snlvk_train_opts, data_limit), 1, 1},
        {"--test-limit", offsetof(snlvk_train_opts, test_limit), 1, 1},
        {"--seed", offsetof(snlvk_train_opts, seed), 0, 2},
    };
    *err = 0;
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (strcmp(a, opts[i].name) == 0) {
            int x;
            if (!parse_int(a, v, opts[i].lo, 2000000000, &x)) {
                *err = -1;
                return 1;
            }
            char *field = (char *)o + opts[i].off;
            if (opts[i].is_long == 1) *(long *)field = x;
            else if (opts[i].is_long == 2) *(uint64_t *)field = (uint64_t)x;
            else *(int *)field = x;
            return 1;
        }
    return 0;
}

/* Non-negative real options; *err = -1 after printing a bad value. */
static int double_option(const char *a, const char *v, snlvk_train_opts *o, double *err)
{
    static const struct { const char *name; size_t off; } opts[] = {
        {"--lr", offsetof(snlvk_train_opts, lr)},
        {"--momentum", offsetof(snlvk_train_opts, momentum)},
        {"--weight-decay", offsetof(snlvk_train_opts, weight_decay)},
        {"--kappa", offsetof(snlvk_train_opts, kappa)},
        {"--threshold", offsetof(snlvk_train_opts, threshold)},
        {"--mask-lr", offsetof(snlvk_train_opts, mask_lr)},
        {"--finetune-lr", offsetof(snlvk_train_opts, finetune_lr)},
        {"--kd-temperature", offsetof(snlvk_train_opts, kd_temperature)},
    };
    *err = 0;
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (strcmp(a, opts[i].name) == 0) {
            char *end;
            double x = strtod(v, &end);
            if (!*v || *end || !(x >= 0) || x > 1e30) {
                fprintf(stderr, "snlvk train: %s expects a non-negative number, got '%s'\n", a, v);
                *err = -1;
                return 1;
            }
            *(double *)((char *)o + opts[i].off) = x;
            return 1;
        }
    return 0;
}

typedef struct train_ui {
    int tty;
    int progress_shown;
    double last_plain;    /* elapsed seconds of the last plain progress line */
} train_ui;

static void ui_progress(void *user, const snlvk_progress *p)
{
    train_ui *ui = user;
    if (!ui->tty) {
        /* logs and pipes: a plain line every 30 seconds */
        double elapsed = p->steps_per_s > 0 ? p->step / p->steps_per_s : 0;
        if (p->step == 1 || elapsed < ui->last_plain) ui->last_plain = 0;
        if (elapsed - ui->last_plain < 30 || p->step == p->steps) return;
        ui->last_plain = elapsed;
        printf("%s epoch %d/%d: step %ld/%ld, %.1f images/s, loss %.4f, acc %.4f, ETA %.0fs\n", p->stage, p->epoch,
               p->epochs, p->step, p->steps, p->images_per_s, p->loss, p->accuracy, p->eta_s);
        fflush(stdout);
        return;
    }
    int width = 24, filled = p->steps ? (int)(width * p->step / p->steps) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%s epoch %d/%d [%s] %ld/%ld  %.1f steps/s %.0f img/s  loss %.4f acc %.4f  ETA %.0fs   ",
            p->stage, p->epoch, p->epochs, bar, p->step, p->steps, p->steps_per_s, p->images_per_s, p->loss,
            p->accuracy, p->eta_s);
    fflush(stderr);
    ui->progress_shown = 1;
}

static void ui_clear(train_ui *ui)
{
    if (ui->tty && ui->progress_shown) fprintf(stderr, "\r%*s\r", 110, "");
    ui->progress_shown = 0;
}

static void ui_epoch(void *user, const snlvk_epoch_result *r)
{
    ui_clear(user);
    printf("%s epoch %d/%d: lr %.4g  train loss %.4f acc %.4f  test loss %.4f acc %.4f top5 %.4f  %.1fs%s\n", r->stage,
           r->epoch, r->epochs, r->lr, r->train_loss, r->train_acc, r->test_loss, r->test_acc, r->test_top5,
           r->seconds, r->best ? "  (best)" : "");
    fflush(stdout);
}

static void ui_message(void *user, const char *line)
{
    ui_clear(user);
    printf("%s\n", line);
    fflush(stdout);
}

static int cmd_train(int argc, char **argv)
{
    common_opts o = {-1, 0};
    snlvk_train_opts to;
    snlvk_train_opts_default(&to);
    to.out_dir = "runs/latest";
    int summary = 0;
    for (int i = 1; i < argc; i++) {
        int r = common_option(argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r) continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ival;
        double dval;
        if (strcmp(a, "--summary") == 0) summary = 1;
        else if (strcmp(a, "--resume") == 0) to.resume = 1;
        else if (strcmp(a, "--no-kd") == 0) to.no_kd = 1;
        else if (strcmp(a, "--exact-budget") == 0) to.exact_budget = 1;
        else if (strcmp(a, "--random-mask") == 0) to.random_mask = 1;
        else if (!val) return usage_error("train", "option '%s' needs a value (or is unknown)", a);
        else if (string_option(a, argv[i + 1], &to)) i++;
        else if (int_option(a, argv[i + 1], &to, &ival)) {
            if (ival < 0) return EXIT_USAGE;
            i++;
        } else if (double_option(a, argv[i + 1], &to, &dval)) {
            if (dval < 0) return EXIT_USAGE;
            i++;
        } else
            return usage_error("train", "unknown option '%s'", a);
    }
    snlvk_context *ctx;
    snlvk_status s = open_context(&o, &ctx);
    if (s != SNLVK_OK) return fail(s);
    train_ui ui = {isatty(2), 0, 0};
    snlvk_train_callbacks cb = {ui_progress, ui_epoch, ui_message, &ui};
    printf("device: %s\n", snlvk_context_device(ctx)->name);
    if (summary) s = snlvk_model_summary_for_dataset(ctx, &to, &cb);
    else s = snlvk_train(ctx, &to, &cb);
    ui_clear(&ui);
    snlvk_context_destroy(ctx);
    if (s != SNLVK_OK) return fail(s);
    if (!summary) printf("checkpoints and log in %s\n", to.out_dir);
    return 0;
}

/* ---- eval ---- */
static int cmd_eval(int argc, char **argv)
{
    common_opts o = {-1, 0};
    snlvk_eval_opts eo = {0};
    for (int i = 1; i < argc; i++) {
        int r = common_option(argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r) continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ival;
        if (!val) return usage_error("eval", "option '%s' needs a value (or is unknown)", a);
        if (strcmp(a, "--ckpt") == 0) eo.checkpoint = argv[++i];
        else if (strcmp(a, "--dataset") == 0) eo.dataset = argv[++i];
        else if (strcmp(a, "--data") == 0) eo.data_dir = argv[++i];
        else if (strcmp(a, "--model") == 0) eo.model = argv[++i];
        else if (strcmp(a, "--relus-json") == 0) eo.json_path = argv[++i];
        else if (strcmp(a, "--batch") == 0 || strcmp(a, "--test-limit") == 0) {
            if (!parse_int(a, argv[++i], 1, 2000000000, &ival)) return EXIT_USAGE;
            if (a[2] == 'b') eo.batch = ival;
            else eo.test_limit = ival;
        } else if (strcmp(a, "--threshold") == 0) {
            char *end;
            eo.threshold = strtod(argv[++i], &end);
            if (*end || !(eo.threshold > 0)) return usage_error("eval", "--threshold expects a positive number, got '%s'", argv[i]);
        } else
            return usage_error("eval", "unknown option '%s'", a);
    }
    if (!eo.checkpoint) return usage_error("eval", "%s--ckpt FILE is required", "");
    snlvk_context *ctx;
    snlvk_status s = open_context(&o, &ctx);
    if (s != SNLVK_OK) return fail(s);
    train_ui ui = {0, 0, 0};
    snlvk_train_callbacks cb = {NULL, NULL, ui_message, &ui};
    snlvk_eval_result er;
    s = snlvk_eval(ctx, &eo, &cb, &er);
    if (s == SNLVK_OK && o.json)
        printf("{\"top1\": %.6f, \"top5\": %.6f, \"loss\": %.6f, \"relus\": %llu, \"total_relus\": %llu, \"examples\": %ld}\n",
               er.top1, er.top5, er.loss, (unsigned long long)er.relus, (unsigned long long)er.total_relus, er.examples);
    snlvk_context_destroy(ctx);
    return s == SNLVK_OK ? 0 : fail(s);
}

/* ---- help ---- */
static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"devices", "list every Vulkan device and the one snlvk picks", "snlvk devices [--json] [--device N]", cmd_devices},
    {"bench", "time kernels on the chosen device", "snlvk bench [--gemm] [--ops [--filter OP]] [--step [--stage pretrain|mask|finetune]... [--cached-teacher]] [--model resnet18|resnet8-mini] [--batch N] [--variant auto|texel|tiled] [--reps N] [--peak-gflops X] [--json] [--device N]",
     cmd_bench},
    {"train", "pretrain a model, and learn which ReLUs to keep for a budget (SNL)",
     "snlvk train [--model resnet8-mini|resnet18|resnet34|wrn22-8] [--dataset fashion-mnist|mnist|cifar10|cifar100|imagefolder|tiny-imagenet]\n"
     "            [--data DIR] [--out DIR] [--stage pretrain|mask|finetune|all] [--init CKPT] [--resume] [--summary]\n"
     "  pretrain: [--epochs N] [--batch N] [--lr X] [--momentum X] [--weight-decay X] [--schedule step|cosine]\n"
     "            [--seed N] [--data-limit N] [--test-limit N] [--image-size N]\n"
     "  SNL:      --relu-budget N|FRACTION[,N...] [--granularity pixel|channel] [--lambda X|auto] [--kappa X]\n"
     "            [--threshold X] [--max-mask-epochs N] [--target-mask-epochs N] [--mask-lr X] [--check-every K]\n"
     "            [--exact-budget] [--finetune-epochs N] [--finetune-lr X] [--kd-temperature X] [--no-kd] [--random-mask]\n"
     "            [--random-budget N[,N...]] [--layer-budget N[,N...]]\n"
     "            [--device N]",
     cmd_train},
    {"eval", "accuracy, loss and ReLUs per site of a checkpoint",
     "snlvk eval --ckpt FILE [--dataset D] [--data DIR] [--model M] [--batch N] [--test-limit N] [--threshold X]\n"
     "           [--relus-json FILE] [--json] [--device N]",
     cmd_eval},
    {"help", "show help for a command", "snlvk help [COMMAND]", cmd_help},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fprintf(f, "snlvk %s: Selective Network Linearization on Vulkan compute\n\nusage: snlvk COMMAND [OPTIONS]\n\ncommands:\n",
            SNLVK_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nenvironment: SNLVK_DEVICE=N picks a device, SNLVK_VALIDATION=1 turns on the Vulkan validation layer\n"
               "'snlvk help COMMAND' shows a command's options.\n");
}

/* The command called `name`, or NULL after saying on stderr that there is none. */
static const command *find_command_or_complain(const char *name)
{
    const command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "snlvk: unknown command '%s'\n", name);
        print_usage(stderr);
    }
    return c;
}

static void print_command_help(const command *c) { printf("%s\n  %s\n", c->usage, c->summary); }

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stdout);
        return 0;
    }
    const command *c = find_command_or_complain(argv[1]);
    if (!c) return EXIT_USAGE;
    print_command_help(c);
    return 0;
}

/* lavapipe compiles kernels for LP_NATIVE_VECTOR_WIDTH-bit vectors, 256 unless told. On
 * a CPU with AVX-512 the command line asks for 512 unless the variable is set already:
 * on a 2-core AMD Zen 5 the convolutions ran 15-20% faster with the same register blocks
 * and about 1.3x with blocks chosen for its subgroups of 16 (ops/conv.c, ops/gemm.c); a
 * resnet8-mini training step 3-7% (interleaved runs). On an AVX-512 Zen 4 it was no faster.
 * The variable is read when the driver starts, so this must precede any Vulkan call;
 * LP_NATIVE_VECTOR_WIDTH=256 keeps the driver's default. */
static void prefer_wide_vectors(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (!getenv("LP_NATIVE_VECTOR_WIDTH") && __builtin_cpu_supports("avx512f"))
        setenv("LP_NATIVE_VECTOR_WIDTH", "512", 0);
#endif
}

int main(int argc, char **argv)
{
    prefer_wide_vectors();
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("snlvk %s\n", SNLVK_VERSION);
        return 0;
    }
    const command *c = find_command_or_complain(argv[1]);
    if (!c) return EXIT_USAGE;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_command_help(c);
            return 0;
        }
    return c->run(argc - 1, argv + 1);
}
