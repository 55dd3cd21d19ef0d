/* module_tree.c - building the pre-order module tree from dotted node names. */
#include "module_tree.h"

#include <stdlib.h>
#include <string.h>

/* Finds the entry with exactly this path among entries[0..n), or -1. Linear: models here have
 * at most a few hundred modules, and the tree is built once per model. */
static int find_entry(const sw_module_tree *t, const char *path, size_t len) {
    for (int i = 0; i < t->n; i++)
        if (strlen(t->entries[i].path) == len && strncmp(t->entries[i].path, path, len) == 0)
            return i;
    return -1;
}

static sw_status append_entry(sw_module_tree *t, int *cap, const char *path, size_t len,
                              int depth, int parent, int node, int *index) {
    if (t->n == *cap) {
        int grown_cap = *cap ? *cap * 2 : 32;
        sw_module_entry *grown = realloc(t->entries, (size_t)grown_cap * sizeof *grown);
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "cannot grow the module tree");
        t->entries = grown;
        *cap = grown_cap;
    }
    sw_module_entry *e = &t->entries[t->n];
    *e = (sw_module_entry){.depth = depth, .node = node, .parent = parent};
    e->path = strndup(path, len);
    if (!e->path) return SW_FAIL(SW_ERR_NOMEM, "cannot copy a module name");
    const char *dot = strrchr(e->path, '.');
    e->label = dot ? dot + 1 : e->path;
    if (parent >= 0) t->entries[parent].n_children++;
    *index = t->n++;
    return SW_OK;
}

/* Insertion keeps pre-order only if children follow their parents contiguously; graph order
 * can interleave containers (a residual block's nodes are contiguous in our builders, but not
 * necessarily in a user graph), so entries are collected first and ordered afterwards. */
static void order_preorder(sw_module_tree *t, int entry, int *out, int *at) {
    out[(*at)++] = entry;
    for (int i = 0; i < t->n; i++)
        if (t->entries[i].parent == entry) order_preorder(t, i, out, at);
}

sw_status sw_module_tree_build(const sw_model *model, sw_module_tree *tree) {
    *tree = (sw_module_tree){0};
    int cap = 0;
    sw_status st = SW_OK;
    for (int i = 0; i < model->n_nodes && st == SW_OK; i++) {
        const sw_node *node = &model->nodes[i];
        const char *name = node->name;
        int parent = -1, depth = 0;
        /* Create (or find) every prefix container, then the leaf. */
        for (const char *p = name;; depth++) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - name) : strlen(name);
            int found = find_entry(tree, name, len);
            if (found < 0) {
                st = append_entry(tree, &cap, name, len, depth, parent, dot ? -1 : i, &found);
                if (st != SW_OK) break;
            } else if (!dot) {
                tree->entries[found].node = i; /* a node also named like a container */
            }
            parent = found;
            if (!dot) break;
            p = dot + 1;
        }
        /* The leaf's parameters and FLOPs count for it and every container above it. */
        for (int a = parent; st == SW_OK && a >= 0; a = tree->entries[a].parent) {
            tree->entries[a].param_count += node->param_count;
            tree->entries[a].flops += node->flops;
        }
    }
    if (st != SW_OK) {
        sw_module_tree_deinit(tree);
        return st;
    }
    /* Reorder into pre-order, remapping parent indices. */
    int *order = malloc((size_t)(tree->n ? tree->n : 1) * sizeof *order);
    int *where = malloc((size_t)(tree->n ? tree->n : 1) * sizeof *where);
    sw_module_entry *sorted = malloc((size_t)(tree->n ? tree->n : 1) * sizeof *sorted);
    if (!order || !where || !sorted) {
        free(order);
        free(where);
        free(sorted);
        sw_module_tree_deinit(tree);
        return SW_FAIL(SW_ERR_NOMEM, "cannot order the module tree");
    }
    int at = 0;
    for (int i = 0; i < tree->n; i++)
        if (tree->entries[i].parent < 0) order_preorder(tree, i, order, &at);
    for (int k = 0; k < tree->n; k++) where[order[k]] = k;
    for (int k = 0; k < tree->n; k++) {
        sorted[k] = tree->entries[order[k]];
        if (sorted[k].parent >= 0) sorted[k].parent = where[sorted[k].parent];
    }
    free(tree->entries);
    tree->entries = sorted;
    free(order);
    free(where);
    return SW_OK;
}

void sw_module_tree_deinit(sw_module_tree *tree) {
    for (int i = 0; i < tree->n; i++) free(tree->entries[i].path);
    free(tree->entries);
    *tree = (sw_module_tree){0};
}
