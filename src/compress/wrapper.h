/* wrapper.h - wrappers: the per-node interception points every compressor works through.
 *
 * One sw_wrapper_set per model holds one sw_wrapper per node, created once and shared by every
 * compressor on that model (NNI's _module_wrappers, reference §1.2). A wrapper exposes the
 * node's *targets*: its trainable parameters ("weight", "bias"), its inputs ("_input_0", ...)
 * and its output ("_output_0"). Each target holds an ordered chain of *transforms*, small
 * forward/backward pairs with their own state (a mask, a scale and zero point, a learnable
 * score). A compressor never edits a layer: it attaches transforms and training hooks.
 *
 * Execution (DESIGN.md, "The flow of one training step"), through sw_node_hooks:
 *   forward : inputs  x' = chain_in(x)   (copies; the producer's output is left alone)
 *             params  W' = chain_w(W)    (into step memory; the raw W is the trainable copy)
 *             layer   y  = f(x', W')
 *             output  y' = chain_out(y)  (in place)
 *   backward: dy  <- chain_out^-1(dy')   (in place, reverse order)
 *             the layer writes dW' into step scratch, then dW += chain_w^-1(dW')
 *             dx  <- chain_in^-1(dx')
 * A node without transforms gets no hooks at all: it runs at the bare engine's speed.
 *
 * Order inside one chain follows NNI's patch_helper: observers see the raw value, then
 * fake-quantization, then the pruning mask, then distillation capture. Transforms carry a stage
 * (SW_STAGE_*), so a quantizer attached after a pruner still runs before the mask; transforms
 * of one stage run in attach order.
 *
 * Ownership: the set borrows the model (which must outlive it) and owns wrappers and attached
 * transforms. It is reference-counted because every compressor of a fused chain holds it:
 * sw_wrapper_set_new returns one reference; the last sw_wrapper_set_release frees the set and
 * uninstalls every hook.
 */
#ifndef SW_COMPRESS_WRAPPER_H
#define SW_COMPRESS_WRAPPER_H

#include <stdbool.h>
#include <stddef.h>

#include "../nn/model.h"
#include "warnings.h"

#define SW_TARGET_NAME_MAX 24
#define SW_WRAPPER_MAX_TARGETS (SW_MAX_PARAMS + SW_MAX_INPUTS + 1)

typedef enum sw_target_kind {
    SW_TARGET_PARAM,  /* a trainable parameter of the layer */
    SW_TARGET_INPUT,  /* "_input_<i>" */
    SW_TARGET_OUTPUT, /* "_output_0" */
} sw_target_kind;

/* Where a transform sits in its chain (reference §1.2 patch_helper). Lower runs first. */
typedef enum sw_transform_stage {
    SW_STAGE_OBSERVE = 100,  /* reads the raw value: range observers, LSQ initialisation */
    SW_STAGE_QUANTIZE = 200, /* fake-quantization */
    SW_STAGE_PRUNE = 300,    /* masks, learnable-score masks, Slim factors */
    SW_STAGE_CAPTURE = 400,  /* distillation capture of the final value */
} sw_transform_stage;

typedef struct sw_transform sw_transform;
typedef struct sw_target sw_target;
typedef struct sw_wrapper sw_wrapper;
typedef struct sw_wrapper_set sw_wrapper_set;

/* What a transform is told about the call it takes part in. */
typedef struct sw_transform_call {
    sw_wrapper *wrapper;
    sw_target *target;
    bool training; /* the model's mode during this forward */
    int batch;     /* leading dim of the value (1 for parameters) */
} sw_transform_call;

typedef struct sw_transform_ops {
    const char *name; /* "mask", "fake_quant", ... for the inspector */
    /* y = f(x), elementwise over the target's value; y may alias x (in place). Parameters
     * have their own shape; activations are batched [N, sample...]. Not called for observers
     * when NULL. */
    sw_status (*forward)(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                         sw_tensor *y);
    /* In place on the gradient: on entry g = dL/dy, on exit g = dL/dx. x is the forward input
     * when needs_input, else NULL. May accumulate gradients of the transform's own learnable
     * state (scores, scales). NULL means identity (straight-through). */
    sw_status (*backward)(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                          sw_tensor *g);
    /* Optional: the 0/1 mask this transform applies now, in the target's per-sample shape
     * (parameters: the parameter's shape). Used to bake masks at unwrap, to read masks, and
     * to find channels that are dead downstream. NULL for transforms that are not masks. */
    const float *(*mask)(const sw_transform *t);
    /* Releases `state` (not the transform record itself). May be NULL. */
    void (*free)(sw_transform *t);
    bool needs_input; /* backward reads the forward input: the executor keeps a copy */
    bool observer;    /* forward only reads x; the value passes on unchanged */
} sw_transform_ops;

struct sw_transform {
    const sw_transform_ops *ops;
    int stage;
    const void *owner; /* the compressor (or the set itself) that attached it */
    void *state;       /* owned through ops->free */
    sw_tensor saved;   /* the forward input of this step, when ops->needs_input */
};

