/* relu.c - ReLU: y = max(x, 0), elementwise on any shape.
 *
 * Backward passes dy where x > 0. It reads the layer's input rather than its output: a
 * compression wrapper may rewrite the output in place (fake quantization), but the input the
 * layer saw stays as it was.
 */
#include "layer_common.h"

#include <math.h>

#include "tensor/elementwise.h"

#define TYPE "ReLU"

static sw_status relu_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                  sw_shape *out) {
    (void)layer;
    (void)n_in;
    *out = *in;
    return SW_OK;
}

static sw_status relu_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    sw_vec_clamp(io->out->data, io->in[0]->data, 0.0f, INFINITY, io->out->numel);
    return SW_OK;
}

static sw_status relu_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                     const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    if (din[0])
        sw_vec_clamp_backward(din[0]->data, dout->data, io->in[0]->data, 0.0f, INFINITY,
                              dout->numel, !io->din_fresh[0]);
    return SW_OK;
}

static double relu_flops(const sw_layer *layer, const sw_shape *in, int n_in, const sw_shape *out) {
    (void)layer;
    (void)n_in;
    (void)out;
    return (double)sw_shape_numel(in); /* one comparison a value */
}

const sw_layer_ops sw_relu_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .infer_shape = relu_infer_shape,
    .forward = relu_forward,
    .backward_input = relu_backward_input,
    .flops = relu_flops,
};
