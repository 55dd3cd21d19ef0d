/* pruners.h - the pruning algorithms (reference §3.2), one file each in this folder.
 *
 * Every constructor has two forms, as NNI's classes do:
 *   sw_pruner_<algo>_new(ws, config_list, evaluator, &out)            Pruner(model, cfg, ev)
 *   sw_pruner_<algo>_from_compressor(previous, config_list, ev, &out) Pruner.from_compressor()
 * `ws` is the model's wrapper set (sw_wrapper_set_new; the pruner takes its own reference),
 * `config_list` a JSON array in NNI's keys (borrowed, read during the call), `evaluator` may be
 * NULL for the one-shot pruners; from_compressor uses previous's evaluator when it has one.
 * The result is an sw_compressor (compressor.h: compress, unwrap, export, free) and a
 * pruner (pruner.h: sw_pruner_of, get/update/generate masks).
 *
 * One-shot norm pruners (Level, L1Norm, L2Norm, FPGM):
 *   - alone: compress(-1, -1) generates the masks once from the current weights; giving
 *     max_steps or max_epochs is an error (NNI asserts the same);
 *   - fused by from_compressor and not scheduled: NNI's code registers a trigger that never
 *     fires (interval_steps = -1); shrinkwrap follows the documented promise instead and
 *     generates the masks once when compress starts (before any training), then keeps them;
 *   - scheduled by Linear/AGP (sw_pruner_set_schedule): masks are regenerated every
 *     interval_steps optimizer steps, total_times times, from the current weights.
 */
#ifndef SW_PRUNERS_H
#define SW_PRUNERS_H

#include "../pruner.h"

/* LevelPruner: |w| element-wise by default (granularity null); with block granularity the
 * metric is the L1 norm of each block. */
sw_status sw_pruner_level_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                              sw_compressor **out);
sw_status sw_pruner_level_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                          sw_evaluator *ev, sw_compressor **out);

/* L1NormPruner: the L1 norm of each output filter / row (granularity out_channel). */
sw_status sw_pruner_l1norm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out);
sw_status sw_pruner_l1norm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out);

/* L2NormPruner: the L2 norm of each output filter / row. */
sw_status sw_pruner_l2norm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out);
sw_status sw_pruner_l2norm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out);

/* FPGMPruner: the summed L2 distance of each filter to every filter of the same target;
 * filters nearest the geometric median go first. Needs block granularity. */
sw_status sw_pruner_fpgm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                             sw_compressor **out);
sw_status sw_pruner_fpgm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                         sw_evaluator *ev, sw_compressor **out);

/* Fixed masks (e.g. from a masks file, masks_io.h) applied to a fresh model: one target per
 * entry, masks copied; compress does nothing; get_masks/export/unwrap work as for any pruner.
 * Modules and targets must exist and shapes fit. */
sw_status sw_pruner_masks_new(sw_wrapper_set *ws, const sw_masks *masks, sw_compressor **out);
sw_status sw_pruner_masks_from_compressor(sw_compressor *previous, const sw_masks *masks,
                                          sw_compressor **out);

#endif
