/* test_evaluator.c - the training loop: hooks, limits, stopping, NaN handling, events,
 * determinism, evaluation, and real learning on a Fashion-MNIST subset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "data/dataset.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/zoo.h"
#include "train/evaluator.h"

/* ---- fixtures ----------------------------------------------------------------------------- */

/* A synthetic dataset of n images 1x4x4 in 3 classes; the class is the brightest of the first
 * three rows, so a linear model can learn it. Freed with sw_dataset_free. */
static sw_dataset *make_dataset(int n, uint64_t seed) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    ds->n = n;
    ds->channels = 1;
    ds->height = 4;
    ds->width = 4;
    ds->n_classes = 3;
    ds->images = malloc((size_t)n * 16 * sizeof(float));
    ds->labels = malloc((size_t)n);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    ds->mean[0] = 0.0f;
    ds->std[0] = 1.0f;
    snprintf(ds->name, sizeof ds->name, "synthetic");
    sw_rng rng;
    sw_rng_init(&rng, seed, 5);
    for (int i = 0; i < n; i++) {
        float *img = ds->images + (size_t)i * 16;
        float row[3] = {0};
        for (int k = 0; k < 16; k++) {
            img[k] = sw_rng_uniform(&rng) * 2.0f - 1.0f;
            if (k < 12) row[k / 4] += img[k];
        }
        int best = 0;
        for (int r = 1; r < 3; r++)
            if (row[r] > row[best]) best = r;
        ds->labels[i] = (uint8_t)best;
    }
    return ds;
}

static void add_node(sw_model *m, const char *name, sw_layer_kind kind, sw_layer_hparams hp) {
    sw_layer *layer = NULL;
    if (sw_layer_new(kind, &hp, &layer) != SW_OK) fail_msg("%s", sw_error_message());
    if (sw_model_add(m, name, layer, NULL, 0, NULL) != SW_OK) fail_msg("%s", sw_error_message());
}

/* flatten -> fc1 Linear(16, 8) -> relu -> [dropout] -> fc2 Linear(8, 3), initialised from seed. */
static sw_model *make_mlp(uint64_t seed, bool dropout) {
    sw_shape in = sw_shape_3d(1, 4, 4);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("tiny_mlp", &in, &m), SW_OK);
    add_node(m, "flatten", SW_LAYER_FLATTEN, sw_layer_hparams_default(SW_LAYER_FLATTEN));
    sw_layer_hparams fc1 = sw_layer_hparams_default(SW_LAYER_LINEAR);
    fc1.in_features = 16;
    fc1.out_features = 8;
    add_node(m, "fc1", SW_LAYER_LINEAR, fc1);
    add_node(m, "relu", SW_LAYER_RELU, sw_layer_hparams_default(SW_LAYER_RELU));
    if (dropout) {
        sw_layer_hparams d = sw_layer_hparams_default(SW_LAYER_DROPOUT);
        d.p = 0.25f;
        add_node(m, "drop", SW_LAYER_DROPOUT, d);
    }
    sw_layer_hparams fc2 = sw_layer_hparams_default(SW_LAYER_LINEAR);
    fc2.in_features = 8;
    fc2.out_features = 3;
    add_node(m, "fc2", SW_LAYER_LINEAR, fc2);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, seed);
    return m;
}

/* Plain SGD at a constant rate, no evaluation: the simplest loop to reason about. */
static sw_train_config plain_config(int batch_size, float lr) {
    sw_train_config c = sw_train_config_default();
    c.batch_size = batch_size;
    c.optim = sw_optim_config_default(SW_OPTIM_SGD);
    c.optim.lr = lr;
    c.lr.kind = SW_LR_CONSTANT;
    c.eval_every_epoch = 0;
    c.seed = 11;
    return c;
}

/* Records every event (strings copied: phase and message are only valid during the call). */
typedef struct event_log {
    int n;
    sw_metric_event ev[256];
    char message[256][160];
} event_log;

