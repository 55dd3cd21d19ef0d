/* agp.c - AGPPruner: a bound pruner's goals follow automated gradual pruning (Zhu & Gupta,
 * "To prune, or not to prune", 2017; reference §3.2). After the k-th of total_times intervals
 * every goal is
 *
 *   goal_k = (1 - (1 - k / total_times)^3) * configured goal
 *
 * fast at first, while the network has redundancy to spare, and slowly near the end. The
 * bound pruner regenerates its masks with it in the same step (scheduled.h). */
#include "scheduled.h"
#include "trained_pruners.h"

static const sw_compressor_ops agp_ops = {
    .name = "AGPPruner",
    .mode = SW_MODE_PRUNING,
    .fuse_preprocess = sw_combo_pruner_fuse_preprocess,
    .fuse_postprocess = sw_combo_pruner_fuse_postprocess,
    .needs_training = sw_combo_pruner_needs_training,
    .export_file = sw_pruner_export,
    .free = sw_combo_pruner_free,
};

sw_status sw_pruner_agp_new(sw_compressor *pruner, long interval_steps, int total_times,
                            sw_evaluator *ev, sw_compressor **out) {
    return sw_combo_pruner_new(&agp_ops, sw_schedule_agp, pruner, interval_steps, total_times, ev,
                               out);
}

sw_status sw_pruner_agp_from_compressor(sw_compressor *previous, long interval_steps,
                                        int total_times, sw_evaluator *ev, sw_compressor **out) {
    (void)interval_steps;
    (void)total_times;
    (void)ev;
    (void)out;
    return sw_combo_pruner_from_compressor(agp_ops.name, previous);
}
