/* layer.h - layer types: hyper-parameters, parameters, and the forward/backward vtable.
 *
 * A layer is one node's computation. It never allocates in forward/backward except from the
 * per-step arena it is handed, and it reads its parameters through the io record rather than
 * from itself, so that a compression wrapper can substitute transformed parameters (a masked or
 * fake-quantized weight) without the layer knowing (DESIGN.md, "The flow of one training step").
 *
 * Backward is split as in THNN: backward_input (gradient w.r.t. the inputs) and backward_params
 * (gradient w.r.t. the parameters). Both ACCUMULATE into the tensors they are given.
 */
#ifndef SW_LAYER_H
#define SW_LAYER_H

#include <stdbool.h>

#include "../tensor/arena.h"
#include "../tensor/epilogue.h"
#include "../tensor/rng.h"
#include "../tensor/tensor.h"

#define SW_MAX_INPUTS 8
#define SW_MAX_PARAMS 4

typedef enum sw_layer_kind {
    SW_LAYER_LINEAR,
    SW_LAYER_CONV2D,
    SW_LAYER_BATCHNORM2D,
    SW_LAYER_BATCHNORM1D,
    SW_LAYER_RELU,
    SW_LAYER_RELU6,
    SW_LAYER_MAXPOOL2D,
    SW_LAYER_AVGPOOL2D,
    SW_LAYER_GLOBAL_AVGPOOL, /* AdaptiveAvgPool2d(1): [C,H,W] -> [C,1,1] */
    SW_LAYER_FLATTEN,        /* [C,H,W] -> [C*H*W] */
    SW_LAYER_ADD,            /* n inputs of one shape, summed */
    SW_LAYER_CONCAT,         /* n inputs concatenated on the channel dim (dim 1 batched) */
    SW_LAYER_DROPOUT,
    SW_LAYER_IDENTITY,
    SW_LAYER_KIND_COUNT
} sw_layer_kind;

/* Hyper-parameters of every layer kind in one plain struct; each kind reads its own fields.
 * 2-D quantities are {height, width}. */
typedef struct sw_layer_hparams {
    int in_features, out_features;  /* Linear */
    int in_channels, out_channels;  /* Conv2d */
    int kernel[2], stride[2], padding[2], dilation[2]; /* Conv2d, MaxPool2d, AvgPool2d */
    int groups;                     /* Conv2d; 1 = dense, in_channels = depthwise */
    bool bias;                      /* Linear, Conv2d */
    int num_features;               /* BatchNorm */
    float eps, momentum;            /* BatchNorm (PyTorch defaults 1e-5, 0.1) */
    float p;                        /* Dropout probability of zeroing */
} sw_layer_hparams;

/* One named tensor of a layer. Trainable parameters have a gradient of the same shape;
 * buffers (BatchNorm running statistics) have grad.data == NULL. value and grad are views into
 * the model's flat storage once the model is finalised (the layer does not own them). */
typedef struct sw_param {
    const char *name; /* static: "weight", "bias", "running_mean", "running_var" */
    sw_tensor value;
    sw_tensor grad;
    bool trainable;
} sw_param;

typedef struct sw_layer sw_layer;

/* Everything one forward or backward call of a layer sees. Tensors are batched (dim 0 = N). */
typedef struct sw_layer_io {
    int n_in;
    const sw_tensor *in[SW_MAX_INPUTS];
    /* Parameters in effect, in the layer's declaration order; by default the layer's own
     * values, or transformed copies substituted by a compression wrapper. Buffers (running
     * statistics) are always the layer's own and may be updated by a training forward. */
    sw_tensor *params[SW_MAX_PARAMS];
    sw_tensor *out;
    void **saved;     /* a slot for what forward keeps for backward (arena memory) */
    sw_arena *arena;  /* per-step scratch, reset before each forward pass */
    sw_rng *rng;      /* for Dropout */
    bool training;
    /* Backward: din[i] holds no gradient yet (this node is its first writer), so the layer
     * overwrites it instead of adding to it. Set only for layers whose ops declare
     * overwrites_din; the others get a zeroed din[i] and always accumulate. */
    bool din_fresh[SW_MAX_INPUTS];
} sw_layer_io;

