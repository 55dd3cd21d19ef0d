/* concat.c - Concat on the channel dimension (per-sample dim 0, batched dim 1), torch.cat(dim=1).
 *
 * Shapes: inputs [N, C_i, ...] with equal trailing dims -> y [N, sum C_i, ...]. In row-major
 * storage each sample of the output is the inputs' samples one after the other, so forward and
 * backward are block copies.
 */
#include "layer_common.h"

#include "tensor/elementwise.h"

#define TYPE "Concat"

/* Per-sample shapes must agree in every dimension but the first (channels), as torch.cat on
 * dim 1 demands; the output has the channel counts summed. */
static sw_status concat_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                    sw_shape *out) {
    (void)layer;
    char a[64], b[64];
    long channels = 0;
    if (n_in < 1 || n_in > SW_MAX_INPUTS)
        return SW_FAIL(SW_ERR_ARG, "Concat takes 1 to %d inputs, got %d", SW_MAX_INPUTS, n_in);
    for (int i = 0; i < n_in; i++) {
        bool same = in[i].ndim == in[0].ndim && in[i].ndim >= 1;
        for (int d = 1; same && d < in[0].ndim; d++) same = in[i].dims[d] == in[0].dims[d];
        if (!same)
            return SW_FAIL(SW_ERR_SHAPE,
                           "Concat: input %d has shape %s, which does not match input 0 (%s) "
                           "outside the channel dimension",
                           i, sw_shape_format(&in[i], a, sizeof a),
                           sw_shape_format(&in[0], b, sizeof b));
        channels += in[i].dims[0];
    }
    if (channels > 0x7fffffff) return SW_FAIL(SW_ERR_SHAPE, "Concat: too many channels");
    *out = in[0];
    out->dims[0] = (int)channels;
    return SW_OK;
}

/* Sample n of the output is [in0[n] | in1[n] | ...]: input i's block of `len` values starts
 * `offset` values into each output sample. */
static sw_status concat_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    const int batch = layer_batch(io->out);
    const size_t out_sample = layer_sample_numel(io->out);
    size_t offset = 0; /* where input i starts inside one output sample */
    for (int i = 0; i < io->n_in; i++) {
        const size_t len = layer_sample_numel(io->in[i]);
        const float *x = io->in[i]->data;
        float *y = io->out->data + offset;
#pragma omp parallel for schedule(static) if ((size_t)batch * len >= 65536)
        for (int n = 0; n < batch; n++)
            memcpy(y + (size_t)n * out_sample, x + (size_t)n * len, len * sizeof *y);
        offset += len;
    }
    return SW_OK;
}

/* The same blocks read back: input i's gradient is its slice of dy. */
static sw_status concat_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                       const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    const int batch = layer_batch(dout);
    const size_t out_sample = layer_sample_numel(dout);
    size_t offset = 0;
    for (int i = 0; i < io->n_in; i++) {
        const size_t len = layer_sample_numel(io->in[i]);
        if (din[i]) {
            const float *dy = dout->data + offset;
            float *dx = din[i]->data;
#pragma omp parallel for schedule(static) if ((size_t)batch * len >= 65536)
            for (int n = 0; n < batch; n++)
                sw_vec_add(dx + (size_t)n * len, dy + (size_t)n * out_sample, len);
        }
        offset += len;
    }
    return SW_OK;
}

const sw_layer_ops sw_concat_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = SW_MAX_INPUTS,
    .infer_shape = concat_infer_shape,
    .forward = concat_forward,
    .backward_input = concat_backward_input,
};
