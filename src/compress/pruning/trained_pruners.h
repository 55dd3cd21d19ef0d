/* trained_pruners.h - the pruners that learn while they prune (reference §3.2): Slim, Taylor,
 * Movement, and the schedulers Linear and AGP. One file each in this folder; scheduled.h holds
 * what the schedulers share.
 *
 * Every one trains through the evaluator (evaluator.h), so every one needs an evaluator: given
 * here, or taken from the previous compressor by from_compressor (an evaluator given again is
 * then ignored with a warning). Constructors follow NNI's argument order; `ws` is the model's
 * wrapper set (the pruner takes its own reference), `config_list` a JSON array in NNI's keys
 * (borrowed, read during the call). The result is an sw_compressor (compressor.h: compress,
 * unwrap, export, free) and a pruner (pruner.h: sw_pruner_of, get/update/generate masks).
 * The caller owns it and frees it with sw_compressor_free.
 *
 * compress(max_steps, max_epochs):
 *   Slim, Taylor  alone: pass -1, -1; they train exactly training_steps optimizer steps (NNI
 *                 asserts the same). Fused in a chain, the chain's limits apply.
 *   Linear, AGP   give limits covering total_times x interval_steps optimizer steps.
 *   Movement      give limits covering cooldown_begin_step optimizer steps.
 * A run planned too short for a schedule fails before its first step, naming the steps needed
 * (NNI asserts this for max_steps and only warns for epochs; shrinkwrap knows the planned
 * steps in both cases).
 *
 * Only parameter targets can be ranked by these pruners (NNI raises NotImplementedError for
 * active input/output targets); inputs and outputs are masked through align.
 */
#ifndef SW_TRAINED_PRUNERS_H
#define SW_TRAINED_PRUNERS_H

#include "../pruner.h"

/* NNI's defaults for regular_scale. */
#define SW_SLIM_REGULAR_SCALE_DEFAULT 1.0
#define SW_MOVEMENT_REGULAR_SCALE_DEFAULT 1.0
/* Learning rate of the private Adam that trains Slim factors and Movement scores (NNI's). */
#define SW_TRAINED_PRUNER_LR 1e-2f

/* ---- SlimPruner --------------------------------------------------------------------------
 * Network Slimming (Liu et al., 2017). Every active parameter target gets a learnable factor
 * gamma per block (granularity "default" = out_channel: one per filter/row), 1 at the start of
 * each compress. While compressing, the layer sees mask * W * expand(gamma); the loss gains
 * regular_scale * mean over targets of ||gamma_t||_1; a private Adam (lr 1e-2) steps gamma just
 * before the task optimizer steps the weights. After training_steps optimizer steps the masks
 * are generated once from |gamma| (smaller = pruned first).
 *
 * At the end of compress the learned factors are folded into the weights (W <- W * gamma) and
 * the factor transforms removed: the model keeps the function it was trained into, and its
 * masks (NNI discards gamma at unwrap, which silently changes the model; docs/PRUNING.md).
 * training_steps > 0; regular_scale >= 0 (SW_SLIM_REGULAR_SCALE_DEFAULT). Active targets must
 * use apply_method "mul". */
sw_status sw_pruner_slim_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                             long training_steps, double regular_scale, sw_compressor **out);
sw_status sw_pruner_slim_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                         long training_steps, double regular_scale,
                                         sw_evaluator *ev, sw_compressor **out);
/* The factors of module.target as learned by the last compress (already folded into the
 * weights when it ended; all 1 before the first one): *values has *n entries, one per block,
 * valid until the pruner is freed or compresses again. SW_ERR_ARG when c is not a SlimPruner,
 * SW_ERR_NOT_FOUND when module.target has no factor (not an active target of this pruner). */
sw_status sw_pruner_slim_factors(const sw_compressor *c, const char *module, const char *target,
                                 const float **values, size_t *n);

/* ---- TaylorPruner ------------------------------------------------------------------------
 * First-order Taylor importance (Molchanov et al., 2019), as NNI computes it: for
 * training_steps optimizer steps the squared elementwise products (w * dL/dw)^2 of every
 * active parameter target are summed (the gradient of the raw weight, so masked weights add
 * 0); data = sum / training_steps; metric = L1 of data over each block (out_channel by default).
 * The masks are generated once, after training_steps steps. training_steps > 0. */
