/* inference_fusion.h - eval-mode chains that run as one kernel: Conv2d [-> BatchNorm2d]
 * [-> Add(residual)] [-> ReLU] [-> MaxPool2d(2)], and Add -> ReLU.
 *
 * In evaluation a BatchNorm2d is a fixed per-channel scale and shift and a ReLU a clamp: each
 * a pass over memory of its own that does almost no arithmetic. Folded into the epilogue of the
 * conv (or Add) before them (tensor/epilogue.h), they are applied while the conv's output is
 * still in cache. The passes weigh most in pruned, sped-up models, whose activations halve
 * with the channels while the conv FLOPs quarter.
 *
 * Two more steps fold when the conv runs on the register-tiled kernel (tensor/conv_tiled.h):
 * a 2x2, stride-2 MaxPool2d at the end of the chain (the pooled map is written straight from
 * the tiles, and the full-size activation, four times larger, is never written or read back),
 * and a residual Add after the BatchNorm whose other input is already computed when the conv
 * runs (a ResNet block without downsampling: the skip is read once in the conv's store instead
 * of a separate pass over both operands). Not both in one chain.
 *
 * A chain qualifies when each later node takes only the node before it as input and each
 * earlier node is read by nothing else. The chain's result is written once, into its last
 * node's output; the earlier nodes' outputs alias it and are not computed. That is why fusion
 * is opt-in (sw_model_set_inference_fusion): for timing and evaluation, not for code that reads
 * intermediate activations. A chain with compression hooks on any of its nodes runs unfused.
 */
#ifndef SW_INFERENCE_FUSION_H
#define SW_INFERENCE_FUSION_H

#include <stdbool.h>

#include "../tensor/status.h"

typedef struct sw_node sw_node;
typedef struct sw_layer sw_layer;

typedef struct sw_fusion_chain {
    int head; /* the Conv2d or Add whose kernel runs */
    int bn;   /* the BatchNorm2d folded into its epilogue, or -1 */
    int relu; /* the ReLU folded, or -1 */
    int add;      /* the residual Add folded, or -1 */
    int residual; /* its other input (a node computed earlier, or SW_NODE_INPUT) */
    int pool;     /* the MaxPool2d(2) folded, or -1 */
    int tail; /* the chain's last node, whose output the kernel writes */
} sw_fusion_chain;

typedef struct sw_fusion_plan {
    int *chain_at;  /* owned, per node: the chain it heads, or -1 */
    int *member_of; /* owned, per node: the chain it is a later node of, or -1 */
    sw_fusion_chain *chains; /* owned */
    int n_chains;
} sw_fusion_plan;

/* Finds the chains of `nodes` (execution order). Caller owns *plan (sw_fusion_plan_free). */
sw_status sw_fusion_plan_build(const sw_node *nodes, int n_nodes, sw_fusion_plan *plan);
void sw_fusion_plan_free(sw_fusion_plan *plan);

/* Whether `chain` can run fused now: no node of it carries hooks. */
bool sw_fusion_chain_ready(const sw_fusion_chain *chain, const sw_node *nodes);

/* The eval-mode map of a BatchNorm2d as y = x * scale + shift, per channel ([C] each). */
void sw_fusion_bn_affine(const sw_layer *bn, float *scale, float *shift);

#endif
