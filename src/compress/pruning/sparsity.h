/* sparsity.h - from metrics to block masks: NNI's mask generation rules (reference §3.1).
 *
 * Every pruner computes a metric per block of each active target (smaller = less important)
 * and hands them here. Rules run in NNI's order; masks of several rules on one target are
 * AND-ed:
 *
 *   1. threshold  (sparse_threshold): keep blocks with metric >= threshold; if the resulting
 *      sparsity is below min_sparse_ratio or above max_sparse_ratio, redo with the ratio rule
 *      at that bound.
 *   2. dependency (dependency_group_id): all members share one sparse_ratio and one mask; the
 *      group metric is the mean of the members' metrics; B = lcm(1, internal_metric_block...)
 *      splits it into B equal rows ([B, -1]) and each row masks its floor(numel/B * ratio)
 *      smallest entries (group convs keep every group equally pruned).
 *   3. global     (global_group_id, not in a dependency group): members share sparse_ratio;
 *      k = floor(total elements * ratio) elements are masked, where a block weighs
 *      numel(target) / numel(metric) elements. The threshold is found as NNI finds it, with a
 *      bounded max-heap visiting members in order (the result depends on that order when
 *      block weights differ); blocks with metric >= threshold survive (ties survive).
 *      If k is at most the sum of the members' min_sparse_ratio counts, each member is pruned
 *      at its min; if at least the sum of max caps, at its max (NNI uses 0 for a member
 *      without max here; we use 1, which is what the cap sum means). Otherwise each member's
 *      sparsity is clamped to [min, max] afterwards (NNI does not enforce them here; its
 *      documentation says max_sparse_ratio limits a target in global pruning).
 *   4. ratio      (sparse_ratio, the rest): r = clamp(ratio, min or 0, max or 1); r == 0
 *      keeps all, r == 1 masks all, else the floor(numel(metric) * r) smallest blocks go.
 *   5. align      (align, the rest): the mask of another target generated in this call,
 *      reduced to `dims` (a position survives if anything of it survives), becomes this
 *      target's block mask (a bias follows its weight's rows).
 *
 * Counts use floor of a double product, as Python's int() does; ties in top-k are broken by
 * position (lower index masked first). Metrics are doubles.
 */
#ifndef SW_SPARSITY_H
#define SW_SPARSITY_H

#include "prune_setting.h"

typedef struct sw_sparsity_target {
    const char *module; /* node name (for align lookup and messages) */
    const char *name;   /* target name */
    const sw_prune_setting *setting;
    sw_shape shape; /* the target's value shape (activations: [1, sample...]) */
    bool has_scaling;
    sw_scaling scaling;
    sw_shape grid;        /* block grid (keepdim); == shape when element-wise */
    const double *metric; /* grid numel; NULL when not active */
    float *block_mask;    /* out: grid numel, 0/1 */
    bool generated;       /* out: a rule wrote block_mask in this call */
} sw_sparsity_target;

/* Applies the rules to n targets. Fails (SW_ERR_CONFIG) on inconsistent groups, naming the
 * group and the members. */
sw_status sw_sparsity_generate(sw_sparsity_target *targets, int n);

/* The ratio rule alone on one metric viewed as [rows, -1]: writes 0 at the
 * floor(numel/rows * ratio) smallest entries of each row, 1 elsewhere. */
void sw_sparsity_ratio_mask(const double *metric, size_t numel, int rows, double ratio,
                            float *mask);

/* The global threshold of NNI's heap search: members' metrics in order, weights in elements
 * per block, k elements to mask. */
double sw_sparsity_global_threshold(const double *const *metrics, const size_t *numels,
                                    const size_t *weights, int n_members, size_t k);

#endif
