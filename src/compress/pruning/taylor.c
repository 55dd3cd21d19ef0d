/* taylor.c - TaylorPruner: first-order Taylor importance collected while training
 * (Molchanov et al., "Importance Estimation for Neural Network Pruning", 2019; reference §3.2).
 *
 * Removing weight w changes the loss by about w * dL/dw; squared and summed over steps it
 * estimates the weight's importance. NNI sums the squares element by element:
 *
 *   acc  = sum over collected steps of (w * dL/dw)^2      elementwise, shape of w
 *   data = acc / training_steps
 *   metric_b = sum over block b of |data|                 (L1 per block, out_channel default)
 *
 * dL/dw is the gradient of the raw (trainable) weight, after the mask transform: a masked
 * weight has gradient 0 and scores 0. It is read in the before-step hook, when backward is
 * complete and the weights are still those the gradient was computed at.
 *
 * Steps collected: the first training_steps steps of a compress when alone (NNI). Under a
 * Linear/AGP schedule (interval_steps >= training_steps), the last training_steps steps of
 * each interval, and masks are generated at the end of each interval, right after the
 * schedule raised the goals (docs/PRUNING.md: NNI generates at step training_steps of each
 * interval, before the schedule's update, which never reaches the final goal when
 * interval_steps > training_steps). When the two are equal both readings agree. */
#include "trained_pruners.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct taylor_pruner {
    sw_pruner p; /* first */
    long training_steps;
    long interval_steps; /* = training_steps unless a scheduler set another */
    int total_times;     /* generations to do; -1 = unlimited */
    bool scheduled;
    long current_step; /* optimizer steps in the current interval */
    int remaining;
    ptrdiff_t *acc_of; /* owned, per target: offset into acc, or -1 when not collected */
    size_t n_acc;
    double *acc; /* owned [n_acc]: sums of (w * dL/dw)^2, every active target */
    float *data; /* owned [largest target]: acc / training_steps of one target */
    size_t data_cap;
} taylor_pruner;

static const sw_compressor_ops taylor_ops;

static const sw_param *target_param(const taylor_pruner *s, const sw_prune_target *t) {
    return &s->p.base.model->nodes[t->node].layer->params[t->param_index];
}

/* ---- training hooks -------------------------------------------------------------------------- */

/* Steps [interval - training_steps, interval) of each interval are collected. */
static bool collecting(const taylor_pruner *s) {
    if (s->remaining == 0) return false;
    return s->current_step >= s->interval_steps - s->training_steps &&
           s->current_step < s->interval_steps;
}

static sw_status taylor_before_step(void *ctx, sw_train_state *st) {
    taylor_pruner *s = ctx;
    (void)st;
    if (!collecting(s)) return SW_OK;
    for (int i = 0; i < s->p.n_targets; i++) {
        if (s->acc_of[i] < 0) continue;
        const sw_param *par = target_param(s, &s->p.targets[i]);
        double *acc = s->acc + s->acc_of[i];
        const float *w = par->value.data, *g = par->grad.data;
        for (size_t e = 0; e < par->value.numel; e++) {
            /* The product in float, as torch forms it; the running sum in double. */
            float wg = w[e] * g[e];
            acc[e] += (double)wg * (double)wg;
        }
    }
    return SW_OK;
}

static sw_status taylor_after_step(void *ctx, sw_train_state *st) {
    taylor_pruner *s = ctx;
    (void)st;
    s->current_step++;
    if (s->current_step != s->interval_steps) return SW_OK;
    SW_TRY(sw_pruner_generate_masks(&s->p));
    if (s->remaining > 0) s->remaining--;
    if (s->remaining != 0) {
        /* A new interval collects afresh (NNI clears the buffers on the reset). */
        s->current_step = 0;
        memset(s->acc, 0, s->n_acc * sizeof *s->acc);
    }
    return SW_OK;
}

/* ---- compressor ops ------------------------------------------------------------------------ */

static sw_status taylor_fuse_preprocess(sw_compressor *c) {
    taylor_pruner *s = (taylor_pruner *)c;
    if (s->interval_steps < s->training_steps)
        return SW_FAIL(SW_ERR_ARG,
                       "scheduled every %ld steps, fewer than its training_steps (%ld): give the "
                       "scheduler interval_steps >= %ld",
                       s->interval_steps, s->training_steps, s->training_steps);
    memset(s->acc, 0, s->n_acc * sizeof *s->acc);
    s->current_step = 0;
    s->remaining = s->total_times;
    c->hooks.before_step = taylor_before_step;
    c->hooks.after_step = taylor_after_step;
    return SW_OK;
}

static sw_status taylor_single_compress(sw_compressor *c, long max_steps, int max_epochs) {
    taylor_pruner *s = (taylor_pruner *)c;
    if (s->scheduled) return sw_compressor_compress_fused(c, max_steps, max_epochs);
    if (max_steps >= 0 || max_epochs >= 0)
        return SW_FAIL(SW_ERR_ARG,
                       "TaylorPruner trains its own training_steps (%ld): compress takes no "
                       "max_steps or max_epochs (pass -1)",
                       s->training_steps);
    return sw_compressor_compress_fused(c, s->training_steps, -1);
}

