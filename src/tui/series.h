/* series.h - a metric's recent history: a ring buffer of (x, y) points.
 *
 * One series per charted quantity (loss, each loss term, lr, accuracy, images/s). x is the
 * optimizer step counted across the session's runs, y the value. When the ring is full the
 * oldest point is dropped, so memory stays fixed however long a run goes.
 */
#ifndef SW_TUI_SERIES_H
#define SW_TUI_SERIES_H

#include <stdbool.h>

#include "../tensor/status.h"

#define SW_TUI_SERIES_NAME_MAX 32

typedef struct sw_tui_series {
    char name[SW_TUI_SERIES_NAME_MAX];
    int cap;     /* points kept at most */
    int n;       /* points held, <= cap */
    int head;    /* ring index of the oldest point */
    double *x;   /* owned [cap] */
    double *y;   /* owned [cap] */
    long pushed; /* points ever pushed (including dropped ones) */
} sw_tui_series;

/* Allocates a ring of `cap` points named `name` (copied, truncated). */
sw_status sw_tui_series_init(sw_tui_series *s, const char *name, int cap);
void sw_tui_series_deinit(sw_tui_series *s);
void sw_tui_series_clear(sw_tui_series *s);
/* Appends a point; non-finite values are skipped (a NaN loss ends a run, it is not plotted). */
void sw_tui_series_push(sw_tui_series *s, double x, double y);
/* The i-th oldest point held, 0 <= i < n. */
void sw_tui_series_at(const sw_tui_series *s, int i, double *x, double *y);
/* The newest value; false when empty. */
bool sw_tui_series_last(const sw_tui_series *s, double *y);
/* Bounds of the points held; false when empty. */
bool sw_tui_series_bounds(const sw_tui_series *s, double *x_lo, double *x_hi, double *y_lo,
                          double *y_hi);

#endif
