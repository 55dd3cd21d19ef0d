/* metrics.h - metric events and the listeners that receive them.
 *
 * Training emits one event per step, per epoch and per evaluation to every listener on a bus:
 * the progress bar, the JSON-lines log, the workbench's charts, a Lua callback. A listener must
 * not block for long (it runs on the training thread, between steps).
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#include "../tensor/status.h"

#define SW_METRIC_MAX_TERMS 8
#define SW_METRIC_MAX_LISTENERS 16

typedef enum sw_metric_kind {
    SW_METRIC_BEGIN,   /* a training run starts: total_steps, total_epochs known */
    SW_METRIC_STEP,    /* after an optimizer step */
    SW_METRIC_EPOCH,   /* an epoch ended: loss is its mean */
    SW_METRIC_EVAL,    /* an evaluation finished: accuracy, loss */
    SW_METRIC_END,     /* a run ended (normally or stopped) */
    SW_METRIC_MESSAGE, /* a line for the log pane: message */
} sw_metric_kind;

typedef struct sw_metric_event {
    sw_metric_kind kind;
    const char *phase;     /* "train", "finetune", "compress", "eval", ... (static or caller's) */
    long step;             /* optimizer steps done in this run */
    long total_steps;      /* planned steps, 0 if unknown */
    int epoch;             /* 0-based epoch of the step; epochs done for EPOCH */
    int total_epochs;
    double loss;           /* total loss (task + terms) */
    int n_terms;           /* named parts of the loss: "task", "distill", "slim_l1", ... */
    const char *term_names[SW_METRIC_MAX_TERMS];
    double term_values[SW_METRIC_MAX_TERMS];
    double lr;
    double images_per_sec;
    double accuracy;       /* EVAL: in [0, 1] */
    double elapsed;        /* seconds since BEGIN */
    const char *message;   /* MESSAGE, END (why it ended) */
} sw_metric_event;

typedef void (*sw_metric_fn)(void *ctx, const sw_metric_event *ev);

/* "begin", "step", "epoch", "eval", "end", "message" (the JSON "event" values) and back. */
const char *sw_metric_kind_name(sw_metric_kind kind);
sw_status sw_metric_kind_from_name(const char *name, sw_metric_kind *out);

typedef struct sw_metric_bus {
    int n;
    sw_metric_fn fn[SW_METRIC_MAX_LISTENERS];
    void *ctx[SW_METRIC_MAX_LISTENERS];
} sw_metric_bus;

void sw_metric_bus_init(sw_metric_bus *bus);
/* Adds a listener (borrowed ctx). Fails when the bus is full. */
sw_status sw_metric_bus_add(sw_metric_bus *bus, sw_metric_fn fn, void *ctx);
void sw_metric_bus_remove(sw_metric_bus *bus, sw_metric_fn fn, void *ctx);
void sw_metric_bus_emit(const sw_metric_bus *bus, const sw_metric_event *ev);

/* Writes one JSON object per event (cJSON), one per line, flushed after each line. Keys: "event",
 * "phase", "elapsed" always; "step", "total_steps", "epoch", "total_epochs", "loss", "terms"
 * ({name: value}), "lr", "images_per_sec", "accuracy", "message" when they apply to the kind:
 *   begin:   total_steps, total_epochs
 *   step:    step, total_steps, epoch, loss, terms, lr, images_per_sec (smoothed)
 *   epoch:   step, epoch, total_epochs, loss (the epoch's mean), images_per_sec (its mean)
 *   eval:    step, epoch, accuracy, loss
 *   end:     step, total_steps, epoch, message
 *   message: message
 * NaN and infinite values are written as null. */
typedef struct sw_jsonl_log {
    FILE *fp;
    bool failed; /* a line could not be written (disk full, ...); check after the run */
} sw_jsonl_log;
/* Creates (truncates) the log at `path`. */
sw_status sw_jsonl_log_open(sw_jsonl_log *log, const char *path);
void sw_jsonl_log_close(sw_jsonl_log *log);
void sw_jsonl_log_listener(void *ctx, const sw_metric_event *ev); /* ctx = sw_jsonl_log* */
/* Serialises one event as a JSON object (no newline); caller frees. */
char *sw_metric_event_to_json(const sw_metric_event *ev);

/* Reads a JSON-lines log back, calling fn(ctx, event) for each line in order (blank lines are
 * skipped; absent fields read as 0, null numbers as NaN). The event's strings (phase, message,
 * term names) are valid only during the call. A line that is not a JSON object of the format
 * above stops the replay with SW_ERR_FORMAT and a message "path:line: ..." (a last line cut
 * short by a killed run is named as truncated); the events before it have been delivered. */
sw_status sw_jsonl_log_read(const char *path, sw_metric_fn fn, void *ctx);

#endif
