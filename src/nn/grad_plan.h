/* grad_plan.h - where each node's activation gradient lives during backward.
 *
 * Backward visits the nodes in reverse. The gradient of node k's output is first written by the
 * last node that consumes k (the first consumer that backward visits) and last read by k's own
 * backward; outside that interval its memory is free. The plan packs all these intervals into
 * one block, first fit in visiting order, so a chain needs about two activations' worth of
 * gradient memory instead of one per node (the ResNet's training RSS roughly halves).
 *
 * Offsets are in floats per sample, 16-float (64-byte) aligned: node k's gradient at batch N
 * starts at offset[k] * N in a block of per_sample * N floats.
 */
#ifndef SW_GRAD_PLAN_H
#define SW_GRAD_PLAN_H

#include <stddef.h>

#include "../tensor/status.h"

typedef struct sw_node sw_node;

typedef struct sw_grad_plan {
    size_t *offset;     /* owned, per node: floats per sample from the block start */
    int *last_consumer; /* owned, per node: index of the last node reading its output, or
                           n_nodes when none does (its gradient is zero from the start) */
    size_t per_sample;  /* block size, floats per sample */
} sw_grad_plan;

/* Plans the gradients of `nodes` (execution order, inputs before consumers). On success the
 * caller owns *plan and releases it with sw_grad_plan_free. */
sw_status sw_grad_plan_build(const sw_node *nodes, int n_nodes, sw_grad_plan *plan);
void sw_grad_plan_free(sw_grad_plan *plan);

#endif
