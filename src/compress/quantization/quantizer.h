/* quantizer.h - the quantizer base: targets, their scale and zero point, the fake-quant chain.
 *
 * A quantizer resolves its config list (quantization mode, quant_setting.h), claims its
 * (module, target) pairs on the wrapper set (a pair already claimed by an earlier quantizer keeps
 * that one's configuration; this one's is dropped with a warning: NNI's "first config wins per
 * mode") and attaches two transforms per target, which is NNI's patch_helper order (§1.2):
 *
 *   stage OBSERVE   "quant_observe": reads the raw value and lets the algorithm track it
 *                   (QAT's EMA of min/max and its scale update, PTQ's running min/max, LSQ's
 *                   initialisation, DoReFa's per-batch input range);
 *   stage QUANTIZE  "fake_quant": applies the target's method with the scale and zero point in
 *                   effect; passes the value through while the scale is unset (NNI's None).
 *
 * A pruner's mask (stage PRUNE) and a distiller's capture (stage CAPTURE) on the same target
 * therefore see the fake-quantized value, whichever compressor was built first: a pruned
 * channel's quantized weights stay exactly zero.
 *
 * Scales, zero points and tracked ranges have NNI's block shapes: one value per block of the
 * granularity, kept with the target's rank ("keepdim"): a weight [O, I, kh, kw] per
 * out_channel has [O, 1, 1, 1]; an activation [N, C, H, W] per_channel [1, C, 1, 1]; per
 * tensor is [1]. Activations are scaled as NNI tracks them, batched, so a granularity must keep
 * the batch dimension whole.
 *
 * Training: the quantizer's sw_train_hooks add the learnable scales (LSQ, LSQ+) to the
 * optimizer as one parameter group at train begin (NNI's patch_optim_param_group) and count
 * optimizer steps after each step (NNI's after-step task) before the algorithm's own after-step
 * work. The step counter lives as long as the quantizer (NNI's current_step).
 *
 * Algorithms embed sw_quantizer as their first member; new algorithms are new files giving a
 * compressor vtable and the small sw_quantizer_ops below.
 */
#ifndef SW_COMPRESS_QUANTIZER_H
#define SW_COMPRESS_QUANTIZER_H

#include "../compressor.h"
#include "fake_quant.h"
#include "quant_setting.h"

/* NNI's quantization apply methods. */
typedef enum sw_quant_method {
    SW_QUANT_BYPASS,
    SW_QUANT_CLAMP_ROUND,
    SW_QUANT_QAT_CLAMP_ROUND,
    SW_QUANT_LSQ_CLAMP_ROUND,
    SW_QUANT_LSQ_PLUS_CLAMP_ROUND,
    SW_QUANT_DOREFA_WEIGHT,
    SW_QUANT_DOREFA_OUTPUT,
    SW_QUANT_BNN,
} sw_quant_method;

/* NNI's name of a method: "clamp_round", "qat_clamp_round", ... */
const char *sw_quant_method_name(sw_quant_method m);

typedef struct sw_quant_target {
    int node;
    const char *module;            /* node name (borrowed from the model) */
    char name[SW_TARGET_NAME_MAX]; /* "weight", "bias", "_input_0", "_output_0" */
    sw_target_kind kind;
    int param_index; /* parameters: index in the layer; -1 otherwise */
    int entry;       /* config entry it comes from (-1: loaded from a calibration) */
    sw_quant_setting setting;
    int qmin, qmax; /* the dtype's integer range */
    sw_quant_method method;
    bool has_scaling; /* per block; false = per tensor */
    sw_scaling scaling;
    sw_shape grid;   /* block shape (keepdim; [1] per tensor); activations: batch dim 1 */
    size_t n_blocks; /* numel(grid) */
    /* Block values, n_blocks each. scale/zero_point point into the quantizer's learnable
     * array for LSQ/LSQ+, else into `store`. */
    float *scale, *zero_point;
    float *tracked_min, *tracked_max;
    float *dscale, *dzero_point; /* learnable only: their gradients (in the learnable array) */
    bool has_scale;              /* scale and zero point are set (NNI: not None) */
    bool has_tracked;            /* tracked_min/max are set */
    float *store;                /* owned: 4 * n_blocks floats behind the non-learnable pointers */
    /* The attached transforms; stale once an unwrap detached them (sw_compressor_is_detached). */
    sw_transform *observe_tf, *quant_tf;
} sw_quant_target;

typedef struct sw_quantizer sw_quantizer;

