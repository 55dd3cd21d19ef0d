/* evaluator.h - the training loop and evaluation, made patchable for compressors.
 *
 * This is NNI's Evaluator in C: it owns the data, the optimizer recipe, the LR schedule and the
 * training step, and it is the only door through which compressors take part in training
 * (reference §1.7). A compressor registers an sw_train_hooks record; during sw_evaluator_train
 * one step runs:
 *
 *   zero grads -> forward (wrappers' transforms run inside) -> task loss (training_step)
 *   -> every hook's loss_terms (registration order; may add gradients, e.g. to captured outputs
 *      or regularised factors) -> NaN check -> backward
 *   -> before_step hooks (REVERSE registration order) -> optimizer step
 *   -> after_step hooks (registration order) -> STEP metric event -> poll -> stop?
 *
 * matching NNI's nesting, where the first registered patch is innermost.
 */
#ifndef SW_EVALUATOR_H
#define SW_EVALUATOR_H

#include <signal.h>
#include <stdbool.h>

#include "../data/dataset.h"
#include "../nn/model.h"
#include "lr_schedule.h"
#include "metrics.h"
#include "optim.h"

#define SW_EVALUATOR_MAX_HOOKS 32

typedef struct sw_evaluator sw_evaluator;

/* What a hook sees of the step in progress. batch, logits and dlogits are set during a step
 * (loss_terms, before_step, after_step) and NULL in the other hooks. */
typedef struct sw_train_state {
    sw_evaluator *ev;
    sw_model *model;
    const sw_batch *batch;   /* the current batch */
    const sw_tensor *logits; /* the model output of this step's forward */
    sw_tensor *dlogits;      /* d loss / d logits, same shape: the task loss's gradient is in it
                              * when loss_terms runs, which may add its own terms' gradients */
    long step;               /* optimizer steps completed before this one */
    int epoch;
    float lr;
} sw_train_state;

/* One compressor's intervention in training. Every member optional. */
typedef struct sw_train_hooks {
    void *ctx;
    const char *name; /* for messages */
    /* Called when training starts (optimizer built): add parameter groups, reset counters. */
    sw_status (*on_train_begin)(void *ctx, sw_train_state *st);
    /* Adds loss terms after the task loss: writes up to *n_terms (in/out: room, then count)
     * names (static strings) and values; the gradient of each term must be made available to
     * backward by the hook itself (e.g. via its transforms' backward, or added to grads). */
    sw_status (*loss_terms)(void *ctx, sw_train_state *st, const char **names, double *values,
                            int *n_terms);
    sw_status (*before_step)(void *ctx, sw_train_state *st);
    sw_status (*after_step)(void *ctx, sw_train_state *st);
    sw_status (*on_epoch_end)(void *ctx, sw_train_state *st);
    sw_status (*on_train_end)(void *ctx, sw_train_state *st);
} sw_train_hooks;

/* The task loss of one batch: fills *loss and the gradient w.r.t. logits (dlogits, same shape,
 * preallocated). The default is mean cross-entropy against the labels. */
typedef sw_status (*sw_training_step_fn)(void *ctx, const sw_batch *batch,
                                         const sw_tensor *logits, double *loss,
                                         sw_tensor *dlogits);

/* Called between steps with the state so far; return true to request a stop (at this step
 * boundary). The workbench drains keys here; the CLI checks its SIGINT flag. */
typedef bool (*sw_poll_fn)(void *ctx);

typedef struct sw_train_config {
    int batch_size;            /* default 128 */
    int eval_batch_size;       /* default 512 */
    sw_optim_config optim;
    sw_lr_schedule lr;
    sw_augment augment;
    uint64_t seed;
    int eval_every_epoch;      /* evaluate on the test set after each epoch (default 1) */
    const char *phase;         /* label of emitted events ("train") */
} sw_train_config;

/* Defaults: batch 128, SGD lr 0.05 momentum 0.9 nesterov wd 5e-4, cosine schedule, seed 0. */
sw_train_config sw_train_config_default(void);

