/* prune_setting.h - the pruning mode of config lists: keys, templates, typed settings.
 *
 * Keys (reference §2.2): sparse_ratio [0, 1), sparse_threshold, max_sparse_ratio (0, 1],
 * min_sparse_ratio [0, 1), global_group_id and dependency_group_id (int or string),
 * internal_metric_block (int > 0), granularity, align {module_name, target_name, dims},
 * apply_method (mul, add, bypass).
 *
 * Templates (NNI's PruningSetting): Linear, Conv2d, BatchNorm1d and BatchNorm2d have
 *   "weight": every key above unset, granularity "default", apply_method "mul";
 *   "bias":   align {module_name: null, target_name: "weight", dims: [0]}, apply "mul"
 * so a bias element survives iff some weight of its row survives. Inputs and outputs are not
 * in the templates: prune them by naming them in target_settings.
 */
#ifndef SW_PRUNE_SETTING_H
#define SW_PRUNE_SETTING_H

#include "../config_list.h"
#include "../mask_transform.h"

#define SW_GROUP_KEY_MAX 96
#define SW_MODULE_NAME_MAX 128

typedef struct sw_align {
    bool set;
    char module[SW_MODULE_NAME_MAX]; /* "" = the target's own module */
    char target[SW_TARGET_NAME_MAX];
    int n_dims;
    int dims[SW_MAX_DIMS]; /* may be negative (from the end) */
} sw_align;

/* One target's pruning setting, typed. Goals (ratio, threshold, min, max) may be rescaled by
 * schedulers; the config values stay in the pruner's copy of the original. */
typedef struct sw_prune_setting {
    bool has_ratio, has_threshold, has_max, has_min;
    double sparse_ratio, sparse_threshold, max_sparse_ratio, min_sparse_ratio;
    bool has_global, has_dependency;
    char global_group[SW_GROUP_KEY_MAX]; /* canonical (sw_config_group_key) */
    char dependency_group[SW_GROUP_KEY_MAX];
    char global_label[SW_GROUP_KEY_MAX]; /* as written, for messages */
    char dependency_label[SW_GROUP_KEY_MAX];
    int internal_metric_block; /* 0 = unset */
    sw_granularity granularity;
    sw_align align;
    sw_apply_method apply_method;
} sw_prune_setting;

extern const sw_config_mode sw_prune_config_mode;

/* Reads a merged, validated setting object. */
sw_status sw_prune_setting_from_json(const cJSON *setting, sw_prune_setting *out);

/* A target takes part in metric-based generation iff it has a ratio or a threshold. */
bool sw_prune_setting_active(const sw_prune_setting *s);

#endif
