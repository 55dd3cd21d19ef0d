/* dependency.h - channel dependency groups found from the model graph (NNI's
 * auto_set_denpendency_group_ids, reference §6).
 *
 * Channel dependency: layers whose output channels must be pruned together.
 *   - The inputs of an Add: its nearest upstream Conv2d/Linear producers, searched through
 *     BatchNorm, ReLU, pools, Dropout, Identity and other Adds, and through Flatten/Concat only
 *     where they keep the channel count.
 *   - A depthwise Conv2d (groups == out_channels) and its nearest upstream producers.
 * Sets sharing a member merge. Group dependency: a grouped (not depthwise) Conv2d with g groups
 * asks its own filters and its producers' to split into g equal parts; a layer's
 * internal_metric_block is the lcm of every such count (and of its own groups).
 *
 * The UI shows these groups, speedup needs them to keep shapes consistent, and pruning configs
 * get them through sw_config_list_with_dependency_groups.
 */
#ifndef SW_COMPRESS_DEPENDENCY_H
#define SW_COMPRESS_DEPENDENCY_H

#include <cjson/cJSON.h>

#include "../nn/model.h"

typedef struct sw_dependency_groups {
    int n_nodes;
    int n_groups;
    int *group;        /* owned, per node: channel-dependency group 0..n_groups-1, or -1 */
    int *metric_block; /* owned, per node: internal_metric_block (> 1), or 0 when none */
} sw_dependency_groups;

/* Analyses `model`. Groups are numbered by their first member in node order. Caller deinits. */
sw_status sw_compress_auto_dependency_groups(const sw_model *model, sw_dependency_groups *out);
void sw_dependency_groups_deinit(sw_dependency_groups *g);

/* NNI's helper for config lists: every entry becomes one entry per selected module,
 * {"op_names": [module], <the entry's other keys>, "dependency_group_id": "dep<k>",
 * "internal_metric_block": n}, the last two only where they apply. Caller owns *out. */
sw_status sw_config_list_with_dependency_groups(const sw_model *model, const cJSON *config_list,
                                                cJSON **out);

#endif
