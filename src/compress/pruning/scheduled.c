/* scheduled.c - goal schedules, the plan guard, and the Linear/AGP combo pruner. */
#include "scheduled.h"

#include "trained_pruners.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- schedules ------------------------------------------------------------------------------ */

/* Goals are fractions: a schedule never takes them below 0 or past the configured value. */
static double clamp01(double x) {
    return x < 0.0 ? 0.0 : x > 1.0 ? 1.0 : x;
}

double sw_schedule_linear(long k, long total) {
    return total > 0 ? clamp01((double)k / (double)total) : 1.0;
}

/* The cube makes the early updates large, while the network still has redundancy to lose,
 * and the late ones small, when every further filter costs accuracy. */
double sw_schedule_agp(long k, long total) {
    if (total <= 0) return 1.0;
    double rest = 1.0 - (double)k / (double)total;
    return clamp01(1.0 - rest * rest * rest);
}

/* ---- plan guard ----------------------------------------------------------------------------- */

/* The BEGIN event carries the run's planned steps; nothing else is of interest here. */
static void guard_listener(void *ctx, const sw_metric_event *e) {
    sw_plan_guard *g = ctx;
    if (e->kind == SW_METRIC_BEGIN) g->planned = e->total_steps;
}

sw_status sw_plan_guard_arm(sw_plan_guard *g, sw_evaluator *ev) {
    sw_plan_guard_disarm(g);
    g->planned = -1;
    if (!ev) return SW_OK;
    SW_TRY(sw_metric_bus_add(&ev->bus, guard_listener, g));
    g->ev = ev;
    return SW_OK;
}

void sw_plan_guard_disarm(sw_plan_guard *g) {
    if (!g->ev) return;
    sw_metric_bus_remove(&g->ev->bus, guard_listener, g);
    g->ev = NULL;
}

sw_status sw_plan_guard_check(sw_plan_guard *g, long required, const char *who, const char *what) {
    long planned = g->planned;
    /* One check per run: the listener has done its job once training began. */
    sw_plan_guard_disarm(g);
    if (planned >= 0 && planned < required)
        return SW_FAIL(SW_ERR_ARG,
                       "%s: %s needs %ld optimizer steps, but this compress plans only %ld; "
                       "give max_steps >= %ld (or enough max_epochs)",
                       who, what, required, planned, required);
    return SW_OK;
}

/* ---- the combo pruner ----------------------------------------------------------------------- */

/* The bound pruner, or a failure when it was freed (the chain then skips over it). */
static sw_status combo_bound(sw_combo_pruner *k, sw_pruner **out) {
    if (k->p.base.previous != k->bound || !k->bound)
        return SW_FAIL(SW_ERR_ARG,
                       "%s: the pruner it schedules was freed; build a new %s over a live pruner",
                       k->p.base.ops->name, k->p.base.ops->name);
    *out = sw_pruner_of(k->bound);
    return SW_OK;
}

/* NNI's optimizer task: every interval_steps steps the next schedule value takes effect. It is
 * registered before the bound pruner's own trigger, so it runs first within a step. */
static sw_status combo_after_step(void *ctx, sw_train_state *st) {
    sw_combo_pruner *k = ctx;
    (void)st;
    k->current_step++;
    if (k->current_step != k->interval_steps || k->remaining <= 0) return SW_OK;
    k->remaining--;
    sw_pruner *bound = NULL;
    SW_TRY(combo_bound(k, &bound));
    long done = (long)(k->total_times - k->remaining);
    sw_pruner_scale_goals(bound, k->schedule(done, k->total_times));
    if (k->remaining > 0) k->current_step = 0;
    return SW_OK;
}

/* Runs before the first step: a schedule the run cannot finish fails here, with the weights
 * untouched, instead of ending silently short of its goals. */
static sw_status combo_train_begin(void *ctx, sw_train_state *st) {
    sw_combo_pruner *k = ctx;
    (void)st;
    char what[96];
    snprintf(what, sizeof what, "its schedule (total_times %d x interval_steps %ld)",
             k->total_times, k->interval_steps);
    return sw_plan_guard_check(&k->guard, (long)k->total_times * k->interval_steps,
                               k->p.base.ops->name, what);
}

/* Also reached when another hook's on_train_begin failed before ours checked. */
static sw_status combo_train_end(void *ctx, sw_train_state *st) {
    sw_combo_pruner *k = ctx;
    (void)st;
    sw_plan_guard_disarm(&k->guard);
    return SW_OK;
}

