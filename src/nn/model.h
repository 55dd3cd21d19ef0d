/* model.h - the model graph: a DAG of named nodes, its parameters, and its executor.
 *
 * Nodes are added in topological order (every input must already exist), so the node array is
 * the execution order. Names are hierarchical ("layer1.0.conv1"); containers exist only as name
 * prefixes (see module_tree.h). After sw_model_finalize the parameters live in three flat
 * arrays (trainable values, their gradients, buffers), llm.c-style, so an optimizer is one loop
 * and a checkpoint one copy.
 *
 * Execution: sw_model_forward runs the nodes in order on a batch, sw_model_backward runs them in
 * reverse. Activations, activation gradients and everything a layer saves for backward come
 * from the model's arena, which is reset at each forward: after the first step of a given batch
 * size, a training loop allocates nothing. Activation gradients reuse each other's memory
 * (grad_plan.h): after backward only the parameter gradients are meaningful.
 */
#ifndef SW_MODEL_H
#define SW_MODEL_H

#include <stdint.h>

#include "grad_plan.h"
#include "inference_fusion.h"
#include "layer.h"

#define SW_NODE_INPUT (-1) /* the index that stands for the model's input in node->inputs */

typedef struct sw_node sw_node;

/* Interception points for compression wrappers (src/compress). All optional. The executor
 * calls them around the bare layer; a node without hooks runs the bare layer directly.
 *  - before_forward may replace io->in[i] (input transforms) and io->params[i] (parameter
 *    transforms) with tensors of the same shape, e.g. from io->arena;
 *  - after_forward may transform io->out in place (output transforms, capture);
 *  - before_backward gets the gradient of the (transformed) output in place, and may point
 *    dparams[i] at scratch tensors to receive the gradient of the effective parameters;
 *  - after_backward maps those to the raw parameters' gradients, and transforms din[i] (this
 *    node's own contribution, freshly zeroed before the layer ran) through the input chains.
 *    The separate zeroed buffers cost a memset and an add per input, so the executor makes them
 *    only when `transforms_inputs` is set; otherwise din[i] are the producers' accumulated
 *    gradients and after_backward must leave them alone. */
typedef struct sw_node_hooks {
    void *ctx;
    bool transforms_inputs;
    sw_status (*before_forward)(void *ctx, sw_node *node, sw_layer_io *io);
    sw_status (*after_forward)(void *ctx, sw_node *node, sw_layer_io *io);
    sw_status (*before_backward)(void *ctx, sw_node *node, sw_layer_io *io, sw_tensor *dout,
                                 sw_tensor **dparams);
    sw_status (*after_backward)(void *ctx, sw_node *node, sw_layer_io *io, sw_tensor **din,
                                sw_tensor **dparams);
} sw_node_hooks;

struct sw_node {
    char *name;      /* owned; unique in the model */
    sw_layer *layer; /* owned */
    int n_inputs;
    int inputs[SW_MAX_INPUTS]; /* node indices, or SW_NODE_INPUT */
    sw_shape out_shape;        /* per sample (no batch dim) */
    double flops;              /* per sample, forward */
    size_t param_count;        /* trainable elements */
    const sw_node_hooks *hooks; /* borrowed; NULL = bare layer */
};

/* Wall-clock seconds a node's passes took, summed over the passes run while profiling. A fused
 * chain's time is the head node's (the later members read 0 for that pass). */
typedef struct sw_node_time {
    double forward, backward;
} sw_node_time;

