/* linear.c - LinearPruner: a bound pruner's goals grow linearly from 0 to the configured ones
 * (reference §3.2). After the k-th of total_times intervals every goal is
 *
 *   goal_k = k / total_times * configured goal
 *
 * and the bound pruner regenerates its masks with it in the same step (scheduled.h). */
#include "scheduled.h"
#include "trained_pruners.h"

static const sw_compressor_ops linear_ops = {
    .name = "LinearPruner",
    .mode = SW_MODE_PRUNING,
    .fuse_preprocess = sw_combo_pruner_fuse_preprocess,
    .fuse_postprocess = sw_combo_pruner_fuse_postprocess,
    .needs_training = sw_combo_pruner_needs_training,
    .export_file = sw_pruner_export,
    .free = sw_combo_pruner_free,
};

sw_status sw_pruner_linear_new(sw_compressor *pruner, long interval_steps, int total_times,
                               sw_evaluator *ev, sw_compressor **out) {
    return sw_combo_pruner_new(&linear_ops, sw_schedule_linear, pruner, interval_steps, total_times,
                               ev, out);
}

sw_status sw_pruner_linear_from_compressor(sw_compressor *previous, long interval_steps,
                                           int total_times, sw_evaluator *ev, sw_compressor **out) {
    (void)interval_steps;
    (void)total_times;
    (void)ev;
    (void)out;
    return sw_combo_pruner_from_compressor(linear_ops.name, previous);
}