static void log_event(void *ctx, const sw_metric_event *ev) {
    event_log *l = ctx;
    if (l->n == 256) return;
    l->ev[l->n] = *ev;
    snprintf(l->message[l->n], sizeof l->message[0], "%s", ev->message ? ev->message : "");
    l->ev[l->n].message = l->message[l->n];
    l->ev[l->n].phase = NULL;
    l->n++;
}

static int count_kind(const event_log *l, sw_metric_kind kind) {
    int n = 0;
    for (int i = 0; i < l->n; i++) n += l->ev[i].kind == kind;
    return n;
}

static const sw_metric_event *last_of(const event_log *l, sw_metric_kind kind) {
    for (int i = l->n - 1; i >= 0; i--)
        if (l->ev[i].kind == kind) return &l->ev[i];
    return NULL;
}

/* ---- hooks -------------------------------------------------------------------------------- */

/* A hook that appends "<code><id>" to a shared trace for every call: b(egin) l(oss terms)
 * s (before step) a(fter step) e(poch end) n (end). Optionally owns one extra trainable scalar
 * (its own optimizer group) whose gradient it sets to 1 in loss_terms. */
typedef struct rec_hook {
    char id;
    char *trace;
    int calls[6];
    bool extra_group;
    float extra_value, extra_grad;
    long after_steps[8]; /* st->step seen by after_step */
    int n_after;
    double term; /* value of this hook's loss term; 0 = none */
    sw_train_hooks hooks;
} rec_hook;

static void trace_add(rec_hook *h, char code) {
    size_t len = strlen(h->trace);
    h->trace[len] = code;
    h->trace[len + 1] = h->id;
    h->trace[len + 2] = '\0';
}

static sw_status rec_begin(void *ctx, sw_train_state *st) {
    rec_hook *h = ctx;
    h->calls[0]++;
    trace_add(h, 'b');
    if (h->extra_group) {
        assert_non_null(st->ev);
        return sw_optim_add_group(&st->ev->optim, &h->extra_value, &h->extra_grad, 1);
    }
    return SW_OK;
}

static sw_status rec_loss(void *ctx, sw_train_state *st, const char **names, double *values,
                          int *n_terms) {
    rec_hook *h = ctx;
    h->calls[1]++;
    trace_add(h, 'l');
    assert_non_null(st->logits);
    assert_non_null(st->dlogits);
    assert_true(sw_shape_equal(&st->logits->shape, &st->dlogits->shape));
    /* zero_grad ran before this step: accumulating shows whether it cleared our group. */
    if (h->extra_group) h->extra_grad += 1.0f;
    if (h->term != 0 && *n_terms >= 1) {
        names[0] = "extra";
        values[0] = h->term;
        *n_terms = 1;
    } else {
        *n_terms = 0;
    }
    return SW_OK;
}

static sw_status rec_before(void *ctx, sw_train_state *st) {
    (void)st;
    rec_hook *h = ctx;
    h->calls[2]++;
    trace_add(h, 's');
    return SW_OK;
}

static sw_status rec_after(void *ctx, sw_train_state *st) {
    rec_hook *h = ctx;
    h->calls[3]++;
    trace_add(h, 'a');
    if (h->n_after < 8) h->after_steps[h->n_after++] = st->step;
    return SW_OK;
}

static sw_status rec_epoch(void *ctx, sw_train_state *st) {
    (void)st;
    rec_hook *h = ctx;
    h->calls[4]++;
    trace_add(h, 'e');
    return SW_OK;
}

static sw_status rec_end(void *ctx, sw_train_state *st) {
    (void)st;
    rec_hook *h = ctx;
    h->calls[5]++;
    trace_add(h, 'n');
    return SW_OK;
}

static void rec_hook_init(rec_hook *h, char id, char *trace) {
    memset(h, 0, sizeof *h);
    h->id = id;
    h->trace = trace;
    h->hooks = (sw_train_hooks){.ctx = h,
                                .name = "recorder",
                                .on_train_begin = rec_begin,
                                .loss_terms = rec_loss,
                                .before_step = rec_before,
                                .after_step = rec_after,
                                .on_epoch_end = rec_epoch,
                                .on_train_end = rec_end};
}