typedef struct sw_model {
    char *arch;           /* owned: zoo name ("fmnist_cnn") or "custom" */
    sw_shape input_shape; /* per sample, e.g. [1, 28, 28] */
    int n_nodes, cap_nodes;
    sw_node *nodes; /* owned, in execution order; the last node is the output */

    /* Flat storage, owned, allocated by sw_model_finalize. */
    float *param_data; /* every trainable value, in node and declaration order */
    float *grad_data;  /* same layout */
    size_t n_param_floats;
    float *buffer_data; /* BatchNorm running statistics */
    size_t n_buffer_floats;
    bool finalized;
    bool training;

    /* Executor state, owned. */
    sw_arena arena;
    int batch;          /* batch size of the last forward */
    sw_layer_io *ios;   /* per node: the io of the last forward, reused by backward */
    void **saved;       /* per node: what its forward kept for backward */
    sw_tensor *outs;    /* per node: batched output of the last forward (arena) */
    sw_tensor *douts;   /* per node: gradient of its output during backward; they share one
                           arena block laid out by grad_plan, so each is valid only from its
                           last consumer's backward to its own */
    sw_grad_plan grad_plan;
    bool inference_fusion;      /* see sw_model_set_inference_fusion */
    bool last_forward_fused;    /* some outputs of the last forward alias others: no backward */
    sw_fusion_plan fusion_plan; /* the chains fusion may run, found by finalize */
    sw_node_time *profile; /* borrowed, n_nodes entries, or NULL: see sw_model_set_profile */
    sw_rng rng;         /* dropout */
} sw_model;

/* Creates an empty model; `arch` names it (copied). Caller owns; sw_model_free releases. */
sw_status sw_model_new(const char *arch, const sw_shape *input_shape, sw_model **out);
void sw_model_free(sw_model *model);

/* Appends a node named `name` (copied) computing `layer` (ownership taken, also on failure) on
 * the nodes named in `inputs` ("input" = the model input). n_inputs == 0 means "the previous
 * node" (the model input for the first node). Shapes are checked here; the error names the
 * node. Writes the new index to *index when index is not NULL. */
sw_status sw_model_add(sw_model *model, const char *name, sw_layer *layer,
                       const char *const *inputs, int n_inputs, int *index);
/* Allocates flat parameter storage (zeroed; BatchNorm weight 1, running_var 1). No nodes can be
 * added afterwards. */
sw_status sw_model_finalize(sw_model *model);
/* PyTorch's default initialisation (Kaiming-uniform with a = sqrt(5) for weights, U(+-1/sqrt(fan_in))
 * for biases, BatchNorm 1/0), from a seeded generator. */
void sw_model_init_params(sw_model *model, uint64_t seed);

/* Index of the node named `name`, or -1. */
int sw_model_find(const sw_model *model, const char *name);
/* The output node's per-sample shape. */
sw_shape sw_model_output_shape(const sw_model *model);

void sw_model_set_training(sw_model *model, bool training);
/* Lets eval-mode forwards run Conv2d -> BatchNorm2d -> ReLU (and Add -> ReLU) chains as one
 * kernel (inference_fusion.h). Outputs of the chains' inner nodes are then not computed (they
 * alias the chain's result), and backward refuses to run after such a forward. For latency
 * and evaluation; off by default. */
void sw_model_set_inference_fusion(sw_model *model, bool on);
/* Profiling: while `times` (n_nodes entries, owned by the caller) is set, every forward and
 * backward adds each node's wall-clock seconds to it; NULL stops. Costs two clock reads a node. */
void sw_model_set_profile(sw_model *model, sw_node_time *times);
void sw_model_set_seed(sw_model *model, uint64_t seed);

/* Runs the graph on x [N, input_shape...]. *out points at the output node's activation (owned
 * by the model, valid until the next forward). */
sw_status sw_model_forward(sw_model *model, const sw_tensor *x, const sw_tensor **out);
/* Back-propagates dout (gradient of the loss w.r.t. the last forward's output) and ACCUMULATES
 * parameter gradients into grad_data. */
sw_status sw_model_backward(sw_model *model, const sw_tensor *dout);
void sw_model_zero_grad(sw_model *model);

/* Totals. */
size_t sw_model_param_count(const sw_model *model);
double sw_model_flops(const sw_model *model);

/* A deep copy (structure, parameters, buffers; no hooks). Caller owns the result. */
sw_status sw_model_clone(const sw_model *model, sw_model **out);

/* Visits every parameter and buffer as "<node>.<param>" (e.g. "conv1.weight"). */
typedef void (*sw_param_visitor)(void *ctx, const sw_node *node, sw_param *param,
                                 const char *full_name);
void sw_model_visit_params(sw_model *model, sw_param_visitor visit, void *ctx);

#endif