static bool taylor_needs_training(const sw_compressor *c) {
    (void)c;
    return true;
}

static void taylor_free(sw_compressor *c) {
    taylor_pruner *s = (taylor_pruner *)c;
    free(s->acc_of);
    free(s->acc);
    free(s->data);
    sw_pruner_deinit(&s->p);
    free(s);
}

static const sw_compressor_ops taylor_ops = {
    .name = "TaylorPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = taylor_single_compress,
    .fuse_preprocess = taylor_fuse_preprocess,
    .needs_training = taylor_needs_training,
    .export_file = sw_pruner_export,
    .free = taylor_free,
};

/* ---- pruner ops ---------------------------------------------------------------------------- */

static sw_status taylor_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    taylor_pruner *s = (taylor_pruner *)p;
    ptrdiff_t off = s->acc_of[t - p->targets];
    if (off < 0) return SW_FAIL(SW_ERR_ARG, "%s.%s collects no Taylor data", t->module, t->name);
    /* data is float in NNI (a float buffer divided by the step count); the block sums of the
     * metric are taken in double. */
    size_t n = sw_shape_numel(&t->shape);
    const double *acc = s->acc + off;
    for (size_t e = 0; e < n; e++) s->data[e] = (float)(acc[e] / (double)s->training_steps);
    if (!t->has_scaling) {
        for (size_t e = 0; e < n; e++) metric[e] = fabs((double)s->data[e]);
        return SW_OK;
    }
    sw_tensor view = sw_tensor_view(s->data, &t->shape);
    return sw_scaling_shrink(&t->scaling, &view, SW_REDUCE_L1, metric);
}

static void taylor_set_schedule(sw_pruner *p, long interval_steps, int total_times) {
    taylor_pruner *s = (taylor_pruner *)p;
    s->interval_steps = interval_steps;
    s->total_times = total_times;
    s->scheduled = true;
}

static const sw_pruner_ops taylor_pruner_ops = {
    .metric = taylor_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
    .set_schedule = taylor_set_schedule,
};

/* ---- construction -------------------------------------------------------------------------- */

static sw_status setup_accumulators(taylor_pruner *s) {
    sw_pruner *p = &s->p;
    s->acc_of = malloc((size_t)(p->n_targets ? p->n_targets : 1) * sizeof *s->acc_of);
    if (!s->acc_of) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_targets; i++) {
        const sw_prune_target *t = &p->targets[i];
        s->acc_of[i] = -1;
        if (!sw_prune_setting_active(&t->setting) || t->kind != SW_TARGET_PARAM) continue;
        size_t n = sw_shape_numel(&t->shape);
        s->acc_of[i] = (ptrdiff_t)s->n_acc;
        s->n_acc += n;
        if (n > s->data_cap) s->data_cap = n;
    }
    s->acc = calloc(s->n_acc ? s->n_acc : 1, sizeof *s->acc);
    s->data = malloc((s->data_cap ? s->data_cap : 1) * sizeof *s->data);
    if (!s->acc || !s->data) return SW_FAIL(SW_ERR_NOMEM, "out of memory for Taylor data");
    return SW_OK;
}

static sw_status taylor_build(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                              sw_evaluator *ev, long training_steps, sw_compressor **out) {
    if (!config_list) return SW_FAIL(SW_ERR_ARG, "TaylorPruner: no config list");
    if (training_steps <= 0)
        return SW_FAIL(SW_ERR_ARG, "TaylorPruner: training_steps must be positive (got %ld)",
                       training_steps);
    taylor_pruner *s = calloc(1, sizeof *s);
    if (!s) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate TaylorPruner");
    sw_status st =
        previous
            ? sw_pruner_init_from(&s->p, &taylor_ops, &taylor_pruner_ops, previous, config_list, ev)
            : sw_pruner_init(&s->p, &taylor_ops, &taylor_pruner_ops, ws, config_list, ev);
    if (st != SW_OK) {
        free(s);
        sw_error_prefix("TaylorPruner");
        return st;
    }
    s->training_steps = training_steps;
    s->interval_steps = training_steps;
    s->total_times = 1;
    if (!s->p.base.ev)
        st = SW_FAIL(SW_ERR_ARG, "TaylorPruner trains while it prunes: give it an evaluator");
    if (st == SW_OK) st = setup_accumulators(s);
    if (st != SW_OK) {
        sw_compressor_free(&s->p.base);
        sw_error_prefix("TaylorPruner");
        return st;
    }
    *out = &s->p.base;
    return SW_OK;
}

sw_status sw_pruner_taylor_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               long training_steps, sw_compressor **out) {
    return taylor_build(ws, NULL, config_list, ev, training_steps, out);
}

sw_status sw_pruner_taylor_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           long training_steps, sw_evaluator *ev,
                                           sw_compressor **out) {
    if (!previous)
        return SW_FAIL(SW_ERR_ARG, "TaylorPruner.from_compressor: no previous compressor");
    return taylor_build(NULL, previous, config_list, ev, training_steps, out);
}
