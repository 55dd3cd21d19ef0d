/* grad_plan.c - liveness intervals of activation gradients, packed first fit. */
#include "grad_plan.h"

#include <stdlib.h>

#include "model.h"

#define ALIGN_FLOATS 16

static size_t align_floats(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* In backward's visiting order node i runs at time n_nodes - 1 - i. Gradient k is live from the
 * time its last consumer runs (time 0 when nothing consumes it) to the time k itself runs. */
typedef struct {
    int begin, end; /* inclusive times */
    size_t size;    /* floats per sample, aligned */
} interval;

static bool overlap_in_time(const interval *a, const interval *b) {
    return a->begin <= b->end && b->begin <= a->end;
}

sw_status sw_grad_plan_build(const sw_node *nodes, int n_nodes, sw_grad_plan *plan) {
    *plan = (sw_grad_plan){0};
    size_t n = n_nodes > 0 ? (size_t)n_nodes : 1;
    plan->offset = calloc(n, sizeof *plan->offset);
    plan->last_consumer = malloc(n * sizeof *plan->last_consumer);
    interval *iv = malloc(n * sizeof *iv);
    int *placed = malloc(n * sizeof *placed); /* node indices in placement order */
    if (!plan->offset || !plan->last_consumer || !iv || !placed) {
        free(iv);
        free(placed);
        sw_grad_plan_free(plan);
        return SW_FAIL(SW_ERR_NOMEM, "cannot plan the gradients of %d nodes", n_nodes);
    }
    for (int k = 0; k < n_nodes; k++) plan->last_consumer[k] = n_nodes;
    for (int i = 0; i < n_nodes; i++)
        for (int j = 0; j < nodes[i].n_inputs; j++) {
            int k = nodes[i].inputs[j];
            if (k == SW_NODE_INPUT) continue;
            if (plan->last_consumer[k] == n_nodes || plan->last_consumer[k] < i)
                plan->last_consumer[k] = i;
        }
    for (int k = 0; k < n_nodes; k++) {
        int lc = plan->last_consumer[k];
        iv[k] = (interval){.begin = lc == n_nodes ? 0 : n_nodes - 1 - lc,
                           .end = n_nodes - 1 - k,
                           .size = align_floats(sw_shape_numel(&nodes[k].out_shape))};
    }
    /* Place in order of first use (the order backward needs them), lowest free offset first. */
    int n_placed = 0;
    for (int t = 0; t < n_nodes; t++)
        for (int k = n_nodes - 1; k >= 0; k--) {
            if (iv[k].begin != t) continue;
            size_t at = 0;
            for (bool moved = true; moved;) {
                moved = false;
                for (int p = 0; p < n_placed; p++) {
                    int q = placed[p];
                    if (!overlap_in_time(&iv[k], &iv[q])) continue;
                    size_t q_end = plan->offset[q] + iv[q].size;
                    if (at < q_end && plan->offset[q] < at + iv[k].size) {
                        at = q_end;
                        moved = true;
                    }
                }
            }
            plan->offset[k] = at;
            if (at + iv[k].size > plan->per_sample) plan->per_sample = at + iv[k].size;
            placed[n_placed++] = k;
        }
    free(iv);
    free(placed);
    return SW_OK;
}

void sw_grad_plan_free(sw_grad_plan *plan) {
    free(plan->offset);
    free(plan->last_consumer);
    *plan = (sw_grad_plan){0};
}
