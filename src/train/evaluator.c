/* evaluator.c - the training loop and the evaluation pass.
 *
 * One call of sw_evaluator_train is one "run": a fresh optimizer, a schedule sized to the planned
 * number of steps, the hooks' begin/end calls, and the BEGIN ... END events around it. The step
 * loop itself allocates nothing: batches come from the loader's reused buffers, activations from
 * the model's arena, and the logits gradient from one buffer allocated per run.
 *
 * Hook order follows NNI, where each compressor's patch wraps the previous one (the first
 * registered patch is innermost): the loss is built outwards (registration order), the
 * optimizer's "before" tasks run outermost first (reverse order) and its "after" tasks innermost
 * first (registration order). Begin and epoch-end calls go in registration order; end calls in
 * reverse, so the last hook set up is the first torn down.
 */
#include "evaluator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../nn/loss.h"

sw_train_config sw_train_config_default(void) {
    sw_train_config c = {0};
    c.batch_size = 128;
    c.eval_batch_size = 512;
    c.optim = sw_optim_config_default(SW_OPTIM_SGD);
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    c.optim.nesterov = true;
    c.optim.weight_decay = 5e-4f;
    c.lr = (sw_lr_schedule){.kind = SW_LR_COSINE, .gamma = 0.1f};
    c.seed = 0;
    c.eval_every_epoch = 1;
    c.phase = "train";
    return c;
}

/* The default task loss: mean cross-entropy of the logits against the batch labels. */
static sw_status default_training_step(void *ctx, const sw_batch *batch, const sw_tensor *logits,
                                       double *loss, sw_tensor *dlogits) {
    (void)ctx;
    return sw_loss_cross_entropy(logits, batch->y, 1.0f, loss, dlogits);
}

sw_status sw_evaluator_init(sw_evaluator *ev, const sw_dataset *train_set,
                            const sw_dataset *test_set, const sw_train_config *cfg) {
    memset(ev, 0, sizeof *ev);
    ev->train_set = train_set;
    ev->test_set = test_set;
    ev->cfg = cfg ? *cfg : sw_train_config_default();
    ev->training_step = default_training_step;
    sw_metric_bus_init(&ev->bus);
    return SW_OK;
}

void sw_evaluator_deinit(sw_evaluator *ev) {
    sw_optim_deinit(&ev->optim);
    if (ev->loader_ready) sw_loader_deinit(&ev->loader);
    ev->loader_ready = false;
}

sw_status sw_evaluator_add_hooks(sw_evaluator *ev, const sw_train_hooks *hooks) {
    if (!hooks) return SW_FAIL(SW_ERR_ARG, "evaluator: NULL hooks");
    for (int i = 0; i < ev->n_hooks; i++)
        if (ev->hooks[i] == hooks)
            return SW_FAIL(SW_ERR_ARG, "evaluator: hooks \"%s\" are already registered",
                           hooks->name ? hooks->name : "?");
    if (ev->n_hooks == SW_EVALUATOR_MAX_HOOKS)
        return SW_FAIL(SW_ERR_ARG, "evaluator: at most %d compressors can hook into training",
                       SW_EVALUATOR_MAX_HOOKS);
    ev->hooks[ev->n_hooks++] = hooks;
    return SW_OK;
}

void sw_evaluator_remove_hooks(sw_evaluator *ev, const sw_train_hooks *hooks) {
    for (int i = 0; i < ev->n_hooks; i++) {
        if (ev->hooks[i] != hooks) continue;
        for (int j = i + 1; j < ev->n_hooks; j++) ev->hooks[j - 1] = ev->hooks[j];
        ev->n_hooks--;
        return;
    }
}