sw_status sw_pruner_taylor_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               long training_steps, sw_compressor **out);
sw_status sw_pruner_taylor_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           long training_steps, sw_evaluator *ev,
                                           sw_compressor **out);

/* ---- LinearPruner, AGPPruner -------------------------------------------------------------
 * Schedulers over a bound pruner (Level, L1Norm, L2Norm, FPGM, Slim or Taylor; the newest of
 * its chain): at compress the bound pruner's goals start at 0 and, after each interval_steps
 * optimizer steps, total_times times, become the configured goals times
 *   Linear: k / total_times            AGP: 1 - (1 - k / total_times)^3
 * and the bound pruner regenerates its masks with them in that same step. Slim and Taylor
 * need interval_steps >= their training_steps; under a schedule they generate at the end of
 * each interval (Taylor from the last training_steps steps of it; docs/PRUNING.md).
 * The combo is linked after the bound pruner in the fused chain (build later compressors on
 * the combo); the bound pruner stays the caller's and must outlive the combo's compress calls.
 * The evaluator is the bound pruner's when it has one; `ev` otherwise (one is required). */
sw_status sw_pruner_linear_new(sw_compressor *pruner, long interval_steps, int total_times,
                               sw_evaluator *ev, sw_compressor **out);
sw_status sw_pruner_agp_new(sw_compressor *pruner, long interval_steps, int total_times,
                            sw_evaluator *ev, sw_compressor **out);
/* NNI does not build Linear/AGP from a compressor; neither do these: they fail with
 * SW_ERR_UNSUPPORTED and say what to do instead (build the inner pruner with from_compressor,
 * then wrap it). */
sw_status sw_pruner_linear_from_compressor(sw_compressor *previous, long interval_steps,
                                           int total_times, sw_evaluator *ev, sw_compressor **out);
sw_status sw_pruner_agp_from_compressor(sw_compressor *previous, long interval_steps,
                                        int total_times, sw_evaluator *ev, sw_compressor **out);
/* The pruner a Linear/AGP pruner schedules, or NULL when c is not one. */
sw_compressor *sw_pruner_scheduled_bound(sw_compressor *c);

/* ---- MovementPruner ----------------------------------------------------------------------
 * Movement pruning (Sanh et al., 2020). Every active parameter target gets a learnable score S
 * per block, 0 at the start of each compress, trained by a private Adam (lr 1e-2) just before
 * the task optimizer's step. The layer sees W * mask; the mask is a straight-through function
 * of S, so dL/dS_block = sum over the block of dL/dW_eff * W (weights moving away from 0 gain
 * score). Goals are 0 until warmup_step; after each step k of the T = cooldown_begin_step -
 * warmup_step steps that follow, they are the configured goals times 1 - (1 - k/T)^3; masks
 * are regenerated after every step past warmup_step (also after cooldown). Metric: S for
 * sparse_ratio targets, sigmoid(S) for sparse_threshold targets, which also get the loss
 *   regular_scale * r * mean over those targets of (sum sigmoid(S_t) / numel(S_t)),
 *   r = clamp(1 - (remaining updates / T)^3, 0, 1).
 * 0 <= warmup_step < cooldown_begin_step; regular_scale >= 0. Active targets use apply_method
 * "mul" (or "add": then dL/dS is the gradient itself). Cannot be scheduled by Linear/AGP. */
sw_status sw_pruner_movement_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                 long warmup_step, long cooldown_begin_step, double regular_scale,
                                 sw_compressor **out);
sw_status sw_pruner_movement_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                             long warmup_step, long cooldown_begin_step,
                                             double regular_scale, sw_evaluator *ev,
                                             sw_compressor **out);
/* The scores of module.target (one per block), valid until the pruner is freed; errors as
 * sw_pruner_slim_factors. */
sw_status sw_pruner_movement_scores(const sw_compressor *c, const char *module, const char *target,
                                    const float **values, size_t *n);

#endif