typedef struct sw_layer_ops {
    const char *type_name; /* the PyTorch class name, as NNI's op_types use it: "Conv2d" */
    int min_inputs, max_inputs;
    /* Checks hyper-parameters and declares the parameters (names, shapes). */
    sw_status (*init)(sw_layer *layer);
    /* Per-sample output shape from per-sample input shapes; errors say what does not fit. */
    sw_status (*infer_shape)(const sw_layer *layer, const sw_shape *in, int n_in, sw_shape *out);
    sw_status (*forward)(const sw_layer *layer, const sw_layer_io *io);
    /* Optional (NULL: the layer cannot): forward with `ep` applied to every output value, for
     * the eval-mode inference fusion (src/nn/inference_fusion.h). A layer may support only
     * part of an epilogue and refuses the rest with SW_ERR_ARG (Add: ReLU only). */
    sw_status (*forward_fused)(const sw_layer *layer, const sw_layer_io *io, const sw_epilogue *ep);
    /* din[i] may be NULL for inputs that need no gradient. */
    sw_status (*backward_input)(const sw_layer *layer, const sw_layer_io *io,
                                const sw_tensor *dout, sw_tensor *const *din);
    /* dparams[i] may be NULL for parameters that need no gradient; NULL for layers without
     * trainable parameters. */
    sw_status (*backward_params)(const sw_layer *layer, const sw_layer_io *io,
                                 const sw_tensor *dout, sw_tensor *const *dparams);
    /* backward_input honours io->din_fresh (saves the executor zeroing those gradients). */
    bool overwrites_din;
    /* Floating-point operations of one forward pass for one sample (a multiply-add is 2). */
    double (*flops)(const sw_layer *layer, const sw_shape *in, int n_in, const sw_shape *out);
} sw_layer_ops;

struct sw_layer {
    sw_layer_kind kind;
    const sw_layer_ops *ops;
    sw_layer_hparams hp;
    int n_params;
    sw_param params[SW_MAX_PARAMS];
    /* Shapes of params, declared by init; values are allocated by the model. */
    sw_shape param_shapes[SW_MAX_PARAMS];
};

/* Defaults for a kind (PyTorch's): stride 1, dilation 1, groups 1, bias true, eps 1e-5,
 * momentum 0.1, pool stride = kernel, p = 0.5. Callers set the sizes. */
sw_layer_hparams sw_layer_hparams_default(sw_layer_kind kind);

/* Creates a layer of `kind`; validates the hyper-parameters (errors name the bad one). The
 * caller owns the result (sw_layer_free); parameters get storage from the model. */
sw_status sw_layer_new(sw_layer_kind kind, const sw_layer_hparams *hp, sw_layer **out);
void sw_layer_free(sw_layer *layer);

/* "Conv2d" for SW_LAYER_CONV2D, ...; and back (SW_ERR_NOT_FOUND for an unknown name). */
const char *sw_layer_kind_name(sw_layer_kind kind);
sw_status sw_layer_kind_from_name(const char *name, sw_layer_kind *out);
/* Index of a parameter by name, or -1. */
int sw_layer_param_index(const sw_layer *layer, const char *name);

/* The vtables, one per file under src/nn/layers/. */
extern const sw_layer_ops sw_linear_ops, sw_conv2d_ops, sw_batchnorm2d_ops, sw_batchnorm1d_ops,
    sw_relu_ops, sw_relu6_ops, sw_maxpool2d_ops, sw_avgpool2d_ops, sw_global_avgpool_ops,
    sw_flatten_ops, sw_add_ops, sw_concat_ops, sw_dropout_ops, sw_identity_ops;

#endif