sw_status sw_combo_pruner_fuse_preprocess(sw_compressor *c) {
    sw_combo_pruner *k = (sw_combo_pruner *)c;
    sw_pruner *bound = NULL;
    SW_TRY(combo_bound(k, &bound));
    /* NNI's _initialize_state: goals start at the schedule's initial ratio (0), and the bound
     * pruner regenerates its masks on the combo's rhythm. */
    sw_pruner_scale_goals(bound, k->schedule(0, k->total_times));
    SW_TRY(sw_pruner_set_schedule(bound, k->interval_steps, k->total_times));
    k->current_step = 0;
    k->remaining = k->total_times;
    c->hooks.after_step = combo_after_step;
    c->hooks.on_train_begin = combo_train_begin;
    c->hooks.on_train_end = combo_train_end;
    return sw_plan_guard_arm(&k->guard, c->ev);
}

sw_status sw_combo_pruner_fuse_postprocess(sw_compressor *c) {
    sw_combo_pruner *k = (sw_combo_pruner *)c;
    /* The goals stay where the schedule left them (the configured ones after a full run), so
     * get_masks and a later generate_masks agree with what training produced. */
    sw_plan_guard_disarm(&k->guard);
    return SW_OK;
}

bool sw_combo_pruner_needs_training(const sw_compressor *c) {
    (void)c;
    return true;
}

void sw_combo_pruner_free(sw_compressor *c) {
    sw_combo_pruner *k = (sw_combo_pruner *)c;
    /* Armed only when a compress failed before training began; the evaluator is still the
     * caller's then (it must outlive the compressors that borrow it). */
    sw_plan_guard_disarm(&k->guard);
    sw_pruner_deinit(&k->p);
    free(k);
}

/* A combo owns no targets and is never ranked: these ops exist only so that it is a pruner
 * (get_masks and export walk the chain and find the bound pruner's masks). */
static sw_status combo_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    (void)metric;
    return SW_FAIL(SW_ERR_ARG, "%s has no metric of its own (asked for %s.%s)", p->base.ops->name,
                   t->module, t->name);
}

static const sw_pruner_ops combo_pruner_ops = {
    .metric = combo_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
};

sw_status sw_combo_pruner_new(const sw_compressor_ops *ops, sw_schedule_fn schedule,
                              sw_compressor *pruner, long interval_steps, int total_times,
                              sw_evaluator *ev, sw_compressor **out) {
    if (!pruner) return SW_FAIL(SW_ERR_ARG, "%s: no pruner to schedule", ops->name);
    sw_pruner *bound = sw_pruner_of(pruner);
    if (!bound)
        return SW_FAIL(SW_ERR_ARG, "%s schedules a pruner; %s is a %s compressor", ops->name,
                       pruner->ops->name, sw_compress_mode_name(pruner->ops->mode));
    if (!bound->pops->set_schedule)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "%s cannot schedule %s: only Level, L1Norm, L2Norm, FPGM, Slim and "
                       "Taylor pruners regenerate masks on a schedule",
                       ops->name, pruner->ops->name);
    if (interval_steps <= 0 || total_times <= 0)
        return SW_FAIL(SW_ERR_ARG,
                       "%s: interval_steps (%ld) and total_times (%d) must both be positive",
                       ops->name, interval_steps, total_times);
    /* Checked here, not at compress: a combo without an evaluator could never run. */
    if (!pruner->ev && !ev)
        return SW_FAIL(SW_ERR_ARG,
                       "%s trains while it prunes: give it an evaluator (or give one to %s)",
                       ops->name, pruner->ops->name);
    sw_combo_pruner *k = calloc(1, sizeof *k);
    if (!k) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s", ops->name);
    /* Linked after the bound pruner, like from_compressor: compress on the combo drives the
     * bound pruner and everything before it, and later compressors build on the combo. */
    sw_status st = sw_compressor_init_from(&k->p.base, ops, pruner, ev);
    if (st != SW_OK) {
        free(k);
        return st;
    }
    k->p.pops = &combo_pruner_ops;
    k->bound = pruner;
    k->schedule = schedule;
    k->interval_steps = interval_steps;
    k->total_times = total_times;
    *out = &k->p.base;
    return SW_OK;
}

sw_compressor *sw_pruner_scheduled_bound(sw_compressor *c) {
    if (!c || c->ops->fuse_preprocess != sw_combo_pruner_fuse_preprocess) return NULL;
    return ((sw_combo_pruner *)c)->bound;
}

sw_status sw_combo_pruner_from_compressor(const char *name, sw_compressor *previous) {
    return SW_FAIL(SW_ERR_UNSUPPORTED,
                   "%s cannot be built from a compressor (NNI neither): build the inner pruner "
                   "with from_compressor on %s, then wrap it, e.g. "
                   "%s(TaylorPruner.from_compressor(previous, cfg, steps), interval, times)",
                   name, previous ? previous->ops->name : "the previous compressor", name);
}
