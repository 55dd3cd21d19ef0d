/* l2norm.c - L2NormPruner: prune the filters / rows with the smallest L2 norm (reference
 * §3.2). Metric: sqrt(sum w^2) over each block, out_channel by default. One-shot; see norm.h. */
#include "norm.h"
#include "pruners.h"

#include <math.h>

static sw_status l2_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    const sw_tensor *w = sw_prune_target_value(p, t);
    if (!t->has_scaling) {
        for (size_t i = 0; i < w->numel; i++) metric[i] = fabs((double)w->data[i]);
        return SW_OK;
    }
    return sw_scaling_shrink(&t->scaling, w, SW_REDUCE_L2, metric);
}

static const sw_pruner_ops l2_pruner_ops = {
    .metric = l2_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
    .set_schedule = sw_norm_pruner_set_schedule,
};

static const sw_compressor_ops l2_ops = {
    .name = "L2NormPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = sw_norm_pruner_single_compress,
    .fuse_preprocess = sw_norm_pruner_fuse_preprocess,
    .needs_training = sw_norm_pruner_needs_training,
    .export_file = sw_pruner_export,
    .free = sw_norm_pruner_free,
};

sw_status sw_pruner_l2norm_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out) {
    return sw_norm_pruner_new(&l2_ops, &l2_pruner_ops, ws, NULL, config_list, ev, out);
}

sw_status sw_pruner_l2norm_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out) {
    return sw_norm_pruner_new(&l2_ops, &l2_pruner_ops, NULL, previous, config_list, ev, out);
}
