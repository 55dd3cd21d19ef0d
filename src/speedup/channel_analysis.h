/* channel_analysis.h - which channels of every node the sped-up model keeps, and why.
 *
 * A *position* is one channel of one node's output: channel c of a per-sample [C, H, W] value,
 * feature f of a [F] value. (Index n_nodes stands for the model input.) The analysis answers,
 * for every position, three questions:
 *
 * 1. Is it *dead*, i.e. exactly zero in the masked model? This is the masked-model semantics of
 *    the pruning issue (docs/SPEEDUP.md, "What the masked model computes"), propagated forward
 *    in topological order:
 *      Conv2d/Linear  dead when its weight-mask row is all zero or its _output_0 mask zeroes it
 *                     (its bias is then zeroed too: a pruned channel does not leak a constant);
 *      BatchNorm      dead when its input channel is dead, its weight mask zeroes it, or its
 *                     _output_0 mask does (its shift does not leak either);
 *      ReLU, ReLU6, pools, GAP, Dropout, Identity: dead when the input channel is;
 *      Flatten        feature f is dead when channel f / (H*W) is;
 *      Add            dead when dead in every input;  Concat: as in its input;
 *    and any node's _output_0 mask adds its own zeros.
 *
 * 2. Which positions must be kept *together*? Layers that map channel c to channel c (BN,
 *    activations, pools, Dropout, Identity), Add (all inputs and the output share channel c),
 *    Concat (input j's channel c is output channel offset_j + c) and Flatten (channel c is its
 *    block of H*W features) tie positions into *classes* (union-find): a class is kept or
 *    removed as a whole. Conv2d and Linear cut the ties: their output channels are free.
 *    Conv2d/Linear nodes whose outputs share classes form a *dependency group* (as NNI counts
 *    them, a depthwise Conv2d joins the group of the convs that produce its input).
 *
 * 3. Is it *kept*? The least set that is closed under these rules (a fixed point):
 *      - the model output's and model input's positions are kept;
 *      - a kept output channel o of a Conv2d/Linear keeps every input position i that is alive
 *        and that o reads through a non-zero effective weight (masks applied): this is the
 *        backward propagation; an input channel no kept output reads is removed upstream;
 *      - a grouped Conv2d keeps the same number of input and of output channels in every group
 *        that keeps any (extra channels are un-pruned; a depthwise conv is the case of one input
 *        channel per group);
 *      - every surviving node keeps at least one channel, and nodes whose whole output is
 *        unread disappear (an Add input that is dead in every channel is dropped first, and an
 *        Add left with one input becomes an Identity; a Concat input left with no channel is
 *        dropped).
 *    A kept position that is dead must still be exactly zero in the sped-up model: a
 *    Conv2d/Linear gets a zero weight row and bias there, a BatchNorm zero scale and shift
 *    (*zero*). A dead channel of another layer (its own _output_0 mask) whose consumers are all
 *    Conv2d/Linear is instead ignored by zeroed weight columns (*folded*); anything else is an
 *    error naming the node, because it cannot be realised without a mask layer.
 *
 * Removing a position that is not kept is exact: it is either zero, or read by no kept output
 * with a non-zero weight. Hence the sped-up model computes exactly what the masked model does.
 */
#ifndef SW_SPEEDUP_CHANNEL_ANALYSIS_H
#define SW_SPEEDUP_CHANNEL_ANALYSIS_H

#include "mask_set.h"

/* How a node relates its input channels to its output channels. */
typedef enum sw_channel_role {
    SW_ROLE_CUT,     /* Conv2d with groups 1, Linear on a [F] sample: outputs are free */
    SW_ROLE_GROUPED, /* Conv2d with groups > 1 (depthwise included) */
    SW_ROLE_TIED,    /* channel c -> channel c: BatchNorm, ReLU(6), pools, Dropout, Identity */
    SW_ROLE_FLATTEN, /* channel c -> its block of features */
    SW_ROLE_ADD,     /* channel c of every input -> channel c */
    SW_ROLE_CONCAT,  /* channel c of input j -> channel offset_j + c */
    SW_ROLE_OPAQUE,  /* Linear over a multi-dim sample: nothing shrinks through it */
} sw_channel_role;