struct sw_target {
    char name[SW_TARGET_NAME_MAX]; /* "weight", "_input_0", "_output_0" */
    sw_target_kind kind;
    int index;      /* parameter index in the layer, or input index */
    sw_shape shape; /* parameters: the parameter's shape; activations: per sample */
    int n_tf, cap_tf;
    sw_transform **tf; /* owned, in execution order */
    int n_active;      /* transforms that change the value (not observers) */
    /* Executor state of the step in progress (step memory from the model's arena). */
    sw_tensor eff;       /* effective value of a parameter or input */
    sw_tensor eff_grad;  /* gradient of the effective parameter, before mapping */
    sw_tensor *raw_grad; /* where the mapped parameter gradient is accumulated */
};

struct sw_wrapper {
    sw_wrapper_set *set; /* back pointer */
    int node;            /* index in the model */
    sw_node_hooks hooks; /* installed on the node while it has transforms */
    int n_targets;
    sw_target targets[SW_WRAPPER_MAX_TARGETS];
    int n_tf; /* transforms over all targets */
};

/* One (node, target) configured by some compressor mode ("first config wins per mode"). */
typedef struct sw_target_claim {
    int node;
    char target[SW_TARGET_NAME_MAX];
    int mode;          /* sw_compress_mode of the claiming compressor */
    const void *owner; /* the claiming compressor */
} sw_target_claim;

struct sw_wrapper_set {
    sw_model *model; /* borrowed */
    int refs;
    int n_wrappers;
    sw_wrapper *wrappers; /* owned, one per node, same order */
    int n_claims, cap_claims;
    sw_target_claim *claims; /* owned */
    /* Bumped by every unwrap: compressors compare it to know they were detached. */
    int generation;
    /* Zero pruned channels everywhere downstream (bias, BatchNorm shift): on by default; see
     * dead_channels.h and docs/PRUNING.md. */
    bool zero_downstream;
    struct sw_dead_channels *dead; /* owned: what the last refresh found (dead_channels.c) */
    sw_warnings warnings;          /* from unwrap and refreshes */
};

/* Creates the wrapper set of `model` (finalised by this call if it is not yet). Caller owns
 * one reference. */
sw_status sw_wrapper_set_new(sw_model *model, sw_wrapper_set **out);
void sw_wrapper_set_retain(sw_wrapper_set *ws);
/* Drops a reference; the last one detaches every transform and frees the set. NULL is a
 * no-op. */
void sw_wrapper_set_release(sw_wrapper_set *ws);

/* The wrapper of node `node` (0 <= node < n_wrappers). */
sw_wrapper *sw_wrapper_set_get(sw_wrapper_set *ws, int node);
/* The target named `name` of a wrapper, or NULL. "_input_" / "_output_" alone are not
 * accepted here: canonical names only ("_input_0"). */
sw_target *sw_wrapper_target(sw_wrapper *w, const char *name);
/* The target's kind from its name: "_input_*" -> INPUT, "_output_*" -> OUTPUT, else PARAM. */
sw_target_kind sw_target_kind_of(const char *name);

/* Attaches a transform on target `target` of node `node`, after every transform of a lower
 * or equal stage. Takes ownership of `state` (released through ops->free, also on failure).
 * Installs the node's hooks. *out (may be NULL) receives the transform, valid until it is
 * detached. */
sw_status sw_wrapper_set_attach(sw_wrapper_set *ws, int node, const char *target,
                                const sw_transform_ops *ops, int stage, const void *owner,
                                void *state, sw_transform **out);
/* Detaches and frees one transform; uninstalls the node's hooks when it was the last. */
void sw_wrapper_set_detach(sw_wrapper_set *ws, sw_transform *t);
/* Detaches every transform attached by `owner` and forgets its claims. */
void sw_wrapper_set_detach_owner(sw_wrapper_set *ws, const void *owner);
/* Number of transforms attached over the whole model. */
int sw_wrapper_set_transform_count(const sw_wrapper_set *ws);

/* Claims (node, target) for `mode` on behalf of `owner`. Returns false, and the current
 * claimant through *holder, when another owner has it already. */
bool sw_wrapper_set_claim(sw_wrapper_set *ws, int node, const char *target, int mode,
                          const void *owner, const void **holder);

/* The 0/1 mask in effect on a target: the product of every mask transform on it (`include_
 * derived`: also the set's own downstream-zeroing masks), written into `out` (numel of the
 * target's per-sample shape). Returns false (and leaves out untouched) when the target has no
 * mask transform. */
bool sw_target_mask(const sw_target *t, const sw_wrapper_set *ws, bool include_derived, float *out);

/* Bakes every mask into the weights and removes every transform and hook (our documented
 * deviation from NNI, whose unwrap drops masks): parameter masks multiply the parameter;
 * channel masks on the output of Conv2d/Linear/BatchNorm zero the channel's weights and bias;
 * channel masks on the input of Conv2d/Linear zero the matching weight columns. A mask that
 * cannot be expressed in the weights (e.g. on a ReLU's output) is dropped with a warning in
 * ws->warnings. The model then runs bare. Compressors of the set become detached. */
sw_status sw_wrapper_set_unwrap(sw_wrapper_set *ws);

#endif
