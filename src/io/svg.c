#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io/svg.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "io/atomic_file.h"
#include "io/json.h"

#define MAX_TICKS 64
#define MAX_MINOR 512

/* Numbers are formatted with snlvk_snprintf_c, never with %f/%g in snlvk_sb_printf, so
 * that a locale with a decimal comma cannot break the SVG. */

/* A pixel coordinate with one decimal: "123.4". Thread-local ring so that several can
 * appear in one printf. */
static const char *px(double v)
{
    static _Thread_local char ring[16][32];
    static _Thread_local int next;
    char *b = ring[next];
    next = (next + 1) % 16;
    if (!isfinite(v)) v = 0;
    if (v > 1e6) v = 1e6;
    if (v < -1e6) v = -1e6;
    long long t = llround(v * 10);
    long long a = t < 0 ? -t : t;
    if (a % 10 == 0) snprintf(b, 32, "%s%lld", t < 0 ? "-" : "", a / 10);
    else snprintf(b, 32, "%s%lld.%lld", t < 0 ? "-" : "", a / 10, a % 10);
    return b;
}

/* XML-escaped text; invalid UTF-8 becomes U+FFFD and control characters are dropped. */
static void sb_text(snlvk_strbuf *b, const char *s)
{
    if (!s) return;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '&') snlvk_sb_put(b, "&amp;", 5);
        else if (c == '<') snlvk_sb_put(b, "&lt;", 4);
        else if (c == '>') snlvk_sb_put(b, "&gt;", 4);
        else if (c == '"') snlvk_sb_put(b, "&quot;", 6);
        else if (c == '\'') snlvk_sb_put(b, "&apos;", 6);
        else if (c < 0x20) {
            if (c == '\t' || c == '\n' || c == '\r') snlvk_sb_put(b, " ", 1);
        } else if (c >= 0x80) {
            size_t k = snlvk_json_utf8_next(s + i, len - i);
            if (k == 0) {
                snlvk_sb_put(b, "\xef\xbf\xbd", 3);
                k = 1;
            } else
                snlvk_sb_put(b, s + i, k);
            i += k;
            continue;
        } else
            snlvk_sb_put(b, s + i, 1);
        i++;
    }
}

/* Approximate width in pixels of text at a font size (sans-serif averages ~0.6 em). */
static double text_width(const char *s, double font)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if ((*p & 0xc0) != 0x80) chars++;
    return (double)chars * font * 0.6;
}

/* ------------------------------------------------------------------ axes */

typedef struct axis {
    int log;
    double lo, hi;   /* range in data units */
    double tlo, thi; /* the same, transformed (log10 on a log axis) */
    int n_ticks;
    double ticks[MAX_TICKS];
    char labels[MAX_TICKS][24];
    int n_minor;
    double minor[MAX_MINOR];
} axis;

static double tf(const axis *a, double v) { return a->log ? log10(v) : v; }

/* A tick label: round numbers, SI suffixes from 1000 up ("20k", "1.5M"). `step` sets
 * the decimals of small numbers. */
