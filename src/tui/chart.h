/* chart.h - line charts of a series in character cells: scaling, then braille or ASCII.
 *
 * Scaling maps the series onto a grid of "dots": a braille cell holds 2x4 dots (U+2800..28FF),
 * an ASCII cell 1x3 (the glyphs . - ' at the bottom, middle and top). Each dot column takes the
 * mean of the points that fall in it; columns between points are interpolated so the line is
 * continuous; the y range is the data's own [min, max] (widened when flat).
 */
#ifndef SW_TUI_CHART_H
#define SW_TUI_CHART_H

#include <stdbool.h>

#include "canvas.h"
#include "series.h"

#define SW_TUI_PLOT_MAX_COLS 1024

typedef struct sw_tui_plot {
    int cols, rows;                  /* dot grid */
    int level[SW_TUI_PLOT_MAX_COLS]; /* dot row per column, 0 = bottom; -1 = no data */
    double x_lo, x_hi, y_lo, y_hi;   /* the data range drawn */
    bool empty;
} sw_tui_plot;

/* Scales `s` onto a cols x rows dot grid (cols clipped to SW_TUI_PLOT_MAX_COLS). When y_min <
 * y_max they fix the y range instead of the data (e.g. [0, 1] for accuracy). */
void sw_tui_plot_scale(const sw_tui_series *s, int cols, int rows, double y_min, double y_max,
                       sw_tui_plot *p);

/* Dot grid of a cell area for a mode. */
void sw_tui_plot_dots(int cell_w, int cell_h, bool braille, int *cols, int *rows);

/* Draws a scaled plot into `r` (whose size in dots must be the plot's). */
void sw_tui_plot_draw(sw_tui_canvas *c, sw_tui_rect r, const sw_tui_plot *p, bool braille,
                      sw_tui_style style);

#endif
