/* dependency.c - channel and group dependencies over the model graph.
 *
 * NNI traces the model with fx and walks the traced graph; our model is its own graph, so
 * the same walks run over node inputs directly. Channel dependency sets are kept in a
 * union-find over node indices; group counts as per-node lcm / gcd / min accumulators (the
 * lists NNI builds are only ever reduced to those three numbers). */
#include "dependency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_list.h"

/* The layers whose output channels a filter pruner removes. */
static bool is_producer(const sw_node *n) {
    return n->layer->kind == SW_LAYER_CONV2D || n->layer->kind == SW_LAYER_LINEAR;
}

static int channels(const sw_shape *s) {
    return s->ndim ? s->dims[0] : 1;
}

/* NNI stops its upstream search at functions that change the channel count (dim 1 of the
 * batched tensor); modules such as BatchNorm or ReLU are always walked through. Add, Concat
 * and Flatten are functions in PyTorch models. */
static bool breaks_channels(const sw_model *m, const sw_node *n) {
    sw_layer_kind k = n->layer->kind;
    if (k != SW_LAYER_ADD && k != SW_LAYER_CONCAT && k != SW_LAYER_FLATTEN) return false;
    int src = n->inputs[0];
    const sw_shape *in = src == SW_NODE_INPUT ? &m->input_shape : &m->nodes[src].out_shape;
    return channels(in) != channels(&n->out_shape);
}

/* Marks in `found` the nearest Conv2d/Linear producers upstream of node `i`'s inputs. */
static void find_parents(const sw_model *m, int i, bool *found, bool *visited) {
    const sw_node *n = &m->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) {
        int src = n->inputs[j];
        if (src == SW_NODE_INPUT || visited[src]) continue;
        visited[src] = true;
        const sw_node *s = &m->nodes[src];
        if (is_producer(s)) {
            found[src] = true;
            continue;
        }
        if (breaks_channels(m, s)) continue;
        find_parents(m, src, found, visited);
    }
}

/* Union-find with path halving; roots are the smallest index of their set. */
static int uf_find(int *parent, int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
}

static void uf_union(int *parent, int a, int b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a != b) parent[a < b ? b : a] = a < b ? a : b;
}

