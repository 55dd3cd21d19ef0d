/* int8_model.h - real int8 inference for a quantized model (beyond NNI, which only simulates).
 *
 * An int8 model is the float model's graph with three kinds of nodes:
 *
 *   INT8      Conv2d / Linear whose weight and input a quantizer quantized (per-tensor input of at
 *             most 8 bits; weight per tensor or per output channel, at most 8 bits; methods
 *             clamp_round, qat_clamp_round or lsq_clamp_round). The input is quantized to its
 *             integers q_x (NNI's exact rounding), the weights are stored as int8 integers q_w,
 *             the product is accumulated in int32 (int8_gemm.h), and
 *                 y = s_x * s_w[o] * sum_k (q_x - zp_x)(q_w - zp_w[o]) + b[o],
 *             which is the fake-quantized layer's value computed exactly in integers. Folded
 *             BatchNorms and pruning masks are already in q_w and b; a fused ReLU follows;
 *   IDENTITY  a BatchNorm or ReLU absorbed by fuse_names;
 *   FLOAT     every other node, run by its float layer with the quantized (and masked) weights
 *             baked in.
 * Around any node, the activations are requantised as the quantized model does: every
 * quantized input or output target of the simulation becomes an op here (fake-quantization
 * with the target's scale and zero point, or a mask), so values between layers are exactly the
 * simulation's grid values.
 *
 * The int8 model therefore computes what the fake-quantized model computes in eval mode, up to
 * float summation order inside the layers.
 *
 * Ownership: the int8 model owns its graph (a clone of the float model) and every array.
 */
#ifndef SW_INT8_MODEL_H
#define SW_INT8_MODEL_H

#include <stdint.h>

#include "../compress/compressor.h"
#include "../compress/quantization/quantizer.h"
#include "int8_gemm.h"

typedef enum sw_i8_mode {
    SW_I8_FLOAT,
    SW_I8_INT8,
    SW_I8_IDENTITY,
} sw_i8_mode;

/* "float" | "int8" | "identity" and back. */
const char *sw_i8_mode_name(sw_i8_mode m);

/* Longest row (C_in/groups * kh * kw, or in_features) of an INT8 layer: keeps every term of the
 * int32 accumulation and its zero-point corrections below 2^31. */
#define SW_I8_MAX_K 16384

/* The integer form of one Conv2d or Linear. */
typedef struct sw_i8_layer {
    int out_channels;      /* O */
    size_t k;              /* reduction length per group: (C_in/groups) * kh * kw, or in_features */
    size_t ldk;            /* k padded to SW_I8_K_ALIGN */
    int groups;            /* Conv2d groups (1 for Linear): O/groups rows per group */
    int8_t *w;             /* [O, ldk] stored weight integers (zero padding) */
    sw_i8_packed **packed; /* [groups] the rows of each group packed for the kernels */
    float *w_scale;        /* [O] */
    float *w_zp;           /* [O] zero point of the STORED integers: real = (w - w_zp) * w_scale */
    int32_t *w_rowsum;     /* [O] sum over k of w */
    float *bias;           /* [O] effective bias (folded, quantized, masked); zeros when none */
    /* Input quantization: q = round(clamp(zp + x / s, qmin, qmax)), stored as q + in_offset in
     * a uint8 (in_offset 128 for signed dtypes, 0 for unsigned). LSQ inputs (in_lsq) use LSQ's
     * effective scale of the batch's numel and zero point 0, as the simulation does. */
    float in_scale, in_zp;
    int in_qmin, in_qmax, in_offset;
    bool in_lsq;
} sw_i8_layer;

typedef enum sw_i8_op_kind {
    SW_I8_OP_QUANT, /* fake-quantization with a target's method, scale and zero point */
    SW_I8_OP_MASK,  /* multiplication by a 0/1 mask of the per-sample shape */
} sw_i8_op_kind;

/* One requantisation (or mask) on an input or the output of a node. */
typedef struct sw_i8_op {
    sw_i8_op_kind kind;
    char target[SW_TARGET_NAME_MAX]; /* "_input_<j>" or "_output_0" */
    int input;                       /* j for inputs, -1 for the output */
    sw_quant_target quant;           /* QUANT: a standalone target record (owns its store) */
    bool dynamic;                    /* QUANT: scale from the batch's range (DoReFa inputs) */
    float *mask;                     /* MASK: owned, numel of the per-sample shape */
    size_t mask_numel;
} sw_i8_op;

typedef struct sw_i8_node {
    sw_i8_mode mode;
    sw_i8_layer *layer; /* INT8 only; owned */
    bool fused_relu;    /* a ReLU absorbed by fuse_names: applied before the output ops */
    int n_ops;
    sw_i8_op *ops; /* owned; inputs' ops then the output's, each in chain order */
} sw_i8_node;

typedef struct sw_int8_model {
    sw_model *model;   /* owned: graph and float parameters (effective values) */
    sw_i8_node *nodes; /* owned, one per graph node */
    sw_arena arena;    /* activations of the last forward */
    sw_tensor *outs;   /* owned array: per node, the batched output of the last forward */
} sw_int8_model;

/* Builds the int8 model of the wrapped model behind compressor c: every quantizer of c's fused
 * chain contributes its targets, every pruner its masks (sw_target_mask), the quantizers'
 * fuse_names their folding. The live model is not changed. Caller owns *out. */
sw_status sw_int8_model_from_compressor(const sw_compressor *c, sw_int8_model **out);

/* Runs the int8 model in inference mode on x [N, input_shape...]; *out points at the output
 * (owned by the model, valid until the next forward). Uses OpenMP threads over the batch. */
sw_status sw_int8_model_forward(sw_int8_model *m, const sw_tensor *x, const sw_tensor **out);

/* Accuracy and mean cross-entropy on a dataset (batches of `batch_size`). */
sw_status sw_int8_model_evaluate(sw_int8_model *m, const sw_dataset *ds, int batch_size,
                                 double *accuracy, double *loss);

/* Turns every INT8 node back into a FLOAT node with the dequantized weights (w - zp) * s and
 * the effective bias: the same graph computed in float32, for comparisons and latency
 * baselines. SW_ERR_UNSUPPORTED when an INT8 node's layer has no bias parameter to hold a
 * non-zero effective bias. */
sw_status sw_int8_model_to_float(sw_int8_model *m);

/* Node counts by mode, for summaries. */
void sw_int8_model_counts(const sw_int8_model *m, int counts[3]);

/* For loaders: an empty int8 model over `model` (ownership taken), every node FLOAT. */
sw_status sw_int8_model_wrap(sw_model *model, sw_int8_model **out);
/* For loaders: allocates node i's integer layer for `out_channels` x `k` (zeroed weights, unit
 * scales). */
sw_status sw_i8_layer_new(int out_channels, size_t k, sw_i8_layer **out);
void sw_i8_layer_free(sw_i8_layer *l);
/* Recomputes w_rowsum and packs w per group (after w and groups are set). */
sw_status sw_i8_layer_finish(sw_i8_layer *l);

void sw_int8_model_free(sw_int8_model *m);

#endif
