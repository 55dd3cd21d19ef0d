/* pruner.h - the pruner base: targets, masks, generate/update/get masks (reference §3).
 *
 * A pruner resolves its config list (pruning mode), claims its (module, target) pairs on the
 * wrapper set (a pair already claimed by an earlier pruner keeps that pruner's configuration;
 * this one's is dropped with a warning: NNI's "first config wins per mode"), and attaches one
 * mask transform per target, all ones at first. Generating masks is NNI's pipeline:
 *
 *   metric per block of every active target (the algorithm: sw_pruner_ops.metric)
 *   -> sparsity rules (pruning/sparsity.h) -> block masks -> expanded into the masks in effect
 *
 * after which the wrapper set recomputes the channels that are dead downstream
 * (dead_channels.h). Masks are regenerated from the current values each time, not
 * accumulated (NNI: a pruned weight can come back when its magnitude grows).
 *
 * Algorithms embed sw_pruner as their first member and give two vtables: the compressor ops
 * (name, compress behaviour, free) and the pruner ops below.
 */
#ifndef SW_COMPRESS_PRUNER_H
#define SW_COMPRESS_PRUNER_H

#include "compressor.h"
#include "masks.h"
#include "pruning/prune_setting.h"

typedef struct sw_prune_target {
    int node;
    const char *module;            /* node name (borrowed from the model) */
    char name[SW_TARGET_NAME_MAX]; /* "weight", "bias", "_output_0", ... */
    sw_target_kind kind;
    int param_index;             /* parameters: index in the layer */
    int entry;                   /* config entry it comes from (-1: loaded masks) */
    sw_prune_setting setting;    /* in effect (schedulers rescale the goals) */
    sw_prune_setting configured; /* as the config list gave it */
    bool has_scaling;
    sw_scaling scaling;
    sw_shape shape;    /* parameter shape, or [1, sample...] for activations */
    sw_shape grid;     /* block grid (keepdim); == shape when element-wise */
    double *metric;    /* owned: last metric, grid numel; NULL when not active */
    float *block_mask; /* owned: last block mask, grid numel */
    sw_tensor mask;    /* owned: the mask applied (masks.h for its shape) */
    sw_transform *tf;  /* the attached mask transform; NULL after unwrap */
} sw_prune_target;

typedef struct sw_pruner sw_pruner;

typedef struct sw_pruner_ops {
    /* Writes the metric of active target t, one value per block of t->grid (row-major);
     * smaller means less important. */
    sw_status (*metric)(sw_pruner *p, sw_prune_target *t, double *metric);
    /* What granularity "default" means for parameters: out_channel (NNI's pruners) or
     * element-wise (Level). Activations default to per_channel. */
    sw_granularity_kind default_param_granularity;
    /* The metric needs blocks (FPGM compares blocks with each other). */
    bool needs_blocks;
    /* The metric can be computed for input/output targets (NNI: none of the built-in ones). */
    bool activation_metrics;
    /* Schedulers (Linear/AGP): regenerate masks every `interval_steps` optimizer steps,
     * `total_times` times (-1 = unlimited) during a fused compress. NULL = not schedulable. */
    void (*set_schedule)(sw_pruner *p, long interval_steps, int total_times);
} sw_pruner_ops;

struct sw_pruner {
    sw_compressor base; /* first: a pruner is a compressor */
    const sw_pruner_ops *pops;
    int n_targets;
    sw_prune_target *targets; /* owned */
};

/* For constructors: base init over `ws` / after `previous`, then config resolution, claims,
 * mask transforms. On failure everything done is undone (the struct itself is the caller's). */
sw_status sw_pruner_init(sw_pruner *p, const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                         sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev);
sw_status sw_pruner_init_from(sw_pruner *p, const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                              sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev);
/* For pruners built from masks instead of a config list: one target per entry (module and
 * target must exist, shapes fit as in mask_transform.h), masks copied and attached. */
sw_status sw_pruner_init_with_masks(sw_pruner *p, const sw_compressor_ops *ops,
                                    const sw_pruner_ops *pops, sw_wrapper_set *ws,
                                    sw_compressor *previous, const sw_masks *masks);
/* Frees the targets (call from ops->free; the base is torn down before ops->free). */
void sw_pruner_deinit(sw_pruner *p);

/* The pruner behind a compressor, or NULL when c is not a pruner. */
sw_pruner *sw_pruner_of(sw_compressor *c);

/* One round of NNI's generate_masks + update_masks over this pruner's targets. */
sw_status sw_pruner_generate_masks(sw_pruner *p);

/* Sets masks of this pruner's targets from `masks` (NNI's update_masks): shapes must fit;
 * entries for targets this pruner does not have are ignored with a warning. */
sw_status sw_pruner_update_masks(sw_pruner *p, const sw_masks *masks);

/* Masks of every pruner in c's fused chain (NNI: every pruning target of the shared
 * wrappers), module -> target, in chain order (oldest first) then target order. */
sw_status sw_pruner_get_masks(const sw_compressor *c, sw_masks *out);

/* This pruner's record for module.target, or NULL. */
sw_prune_target *sw_pruner_find(sw_pruner *p, const char *module, const char *target);

/* Schedulers: sets the goals in effect (sparse_ratio, sparse_threshold, min_, max_sparse_ratio)
 * to the configured ones times `factor` (Linear/AGP; factor in [0, 1]). */
void sw_pruner_scale_goals(sw_pruner *p, double factor);

/* Calls pops->set_schedule; SW_ERR_UNSUPPORTED when the algorithm cannot be scheduled. */
sw_status sw_pruner_set_schedule(sw_pruner *p, long interval_steps, int total_times);

/* Writes the chain's masks (sw_pruner_get_masks) to a masks file; the export op of pruners. */
sw_status sw_pruner_export(sw_compressor *c, const char *path);

#endif