static long gcd(long a, long b) {
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void sw_dependency_groups_deinit(sw_dependency_groups *g) {
    free(g->group);
    free(g->metric_block);
    *g = (sw_dependency_groups){0};
}

sw_status sw_compress_auto_dependency_groups(const sw_model *m, sw_dependency_groups *out) {
    int n = m->n_nodes;
    *out = (sw_dependency_groups){.n_nodes = n};
    int *parent = malloc((size_t)n * sizeof *parent);
    bool *found = malloc((size_t)n * sizeof *found), *visited = malloc((size_t)n * sizeof *visited);
    bool *in_set = calloc((size_t)n, sizeof *in_set);
    long *lcm_g = malloc((size_t)n * sizeof *lcm_g), *gcd_g = calloc((size_t)n, sizeof *gcd_g);
    long *min_g = malloc((size_t)n * sizeof *min_g);
    out->group = malloc((size_t)n * sizeof *out->group);
    out->metric_block = calloc((size_t)n, sizeof *out->metric_block);
    sw_status st = SW_OK;
    if (!parent || !found || !visited || !in_set || !lcm_g || !gcd_g || !min_g || !out->group ||
        !out->metric_block) {
        st = SW_FAIL(SW_ERR_NOMEM, "dependency analysis: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        parent[i] = i;
        lcm_g[i] = 1;
        min_g[i] = 0;
    }
    for (int i = 0; i < n; i++) {
        const sw_node *nd = &m->nodes[i];
        const sw_layer *l = nd->layer;
        bool depthwise = l->kind == SW_LAYER_CONV2D && l->hp.groups == l->hp.out_channels;
        if (l->kind != SW_LAYER_ADD && !depthwise) continue;
        memset(found, 0, (size_t)n * sizeof *found);
        memset(visited, 0, (size_t)n * sizeof *visited);
        find_parents(m, i, found, visited);
        if (depthwise) found[i] = true;
        int first = -1, count = 0;
        for (int k = 0; k < n; k++) {
            if (!found[k]) continue;
            count++;
            if (first < 0)
                first = k;
            else
                uf_union(parent, first, k);
        }
        if (count > 1)
            for (int k = 0; k < n; k++)
                if (found[k]) in_set[k] = true;
    }
    /* Group counts: each conv records its own (depthwise counts as 1), grouped convs also
     * push theirs onto their producers. */
    for (int i = 0; i < n; i++) {
        const sw_layer *l = m->nodes[i].layer;
        if (l->kind != SW_LAYER_CONV2D) continue;
        long g = l->hp.groups != l->hp.out_channels ? l->hp.groups : 1;
        lcm_g[i] = lcm_g[i] / gcd(lcm_g[i], g) * g;
        gcd_g[i] = gcd(gcd_g[i], g);
        min_g[i] = min_g[i] == 0 || g < min_g[i] ? g : min_g[i];
        if (g <= 1) continue;
        memset(found, 0, (size_t)n * sizeof *found);
        memset(visited, 0, (size_t)n * sizeof *visited);
        find_parents(m, i, found, visited);
        for (int k = 0; k < n; k++) {
            if (!found[k]) continue;
            lcm_g[k] = lcm_g[k] / gcd(lcm_g[k], g) * g;
            gcd_g[k] = gcd(gcd_g[k], g);
            min_g[k] = min_g[k] == 0 || g < min_g[k] ? g : min_g[k];
        }
    }
    for (int i = 0; i < n; i++) {
        /* NNI keeps a layer when max > 1 or min > 1; min is the gcd only if it is one of the
         * counts, else 1. */
        long mn = min_g[i] == gcd_g[i] ? gcd_g[i] : 1;
        if (min_g[i] == 0 || (lcm_g[i] == 1 && mn <= 1)) continue;
        out->metric_block[i] = (int)lcm_g[i];
    }
    /* Number the sets by their first member. */
    int *id = malloc((size_t)n * sizeof *id);
    if (!id) {
        st = SW_FAIL(SW_ERR_NOMEM, "dependency analysis: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) id[i] = -1;
    for (int i = 0; i < n; i++) {
        out->group[i] = -1;
        if (!in_set[i]) continue;
        int root = uf_find(parent, i);
        if (id[root] < 0) id[root] = out->n_groups++;
        out->group[i] = id[root];
    }
    free(id);
done:
    free(parent);
    free(found);
    free(visited);
    free(in_set);
    free(lcm_g);
    free(gcd_g);
    free(min_g);
    if (st != SW_OK) sw_dependency_groups_deinit(out);
    return st;
}

static bool is_selection(const char *key) {
    static const char *const keys[] = {
        "op_types",        "op_names", "op_names_re", "exclude_op_names", "exclude_op_names_re",
        "exclude_op_types"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i], key) == 0) return true;
    return false;
}

/* Keys written by the helper replace the entry's own dependency_group_id and
 * internal_metric_block where the analysis sets them (NNI overwrites them the same way). */
sw_status sw_config_list_with_dependency_groups(const sw_model *model, const cJSON *config_list,
                                                cJSON **out) {
    if (!cJSON_IsArray(config_list))
        return SW_FAIL(SW_ERR_CONFIG, "config list: expected a JSON array of objects");
    sw_dependency_groups g;
    SW_TRY(sw_compress_auto_dependency_groups(model, &g));
    cJSON *list = cJSON_CreateArray();
    bool *sel = malloc(((size_t)model->n_nodes + 1) * sizeof *sel);
    sw_status st = list && sel ? SW_OK : SW_FAIL(SW_ERR_NOMEM, "out of memory");
    int e = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, config_list) {
        if (st != SW_OK) break;
        if (!cJSON_IsObject(entry)) {
            st = SW_FAIL(SW_ERR_CONFIG, "config_list[%d]: expected an object", e);
            break;
        }
        st = sw_config_select(model, entry, e, sel);
        for (int i = 0; i < model->n_nodes && st == SW_OK; i++) {
            if (!sel[i]) continue;
            cJSON *item = cJSON_CreateObject();
            const char *name = model->nodes[i].name;
            cJSON *names = cJSON_CreateStringArray(&name, 1);
            if (!item || !names) {
                cJSON_Delete(item);
                cJSON_Delete(names);
                st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
                break;
            }
            cJSON_AddItemToObject(item, "op_names", names);
            const cJSON *k;
            cJSON_ArrayForEach(k, entry) {
                if (is_selection(k->string)) continue;
                if (g.group[i] >= 0 && strcmp(k->string, "dependency_group_id") == 0) continue;
                if (g.metric_block[i] > 0 && strcmp(k->string, "internal_metric_block") == 0)
                    continue;
                cJSON_AddItemToObject(item, k->string, cJSON_Duplicate(k, 1));
            }
            if (g.group[i] >= 0) {
                char id[32];
                snprintf(id, sizeof id, "dep%d", g.group[i]);
                cJSON_AddStringToObject(item, "dependency_group_id", id);
            }
            if (g.metric_block[i] > 0)
                cJSON_AddNumberToObject(item, "internal_metric_block", g.metric_block[i]);
            cJSON_AddItemToArray(list, item);
        }
        e++;
    }
    free(sel);
    sw_dependency_groups_deinit(&g);
    if (st != SW_OK) {
        cJSON_Delete(list);
        return st;
    }
    *out = list;
    return SW_OK;
}
