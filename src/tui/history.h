/* history.h - what the metrics pane shows: one series per quantity and the run in progress.
 *
 * Fed by metric events (a listener on the evaluator's bus during training, or the events of a
 * JSON-lines log being replayed). x is the optimizer step counted across every run seen, so
 * consecutive runs (train, then fine-tune) continue one chart instead of overwriting it.
 */
#ifndef SW_TUI_HISTORY_H
#define SW_TUI_HISTORY_H

#include <stdbool.h>

#include "../train/metrics.h"
#include "series.h"

#define SW_TUI_HISTORY_CAP 8192 /* points per series */
#define SW_TUI_MAX_SERIES (4 + SW_METRIC_MAX_TERMS)

/* The fixed series, in chart order; loss terms follow from SW_TUI_SERIES_TERMS. */
enum {
    SW_TUI_SERIES_LOSS,
    SW_TUI_SERIES_ACCURACY,
    SW_TUI_SERIES_LR,
    SW_TUI_SERIES_IPS,
    SW_TUI_SERIES_TERMS,
};

typedef enum sw_tui_run_status {
    SW_TUI_RUN_NONE,      /* nothing has run */
    SW_TUI_RUN_ACTIVE,    /* between BEGIN and END */
    SW_TUI_RUN_COMPLETED, /* END "completed" */
    SW_TUI_RUN_STOPPED,   /* END "stopped" */
    SW_TUI_RUN_FAILED,    /* END with any other reason */
} sw_tui_run_status;

typedef struct sw_tui_history {
    sw_tui_series series[SW_TUI_MAX_SERIES];
    int n_series;    /* SW_TUI_SERIES_TERMS + loss terms seen */
    double x_offset; /* steps of the runs before the current one */
    long runs;       /* BEGIN events seen */
    long events;     /* events seen */
    /* The current (or last) run. */
    sw_tui_run_status status;
    char phase[24];
    long step, total_steps;
    int epoch, total_epochs;
    double elapsed; /* seconds since its BEGIN */
    double loss, lr, images_per_sec;
    double accuracy;      /* last evaluation, NaN when none */
    double best_accuracy; /* NaN when none */
    double eval_loss;
    char end_reason[48];
} sw_tui_history;

sw_status sw_tui_history_init(sw_tui_history *h);
void sw_tui_history_deinit(sw_tui_history *h);
/* Forgets every point and the run (a log being opened starts from a clean slate). */
void sw_tui_history_clear(sw_tui_history *h);
/* Records one event. Term series are created on first sight (up to SW_METRIC_MAX_TERMS). */
void sw_tui_history_on_event(sw_tui_history *h, const sw_metric_event *ev);
/* Fraction of the planned steps done, in [0, 1] (0 when unknown). */
double sw_tui_history_fraction(const sw_tui_history *h);
/* Seconds left at the current rate, or -1 when unknown. */
double sw_tui_history_eta(const sw_tui_history *h);
/* "01:23", "1:02:03" or "--:--". */
const char *sw_tui_format_duration(double seconds, char *buf, int size);

#endif
