/* l1norm.c - L1NormPruner: prune the filters / rows with the smallest L1 norm (Li et al.,
 * "Pruning Filters for Efficient ConvNets"; reference §3.2).
 *
 * Metric: sum |w| over each block, out_channel blocks by default (one per output filter of a
 * Conv2d, one per row of a Linear). One-shot; see norm.h for compress behaviour. */
#include "norm.h"
#include "pruners.h"

#include <math.h>

static sw_status l1_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    const sw_tensor *w = sw_prune_target_value(p, t);
    if (!t->has_scaling) {
        for (size_t i = 0; i < w->numel; i++) metric[i] = fabs((double)w->data[i]);
        return SW_OK;
    }
    return sw_scaling_shrink(&t->scaling, w, SW_REDUCE_L1, metric);
}

static const sw_pruner_ops l1_pruner_ops = {
    .metric = l1_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
    .set_schedule = sw_norm_pruner_set_schedule,
};

static const sw_compressor_ops l1_ops = {
    .name = "L1NormPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = sw_norm_pruner_single_compress,
    .fuse_preprocess = sw_norm_pruner_fuse_preprocess,
    .needs_training = sw_norm_pruner_needs_training,
    .export_file = sw_pruner_export,
    .free = sw_norm_pruner_free,
};

sw_status sw_pruner_l1norm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out) {
    return sw_norm_pruner_new(&l1_ops, &l1_pruner_ops, ws, NULL, config_list, ev, out);
}

sw_status sw_pruner_l1norm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out) {
    return sw_norm_pruner_new(&l1_ops, &l1_pruner_ops, NULL, previous, config_list, ev, out);
}
