/* identity.c - Identity: y = x (a pass-through node, e.g. where speedup removed a layer). */
#include "layer_common.h"

#include "tensor/elementwise.h"

#define TYPE "Identity"

/* Any shape, unchanged. */
static sw_status identity_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                      sw_shape *out) {
    (void)layer;
    (void)n_in;
    *out = *in;
    return SW_OK;
}

/* A copy, not an alias, for the same reason as Flatten: outputs may be transformed in place. */
static sw_status identity_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    sw_vec_copy(io->out->data, io->in[0]->data, io->out->numel);
    return SW_OK;
}

/* d(x)/dx = 1: the gradient passes through unchanged. */
static sw_status identity_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                         const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    (void)io;
    if (din[0]) sw_vec_add(din[0]->data, dout->data, dout->numel);
    return SW_OK;
}

const sw_layer_ops sw_identity_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .infer_shape = identity_infer_shape,
    .forward = identity_forward,
    .backward_input = identity_backward_input,
};