struct sw_evaluator {
    const sw_dataset *train_set; /* borrowed */
    const sw_dataset *test_set;  /* borrowed; may be NULL */
    sw_train_config cfg;
    sw_training_step_fn training_step;
    void *training_step_ctx;
    int n_hooks;
    const sw_train_hooks *hooks[SW_EVALUATOR_MAX_HOOKS]; /* borrowed, registration order */
    sw_metric_bus bus;
    sw_poll_fn poll;
    void *poll_ctx;
    sw_optim optim;  /* valid during sw_evaluator_train */
    sw_loader loader; /* reused between runs */
    bool loader_ready;
    bool stop_requested; /* set by poll, by sw_evaluator_request_stop, or on a NaN loss */
    long n_runs;         /* sw_evaluator_train calls so far (seeds each run's dropout) */
    /* Called by sw_evaluator_evaluate after each evaluation batch with the images done and the
     * total, so a UI can redraw during the pass (the workbench's only stretch without step
     * boundaries). An evaluation cannot be stopped: it always completes. NULL = none. */
    void (*eval_progress)(void *ctx, int done, int total);
    void *eval_progress_ctx;
};

/* Initialises an evaluator over borrowed datasets. */
sw_status sw_evaluator_init(sw_evaluator *ev, const sw_dataset *train_set,
                            const sw_dataset *test_set, const sw_train_config *cfg);
void sw_evaluator_deinit(sw_evaluator *ev);

sw_status sw_evaluator_add_hooks(sw_evaluator *ev, const sw_train_hooks *hooks);
void sw_evaluator_remove_hooks(sw_evaluator *ev, const sw_train_hooks *hooks);

/* Trains `model` until max_steps optimizer steps or max_epochs epochs, whichever first; a
 * negative value means unset (NNI's None); both unset is an error. A fresh optimizer is built
 * per call (as NNI drops optimizer state at unbind); the LR schedule spans the planned steps.
 * Returns SW_ERR_INTERRUPTED when stopped early (the model is consistent: stops happen at
 * step boundaries) and SW_ERR_NUMERIC on a NaN or infinite loss (message says which step and
 * what to try).
 *
 * Details of a run:
 *  - the model is put in training mode and its previous mode restored at the end;
 *  - optimizer group 0 is model->param_data / grad_data; on_train_begin hooks (registration
 *    order) may add groups with sw_optim_add_group(&st->ev->optim, ...); every group's
 *    gradients are zeroed before each step; ev->optim is released when the run ends;
 *  - a COSINE schedule with total_steps 0 anneals over the planned steps minus warm-up (the
 *    evaluator's cfg is not modified);
 *  - events: BEGIN; per step STEP (loss = task + hook terms; "terms" lists "task" and the hooks'
 *    terms when a hook added any; lr; smoothed images/s); at each epoch end EPOCH (mean loss),
 *    then on_epoch_end hooks, then EVAL when test_set and cfg.eval_every_epoch; an epoch cut
 *    short by max_steps still ends this way, a stopped one does not; finally on_train_end hooks
 *    (REVERSE registration order, all called even if one fails) and END with message
 *    "completed", "stopped", "NaN loss" or "failed";
 *  - a NaN/infinite loss is caught before backward, so the weights stay those of the last
 *    good step;
 *  - the loader (shuffled, last batch kept) is built on the first run and reused; its seed and
 *    each run's dropout seed derive from cfg.seed, so the same calls with the same seed give
 *    bit-identical weights. Steady-state steps allocate nothing. */
sw_status sw_evaluator_train(sw_evaluator *ev, sw_model *model, long max_steps, int max_epochs);

/* Accuracy in [0, 1] and mean loss of `model` on the test set (eval mode; restores the mode). */
sw_status sw_evaluator_evaluate(sw_evaluator *ev, sw_model *model, double *accuracy,
                                double *loss);

/* Asks a running sw_evaluator_train to stop at the next step boundary (signal-safe when called
 * through a flag checked by poll). */
void sw_evaluator_request_stop(sw_evaluator *ev);

#endif