typedef struct sw_quantizer_ops {
    /* Reads the raw value x of target t (batched for activations) before fake-quantization:
     * tracking, scale updates, initialisation. NULL = nothing to observe. */
    sw_status (*observe)(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                         const sw_tensor *x);
    /* After each optimizer step, once the step counter has been increased. May be NULL. */
    sw_status (*after_step)(sw_quantizer *q, sw_train_state *st);
    /* The method a target starts with. */
    sw_quant_method (*initial_method)(const sw_quantizer *q, const sw_quant_target *t);
    /* Scales (and with it zero points) are trainable parameters (LSQ, LSQ+). */
    bool learnable_scale, learnable_zero_point;
    /* Validates one target after setup (scheme, granularity, module kind); may add warnings.
     * May be NULL. */
    sw_status (*check_target)(sw_quantizer *q, const sw_quant_target *t);
} sw_quantizer_ops;

struct sw_quantizer {
    sw_compressor base; /* first: a quantizer is a compressor */
    const sw_quantizer_ops *qops;
    int n_targets;
    sw_quant_target *targets; /* owned */
    /* Learnable scales and zero points of every target, one optimizer group. */
    size_t n_learnable;
    float *learnable;        /* owned */
    float *learnable_grad;   /* owned, same layout */
    long step;               /* optimizer steps seen (NNI's current_step) */
    bool initialised;        /* an optimizer step happened: LSQ/DoReFa/BNN stop initialising */
    bool data_init;          /* LSQ: the paper's 2 mean|x| / sqrt(qmax) init instead of 0.01 */
    struct sw_bn_fold *fold; /* owned: fuse_names state (bn_fold.h), NULL when none */
};

/* For constructors: base init over `ws` / after `previous`, then config resolution, claims,
 * transforms and module fusion. On failure everything done is undone (the struct itself is the
 * caller's). `config_list` is borrowed and read during the call. */
sw_status sw_quantizer_init(sw_quantizer *q, const sw_compressor_ops *ops,
                            const sw_quantizer_ops *qops, sw_wrapper_set *ws,
                            const cJSON *config_list, sw_evaluator *ev);
sw_status sw_quantizer_init_from(sw_quantizer *q, const sw_compressor_ops *ops,
                                 const sw_quantizer_ops *qops, sw_compressor *previous,
                                 const cJSON *config_list, sw_evaluator *ev);
/* Frees the targets and fusion state (call from ops->free; the base is torn down first). */
void sw_quantizer_deinit(sw_quantizer *q);

/* The quantizer behind a compressor, or NULL when c is not a quantizer. */
sw_quantizer *sw_quantizer_of(sw_compressor *c);
const sw_quantizer *sw_quantizer_of_const(const sw_compressor *c);

/* This quantizer's record for module.target, or NULL. */
sw_quant_target *sw_quantizer_find(sw_quantizer *q, const char *module, const char *target);

/* Sets the method of every target (QAT switching from bypass, PTQ after calibration). */
void sw_quantizer_set_method(sw_quantizer *q, sw_quant_method m);

/* Sets scale and zero point of t from its tracked range (§4.1), per block. */
void sw_quantizer_scale_from_tracked(sw_quant_target *t);

/* Per-block minimum and maximum of a value of target t (batched for activations):
 * mins[n_blocks], maxs[n_blocks]. Scratch memory comes from `arena` (step memory). */
sw_status sw_quantizer_block_minmax(const sw_quant_target *t, const sw_tensor *x, sw_arena *arena,
                                    float *mins, float *maxs);
/* Per-block mean of |x| of a value of target t (batched for activations): means[n_blocks].
 * Scratch memory comes from `arena` (step memory). */
sw_status sw_quantizer_block_mean_abs(const sw_quant_target *t, const sw_tensor *x,
                                      sw_arena *arena, float *means);

/* Applies t's fake-quantization (its method, scale and zero point in effect) to x into y (may
 * alias x), exactly as the target's transform does in a forward; a target without a scale
 * passes x through. Per-block scratch from `arena`. */
sw_status sw_quant_target_apply(const sw_quant_target *t, const sw_tensor *x, sw_tensor *y,
                                sw_arena *arena);

/* The step memory of the model a transform call runs in. */
sw_arena *sw_quantizer_call_arena(const sw_transform_call *call);

/* Constructor helper: `q` is a zeroed heap allocation of the algorithm's struct (sw_quantizer
 * first) with the algorithm's own fields already set; it is initialised over `ws` (previous
 * NULL) or after `previous`, and returned through *out. Takes ownership of q: on failure q is
 * freed. */
sw_status sw_quantizer_build(sw_quantizer *q, const sw_compressor_ops *ops,
                             const sw_quantizer_ops *qops, sw_wrapper_set *ws,
                             sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev,
                             sw_compressor **out);
/* The free op of algorithms without state of their own: deinit, then free the struct. */
void sw_quantizer_free(sw_compressor *c);

/* The compressor ops every quantizer shares: export_file writes the calibration (calibration.h). */
sw_status sw_quantizer_export_file(sw_compressor *c, const char *path);
/* needs_training: true (every NNI quantizer runs the evaluator). */
bool sw_quantizer_needs_training(const sw_compressor *c);

#endif
