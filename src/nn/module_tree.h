/* module_tree.h - the model's module hierarchy, derived from node names split on dots.
 *
 * "layer1.0.conv1" becomes layer1 > 0 > conv1. Containers (layer1, layer1.0) exist only here,
 * as name prefixes; leaves are graph nodes. Each entry aggregates the parameters and FLOPs of
 * everything below it, which is what `shrinkwrap info` and the workbench's tree show.
 */
#ifndef SW_MODULE_TREE_H
#define SW_MODULE_TREE_H

#include "model.h"

typedef struct sw_module_entry {
    char *path;        /* owned: full dotted name ("layer1.0") */
    const char *label; /* last segment, points into path */
    int depth;         /* 0 for top-level modules */
    int node;          /* graph node index, or -1 for a container */
    int parent;        /* entry index, or -1 */
    int n_children;
    size_t param_count; /* aggregated */
    double flops;       /* aggregated, per sample */
} sw_module_entry;

/* Entries in pre-order (a parent before its children, children in graph order). */
typedef struct sw_module_tree {
    int n;
    sw_module_entry *entries; /* owned */
} sw_module_tree;

/* Builds the tree of a model. Caller owns; sw_module_tree_deinit releases. */
sw_status sw_module_tree_build(const sw_model *model, sw_module_tree *tree);
void sw_module_tree_deinit(sw_module_tree *tree);

#endif
