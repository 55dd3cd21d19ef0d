/* chart.c - scaling a series onto a dot grid, and drawing it in braille or ASCII. */
#include "chart.h"

#include <math.h>
#include <string.h>

void sw_tui_plot_dots(int cell_w, int cell_h, bool braille, int *cols, int *rows) {
    *cols = braille ? cell_w * 2 : cell_w;
    *rows = braille ? cell_h * 4 : cell_h * 3;
    if (*cols > SW_TUI_PLOT_MAX_COLS) *cols = SW_TUI_PLOT_MAX_COLS;
}

void sw_tui_plot_scale(const sw_tui_series *s, int cols, int rows, double y_min, double y_max,
                       sw_tui_plot *p) {
    if (cols > SW_TUI_PLOT_MAX_COLS) cols = SW_TUI_PLOT_MAX_COLS;
    if (cols < 0) cols = 0;
    p->cols = cols;
    p->rows = rows;
    for (int j = 0; j < cols; j++) p->level[j] = -1;
    p->empty = !sw_tui_series_bounds(s, &p->x_lo, &p->x_hi, &p->y_lo, &p->y_hi);
    if (p->empty || cols == 0 || rows <= 0) {
        p->empty = true;
        return;
    }
    if (y_min < y_max) {
        p->y_lo = y_min;
        p->y_hi = y_max;
    } else if (p->y_hi - p->y_lo <= 1e-12 * fmax(1.0, fabs(p->y_hi))) {
        /* A flat line sits in the middle of a range around its value. */
        double pad = fabs(p->y_hi) > 0 ? fabs(p->y_hi) * 0.1 : 0.5;
        p->y_lo -= pad;
        p->y_hi += pad;
    }
    /* Mean y of the points falling in each column. */
    double sum[SW_TUI_PLOT_MAX_COLS];
    int count[SW_TUI_PLOT_MAX_COLS];
    memset(sum, 0, sizeof(double) * (size_t)cols);
    memset(count, 0, sizeof(int) * (size_t)cols);
    double x_span = p->x_hi - p->x_lo;
    for (int i = 0; i < s->n; i++) {
        double x, y;
        sw_tui_series_at(s, i, &x, &y);
        int j = x_span > 0 ? (int)lround((x - p->x_lo) / x_span * (cols - 1)) : 0;
        if (j < 0) j = 0;
        if (j >= cols) j = cols - 1;
        sum[j] += y;
        count[j]++;
    }
    double y_span = p->y_hi - p->y_lo;
    double mean[SW_TUI_PLOT_MAX_COLS];
    int prev = -1;
    for (int j = 0; j < cols; j++) {
        if (!count[j]) continue;
        mean[j] = sum[j] / count[j];
        /* Interpolate the columns skipped since the previous point. */
        for (int k = prev + 1; prev >= 0 && k < j; k++)
            mean[k] = mean[prev] + (mean[j] - mean[prev]) * (double)(k - prev) / (double)(j - prev);
        for (int k = prev >= 0 ? prev + 1 : j; k <= j; k++) {
            double t = (mean[k] - p->y_lo) / y_span;
            if (t < 0) t = 0;
            if (t > 1) t = 1;
            p->level[k] = (int)lround(t * (rows - 1));
        }
        prev = j;
    }
}

/* Braille dot bits by (sub-column, sub-row from the top). */
static const uint8_t braille_bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};

void sw_tui_plot_draw(sw_tui_canvas *c, sw_tui_rect r, const sw_tui_plot *p, bool braille,
                      sw_tui_style style) {
    if (p->empty) return;
    if (braille) {
        /* Accumulate the dots of every cell, then write the cells. */
        for (int cy = 0; cy < r.h; cy++) {
            for (int cx = 0; cx < r.w; cx++) {
                uint8_t bits = 0;
                for (int sub = 0; sub < 2; sub++) {
                    int j = cx * 2 + sub;
                    if (j >= p->cols || p->level[j] < 0) continue;
                    /* A column covers its own level and, to stay connected, the span up to its
                     * left neighbour's level. */
                    int lo = p->level[j], hi = p->level[j];
                    if (j > 0 && p->level[j - 1] >= 0) {
                        int m = p->level[j - 1];
                        if (m + 1 < lo) lo = m + 1;
                        if (m - 1 > hi) hi = m - 1;
                    }
                    for (int dr = 0; dr < 4; dr++) {
                        int level = p->rows - 1 - (cy * 4 + dr);
                        if (level >= lo && level <= hi) bits |= braille_bit[sub][dr];
                    }
                }
                if (bits) sw_tui_canvas_put(c, r.x + cx, r.y + cy, 0x2800u + bits, style);
            }
        }
        return;
    }
    static const char glyph[3] = {'\'', '-', '.'}; /* top, middle, bottom third of a cell */
    for (int j = 0; j < p->cols && j < r.w; j++) {
        if (p->level[j] < 0) continue;
        int from_top = p->rows - 1 - p->level[j];
        int cy = from_top / 3;
        sw_tui_canvas_put(c, r.x + j, r.y + cy, (uint32_t)glyph[from_top % 3], style);
        if (j > 0 && p->level[j - 1] >= 0) {
            int py = (p->rows - 1 - p->level[j - 1]) / 3;
            int a = py < cy ? py : cy, b = py < cy ? cy : py;
            for (int y = a + 1; y < b; y++) sw_tui_canvas_put(c, r.x + j, r.y + y, '|', style);
        }
    }
}
