/* A simple, clean SVG line/scatter plot: named series of (x, y) points, a title, axis
 * titles, linear or log axes with round-number ticks and a grid, and a legend placed in
 * the corner of the plot that hides the fewest points. Written atomically (temp file +
 * rename, see io/atomic_file.h). Points that are not finite, or not positive on a log
 * axis, are skipped (they break a line). Text is XML-escaped; the output never depends on
 * the C locale. Nothing prints or exits. */
#ifndef SNLVK_IO_SVG_H
#define SNLVK_IO_SVG_H

#include <stddef.h>

#include "core/error.h"

typedef enum snlvk_svg_style {
    SNLVK_SVG_LINE_MARKERS = 0, /* a line through the points, with a marker at each */
    SNLVK_SVG_LINE,             /* the line only */
    SNLVK_SVG_MARKERS           /* markers only (scatter) */
} snlvk_svg_style;

typedef struct snlvk_svg_series {
    const char *name;  /* in the legend; NULL or "" keeps it out of the legend */
    const double *x, *y;
    size_t n;
    snlvk_svg_style style;
    const char *color; /* e.g. "#1f77b4" (written as given, escaped); NULL: the next palette colour */
    int dashed;        /* dashed line */
} snlvk_svg_series;

typedef struct snlvk_svg_plot {
    const char *title;   /* NULL: none */
    const char *x_label; /* NULL: none */
    const char *y_label;
    int log_x, log_y;
    int width, height;   /* pixels; 0: 720 x 450 */
    /* Fixed axis ranges (else from the data, with a 5% margin). */
    int fixed_x, fixed_y;
    double x_min, x_max, y_min, y_max;
    const snlvk_svg_series *series;
    size_t n_series;
} snlvk_svg_plot;

/* The SVG text (malloc'd, NUL-terminated; free it) and its length (len may be NULL). */
snlvk_status snlvk_svg_render(const snlvk_svg_plot *p, char **out, size_t *len);
/* Renders and writes `path` atomically. */
snlvk_status snlvk_svg_write(const char *path, const snlvk_svg_plot *p);

#endif