static void fmt_tick(char *buf, size_t size, double v, double step)
{
    double a = fabs(v);
    if (a < fabs(step) * 1e-6) v = a = 0;
    if (a != 0 && (a >= 1e15 || a < 1e-4)) {
        snlvk_snprintf_c(buf, size, "%.3g", v);
        /* "1e-05" -> "1e-5", "1e+15" -> "1e15" */
        char *e = strchr(buf, 'e');
        if (e) {
            char *d = e + 1, *r = e + 1;
            if (*r == '+') r++;
            else if (*r == '-') *d++ = *r++;
            while (*r == '0' && r[1]) r++;
            memmove(d, r, strlen(r) + 1);
        }
        return;
    }
    if (a >= 1000) {
        static const struct {
            double scale;
            const char *suffix;
        } si[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
        for (size_t i = 0; i < sizeof si / sizeof si[0]; i++)
            if (a >= si[i].scale * (1 - 1e-9)) {
                snlvk_snprintf_c(buf, size, "%.4g%s", v / si[i].scale, si[i].suffix);
                return;
            }
    }
    int dec = 0;
    if (step > 0) dec = (int)ceil(-log10(step) - 1e-9);
    if (dec < 0) dec = 0;
    if (dec > 6) dec = 6;
    snlvk_snprintf_c(buf, size, "%.*f", dec, v);
}

static double nice_step(double span, double target)
{
    double raw = span / target;
    if (!(raw > 0) || !isfinite(raw)) return 1;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * mag;
}

static void axis_linear(axis *a, double dmin, double dmax, int fixed, double target)
{
    a->log = 0;
    if (!fixed) {
        if (dmax - dmin <= fabs(dmax) * 1e-12) {
            double pad = dmin != 0 ? fabs(dmin) * 0.1 : 1;
            dmin -= pad;
            dmax += pad;
        } else {
            double m = (dmax - dmin) * 0.05;
            dmin -= m;
            dmax += m;
        }
    }
    a->lo = a->tlo = dmin;
    a->hi = a->thi = dmax;
    double step = nice_step(dmax - dmin, target);
    double k0 = ceil(dmin / step - 1e-9);
    a->n_ticks = 0;
    for (double k = k0; a->n_ticks < MAX_TICKS; k++) {
        double v = k * step;
        if (v > dmax + step * 1e-9) break;
        if (fabs(v) < step * 1e-9) v = 0;
        a->ticks[a->n_ticks] = v;
        fmt_tick(a->labels[a->n_ticks], sizeof a->labels[0], v, step);
        a->n_ticks++;
    }
    a->n_minor = 0;
}

/* px_len: the axis length in pixels (about); min_gap: the least room between labels. */
static void axis_log(axis *a, double dmin, double dmax, int fixed, double px_len, double min_gap)
{
    a->log = 1;
    double l0 = log10(dmin), l1 = log10(dmax);
    if (!fixed) {
        if (l1 - l0 < 1e-9) {
            l0 -= 0.5;
            l1 += 0.5;
        } else {
            double m = (l1 - l0) * 0.05;
            l0 -= m;
            l1 += m;
        }
    }
    a->tlo = l0;
    a->thi = l1;
    a->lo = pow(10, l0);
    a->hi = pow(10, l1);
    double decades = l1 - l0;
    double px_per_decade = px_len / decades;
    int e0 = (int)floor(l0), e1 = (int)ceil(l1);
    /* Labels at the densest set of multiples of each decade whose closest pair still has
     * min_gap pixels between them: 1-2-3-5-7 or 1-2-5 for short ranges, every decade, or
     * every stride-th decade for long ones. */
    static const int m_dense[] = {1, 2, 3, 5, 7}, m125[] = {1, 2, 5};
    const int *mult = m125;
    int n_mult = 1;
    if (0.146 * px_per_decade >= min_gap) {
        mult = m_dense;
        n_mult = 5;
    } else if (0.301 * px_per_decade >= min_gap) {
        n_mult = 3;
    }
    int stride = 1;
    if (px_per_decade < min_gap) stride = (int)ceil(min_gap / px_per_decade);
    a->n_ticks = 0;
    a->n_minor = 0;
    for (int e = e0; e <= e1; e++) {
        for (int m = 1; m <= 9; m++) {
            double v = m * pow(10, e);
            double t = log10(v);
            if (t < l0 - 1e-9 || t > l1 + 1e-9) continue;
            int labeled = 0;
            if (m == 1) labeled = ((e - e0) % stride) == 0;
            else
                for (int k = 1; k < n_mult; k++) labeled |= mult[k] == m;
            if (labeled && a->n_ticks < MAX_TICKS) {
                a->ticks[a->n_ticks] = v;
                fmt_tick(a->labels[a->n_ticks], sizeof a->labels[0], v, v);
                a->n_ticks++;
            } else if (px_per_decade >= 40 && a->n_minor < MAX_MINOR)
                a->minor[a->n_minor++] = v;
        }
    }
}

/* The data range of one coordinate over every series; returns 0 if there is no usable point. */
static int data_range(const snlvk_svg_plot *p, int want_x, double *mn, double *mx)
{
    int any = 0;
    *mn = INFINITY;
    *mx = -INFINITY;
    for (size_t s = 0; s < p->n_series; s++) {
        const snlvk_svg_series *se = &p->series[s];
        if (!se->x || !se->y) continue;
        for (size_t i = 0; i < se->n; i++) {
            double x = se->x[i], y = se->y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            if ((p->log_x && x <= 0) || (p->log_y && y <= 0)) continue;
            double v = want_x ? x : y;
            if (v < *mn) *mn = v;
            if (v > *mx) *mx = v;
            any = 1;
        }
    }
    return any;
}

static snlvk_status make_axis(const snlvk_svg_plot *p, int is_x, axis *a, double target, double px_len)
{
    int log = is_x ? p->log_x : p->log_y;
    int fixed = is_x ? p->fixed_x : p->fixed_y;
    const char *name = is_x ? "x" : "y";
    double mn, mx;
    if (fixed) {
        mn = is_x ? p->x_min : p->y_min;
        mx = is_x ? p->x_max : p->y_max;
        if (!isfinite(mn) || !isfinite(mx) || !(mx > mn))
            return snlvk_fail(SNLVK_E_INVALID, "svg plot: fixed %s range [%g, %g] is empty or not finite", name, mn, mx);
        if (log && mn <= 0)
            return snlvk_fail(SNLVK_E_INVALID, "svg plot: fixed %s range [%g, %g] must be positive on a log axis", name,
                              mn, mx);
    } else if (!data_range(p, is_x, &mn, &mx)) {
        mn = log ? 1 : 0;
        mx = log ? 10 : 1;
        fixed = 1;
    }
    if (!isfinite(mx - mn) || fabs(mn) > 1e300 || fabs(mx) > 1e300)
        return snlvk_fail(SNLVK_E_INVALID, "svg plot: the %s range [%g, %g] is too large to draw", name, mn, mx);
    if (log) axis_log(a, mn, mx, fixed, px_len, is_x ? 48 : 22);
    else axis_linear(a, mn, mx, fixed, target);
    return SNLVK_OK;
}

/* ------------------------------------------------------------------ rendering */

static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

typedef struct frame {
    double L, T, R, B; /* plot area edges in pixels */
    axis x, y;
} frame;

static double map_x(const frame *f, double v)
{
    return f->L + (tf(&f->x, v) - f->x.tlo) / (f->x.thi - f->x.tlo) * (f->R - f->L);
}
static double map_y(const frame *f, double v)
{
    return f->B - (tf(&f->y, v) - f->y.tlo) / (f->y.thi - f->y.tlo) * (f->B - f->T);
}

static int usable(const snlvk_svg_plot *p, double x, double y)
{
    if (!isfinite(x) || !isfinite(y)) return 0;
    if ((p->log_x && x <= 0) || (p->log_y && y <= 0)) return 0;
    return 1;
}

static void color_attr(snlvk_strbuf *b, const char *c)
{
    sb_text(b, c);
}

static void draw_series(snlvk_strbuf *b, const snlvk_svg_plot *p, const frame *f, const snlvk_svg_series *se,
                        const char *color)
{
    if (!se->x || !se->y || se->n == 0) return;
    if (se->style != SNLVK_SVG_MARKERS) {
        int open = 0;
        for (size_t i = 0; i < se->n; i++) {
            if (!usable(p, se->x[i], se->y[i])) {
                if (open) snlvk_sb_printf(b, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open) {
                snlvk_sb_printf(b, "<polyline fill=\"none\" stroke=\"");
                color_attr(b, color);
                snlvk_sb_printf(b,
                                "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"%s points=\"",
                                se->dashed ? " stroke-dasharray=\"6 4\"" : "");
                open = 1;
            } else
                snlvk_sb_put(b, " ", 1);
            snlvk_sb_printf(b, "%s,%s", px(map_x(f, se->x[i])), px(map_y(f, se->y[i])));
        }
        if (open) snlvk_sb_printf(b, "\"/>\n");
    }
    if (se->style != SNLVK_SVG_LINE) {
        snlvk_sb_printf(b, "<g fill=\"");
        color_attr(b, color);
        snlvk_sb_printf(b, "\" stroke=\"#ffffff\" stroke-width=\"1\">\n");
        for (size_t i = 0; i < se->n; i++)
            if (usable(p, se->x[i], se->y[i]))
                snlvk_sb_printf(b, "<circle cx=\"%s\" cy=\"%s\" r=\"3.5\"/>\n", px(map_x(f, se->x[i])),
                                px(map_y(f, se->y[i])));
        snlvk_sb_printf(b, "</g>\n");
    }
}

/* Points of every series inside a box (to place the legend where it hides the fewest). */
static size_t points_in(const snlvk_svg_plot *p, const frame *f, double x0, double y0, double x1, double y1)
{
    size_t n = 0;
    for (size_t s = 0; s < p->n_series; s++) {
        const snlvk_svg_series *se = &p->series[s];
        if (!se->x || !se->y) continue;
        for (size_t i = 0; i < se->n; i++) {
            if (!usable(p, se->x[i], se->y[i])) continue;
            double X = map_x(f, se->x[i]), Y = map_y(f, se->y[i]);
            if (X >= x0 && X <= x1 && Y >= y0 && Y <= y1) n++;
        }
    }
    return n;
}

static void draw_legend(snlvk_strbuf *b, const snlvk_svg_plot *p, const frame *f, const char **colors)
{
    size_t n = 0;
    double wmax = 0;
    for (size_t s = 0; s < p->n_series; s++) {
        const char *nm = p->series[s].name;
        if (!nm || !nm[0]) continue;
        n++;
        double w = text_width(nm, 12);
        if (w > wmax) wmax = w;
    }
    if (!n) return;
    const double row = 18, pad = 8, sample = 26;
    double w = pad + sample + 6 + wmax + pad, h = pad + row * (double)n + pad - 4;
    if (w > f->R - f->L - 16) w = f->R - f->L - 16;
    const double inset = 10;
    /* top-right, top-left, bottom-right, bottom-left: the first with the fewest points */
    double xs[4] = {f->R - inset - w, f->L + inset, f->R - inset - w, f->L + inset};
    double ys[4] = {f->T + inset, f->T + inset, f->B - inset - h, f->B - inset - h};
    int best = 0;
    size_t best_n = SIZE_MAX;
    for (int c = 0; c < 4; c++) {
        size_t k = points_in(p, f, xs[c] - 4, ys[c] - 4, xs[c] + w + 4, ys[c] + h + 4);
        if (k < best_n) {
            best_n = k;
            best = c;
        }
    }
    double x0 = xs[best], y0 = ys[best];
    snlvk_sb_printf(b, "<g class=\"legend\">\n<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"4\" "
                       "fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n",
                    px(x0), px(y0), px(w), px(h));
    size_t k = 0;
    for (size_t s = 0; s < p->n_series; s++) {
        const snlvk_svg_series *se = &p->series[s];
        if (!se->name || !se->name[0]) continue;
        double cy = y0 + pad + row * (double)k + 6;
        if (se->style != SNLVK_SVG_MARKERS) {
            snlvk_sb_printf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"", px(x0 + pad), px(cy),
                            px(x0 + pad + sample), px(cy));
            color_attr(b, colors[s]);
            snlvk_sb_printf(b, "\" stroke-width=\"2\"%s/>\n", se->dashed ? " stroke-dasharray=\"6 4\"" : "");
        }
        if (se->style != SNLVK_SVG_LINE) {
            snlvk_sb_printf(b, "<circle cx=\"%s\" cy=\"%s\" r=\"3.5\" stroke=\"#ffffff\" fill=\"",
                            px(x0 + pad + sample / 2), px(cy));
            color_attr(b, colors[s]);
            snlvk_sb_printf(b, "\"/>\n");
        }
        snlvk_sb_printf(b, "<text x=\"%s\" y=\"%s\" dominant-baseline=\"central\" fill=\"#222222\">",
                        px(x0 + pad + sample + 6), px(cy));
        sb_text(b, se->name);
        snlvk_sb_printf(b, "</text>\n");
        k++;
    }
    snlvk_sb_printf(b, "</g>\n");
}

snlvk_status snlvk_svg_render(const snlvk_svg_plot *p, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    if (!p) return snlvk_fail(SNLVK_E_INVALID, "svg plot: no plot");
    if (p->n_series && !p->series) return snlvk_fail(SNLVK_E_INVALID, "svg plot: %zu series but no list", p->n_series);
    double W = p->width > 0 ? p->width : 720, H = p->height > 0 ? p->height : 450;
    if (W < 200 || H < 150 || W > 20000 || H > 20000)
        return snlvk_fail(SNLVK_E_INVALID, "svg plot: size %gx%g is out of range (200x150 to 20000x20000)", W, H);

    frame *f = calloc(1, sizeof *f);
    const char **colors = calloc(p->n_series + 1, sizeof *colors);
    if (!f || !colors) {
        free(f);
        free(colors);
        return snlvk_fail(SNLVK_E_OOM, "svg plot: out of memory");
    }
    for (size_t s = 0; s < p->n_series; s++)
        if (p->series[s].n && (!p->series[s].x || !p->series[s].y)) {
            free(f);
            free(colors);
            return snlvk_fail(SNLVK_E_INVALID, "svg plot: series %zu ('%s') has %zu points but no x or y array", s,
                              p->series[s].name ? p->series[s].name : "", p->series[s].n);
        }
    size_t next_color = 0;
    for (size_t s = 0; s < p->n_series; s++)
        colors[s] = p->series[s].color ? p->series[s].color : palette[next_color++ % (sizeof palette / sizeof palette[0])];

    /* (the axis lengths are estimated before the margins are known) */
    snlvk_status st = make_axis(p, 0, &f->y, H / 90, H - 100);
    if (st == SNLVK_OK) st = make_axis(p, 1, &f->x, W / 120, W - 120);
    if (st != SNLVK_OK) {
        free(f);
        free(colors);
        return st;
    }
    double ylab_w = 0;
    for (int i = 0; i < f->y.n_ticks; i++) {
        double w = text_width(f->y.labels[i], 12);
        if (w > ylab_w) ylab_w = w;
    }
    f->L = (p->y_label ? 34 : 12) + ylab_w + 10;
    f->R = W - 24;
    f->T = p->title ? 48 : 20;
    f->B = H - (p->x_label ? 54 : 32);

    snlvk_strbuf b = {0};
    snlvk_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\" "
                        "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
                    px(W), px(H), px(W), px(H));
    if (p->title) {
        snlvk_sb_printf(&b, "<title>");
        sb_text(&b, p->title);
        snlvk_sb_printf(&b, "</title>\n");
    }
    snlvk_sb_printf(&b, "<defs><clipPath id=\"snlvk-plot-area\"><rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>"
                        "</clipPath></defs>\n",
                    px(f->L), px(f->T), px(f->R - f->L), px(f->B - f->T));
    snlvk_sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    if (p->title) {
        snlvk_sb_printf(&b, "<text x=\"%s\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"600\" "
                            "fill=\"#222222\">",
                        px((f->L + f->R) / 2));
        sb_text(&b, p->title);
        snlvk_sb_printf(&b, "</text>\n");
    }

    /* grid: minor, then major */
    if (f->x.n_minor || f->y.n_minor) {
        snlvk_sb_printf(&b, "<g stroke=\"#f0f0f0\" stroke-width=\"1\">\n");
        for (int i = 0; i < f->x.n_minor; i++) {
            double X = map_x(f, f->x.minor[i]);
            snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(X), px(f->T), px(X), px(f->B));
        }
        for (int i = 0; i < f->y.n_minor; i++) {
            double Y = map_y(f, f->y.minor[i]);
            snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(f->L), px(Y), px(f->R), px(Y));
        }
        snlvk_sb_printf(&b, "</g>\n");
    }
    snlvk_sb_printf(&b, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    for (int i = 0; i < f->x.n_ticks; i++) {
        double X = map_x(f, f->x.ticks[i]);
        snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(X), px(f->T), px(X), px(f->B));
    }
    for (int i = 0; i < f->y.n_ticks; i++) {
        double Y = map_y(f, f->y.ticks[i]);
        snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(f->L), px(Y), px(f->R), px(Y));
    }
    snlvk_sb_printf(&b, "</g>\n");
    snlvk_sb_printf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" stroke=\"#888888\"/>\n",
                    px(f->L), px(f->T), px(f->R - f->L), px(f->B - f->T));

    /* ticks and their labels */
    snlvk_sb_printf(&b, "<g stroke=\"#888888\">\n");
    for (int i = 0; i < f->x.n_ticks; i++) {
        double X = map_x(f, f->x.ticks[i]);
        snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(X), px(f->B), px(X), px(f->B + 5));
    }
    for (int i = 0; i < f->y.n_ticks; i++) {
        double Y = map_y(f, f->y.ticks[i]);
        snlvk_sb_printf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", px(f->L - 5), px(Y), px(f->L), px(Y));
    }
    snlvk_sb_printf(&b, "</g>\n<g fill=\"#333333\">\n");
    for (int i = 0; i < f->x.n_ticks; i++)
        snlvk_sb_printf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\">%s</text>\n", px(map_x(f, f->x.ticks[i])),
                        px(f->B + 19), f->x.labels[i]);
    for (int i = 0; i < f->y.n_ticks; i++)
        snlvk_sb_printf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"end\" dominant-baseline=\"central\">%s</text>\n",
                        px(f->L - 8), px(map_y(f, f->y.ticks[i])), f->y.labels[i]);
    snlvk_sb_printf(&b, "</g>\n");

    /* axis titles */
    if (p->x_label) {
        snlvk_sb_printf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\">",
                        px((f->L + f->R) / 2), px(H - 14));
        sb_text(&b, p->x_label);
        snlvk_sb_printf(&b, "</text>\n");
    }
    if (p->y_label) {
        double cx = 18, cy = (f->T + f->B) / 2;
        snlvk_sb_printf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\" "
                            "transform=\"rotate(-90 %s %s)\">",
                        px(cx), px(cy), px(cx), px(cy));
        sb_text(&b, p->y_label);
        snlvk_sb_printf(&b, "</text>\n");
    }

    /* the data, clipped to the plot area */
    snlvk_sb_printf(&b, "<g clip-path=\"url(#snlvk-plot-area)\">\n");
    for (size_t s = 0; s < p->n_series; s++) draw_series(&b, p, f, &p->series[s], colors[s]);
    snlvk_sb_printf(&b, "</g>\n");
    draw_legend(&b, p, f, colors);
    snlvk_sb_printf(&b, "</svg>\n");

    free(f);
    free(colors);
    if (b.oom) {
        snlvk_sb_free(&b);
        return snlvk_fail(SNLVK_E_OOM, "svg plot: out of memory");
    }
    *out = b.s;
    if (len) *len = b.n;
    return SNLVK_OK;
}

snlvk_status snlvk_svg_write(const char *path, const snlvk_svg_plot *p)
{
    char *text;
    size_t len;
    snlvk_status s = snlvk_svg_render(p, &text, &len);
    if (s != SNLVK_OK) return snlvk_fail_context(s, "%s", path ? path : "svg");
    s = snlvk_atomic_write(path, text, len);
    free(text);
    return s;
}
