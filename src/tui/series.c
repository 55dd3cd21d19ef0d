/* series.c - ring buffers of metric points. */
#include "series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

sw_status sw_tui_series_init(sw_tui_series *s, const char *name, int cap) {
    *s = (sw_tui_series){0};
    if (cap < 1)
        return SW_FAIL(SW_ERR_ARG, "series \"%s\": capacity %d must be positive", name, cap);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->x = malloc(sizeof(double) * (size_t)cap);
    s->y = malloc(sizeof(double) * (size_t)cap);
    if (!s->x || !s->y) {
        sw_tui_series_deinit(s);
        return SW_FAIL(SW_ERR_NOMEM, "series \"%s\": no memory for %d points", name, cap);
    }
    s->cap = cap;
    return SW_OK;
}

void sw_tui_series_deinit(sw_tui_series *s) {
    free(s->x);
    free(s->y);
    *s = (sw_tui_series){0};
}

void sw_tui_series_clear(sw_tui_series *s) {
    s->n = 0;
    s->head = 0;
    s->pushed = 0;
}

void sw_tui_series_push(sw_tui_series *s, double x, double y) {
    if (!isfinite(x) || !isfinite(y) || s->cap == 0) return;
    int at;
    if (s->n < s->cap) {
        at = (s->head + s->n) % s->cap;
        s->n++;
    } else { /* full: the newest point takes the oldest one's slot */
        at = s->head;
        s->head = (s->head + 1) % s->cap;
    }
    s->x[at] = x;
    s->y[at] = y;
    s->pushed++;
}

void sw_tui_series_at(const sw_tui_series *s, int i, double *x, double *y) {
    int at = (s->head + i) % s->cap;
    *x = s->x[at];
    *y = s->y[at];
}

bool sw_tui_series_last(const sw_tui_series *s, double *y) {
    if (s->n == 0) return false;
    *y = s->y[(s->head + s->n - 1) % s->cap];
    return true;
}

bool sw_tui_series_bounds(const sw_tui_series *s, double *x_lo, double *x_hi, double *y_lo,
                          double *y_hi) {
    if (s->n == 0) return false;
    double x, y;
    sw_tui_series_at(s, 0, &x, &y);
    *x_lo = *x_hi = x;
    *y_lo = *y_hi = y;
    for (int i = 1; i < s->n; i++) {
        sw_tui_series_at(s, i, &x, &y);
        if (x < *x_lo) *x_lo = x;
        if (x > *x_hi) *x_hi = x;
        if (y < *y_lo) *y_lo = y;
        if (y > *y_hi) *y_hi = y;
    }
    return true;
}