/* Hooks run in NNI's nesting order: begin, loss terms, after_step and epoch end in
 * registration order, before_step and end in reverse; each is called once per step/epoch/run.
 * A group added in on_train_begin is updated by the optimizer and zeroed before every step;
 * a hook's loss term is reported and added to the loss. */
static void test_evaluator_hooks_nesting_order(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(8, 1);
    sw_model *m = make_mlp(3, false);
    sw_train_config c = plain_config(4, 0.1f);
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    char trace[512] = "";
    rec_hook a, b, cc;
    rec_hook_init(&a, 'A', trace);
    rec_hook_init(&b, 'B', trace);
    rec_hook_init(&cc, 'C', trace);
    b.extra_group = true;
    b.extra_value = 1.0f;
    cc.term = 0.5;
    assert_int_equal(sw_evaluator_add_hooks(&ev, &a.hooks), SW_OK);
    assert_int_equal(sw_evaluator_add_hooks(&ev, &b.hooks), SW_OK);
    assert_int_equal(sw_evaluator_add_hooks(&ev, &cc.hooks), SW_OK);
    assert_int_equal(sw_evaluator_add_hooks(&ev, &a.hooks), SW_ERR_ARG); /* no duplicates */
    event_log log = {0};
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, &log), SW_OK);

    /* 8 examples in batches of 4: one epoch of 2 steps. */
    assert_int_equal(sw_evaluator_train(&ev, m, -1, 1), SW_OK);
    const char *step = "lAlBlCsCsBsAaAaBaC";
    char want[512];
    snprintf(want, sizeof want, "bAbBbC%s%seAeBeCnCnBnA", step, step);
    assert_string_equal(trace, want);
    int per_run[6] = {1, 2, 2, 2, 1, 1};
    for (int k = 0; k < 6; k++) {
        assert_int_equal(a.calls[k], per_run[k]);
        assert_int_equal(cc.calls[k], per_run[k]);
    }
    /* after_step sees the index of the step in progress. */
    assert_int_equal(a.n_after, 2);
    assert_int_equal(a.after_steps[0], 0);
    assert_int_equal(a.after_steps[1], 1);
    /* Group B: grad 1 each step (zeroed in between), lr 0.1, two steps: 1 - 0.2. */
    assert_float_equal(b.extra_value, 0.8f, 1e-6f);
    /* The optimizer is gone after the run. */
    assert_int_equal(ev.optim.n_groups, 0);

    /* Terms: "task" then C's "extra"; the loss is their sum. */
    const sw_metric_event *s = last_of(&log, SW_METRIC_STEP);
    assert_non_null(s);
    assert_int_equal(s->n_terms, 2);
    assert_string_equal(s->term_names[0], "task");
    assert_string_equal(s->term_names[1], "extra");
    assert_float_equal(s->loss, s->term_values[0] + 0.5, 1e-12);

    /* Removed hooks are no longer called; the others keep their order. */
    sw_evaluator_remove_hooks(&ev, &b.hooks);
    trace[0] = '\0';
    assert_int_equal(sw_evaluator_train(&ev, m, 1, -1), SW_OK);
    assert_string_equal(trace, "bAbClAlCsCsAaAaCeAeCnCnA");

    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- limits ------------------------------------------------------------------------------- */

typedef struct limit_case {
    long max_steps;
    int max_epochs;
    long steps; /* expected optimizer steps */
    int epochs; /* expected EPOCH events */
} limit_case;

/* max_steps and max_epochs: whichever comes first; negative = unset; a partial last epoch
 * still ends with an EPOCH event; zero steps is a valid, empty run; both unset is an error. */
