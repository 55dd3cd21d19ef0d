/* inference_fusion.c - finding Conv2d/Add chains that eval mode runs as one kernel. */
#include "inference_fusion.h"

#include <math.h>
#include <stdlib.h>

#include "model.h"

/* The only consumer of node k, or -1 when it has none or several (an input read twice by one
 * node counts twice). */
static int sole_consumer(const int *n_consumers, const int *consumer, int k) {
    return n_consumers[k] == 1 ? consumer[k] : -1;
}

static bool single_input_from(const sw_node *node, int k) {
    return node->n_inputs == 1 && node->inputs[0] == k;
}

sw_status sw_fusion_plan_build(const sw_node *nodes, int n_nodes, sw_fusion_plan *plan) {
    *plan = (sw_fusion_plan){0};
    size_t n = n_nodes > 0 ? (size_t)n_nodes : 1;
    plan->chain_at = malloc(n * sizeof *plan->chain_at);
    plan->member_of = malloc(n * sizeof *plan->member_of);
    plan->chains = malloc(n * sizeof *plan->chains);
    int *n_consumers = calloc(n, sizeof *n_consumers), *consumer = malloc(n * sizeof *consumer);
    if (!plan->chain_at || !plan->member_of || !plan->chains || !n_consumers || !consumer) {
        free(n_consumers);
        free(consumer);
        sw_fusion_plan_free(plan);
        return SW_FAIL(SW_ERR_NOMEM, "cannot plan the inference fusion of %d nodes", n_nodes);
    }
    for (int i = 0; i < n_nodes; i++) {
        plan->chain_at[i] = plan->member_of[i] = -1;
        for (int j = 0; j < nodes[i].n_inputs; j++) {
            int k = nodes[i].inputs[j];
            if (k == SW_NODE_INPUT) continue;
            n_consumers[k]++;
            consumer[k] = i;
        }
    }
    for (int i = 0; i < n_nodes; i++) {
        sw_layer_kind kind = nodes[i].layer->kind;
        bool conv = kind == SW_LAYER_CONV2D;
        bool add = kind == SW_LAYER_ADD && nodes[i].n_inputs == 2;
        if (!conv && !add) continue;
        sw_fusion_chain c = {.head = i, .bn = -1, .relu = -1, .tail = i};
        int next = sole_consumer(n_consumers, consumer, c.tail);
        if (conv && next >= 0 && nodes[next].layer->kind == SW_LAYER_BATCHNORM2D &&
            single_input_from(&nodes[next], c.tail)) {
            c.bn = c.tail = next;
            next = sole_consumer(n_consumers, consumer, c.tail);
        }
        if (next >= 0 && nodes[next].layer->kind == SW_LAYER_RELU &&
            single_input_from(&nodes[next], c.tail))
            c.relu = c.tail = next;
        if (c.tail == i) continue;
        plan->chain_at[i] = plan->n_chains;
        if (c.bn >= 0) plan->member_of[c.bn] = plan->n_chains;
        if (c.relu >= 0) plan->member_of[c.relu] = plan->n_chains;
        plan->chains[plan->n_chains++] = c;
    }
    free(n_consumers);
    free(consumer);
    return SW_OK;
}

void sw_fusion_plan_free(sw_fusion_plan *plan) {
    free(plan->chain_at);
    free(plan->member_of);
    free(plan->chains);
    *plan = (sw_fusion_plan){0};
}

bool sw_fusion_chain_ready(const sw_fusion_chain *chain, const sw_node *nodes) {
    return !nodes[chain->head].hooks && (chain->bn < 0 || !nodes[chain->bn].hooks) &&
           (chain->relu < 0 || !nodes[chain->relu].hooks);
}

void sw_fusion_bn_affine(const sw_layer *bn, float *scale, float *shift) {
    const float *gamma = bn->params[0].value.data, *beta = bn->params[1].value.data;
    const float *mean = bn->params[2].value.data, *var = bn->params[3].value.data;
    for (int c = 0; c < bn->hp.num_features; c++) {
        /* the same invstd as the layer's own evaluation forward */
        float invstd = (float)(1.0 / sqrt((double)var[c] + (double)bn->hp.eps));
        scale[c] = invstd * gamma[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
}
