/* history.c - metric events into series and run progress. */
#include "history.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const fixed_names[SW_TUI_SERIES_TERMS] = {"loss", "accuracy", "lr", "images/s"};

sw_status sw_tui_history_init(sw_tui_history *h) {
    memset(h, 0, sizeof *h);
    for (int i = 0; i < SW_TUI_MAX_SERIES; i++) {
        char name[SW_TUI_SERIES_NAME_MAX];
        snprintf(name, sizeof name, "%s", i < SW_TUI_SERIES_TERMS ? fixed_names[i] : "");
        sw_status st = sw_tui_series_init(&h->series[i], name, SW_TUI_HISTORY_CAP);
        if (st != SW_OK) {
            sw_tui_history_deinit(h);
            return st;
        }
    }
    sw_tui_history_clear(h);
    return SW_OK;
}

void sw_tui_history_deinit(sw_tui_history *h) {
    for (int i = 0; i < SW_TUI_MAX_SERIES; i++) sw_tui_series_deinit(&h->series[i]);
}

void sw_tui_history_clear(sw_tui_history *h) {
    for (int i = 0; i < SW_TUI_MAX_SERIES; i++) sw_tui_series_clear(&h->series[i]);
    h->n_series = SW_TUI_SERIES_TERMS;
    h->x_offset = 0;
    h->runs = h->events = 0;
    h->status = SW_TUI_RUN_NONE;
    h->phase[0] = '\0';
    h->step = h->total_steps = 0;
    h->epoch = h->total_epochs = 0;
    h->elapsed = 0;
    h->loss = h->lr = h->images_per_sec = NAN;
    h->accuracy = h->best_accuracy = h->eval_loss = NAN;
    h->end_reason[0] = '\0';
}

/* The series of loss term `name`, created when first seen; NULL when every slot is taken. */
static sw_tui_series *term_series(sw_tui_history *h, const char *name) {
    char label[SW_TUI_SERIES_NAME_MAX];
    snprintf(label, sizeof label, "loss:%s", name ? name : "?");
    for (int i = SW_TUI_SERIES_TERMS; i < h->n_series; i++)
        if (strcmp(h->series[i].name, label) == 0) return &h->series[i];
    if (h->n_series >= SW_TUI_MAX_SERIES) return NULL;
    sw_tui_series *s = &h->series[h->n_series++];
    snprintf(s->name, sizeof s->name, "%s", label);
    sw_tui_series_clear(s);
    return s;
}

void sw_tui_history_on_event(sw_tui_history *h, const sw_metric_event *ev) {
    h->events++;
    double x = h->x_offset + (double)ev->step;
    switch (ev->kind) {
    case SW_METRIC_BEGIN:
        /* A new run continues the x axis where the previous one ended. */
        if (h->status != SW_TUI_RUN_NONE) h->x_offset += (double)h->step;
        h->runs++;
        h->status = SW_TUI_RUN_ACTIVE;
        snprintf(h->phase, sizeof h->phase, "%s", ev->phase ? ev->phase : "train");
        h->step = 0;
        h->total_steps = ev->total_steps;
        h->epoch = 0;
        h->total_epochs = ev->total_epochs;
        h->elapsed = 0;
        h->end_reason[0] = '\0';
        break;
    case SW_METRIC_STEP:
        if (h->status != SW_TUI_RUN_ACTIVE)
            h->status = SW_TUI_RUN_ACTIVE; /* a log cut at the start */
        h->step = ev->step;
        if (ev->total_steps > 0) h->total_steps = ev->total_steps;
        h->epoch = ev->epoch;
        h->elapsed = ev->elapsed;
        h->loss = ev->loss;
        h->lr = ev->lr;
        h->images_per_sec = ev->images_per_sec;
        sw_tui_series_push(&h->series[SW_TUI_SERIES_LOSS], x, ev->loss);
        sw_tui_series_push(&h->series[SW_TUI_SERIES_LR], x, ev->lr);
        if (ev->images_per_sec > 0)
            sw_tui_series_push(&h->series[SW_TUI_SERIES_IPS], x, ev->images_per_sec);
        for (int t = 0; t < ev->n_terms && t < SW_METRIC_MAX_TERMS; t++) {
            sw_tui_series *s = term_series(h, ev->term_names[t]);
            if (s) sw_tui_series_push(s, x, ev->term_values[t]);
        }
        break;
    case SW_METRIC_EPOCH:
        h->epoch = ev->epoch;
        h->elapsed = ev->elapsed > 0 ? ev->elapsed : h->elapsed;
        break;
    case SW_METRIC_EVAL:
        h->accuracy = ev->accuracy;
        h->eval_loss = ev->loss;
        if (isfinite(ev->accuracy) &&
            (!isfinite(h->best_accuracy) || ev->accuracy > h->best_accuracy))
            h->best_accuracy = ev->accuracy;
        sw_tui_series_push(&h->series[SW_TUI_SERIES_ACCURACY], x, ev->accuracy);
        break;
    case SW_METRIC_END:
        h->step = ev->step;
        h->epoch = ev->epoch;
        if (ev->elapsed > 0) h->elapsed = ev->elapsed;
        snprintf(h->end_reason, sizeof h->end_reason, "%s", ev->message ? ev->message : "");
        if (ev->message && strcmp(ev->message, "completed") == 0)
            h->status = SW_TUI_RUN_COMPLETED;
        else if (ev->message && strcmp(ev->message, "stopped") == 0)
            h->status = SW_TUI_RUN_STOPPED;
        else
            h->status = SW_TUI_RUN_FAILED;
        break;
    case SW_METRIC_MESSAGE:
        break;
    }
}

double sw_tui_history_fraction(const sw_tui_history *h) {
    if (h->total_steps <= 0) return 0;
    double f = (double)h->step / (double)h->total_steps;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

double sw_tui_history_eta(const sw_tui_history *h) {
    if (h->status != SW_TUI_RUN_ACTIVE || h->total_steps <= 0 || h->step <= 0 || h->elapsed <= 0)
        return -1;
    return h->elapsed / (double)h->step * (double)(h->total_steps - h->step);
}

const char *sw_tui_format_duration(double seconds, char *buf, int size) {
    if (!(seconds >= 0) || seconds > 99 * 3600.0) {
        snprintf(buf, (size_t)size, "--:--");
        return buf;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, (size_t)size, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, (size_t)size, "%02d:%02d", s / 60, s % 60);
    return buf;
}