static void test_evaluator_max_steps_and_epochs(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(10, 2); /* batches of 4: 4, 4, 2 -> 3 per epoch */
    sw_model *m = make_mlp(4, false);
    sw_train_config c = plain_config(4, 0.05f);
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, log), SW_OK);
    static const limit_case cases[] = {
        {5, -1, 5, 2}, {-1, 2, 6, 2}, {100, 1, 3, 1}, {2, 5, 2, 1}, {3, -1, 3, 1}, {0, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log->n = 0;
        assert_int_equal(sw_evaluator_train(&ev, m, cases[i].max_steps, cases[i].max_epochs),
                         SW_OK);
        assert_int_equal(count_kind(log, SW_METRIC_STEP), cases[i].steps);
        assert_int_equal(count_kind(log, SW_METRIC_EPOCH), cases[i].epochs);
        assert_int_equal(log->ev[0].kind, SW_METRIC_BEGIN);
        assert_int_equal(log->ev[0].total_steps, cases[i].steps);
        assert_int_equal(log->ev[0].total_epochs, cases[i].epochs);
        const sw_metric_event *end = &log->ev[log->n - 1];
        assert_int_equal(end->kind, SW_METRIC_END);
        assert_string_equal(end->message, "completed");
        assert_int_equal(end->step, cases[i].steps);
    }
    /* Step events count 1, 2, 3 within a run and carry the 0-based epoch. */
    log->n = 0;
    assert_int_equal(sw_evaluator_train(&ev, m, 4, -1), SW_OK);
    int k = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->ev[i].kind != SW_METRIC_STEP) continue;
        k++;
        assert_int_equal(log->ev[i].step, k);
        assert_int_equal(log->ev[i].epoch, k <= 3 ? 0 : 1);
        assert_true(isfinite(log->ev[i].loss) && log->ev[i].loss > 0);
    }

    log->n = 0;
    assert_int_equal(sw_evaluator_train(&ev, m, -1, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "max_steps or max_epochs"));
    assert_int_equal(log->n, 0);
    free(log);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- stopping ----------------------------------------------------------------------------- */

typedef struct poll_ctx {
    int calls;
    int stop_at;
} poll_ctx;

static bool poll_stop(void *ctx) {
    poll_ctx *p = ctx;
    return ++p->calls >= p->stop_at;
}

static sw_status stop_after_two(void *ctx, sw_train_state *st) {
    (void)ctx;
    if (st->step == 1) sw_evaluator_request_stop(st->ev);
    return SW_OK;
}

/* A poll that asks to stop ends the run at that step boundary with SW_ERR_INTERRUPTED, after
 * on_train_end and an END "stopped" event; the model's mode is restored. A stop requested by a
 * hook works the same way. */
static void test_evaluator_poll_stops_at_step_boundary(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(40, 3);
    sw_model *m = make_mlp(5, false);
    sw_train_config c = plain_config(4, 0.05f);
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    char trace[256] = "";
    rec_hook h;
    rec_hook_init(&h, 'H', trace);
    assert_int_equal(sw_evaluator_add_hooks(&ev, &h.hooks), SW_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, log), SW_OK);
    poll_ctx p = {0, 3};
    ev.poll = poll_stop;
    ev.poll_ctx = &p;
    sw_model_set_training(m, false);

    assert_int_equal(sw_evaluator_train(&ev, m, -1, 10), SW_ERR_INTERRUPTED);
    assert_non_null(strstr(sw_error_message(), "step 3 of 100"));
    assert_int_equal(p.calls, 3);
    assert_int_equal(count_kind(log, SW_METRIC_STEP), 3);
    assert_int_equal(h.calls[3], 3); /* the third step completed before the stop */
    assert_int_equal(h.calls[5], 1); /* on_train_end ran */
    assert_int_equal(h.calls[4], 0); /* no epoch ended */
    const sw_metric_event *end = &log->ev[log->n - 1];
    assert_int_equal(end->kind, SW_METRIC_END);
    assert_string_equal(end->message, "stopped");
    assert_int_equal(end->step, 3);
    assert_false(m->training);

    /* The next run starts afresh (the stop does not stick), and a hook can ask to stop. */
    ev.poll = NULL;
    sw_train_hooks stopper = {.name = "stopper", .after_step = stop_after_two};
    assert_int_equal(sw_evaluator_add_hooks(&ev, &stopper), SW_OK);
    log->n = 0;
    assert_int_equal(sw_evaluator_train(&ev, m, 50, -1), SW_ERR_INTERRUPTED);
    assert_int_equal(count_kind(log, SW_METRIC_STEP), 2);
    free(log);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- NaN ---------------------------------------------------------------------------------- */

