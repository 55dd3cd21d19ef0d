/* inference_fusion.c - finding Conv2d/Add chains that eval mode runs as one kernel. */
#include "inference_fusion.h"

#include <math.h>
#include <stdlib.h>

#include "../tensor/conv_tiled.h"
#include "model.h"

/* The only consumer of node k, or -1 when it has none or several (an input read twice by one
 * node counts twice). */
static int sole_consumer(const int *n_consumers, const int *consumer, int k) {
    return n_consumers[k] == 1 ? consumer[k] : -1;
}

static bool single_input_from(const sw_node *node, int k) {
    return node->n_inputs == 1 && node->inputs[0] == k;
}

/* Whether the conv `head` runs on the tiled kernel, the only one that can pool its output or
 * add a residual. Only stride-1 heads: for them the kernel's choice depends on the layer alone,
 * never on the image size (a strided one's phase planes do), so the plan made at finalize
 * holds for every input. */
static bool tiled_head(const sw_layer *head) {
    const sw_layer_hparams *c = &head->hp;
    if (c->stride[0] != 1 || c->stride[1] != 1) return false;
    sw_conv2d_desc d = {.batch = 1, .out_channels = c->out_channels, .groups = c->groups,
                        .geom = {.channels = c->in_channels, .kernel_h = c->kernel[0],
                                 .kernel_w = c->kernel[1], .stride_h = c->stride[0],
                                 .stride_w = c->stride[1], .pad_h = c->padding[0],
                                 .pad_w = c->padding[1], .dil_h = c->dilation[0],
                                 .dil_w = c->dilation[1]}};
    return sw_conv_tiled_suits(&d, SW_CONV2D_FORWARD);
}

/* Whether `pool` is a plain MaxPool2d(2). */
static bool plain_pool(const sw_layer *pool) {
    const sw_layer_hparams *p = &pool->hp;
    return pool->kind == SW_LAYER_MAXPOOL2D && p->kernel[0] == 2 && p->kernel[1] == 2 &&
           p->stride[0] == 2 && p->stride[1] == 2 && !p->padding[0] && !p->padding[1] &&
           p->dilation[0] == 1 && p->dilation[1] == 1;
}

/* The other input of `add` when it is a two-input Add of `tail` and something computed before
 * the chain's head `head` (or the model input); -2 when it is not. */
static int earlier_residual(const sw_node *add, int tail, int head) {
    if (add->layer->kind != SW_LAYER_ADD || add->n_inputs != 2) return -2;
    int a = add->inputs[0], b = add->inputs[1];
    if (a == b || (a != tail && b != tail)) return -2;
    int other = a == tail ? b : a;
    return other == SW_NODE_INPUT || other < head ? other : -2;
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
        if (plan->member_of[i] >= 0) continue; /* folded into an earlier chain (an Add) */
        sw_layer_kind kind = nodes[i].layer->kind;
        bool conv = kind == SW_LAYER_CONV2D;
        bool add = kind == SW_LAYER_ADD && nodes[i].n_inputs == 2;
        if (!conv && !add) continue;
        sw_fusion_chain c = {.head = i, .bn = -1, .add = -1, .residual = -2, .relu = -1,
                             .pool = -1, .tail = i};
        const bool tiled = conv && tiled_head(nodes[i].layer);
        int next = sole_consumer(n_consumers, consumer, c.tail);
        if (conv && next >= 0 && nodes[next].layer->kind == SW_LAYER_BATCHNORM2D &&
            single_input_from(&nodes[next], c.tail)) {
            c.bn = c.tail = next;
            next = sole_consumer(n_consumers, consumer, c.tail);
        }
        if (tiled && next >= 0) {
            int r = earlier_residual(&nodes[next], c.tail, i);
            if (r != -2) {
                c.add = c.tail = next;
                c.residual = r;
                next = sole_consumer(n_consumers, consumer, c.tail);
            }
        }
        if (next >= 0 && nodes[next].layer->kind == SW_LAYER_RELU &&
            single_input_from(&nodes[next], c.tail))
            c.relu = c.tail = next;
        if (tiled && c.add < 0) {
            next = sole_consumer(n_consumers, consumer, c.tail);
            if (next >= 0 && single_input_from(&nodes[next], c.tail) &&
                plain_pool(nodes[next].layer))
                c.pool = c.tail = next;
        }
        if (c.tail == i) continue;
        plan->chain_at[i] = plan->n_chains;
        if (c.bn >= 0) plan->member_of[c.bn] = plan->n_chains;
        if (c.add >= 0) plan->member_of[c.add] = plan->n_chains;
        if (c.relu >= 0) plan->member_of[c.relu] = plan->n_chains;
        if (c.pool >= 0) plan->member_of[c.pool] = plan->n_chains;
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
           (chain->add < 0 || !nodes[chain->add].hooks) &&
           (chain->relu < 0 || !nodes[chain->relu].hooks) &&
           (chain->pool < 0 || !nodes[chain->pool].hooks);
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
