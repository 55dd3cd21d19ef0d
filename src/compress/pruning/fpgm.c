/* fpgm.c - FPGMPruner: filter pruning via the geometric median (He et al., 2019; reference
 * §3.2).
 *
 * The filters nearest the geometric median of a layer are the most replaceable by the others.
 * NNI approximates "distance to the median" by the summed distance to every filter: with the
 * blocks of a target laid out as rows x_i (out_channel: one row per output filter),
 *
 *   metric_i = sum_j || x_i - x_j ||_2
 *
 * and the smallest go first. O(rows^2 * row length), accumulated in double. Needs blocks. */
#include "norm.h"
#include "pruners.h"

#include <math.h>
#include <stdlib.h>

static sw_status fpgm_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    const sw_tensor *w = sw_prune_target_value(p, t);
    size_t block_numel = 0;
    sw_shape grid;
    SW_TRY(sw_scaling_grid(&t->scaling, &w->shape, &grid, &block_numel));
    size_t rows = sw_shape_numel(&grid);
    double *x = malloc(rows * block_numel * sizeof *x);
    if (!x) return SW_FAIL(SW_ERR_NOMEM, "FPGM: out of memory for %zu x %zu", rows, block_numel);
    sw_status st = sw_scaling_gather(&t->scaling, w, x);
    if (st != SW_OK) {
        free(x);
        return st;
    }
    for (size_t i = 0; i < rows; i++) metric[i] = 0.0;
    /* Distances are symmetric: compute each pair once. */
    for (size_t i = 0; i < rows; i++) {
        const double *xi = x + i * block_numel;
        for (size_t j = i + 1; j < rows; j++) {
            const double *xj = x + j * block_numel;
            double ss = 0.0;
            for (size_t e = 0; e < block_numel; e++) {
                double d = xi[e] - xj[e];
                ss += d * d;
            }
            double dist = sqrt(ss);
            metric[i] += dist;
            metric[j] += dist;
        }
    }
    free(x);
    return SW_OK;
}

static const sw_pruner_ops fpgm_pruner_ops = {
    .metric = fpgm_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
    .needs_blocks = true,
    .set_schedule = sw_norm_pruner_set_schedule,
};

static const sw_compressor_ops fpgm_ops = {
    .name = "FPGMPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = sw_norm_pruner_single_compress,
    .fuse_preprocess = sw_norm_pruner_fuse_preprocess,
    .needs_training = sw_norm_pruner_needs_training,
    .export_file = sw_pruner_export,
    .free = sw_norm_pruner_free,
};

sw_status sw_pruner_fpgm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                             sw_compressor **out) {
    return sw_norm_pruner_new(&fpgm_ops, &fpgm_pruner_ops, ws, NULL, config_list, ev, out);
}

sw_status sw_pruner_fpgm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                         sw_evaluator *ev, sw_compressor **out) {
    return sw_norm_pruner_new(&fpgm_ops, &fpgm_pruner_ops, NULL, previous, config_list, ev, out);
}