typedef struct nan_step {
    int calls;
    int nan_at;          /* 1-based call that returns NaN */
    float snapshot[256]; /* parameters after the last good update */
} nan_step;

static sw_status nan_training_step(void *ctx, const sw_batch *batch, const sw_tensor *logits,
                                   double *loss, sw_tensor *dlogits) {
    nan_step *n = ctx;
    sw_status s = sw_loss_cross_entropy(logits, batch->y, 1.0f, loss, dlogits);
    if (++n->calls == n->nan_at) *loss = NAN;
    return s;
}

static sw_status snapshot_params(void *ctx, sw_train_state *st) {
    nan_step *n = ctx;
    assert_true(st->model->n_param_floats <= 256);
    memcpy(n->snapshot, st->model->param_data, st->model->n_param_floats * sizeof(float));
    return SW_OK;
}

/* A NaN loss stops training before that update with SW_ERR_NUMERIC, a message naming the step
 * and suggesting a lower learning rate, and an END "NaN loss" event; the weights are those of
 * the last good step. */
static void test_evaluator_nan_loss_stops(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(40, 4);
    sw_model *m = make_mlp(6, false);
    sw_train_config c = plain_config(4, 0.05f);
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    nan_step *n = calloc(1, sizeof *n);
    n->nan_at = 3;
    ev.training_step = nan_training_step;
    ev.training_step_ctx = n;
    sw_train_hooks snap = {.ctx = n, .name = "snapshot", .after_step = snapshot_params};
    assert_int_equal(sw_evaluator_add_hooks(&ev, &snap), SW_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, log), SW_OK);

    assert_int_equal(sw_evaluator_train(&ev, m, -1, 2), SW_ERR_NUMERIC);
    const char *msg = sw_error_message();
    assert_non_null(strstr(msg, "NaN"));
    assert_non_null(strstr(msg, "step 3"));
    assert_non_null(strstr(msg, "lower"));
    assert_true(ev.stop_requested);
    assert_int_equal(count_kind(log, SW_METRIC_STEP), 2);
    const sw_metric_event *end = &log->ev[log->n - 1];
    assert_int_equal(end->kind, SW_METRIC_END);
    assert_string_equal(end->message, "NaN loss");
    assert_memory_equal(m->param_data, n->snapshot, m->n_param_floats * sizeof(float));
    free(log);
    free(n);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- the step itself ---------------------------------------------------------------------- */

/* With one batch per epoch, the evaluator's step equals the hand-written loop zero_grad ->
 * forward -> mean cross-entropy -> backward -> SGD(momentum) step (up to summation order, as
 * the loader shuffles the batch). The hand loop is the one test_optim checks against torch. */