typedef struct sw_channel_options {
    /* Refuse (SW_ERR_CONFIG, naming the modules) when a dependency group's masks disagree, so
     * that a channel pruned by one member must be un-pruned because another keeps it. Off: the
     * union is kept and the pruned member outputs zeros there (NNI unions them too). */
    bool forbid_union;
} sw_channel_options;

typedef struct sw_channel_analysis {
    const sw_model *model; /* borrowed; must outlive the analysis */
    int n_nodes;
    int n_pos;
    /* Per node; index n_nodes is the model input. */
    int *n_ch;             /* [n_nodes + 1] channels of the output (per-sample dim 0) */
    int *base;             /* [n_nodes + 1] first position */
    sw_channel_role *role; /* [n_nodes] */
    unsigned char *active; /* [n_nodes * SW_MAX_INPUTS] the input edge survives */
    unsigned char *reach;  /* [n_nodes] the node survives (reaches the output) */
    /* Per position. */
    int *node_of;          /* [n_pos] node index (n_nodes for the model input) */
    unsigned char *dead;   /* [n_pos] zero in the masked model */
    unsigned char *kept;   /* [n_pos] present in the sped-up model */
    unsigned char *zero;   /* [n_pos] kept, dead, realised by zero parameters */
    unsigned char *folded; /* [n_pos] kept, dead, realised by zeroed consumer columns */
    int *cls;              /* [n_pos] class representative */
    /* Effective parameters: eff[node * SW_MAX_PARAMS + p] is an owned copy of trainable
     * parameter p of a Conv2d/Linear/BatchNorm with its masks applied (and, for Conv2d/Linear,
     * columns of channel-masked inputs zeroed); NULL for other nodes and for buffers. */
    float **eff;
    /* Per node: input channels whose weight columns the sped-up layer zeroes (folded channels
     * of the producer), [n_ch of input 0] or NULL. */
    unsigned char **zero_col;
    /* Grouped Conv2d after balancing: kept channels per kept group, and kept groups. */
    int *group_in, *group_out, *group_count; /* [n_nodes] */
    /* Dependency groups: dep_group[node] = group id, or -1 for a node that is not a Conv2d or
     * Linear sharing output channels with another one. */
    int *dep_group;
    int n_dep_groups;
    /* Dead Conv2d/Linear output channels kept as zeros (un-pruned by Add unions, group
     * balancing, or the at-least-one-channel rule). */
    int n_unpruned;
} sw_channel_analysis;

/* Analyses `model` under `masks` (checked against the model first). The model is borrowed and
 * must not change while the analysis lives. Errors: masks that do not fit (SW_ERR_SHAPE,
 * SW_ERR_NOT_FOUND), activation masks that zero parts of channels or sit where speedup cannot
 * honour them (SW_ERR_UNSUPPORTED), disagreeing dependency groups with forbid_union
 * (SW_ERR_CONFIG); each names the module. Caller owns *out. `opt` may be NULL (defaults). */
sw_status sw_channel_analysis_run(const sw_model *model, const sw_mask_set *masks,
                                  const sw_channel_options *opt, sw_channel_analysis **out);
void sw_channel_analysis_free(sw_channel_analysis *a);

/* Positions of node `node` (n_nodes = the model input) that are kept; writes their channel
 * indices, ascending, to idx (room for n_ch[node]) when idx is not NULL. */
int sw_channel_analysis_kept(const sw_channel_analysis *a, int node, int *idx);
/* Dead channels of node `node`'s output. */
int sw_channel_analysis_dead_count(const sw_channel_analysis *a, int node);
/* Dead channels of `node` that are nonetheless kept (un-pruned: they output zeros). */
int sw_channel_analysis_unpruned_count(const sw_channel_analysis *a, int node);
/* The producer index of input j of node i (n_nodes for the model input). */
int sw_channel_analysis_source(const sw_channel_analysis *a, int node, int j);

#endif