void sw_evaluator_request_stop(sw_evaluator *ev) {
    ev->stop_requested = true;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* SplitMix64's finaliser: turns (seed, purpose) into well-spread, independent seeds, so the
 * shuffling order and the dropout masks of a run are both fixed by the one user seed. */
static uint64_t derive_seed(uint64_t seed, uint64_t purpose) {
    uint64_t z = seed + purpose * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The double nearest to the shortest decimal that reads back as `f`: the learning rate is a
 * float, and 0.05f widened directly would be reported as 0.05000000074505806. */
static double float_as_decimal(float f) {
    char text[32];
    for (int digits = 6; digits < 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        double d = strtod(text, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

static const char *hook_name(const sw_train_hooks *h) {
    return h->name ? h->name : "unnamed";
}

/* Calls one member of every hook record in the given order; the first failure stops the walk
 * and names the hook. */
#define CALL_HOOKS(hooks, n, member, reverse, st)                                                  \
    do {                                                                                           \
        for (int k_ = 0; k_ < (n); k_++) {                                                         \
            const sw_train_hooks *h_ = (hooks)[(reverse) ? (n)-1 - k_ : k_];                       \
            if (!h_->member) continue;                                                             \
            sw_status s_ = h_->member(h_->ctx, (st));                                              \
            if (s_ != SW_OK) {                                                                     \
                sw_error_prefix("%s of \"%s\"", #member, hook_name(h_));                           \
                return s_;                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static sw_status check_config(const sw_train_config *c) {
    if (c->batch_size <= 0)
        return SW_FAIL(SW_ERR_CONFIG, "batch size %d must be positive", c->batch_size);
    if (c->eval_batch_size <= 0)
        return SW_FAIL(SW_ERR_CONFIG, "evaluation batch size %d must be positive",
                       c->eval_batch_size);
    if (c->lr.warmup_steps < 0)
        return SW_FAIL(SW_ERR_CONFIG, "warm-up of %ld steps must be >= 0", c->lr.warmup_steps);
    return SW_OK;
}

/* (Re)builds the training loader when missing or when the configuration changed since the
 * last run. The loader's shuffling generator carries on across runs of one evaluator, as a
 * data loader's does across epochs. */
static sw_status prepare_loader(sw_evaluator *ev) {
    const sw_train_config *c = &ev->cfg;
    if (ev->loader_ready && ev->loader.ds == ev->train_set &&
        ev->loader.batch_size == c->batch_size &&
        ev->loader.augment.crop_padding == c->augment.crop_padding &&
        ev->loader.augment.horizontal_flip == c->augment.horizontal_flip)
        return SW_OK;
    if (ev->loader_ready) sw_loader_deinit(&ev->loader);
    ev->loader_ready = false;
    SW_TRY(sw_loader_init(&ev->loader, ev->train_set, c->batch_size, true, false, &c->augment,
                          derive_seed(c->seed, 1)));
    ev->loader_ready = true;
    return SW_OK;
}

/* ---- one run ------------------------------------------------------------------------------ */

/* Everything a run carries between its phases. */
typedef struct run {
    sw_evaluator *ev;
    sw_model *model;
    const sw_train_hooks *hooks[SW_EVALUATOR_MAX_HOOKS]; /* snapshot at the start of the run */
    int n_hooks;
    sw_lr_schedule sched;
    long planned; /* optimizer steps this run will take unless stopped */
    int planned_epochs;
    long max_steps;
    int max_epochs;
    sw_tensor dlogits_store; /* owned: [batch_size, outputs...] */
    sw_train_state st;
    sw_metric_event base; /* phase, totals: copied into every event */
    double t0;            /* BEGIN time */
    double ips;           /* smoothed images per second */
    long n_ips;           /* measurements folded into ips */
    const char *end_message;
} run;

static void emit(run *r, sw_metric_event *e) {
    e->phase = r->base.phase;
    e->total_steps = r->planned;
    e->total_epochs = r->planned_epochs;
    e->elapsed = now_seconds() - r->t0;
    sw_metric_bus_emit(&r->ev->bus, e);
}

/* Folds one step's throughput into the smoothed rate: a plain mean over the first ten steps
 * (so the slow first step, which warms up the arena, is soon diluted), then an exponential
 * average with weight 0.1, which follows changes within a few dozen steps. */
static void update_ips(run *r, int images, double seconds) {
    if (seconds <= 0) return;
    double now = (double)images / seconds;
    r->n_ips++;
    double w = r->n_ips < 10 ? 1.0 / (double)r->n_ips : 0.1;
    r->ips = r->ips + w * (now - r->ips);
}

/* One optimizer step on `batch`, from zeroing gradients to the after_step hooks. On a NaN or
 * infinite loss it fails before backward, so the weights stay those of the previous step. */
static sw_status train_step(run *r, const sw_batch *batch, sw_metric_event *e) {
    sw_evaluator *ev = r->ev;
    sw_train_state *st = &r->st;
    st->batch = batch;
    st->lr = sw_lr_at(&r->sched, ev->cfg.optim.lr, st->step);
    sw_optim_zero_grad(&ev->optim);

    const sw_tensor *logits = NULL;
    SW_TRY(sw_model_forward(r->model, &batch->x, &logits));
    st->logits = logits;
    if (logits->numel > r->dlogits_store.numel)
        return SW_FAIL(SW_ERR_SHAPE,
                       "the model output of a batch of %d (%zu values) is larger "
                       "than planned (%zu)",
                       batch->size, logits->numel, r->dlogits_store.numel);
    /* The gradient buffer is sized for a full batch; the last, smaller batch views its start.
     * Zeroed so a training step that only adds (or a hook adding terms) starts from 0. */
    sw_tensor dlogits = sw_tensor_view(r->dlogits_store.data, &logits->shape);
    sw_tensor_zero(&dlogits);
    st->dlogits = &dlogits;

    double task = 0;
    sw_status s = ev->training_step(ev->training_step_ctx, batch, logits, &task, &dlogits);
    if (s != SW_OK) {
        sw_error_prefix("training step");
        return s;
    }
    /* The loss and its named parts: "task" first, then each hook's terms. */
    e->n_terms = 1;
    e->term_names[0] = "task";
    e->term_values[0] = task;
    double total = task;
    for (int k = 0; k < r->n_hooks; k++) {
        const sw_train_hooks *h = r->hooks[k];
        if (!h->loss_terms) continue;
        int room = SW_METRIC_MAX_TERMS - e->n_terms;
        s = h->loss_terms(h->ctx, st, e->term_names + e->n_terms, e->term_values + e->n_terms,
                          &room);
        if (s != SW_OK) {
            sw_error_prefix("loss_terms of \"%s\"", hook_name(h));
            return s;
        }
        if (room < 0 || room > SW_METRIC_MAX_TERMS - e->n_terms)
            return SW_FAIL(SW_ERR_ARG, "loss_terms of \"%s\" reported %d terms, room was %d",
                           hook_name(h), room, SW_METRIC_MAX_TERMS - e->n_terms);
        for (int t = 0; t < room; t++) total += e->term_values[e->n_terms + t];
        e->n_terms += room;
    }
    /* Only the task loss is reported as a term when no hook adds any: it would repeat "loss". */
    if (e->n_terms == 1) e->n_terms = 0;
    e->loss = total;
    if (!isfinite(total)) {
        ev->stop_requested = true;
        r->end_message = "NaN loss";
        return SW_FAIL(SW_ERR_NUMERIC,
                       "the loss became %s at step %ld of %ld (epoch %d), so training stopped "
                       "before that update; the learning rate was %g: try a lower one (e.g. %g)",
                       isnan(total) ? "NaN" : "infinite", st->step + 1, r->planned, st->epoch + 1,
                       (double)st->lr, (double)st->lr / 10.0);
    }

    SW_TRY(sw_model_backward(r->model, &dlogits));
    CALL_HOOKS(r->hooks, r->n_hooks, before_step, true, st);
    sw_optim_step(&ev->optim, st->lr);
    CALL_HOOKS(r->hooks, r->n_hooks, after_step, false, st);
    return SW_OK;
}

/* Evaluation after an epoch, with its event, when the configuration asks for it. */
static sw_status epoch_eval(run *r) {
    sw_evaluator *ev = r->ev;
    if (!ev->test_set || !ev->cfg.eval_every_epoch) return SW_OK;
    double acc = 0, loss = 0;
    SW_TRY(sw_evaluator_evaluate(ev, r->model, &acc, &loss));
    sw_metric_event e = {.kind = SW_METRIC_EVAL,
                         .step = r->st.step,
                         .epoch = r->st.epoch,
                         .accuracy = acc,
                         .loss = loss};
    emit(r, &e);
    return SW_OK;
}

/* The loop over epochs and steps. Returns SW_ERR_INTERRUPTED when stopped early. */
static sw_status run_loop(run *r) {
    sw_evaluator *ev = r->ev;
    sw_train_state *st = &r->st;
    double last = now_seconds();
    while (st->step < r->planned) {
        sw_loader_reset(&ev->loader);
        double loss_sum = 0, epoch_seconds = 0;
        long loss_count = 0, epoch_images = 0;
        sw_batch batch;
        while (st->step < r->planned && sw_loader_next(&ev->loader, &batch)) {
            sw_metric_event e = {.kind = SW_METRIC_STEP};
            sw_status s = train_step(r, &batch, &e);
            /* The batch and the step's tensors die with the step: hooks called between steps
             * (epoch end, train end) see NULL rather than stale pointers. */
            st->batch = NULL;
            st->logits = NULL;
            st->dlogits = NULL;
            if (s != SW_OK) return s;
            st->step++;
            loss_sum += e.loss;
            loss_count++;
            double t = now_seconds();
            update_ips(r, batch.size, t - last);
            epoch_images += batch.size;
            epoch_seconds += t - last;
            e.step = st->step;
            e.epoch = st->epoch;
            e.lr = float_as_decimal(st->lr);
            e.images_per_sec = r->ips;
            emit(r, &e);
            if (ev->poll && ev->poll(ev->poll_ctx)) ev->stop_requested = true;
            /* A stop after the last planned step cuts nothing short: the run completes. */
            if (ev->stop_requested && st->step < r->planned) {
                r->end_message = "stopped";
                return SW_FAIL(SW_ERR_INTERRUPTED, "training stopped at step %ld of %ld", st->step,
                               r->planned);
            }
            last = now_seconds();
        }
        if (loss_count == 0) break; /* an empty epoch would loop forever */
        /* The epoch is over: its batches ran out, or the step budget ended it early (a partial
         * last epoch still gets its summary, hooks and evaluation). */
        st->epoch++;
        sw_metric_event e = {.kind = SW_METRIC_EPOCH,
                             .step = st->step,
                             .epoch = st->epoch,
                             .loss = loss_sum / (double)loss_count,
                             .images_per_sec =
                                 epoch_seconds > 0 ? (double)epoch_images / epoch_seconds : 0};
        emit(r, &e);
        CALL_HOOKS(r->hooks, r->n_hooks, on_epoch_end, false, st);
        SW_TRY(epoch_eval(r));
        last = now_seconds(); /* evaluation time is not training throughput */
        if (r->max_epochs >= 0 && st->epoch >= r->max_epochs) break;
    }
    return SW_OK;
}

/* Steps planned from the limits: the smaller of max_steps and max_epochs full epochs. */
static long plan_steps(long max_steps, int max_epochs, int per_epoch) {
    long by_epochs = max_epochs >= 0 ? (long)max_epochs * per_epoch : -1;
    if (max_steps < 0) return by_epochs;
    if (by_epochs < 0) return max_steps;
    return max_steps < by_epochs ? max_steps : by_epochs;
}

/* Calls every on_train_end (reverse order) even when one fails; keeps the first failure. */
static sw_status end_hooks(run *r) {
    sw_status first = SW_OK;
    for (int k = r->n_hooks - 1; k >= 0; k--) {
        const sw_train_hooks *h = r->hooks[k];
        if (!h->on_train_end) continue;
        sw_status s = h->on_train_end(h->ctx, &r->st);
        if (s != SW_OK && first == SW_OK) {
            sw_error_prefix("on_train_end of \"%s\"", hook_name(h));
            first = s;
        }
    }
    return first;
}

static sw_status begin_hooks(run *r) {
    CALL_HOOKS(r->hooks, r->n_hooks, on_train_begin, false, &r->st);
    return SW_OK;
}

sw_status sw_evaluator_train(sw_evaluator *ev, sw_model *model, long max_steps, int max_epochs) {
    if (max_steps < 0 && max_epochs < 0)
        return SW_FAIL(SW_ERR_ARG, "train: give max_steps or max_epochs (or both); "
                                   "both are unset");
    if (!ev->train_set)
        return SW_FAIL(SW_ERR_ARG, "train: the evaluator has no training set; load one first");
    SW_TRY(check_config(&ev->cfg));
    SW_TRY(sw_model_finalize(model));
    SW_TRY(prepare_loader(ev));
    int per_epoch = sw_loader_batches_per_epoch(&ev->loader);
    if (per_epoch <= 0)
        return SW_FAIL(SW_ERR_ARG, "train: the training set \"%s\" has no examples",
                       ev->train_set->name);

    run r = {.ev = ev, .model = model, .max_steps = max_steps, .max_epochs = max_epochs};
    r.n_hooks = ev->n_hooks;
    memcpy(r.hooks, ev->hooks, sizeof(r.hooks[0]) * (size_t)ev->n_hooks);
    /* The plan fixes the schedule's length and the totals every event reports; a stop or a NaN
     * ends the run early but never changes the plan. */
    r.planned = plan_steps(max_steps, max_epochs, per_epoch);
    r.planned_epochs = (int)((r.planned + per_epoch - 1) / per_epoch);
    r.sched = ev->cfg.lr;
    /* A cosine without a given length anneals over the steps after warm-up. */
    if (r.sched.kind == SW_LR_COSINE && r.sched.total_steps == 0) {
        long rest = r.planned - (r.sched.warmup_steps > 0 ? r.sched.warmup_steps : 0);
        r.sched.total_steps = rest > 1 ? rest : 1;
    }
    r.base.phase = ev->cfg.phase ? ev->cfg.phase : "train";
    r.end_message = "completed";

    /* The per-run allocations, all before the first step. */
    sw_shape out_sample = sw_model_output_shape(model), out_batch;
    SW_TRY(sw_shape_batched(&out_sample, ev->cfg.batch_size, &out_batch));
    SW_TRY(sw_tensor_init(&r.dlogits_store, &out_batch));
    /* A fresh optimizer per run, as NNI rebuilds optimizers at bind: momentum and Adam moments
     * from an earlier run (perhaps of a differently wrapped model) must not leak into this one. */
    sw_optim_deinit(&ev->optim);
    sw_status s = sw_optim_init(&ev->optim, &ev->cfg.optim);
    if (s == SW_OK)
        s = sw_optim_add_group(&ev->optim, model->param_data, model->grad_data,
                               model->n_param_floats);
    if (s != SW_OK) {
        sw_tensor_deinit(&r.dlogits_store);
        sw_optim_deinit(&ev->optim);
        return s;
    }

    bool was_training = model->training;
    sw_model_set_training(model, true);
    /* Dropout draws from a generator fixed by the seed and the run's index in this evaluator,
     * so repeated runs differ from each other but a replay of the same calls is identical. */
    sw_model_set_seed(model, derive_seed(ev->cfg.seed, 2 + (uint64_t)ev->n_runs));
    ev->n_runs++;
    ev->stop_requested = false;
    r.st = (sw_train_state){.ev = ev, .model = model, .lr = ev->cfg.optim.lr};
    r.t0 = now_seconds();

    sw_metric_event begin = {.kind = SW_METRIC_BEGIN};
    emit(&r, &begin);
    s = begin_hooks(&r);
    if (s == SW_OK) s = run_loop(&r);
    /* Teardown runs on every path (completed, stopped, NaN, failed), so hooks can always
     * release what on_train_begin set up; the first error is the one reported. */
    if (s != SW_OK && s != SW_ERR_INTERRUPTED && s != SW_ERR_NUMERIC) r.end_message = "failed";
    sw_status s_end = end_hooks(&r);
    if (s == SW_OK) s = s_end;
    if (s != SW_OK && strcmp(r.end_message, "completed") == 0) r.end_message = "failed";
    sw_metric_event e = {
        .kind = SW_METRIC_END, .step = r.st.step, .epoch = r.st.epoch, .message = r.end_message};
    emit(&r, &e);

    sw_model_set_training(model, was_training);
    sw_optim_deinit(&ev->optim);
    sw_tensor_deinit(&r.dlogits_store);
    return s;
}

/* ---- evaluation --------------------------------------------------------------------------- */

sw_status sw_evaluator_evaluate(sw_evaluator *ev, sw_model *model, double *accuracy, double *loss) {
    const sw_dataset *ds = ev->test_set;
    if (!ds || ds->n <= 0)
        return SW_FAIL(SW_ERR_ARG, "evaluate: the evaluator has no test set; load one first");
    if (ev->cfg.eval_batch_size <= 0)
        return SW_FAIL(SW_ERR_CONFIG, "evaluation batch size %d must be positive",
                       ev->cfg.eval_batch_size);
    int bs = ev->cfg.eval_batch_size < ds->n ? ev->cfg.eval_batch_size : ds->n;
    /* Labels are bytes in the dataset and ints for the loss: one batch of them, converted. */
    int *labels = malloc((size_t)bs * sizeof *labels);
    if (!labels) return SW_FAIL(SW_ERR_NOMEM, "evaluate: cannot allocate %d labels", bs);
    bool was_training = model->training, was_fusing = model->inference_fusion;
    sw_model_set_training(model, false);
    /* only the logits are read: chains without hooks may run fused */
    sw_model_set_inference_fusion(model, true);
    size_t per_image = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
    long correct = 0;
    double loss_sum = 0;
    sw_status s = SW_OK;
    for (int at = 0; at < ds->n && s == SW_OK; at += bs) {
        int b = ds->n - at < bs ? ds->n - at : bs;
        /* The images are already a contiguous [n, C, H, W] block: a batch is a view of it. */
        sw_shape shape = sw_shape_4d(b, ds->channels, ds->height, ds->width);
        sw_tensor x = sw_tensor_view(ds->images + (size_t)at * per_image, &shape);
        for (int i = 0; i < b; i++) labels[i] = ds->labels[at + i];
        const sw_tensor *logits = NULL;
        s = sw_model_forward(model, &x, &logits);
        /* Batch means weighted by batch size: the mean over the set, whatever the last batch. */
        double batch_loss = 0;
        if (s == SW_OK) s = sw_loss_cross_entropy(logits, labels, 1.0f, &batch_loss, NULL);
        if (s == SW_OK) {
            correct += sw_count_correct(logits, labels);
            loss_sum += batch_loss * b;
        }
        if (s == SW_OK && ev->eval_progress)
            ev->eval_progress(ev->eval_progress_ctx, at + b, ds->n);
    }
    sw_model_set_training(model, was_training);
    sw_model_set_inference_fusion(model, was_fusing);
    free(labels);
    if (s != SW_OK) {
        sw_error_prefix("evaluate on \"%s\"", ds->name);
        return s;
    }
    if (accuracy) *accuracy = (double)correct / (double)ds->n;
    if (loss) *loss = loss_sum / (double)ds->n;
    return SW_OK;
}