static void test_evaluator_step_equals_manual_loop(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(16, 5);
    sw_model *m = make_mlp(7, false);
    sw_model *ref = NULL;
    assert_int_equal(sw_model_clone(m, &ref), SW_OK);
    sw_train_config c = plain_config(16, 0.2f);
    c.optim.momentum = 0.9f;
    c.optim.weight_decay = 1e-3f;
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    assert_int_equal(sw_evaluator_train(&ev, m, 3, -1), SW_OK);

    sw_shape xs = sw_shape_4d(16, 1, 4, 4);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    int labels[16];
    for (int i = 0; i < 16; i++) labels[i] = ds->labels[i];
    sw_shape ds_shape = sw_shape_2d(16, 3);
    sw_tensor dlogits;
    assert_int_equal(sw_tensor_init(&dlogits, &ds_shape), SW_OK);
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c.optim), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, ref->param_data, ref->grad_data, ref->n_param_floats),
                     SW_OK);
    for (int k = 0; k < 3; k++) {
        sw_optim_zero_grad(&opt);
        const sw_tensor *logits;
        double loss;
        assert_int_equal(sw_model_forward(ref, &x, &logits), SW_OK);
        assert_int_equal(sw_loss_cross_entropy(logits, labels, 1.0f, &loss, &dlogits), SW_OK);
        assert_int_equal(sw_model_backward(ref, &dlogits), SW_OK);
        sw_optim_step(&opt, c.optim.lr);
    }
    sw_test_assert_close(m->param_data, ref->param_data, m->n_param_floats, 1e-6f, 1e-5f,
                         "params after 3 steps");
    /* And training did move them away from the initial values. */
    sw_model *init = make_mlp(7, false);
    float moved = 0;
    for (size_t i = 0; i < m->n_param_floats; i++)
        moved = fmaxf(moved, fabsf(m->param_data[i] - init->param_data[i]));
    assert_true(moved > 1e-3f);
    sw_model_free(init);
    sw_optim_deinit(&opt);
    sw_tensor_deinit(&dlogits);
    sw_evaluator_deinit(&ev);
    sw_model_free(ref);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* A cosine schedule without a length spans the planned steps (after warm-up): the STEP events
 * show lr = base * (1 + cos(pi * t / T)) / 2 with T = planned - warmup. */
static void test_evaluator_cosine_spans_planned_steps(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(12, 6); /* batches of 4: 3 per epoch */
    sw_model *m = make_mlp(8, false);
    sw_train_config c = plain_config(4, 0.1f);
    c.lr.kind = SW_LR_COSINE;
    c.lr.total_steps = 0;
    c.lr.warmup_steps = 2;
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, log), SW_OK);
    assert_int_equal(sw_evaluator_train(&ev, m, -1, 2), SW_OK); /* 6 steps, T = 4 */
    double want[6] = {0.05, 0.1, 0.1, 0.05 * (1 + cos(M_PI / 4)), 0.05, 0.05 * (1 - cos(M_PI / 4))};
    int k = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->ev[i].kind != SW_METRIC_STEP) continue;
        assert_true(k < 6);
        assert_float_equal(log->ev[i].lr, want[k], 1e-7);
        assert_true(log->ev[i].images_per_sec > 0);
        k++;
    }
    assert_int_equal(k, 6);
    /* The evaluator's own configuration is untouched (total_steps still 0). */
    assert_int_equal(ev.cfg.lr.total_steps, 0);
    free(log);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- memory ------------------------------------------------------------------------------- */

typedef struct memory_probe {
    int n;
    size_t arena_capacity[32];
    const float *batch_data[32];
    const float *dlogits_data[32];
} memory_probe;

static sw_status probe_memory(void *ctx, sw_train_state *st) {
    memory_probe *p = ctx;
    if (p->n == 32) return SW_OK;
    p->arena_capacity[p->n] = st->model->arena.capacity;
    p->batch_data[p->n] = st->batch->x.data;
    p->dlogits_data[p->n] = st->dlogits->data;
    p->n++;
    return SW_OK;
}

/* The steady-state loop reuses its memory: from the third step on (after the arena's warm-up
 * merge) the model arena does not grow, and the batch and logits-gradient buffers are the same
 * ones every step, across epoch boundaries and the smaller last batch. */
