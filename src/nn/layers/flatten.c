/* flatten.c - Flatten (start_dim 1): a per-sample [C, H, W] (any shape) becomes [C*H*W].
 *
 * Row-major storage makes this a copy of the same bytes; the gradient is a copy back.
 */
#include "layer_common.h"

#include "tensor/elementwise.h"

#define TYPE "Flatten"

static sw_status flatten_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                     sw_shape *out) {
    (void)layer;
    (void)n_in;
    size_t n = sw_shape_numel(in);
    if (in->ndim < 1 || n > (size_t)0x7fffffff) {
        char buf[64];
        return SW_FAIL(SW_ERR_SHAPE, "Flatten: cannot flatten a per-sample input %s",
                       sw_shape_format(in, buf, sizeof buf));
    }
    *out = sw_shape_1d((int)n);
    return SW_OK;
}

/* The executor gives every node its own output buffer, so flattening is one copy; aliasing
 * the input would save it but would let a wrapper's in-place output transform corrupt the
 * input of the previous layer. */
static sw_status flatten_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    sw_vec_copy(io->out->data, io->in[0]->data, io->out->numel);
    return SW_OK;
}

static sw_status flatten_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    (void)io;
    if (din[0]) sw_vec_add(din[0]->data, dout->data, dout->numel);
    return SW_OK;
}

const sw_layer_ops sw_flatten_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .infer_shape = flatten_infer_shape,
    .forward = flatten_forward,
    .backward_input = flatten_backward_input,
};
