/* linear.c - Linear (fully connected): y = x W^T + b over the last dimension.
 *
 * Shapes: x [N, ..., in], W [out, in], b [out], y [N, ..., out]. Every leading index is one row
 * of a [rows, in] matrix, so a batch is one sgemm. Nothing needs saving for backward: the input
 * and the parameters stay reachable through io until the next forward.
 */
#include "layer_common.h"

#include "tensor/blas.h"

#define TYPE "Linear"

/* weight [out, in] as PyTorch stores it, so state dicts load without transposing. */
static sw_status linear_init(sw_layer *layer) {
    const sw_layer_hparams *hp = &layer->hp;
    SW_TRY(layer_check_min(TYPE, "in_features", hp->in_features, 1));
    SW_TRY(layer_check_min(TYPE, "out_features", hp->out_features, 1));
    layer_declare_param(layer, 0, "weight", true, sw_shape_2d(hp->out_features, hp->in_features));
    if (hp->bias) layer_declare_param(layer, 1, "bias", true, sw_shape_1d(hp->out_features));
    return SW_OK;
}

/* Like torch.nn.Linear, any leading dimensions pass through; only the last one changes. */
static sw_status linear_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                    sw_shape *out) {
    (void)n_in;
    char buf[64];
    if (in->ndim < 1 || in->dims[in->ndim - 1] != layer->hp.in_features)
        return SW_FAIL(SW_ERR_SHAPE,
                       "Linear(in_features=%d) needs a per-sample input whose last dimension is "
                       "%d, got %s",
                       layer->hp.in_features, layer->hp.in_features,
                       sw_shape_format(in, buf, sizeof buf));
    *out = *in;
    out->dims[in->ndim - 1] = layer->hp.out_features;
    return SW_OK;
}

/* Rows of the [rows, in] view of a batched input. */
static int linear_rows(const sw_layer *layer, const sw_tensor *x) {
    return (int)(x->numel / (size_t)layer->hp.in_features);
}

static sw_status linear_forward(const sw_layer *layer, const sw_layer_io *io) {
    const int in = layer->hp.in_features, out = layer->hp.out_features;
    const sw_tensor *x = io->in[0];
    const int rows = linear_rows(layer, x);
    const float *w = io->params[0]->data;
    float *y = io->out->data;
    float beta = 0.0f;
    if (layer->hp.bias) {
        /* Start every row at b and let sgemm add x W^T onto it (beta = 1). */
        const float *b = io->params[1]->data;
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * out, b, (size_t)out * sizeof *y);
        beta = 1.0f;
    }
    /* y [rows, out] = x [rows, in] * W^T [in, out] */
    sw_sgemm(false, true, rows, out, in, 1.0f, x->data, in, w, in, beta, y, out);
    return SW_OK;
}

static sw_status linear_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                       const sw_tensor *dout, sw_tensor *const *din) {
    if (!din[0]) return SW_OK;
    const int in = layer->hp.in_features, out = layer->hp.out_features;
    const int rows = linear_rows(layer, io->in[0]);
    /* dx [rows, in] += dy [rows, out] * W [out, in] */
    sw_sgemm(false, false, rows, in, out, 1.0f, dout->data, out, io->params[0]->data, in, 1.0f,
             din[0]->data, in);
    return SW_OK;
}

static sw_status linear_backward_params(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *dparams) {
    if (!dparams) return SW_OK;
    const int in = layer->hp.in_features, out = layer->hp.out_features;
    const sw_tensor *x = io->in[0];
    const int rows = linear_rows(layer, x);
    if (dparams[0]) {
        /* dW [out, in] += dy^T [out, rows] * x [rows, in] */
        sw_sgemm(true, false, out, in, rows, 1.0f, dout->data, out, x->data, in, 1.0f,
                 dparams[0]->data, in);
    }
    if (layer->hp.bias && dparams[1]) {
        /* db [out] += column sums of dy; rows outer so each pass streams one contiguous row */
        float *db = dparams[1]->data;
        for (int r = 0; r < rows; r++) {
            const float *g = dout->data + (size_t)r * out;
            for (int o = 0; o < out; o++) db[o] += g[o];
        }
    }
    return SW_OK;
}

/* Per sample: rows * (in*out multiply-adds + out bias additions). */
static double linear_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                           const sw_shape *out) {
    (void)n_in;
    (void)out;
    double rows = (double)sw_shape_numel(in) / layer->hp.in_features;
    double macs = (double)layer->hp.in_features * layer->hp.out_features;
    return rows * (2.0 * macs + (layer->hp.bias ? layer->hp.out_features : 0));
}

const sw_layer_ops sw_linear_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = linear_init,
    .infer_shape = linear_infer_shape,
    .forward = linear_forward,
    .backward_input = linear_backward_input,
    .backward_params = linear_backward_params,
    .flops = linear_flops,
};