static void test_evaluator_steady_state_reuses_memory(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(30, 12); /* batches of 8: 8, 8, 8, 6 */
    sw_model *m = make_mlp(13, true);
    sw_train_config c = plain_config(8, 0.05f);
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    memory_probe probe = {0};
    sw_train_hooks h = {.ctx = &probe, .name = "probe", .after_step = probe_memory};
    assert_int_equal(sw_evaluator_add_hooks(&ev, &h), SW_OK);
    assert_int_equal(sw_evaluator_train(&ev, m, -1, 3), SW_OK);
    assert_int_equal(probe.n, 12);
    for (int k = 2; k < probe.n; k++) {
        assert_int_equal(probe.arena_capacity[k], probe.arena_capacity[1]);
        assert_ptr_equal(probe.batch_data[k], probe.batch_data[0]);
        assert_ptr_equal(probe.dlogits_data[k], probe.dlogits_data[0]);
    }
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* ---- determinism -------------------------------------------------------------------------- */

static void train_copy(uint64_t seed, float *out, size_t *n) {
    sw_dataset *ds = make_dataset(24, 7);
    sw_model *m = make_mlp(9, true);
    sw_train_config c = plain_config(5, 0.1f);
    c.optim.momentum = 0.9f;
    c.seed = seed;
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, ds, NULL, &c), SW_OK);
    assert_int_equal(sw_evaluator_train(&ev, m, -1, 3), SW_OK);
    assert_true(m->n_param_floats <= 256);
    memcpy(out, m->param_data, m->n_param_floats * sizeof(float));
    *n = m->n_param_floats;
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(ds);
}

/* Same seed, same weights bit for bit (shuffling and dropout included); another seed gives
 * another result. */
static void test_evaluator_deterministic_given_seed(void **state) {
    (void)state;
    float a[256], b[256], d[256];
    size_t na, nb, nd;
    train_copy(42, a, &na);
    train_copy(42, b, &nb);
    train_copy(43, d, &nd);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(float));
    assert_memory_not_equal(a, d, na * sizeof(float));
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* evaluate gives the accuracy and mean loss of the whole test set over uneven batches (equal
 * to one big forward), runs in eval mode, and restores the previous mode. */
static void test_evaluator_evaluate_accuracy_and_mode(void **state) {
    (void)state;
    sw_dataset *train = make_dataset(8, 8);
    sw_dataset *test = make_dataset(10, 9);
    sw_model *m = make_mlp(10, true);
    sw_train_config c = plain_config(4, 0.1f);
    c.eval_batch_size = 4; /* 4, 4, 2 */
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, train, test, &c), SW_OK);
    double acc = -1, loss = -1;
    sw_model_set_training(m, true);
    assert_int_equal(sw_evaluator_evaluate(&ev, m, &acc, &loss), SW_OK);
    assert_true(m->training);

    sw_model_set_training(m, false);
    sw_shape xs = sw_shape_4d(10, 1, 4, 4);
    sw_tensor x = sw_tensor_view(test->images, &xs);
    int labels[10];
    for (int i = 0; i < 10; i++) labels[i] = test->labels[i];
    const sw_tensor *logits;
    assert_int_equal(sw_model_forward(m, &x, &logits), SW_OK);
    double want_loss;
    assert_int_equal(sw_loss_cross_entropy(logits, labels, 1.0f, &want_loss, NULL), SW_OK);
    int correct = sw_count_correct(logits, labels);
    assert_float_equal(acc, correct / 10.0, 1e-12);
    assert_float_equal(loss, want_loss, 1e-6);

    assert_int_equal(sw_evaluator_evaluate(&ev, m, &acc, NULL), SW_OK);
    assert_false(m->training);

    /* No test set: an error that says so. */
    sw_evaluator none;
    assert_int_equal(sw_evaluator_init(&none, train, NULL, &c), SW_OK);
    assert_int_equal(sw_evaluator_evaluate(&none, m, &acc, &loss), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "no test set"));
    sw_evaluator_deinit(&none);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(train);
    sw_dataset_free(test);
}

/* ---- real data ---------------------------------------------------------------------------- */

/* An MLP trained for one epoch on 4000 Fashion-MNIST images learns: the loss falls, the EVAL
 * after the epoch matches sw_evaluator_evaluate and clears 70% on 1000 test images, and the
 * JSONL log of the run reads back with every event. */
