/* scheduled.h - what the scheduled pruners share: goal schedules, the Linear/AGP "combo"
 * machinery, and the check that a compress run is long enough for a schedule.
 *
 * A schedule is a factor in [0, 1] that multiplies every configured goal (sparse_ratio,
 * sparse_threshold, min_ and max_sparse_ratio) after the k-th of `total` updates:
 *
 *   linear:  k / total
 *   agp:     1 - (1 - k / total)^3        (Zhu & Gupta's automated gradual pruning, initial 0)
 *
 * The combo pruner (NNI's _ComboPruner, reference §3.2) wraps a bound pruner: at compress it
 * sets the bound pruner's goals to 0 and tells it to regenerate masks every `interval_steps`
 * optimizer steps, `total_times` times; every interval it rescales the goals by the schedule.
 * It is linked after the bound pruner in the fused chain, so its after-step task runs first and
 * the bound pruner regenerates masks with the new goals in the same step.
 */
#ifndef SW_SCHEDULED_PRUNER_H
#define SW_SCHEDULED_PRUNER_H

#include "../pruner.h"

/* The factor after update k of `total` (k in [0, total]), clamped to [0, 1]. */
typedef double (*sw_schedule_fn)(long k, long total);
double sw_schedule_linear(long k, long total);
double sw_schedule_agp(long k, long total);

/* ---- plan guard ----------------------------------------------------------------------------
 * A schedule that is cut short never reaches its final goal. NNI asserts max_steps against the
 * schedule in compress(); here the evaluator knows the planned number of steps when a run
 * begins (max_steps, or max_epochs times the batches per epoch) and announces it in its BEGIN
 * event. The guard listens for that event and the owner checks it in on_train_begin, before
 * the first step. */
typedef struct sw_plan_guard {
    sw_evaluator *ev; /* borrowed; non-NULL while the listener is registered */
    long planned;     /* total_steps of the last BEGIN seen, -1 before one */
} sw_plan_guard;

/* Registers the listener on ev's metric bus (re-arming first removes an earlier one). */
sw_status sw_plan_guard_arm(sw_plan_guard *g, sw_evaluator *ev);
/* Removes the listener; a no-op when not armed. */
void sw_plan_guard_disarm(sw_plan_guard *g);
/* Disarms, then fails (SW_ERR_ARG, message naming `who` and `what` needs the steps) when the
 * planned run has fewer than `required` steps. */
sw_status sw_plan_guard_check(sw_plan_guard *g, long required, const char *who, const char *what);

/* ---- the combo pruner (Linear, AGP) -------------------------------------------------------- */

typedef struct sw_combo_pruner {
    sw_pruner p;          /* first; configures no targets of its own */
    sw_compressor *bound; /* the scheduled pruner: always p.base.previous while it lives */
    sw_schedule_fn schedule;
    long interval_steps;
    int total_times;
    /* Trigger state during a compress. */
    long current_step;
    int remaining;
    sw_plan_guard guard;
} sw_combo_pruner;

/* Builds a combo of `ops` (name, needs_training, ...; see linear.c/agp.c) over `pruner`, which
 * must be a schedulable pruner (Level, L1Norm, L2Norm, FPGM, Slim, Taylor) and the newest of its
 * chain. The evaluator is the pruner's when it has one (`ev` is then ignored with a warning),
 * else `ev`; one is required. Caller owns *out; the pruner stays the caller's too and must
 * outlive the combo's compress calls. */
sw_status sw_combo_pruner_new(const sw_compressor_ops *ops, sw_schedule_fn schedule,
                              sw_compressor *pruner, long interval_steps, int total_times,
                              sw_evaluator *ev, sw_compressor **out);

/* The compressor-op functions of every combo's ops table. */
sw_status sw_combo_pruner_fuse_preprocess(sw_compressor *c);
sw_status sw_combo_pruner_fuse_postprocess(sw_compressor *c);
bool sw_combo_pruner_needs_training(const sw_compressor *c);
void sw_combo_pruner_free(sw_compressor *c);

/* NNI's from_compressor on a combo: always SW_ERR_UNSUPPORTED, with the way round it. */
sw_status sw_combo_pruner_from_compressor(const char *name, sw_compressor *previous);

#endif
