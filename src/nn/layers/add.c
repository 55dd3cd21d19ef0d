/* add.c - Add: the elementwise sum of 2 to SW_MAX_INPUTS inputs of one shape (a residual join).
 *
 * Backward hands dy unchanged to every input.
 */
#include "layer_common.h"

#include "tensor/elementwise.h"

#define TYPE "Add"

/* No broadcasting: a residual join needs both branches at the same shape. */
static sw_status add_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                 sw_shape *out) {
    (void)layer;
    if (n_in < 2 || n_in > SW_MAX_INPUTS)
        return SW_FAIL(SW_ERR_ARG, "Add takes 2 to %d inputs, got %d", SW_MAX_INPUTS, n_in);
    for (int i = 1; i < n_in; i++) {
        if (!sw_shape_equal(&in[i], &in[0])) {
            char a[64], b[64];
            return SW_FAIL(SW_ERR_SHAPE, "Add: input %d has shape %s but input 0 has %s", i,
                           sw_shape_format(&in[i], a, sizeof a),
                           sw_shape_format(&in[0], b, sizeof b));
        }
    }
    *out = in[0];
    return SW_OK;
}

/* y = in0 + in1 (+ in2 ...): the first two in one pass that writes y, the rest added on. */
static sw_status add_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    const size_t n = io->out->numel;
    float *y = io->out->data;
    sw_vec_sum2(y, io->in[0]->data, io->in[1]->data, n);
    for (int i = 2; i < io->n_in; i++) sw_vec_add(y, io->in[i]->data, n);
    return SW_OK;
}

/* relu(in0 + in1): the residual join and the ReLU after it in one pass. Two inputs and a bare
 * ReLU only; the fusion plan asks for nothing else. */
static sw_status add_forward_fused(const sw_layer *layer, const sw_layer_io *io,
                                   const sw_epilogue *ep) {
    if (!ep) return add_forward(layer, io);
    if (ep->scale || ep->shift || io->n_in != 2)
        return SW_FAIL(SW_ERR_ARG, "Add fuses only a ReLU over two inputs");
    if (!ep->relu) return add_forward(layer, io);
    sw_vec_sum2_relu(io->out->data, io->in[0]->data, io->in[1]->data, io->out->numel);
    return SW_OK;
}

/* d(sum)/d(in_i) = 1: every input that wants a gradient gets dy added. */
static sw_status add_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                    const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    for (int i = 0; i < io->n_in; i++) {
        if (!din[i]) continue;
        if (io->din_fresh[i])
            sw_vec_copy(din[i]->data, dout->data, dout->numel);
        else
            sw_vec_add(din[i]->data, dout->data, dout->numel);
    }
    return SW_OK;
}

/* n inputs take n - 1 additions per value. */
static double add_flops(const sw_layer *layer, const sw_shape *in, int n_in, const sw_shape *out) {
    (void)layer;
    (void)in;
    return (double)(n_in - 1) * (double)sw_shape_numel(out);
}

const sw_layer_ops sw_add_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 2,
    .max_inputs = SW_MAX_INPUTS,
    .infer_shape = add_infer_shape,
    .forward = add_forward,
    .forward_fused = add_forward_fused,
    .backward_input = add_backward_input,
    .flops = add_flops,
};