static void test_evaluator_fashion_mnist_learns(void **state) {
    (void)state;
    sw_dataset *train = NULL, *test = NULL;
    if (sw_dataset_load(SW_DATASET_FASHION_MNIST, NULL, SW_SPLIT_TRAIN, 4000, &train) != SW_OK)
        fail_msg("%s", sw_error_message());
    if (sw_dataset_load(SW_DATASET_FASHION_MNIST, NULL, SW_SPLIT_TEST, 1000, &test) != SW_OK)
        fail_msg("%s", sw_error_message());
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_mlp", 1, &m), SW_OK);
    sw_train_config c = sw_train_config_default();
    c.batch_size = 64;
    c.optim.lr = 0.05f;
    c.seed = 1;
    sw_evaluator ev;
    assert_int_equal(sw_evaluator_init(&ev, train, test, &c), SW_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_int_equal(sw_metric_bus_add(&ev.bus, log_event, log), SW_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/fmnist.jsonl", sw_test_tmpdir());
    sw_jsonl_log jsonl;
    assert_int_equal(sw_jsonl_log_open(&jsonl, path), SW_OK);
    assert_int_equal(sw_metric_bus_add(&ev.bus, sw_jsonl_log_listener, &jsonl), SW_OK);

    double acc0 = 0;
    assert_int_equal(sw_evaluator_evaluate(&ev, m, &acc0, NULL), SW_OK);
    if (sw_evaluator_train(&ev, m, -1, 1) != SW_OK) fail_msg("%s", sw_error_message());
    sw_jsonl_log_close(&jsonl);
    assert_false(jsonl.failed);

    /* 4000 / 64 = 63 steps (the last batch has 32). Mean loss of the first and last 10. */
    int steps = count_kind(log, SW_METRIC_STEP);
    assert_int_equal(steps, 63);
    double first = 0, last = 0;
    int k = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->ev[i].kind != SW_METRIC_STEP) continue;
        if (k < 10) first += log->ev[i].loss / 10;
        if (k >= steps - 10) last += log->ev[i].loss / 10;
        k++;
    }
    print_message("fmnist_mlp: loss %.3f -> %.3f, accuracy %.3f -> %.3f\n", first, last, acc0,
                  last_of(log, SW_METRIC_EVAL)->accuracy);
    assert_true(last < 0.6 * first);
    const sw_metric_event *e = last_of(log, SW_METRIC_EVAL);
    assert_non_null(e);
    assert_true(e->accuracy > 0.70);
    assert_true(acc0 < 0.3);
    double acc = 0;
    assert_int_equal(sw_evaluator_evaluate(&ev, m, &acc, NULL), SW_OK);
    assert_float_equal(acc, e->accuracy, 1e-12);

    /* The log replays to the same sequence of kinds and values. */
    event_log *replay = calloc(1, sizeof *replay);
    assert_int_equal(sw_jsonl_log_read(path, log_event, replay), SW_OK);
    assert_int_equal(replay->n, log->n);
    for (int i = 0; i < log->n; i++) {
        assert_int_equal(replay->ev[i].kind, log->ev[i].kind);
        assert_int_equal(replay->ev[i].step, log->ev[i].step);
        assert_true(replay->ev[i].elapsed == log->ev[i].elapsed);
        if (log->ev[i].kind == SW_METRIC_STEP) {
            assert_true(replay->ev[i].loss == log->ev[i].loss);
            assert_true(replay->ev[i].lr == log->ev[i].lr);
        }
    }
    assert_string_equal(replay->message[replay->n - 1], "completed");
    free(replay);
    free(log);
    sw_evaluator_deinit(&ev);
    sw_model_free(m);
    sw_dataset_free(train);
    sw_dataset_free(test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluator_hooks_nesting_order),
        cmocka_unit_test(test_evaluator_max_steps_and_epochs),
        cmocka_unit_test(test_evaluator_poll_stops_at_step_boundary),
        cmocka_unit_test(test_evaluator_nan_loss_stops),
        cmocka_unit_test(test_evaluator_step_equals_manual_loop),
        cmocka_unit_test(test_evaluator_cosine_spans_planned_steps),
        cmocka_unit_test(test_evaluator_steady_state_reuses_memory),
        cmocka_unit_test(test_evaluator_deterministic_given_seed),
        cmocka_unit_test(test_evaluator_evaluate_accuracy_and_mode),
        cmocka_unit_test(test_evaluator_fashion_mnist_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
